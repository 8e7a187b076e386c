package main_test

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestConnectionsPerClient: serve's --max-connections-per-client reaches
// the listener: a client that keeps as many connections open as it may
// is refused the next with 429 TOOMANYREQUESTS and Retry-After, and the
// refusal is counted on /metrics.
func TestConnectionsPerClient(t *testing.T) {
	s := startWith(t, t.TempDir(), freeAddr(t), "--max-connections-per-client", "2")
	var clients []*http.Client
	for range 2 { // each client keeps its one connection open (keep-alive)
		c := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1}}
		defer c.CloseIdleConnections()
		resp, err := c.Get(s.url("/v2/"))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /v2/: %s", resp.Status)
		}
		clients = append(clients, c)
	}
	third := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := third.Get(s.url("/v2/"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), `"TOOMANYREQUESTS"`) {
		t.Fatalf("a third connection: %s (Retry-After %q) %s, want 429 TOOMANYREQUESTS with Retry-After", resp.Status, resp.Header.Get("Retry-After"), body)
	}
	// /metrics answers over a connection the client already holds.
	resp, err = clients[0].Get(s.url("/metrics"))
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metrics), `artifactstore_connections_refused_total{bound="client"} 1`) ||
		!strings.Contains(string(metrics), "artifactstore_connections_open 2") {
		t.Errorf("/metrics does not count the refusal and the two open connections:\n%s", grepLines(string(metrics), "connections"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestRequestsPerClientOverHTTP2: over TLS, HTTP/2 carries every request
// of a client on one connection; serve's --max-connections-per-client
// bounds its requests in flight there too.
func TestRequestsPerClientOverHTTP2(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, dir, "test-ca")
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	ca.writePair(t, certFile, keyFile, serverTemplate("limits"))
	s := startWith(t, t.TempDir(), freeAddr(t), "--tls-cert", certFile, "--tls-key", keyFile, "--max-connections-per-client", "2")
	base := "https://" + s.addr
	c := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool()}, ForceAttemptHTTP2: true}}
	defer c.CloseIdleConnections()
	for range 2 {
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "GET", base+"/api/v1/events", nil)
		req.Header.Set("Accept", "text/event-stream")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cancel(); resp.Body.Close() })
		if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 2 {
			t.Fatalf("event stream: %s over %s, want 200 over HTTP/2", resp.Status, resp.Proto)
		}
	}
	resp, err := c.Get(base + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.ProtoMajor != 2 || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), `"TOOMANYREQUESTS"`) {
		t.Fatalf("a third request in flight: %s over %s (Retry-After %q) %s, want 429 TOOMANYREQUESTS over HTTP/2", resp.Status, resp.Proto, resp.Header.Get("Retry-After"), body)
	}
}
