package registry_test

import (
	"bufio"
	"bytes"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/artifact-store/artifact-store/registry"
)

// httptestServe serves handler on loopback, for requests through do.
func httptestServe(t *testing.T, handler http.Handler) *testServer {
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	return &testServer{t: t, url: srv.URL}
}

// lines returns the JSON log lines whose msg is msg.
func (b *syncBuffer) lines(t *testing.T, msg string) []map[string]any {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b.b.Bytes()))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line is not JSON: %s", sc.Bytes())
		}
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

func TestRequestLogOneLinePerRequest(t *testing.T) {
	var logs syncBuffer
	s := newServer(t, func(o *registry.Options) {
		o.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	})
	const repo = "logs/app"
	body := []byte("some bytes")
	put := s.do("POST", "/v2/"+repo+"/blobs/uploads/?digest="+sha256Of(body), body)
	expect(t, put, http.StatusCreated)
	miss := s.do("GET", "/v2/"+repo+"/manifests/absent", nil, "X-Request-Id: report-42")
	expect(t, miss, http.StatusNotFound, "MANIFEST_UNKNOWN")
	hostile := s.do("GET", "/v2/", nil, "X-Request-Id: a b forged=1")
	expect(t, hostile, http.StatusOK)
	expect(t, s.do("GET", "/healthz", nil), http.StatusOK) // polled by machines: not at info level

	lines := logs.lines(t, "request")
	if len(lines) != 3 {
		t.Fatalf("%d request lines for 3 requests (and a health check):\n%s", len(lines), logs.String())
	}
	first := lines[0]
	want := map[string]any{"method": "POST", "route": "/v2/{name}/blobs/uploads/", "repo": repo,
		"status": float64(201), "bytes_in": float64(len(body)), "id": put.Header.Get(registry.RequestIDHeader)}
	for k, v := range want {
		if first[k] != v {
			t.Errorf("push's log line: %s = %v, want %v (line %v)", k, first[k], v, first)
		}
	}
	if first["id"] == "" || first["client"] == nil || first["duration"] == nil {
		t.Errorf("push's log line lacks its id, client or duration: %v", first)
	}

	// The client's id is kept, and is in the error body and the log.
	if got := miss.Header.Get(registry.RequestIDHeader); got != "report-42" {
		t.Errorf("X-Request-Id %q, want the client's report-42", got)
	}
	var e struct{ RequestID string }
	if err := json.Unmarshal(miss.body, &e); err != nil || e.RequestID != "report-42" {
		t.Errorf("error body has request id %q, want report-42: %s", e.RequestID, miss.body)
	}
	if lines[1]["id"] != "report-42" || lines[1]["code"] != "MANIFEST_UNKNOWN" || lines[1]["status"] != float64(404) {
		t.Errorf("miss's log line: %v", lines[1])
	}
	// An id that could forge log content is replaced.
	if id := hostile.Header.Get(registry.RequestIDHeader); id == "" || bytes.ContainsAny([]byte(id), " \n=") {
		t.Errorf("a hostile X-Request-Id was kept: %q", id)
	}
}

func TestHealthAndReadiness(t *testing.T) {
	s := newServer(t)
	r := s.do("GET", "/healthz", nil)
	expect(t, r, http.StatusOK)
	r = s.do("GET", "/readyz", nil)
	expect(t, r, http.StatusOK)
	var ready struct {
		Ready  bool
		Checks map[string]string
	}
	if err := json.Unmarshal(r.body, &ready); err != nil || !ready.Ready || ready.Checks["eventlog"] != "ok" || ready.Checks["blobs"] != "ok" {
		t.Fatalf("readyz: %s", r.body)
	}

	// The event log stops answering: not ready, with Retry-After, while
	// the process stays healthy.
	s.log.Close()
	s.reg.ForgetReadiness()
	r = s.do2("GET", "/readyz", nil)
	if r.StatusCode != http.StatusServiceUnavailable || r.Header.Get("Retry-After") == "" {
		t.Fatalf("readyz with the log closed: %d, Retry-After %q: %s", r.StatusCode, r.Header.Get("Retry-After"), r.body)
	}
	if err := json.Unmarshal(r.body, &ready); err != nil || ready.Ready || ready.Checks["eventlog"] != "unavailable" || ready.Checks["blobs"] != "ok" {
		t.Fatalf("readyz with the log closed: %s", r.body)
	}
	expect(t, s.do("GET", "/healthz", nil), http.StatusOK)
}

func TestWhoami(t *testing.T) {
	open := newServer(t)
	r := open.do("GET", "/api/v1/whoami", nil)
	expect(t, r, http.StatusOK)
	var me struct {
		Name, Method   string
		Authentication bool
	}
	if err := json.Unmarshal(r.body, &me); err != nil || me.Name != "anonymous" || me.Method != "anonymous" || me.Authentication {
		t.Errorf("whoami on an open registry: %s", r.body)
	}

	s := newServer(t, func(o *registry.Options) { o.Auth = authSetup(t)() })
	r = s.do("GET", "/api/v1/whoami", nil) // no credentials: an answer, not a challenge
	expect(t, r, http.StatusOK)
	if err := json.Unmarshal(r.body, &me); err != nil || me.Method != "anonymous" || !me.Authentication {
		t.Errorf("whoami without credentials: %s", r.body)
	}
	r = s.do("GET", "/api/v1/whoami", nil, basic("alice", "alice-pw"))
	if err := json.Unmarshal(r.body, &me); err != nil || me.Name != "alice" || me.Method != "password" {
		t.Errorf("whoami as alice: %d %s", r.StatusCode, r.body)
	}
	expect(t, s.do("GET", "/api/v1/whoami", nil, basic("alice", "wrong")), http.StatusUnauthorized, "UNAUTHORIZED")
}

// TestUIScriptPinned: the page allows its one script by hash, not by
// origin (anyone who may push serves files from this origin), and a
// published file is served so that a browser will not run it as a page.
func TestUIScriptPinned(t *testing.T) {
	s := newServer(t)
	page := s.do("GET", "/ui/", nil)
	expect(t, page, http.StatusOK)
	script := s.do("GET", "/ui/app.js", nil)
	expect(t, script, http.StatusOK)
	sum := sha512.Sum384(script.body)
	integrity := "sha384-" + base64.StdEncoding.EncodeToString(sum[:])
	if !strings.Contains(string(page.body), `integrity="`+integrity+`"`) {
		t.Errorf("the page does not pin app.js by its hash %s", integrity)
	}
	csp := page.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src '"+integrity+"';") || strings.Contains(csp, "script-src 'self'") {
		t.Errorf("page policy %q: want script-src with only the script's hash", csp)
	}
	expect(t, s.do("PUT", "/api/v1/repositories/evil/site/-/versions/1/files/x.js", []byte("alert(1)"), "Content-Type: text/javascript"), http.StatusCreated)
	f := s.do("GET", "/api/v1/repositories/evil/site/-/versions/1/files/x.js", nil)
	expect(t, f, http.StatusOK)
	if f.Header.Get("X-Content-Type-Options") != "nosniff" || !strings.HasPrefix(f.Header.Get("Content-Security-Policy"), "sandbox") {
		t.Errorf("a published file is served with nosniff %q and policy %q", f.Header.Get("X-Content-Type-Options"), f.Header.Get("Content-Security-Policy"))
	}
}
