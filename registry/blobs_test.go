package registry_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"testing"
	"time"

	"github.com/artifact-store/artifact-store/blobstore"
	"github.com/artifact-store/artifact-store/eventlog"
	"github.com/artifact-store/artifact-store/registry"
)

// TestBLAKE3Alias: a blob's BLAKE3 digest works wherever a blob digest is
// accepted: GET, HEAD, mount, the digest of a push, and delete.
func TestBLAKE3Alias(t *testing.T) { forBackends(t, testBLAKE3Alias) }

func testBLAKE3Alias(t *testing.T, b backend) {
	s := b.server(t)
	data := randomBytes(t, 100_000)
	s.pushBlob("r", data)
	b3 := blake3Of(data)

	r := s.do("GET", "/v2/r/blobs/"+b3, nil)
	expect(t, r, 200)
	if string(r.body) != string(data) || r.Header.Get("Docker-Content-Digest") != b3 {
		t.Fatalf("GET by blake3: %d bytes, digest header %q", len(r.body), r.Header.Get("Docker-Content-Digest"))
	}
	r = s.do("HEAD", "/v2/r/blobs/"+b3, nil)
	expect(t, r, 200)
	if r.ContentLength != int64(len(data)) {
		t.Fatalf("HEAD Content-Length %d", r.ContentLength)
	}
	r = s.do("GET", "/v2/r/blobs/"+b3, nil, "Range: bytes=10-19")
	expect(t, r, 206)
	if string(r.body) != string(data[10:20]) {
		t.Fatal("range by blake3 returned wrong bytes")
	}
	// Mount by BLAKE3, from a repository; without from, only what the
	// target holds mounts (TestMountWithoutFrom has the rest).
	expect(t, s.do("POST", "/v2/other/blobs/uploads/?mount="+b3+"&from=r", nil), 201)
	expect(t, s.do("GET", "/v2/other/blobs/"+sha256Of(data), nil), 200)
	expect(t, s.do("POST", "/v2/other/blobs/uploads/?mount="+b3, nil), 201)
	expect(t, s.do("POST", "/v2/third/blobs/uploads/?mount="+b3, nil), 202)
	// Push addressed by BLAKE3, monolithic and chunked.
	fresh := randomBytes(t, 5000)
	expect(t, s.do("POST", "/v2/r/blobs/uploads/?digest="+blake3Of(fresh), fresh), 201)
	expect(t, s.do("GET", "/v2/r/blobs/"+sha256Of(fresh), nil), 200)
	fresh2 := randomBytes(t, 5000)
	loc := s.do("POST", "/v2/r/blobs/uploads/", nil).Header.Get("Location")
	expect(t, s.do("PATCH", loc, fresh2), 202)
	expect(t, s.do("PUT", loc+"?digest="+blake3Of(fresh2), nil), 201)
	expect(t, s.do("HEAD", "/v2/r/blobs/"+blake3Of(fresh2), nil), 200)
	// Delete by BLAKE3 removes the blob from the repository under every digest.
	expect(t, s.do("DELETE", "/v2/r/blobs/"+b3, nil), 202)
	expect(t, s.do("HEAD", "/v2/r/blobs/"+sha256Of(data), nil), 404)
	expect(t, s.do("HEAD", "/v2/other/blobs/"+sha256Of(data), nil), 200)
}

func TestSHA512(t *testing.T) { forBackends(t, testSHA512) }

func testSHA512(t *testing.T, b backend) {
	s := b.server(t)
	data := randomBytes(t, 70_000)
	d512 := sha512Of(data)
	expect(t, s.do("POST", "/v2/r/blobs/uploads/?digest="+d512, data), 201)
	r := s.do("GET", "/v2/r/blobs/"+d512, nil)
	expect(t, r, 200)
	if string(r.body) != string(data) || r.Header.Get("Docker-Content-Digest") != d512 {
		t.Fatal("GET by sha512 wrong")
	}
	// The same bytes answer to their sha256 and blake3 too: stored once.
	expect(t, s.do("HEAD", "/v2/r/blobs/"+sha256Of(data), nil), 200)
	expect(t, s.do("HEAD", "/v2/r/blobs/"+blake3Of(data), nil), 200)
	// A chunked sha512 push of bytes first stored by sha256 adds the alias.
	other := randomBytes(t, 1000)
	s.pushBlob("r", other)
	loc := s.do("POST", "/v2/r/blobs/uploads/", nil).Header.Get("Location")
	expect(t, s.do("PATCH", loc, other), 202)
	expect(t, s.do("PUT", loc+"?digest="+sha512Of(other), nil), 201)
	expect(t, s.do("HEAD", "/v2/r/blobs/"+sha512Of(other), nil), 200)
}

func TestBlobDeduplicatedAcrossRepositories(t *testing.T) {
	forBackends(t, testBlobDeduplicatedAcrossRepositories)
}

// Content is stored once however many repositories push it: a large blob
// as one file, a small one (kept in the log, ADR 0016) as one contents row.
func testBlobDeduplicatedAcrossRepositories(t *testing.T, b backend) {
	s := b.server(t)
	small, large := randomBytes(t, 4096), randomBytes(t, registry.DefaultInlineMax+1)
	for _, repo := range []string{"a", "b", "c/d"} {
		s.pushBlob(repo, small)
		s.pushBlob(repo, large)
	}
	var stored []string
	s.blobs.Walk(t.Context(), func(b blobstore.BlobInfo) error { stored = append(stored, b.Key.String()); return nil })
	tiers := map[string]string{}
	s.log.Blobs(t.Context(), func(b eventlog.Blob) error { tiers[b.SHA256] = b.Tier; return nil })
	if len(stored) != 1 || stored[0] != sha256Of(large) {
		t.Fatalf("3 pushes each of a small and a large blob: files %v; want the large one's only", stored)
	}
	want := map[string]string{sha256Of(small): eventlog.TierInline, sha256Of(large): eventlog.TierHot}
	if !reflect.DeepEqual(tiers, want) {
		t.Fatalf("3 pushes each of a small and a large blob: recorded %v; want %v", tiers, want)
	}
	if got, err := s.log.Content(t.Context(), sha256Of(small)); err != nil || !bytes.Equal(got, small) {
		t.Fatalf("the log keeps %d bytes of the small blob, %v", len(got), err)
	}
	if n := contentEvents(t, s, sha256Of(small)); n != 1 {
		t.Fatalf("the small blob's bytes are in %d events; want 1 (later pushes find it)", n)
	}
}

// contentEvents counts the blob.committed events that carry key's bytes.
func contentEvents(t testing.TB, s *testServer, key string) int {
	t.Helper()
	page, err := s.log.Read(context.Background(), eventlog.Query{Types: []string{string(eventlog.TypeBlobCommitted)}, Limit: 100_000})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range page.Events {
		var p eventlog.BlobCommitted
		if err := e.Decode(&p); err != nil {
			t.Fatal(err)
		}
		if p.SHA256 == key && p.Content != nil {
			n++
		}
	}
	return n
}

func TestUploadStatusAndCancel(t *testing.T) { forBackends(t, testUploadStatusAndCancel) }

func testUploadStatusAndCancel(t *testing.T, b backend) {
	s := b.server(t)
	r := s.do("POST", "/v2/r/blobs/uploads/", nil)
	expect(t, r, 202)
	loc := r.Header.Get("Location")
	if r.Header.Get("Range") != "0-0" || r.Header.Get("Docker-Upload-UUID") == "" {
		t.Fatalf("start headers: %v", r.Header)
	}
	expect(t, s.do("PATCH", loc, []byte("12345")), 202)
	st := s.do("GET", loc, nil)
	expect(t, st, 204)
	if st.Header.Get("Range") != "0-4" {
		t.Fatalf("Range %q", st.Header.Get("Range"))
	}
	expect(t, s.do("GET", "/v2/elsewhere/blobs/uploads/"+st.Header.Get("Docker-Upload-UUID"), nil), 404, "BLOB_UPLOAD_UNKNOWN")
	expect(t, s.do("DELETE", loc, nil), 204)
	expect(t, s.do("GET", loc, nil), 404, "BLOB_UPLOAD_UNKNOWN")
	expect(t, s.do("PATCH", loc, []byte("x")), 404, "BLOB_UPLOAD_UNKNOWN")
}

// TestUploadStatusDuringACutChunk: a client whose chunk is cut asks for
// the upload's status at once, before the server has seen the cut. The
// answer must be what the server kept once the cut chunk is given back,
// not the bytes that chunk had brought so far: a resume from there would
// be refused (416) and send a chunk again.
func TestUploadStatusDuringACutChunk(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		s := b.server(t)
		loc := s.do("POST", "/v2/r/blobs/uploads/", nil).Header.Get("Location")
		expect(t, s.do("PATCH", loc, make([]byte, 1024)), 202)
		pr, pw := io.Pipe()
		req, _ := http.NewRequest("PATCH", s.url+loc, pr)
		req.Header.Set("Content-Range", fmt.Sprintf("1024-%d", 1024+2<<20-1))
		req.ContentLength = 2 << 20
		patched := make(chan error, 1)
		go func() {
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				resp.Body.Close()
			}
			patched <- err
		}()
		if _, err := pw.Write(make([]byte, 1<<20)); err != nil {
			t.Fatal(err)
		}
		// The server holds some of the chunk now; the status is asked
		// while the chunk is still open, and the chunk is cut after.
		time.Sleep(100 * time.Millisecond)
		status := make(chan response, 1)
		go func() { status <- s.do("GET", loc, nil) }()
		time.Sleep(100 * time.Millisecond)
		pw.CloseWithError(errors.New("cut"))
		<-patched
		st := <-status
		expect(t, st, 204)
		if got := st.Header.Get("Range"); got != "0-1023" {
			t.Fatalf("status during a cut chunk: Range %q, want 0-1023 (what the server kept)", got)
		}
		// The resume from there is taken.
		expect(t, s.do("PATCH", loc, make([]byte, 10), "Content-Range: 1024-1033"), 202)
	})
}

func TestUploadExpiry(t *testing.T) { forBackends(t, testUploadExpiry) }

func testUploadExpiry(t *testing.T, b backend) {
	s := b.server(t)
	loc := s.do("POST", "/v2/r/blobs/uploads/", nil).Header.Get("Location")
	expect(t, s.do("PATCH", loc, []byte("abandoned")), 202)
	// Not yet stale.
	if n, err := s.reg.ExpireUploads(t.Context(), time.Now()); err != nil || n != 0 {
		t.Fatalf("expired %d, %v before the TTL", n, err)
	}
	n, err := s.reg.ExpireUploads(t.Context(), time.Now().Add(2*time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("expired %d, %v; want 1", n, err)
	}
	expect(t, s.do("GET", loc, nil), 404, "BLOB_UPLOAD_UNKNOWN")
	if ups, _ := s.blobs.ListUploads(t.Context()); len(ups) != 0 {
		t.Fatalf("staged bytes survive expiry: %v", ups)
	}
	if ups, _ := s.log.Uploads(t.Context()); len(ups) != 0 {
		t.Fatalf("session survives expiry: %v", ups)
	}
}

// A blob longer than the store keeps in the page cache is streamed from
// the disk (ADR 0022), through the OCI route and the native one: the same
// bytes and headers as any other blob, and ranges and conditions still
// answered as before.
func TestLargeBlobPull(t *testing.T) {
	s := newServer(t)
	p := randomBytes(t, 32<<20+4097) // past fs.Options.CacheFirst's default
	d := s.pushBlob("r", p)
	for _, path := range []string{"/v2/r/blobs/" + d, "/api/v1/repositories/r/-/blobs/" + d} {
		r := s.do("GET", path, nil)
		expect(t, r, http.StatusOK)
		if !bytes.Equal(r.body, p) || r.ContentLength != int64(len(p)) || r.Header.Get("Accept-Ranges") != "bytes" {
			t.Fatalf("GET %s: %d bytes (equal %v), Content-Length %d, Accept-Ranges %q", path, len(r.body), bytes.Equal(r.body, p), r.ContentLength, r.Header.Get("Accept-Ranges"))
		}
		r = s.do("GET", path, nil, "Range: bytes=33554000-33554431")
		expect(t, r, http.StatusPartialContent)
		if !bytes.Equal(r.body, p[33554000:33554432]) {
			t.Fatalf("GET %s, a range: %d bytes, not the range's", path, len(r.body))
		}
		expect(t, s.do("GET", path, nil, `If-None-Match: "`+d+`"`), http.StatusNotModified)
	}
}

// A client that stops reading a blob is cut once a write has waited the
// body idle timeout, as a stalled request body is: it gets fewer bytes
// than Content-Length, and the server holds nothing for it. So on every
// way a blob's body goes out: streamed past the page cache (48 MiB),
// sendfile from it (24 MiB), a range, and a native file's download.
func TestBlobPullStalled(t *testing.T) {
	s := newServer(t, func(o *registry.Options) { o.BodyIdleTimeout = 300 * time.Millisecond })
	big, medium := randomBytes(t, 48<<20), randomBytes(t, 24<<20)
	db, dm := s.pushBlob("r", big), s.pushBlob("r", medium)
	u, _ := url.Parse(s.url)
	for _, c := range []struct {
		name, path, header string
		size               int64
	}{
		{"streamed", "/v2/r/blobs/" + db, "", int64(len(big))},
		{"sendfile", "/v2/r/blobs/" + dm, "", int64(len(medium))},
		{"range", "/v2/r/blobs/" + db, "Range: bytes=1-40000000\r\n", 40000000},
		{"native", "/api/v1/repositories/r/-/blobs/" + dm, "", int64(len(medium))},
	} {
		conn, err := net.Dial("tcp", u.Host)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n", c.path, u.Host, c.header)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil || resp.StatusCode >= 300 || resp.ContentLength != c.size {
			t.Fatalf("%s: %v, Content-Length %d, err %v; want %d bytes", c.name, resp.Status, resp.ContentLength, err, c.size)
		}
		time.Sleep(2 * time.Second) // not reading: the socket's buffers fill, the server's write waits
		conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		n, _ := io.Copy(io.Discard, resp.Body)
		conn.Close()
		if n >= c.size {
			t.Errorf("%s: a client that stopped reading for 2 s still got all %d bytes; want the response cut after 300 ms", c.name, n)
		}
	}
	for _, p := range [][]byte{big, medium} { // and the next pulls are whole
		if r := s.do("GET", "/v2/r/blobs/"+sha256Of(p), nil); r.StatusCode != http.StatusOK || !bytes.Equal(r.body, p) {
			t.Fatalf("a pull after the cut ones: %d, %d bytes", r.StatusCode, len(r.body))
		}
	}
}
