//go:build linux

package fs

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"os"
	"sync"
	"testing"

	"github.com/artifact-store/artifact-store/blobstore"
	"github.com/artifact-store/artifact-store/digest"
)

// writeSizes is an Options.OpenFile seam that records the largest write
// given to a descriptor opened without O_DIRECT, i.e. through the page
// cache.
type writeSizes struct {
	mu      sync.Mutex
	largest int
}

func (w *writeSizes) open(name string, flag int, perm fs.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	switch {
	case err != nil:
		return nil, err
	case flag&oDirect != 0:
		return f, nil
	}
	return &sizedFile{File: f, w: w}, nil
}

type sizedFile struct {
	*os.File
	w *writeSizes
}

func (f *sizedFile) Write(p []byte) (int, error) {
	f.w.mu.Lock()
	f.w.largest = max(f.w.largest, len(p))
	f.w.mu.Unlock()
	return f.File.Write(p)
}

// TestBufferedWritesArePieces: every way content reaches the page cache
// (an upload's first CacheFirst bytes, content put whole, the buffered
// mode) gives write(2) at most bufferedWriteMax at a time, and the
// content stored is the content sent.
func TestBufferedWritesArePieces(t *testing.T) {
	ctx := context.Background()
	for _, o := range []Options{{}, {Buffered: true}} {
		w := &writeSizes{}
		o.OpenFile = w.open
		b, err := NewWithOptions(t.TempDir(), o)
		if err != nil {
			t.Fatal(err)
		}
		s := blobstore.New(b)

		whole := randomBytes(t, 900<<10)  // less than a buffer: put whole
		streamed := randomBytes(t, 5<<20) // staged, appended
		for _, content := range [][]byte{whole, streamed} {
			ds, err := s.Ingest(ctx, bytes.NewReader(content), digest.FromBytes(digest.SHA256, content))
			if err != nil {
				t.Fatal(err)
			}
			blob, err := s.Open(ctx, ds.SHA256)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(blob)
			blob.Close()
			if err != nil || !bytes.Equal(got, content) {
				t.Fatalf("buffered=%v: %d bytes stored read back as %d (%v), or differ", o.Buffered, len(content), len(got), err)
			}
		}
		if w.largest == 0 || w.largest > bufferedWriteMax {
			t.Errorf("buffered=%v: largest buffered write %d bytes, want 1 to %d", o.Buffered, w.largest, bufferedWriteMax)
		}
	}
}
