package client

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/artifact-store/artifact-store/blobstore"
	blobfs "github.com/artifact-store/artifact-store/blobstore/fs"
	"github.com/artifact-store/artifact-store/eventlog/sqlite"
	"github.com/artifact-store/artifact-store/registry"
)

// newServer is a real registry over SQLite and a filesystem blob store in
// a temporary directory, on a loopback HTTP server. It returns its URL.
func newServer(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	l, err := sqlite.Open(context.Background(), filepath.Join(dir, "log.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	fsb, err := blobfs.New(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	reg, err := registry.New(registry.Options{Log: l, Blobs: blobstore.New(fsb), UploadTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(reg)
	t.Cleanup(srv.Close)
	return srv.URL
}

// newClient is a client of url that keeps its upload state in a temporary
// directory, prints nothing and retries quickly; opts come after those.
func newClient(t testing.TB, url string, opts ...Option) *Client {
	t.Helper()
	base := []Option{WithStateDir(t.TempDir()), WithProgress(io.Discard, false), WithRetries(3, 10*time.Millisecond)}
	c, err := New(url, append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func randomBytes(t testing.TB, n int) []byte {
	p := make([]byte, n)
	if _, err := rand.Read(p); err != nil {
		t.Fatal(err)
	}
	return p
}

// writeFile writes p to dir/name and returns the path.
func writeFile(t testing.TB, dir, name string, p []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, p, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

var errCut = errors.New("test: connection cut")

// recorder is a real transport that records what goes through it and can
// break or slow down uploads (PATCH bodies):
//   - cutAt > 0: once that many PATCH body bytes have been sent in total,
//     the body fails (once), after calling onCut if set;
//   - unavailable > 0: that many PATCHes are answered 503 without being
//     sent;
//   - throttle > 0: each read of a PATCH body waits that long and reads
//     at most 32 KiB.
type recorder struct {
	base        http.RoundTripper
	mu          sync.Mutex
	calls       []string // "METHOD /path"
	sent        int64    // PATCH body bytes sent
	cutAt       int64
	onCut       func()
	unavailable int
	throttle    time.Duration
}

func (r *recorder) client() *http.Client { return &http.Client{Transport: r} }

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.calls = append(r.calls, req.Method+" "+req.URL.Path)
	if req.Method == http.MethodPatch && r.unavailable > 0 {
		r.unavailable--
		r.mu.Unlock()
		req.Body.Close()
		return &http.Response{StatusCode: http.StatusServiceUnavailable, Header: http.Header{}, Body: io.NopCloser(strings.NewReader("busy")), Request: req}, nil
	}
	r.mu.Unlock()
	if req.Method == http.MethodPatch && req.Body != nil {
		req = req.Clone(req.Context())
		req.Body = &recordedBody{ReadCloser: req.Body, r: r}
	}
	base := r.base
	if base == nil {
		base = http.DefaultTransport
	}
	return base.RoundTrip(req)
}

// count returns how many calls began with prefix ("POST ", "GET /v2/…").
func (r *recorder) count(prefix string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.calls {
		if strings.HasPrefix(c, prefix) {
			n++
		}
	}
	return n
}

func (r *recorder) sentBytes() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sent
}

type recordedBody struct {
	io.ReadCloser
	r *recorder
}

func (b *recordedBody) Read(p []byte) (int, error) {
	r := b.r
	r.mu.Lock()
	throttle := r.throttle
	if throttle > 0 && len(p) > 32<<10 {
		p = p[:32<<10]
	}
	if r.cutAt > 0 {
		left := r.cutAt - r.sent
		if left <= 0 {
			r.cutAt = 0
			onCut := r.onCut
			r.mu.Unlock()
			if onCut != nil {
				onCut()
			}
			return 0, errCut
		}
		if int64(len(p)) > left {
			p = p[:left]
		}
	}
	r.mu.Unlock()
	if throttle > 0 {
		time.Sleep(throttle)
	}
	n, err := b.ReadCloser.Read(p)
	r.mu.Lock()
	r.sent += int64(n)
	r.mu.Unlock()
	return n, err
}
