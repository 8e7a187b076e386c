package main_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// client runs the binary as a client: upload state in a temporary cache
// directory, stdout and stderr apart.
func client(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+t.TempDir(), "ARTIFACTSTORE_SERVER=")
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// TestPushPullCommands publishes two files with the push command and
// fetches them with pull against a running server.
func TestPushPullCommands(t *testing.T) {
	s := start(t, t.TempDir(), freeAddr(t))
	server := "http://" + s.addr
	src := t.TempDir()
	bin, notes := random(t, 3<<20), []byte("release notes\n")
	os.WriteFile(filepath.Join(src, "tool"), bin, 0o644)
	os.WriteFile(filepath.Join(src, "NOTES.txt"), notes, 0o644)

	args := []string{"push", "--server", server, "--artifact-type", "application/vnd.example.tool", "--annotation", "team=build", "--annotation", "stage=rc",
		"tools/cli:2.0.0", filepath.Join(src, "tool"), filepath.Join(src, "NOTES.txt") + "=docs/NOTES.txt"}
	out, errOut, err := client(t, args...)
	if err != nil || !strings.HasPrefix(out, "published tools/cli:2.0.0 (2 files)") || !strings.Contains(out, "digest sha256:") {
		t.Fatalf("push: %v\nstdout %s\nstderr %s", err, out, errOut)
	}
	if strings.Contains(errOut, "\r") || !strings.Contains(errOut, "pushed  tool  3.0 MiB in ") || !strings.Contains(errOut, "pushed  docs/NOTES.txt") {
		t.Errorf("push's report, not on a terminal: %q", errOut)
	}
	if out, _, err := client(t, args...); err != nil || !strings.HasPrefix(out, "already published, identical: tools/cli:2.0.0") {
		t.Errorf("second push: %v %s", err, out)
	}
	resp, err := http.Get(server + "/api/v1/repositories/tools/cli/-/versions")
	if err != nil {
		t.Fatal(err)
	}
	list, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(list), `"stage":"rc"`) || !strings.Contains(string(list), `"artifactType":"application/vnd.example.tool"`) {
		t.Errorf("versions after push: %s", list)
	}

	dst := filepath.Join(t.TempDir(), "out")
	out, errOut, err = client(t, "pull", "--server", server, "tools/cli:2.0.0", dst)
	if err != nil || !strings.HasPrefix(out, "pulled tools/cli:2.0.0 (2 files) into "+dst) || !strings.Contains(errOut, "sha256 and blake3 verified") {
		t.Fatalf("pull: %v\nstdout %s\nstderr %s", err, out, errOut)
	}
	for name, want := range map[string][]byte{"tool": bin, "docs/NOTES.txt": notes} {
		if got, _ := os.ReadFile(filepath.Join(dst, name)); !bytes.Equal(got, want) {
			t.Errorf("%s after pull: %d bytes, want %d", name, len(got), len(want))
		}
	}

	if _, errOut, err := client(t, "pull", "--server", server, "tools/cli:9.9.9", dst); err == nil || !strings.Contains(errOut, "VERSION_UNKNOWN") {
		t.Errorf("pull of a missing version: %v %s", err, errOut)
	}
	if _, errOut, err := client(t, "push", "--server", server, "tools/cli"); err == nil || !strings.Contains(errOut, "usage: artifactstore push") {
		t.Errorf("push without files: %v %s", err, errOut)
	}
}

// TestHistoryCommand: artifactstore history prints who moved a tag, and
// what it pointed to at a time.
func TestHistoryCommand(t *testing.T) {
	s := start(t, t.TempDir(), freeAddr(t))
	cfg := []byte(`{"architecture":"amd64","os":"linux"}`)
	request(t, "POST", s.url("/v2/app/blobs/uploads/?digest="+sha(cfg)), bytes.NewReader(cfg)).Body.Close()
	m := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[]}`, sha(cfg), len(cfg))
	resp := request(t, "PUT", s.url("/v2/app/manifests/v1"), strings.NewReader(m), "Content-Type: application/vnd.oci.image.manifest.v1+json")
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("PUT: %d", resp.StatusCode)
	}
	out, _, err := client(t, "history", "--server", s.url(""), "--at", time.Now().UTC().Format(time.RFC3339Nano), "app:v1")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "tag.set") || !strings.Contains(out, "anonymous (anonymous, 127.0.0.1)") || !strings.Contains(out, "pointed to "+sha([]byte(m))) {
		t.Fatalf("history output:\n%s", out)
	}
}
