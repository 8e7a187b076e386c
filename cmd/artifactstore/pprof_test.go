package main_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestPprofAddr: with --pprof-addr the profiles answer on their own
// listener, and the registry's listener does not serve them.
func TestPprofAddr(t *testing.T) {
	profiles := freeAddr(t)
	s := startWith(t, t.TempDir(), freeAddr(t), "--pprof-addr", profiles)

	get := func(url string) (int, string) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := get("http://" + profiles + "/debug/pprof/goroutine?debug=1"); code != 200 || !strings.Contains(body, "goroutine profile:") {
		t.Errorf("GET goroutine profile on --pprof-addr: %d %.200q", code, body)
	}
	if code, body := get("http://" + profiles + "/debug/pprof/"); code != 200 || !strings.Contains(body, "heap") {
		t.Errorf("GET /debug/pprof/ on --pprof-addr: %d %.200q", code, body)
	}
	if code, _ := get(s.url("/debug/pprof/")); code == 200 {
		t.Errorf("the registry's listener serves /debug/pprof/: %d", code)
	}
}
