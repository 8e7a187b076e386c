package blobstore

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"sync"
	"testing"
	"testing/iotest"
	"unsafe"

	"github.com/artifact-store/artifact-store/digest"
	"github.com/zeebo/blake3"
)

// sink records what it is given, checking that every buffer but the last
// is a whole, aligned BufferSize one, as direct I/O needs.
type sink struct {
	t      *testing.T
	got    bytes.Buffer
	writes []int
	failAt int // fail the write that would pass this many bytes (0: never)
}

func (s *sink) Write(p []byte) (int, error) {
	if s.failAt > 0 && s.got.Len()+len(p) > s.failAt {
		return 0, errors.New("disk on fire")
	}
	for i, n := range s.writes {
		if n != BufferSize {
			s.t.Errorf("write %d had %d bytes, then another came", i, n)
		}
	}
	if len(p) >= BufferAlign && uintptr(unsafe.Pointer(unsafe.SliceData(p)))%BufferAlign != 0 {
		s.t.Errorf("write of %d bytes from an unaligned buffer", len(p))
	}
	s.writes = append(s.writes, len(p))
	return s.got.Write(p)
}

func TestFeedStreamsEveryByteOnceHashed(t *testing.T) {
	for _, n := range []int{0, 1, BufferAlign, BufferSize - 1, BufferSize, BufferSize + 1, 5*BufferSize + 3, 2 * inFlight * BufferSize} {
		src := make([]byte, n)
		rand.Read(src)
		for name, r := range map[string]io.Reader{
			"whole":   bytes.NewReader(src),
			"onebyte": iotest.OneByteReader(bytes.NewReader(src)), // a socket that returns tiny pieces
			"half":    iotest.HalfReader(bytes.NewReader(src)),
		} {
			if name == "onebyte" && n > BufferSize+1 {
				continue // slow, and covered by the sizes below it
			}
			h := newHasher(false)
			s := &sink{t: t}
			m, err := io.Copy(s, feed{r, h, 0, checkedPool(maxReadAhead)})
			if err != nil || m != int64(n) || !bytes.Equal(s.got.Bytes(), src) {
				t.Fatalf("%d bytes (%s): copied %d, err %v, same bytes %v", n, name, m, err, bytes.Equal(s.got.Bytes(), src))
			}
			ds := h.digests()
			b3 := blake3.Sum256(src)
			if ds.Size != int64(n) || ds.SHA256 != digest.NewDigest(digest.SHA256, sha256Sum(src)) || ds.BLAKE3 != digest.NewDigest(digest.BLAKE3, b3[:]) {
				t.Fatalf("%d bytes (%s): digests %+v are not the content's", n, name, ds)
			}
		}
	}
}

func sha256Sum(p []byte) []byte { s := sha256.Sum256(p); return s[:] }

// With the read-ahead budget spent, an upload streams through its one
// buffer, and the bytes and digests are the same.
func TestFeedWithoutReadAhead(t *testing.T) {
	for _, budget := range []int{0, 1} {
		src := make([]byte, 5*BufferSize+3)
		rand.Read(src)
		h := newHasher(false)
		s := &sink{t: t}
		bufs := checkedPool(budget)
		m, err := io.Copy(s, feed{bytes.NewReader(src), h, 0, bufs})
		if err != nil || m != int64(len(src)) || !bytes.Equal(s.got.Bytes(), src) {
			t.Fatalf("budget %d: copied %d, err %v", budget, m, err)
		}
		if ds := h.digests(); ds.SHA256 != digest.NewDigest(digest.SHA256, sha256Sum(src)) {
			t.Fatalf("budget %d: digest %s is not the content's", budget, ds.SHA256)
		}
		if len(bufs.extra) != 0 {
			t.Fatalf("budget %d: %d read-ahead tokens still held after the copy", budget, len(bufs.extra))
		}
	}
}

func TestFeedPassesOnASourceCutShort(t *testing.T) {
	for _, n := range []int{10, 3 * BufferSize} {
		src := make([]byte, n)
		r := io.MultiReader(bytes.NewReader(src), iotest.ErrReader(io.ErrUnexpectedEOF))
		_, err := io.Copy(&sink{t: t}, feed{r, newHasher(false), 0, checkedPool(maxReadAhead)})
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("%d bytes then a cut: err %v, want io.ErrUnexpectedEOF (a truncated body must never pass for a whole one)", n, err)
		}
	}
}

func TestFeedStopsOnAWriteError(t *testing.T) {
	src := make([]byte, 10*BufferSize)
	r := &countingReader{r: bytes.NewReader(src)}
	_, err := io.Copy(&sink{t: t, failAt: 2 * BufferSize}, feed{r, newHasher(false), 0, checkedPool(maxReadAhead)})
	if err == nil || err.Error() != "disk on fire" {
		t.Fatalf("err %v, want the writer's", err)
	}
	// The reader stops soon after the failure: it reads at most the
	// buffers in flight beyond the failed one, not the whole source.
	if r.n > int64(2+inFlight+1)*BufferSize {
		t.Fatalf("read %d bytes of a source whose writes failed after %d", r.n, 2*BufferSize)
	}
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// Uploads at once share the pool and its budget: each gets back exactly
// its own bytes (a buffer handed to two of them would mix theirs), and
// the budget is whole again afterwards.
func TestFeedsShareThePool(t *testing.T) {
	bufs := checkedPool(3)
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for round := range 3 {
				src := make([]byte, (3+i)*BufferSize+i+round)
				rand.Read(src)
				s := &sink{t: t}
				if _, err := io.Copy(s, feed{bytes.NewReader(src), newHasher(false), 0, bufs}); err != nil || !bytes.Equal(s.got.Bytes(), src) {
					t.Errorf("upload %d, round %d: err %v, bytes equal %v", i, round, err, bytes.Equal(s.got.Bytes(), src))
				}
			}
		}()
	}
	wg.Wait()
	if len(bufs.extra) != 0 || len(bufs.lent) != 0 {
		t.Fatalf("%d read-ahead tokens and %d buffers still held", len(bufs.extra), len(bufs.lent))
	}
}

// checkedPool is a pool that fails on a buffer given back twice.
func checkedPool(readAhead int) *bufferPool {
	p := newBufferPool(readAhead)
	p.lent = map[*[]byte]bool{}
	return p
}

// TestStoreHashRecycles: Store.Hash, whose hashers are recycled, gives
// every input the digests of a fresh hasher, after a refusal too, and from
// several goroutines at once.
func TestStoreHashRecycles(t *testing.T) {
	s := New(nil)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				data := make([]byte, (g*50+i)*331)
				rand.Read(data)
				want, _ := Hash(data, "")
				got, err := s.Hash(data, "")
				if err != nil || got != want {
					t.Errorf("Store.Hash of %d bytes = %+v, %v; want %+v", len(data), got, err, want)
					return
				}
				wrong := digest.NewDigest(digest.SHA256, make([]byte, 32))
				if _, err := s.Hash(data, wrong); !errors.Is(err, ErrDigestMismatch) {
					t.Errorf("Store.Hash against a wrong digest: %v, want ErrDigestMismatch", err)
					return
				}
				if got, err := s.Hash(data, want.SHA256); err != nil || got != want {
					t.Errorf("Store.Hash after a refusal = %+v, %v; want %+v", got, err, want)
					return
				}
			}
		}()
	}
	wg.Wait()
}
