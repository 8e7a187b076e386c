// Package s3test gives tests a real S3-compatible server: the Versity S3
// gateway (versitygw, Apache-2.0) on a loopback port over a temporary
// directory, with a fresh bucket per test. No fakes.
//
// The binary is found through $ARTIFACTSTORE_TEST_VERSITYGW, then $PATH,
// then tools/versitygw in the module (where `make tools` and .ci/run put
// it). Without it, tests skip with one loud line.
package s3test

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// EnvVar names the versitygw binary the S3 tests run against.
const EnvVar = "ARTIFACTSTORE_TEST_VERSITYGW"

// Credentials of the gateways this package starts.
const (
	AccessKey = "artifactstore"
	SecretKey = "artifactstore-secret"
)

// Server is a running gateway.
type Server struct {
	Endpoint string // host:port
	Dir      string // the directory it serves buckets from
	bin      string
	cmd      *exec.Cmd
}

// Binary returns the gateway's path, or "" when there is none.
func Binary() string {
	if p := os.Getenv(EnvVar); p != "" {
		return p
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p
	}
	dir, _ := os.Getwd()
	for ; dir != filepath.Dir(dir); dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			p := filepath.Join(dir, "tools", "versitygw")
			if _, err := os.Stat(p); err == nil {
				return p
			}
			break
		}
	}
	return ""
}

// Start runs a gateway for the test, stopped when it ends. Without a
// binary the test is skipped with one loud line; a binary that does not
// start fails the test.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := Binary()
	if bin == "" {
		t.Skipf("SKIPPED: S3 backend not tested: no versitygw (set %s, or: GOBIN=$PWD/tools go install github.com/versity/versitygw/cmd/versitygw@v1.8.0)", EnvVar)
	}
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	s := &Server{Endpoint: addr, Dir: dir, bin: bin}
	t.Cleanup(s.Stop)
	s.Restart(t)
	return s
}

// Restart starts the gateway again on the same address and directory,
// after Stop: the store comes back with everything it held.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	cmd := exec.Command(s.bin, "--access", AccessKey, "--secret", SecretKey, "--port", s.Endpoint, "posix", s.Dir)
	log, _ := os.OpenFile(filepath.Join(s.Dir, ".versitygw.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start versitygw: %v", err)
	}
	s.cmd = cmd
	for i := 0; i < 100; i++ {
		if c, err := net.Dial("tcp", s.Endpoint); err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	out, _ := os.ReadFile(filepath.Join(s.Dir, ".versitygw.log"))
	t.Fatalf("versitygw did not listen on %s:\n%s", s.Endpoint, out)
}

// Stop ends the gateway (idempotent): tests use it to make the store
// unreachable.
func (s *Server) Stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Kill()
		s.cmd.Wait()
		s.cmd = nil
	}
}

// Bucket returns a fresh bucket name.
func Bucket() string {
	var b [6]byte
	rand.Read(b[:])
	return fmt.Sprintf("t-%s", hex.EncodeToString(b[:]))
}
