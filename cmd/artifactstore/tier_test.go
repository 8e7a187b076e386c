package main_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/artifact-store/artifact-store/blobstore/s3/s3test"
)

// TestTierKilledMidMove kills `artifactstore tier` at different moments of
// moving blobs to the cold tier, then checks that verify is clean and that
// a server serves every blob, whatever was interrupted.
func TestTierKilledMidMove(t *testing.T) {
	gw := s3test.Start(t)
	data, addr := t.TempDir(), freeAddr(t)
	cold := []string{"--cold-storage", "s3://" + s3test.Bucket() + "/cold", "--s3-endpoint", "http://" + gw.Endpoint,
		"--s3-access-key", s3test.AccessKey, "--s3-secret-key", s3test.SecretKey, "--s3-path-style"}
	s := startWith(t, data, addr, cold...)
	blobs := map[string][]byte{}
	for i := 0; i < 24; i++ {
		b := random(t, 200_000+i*10_000)
		r := request(t, "POST", s.url("/v2/tiered/blobs/uploads/?digest="+sha(b)), bytes.NewReader(b))
		if r.StatusCode != 201 {
			t.Fatalf("push: %d", r.StatusCode)
		}
		blobs[sha(b)] = b
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	s.cmd.Wait()

	for _, delay := range []time.Duration{30 * time.Millisecond, 80 * time.Millisecond, 150 * time.Millisecond, 300 * time.Millisecond} {
		args := append([]string{"tier", "--data", data, "--tier-larger-than", "1", "--tier-grace", "0s"}, cold...)
		cmd := exec.Command(binary, args...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(delay)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		vout, err := run(t, append([]string{"verify", "--data", data}, cold...)...)
		if err != nil || !strings.Contains(vout, " 0 problems") {
			t.Fatalf("verify after killing tier at %v: %v\n%s", delay, err, vout)
		}
		t.Logf("killed tier after %v; verify: %s", delay, strings.TrimSpace(vout))
	}
	// A complete pass finishes the job; then every blob is served.
	args := append([]string{"tier", "--data", data, "--tier-larger-than", "1", "--tier-grace", "0s"}, cold...)
	if out, err := run(t, args...); err != nil {
		t.Fatalf("tier: %v\n%s", err, out)
	}
	s = startWith(t, data, addr, cold...)
	for d, b := range blobs {
		r := request(t, "GET", s.url("/v2/tiered/blobs/"+d), nil)
		got, _ := io.ReadAll(r.Body)
		if r.StatusCode != http.StatusOK || !bytes.Equal(got, b) {
			t.Fatalf("blob %s after interrupted moves: %d, %d bytes", d, r.StatusCode, len(got))
		}
	}
	vout, err := run(t, append([]string{"verify", "--data", data}, cold...)...)
	if err != nil || !strings.Contains(vout, fmt.Sprintf("and %d blobs, views at event ", len(blobs))) || !strings.Contains(vout, "; 0 problems") {
		t.Fatalf("final verify: %v\n%s", err, vout)
	}
}
