package blobstore

import (
	"io"
	"sync"
	"sync/atomic"
	"unsafe"
)

// BufferSize is the size of the buffers that bytes stream through on their
// way to a backend: large enough for the hashers' parallel path and for
// few, large writes.
const BufferSize = 1 << 20

// BufferAlign is the alignment of those buffers' first byte, so that a
// backend may hand them to the kernel for direct I/O (blobstore/fs).
const BufferAlign = 4096

// inFlight is how many buffers a large upload streams through at once:
// enough for the reader to stay ahead while the hashers and the writer
// each work on an earlier buffer, lagging one another by up to two.
const inFlight = 4

// maxReadAhead bounds the buffers all uploads of a Store hold beyond the
// one each has anyway: 256 MiB. Uploads beyond it stream through their
// one buffer, read, hashed and written in turn, so memory does not grow
// with the number of clients pushing at once.
const maxReadAhead = 256

// bufferPool recycles stream buffers (a fresh megabyte per request would
// be zeroed and then collected, which costs more than a small push
// itself) and holds the read-ahead budget.
type bufferPool struct {
	pool  sync.Pool
	extra budget // one token per buffer held beyond an upload's first, and per buffer of a Stream

	// lent, when not nil (tests), holds the buffers out of the pool, so
	// that a buffer given back twice, which two uploads would then
	// share, is caught.
	mu   sync.Mutex
	lent map[*[]byte]bool
}

func newBufferPool(readAhead int) *bufferPool {
	return &bufferPool{
		pool:  sync.Pool{New: func() any { b := AlignedBuffer(BufferSize); return &b }},
		extra: make(budget, readAhead),
	}
}

func (p *bufferPool) get() *[]byte {
	b := p.pool.Get().(*[]byte)
	if p.lent != nil {
		p.mu.Lock()
		p.lent[b] = true
		p.mu.Unlock()
	}
	return b
}

func (p *bufferPool) put(b *[]byte) {
	if p.lent != nil {
		p.mu.Lock()
		if !p.lent[b] {
			p.mu.Unlock()
			panic("blobstore: a stream buffer given back that is not lent")
		}
		delete(p.lent, b)
		p.mu.Unlock()
	}
	p.pool.Put(b)
}

// reserve takes up to n tokens of the read-ahead budget without waiting
// and returns how many it got; release gives them back.
func (p *bufferPool) reserve(n int) int { return p.extra.reserve(n) }

func (p *bufferPool) release(n int) { p.extra.release(n) }

// A budget is a number of tokens, taken without waiting.
type budget chan struct{}

// reserve takes up to n tokens and returns how many it got.
func (b budget) reserve(n int) int {
	for got := 0; got < n; got++ {
		select {
		case b <- struct{}{}:
		default:
			return got
		}
	}
	return n
}

// release gives back n tokens taken by reserve.
func (b budget) release(n int) {
	for range n {
		<-b
	}
}

// AlignedBuffer returns n bytes whose first byte is aligned to BufferAlign.
func AlignedBuffer(n int) []byte {
	b := make([]byte, n+BufferAlign)
	off := int(uintptr(unsafe.Pointer(unsafe.SliceData(b))) & (BufferAlign - 1))
	if off != 0 {
		off = BufferAlign - off
	}
	return b[off : off+n : off+n]
}

// feed streams a source into a backend through the hasher, so that every
// byte is hashed exactly once on its way to storage.
//
// As an io.WriterTo (what io.Copy uses) it is a pipeline (see pipeline):
// the reading of the source, each hash and the writes overlap. The writer
// receives whole BufferSize buffers, aligned to BufferAlign in memory and
// in the upload, except the first and the last. A source that ends within the first buffer (small blobs,
// manifests) is handled without goroutines.
//
// As an io.Reader (backends that pull, such as S3's multipart client) it
// hashes each piece it returns while the caller uses it, and waits for
// that hashing before refilling.
//
// Only a real io.EOF ends the stream: any other error, including a body
// cut short (io.ErrUnexpectedEOF from net/http), is passed on, so a
// truncated upload is never taken for a complete one. Neither method
// returns while hashing or a read of the source is still in progress, so
// the caller may discard the source and the hash state is final.
type feed struct {
	src  io.Reader
	h    *hasher
	at   int64 // where the first byte goes in the upload
	bufs *bufferPool
}

// fill reads src into p until p is full or src fails (io.EOF: nothing
// more will come). Unlike io.ReadFull it passes the source's error on
// unchanged: io.ErrUnexpectedEOF from net/http means a body cut short.
func fill(src io.Reader, p []byte) (int, error) {
	n := 0
	for n < len(p) {
		m, err := src.Read(p[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// Read implements io.Reader.
func (f feed) Read(p []byte) (int, error) {
	f.h.wait()
	n, err := fill(f.src, p)
	if n > 0 {
		f.h.start(p[:n])
	}
	if err == io.EOF && n > 0 {
		err = nil // the next Read reports io.EOF
	}
	return n, err
}

// piece is a filled buffer on its way from the reading goroutine to the
// hashers and the writer; the last of them to finish with it recycles it.
type piece struct {
	buf  *[]byte
	n    int
	err  error // from the source, after these n bytes
	refs atomic.Int32
}

// WriteTo implements io.WriterTo.
func (f feed) WriteTo(w io.Writer) (int64, error) {
	first := f.bufs.get()
	defer f.bufs.put(first)
	// A first buffer short by the upload's misalignment puts the
	// boundaries of all the others on BufferAlign in the file too.
	head := BufferSize - int(f.at%BufferAlign)
	n, err := fill(f.src, (*first)[:head])
	if err != nil || n < head {
		if err != nil && err != io.EOF {
			return 0, err
		}
		return f.write(w, (*first)[:n])
	}
	extra := f.bufs.reserve(inFlight - 1)
	defer f.bufs.release(extra)
	if extra == 0 {
		return f.inTurn(w, *first, n)
	}
	return f.pipeline(w, first, n, extra)
}

// inTurn streams the rest of the source, whose first n bytes are in buf,
// through buf alone: read, then hash and write, then read again.
func (f feed) inTurn(w io.Writer, buf []byte, n int) (int64, error) {
	var total int64
	for {
		m, err := f.write(w, buf[:n])
		total += m
		if err != nil {
			return total, err
		}
		n, err = fill(f.src, buf)
		if err != nil && err != io.EOF {
			return total, err
		}
		if n < len(buf) {
			m, err := f.write(w, buf[:n])
			return total + m, err
		}
	}
}

// pipeline streams the rest of the source, whose first n bytes are in
// first, through three independent stages: each hash in a goroutine of
// its own and the writer in the caller's, each taking the buffers in order
// at its own pace while the reading goroutine refills the ones all three
// are done with. No stage waits for another unless every buffer is in use,
// so the slowest (SHA-256, or the disk) sets the pace, not their sum.
func (f feed) pipeline(w io.Writer, first *[]byte, n, extra int) (int64, error) {
	hashes := []io.Writer{f.h.sha256, f.h.blake3}
	if f.h.sha512 != nil {
		hashes = append(hashes, f.h.sha512)
	}
	// first and extra more; every channel has room for every buffer, so
	// no send ever blocks.
	buffers := extra + 1
	free := make(chan *[]byte, buffers)
	for range extra {
		free <- f.bufs.get()
	}
	toHash := make([]chan *piece, len(hashes))
	toWrite := make(chan *piece, buffers)
	stop := make(chan struct{})
	release := func(p *piece) {
		if p.refs.Add(-1) == 0 {
			free <- p.buf
		}
	}
	var hashing sync.WaitGroup
	for i, hw := range hashes {
		toHash[i] = make(chan *piece, buffers)
		hashing.Add(1)
		go func() {
			defer hashing.Done()
			for p := range toHash[i] {
				hw.Write((*p.buf)[:p.n])
				release(p)
			}
		}()
	}
	go func() {
		defer func() {
			for _, c := range toHash {
				close(c)
			}
			close(toWrite)
		}()
		buf := first
		var err error
		for {
			p := &piece{buf: buf, n: n, err: err}
			p.refs.Store(int32(len(hashes) + 1))
			f.h.size += int64(n)
			for _, c := range toHash {
				c <- p
			}
			toWrite <- p
			if err != nil {
				return
			}
			// Stop first: a select with both ready picks at random, and
			// with buffers coming free the reader would go on reading a
			// source whose writes have failed, round after round.
			select {
			case <-stop:
				return
			default:
			}
			select {
			case <-stop:
				return
			case buf = <-free:
			}
			n, err = fill(f.src, *buf)
		}
	}()
	var total int64
	var werr error
	stopped := false
	for p := range toWrite {
		if werr == nil && p.n > 0 {
			var m int
			m, werr = w.Write((*p.buf)[:p.n])
			total += int64(m)
		}
		if werr == nil && p.err != nil && p.err != io.EOF {
			werr = p.err
		}
		if werr != nil && !stopped {
			close(stop) // the reader stops after the read in progress
			stopped = true
		}
		release(p)
	}
	// The reader has exited (it closed toWrite); the hashers finish what
	// they were given, which brings every buffer back to free.
	hashing.Wait()
	for range buffers {
		if b := <-free; b != first { // WriteTo puts first back
			f.bufs.put(b)
		}
	}
	return total, werr
}

// write hashes p while w writes it, and returns when both are done.
func (f feed) write(w io.Writer, p []byte) (int64, error) {
	if len(p) == 0 {
		return 0, nil
	}
	f.h.start(p)
	n, err := w.Write(p)
	f.h.wait()
	return int64(n), err
}
