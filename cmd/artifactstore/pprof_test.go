package main_test

import (
	"strings"
	"testing"
)

// TestPprofAddr: with --pprof-addr the profiles answer on their own
// listener, and the registry's listener does not serve them.
func TestPprofAddr(t *testing.T) {
	profiles := freeAddr(t)
	s := startWith(t, t.TempDir(), freeAddr(t), "--pprof-addr", profiles)

	get := func(url string) (int, string) { t.Helper(); return getText(t, url) }
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
