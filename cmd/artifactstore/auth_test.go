package main_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestPolicyReloadOnHangup: serve with --htpasswd and --policy; a changed
// policy takes effect without a restart (SIGHUP, or the file watcher), and
// a broken one leaves the old in force.
func TestPolicyReloadOnHangup(t *testing.T) {
	dir := t.TempDir()
	mk := exec.Command(binary, "htpasswd", "-cost", "4", "alice")
	mk.Stdin = strings.NewReader("alice-pw\n")
	line, err := mk.Output()
	if err != nil {
		t.Fatal(err)
	}
	htpasswd, policy := filepath.Join(dir, "htpasswd"), filepath.Join(dir, "policy.yaml")
	os.WriteFile(htpasswd, line, 0o600)
	write := func(actions string) {
		os.WriteFile(policy, []byte("rules:\n  - subjects: [alice]\n    repositories: [\"app/**\"]\n    actions: ["+actions+"]\n"), 0o600)
	}
	write("pull")
	s := startWith(t, filepath.Join(dir, "data"), freeAddr(t), "--htpasswd", htpasswd, "--policy", policy)
	push := func() int {
		p := []byte("x")
		resp := request(t, "POST", s.url("/v2/app/one/blobs/uploads/?digest="+sha(p)), bytes.NewReader(p), "Authorization: Basic YWxpY2U6YWxpY2UtcHc=") // alice:alice-pw
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := push(); got != 403 {
		t.Fatalf("push with pull only: %d", got)
	}
	write("pull, push")
	s.cmd.Process.Signal(syscall.SIGHUP) // the file watcher would also see it within 2 s

	deadline := time.Now().Add(10 * time.Second)
	for push() != 201 {
		if time.Now().After(deadline) {
			t.Fatalf("the policy was not reloaded on SIGHUP:\n%s", s.logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	os.WriteFile(policy, []byte("rules: [not a rule"), 0o600)
	s.cmd.Process.Signal(syscall.SIGHUP)
	time.Sleep(300 * time.Millisecond)
	if got := push(); got != 201 {
		t.Fatalf("after a broken policy file: %d", got)
	}
}
