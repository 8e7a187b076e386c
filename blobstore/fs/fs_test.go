package fs

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/artifact-store/artifact-store/blobstore"
	"github.com/artifact-store/artifact-store/blobstore/blobstoretest"
	"github.com/artifact-store/artifact-store/digest"
)

func TestContract(t *testing.T) {
	blobstoretest.Run(t, func(t *testing.T) blobstore.Backend {
		b, err := New(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return b
	})
}

func TestContractBuffered(t *testing.T) {
	blobstoretest.Run(t, func(t *testing.T) blobstore.Backend {
		b, err := NewWithOptions(t.TempDir(), Options{Buffered: true})
		if err != nil {
			t.Fatal(err)
		}
		return b
	})
}

// Chunks that end and start off the direct-I/O alignment still make
// exactly the bytes sent, and whole aligned blocks do go around the page
// cache where the filesystem allows it.
func TestUnalignedChunksWithDirectIO(t *testing.T) {
	dir := t.TempDir()
	b, err := NewWithOptions(dir, Options{CacheFirst: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	s := blobstore.New(b)
	ctx := context.Background()
	var all []byte
	if err := s.CreateUpload(ctx, "u"); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{3<<20 + 5, 2 << 20, 4097, 1, blobstore.BufferSize, 7} {
		p := make([]byte, n)
		rand.Read(p)
		size, err := s.AppendUpload(ctx, "u", int64(len(all)), bytes.NewReader(p))
		all = append(all, p...)
		if err != nil || size != int64(len(all)) {
			t.Fatalf("append %d bytes: size %d, err %v; want %d", n, size, err, len(all))
		}
	}
	want := digest.FromBytes(digest.SHA256, all)
	if _, err := s.CommitUpload(ctx, "u", want); err != nil {
		t.Fatal(err)
	}
	f, err := s.Open(ctx, want)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, _ := io.ReadAll(f)
	if !bytes.Equal(got, all) {
		t.Fatalf("stored %d bytes differ from the %d sent", len(got), len(all))
	}
	probe, err := os.OpenFile(filepath.Join(dir, "probe"), os.O_CREATE|os.O_WRONLY|oDirect, 0o644)
	if err != nil || oDirect == 0 {
		t.Logf("no direct I/O on %s (%v): only the buffered path ran", dir, err)
		return
	}
	probe.Close()
	// 2 MiB of the first chunk (its first MiB is cached), and of the
	// second all but its first, shorter buffer (which ends the block the
	// first chunk left open).
	if d := b.directBytes.Load(); d > int64(len(all))-1<<20 {
		t.Fatalf("%d of %d bytes written with direct I/O; the first MiB (CacheFirst) must go through the page cache", d, len(all))
	}
	if d := b.directBytes.Load(); d < 3<<20 {
		t.Fatalf("%d bytes written with direct I/O on a filesystem that takes it; want the aligned blocks past the first MiB (at least 3 MiB)", d)
	}
}
