package blobstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"sync/atomic"
	"testing"
	"unsafe"

	"github.com/artifact-store/artifact-store/digest"
)

// blocks is a BlockReader over bytes that holds the BlockReader's rules
// (aligned buffer, offset and length) and can fail: a test source, as
// bytes.Reader is for feed; blobstore/fs tests the real one.
type blocks struct {
	t      *testing.T
	data   []byte
	failAt int64 // a read from this offset fails (0: none)
	reads  atomic.Int32
}

func (b *blocks) ReadBlocks(p []byte, off int64) (int, error) {
	b.reads.Add(1)
	if len(p)%BufferAlign != 0 || off%BufferAlign != 0 || uintptrOf(p)%BufferAlign != 0 {
		b.t.Errorf("a read of %d bytes at %d, unaligned", len(p), off)
	}
	if b.failAt > 0 && off >= b.failAt {
		return 0, errors.New("EIO")
	}
	if off >= int64(len(b.data)) {
		return 0, nil
	}
	return copy(p, b.data[off:]), nil
}

func (b *blocks) Close() error { return nil }

func uintptrOf(p []byte) uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(p))) }

// stream is a Stream of src with the given budget, from a checked pool.
func stream(t *testing.T, src *blocks, size int64, slots int) (*Stream, *bufferPool) {
	pool, streams := checkedPool(inFlight), make(budget, inFlight)
	if got := pool.reserve(slots); got != slots || streams.reserve(slots) != slots {
		t.Fatalf("reserved %d of %d", got, slots)
	}
	t.Cleanup(func() {
		if len(streams) != 0 {
			t.Errorf("%d stream tokens still held", len(streams))
		}
	})
	return &Stream{r: src, size: size, pool: pool, streams: streams, slots: slots}, pool
}

// whole checks that every buffer and every token is back.
func whole(t *testing.T, pool *bufferPool) {
	t.Helper()
	if len(pool.extra) != 0 || len(pool.lent) != 0 {
		t.Fatalf("%d read-ahead tokens and %d buffers still held", len(pool.extra), len(pool.lent))
	}
}

// A stream writes exactly the recorded bytes, for sizes on and off the
// buffers' and the blocks' bounds, with the fewest buffers and the most.
func TestStreamWritesTheBlob(t *testing.T) {
	for _, size := range []int{1, BufferAlign, BufferSize - 1, BufferSize, 3*BufferSize + 4097} {
		for _, slots := range []int{minStreamSlots, inFlight} {
			src := &blocks{t: t, data: make([]byte, size)}
			rand.Read(src.data)
			st, pool := stream(t, src, int64(size), slots)
			var got bytes.Buffer
			n, err := st.WriteTo(&got)
			st.Close()
			if err != nil || n != int64(size) || !bytes.Equal(got.Bytes(), src.data) {
				t.Fatalf("%d bytes, %d buffers: wrote %d, err %v, equal %v", size, slots, n, err, bytes.Equal(got.Bytes(), src.data))
			}
			whole(t, pool)
		}
	}
}

// A blob shorter than recorded, or a failing read, ends the stream with
// ErrStreamRead, never with the bytes short and no error; a blob longer
// than recorded is served as recorded.
func TestStreamReadFailures(t *testing.T) {
	data := make([]byte, 3*BufferSize)
	rand.Read(data)
	for name, c := range map[string]struct {
		src     *blocks
		size    int64
		written int64
	}{
		"short":  {&blocks{data: data[:2*BufferSize+5]}, 3 * BufferSize, 2 * BufferSize},
		"EIO":    {&blocks{data: data, failAt: BufferSize}, 3 * BufferSize, BufferSize},
		"longer": {&blocks{data: data}, 2*BufferSize + 7, 2*BufferSize + 7},
	} {
		c.src.t = t
		st, pool := stream(t, c.src, c.size, inFlight)
		var got bytes.Buffer
		n, err := st.WriteTo(&got)
		st.Close()
		if n != c.written || !bytes.Equal(got.Bytes(), data[:n]) {
			t.Errorf("%s: wrote %d bytes (equal %v), want %d", name, n, bytes.Equal(got.Bytes(), data[:n]), c.written)
		}
		if wantErr := c.written < c.size; wantErr != errors.Is(err, ErrStreamRead) {
			t.Errorf("%s: err %v, want ErrStreamRead: %v", name, err, wantErr)
		}
		whole(t, pool)
	}
}

// A writer that fails (a client gone) stops the reader: WriteTo returns
// the writer's error, not ErrStreamRead, after the reader has stopped and
// every buffer is back, and few blocks were read past the failure.
func TestStreamStopsWhenTheWriterFails(t *testing.T) {
	src := &blocks{t: t, data: make([]byte, 64*BufferSize)}
	st, pool := stream(t, src, int64(len(src.data)), inFlight)
	s := &sink{t: t, failAt: 2 * BufferSize}
	n, err := st.WriteTo(s)
	reads := src.reads.Load()
	st.Close()
	if err == nil || errors.Is(err, ErrStreamRead) || n != 2*BufferSize {
		t.Fatalf("wrote %d, err %v; want 2 MiB and the writer's error", n, err)
	}
	if reads > 2+inFlight+1 {
		t.Fatalf("%d blocks read for a writer that failed at the third", reads)
	}
	if later := src.reads.Load(); later != reads {
		t.Fatalf("the reader went on after WriteTo returned: %d reads, then %d", reads, later)
	}
	whole(t, pool)
}

// directMem is a backend that is a DirectReader over one blob in memory.
type directMem struct {
	Backend
	src *blocks
}

func (d directMem) OpenDirect(context.Context, digest.Digest, int64) (BlockReader, error) {
	return d.src, nil
}

// OpenStream streams only with at least minStreamSlots buffers of the
// budget shared with uploads, and of the half of it streams may hold; with
// less it returns nil, for the caller's own way, and takes nothing.
func TestOpenStreamNeedsTheBudget(t *testing.T) {
	src := &blocks{t: t, data: make([]byte, BufferSize)}
	s := New(directMem{src: src})
	s.bufs = checkedPool(maxReadAhead)
	ctx := context.Background()
	taken := s.bufs.reserve(maxReadAhead - 1)
	if st := s.OpenStream(ctx, "", BufferSize); st != nil {
		t.Fatal("a stream with one buffer of budget left")
	}
	if len(s.bufs.extra) != taken || len(s.streams) != 0 {
		t.Fatalf("a refused stream kept %d tokens, and %d of the streams' share", len(s.bufs.extra)-taken, len(s.streams))
	}
	s.bufs.release(taken)
	var open []*Stream
	for st := s.OpenStream(ctx, "", BufferSize); st != nil; st = s.OpenStream(ctx, "", BufferSize) {
		open = append(open, st)
	}
	if held := len(s.bufs.extra); held != maxStreamBuffers || len(open) != maxStreamBuffers/inFlight {
		t.Fatalf("%d streams open hold %d of the budget; want them to stop at half of it, %d", len(open), held, maxStreamBuffers)
	}
	for _, st := range open {
		st.Close()
	}
	if len(s.bufs.extra) != 0 || len(s.streams) != 0 {
		t.Fatalf("closed streams hold %d tokens, %d of the streams' share", len(s.bufs.extra), len(s.streams))
	}
	st := s.OpenStream(ctx, "", BufferSize)
	if st == nil || st.slots != inFlight {
		t.Fatalf("stream %v with the whole budget free", st)
	}
	if n, err := st.WriteTo(io.Discard); n != BufferSize || err != nil {
		t.Fatalf("wrote %d, err %v", n, err)
	}
	st.Close()
	whole(t, s.bufs)
	if New(nil).OpenStream(ctx, "", BufferSize) != nil {
		t.Fatal("a stream from a backend that reads no blocks")
	}
}
