package main_test

import (
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/artifact-store/artifact-store/blobstore/s3/s3test"
)

// patternReader yields size bytes of a fixed pseudo-random 1 MiB pattern,
// so the client side costs no memory either.
type patternReader struct {
	pattern []byte
	left    int64
	off     int
}

func newPattern(size int64) *patternReader {
	p := make([]byte, 1<<20)
	rand.New(rand.NewSource(1)).Read(p)
	return &patternReader{pattern: p, left: size}
}

func (r *patternReader) Read(b []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	n := copy(b, r.pattern[r.off:])
	if int64(n) > r.left {
		n = int(r.left)
	}
	r.off = (r.off + n) % len(r.pattern)
	r.left -= int64(n)
	return n, nil
}

// peakRSS reads the process's high-water resident set size in MiB.
func peakRSS(b *testing.B, pid int) float64 {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			kb, _ := strconv.Atoi(strings.Fields(line)[1])
			return float64(kb) / 1024
		}
	}
	b.Fatal("no VmHWM")
	return 0
}

// BenchmarkPushPullLargeBlob pushes and pulls one large blob (1 GiB, or
// BENCH_BLOB_MIB) through the real server, with blobs on the filesystem
// and in S3 (a Versity gateway on loopback), and reports throughput and
// the server's peak RSS, which must not grow with the blob.
func BenchmarkPushPullLargeBlob(b *testing.B) {
	b.Run("fs", func(b *testing.B) { benchLargeBlob(b) })
	b.Run("s3", func(b *testing.B) {
		gw := s3test.Start(b)
		benchLargeBlob(b, "--storage", "s3://"+s3test.Bucket()+"/bench", "--s3-endpoint", "http://"+gw.Endpoint,
			"--s3-access-key", s3test.AccessKey, "--s3-secret-key", s3test.SecretKey, "--s3-path-style")
	})
}

func benchLargeBlob(b *testing.B, flags ...string) {
	mib := int64(1024)
	if v, err := strconv.Atoi(os.Getenv("BENCH_BLOB_MIB")); err == nil {
		mib = int64(v)
	}
	size := mib << 20
	h := sha256.New()
	io.Copy(h, newPattern(size))
	d := fmt.Sprintf("sha256:%x", h.Sum(nil))
	for i := 0; i < b.N; i++ {
		data := b.TempDir()
		s := startWith(b, data, freeAddr(b), flags...)
		start := time.Now()
		req, _ := http.NewRequest("POST", s.url("/v2/bench/big/blobs/uploads/?digest="+d), newPattern(size))
		req.ContentLength = size
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 201 {
			b.Fatalf("push: %v %v", err, resp)
		}
		resp.Body.Close()
		push := time.Since(start)
		start = time.Now()
		resp, err = http.Get(s.url("/v2/bench/big/blobs/" + d))
		if err != nil || resp.StatusCode != 200 {
			b.Fatalf("pull: %v %v", err, resp)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		pull := time.Since(start)
		if n != size {
			b.Fatalf("pulled %d bytes of %d", n, size)
		}
		b.ReportMetric(float64(size)/push.Seconds()/1e6, "push-MB/s")
		b.ReportMetric(float64(size)/pull.Seconds()/1e6, "pull-MB/s")
		b.ReportMetric(peakRSS(b, s.cmd.Process.Pid), "server-peak-RSS-MiB")
		s.cmd.Process.Kill()
		s.cmd.Wait()
	}
}
