package registry_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/artifact-store/artifact-store/blobstore"
	"github.com/artifact-store/artifact-store/digest"
	"github.com/artifact-store/artifact-store/eventlog"
	"github.com/artifact-store/artifact-store/registry"
)

// storedFiles lists the keys of the files in the server's hot store.
func storedFiles(t testing.TB, s *testServer) []string {
	t.Helper()
	var keys []string
	if err := s.blobs.Walk(context.Background(), func(b blobstore.BlobInfo) error {
		keys = append(keys, b.Key.String())
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return keys
}

// TestContentKeptInTheLog walks every read path over content the log
// keeps (ADR 0016), on each backend: a small blob pushed in one request,
// a manifest and a native file are served by every route and digest that
// serve a stored blob, with no file written; the same content pushed
// through a session (a file) stays served; verify is clean and replay
// rebuilds the same views.
func TestContentKeptInTheLog(t *testing.T) { forBackends(t, testContentKeptInTheLog) }

func testContentKeptInTheLog(t *testing.T, b backend) {
	s := b.server(t)
	data := randomBytes(t, 5000)
	d := s.pushBlob("r", data)
	m, md := s.pushImage("r", "v1", "")
	expect(t, s.do("PUT", "/api/v1/repositories/r/-/versions/n1/files/a.txt", []byte("hello")), http.StatusCreated)
	if files := storedFiles(t, s); len(files) != 0 {
		t.Fatalf("small content written as files: %v", files)
	}
	for _, key := range []string{d, md, sha256Of([]byte("hello"))} {
		if got := s.tier(key); got != eventlog.TierInline {
			t.Fatalf("tier of %s: %q, want inline", key, got)
		}
	}

	// Blob routes, by each digest.
	for _, dg := range []string{d, blake3Of(data)} {
		r := s.do("GET", "/v2/r/blobs/"+dg, nil)
		if r.StatusCode != 200 || !bytes.Equal(r.body, data) || r.Header.Get("Docker-Content-Digest") != dg {
			t.Fatalf("GET %s: %d, %d bytes, digest %q", dg, r.StatusCode, len(r.body), r.Header.Get("Docker-Content-Digest"))
		}
	}
	if r := s.do("HEAD", "/v2/r/blobs/"+d, nil); r.StatusCode != 200 || r.Header.Get("Content-Length") != fmt.Sprint(len(data)) {
		t.Fatalf("HEAD: %d, Content-Length %q", r.StatusCode, r.Header.Get("Content-Length"))
	}
	if r := s.do("GET", "/v2/r/blobs/"+d, nil, "Range: bytes=100-199"); r.StatusCode != http.StatusPartialContent || !bytes.Equal(r.body, data[100:200]) {
		t.Fatalf("range: %d, %d bytes", r.StatusCode, len(r.body))
	}
	expect(t, s.do("GET", "/v2/r/blobs/"+d, nil, `If-None-Match: "`+d+`"`), http.StatusNotModified)
	if r := s.do("GET", "/api/v1/repositories/r/-/blobs/"+d, nil); r.StatusCode != 200 || !bytes.Equal(r.body, data) {
		t.Fatalf("native GET of the blob: %d, %d bytes", r.StatusCode, len(r.body))
	}
	// A repository that does not hold it is not served it.
	expect(t, s.do("GET", "/v2/other/blobs/"+d, nil), http.StatusNotFound, "BLOB_UNKNOWN")

	// Manifests, by tag and digest, through both APIs; native files.
	for _, ref := range []string{"v1", md} {
		r := s.do("GET", "/v2/r/manifests/"+ref, nil, "Accept: "+ociManifest)
		if r.StatusCode != 200 || !bytes.Equal(r.body, m) {
			t.Fatalf("GET manifest %s: %d %s", ref, r.StatusCode, r.body)
		}
	}
	expect(t, s.do("GET", "/api/v1/repositories/r/-/versions/v1", nil), http.StatusOK)
	if r := s.do("GET", "/api/v1/repositories/r/-/versions/n1/files/a.txt", nil); r.StatusCode != 200 || string(r.body) != "hello" {
		t.Fatalf("native file: %d %q", r.StatusCode, r.body)
	}

	// POST then one PUT ?digest= with the whole blob: kept in the log, and
	// the session's staging area goes; a wrong digest ends the session.
	whole := randomBytes(t, 3000)
	open := s.do("POST", "/v2/r/blobs/uploads/", nil)
	expect(t, open, http.StatusAccepted)
	loc := open.Header.Get("Location")
	wrong := s.do("PUT", withQuery(loc, "digest="+sha256Of(data)), whole)
	expect(t, wrong, http.StatusBadRequest, "DIGEST_INVALID")
	expect(t, s.do("GET", loc, nil), http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
	open = s.do("POST", "/v2/r/blobs/uploads/", nil)
	loc = open.Header.Get("Location")
	expect(t, s.do("PUT", withQuery(loc, "digest="+sha256Of(whole)), whole), http.StatusCreated)
	expect(t, s.do("GET", loc, nil), http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
	if r := s.do("GET", "/v2/r/blobs/"+sha256Of(whole), nil); r.StatusCode != 200 || !bytes.Equal(r.body, whole) || s.tier(sha256Of(whole)) != eventlog.TierInline {
		t.Fatalf("POST then PUT with the whole blob: GET %d, tier %q", r.StatusCode, s.tier(sha256Of(whole)))
	}
	if ups, err := s.blobs.ListUploads(context.Background()); err != nil || len(ups) != 0 {
		t.Fatalf("staging areas left: %v, %v", ups, err)
	}

	// The empty blob, pushed in one request: a file (an event cannot
	// carry empty content), served as such.
	expect(t, s.do("POST", "/v2/r/blobs/uploads/?digest="+sha256Of(nil), nil), http.StatusCreated)
	if r := s.do("GET", "/v2/r/blobs/"+sha256Of(nil), nil); r.StatusCode != 200 || len(r.body) != 0 || s.tier(sha256Of(nil)) != eventlog.TierHot {
		t.Fatalf("the empty blob: GET %d, %d bytes, tier %q", r.StatusCode, len(r.body), s.tier(sha256Of(nil)))
	}

	// The same content through an upload session (a file) in another
	// repository: the log keeps it still, and serves it.
	s.pushBlobInSession("q", data)
	if got := s.tier(d); got != eventlog.TierInline {
		t.Fatalf("tier after a session pushed the same content: %q", got)
	}
	if r := s.do("GET", "/v2/q/blobs/"+d, nil); r.StatusCode != 200 || !bytes.Equal(r.body, data) {
		t.Fatalf("GET from the second repository: %d", r.StatusCode)
	}

	rep, err := registry.Verify(context.Background(), s.log, s.blobs, registry.VerifyOptions{Scratch: scratchLog(t)})
	if err != nil || len(rep.Problems) != 0 || rep.Orphans != 0 {
		t.Fatalf("verify: %+v, %v", rep, err)
	}
	before := dump(t, s)
	if len(before["contents"]) != 9 {
		t.Fatalf("contents rows: %d; want the two blobs, the image's manifest, config and layer, the native file, its version's native manifest, derived manifest and empty config", len(before["contents"]))
	}
	if _, err := s.log.Replay(context.Background()); err != nil {
		t.Fatal(err)
	}
	if after := dump(t, s); !reflect.DeepEqual(after, before) {
		t.Fatal("views differ after replay")
	}
}

// TestInlineMax: content above Options.InlineMax, and any content with
// it negative, goes to the blob store as before; a later push of a small
// stored blob in one request moves it into the log (its file stays until
// the blob is collected, and goes then).
func TestInlineMax(t *testing.T) {
	s := newServer(t, func(o *registry.Options) { o.InlineMax = 1000 })
	small, over := randomBytes(t, 1000), randomBytes(t, 1001)
	ds, do := s.pushBlob("r", small), s.pushBlob("r", over)
	if s.tier(ds) != eventlog.TierInline || s.tier(do) != eventlog.TierHot {
		t.Fatalf("InlineMax 1000: tiers %q and %q, want inline and hot", s.tier(ds), s.tier(do))
	}

	off := newServer(t, func(o *registry.Options) { o.InlineMax = -1 })
	d := off.pushBlob("r", small)
	if off.tier(d) != eventlog.TierHot || !reflect.DeepEqual(storedFiles(t, off), []string{d}) {
		t.Fatalf("InlineMax -1: tier %q, files %v", off.tier(d), storedFiles(t, off))
	}

	// A file first (a session), then the same bytes in one request.
	s2 := newServer(t)
	d = s2.pushBlobInSession("r", small)
	if s2.tier(d) != eventlog.TierHot {
		t.Fatalf("pushed in a session: tier %q", s2.tier(d))
	}
	s2.pushBlob("q", small)
	if s2.tier(d) != eventlog.TierInline {
		t.Fatalf("pushed again in one request: tier %q, want inline", s2.tier(d))
	}
	for _, repo := range []string{"r", "q"} {
		if r := s2.do("GET", "/v2/"+repo+"/blobs/"+d, nil); r.StatusCode != 200 || !bytes.Equal(r.body, small) {
			t.Fatalf("GET from %s: %d", repo, r.StatusCode)
		}
	}
	for _, repo := range []string{"r", "q"} {
		expect(t, s2.do("DELETE", "/v2/"+repo+"/blobs/"+d, nil), http.StatusAccepted)
	}
	rep, err := s2.reg.CollectGarbage(context.Background(), registry.GCOptions{})
	if err != nil || len(rep.Swept) != 1 || !rep.Swept[0].InLog || rep.BytesFreed != 2*int64(len(small)) {
		t.Fatalf("collection: %+v, %v; want the blob swept from the log and its file (%d bytes each)", rep, err, len(small))
	}
	if files := storedFiles(t, s2); len(files) != 0 {
		t.Fatalf("files left after the collection: %v", files)
	}
	if _, err := s2.log.Content(context.Background(), d); err == nil {
		t.Fatal("the contents row survived the collection")
	}
}

// TestRedirectPullsServeContentKeptInTheLog: with RedirectPulls, a blob
// the log keeps has no object to presign: it is served directly.
func TestRedirectPullsServeContentKeptInTheLog(t *testing.T) {
	_, b := startS3(t, "", 0)
	s2 := serveOn(t, nil, b, func(o *registry.Options) { o.RedirectPulls = time.Minute })
	data := randomBytes(t, 100)
	d := s2.pushBlob("r", data)
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(s2.url + "/v2/r/blobs/" + d)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	body.ReadFrom(resp.Body)
	if resp.StatusCode != 200 || !bytes.Equal(body.Bytes(), data) {
		t.Fatalf("GET of content the log keeps, with redirects on: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if _, err := s2.blobs.Stat(context.Background(), digest.Digest(d)); err == nil {
		t.Fatal("the small blob was written to the object store")
	}
}
