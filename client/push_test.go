package client

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/artifact-store/artifact-store/digest"
)

// TestPushPull pushes three files (one renamed into a directory, with a
// space in its name, one empty), pulls them into a fresh directory and
// compares the bytes; then pushes and pulls again, which sends nothing.
func TestPushPull(t *testing.T) {
	url := newServer(t)
	src := t.TempDir()
	files := map[string][]byte{
		"app.bin":              randomBytes(t, 300<<10),
		"docs/read me & q?.md": []byte("# notes\n"),
		"empty":                nil,
	}
	args := []string{
		writeFile(t, src, "app.bin", files["app.bin"]),
		writeFile(t, src, "notes.md", files["docs/read me & q?.md"]) + "=docs/read me & q?.md",
		writeFile(t, src, "empty", files["empty"]),
	}
	ctx := context.Background()
	c := newClient(t, url, WithChunkSize(64<<10))
	opts := PushOptions{ArtifactType: "application/vnd.example.bundle", Annotations: map[string]string{"team": "tools"}}
	res, err := c.Push(ctx, "team/app", "1.0.0", args, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Published || len(res.Files) != 3 || res.ArtifactType != opts.ArtifactType ||
		!strings.HasPrefix(res.Digest, "sha256:") || !strings.HasPrefix(res.BLAKE3, "blake3:") || !strings.HasPrefix(res.OCIDigest, "sha256:") {
		t.Fatalf("push result: %+v", res)
	}
	for _, f := range res.Files {
		if f.Skipped || f.Transferred != f.Size || f.SHA256 != digest.FromBytes(digest.SHA256, files[f.Path]).String() {
			t.Errorf("pushed file: %+v", f)
		}
	}

	dst := t.TempDir()
	pulled, err := c.Pull(ctx, "team/app", "1.0.0", dst)
	if err != nil {
		t.Fatal(err)
	}
	if pulled.Digest != res.Digest || pulled.OCIDigest != res.OCIDigest || pulled.ArtifactType != opts.ArtifactType {
		t.Errorf("pull result %+v, push result %+v", pulled, res)
	}
	for path, want := range files {
		got, err := os.ReadFile(filepath.Join(dst, filepath.FromSlash(path)))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s after pull: %d bytes (want %d), err %v", path, len(got), len(want), err)
		}
	}

	// Again: the files are there, on both sides.
	again, err := c.Pull(ctx, "team/app", "1.0.0", dst)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range again.Files {
		if !f.Skipped || f.Transferred != 0 {
			t.Errorf("second pull of %s: %+v", f.Path, f)
		}
	}
	rec := &recorder{}
	c2 := newClient(t, url, WithHTTPClient(rec.client()))
	res2, err := c2.Push(ctx, "team/app", "1.0.0", args, opts)
	if err != nil {
		t.Fatal(err)
	}
	if res2.Published || res2.Digest != res.Digest || rec.count("PATCH") != 0 || rec.count("POST") != 0 {
		t.Errorf("second push: published %v, digest %s (first %s), %d PATCH, %d POST", res2.Published, res2.Digest, res.Digest, rec.count("PATCH"), rec.count("POST"))
	}

	// The same bytes to another repository are sent: a repository gets
	// only bytes its client proves it has (the server stores them once).
	rec = &recorder{}
	c3 := newClient(t, url, WithHTTPClient(rec.client()))
	res3, err := c3.Push(ctx, "other/app", "1", args[:1], PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if f := res3.Files[0]; f.Skipped || f.Transferred != f.Size || rec.count("PATCH") == 0 {
		t.Errorf("push of a blob another repository holds: %+v, calls %v", f, rec.calls)
	}

	// Other files under the same version: the server's message comes
	// through.
	_, err = c.Push(ctx, "team/app", "1.0.0", args[:1], opts)
	var e *Error
	if !errors.As(err, &e) || e.Status != http.StatusConflict || e.Code != "VERSION_EXISTS" || !strings.Contains(err.Error(), "immutable") {
		t.Fatalf("republishing with other files: %v", err)
	}
}

// TestPushRejects: arguments that cannot make a valid manifest are refused
// before anything is sent.
func TestPushRejects(t *testing.T) {
	url := newServer(t)
	src := t.TempDir()
	a := writeFile(t, src, "a.bin", []byte("a"))
	b := writeFile(t, src, "sub/a.bin", []byte("b"))
	tests := []struct {
		name    string
		version string
		files   []string
		opts    PushOptions
		want    string
	}{
		{"no files", "v1", nil, PushOptions{}, "no files"},
		{"missing file", "v1", []string{filepath.Join(src, "nope")}, PushOptions{}, "no such file"},
		{"directory", "v1", []string{src}, PushOptions{}, "not a regular file"},
		{"parent path", "v1", []string{a + "=../a.bin"}, PushOptions{}, ".. component"},
		{"absolute path", "v1", []string{a + "=/etc/a.bin"}, PushOptions{}, "absolute"},
		{"empty path", "v1", []string{a + "="}, PushOptions{}, "nothing after ="},
		{"backslash", "v1", []string{a + `=a\b`}, PushOptions{}, "backslash"},
		{"same path twice", "v1", []string{a, b}, PushOptions{}, "would both be"},
		{"bad version", "-v1", []string{a}, PushOptions{}, "version"},
		{"empty annotation key", "v1", []string{a}, PushOptions{Annotations: map[string]string{"": "x"}}, "annotation"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			c := newClient(t, url, WithHTTPClient(rec.client()))
			_, err := c.Push(context.Background(), "r", tt.version, tt.files, tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to mention %q", err, tt.want)
			}
			if len(rec.calls) != 0 {
				t.Errorf("sent %v before refusing", rec.calls)
			}
		})
	}
}

// TestPushRetries: within one push, a chunk that fails (a broken
// connection, a 503) is resumed from what the server holds.
func TestPushRetries(t *testing.T) {
	const size = 5 << 20
	tests := []struct {
		name  string
		fault func(*recorder)
	}{
		{"broken connection", func(r *recorder) { r.cutAt = 3<<20 + 12345 }},
		{"503 twice", func(r *recorder) { r.unavailable = 2 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := newServer(t)
			data := randomBytes(t, size)
			path := writeFile(t, t.TempDir(), "f.bin", data)
			rec := &recorder{}
			tt.fault(rec)
			c := newClient(t, url, WithHTTPClient(rec.client()), WithChunkSize(2<<20))
			res, err := c.Push(context.Background(), "r", "v1", []string{path}, PushOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if rec.count("GET /v2/r/blobs/uploads/") == 0 {
				t.Errorf("no status request after the failure: %v", rec.calls)
			}
			if sent := rec.sentBytes(); sent >= size+2<<20 || sent != res.Files[0].Transferred {
				t.Errorf("sent %d bytes for a %d-byte file (reported %d); more than one chunk was sent again", sent, size, res.Files[0].Transferred)
			}
			checkPublished(t, url, "r", "v1", "f.bin", data)
		})
	}
}

// TestPushResumesAfterRestart interrupts a push of a 20 MiB file (a broken
// connection with no retries left, or Ctrl-C), then pushes again with a
// new client, as a new process would: the upload resumes at what the
// server holds and only the rest is sent.
func TestPushResumesAfterRestart(t *testing.T) {
	const size = 20 << 20
	tests := []struct {
		name   string
		cancel bool
	}{
		{"broken connection", false},
		{"interrupted", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := newServer(t)
			data := randomBytes(t, size)
			path := writeFile(t, t.TempDir(), "big.bin", data)
			state := t.TempDir()

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			rec1 := &recorder{cutAt: 11 << 20}
			if tt.cancel {
				rec1.onCut = cancel
			}
			c1 := newClient(t, url, WithHTTPClient(rec1.client()), WithStateDir(state), WithRetries(0, 0))
			_, err := c1.Push(ctx, "big/file", "v1", []string{path}, PushOptions{})
			if err == nil {
				t.Fatal("the interrupted push succeeded")
			}
			t.Logf("interrupted: %v", err)
			states, _ := filepath.Glob(filepath.Join(state, "*.json"))
			if len(states) != 1 {
				t.Fatalf("state files after the interruption: %v", states)
			}
			s, _ := loadState(states[0])
			held := settledSize(t, s.Location)
			t.Logf("the server holds %d bytes after %d were sent", held, rec1.sentBytes())
			if held < DefaultChunkSize || held > 11<<20 {
				t.Fatalf("the server holds %d bytes after %d were sent", held, rec1.sentBytes())
			}

			rec2 := &recorder{}
			c2 := newClient(t, url, WithHTTPClient(rec2.client()), WithStateDir(state))
			res, err := c2.Push(context.Background(), "big/file", "v1", []string{path}, PushOptions{})
			if err != nil {
				t.Fatal(err)
			}
			f := res.Files[0]
			if f.Resumed != held || rec2.sentBytes() != size-held || f.Transferred != size-held {
				t.Errorf("resumed at %d (server held %d), sent %d (reported %d), want %d", f.Resumed, held, rec2.sentBytes(), f.Transferred, size-held)
			}
			if n := rec2.count("POST"); n != 0 {
				t.Errorf("the second push opened %d new sessions", n)
			}
			if states, _ := filepath.Glob(filepath.Join(state, "*.json")); len(states) != 0 {
				t.Errorf("state files left after the upload: %v", states)
			}
			checkPublished(t, url, "big/file", "v1", "big.bin", data)
		})
	}
}

// TestPushForgetsExpiredSession: a remembered session the server no longer
// knows is dropped and a new one started.
func TestPushForgetsExpiredSession(t *testing.T) {
	url := newServer(t)
	data := randomBytes(t, 100<<10)
	path := writeFile(t, t.TempDir(), "f.bin", data)
	c := newClient(t, url)
	sha := digest.FromBytes(digest.SHA256, data).String()
	p := c.statePath("r", sha)
	c.saveState(p, uploadState{Server: c.base.String(), Repository: "r", SHA256: sha, Size: int64(len(data)),
		Location: url + "/v2/r/blobs/uploads/00000000000000000000000000000000"})
	res, err := c.Push(context.Background(), "r", "v1", []string{path}, PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Files[0].Resumed != 0 || res.Files[0].Transferred != int64(len(data)) {
		t.Errorf("push after a lost session: %+v", res.Files[0])
	}
	if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state file kept: %v", err)
	}
	checkPublished(t, url, "r", "v1", "f.bin", data)
}

// settledSize asks an upload session how many bytes it holds, until two
// answers 50 ms apart agree (the server may still be writing what a broken
// request delivered).
func settledSize(t *testing.T, loc string) int64 {
	t.Helper()
	c := newClient(t, loc)
	prev := int64(-1)
	for i := 0; i < 100; i++ {
		n, err := c.uploadStatus(context.Background(), loc)
		if err != nil {
			t.Fatal(err)
		}
		if n == prev {
			return n
		}
		prev = n
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("the upload's size never settled")
	return 0
}

// checkPublished fetches a published file with a plain HTTP client and
// compares it with want.
func checkPublished(t *testing.T, url, repo, version, path string, want []byte) {
	t.Helper()
	resp, err := http.Get(url + "/api/v1/repositories/" + repo + "/-/versions/" + version + "/files/" + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 || !bytes.Equal(got, want) {
		t.Fatalf("GET %s:%s %s: %d, %d bytes (want %d), equal %v, err %v", repo, version, path, resp.StatusCode, len(got), len(want), bytes.Equal(got, want), err)
	}
}

// TestPushResumesAfterOneByte: a session holding one byte reports
// "Range: 0-0", as an empty one does; the chunk sent from 0 is refused
// with 416 and the count the server gives, and the upload goes on there.
func TestPushResumesAfterOneByte(t *testing.T) {
	url := newServer(t)
	data := randomBytes(t, 200<<10)
	path := writeFile(t, t.TempDir(), "f.bin", data)
	c := newClient(t, url)
	loc, _, err := c.startUpload(context.Background(), "r", "sha256:"+strings.Repeat("0", 64))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPatch, loc, bytes.NewReader(data[:1]))
	req.Header.Set("Content-Range", "0-0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusAccepted || resp.Header.Get("Range") != "0-0" {
		t.Fatalf("PATCH of one byte: %v %v", err, resp)
	}
	resp.Body.Close()
	sha := digest.FromBytes(digest.SHA256, data).String()
	c.saveState(c.statePath("r", sha), uploadState{Server: c.base.String(), Repository: "r", SHA256: sha, Size: int64(len(data)), Location: loc})
	rec := &recorder{}
	c2 := newClient(t, url, WithHTTPClient(rec.client()), WithStateDir(c.stateDir))
	if _, err := c2.Push(context.Background(), "r", "v1", []string{path}, PushOptions{}); err != nil {
		t.Fatal(err)
	}
	if rec.count("POST") != 0 || rec.count("PATCH") != 2 {
		t.Errorf("calls: %v", rec.calls)
	}
	checkPublished(t, url, "r", "v1", "f.bin", data)
}
