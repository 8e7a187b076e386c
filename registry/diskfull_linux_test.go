package registry_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	blobfs "github.com/artifact-store/artifact-store/blobstore/fs"
	"github.com/artifact-store/artifact-store/eventlog/sqlite"
)

// smallDisk mounts a tmpfs of size bytes for the test and returns its
// directory. Only a refused mount skips the test (loudly): the point is a
// real filesystem that runs out of room.
func smallDisk(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) {
			t.Skipf("SKIPPED: disk-full test needs to mount a tmpfs (run as root or with CAP_SYS_ADMIN): %v", err)
		}
		t.Fatalf("mount tmpfs on %s: %v", dir, err)
	}
	// Registered after TempDir's removal, so it runs before it; lazy, so a
	// file something still holds cannot leave the mount behind.
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	return dir
}

// fill writes a ballast file that leaves about room bytes free on the
// filesystem of dir, and returns its path.
func fill(t *testing.T, dir string, room int64) string {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	free := int64(st.Bavail) * st.Bsize
	p := filepath.Join(dir, "ballast")
	if err := os.WriteFile(p, make([]byte, max(free-room, 0)), 0o644); err != nil && !errors.Is(err, syscall.ENOSPC) {
		t.Fatal(err)
	}
	return p
}

// TestBlobDiskFull runs the registry's blob store on a small real
// filesystem and fills it: pushes answer 507 STORAGE_FULL, nothing is
// recorded or left half-written (an upload keeps exactly the chunks it
// acknowledged), and once room is made the same upload completes.
func TestBlobDiskFull(t *testing.T) {
	disk := smallDisk(t, "8m")
	fsb, err := blobfs.New(filepath.Join(disk, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	s := serveOn(t, nil, fsb)
	ballast := fill(t, disk, 1<<20)
	head, _ := s.log.Head(t.Context())

	big := randomBytes(t, 2<<20)
	r := s.do2("POST", "/v2/r/blobs/uploads/?digest="+sha256Of(big), big)
	expect(t, r, http.StatusInsufficientStorage, "STORAGE_FULL")
	expect(t, s.do("HEAD", "/v2/r/blobs/"+sha256Of(big), nil), 404)

	open := s.do("POST", "/v2/r/blobs/uploads/", nil)
	expect(t, open, 202)
	loc := open.Header.Get("Location")
	first, second := randomBytes(t, 256<<10), randomBytes(t, 2<<20)
	expect(t, s.do("PATCH", loc, first, "Content-Range: 0-262143"), 202)
	expect(t, s.do2("PATCH", loc, second, "Content-Range: 262144-2359295"), http.StatusInsufficientStorage, "STORAGE_FULL")
	st := s.do("GET", loc, nil)
	if st.Header.Get("Range") != "0-262143" {
		t.Fatalf("after the refused chunk the upload holds Range %q, want the acknowledged 0-262143", st.Header.Get("Range"))
	}
	if ups, _ := s.blobs.ListUploads(t.Context()); len(ups) != 1 {
		t.Fatalf("staging areas after the refusals: %v, want only the open session's", ups)
	}
	after, _ := s.log.Head(t.Context())
	if after != head+1 { // the session's start, nothing else
		t.Fatalf("%d events recorded, want 1 (the session start)", after-head)
	}

	// The operator makes room; the client resumes.
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	whole := append(append([]byte{}, first...), second...)
	expect(t, s.do("PATCH", loc, second, "Content-Range: 262144-2359295"), 202)
	expect(t, s.do("PUT", withQuery(loc, "digest="+sha256Of(whole)), nil), 201)
	s.pushBlob("r", big)
}

// TestLogDiskFull runs the SQLite log on a small real filesystem and fills
// it: requests that record events answer 507 STORAGE_FULL (SQLITE_FULL),
// not 500, reads still work, and writes succeed again once room is made.
func TestLogDiskFull(t *testing.T) {
	disk := smallDisk(t, "4m")
	l, err := sqlite.Open(context.Background(), filepath.Join(disk, "log.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	s := serveOnFS(t, l)
	_, md := s.pushImage("r", "v1", "")
	ballast := fill(t, disk, 0)

	// Each push appends to the log's write-ahead file; once it needs a new
	// page the disk has none. Bounded: 4 MiB cannot absorb 200 pushes.
	full := false
	for i := 0; i < 200 && !full; i++ {
		r := s.do2("POST", "/v2/r/blobs/uploads/?digest="+sha256Of([]byte{byte(i), 1}), []byte{byte(i), 1})
		switch r.StatusCode {
		case http.StatusCreated:
		case http.StatusInsufficientStorage:
			if r.errCode() != "STORAGE_FULL" {
				t.Fatalf("507 with code %q", r.errCode())
			}
			full = true
		default:
			t.Fatalf("push %d onto a full log disk: %d %s", i, r.StatusCode, r.body)
		}
	}
	if !full {
		t.Fatal("200 pushes onto a full disk all succeeded: the log never needed room")
	}
	expect(t, s.do("GET", "/v2/r/manifests/"+md, nil), 200)

	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	s.pushBlob("r", randomBytes(t, 100))
	s.pushImage("r", "v2", "")
}
