package main_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
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
