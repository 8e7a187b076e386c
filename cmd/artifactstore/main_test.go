package main_test

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/artifact-store/artifact-store/eventlog/postgres/pgtest"
)

// These tests run the real binary: they kill it, restart it, and run the
// maintenance commands against its data directory.

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "artifactstore-bin")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "artifactstore")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type server struct {
	cmd  *exec.Cmd
	addr string
	mu   sync.Mutex // guards logs, which a goroutine fills from the server's stderr
	logs *bytes.Buffer
}

func freeAddr(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// start runs "serve" and waits for its "listening" log line.
func start(t testing.TB, data, addr string) *server {
	t.Helper()
	return startWith(t, data, addr)
}

// startWith is start with more serve flags.
func startWith(t testing.TB, data, addr string, flags ...string) *server {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"serve", "--addr", addr, "--data", data}, flags...)...)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{cmd: cmd, addr: addr, logs: &bytes.Buffer{}}
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			s.mu.Lock()
			s.logs.WriteString(sc.Text() + "\n")
			s.mu.Unlock()
			if strings.Contains(sc.Text(), "msg=listening") && strings.Contains(sc.Text(), " addr="+addr) {
				ready <- true
			}
		}
		close(ready)
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatalf("server exited before listening:\n%s", s.logs)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("server did not log its address:\n%s", s.logs)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return s
}

func (s *server) url(path string) string { return "http://" + s.addr + path }

func request(t *testing.T, method, url string, body io.Reader, headers ...string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(method, url, body)
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func random(t *testing.T, n int) []byte {
	p := make([]byte, n)
	rand.Read(p)
	return p
}

func sha(p []byte) string { return fmt.Sprintf("sha256:%x", sha256.Sum256(p)) }

// TestUploadSurvivesKill9 kills the server between two PATCHes of a
// chunked upload and finishes the upload after a restart.
func TestUploadSurvivesKill9(t *testing.T) {
	data, addr := t.TempDir(), freeAddr(t)
	blob := random(t, 3<<20)
	s := start(t, data, addr)
	r := request(t, "POST", s.url("/v2/resume/me/blobs/uploads/"), nil)
	if r.StatusCode != 202 {
		t.Fatalf("POST: %d", r.StatusCode)
	}
	loc := r.Header.Get("Location")
	first := 1 << 20
	r = request(t, "PATCH", s.url(loc), bytes.NewReader(blob[:first]), fmt.Sprintf("Content-Range: 0-%d", first-1))
	if r.StatusCode != 202 {
		t.Fatalf("PATCH 1: %d", r.StatusCode)
	}
	s.cmd.Process.Signal(syscall.SIGKILL)
	s.cmd.Wait()

	s = start(t, data, addr)
	r = request(t, "GET", s.url(loc), nil)
	if r.StatusCode != 204 || r.Header.Get("Range") != fmt.Sprintf("0-%d", first-1) {
		t.Fatalf("status after restart: %d, Range %q", r.StatusCode, r.Header.Get("Range"))
	}
	r = request(t, "PATCH", s.url(loc), bytes.NewReader(blob[first:]), fmt.Sprintf("Content-Range: %d-%d", first, len(blob)-1))
	if r.StatusCode != 202 {
		t.Fatalf("PATCH 2: %d", r.StatusCode)
	}
	r = request(t, "PUT", s.url(loc+"?digest="+sha(blob)), nil)
	if r.StatusCode != 201 {
		b, _ := io.ReadAll(r.Body)
		t.Fatalf("PUT: %d %s", r.StatusCode, b)
	}
	r = request(t, "GET", s.url("/v2/resume/me/blobs/"+sha(blob)), nil)
	got, _ := io.ReadAll(r.Body)
	if !bytes.Equal(got, blob) {
		t.Fatalf("blob after resume: %d bytes, equal=%v", len(got), bytes.Equal(got, blob))
	}
}

// slowReader yields its bytes in small pieces with pauses, so a request is
// still in flight when the server is told to stop.
type slowReader struct {
	p     []byte
	pause time.Duration
}

func (s *slowReader) Read(b []byte) (int, error) {
	if len(s.p) == 0 {
		return 0, io.EOF
	}
	time.Sleep(s.pause)
	n := copy(b[:min(len(b), 1000)], s.p)
	s.p = s.p[n:]
	return n, nil
}

// TestGracefulShutdown sends SIGTERM during an upload: the upload
// completes, new connections are refused, and the process exits cleanly.
func TestGracefulShutdown(t *testing.T) {
	data, addr := t.TempDir(), freeAddr(t)
	s := start(t, data, addr)
	blob := random(t, 20_000)
	done := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("POST", s.url("/v2/g/blobs/uploads/?digest="+sha(blob)), &slowReader{blob, 20 * time.Millisecond})
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- -1
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	// A live event stream must not hold the shutdown open.
	streamReq, _ := http.NewRequest("GET", s.url("/api/v1/events"), nil)
	streamReq.Header.Set("Accept", "text/event-stream")
	stream, err := http.DefaultClient.Do(streamReq)
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Body.Close()
	time.Sleep(100 * time.Millisecond)
	s.cmd.Process.Signal(syscall.SIGTERM)
	if code := <-done; code != 201 {
		t.Fatalf("in-flight upload ended with %d during shutdown", code)
	}
	exited := make(chan error, 1)
	go func() { exited <- s.cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, s.logs)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("server still running 20s after SIGTERM with an event stream open\n%s", s.logs)
	}
	if _, err := net.Dial("tcp", addr); err == nil {
		t.Fatal("still accepting connections after shutdown")
	}
	// The blob the in-flight request pushed is there after a restart.
	s = start(t, data, addr)
	if r := request(t, "HEAD", s.url("/v2/g/blobs/"+sha(blob)), nil); r.StatusCode != 200 {
		t.Fatalf("blob pushed during shutdown: HEAD %d", r.StatusCode)
	}
}

func run(t *testing.T, args ...string) (string, error) {
	out, err := exec.Command(binary, args...).CombinedOutput()
	return string(out), err
}

// TestReplayAndVerify runs the maintenance commands on a real data
// directory (replay and migrate refused beside a live server, which holds
// the directory), then corrupts a blob and expects verify to say which.
func TestReplayAndVerify(t *testing.T) {
	data, addr := t.TempDir(), freeAddr(t)
	s := start(t, data, addr)
	blob := random(t, 100_000) // a file: larger than the log keeps
	if r := request(t, "POST", s.url("/v2/v/blobs/uploads/?digest="+sha(blob)), bytes.NewReader(blob)); r.StatusCode != 201 {
		t.Fatalf("push: %d", r.StatusCode)
	}
	for _, cmd := range []string{"replay", "migrate"} {
		if out, err := run(t, cmd, "--data", data); err == nil || !strings.Contains(out, "in use") {
			t.Fatalf("%s under a live server: %v %s", cmd, err, out)
		}
	}
	if out, err := run(t, "verify", "--data", data); err != nil || !strings.Contains(out, "0 problems") {
		t.Fatalf("verify beside a live server: %v %s", err, out)
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	s.cmd.Wait()

	if out, err := run(t, "migrate", "--data", data); err != nil || !strings.Contains(out, "up to date") {
		t.Fatalf("migrate of a stopped server's directory: %v %s", err, out)
	}
	out, err := run(t, "replay", "--data", data)
	if err != nil || !strings.Contains(out, "replayed 2 events") {
		t.Fatalf("replay: %v %s", err, out)
	}
	out, err = run(t, "verify", "--data", data)
	if err != nil || !strings.Contains(out, "checked 2 events and 1 blobs, views at event 2; 0 problems") {
		t.Fatalf("verify clean store: %v %s", err, out)
	}
	hex := sha(blob)[7:]
	path := filepath.Join(data, "blobs", "sha256", hex[:2], hex)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte{blob[100] ^ 0xff}, 100)
	f.Close()
	out, err = run(t, "verify", "--data", data)
	if err == nil || !strings.Contains(out, "PROBLEM: blob "+sha(blob)) {
		t.Fatalf("verify of a corrupted blob: %v %s", err, out)
	}
}

// TestMigrateAndNoMigrate: a server told not to migrate refuses a fresh
// PostgreSQL schema with a clear message; migrate applies the schema once.
func TestMigrateAndNoMigrate(t *testing.T) {
	dsn := pgtest.DSN(t)
	data := t.TempDir()
	out, err := run(t, "serve", "--db", dsn, "--data", data, "--no-migrate", "--addr", freeAddr(t))
	if err == nil || !strings.Contains(out, "refusing to start") || !strings.Contains(out, "artifactstore migrate") {
		t.Fatalf("serve --no-migrate on an empty schema: %v\n%s", err, out)
	}
	out, err = run(t, "migrate", "--db", dsn)
	if err != nil || !strings.Contains(out, "applied 0001_init") {
		t.Fatalf("migrate: %v %s", err, out)
	}
	out, err = run(t, "migrate", "--db", dsn)
	if err != nil || !strings.Contains(out, "up to date") {
		t.Fatalf("second migrate: %v %s", err, out)
	}
	addr := freeAddr(t)
	cmd := exec.Command(binary, "serve", "--db", dsn, "--data", data, "--no-migrate", "--addr", addr)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	for i := 0; i < 100; i++ {
		if resp, err := http.Get("http://" + addr + "/v2/"); err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("server on a migrated schema did not start")
}
