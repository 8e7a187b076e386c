package registry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/artifact-store/artifact-store/eventlog/postgres"
	"github.com/artifact-store/artifact-store/eventlog/postgres/pgtest"
	"github.com/artifact-store/artifact-store/registry"
)

// outageRequest is one request made while a store is down.
type outageRequest struct {
	method, path string
	body         []byte
	headers      []string
}

// expectUnavailable sends each request and fails unless every answer is
// 503 UNAVAILABLE with a Retry-After, within a bound that says "failed
// fast" rather than "hung until a client timeout".
func expectUnavailable(t *testing.T, s *testServer, reqs []outageRequest) {
	t.Helper()
	for _, q := range reqs {
		start := time.Now()
		r := s.do2(q.method, q.path, q.body, q.headers...)
		if r.StatusCode != http.StatusServiceUnavailable || (q.method != "HEAD" && r.errCode() != "UNAVAILABLE") {
			t.Errorf("%s %s during the outage: %d %s, want 503 UNAVAILABLE", q.method, q.path, r.StatusCode, r.body)
		}
		if r.Header.Get("Retry-After") == "" {
			t.Errorf("%s %s: 503 without Retry-After", q.method, q.path)
		}
		if took := time.Since(start); took > 30*time.Second {
			t.Errorf("%s %s took %v to fail", q.method, q.path, took)
		}
	}
}

// TestPostgresUnavailable cuts the connection between a running registry
// and PostgreSQL (a loopback proxy in between, cut as a dead server or
// link would be): every route answers 503 UNAVAILABLE with Retry-After,
// nothing is recorded, and once the database is reachable again the
// registry serves and accepts pushes by itself, including an upload
// session begun before the outage.
func TestPostgresUnavailable(t *testing.T) {
	dsn := pgtest.DSN(t)
	proxy := pgtest.StartProxy(t, dsn)
	l, err := postgres.Open(context.Background(), proxy.DSN(dsn), postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	s := serveOnFS(t, l)

	m, md := s.pushImage("r", "v1", "")
	layer := randomBytes(t, 1000)
	ld := s.pushBlob("r", layer)
	expect(t, s.do("PUT", "/api/v1/repositories/r/-/versions/n1/files/a.txt", []byte("hello")), 201)
	open := s.do("POST", "/v2/r/blobs/uploads/", nil)
	expect(t, open, 202)
	session := open.Header.Get("Location")
	first, second := randomBytes(t, 3000), randomBytes(t, 2000)
	expect(t, s.do("PATCH", session, first, "Content-Range: 0-2999"), 202)
	head, err := l.Head(t.Context())
	if err != nil {
		t.Fatal(err)
	}

	proxy.Cut()
	during := randomBytes(t, 5000)
	m2 := bytes.Replace(m, []byte(`"amd64"`), []byte(`"arm64"`), 1)
	expectUnavailable(t, s, []outageRequest{
		{method: "GET", path: "/v2/r/manifests/v1"},
		{method: "HEAD", path: "/v2/r/manifests/" + md},
		{method: "GET", path: "/v2/r/blobs/" + ld},
		{method: "HEAD", path: "/v2/r/blobs/" + ld},
		{method: "GET", path: "/v2/r/tags/list"},
		{method: "GET", path: "/v2/_catalog"},
		{method: "GET", path: "/v2/r/referrers/" + md},
		{method: "POST", path: "/v2/r/blobs/uploads/?digest=" + sha256Of(during), body: during},
		{method: "POST", path: "/v2/r/blobs/uploads/"},
		{method: "PATCH", path: session, body: second, headers: []string{"Content-Range: 3000-4999"}},
		{method: "GET", path: session},
		{method: "PUT", path: "/v2/r/manifests/v2", body: m, headers: []string{"Content-Type: application/vnd.oci.image.manifest.v1+json"}},
		{method: "DELETE", path: "/v2/r/manifests/" + md},
		{method: "GET", path: "/api/v1/repositories"},
		{method: "GET", path: "/api/v1/repositories/r/-/versions"},
		{method: "GET", path: "/api/v1/repositories/r/-/versions/n1"},
		{method: "GET", path: "/api/v1/repositories/r/-/versions/n1/files/a.txt"},
		{method: "PUT", path: "/api/v1/repositories/r/-/versions/n2/files/b.txt", body: during},
		{method: "GET", path: "/api/v1/search?annotation=a=b"},
	})
	expectReadiness(t, s, "eventlog", "unavailable")

	// A real outage outlasts one second, after which pgx pings a pooled
	// connection before reusing it and database/sql replaces a dead one
	// unseen; a connection reused sooner fails its first request (a 503 the
	// client retries). Wait that long, so the first request after the
	// outage must succeed.
	time.Sleep(1100 * time.Millisecond)
	proxy.Restore(t)
	expectReadiness(t, s, "eventlog", "ok")
	if after, err := l.Head(t.Context()); err != nil || after != head {
		t.Fatalf("log head %d (%v) after the outage, %d before: requests that failed recorded events", after, err, head)
	}
	got := s.do("GET", "/v2/r/manifests/v1", nil, "Accept: application/vnd.oci.image.manifest.v1+json")
	if got.StatusCode != 200 || !bytes.Equal(got.body, m) {
		t.Fatalf("manifest after recovery: %d", got.StatusCode)
	}
	expect(t, s.do("GET", "/v2/r/blobs/"+ld, nil), 200)
	// The session opened before the outage continues where it stood.
	st := s.do("GET", session, nil)
	expect(t, st, 204)
	if st.Header.Get("Range") != "0-2999" {
		t.Fatalf("session after recovery: Range %q, want 0-2999", st.Header.Get("Range"))
	}
	whole := append(append([]byte{}, first...), second...)
	expect(t, s.do("PUT", withQuery(session, "digest="+sha256Of(whole)), second, "Content-Range: 3000-4999"), 201)
	s.pushBlob("r", during)
	expect(t, s.do("PUT", "/v2/r/manifests/v2", m2, "Content-Type: application/vnd.oci.image.manifest.v1+json"), 201)
	expect(t, s.do("PUT", "/api/v1/repositories/r/-/versions/n2/files/b.txt", during), 201)
}

// TestS3UnavailableReads stops the object store under a registry that
// holds an image and native versions: reads of bytes that live in the
// store (a layer, a large file) answer 503 UNAVAILABLE with Retry-After,
// not 500, and serve again once the store is back; what the log keeps
// (manifests, native manifests, a small file) is served throughout.
func TestS3UnavailableReads(t *testing.T) {
	gw, b := startS3(t, "", 2*time.Second)
	s := serveOn(t, nil, b)
	layer, large := randomBytes(t, registry.DefaultInlineMax+1), randomBytes(t, registry.DefaultInlineMax+1)
	img := s.pushLayers("r", "v1", layer)
	expect(t, s.do("PUT", "/api/v1/repositories/r/-/versions/n1/files/a.bin", large), 201)
	expect(t, s.do("PUT", "/api/v1/repositories/r/-/versions/n2/files/a.txt", []byte("hello")), 201)

	gw.Stop()
	expectUnavailable(t, s, []outageRequest{
		{method: "GET", path: "/v2/r/blobs/" + sha256Of(layer)},
		{method: "GET", path: "/api/v1/repositories/r/-/versions/n1/files/a.bin"},
	})
	for _, path := range []string{"/v2/r/manifests/v1", "/v2/r/manifests/" + img.digest, "/api/v1/repositories/r/-/versions/n1",
		"/api/v1/repositories/r/-/versions/v1", "/api/v1/repositories/r/-/versions/n2/files/a.txt"} {
		expect(t, s.do2("GET", path, nil), 200)
	}
	expectReadiness(t, s, "blobs", "unavailable")

	gw.Restart(t)
	expectReadiness(t, s, "blobs", "ok")
	s.pullsWhole(img)
	if f := s.do("GET", "/api/v1/repositories/r/-/versions/n1/files/a.bin", nil); f.StatusCode != 200 || !bytes.Equal(f.body, large) {
		t.Fatalf("file after recovery: %d, %d bytes", f.StatusCode, len(f.body))
	}
}

// expectReadiness checks /readyz afresh: the component's state, and 503
// with Retry-After (a load balancer takes the replica out) unless every
// component is ok.
func expectReadiness(t *testing.T, s *testServer, component, want string) {
	t.Helper()
	s.reg.ForgetReadiness()
	r := s.do2("GET", "/readyz", nil)
	var ready struct {
		Ready  bool
		Checks map[string]string
	}
	if err := json.Unmarshal(r.body, &ready); err != nil || ready.Checks[component] != want {
		t.Fatalf("/readyz: %d %s; want %s %s", r.StatusCode, r.body, component, want)
	}
	if want != "ok" && (r.StatusCode != http.StatusServiceUnavailable || r.Header.Get("Retry-After") == "") {
		t.Fatalf("/readyz with %s %s: %d, Retry-After %q", component, want, r.StatusCode, r.Header.Get("Retry-After"))
	}
}

// withQuery adds a query parameter to a Location a server answered.
func withQuery(loc, param string) string {
	if strings.Contains(loc, "?") {
		return loc + "&" + param
	}
	return loc + "?" + param
}
