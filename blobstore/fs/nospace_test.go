//go:build unix

package fs

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"io/fs"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/artifact-store/artifact-store/blobstore"
	"github.com/artifact-store/artifact-store/digest"
)

// disk is a fault seam (Options.OpenFile) that behaves like a filesystem
// with a fixed number of free bytes: a write beyond them stores what fits
// and fails with errno, as write(2) does on a full disk.
type disk struct {
	mu    sync.Mutex
	free  int64
	errno syscall.Errno
}

func (d *disk) setFree(n int64) { d.mu.Lock(); d.free = n; d.mu.Unlock() }

func (d *disk) open(name string, flag int, perm fs.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &fullFile{File: f, d: d}, nil
}

type fullFile struct {
	*os.File
	d *disk
}

func (f *fullFile) Write(p []byte) (int, error) {
	f.d.mu.Lock()
	room := min(int64(len(p)), f.d.free)
	f.d.free -= room
	f.d.mu.Unlock()
	n, err := f.File.Write(p[:room])
	if err == nil && n < len(p) {
		err = &fs.PathError{Op: "write", Path: f.Name(), Err: f.d.errno}
	}
	return n, err
}

func (f *fullFile) Truncate(size int64) error {
	// Truncating gives the cut bytes back, as on a real filesystem.
	if fi, err := f.File.Stat(); err == nil && fi.Size() > size {
		f.d.mu.Lock()
		f.d.free += fi.Size() - size
		f.d.mu.Unlock()
	}
	return f.File.Truncate(size)
}

func randomBytes(t *testing.T, n int) []byte {
	p := make([]byte, n)
	rand.Read(p)
	return p
}

// TestNoSpace fills the disk under a store, for both errnos a full disk
// gives: the error wraps blobstore.ErrNoSpace and names no path, nothing
// partial is kept (no blob, no staging file, an upload keeps exactly its
// acknowledged bytes), and once there is room the same upload continues
// and commits the right content.
func TestNoSpace(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.ENOSPC, syscall.EDQUOT} {
		t.Run(errno.Error(), func(t *testing.T) { testNoSpace(t, errno, 0) })
	}
	// Every whole block written with direct I/O, not only past 32 MiB.
	t.Run("direct", func(t *testing.T) { testNoSpace(t, syscall.ENOSPC, -1) })
}

func testNoSpace(t *testing.T, errno syscall.Errno, cacheFirst int64) {
	ctx := context.Background()
	d := &disk{free: 1 << 20, errno: errno}
	root := t.TempDir()
	b, err := NewWithOptions(root, Options{OpenFile: d.open, CacheFirst: cacheFirst})
	if err != nil {
		t.Fatal(err)
	}
	s := blobstore.New(b)

	big := randomBytes(t, 3<<20)
	if _, err := s.Ingest(ctx, bytes.NewReader(big), ""); !errors.Is(err, blobstore.ErrNoSpace) {
		t.Fatalf("ingest onto a full disk: %v, want ErrNoSpace", err)
	}
	if ups, _ := s.ListUploads(ctx); len(ups) != 0 {
		t.Fatalf("staging files left after the failed ingest: %v", ups)
	}
	n := 0
	s.Walk(ctx, func(blobstore.BlobInfo) error { n++; return nil })
	if n != 0 {
		t.Fatalf("%d blobs stored by a failed ingest", n)
	}

	// Small content, put whole (PutBlob): the same guarantees.
	d.setFree(10 << 10)
	small := randomBytes(t, 64<<10)
	if _, err := s.Ingest(ctx, bytes.NewReader(small), ""); !errors.Is(err, blobstore.ErrNoSpace) {
		t.Fatalf("small ingest onto a full disk: %v, want ErrNoSpace", err)
	}
	s.Walk(ctx, func(blobstore.BlobInfo) error { n++; return nil })
	if ups, _ := s.ListUploads(ctx); n != 0 || len(ups) != 0 {
		t.Fatalf("a failed small ingest left %d blobs and staging files %v", n, ups)
	}
	d.setFree(1 << 20)
	if ds, err := s.Ingest(ctx, bytes.NewReader(small), digest.FromBytes(digest.SHA256, small)); err != nil || ds.Size != int64(len(small)) {
		t.Fatalf("small ingest with room: %+v, %v", ds, err)
	}

	// An upload session: the first chunk fits, the second does not.
	d.setFree(1 << 20)
	first, second := randomBytes(t, 512<<10), randomBytes(t, 1<<20)
	if err := s.CreateUpload(ctx, "u1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendUpload(ctx, "u1", 0, bytes.NewReader(first)); err != nil {
		t.Fatal(err)
	}
	_, err = s.AppendUpload(ctx, "u1", int64(len(first)), bytes.NewReader(second))
	if !errors.Is(err, blobstore.ErrNoSpace) {
		t.Fatalf("append onto a full disk: %v, want ErrNoSpace", err)
	}
	if size, err := s.UploadSize(ctx, "u1"); err != nil || size != int64(len(first)) {
		t.Fatalf("after the failed append the upload holds %d bytes (%v), want the %d acknowledged", size, err, len(first))
	}

	// Room again: the client resumes where the upload stands.
	d.setFree(1 << 30)
	if _, err := s.AppendUpload(ctx, "u1", int64(len(first)), bytes.NewReader(second)); err != nil {
		t.Fatal(err)
	}
	whole := append(append([]byte{}, first...), second...)
	want := digest.FromBytes(digest.SHA256, whole)
	ds, err := s.CommitUpload(ctx, "u1", want)
	if err != nil || ds.SHA256 != want {
		t.Fatalf("commit after freeing space: %+v, %v", ds, err)
	}
	rc, err := s.Open(ctx, want)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, whole) {
		t.Fatal("committed content differs from what was sent")
	}
}

// TestNotFoundNamesNoPath: the errors that reach clients (unknown upload,
// unknown blob) name the upload or key, never the data directory.
func TestNotFoundNamesNoPath(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	b, err := New(root)
	if err != nil {
		t.Fatal(err)
	}
	key := digest.FromBytes(digest.SHA256, []byte("absent"))
	_, err1 := b.StatUpload(ctx, "nosuch")
	_, err2 := b.OpenUpload(ctx, "nosuch")
	_, err3 := b.AppendUpload(ctx, "nosuch", 0, strings.NewReader("x"))
	err4 := b.CommitUpload(ctx, "nosuch", key)
	_, err5 := b.Open(ctx, key)
	_, err6 := b.Stat(ctx, key)
	for i, err := range []error{err1, err2, err3, err4, err5, err6} {
		want := blobstore.ErrUploadNotFound
		if i >= 4 {
			want = blobstore.ErrNotFound
		}
		if !errors.Is(err, want) {
			t.Errorf("case %d: %v, want %v", i+1, err, want)
		}
		if err != nil && strings.Contains(err.Error(), root) {
			t.Errorf("case %d: error names the data directory: %v", i+1, err)
		}
	}
}
