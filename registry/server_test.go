package registry_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/artifact-store/artifact-store/blobstore"
	blobfs "github.com/artifact-store/artifact-store/blobstore/fs"
	"github.com/artifact-store/artifact-store/digest"
	"github.com/artifact-store/artifact-store/eventlog"
	"github.com/artifact-store/artifact-store/eventlog/postgres"
	"github.com/artifact-store/artifact-store/eventlog/postgres/pgtest"
	"github.com/artifact-store/artifact-store/eventlog/sqlite"
	"github.com/artifact-store/artifact-store/registry"
)

// testServer is a registry on a real loopback HTTP server over a real
// SQLite log and filesystem blob store in a temporary directory.
type testServer struct {
	t     testing.TB
	url   string
	log   *eventlog.Log
	blobs *blobstore.Store
	reg   *registry.Registry
	cold  *blobstore.Store // with tiering only
}

// backend is an event log backend the HTTP tests run against.
type backend struct {
	name string
	open func(t testing.TB) *eventlog.Log
}

var backends = []backend{
	{"sqlite", func(t testing.TB) *eventlog.Log {
		// Exclusive, as serve opens it: nothing else writes a test
		// server's log, and the HTTP tests then cover the cached lookups.
		l, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "log.db"), sqlite.Options{Exclusive: true})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}},
	{"postgres", func(t testing.TB) *eventlog.Log {
		l, err := postgres.Open(context.Background(), pgtest.DSN(t), postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}},
}

// forBackends runs fn once per backend, as subtests named after them.
func forBackends(t *testing.T, fn func(t *testing.T, b backend)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { fn(t, b) })
	}
}

// newServer is a server on SQLite, the default backend.
func newServer(t testing.TB, mutate ...func(*registry.Options)) *testServer {
	return backends[0].server(t, mutate...)
}

func (b backend) server(t testing.TB, mutate ...func(*registry.Options)) *testServer {
	t.Helper()
	dir := t.TempDir()
	l := b.open(t)
	t.Cleanup(func() { l.Close() })
	fsb, err := blobfs.New(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	return serveOn(t, l, fsb, mutate...)
}

// serveOnFS runs a registry over the log and a filesystem blob store in
// a temporary directory.
func serveOnFS(t testing.TB, l *eventlog.Log, mutate ...func(*registry.Options)) *testServer {
	t.Helper()
	fsb, err := blobfs.New(filepath.Join(t.TempDir(), "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	return serveOn(t, l, fsb, mutate...)
}

// serveOn runs a registry over the log and blob backend on a loopback
// server (on SQLite in a temporary file when l is nil).
func serveOn(t testing.TB, l *eventlog.Log, blobs blobstore.Backend, mutate ...func(*registry.Options)) *testServer {
	t.Helper()
	if l == nil {
		l = backends[0].open(t)
		t.Cleanup(func() { l.Close() })
	}
	opts := registry.Options{Log: l, Blobs: blobstore.New(blobs), UploadTTL: time.Hour}
	if _, bench := t.(*testing.B); bench {
		// Benchmarks measure serving, not a request line per request on
		// the terminal; BenchmarkManifestGet/observed measures that.
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	for _, m := range mutate {
		m(&opts)
	}
	reg, err := registry.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(reg)
	t.Cleanup(srv.Close)
	return &testServer{t: t, url: srv.URL, log: l, blobs: opts.Blobs, reg: reg, cold: opts.Cold}
}

type response struct {
	*http.Response
	body []byte
}

// errCode returns the first error code of a spec error body.
func (r response) errCode() string {
	var e struct {
		Errors []struct{ Code, Message string }
	}
	if json.Unmarshal(r.body, &e) != nil || len(e.Errors) == 0 {
		return ""
	}
	return e.Errors[0].Code
}

// do sends a request; headers are "Name: value" strings. A 5xx answer
// fails the test: bad input must never cause one.
func (s *testServer) do(method, path string, body []byte, headers ...string) response {
	s.t.Helper()
	r := s.do2(method, path, body, headers...)
	if r.StatusCode >= 500 {
		s.t.Errorf("%s %s: server error %d: %s", method, path, r.StatusCode, r.body)
	}
	return r
}

// do2 is do for requests where a 5xx is the expected answer.
func (s *testServer) do2(method, path string, body []byte, headers ...string) response {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	u := path
	if !strings.HasPrefix(path, "http") {
		u = s.url + path
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	return response{resp, b}
}

// expect fails the test unless r has the status (and error code, if given).
func expect(t testing.TB, r response, status int, code ...string) {
	t.Helper()
	if r.StatusCode != status {
		t.Fatalf("%s %s: status %d, want %d; body %s", r.Request.Method, r.Request.URL, r.StatusCode, status, r.body)
	}
	if len(code) > 0 && r.errCode() != code[0] {
		t.Fatalf("%s %s: error code %q, want %q; body %s", r.Request.Method, r.Request.URL, r.errCode(), code[0], r.body)
	}
}

func randomBytes(t testing.TB, n int) []byte {
	p := make([]byte, n)
	if _, err := rand.Read(p); err != nil {
		t.Fatal(err)
	}
	return p
}

func sha256Of(p []byte) string { return digest.FromBytes(digest.SHA256, p).String() }
func blake3Of(p []byte) string { return digest.FromBytes(digest.BLAKE3, p).String() }
func sha512Of(p []byte) string { return digest.FromBytes(digest.SHA512, p).String() }

// pushBlob pushes p monolithically and returns its sha256 digest.
func (s *testServer) pushBlob(repo string, p []byte) string {
	s.t.Helper()
	d := sha256Of(p)
	expect(s.t, s.do("POST", "/v2/"+repo+"/blobs/uploads/?digest="+d, p), http.StatusCreated)
	return d
}

// pushImage pushes a config and one layer and a manifest under ref, and
// returns the manifest bytes and digest.
func (s *testServer) pushImage(repo, ref string, extra string) ([]byte, string) {
	s.t.Helper()
	cfg := []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"n":%q}`, ref))
	layer := randomBytes(s.t, 300)
	m := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":%q,"size":%d}]%s}`,
		s.pushBlob(repo, cfg), len(cfg), s.pushBlob(repo, layer), len(layer), extra))
	r := s.do("PUT", "/v2/"+repo+"/manifests/"+ref, m, "Content-Type: application/vnd.oci.image.manifest.v1+json")
	expect(s.t, r, http.StatusCreated)
	return m, sha256Of(m)
}

func base64Std(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
