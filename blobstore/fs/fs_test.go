package fs

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
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
	if !directIOIn(t, dir) {
		t.Logf("no direct I/O on %s: only the buffered path ran", dir)
		return
	}
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

// Blobs longer than CacheFirst, which the backend wrote past the page
// cache, stream from the disk in whole blocks with exactly their bytes;
// the rest, a buffered backend's, and a blob it does not hold are left
// to the caller's own way (OpenStream returns nil), as is every blob on a
// filesystem without direct I/O.
func TestStreamReadsPastThePageCache(t *testing.T) {
	dir := t.TempDir()
	directIO := directIOIn(t, dir)
	if !directIO {
		t.Logf("no direct I/O on %s: no blob may stream", dir)
	}
	ctx := context.Background()
	store := func(opts Options) *blobstore.Store {
		b, err := NewWithOptions(filepath.Join(dir, fmt.Sprint(opts.Buffered)), opts)
		if err != nil {
			t.Fatal(err)
		}
		return blobstore.New(b)
	}
	direct, buffered := store(Options{CacheFirst: 1 << 20}), store(Options{CacheFirst: 1 << 20, Buffered: true})
	for _, size := range []int{1 << 20, 1<<20 + 1, 3<<20 + 4097, 4 << 20, 4<<20 + blockSize} {
		p := make([]byte, size)
		rand.Read(p)
		for _, s := range []*blobstore.Store{direct, buffered} {
			ds, err := s.Ingest(ctx, onlyReader{bytes.NewReader(p)}, "")
			if err != nil {
				t.Fatal(err)
			}
			st := s.OpenStream(ctx, ds.SHA256, int64(size))
			if want := directIO && s == direct && size > 1<<20; (st != nil) != want {
				t.Fatalf("%d bytes, buffered %v: a stream %v, want one: %v", size, s == buffered, st != nil, want)
			}
			if st == nil {
				continue
			}
			var got bytes.Buffer
			n, err := st.WriteTo(&got)
			st.Close()
			if err != nil || n != int64(size) || !bytes.Equal(got.Bytes(), p) {
				t.Fatalf("%d bytes streamed: wrote %d, err %v, equal %v", size, n, err, bytes.Equal(got.Bytes(), p))
			}
		}
	}
	if st := direct.OpenStream(ctx, digest.FromBytes(digest.SHA256, []byte("none")), 2<<20); st != nil {
		t.Fatal("a stream of a blob the backend does not hold")
	}
}

// directIOIn reports whether the filesystem of dir takes direct I/O.
func directIOIn(t *testing.T, dir string) bool {
	probe, err := os.OpenFile(filepath.Join(dir, "probe"), os.O_CREATE|os.O_WRONLY|oDirect, 0o644)
	if err != nil || oDirect == 0 {
		t.Logf("direct I/O probe: %v", err)
		return false
	}
	probe.Close()
	return true
}
