package main_test

import (
	"bytes"
	"io"
	"net/http"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"
)

func getText(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestMetricsAddr: with --metrics-addr, /metrics (the registry's own, the
// Go runtime's, the process's and build_info), /healthz and /readyz answer
// on their own listener, and /metrics is not on the registry's address.
func TestMetricsAddr(t *testing.T) {
	ops := freeAddr(t)
	s := startWith(t, t.TempDir(), freeAddr(t), "--metrics-addr", ops)
	if code, _ := getText(t, s.url("/v2/")); code != 200 {
		t.Fatalf("GET /v2/: %d", code)
	}
	code, body := getText(t, "http://"+ops+"/metrics")
	if code != 200 {
		t.Fatalf("GET /metrics on --metrics-addr: %d", code)
	}
	for _, want := range []string{
		`artifactstore_http_requests_total{method="GET",route="/v2/",status="2xx"} 1`,
		`artifactstore_build_info{goversion="` + runtime.Version() + `"`,
		"go_goroutines ", "process_resident_memory_bytes ", "artifactstore_eventlog_head_sequence ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if code, body := getText(t, "http://"+ops+path); code != 200 {
			t.Errorf("GET %s on --metrics-addr: %d %s", path, code, body)
		}
		if code, body := getText(t, s.url(path)); code != 200 {
			t.Errorf("GET %s on --addr: %d %s", path, code, body)
		}
	}
	if code, _ := getText(t, s.url("/metrics")); code != 404 {
		t.Errorf("GET /metrics on --addr with --metrics-addr set: %d, want 404", code)
	}
}

// Without --metrics-addr, /metrics is on the registry's address.
func TestMetricsOnMainAddr(t *testing.T) {
	s := startWith(t, t.TempDir(), freeAddr(t))
	if code, body := getText(t, s.url("/metrics")); code != 200 || !strings.Contains(body, "artifactstore_build_info") {
		t.Errorf("GET /metrics: %d %.300s", code, body)
	}
}

func TestVersion(t *testing.T) {
	out, err := run(t, "version")
	if err != nil {
		t.Fatalf("version: %v\n%s", err, out)
	}
	if !strings.HasPrefix(out, "artifactstore ") || !strings.Contains(out, runtime.Version()) || !strings.Contains(out, "revision ") {
		t.Errorf("version printed %q", out)
	}
}

// TestLogLevel: --log-level warn drops the request lines (and the
// listening line, so this test waits for the server by asking it); a
// level that does not exist is refused before anything starts.
func TestLogLevel(t *testing.T) {
	addr := freeAddr(t)
	cmd := exec.Command(binary, "serve", "--addr", addr, "--data", t.TempDir(), "--log-level", "warn")
	var logs bytes.Buffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	answered := false
	for range 200 { // up to 20 s
		if resp, err := http.Get("http://" + addr + "/v2/"); err == nil {
			resp.Body.Close()
			answered = resp.StatusCode == 200
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if !answered {
		t.Fatalf("server did not answer:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), "msg=request") || strings.Contains(logs.String(), "msg=listening") {
		t.Errorf("--log-level warn logged info lines:\n%s", logs.String())
	}
	out, err := run(t, "serve", "--data", t.TempDir(), "--log-level", "loud")
	if err == nil || !strings.Contains(out, "--log-level") {
		t.Errorf("serve --log-level loud: %v %s", err, out)
	}
}
