package fs

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"testing"

	"github.com/artifact-store/artifact-store/blobstore"
)

// BenchmarkIngest stores content through the Store, as a monolithic push
// or a manifest put does: small content put whole, large content streamed
// through the pipeline, with direct I/O (the default) and buffered. Each
// iteration stores different bytes, so none is deduplicated.
func BenchmarkIngest(b *testing.B) {
	for _, size := range []int{4 << 10, 64 << 20} {
		for _, mode := range []struct {
			name string
			opts Options
		}{{"default", Options{}}, {"buffered", Options{Buffered: true}}} {
			b.Run(fmt.Sprintf("%dKiB/%s", size>>10, mode.name), func(b *testing.B) {
				back, err := NewWithOptions(b.TempDir(), mode.opts)
				if err != nil {
					b.Fatal(err)
				}
				s := blobstore.New(back)
				p := make([]byte, size)
				rand.Read(p)
				b.SetBytes(int64(size))
				b.ReportAllocs()
				for i := 0; b.Loop(); i++ {
					copy(p, fmt.Sprintf("%d.", i))
					if _, err := s.Ingest(context.Background(), onlyReader{bytes.NewReader(p)}, ""); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// onlyReader hides bytes.Reader's WriteTo, as a request body does.
type onlyReader struct{ io.Reader }

// BenchmarkChunkedUpload appends 16 MiB chunks to one session, as a
// chunked push does, and commits.
func BenchmarkChunkedUpload(b *testing.B) {
	const chunk, chunks = 16 << 20, 4
	back, err := New(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	s := blobstore.New(back)
	p := make([]byte, chunk)
	rand.Read(p)
	b.SetBytes(chunk * chunks)
	ctx := context.Background()
	for i := 0; b.Loop(); i++ {
		id := fmt.Sprintf("u%d", i)
		if err := s.CreateUpload(ctx, id); err != nil {
			b.Fatal(err)
		}
		copy(p, fmt.Sprintf("%d.", i))
		for c := range chunks {
			if _, err := s.AppendUpload(ctx, id, int64(c*chunk), onlyReader{bytes.NewReader(p)}); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := s.CommitUpload(ctx, id, ""); err != nil {
			b.Fatal(err)
		}
	}
}
