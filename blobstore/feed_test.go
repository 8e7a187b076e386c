package blobstore

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
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
			m, err := io.Copy(s, feed{r, h, 0})
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

func TestFeedPassesOnASourceCutShort(t *testing.T) {
	for _, n := range []int{10, 3 * BufferSize} {
		src := make([]byte, n)
		r := io.MultiReader(bytes.NewReader(src), iotest.ErrReader(io.ErrUnexpectedEOF))
		_, err := io.Copy(&sink{t: t}, feed{r, newHasher(false), 0})
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("%d bytes then a cut: err %v, want io.ErrUnexpectedEOF (a truncated body must never pass for a whole one)", n, err)
		}
	}
}

func TestFeedStopsOnAWriteError(t *testing.T) {
	src := make([]byte, 10*BufferSize)
	r := &countingReader{r: bytes.NewReader(src)}
	_, err := io.Copy(&sink{t: t, failAt: 2 * BufferSize}, feed{r, newHasher(false), 0})
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
