package blobstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/artifact-store/artifact-store/digest"
)

// DirectReader is a backend that can read a large blob past the page
// cache (blobstore/fs: direct I/O), for Store.OpenStream.
type DirectReader interface {
	// OpenDirect opens the blob under key, size bytes long, for reads in
	// whole BufferAlign blocks into BufferAlign-aligned buffers. It
	// fails when the backend would rather serve the blob from the page
	// cache (one it wrote through it, or the backend is set to buffer)
	// or cannot read it directly (the filesystem refuses).
	OpenDirect(ctx context.Context, key digest.Digest, size int64) (BlockReader, error)
}

// BlockReader reads a blob in aligned blocks.
type BlockReader interface {
	// ReadBlocks fills p, whose length is a multiple of BufferAlign,
	// from off, a multiple of BufferAlign. It returns fewer bytes only
	// at the blob's end, where it returns what is left.
	ReadBlocks(p []byte, off int64) (int, error)
	Close() error
}

// ErrStreamRead marks an error of Stream.WriteTo that came from reading
// the blob, not from the writer: damage to report, where a writer's error
// is usually a client gone.
var ErrStreamRead = errors.New("blobstore: reading the blob failed")

// A Stream serves a whole large blob: a goroutine reads it ahead into up
// to inFlight pooled buffers while the caller's writer sends earlier ones.
// Where the backend reads past the page cache (DirectReader), a pull of a
// blob that is not cached runs at the disk's speed with several reads
// queued, and does not evict the small content that the cache serves
// better; a blob's pages are not filled only to be copied out once.
type Stream struct {
	r       BlockReader
	size    int64
	pool    *bufferPool
	streams budget
	slots   int // buffers it may hold, reserved from both budgets
}

// maxStreamBuffers bounds the read-ahead budget that streams hold at once.
const maxStreamBuffers = maxReadAhead / 2

// minStreamSlots is the fewest buffers worth streaming through: with one,
// the read and the send would take turns, and the page cache's own
// read-ahead (the caller's fallback) does better.
const minStreamSlots = 2

// OpenStream prepares a Stream of the size bytes under key, or returns nil
// when the backend is not a DirectReader or declines this blob, or the
// read-ahead budget shared with uploads is spent, or streams hold half of
// it already (maxStreamBuffers: clients that pull slowly must not leave
// pushes without read-ahead): the caller then serves
// the blob as it opened it (sendfile from the page cache), which holds no
// buffer. Close releases what a Stream holds.
func (s *Store) OpenStream(ctx context.Context, key digest.Digest, size int64) *Stream {
	d, ok := s.backend.(DirectReader)
	if !ok {
		return nil
	}
	// The backend declines most blobs (fs: all up to CacheFirst) without
	// a system call: ask it first, so that those GETs take no tokens.
	r, err := d.OpenDirect(ctx, key, size)
	if err != nil {
		return nil
	}
	slots := s.streams.reserve(inFlight)
	got := s.bufs.reserve(slots)
	s.streams.release(slots - got)
	if got < minStreamSlots {
		s.bufs.release(got)
		s.streams.release(got)
		r.Close()
		return nil
	}
	return &Stream{r: r, size: size, pool: s.bufs, streams: s.streams, slots: got}
}

// Close closes the blob and gives back the Stream's budget.
func (st *Stream) Close() error {
	st.pool.release(st.slots)
	st.streams.release(st.slots)
	return st.r.Close()
}

// block is a buffer the reader filled: n bytes of it, or the read's error.
type block struct {
	buf *[]byte
	n   int
	err error
}

// WriteTo writes the blob to w, from its start, once. It returns when
// every buffer is back in the pool and the reader has stopped, also when
// w fails (a client gone), so that nothing outlives the request.
func (st *Stream) WriteTo(w io.Writer) (int64, error) {
	free := make(chan *[]byte, st.slots)
	full := make(chan block, st.slots) // never blocks: at most slots buffers exist
	for range st.slots {
		free <- st.pool.get()
	}
	stop := make(chan struct{})
	var stopOnce sync.Once
	go st.read(free, full, stop)

	var written int64
	var err error
	for b := range full {
		if err == nil && b.err != nil {
			err = fmt.Errorf("%w: %w", ErrStreamRead, b.err)
		}
		if err == nil {
			var m int
			m, err = w.Write((*b.buf)[:b.n])
			written += int64(m)
		}
		if err != nil {
			stopOnce.Do(func() { close(stop) }) // before the buffer goes back: no read after it
		}
		free <- b.buf
	}
	for range st.slots {
		st.pool.put(<-free)
	}
	return written, err
}

// read fills buffers in order until the blob's end, an error, or stop; it
// closes full when it is done with every buffer.
func (st *Stream) read(free <-chan *[]byte, full chan<- block, stop <-chan struct{}) {
	defer close(full)
	for off := int64(0); off < st.size; {
		var b *[]byte
		select { // stop first: a select between two ready cases picks either
		case <-stop:
			return
		default:
		}
		select {
		case b = <-free:
		case <-stop:
			return
		}
		want := min(int64(len(*b)), st.size-off)
		n, err := st.r.ReadBlocks((*b)[:roundUp(want, BufferAlign)], off)
		switch {
		case err == nil && int64(n) < want:
			err = fmt.Errorf("blob ends at %d bytes, %d expected: %w", off+int64(n), st.size, io.ErrUnexpectedEOF)
		case err == nil:
			n = int(want) // a blob longer than recorded is served as recorded
		}
		full <- block{buf: b, n: n, err: err}
		if err != nil {
			return
		}
		off += int64(n)
	}
}

func roundUp(n, to int64) int64 { return (n + to - 1) / to * to }
