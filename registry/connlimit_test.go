package registry

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// limitedServer serves "ok" on loopback behind LimitListener(limits).
func limitedServer(t *testing.T, limits ConnLimits) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lim, err := LimitListener(ln, limits)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })}
	go srv.Serve(lim)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// ask opens a connection from the loopback address from, sends one GET
// and reads the answer; the connection stays open (keep-alive) until the
// test closes it.
func ask(t *testing.T, addr, from string) (net.Conn, *http.Response, []byte) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return c, nil, nil
	}
	body, _ := io.ReadAll(resp.Body)
	return c, resp, body
}

// refusedWith checks an answer is the refusal a client should see: the
// status, the spec's error envelope with code, and Retry-After.
func refusedWith(t *testing.T, what string, resp *http.Response, body []byte, status int, code Code) {
	t.Helper()
	if resp == nil {
		t.Fatalf("%s: no answer, want %d %s", what, status, code)
	}
	var env struct {
		Errors []struct{ Code, Message string }
	}
	json.Unmarshal(body, &env)
	if resp.StatusCode != status || len(env.Errors) != 1 || env.Errors[0].Code != string(code) || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("%s: %d %s (Retry-After %q), want %d %s with Retry-After", what, resp.StatusCode, body, resp.Header.Get("Retry-After"), status, code)
	}
	if env.Errors[0].Message == "" {
		t.Errorf("%s: the refusal says nothing a person can act on: %s", what, body)
	}
}

func served(t *testing.T, what string, resp *http.Response, body []byte) {
	t.Helper()
	if resp == nil || resp.StatusCode != http.StatusOK || string(body) != "ok" {
		t.Fatalf("%s: %v %s, want 200 ok", what, resp, body)
	}
}

// TestConnectionsBounded: a client holding as many idle keep-alive
// connections as it may gets 429 on the next, another client is still
// served until the server's bound, past which everyone gets 503; a
// closed connection gives its slot back.
func TestConnectionsBounded(t *testing.T) {
	metrics := prometheus.NewRegistry()
	addr := limitedServer(t, ConnLimits{Max: 4, PerClient: 3, Metrics: metrics})

	var held []net.Conn
	for i := range 3 {
		c, resp, body := ask(t, addr, "127.0.0.1")
		served(t, "connection "+string(rune('1'+i))+" of 127.0.0.1", resp, body)
		held = append(held, c)
	}
	_, resp, body := ask(t, addr, "127.0.0.1")
	refusedWith(t, "a fourth connection of 127.0.0.1", resp, body, http.StatusTooManyRequests, CodeTooManyRequests)

	_, resp, body = ask(t, addr, "127.0.0.2")
	served(t, "another client, the server's fourth connection", resp, body)
	_, resp, body = ask(t, addr, "127.0.0.3")
	refusedWith(t, "a fifth connection to the server", resp, body, http.StatusServiceUnavailable, CodeUnavailable)

	// The server sees the close when its idle read ends; then the slot
	// is free again.
	held[0].Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, resp, body := ask(t, addr, "127.0.0.3")
		if resp != nil && resp.StatusCode == http.StatusOK {
			served(t, "a connection after one closed", resp, body)
			c.Close()
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatalf("a closed connection's slot was not given back: %v %s", resp, body)
		}
		time.Sleep(20 * time.Millisecond)
	}

	mfs, err := metrics.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var refused float64
	for _, mf := range mfs {
		if mf.GetName() == "artifactstore_connections_refused_total" {
			for _, m := range mf.GetMetric() {
				refused += m.GetCounter().GetValue()
			}
		}
	}
	if refused < 2 {
		t.Errorf("artifactstore_connections_refused_total = %v, want at least 2", refused)
	}
}

// TestConnectionsBoundedTLS: over TLS a refused connection is closed
// without an answer (a handshake is what a flood would cost the server).
func TestConnectionsBoundedTLS(t *testing.T) {
	addr := limitedServer(t, ConnLimits{PerClient: 1, TLS: true})
	ask(t, addr, "127.0.0.1") // the one it may hold
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.Read(make([]byte, 1))
	var ne net.Error
	if n != 0 || err == nil || (errors.As(err, &ne) && ne.Timeout()) {
		t.Fatalf("read %d bytes, %v: want the connection closed at once", n, err)
	}
	if !errors.Is(err, io.EOF) && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("read: %v, want EOF or a reset", err)
	}
}
