package registry_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	blobs3 "github.com/artifact-store/artifact-store/blobstore/s3"
	"github.com/artifact-store/artifact-store/blobstore/s3/s3test"
	"github.com/artifact-store/artifact-store/registry"
)

// TestS3Unavailable stops the object store under a running registry:
// requests that need it fail with 503 UNAVAILABLE after a bounded time,
// nothing is recorded, and the registry recovers by itself when the store
// comes back.
func TestS3Unavailable(t *testing.T) {
	gw, b := startS3(t, "", 2*time.Second)
	s := serveOn(t, nil, b)
	l := s.log

	before := randomBytes(t, registry.DefaultInlineMax+10_000) // a file in the store
	d := s.pushBlob("r", before)
	expect(t, s.do("GET", "/v2/r/blobs/"+d, nil), 200)
	small := randomBytes(t, 10_000) // kept in the log
	ds := s.pushBlob("r", small)

	gw.Stop()
	// What the log keeps needs no store: it is still served.
	if r := s.do2("GET", "/v2/r/blobs/"+ds, nil); r.StatusCode != 200 || !bytes.Equal(r.body, small) {
		t.Fatalf("GET of a blob kept in the log, with the store down: %d %s", r.StatusCode, r.body)
	}
	head, _ := l.Head(t.Context())
	during := randomBytes(t, registry.DefaultInlineMax+10_000)
	// Opening a session costs the store nothing (ADR 0018); its first
	// bytes need it.
	r := s.do("POST", "/v2/r/blobs/uploads/", nil)
	expect(t, r, http.StatusAccepted)
	for _, req := range []struct{ method, path string }{
		{"GET", "/v2/r/blobs/" + d},
		{"POST", "/v2/r/blobs/uploads/?digest=" + sha256Of(during)},
		{"PATCH", r.Header.Get("Location")},
	} {
		start := time.Now()
		r := s.do2(req.method, req.path, during)
		if r.StatusCode != 503 || r.errCode() != "UNAVAILABLE" {
			t.Fatalf("%s %s with the store down: %d %s", req.method, req.path, r.StatusCode, r.body)
		}
		if took := time.Since(start); took > 30*time.Second {
			t.Fatalf("%s %s took %v to fail", req.method, req.path, took)
		}
	}
	if after, _ := l.Head(t.Context()); after != head {
		t.Fatalf("%d events recorded while the store was down", after-head)
	}
	expect(t, s.do("HEAD", "/v2/r/blobs/"+sha256Of(during), nil), 404)

	gw.Restart(t)
	expect(t, s.do("GET", "/v2/r/blobs/"+d, nil), 200)
	s.pushBlob("r", during)
	expect(t, s.do("GET", "/v2/r/blobs/"+sha256Of(during), nil), 200)
}

// TestRedirectPulls: with RedirectPulls a blob GET is a redirect to a
// presigned URL of the gateway, which serves the bytes (and ranges).
func TestRedirectPulls(t *testing.T) {
	gw, b := startS3(t, "", 0)
	s := serveOn(t, nil, b, func(o *registry.Options) { o.RedirectPulls = time.Minute })
	data := randomBytes(t, 200_000)
	d := s.pushBlob("r", data)
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(s.url + "/v2/r/blobs/" + d)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusTemporaryRedirect || !strings.Contains(loc, gw.Endpoint) || !strings.Contains(loc, "X-Amz-Signature") {
		t.Fatalf("GET: %d, Location %q", resp.StatusCode, loc)
	}
	got := s.do("GET", "/v2/r/blobs/"+d, nil) // the default client follows
	if got.StatusCode != 200 || !bytes.Equal(got.body, data) {
		t.Fatalf("following the redirect: %d, %d bytes", got.StatusCode, len(got.body))
	}
	part := s.do("GET", "/v2/r/blobs/"+d, nil, "Range: bytes=10-19")
	if part.StatusCode != 206 || !bytes.Equal(part.body, data[10:20]) {
		t.Fatalf("ranged GET through the redirect: %d", part.StatusCode)
	}
	// HEAD is answered by the registry itself.
	if h := s.do("HEAD", "/v2/r/blobs/"+d, nil); h.StatusCode != 200 || h.ContentLength != int64(len(data)) {
		t.Fatalf("HEAD: %d", h.StatusCode)
	}
}

// startS3 starts an S3 gateway for t and returns it with a backend on a
// fresh bucket of it, under prefix; timeout bounds each request to it (0:
// the backend's default).
func startS3(t testing.TB, prefix string, timeout time.Duration) (*s3test.Server, *blobs3.Backend) {
	t.Helper()
	gw := s3test.Start(t)
	b, err := blobs3.New(context.Background(), blobs3.Options{Endpoint: gw.Endpoint, AccessKey: s3test.AccessKey, SecretKey: s3test.SecretKey,
		Region: "us-east-1", Bucket: s3test.Bucket(), Prefix: prefix, PathStyle: true, Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	return gw, b
}
