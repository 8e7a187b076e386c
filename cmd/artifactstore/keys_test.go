package main_test

import (
	"bytes"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// clientAs runs the binary as a client with the user and password in the
// environment.
func clientAs(t *testing.T, user, password string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), "ARTIFACTSTORE_SERVER=", "ARTIFACTSTORE_USER="+user, "ARTIFACTSTORE_PASSWORD="+password)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// TestKeysCommand: an admin makes a key with artifactstore keys create
// (the key alone on stdout), a robot pushes with it, keys list shows it
// without its secret, keys revoke ends it.
func TestKeysCommand(t *testing.T) {
	dir := t.TempDir()
	h, err := bcrypt.GenerateFromPassword([]byte("root-pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	htpasswd, policy := filepath.Join(dir, "htpasswd"), filepath.Join(dir, "policy.yaml")
	os.WriteFile(htpasswd, []byte("root:"+string(h)+"\n"), 0o600)
	os.WriteFile(policy, []byte("rules:\n  - subjects: [root]\n    repositories: [\"**\"]\n    actions: [admin]\n"), 0o600)
	s := startWith(t, t.TempDir(), freeAddr(t), "--htpasswd", htpasswd, "--policy", policy)
	server := s.url("")

	out, errOut, err := clientAs(t, "root", "root-pw", "keys", "create", "--server", server, "--name", "ci", "--repo", "team/**", "--repo", "tools/*", "--actions", "pull,push", "--expires", "30d")
	key := strings.TrimSpace(out)
	if err != nil || !regexp.MustCompile(`^ask_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$`).MatchString(key) || !strings.Contains(errOut, "only time the key is shown") {
		t.Fatalf("keys create: %v\nstdout %q\nstderr %s", err, out, errOut)
	}
	id := key[4:20]
	cfg := []byte(`{"n":1}`)
	push := func() int {
		req, _ := http.NewRequest("POST", s.url("/v2/team/app/blobs/uploads/?digest="+sha(cfg)), bytes.NewReader(cfg))
		req.SetBasicAuth("robot", key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := push(); code != http.StatusCreated {
		t.Fatalf("push with the key: %d", code)
	}

	out, _, err = clientAs(t, "root", "root-pw", "keys", "list", "--server", server)
	if err != nil || !regexp.MustCompile(id+`\s+ci\s+active\s+\S+\s+pull,push\s+team/\*\* tools/\*\s+root`).MatchString(out) || strings.Contains(out, key[21:]) {
		t.Fatalf("keys list: %v\n%s", err, out)
	}
	if _, errOut, err := clientAs(t, "root", "wrong", "keys", "list", "--server", server); err == nil || !strings.Contains(errOut, "401") {
		t.Errorf("keys list with a wrong password: %v %s", err, errOut)
	}
	if _, errOut, err := clientAs(t, "robot", key, "keys", "create", "--server", server, "--name", "x", "--repo", "**"); err == nil || !strings.Contains(errOut, "403") {
		t.Errorf("a key making a key: %v %s", err, errOut)
	}

	if out, _, err := clientAs(t, "root", "root-pw", "keys", "revoke", "--server", server, id); err != nil || out != "revoked "+id+"\n" {
		t.Fatalf("keys revoke: %v %q", err, out)
	}
	if code := push(); code != http.StatusUnauthorized {
		t.Errorf("push with the revoked key: %d", code)
	}
	if out, _, _ := clientAs(t, "root", "root-pw", "keys", "list", "--server", server); !regexp.MustCompile(id + `\s+ci\s+revoked`).MatchString(out) {
		t.Errorf("keys list after revoke:\n%s", out)
	}
}
