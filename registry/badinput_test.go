package registry_test

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestBadInput sends the malformed requests a registry meets in the wild
// and checks each gets the spec's 4xx and error code, never a 5xx.
func TestBadInput(t *testing.T) { forBackends(t, testBadInput) }

func testBadInput(t *testing.T, b backend) {
	s := b.server(t)
	good := []byte("good blob")
	gd := s.pushBlob("r", good)
	_, md := s.pushImage("r", "v1", "")
	hex64 := strings.Repeat("a", 64)
	config := `{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` + gd + `","size":9}`
	missing := `{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:` + hex64 + `","size":5}`
	ct := "Content-Type: application/vnd.oci.image.manifest.v1+json"

	tests := []struct {
		name, method, path string
		body               []byte
		headers            []string
		status             int
		code               string
	}{
		{"uppercase name", "GET", "/v2/Repo/tags/list", nil, nil, 400, "NAME_INVALID"},
		{"dot-dot name", "GET", "/v2/a/../b/tags/list", nil, nil, 400, "NAME_INVALID"},
		{"double slash name", "GET", "/v2/a//b/manifests/x", nil, nil, 400, "NAME_INVALID"},
		{"over-long name", "GET", "/v2/" + strings.Repeat("a", 256) + "/tags/list", nil, nil, 400, "NAME_INVALID"},
		{"unknown repo tags", "GET", "/v2/nope/tags/list", nil, nil, 404, "NAME_UNKNOWN"},
		{"bad pagination", "GET", "/v2/r/tags/list?n=-1", nil, nil, 400, "PAGINATION_NUMBER_INVALID"},
		{"invalid tag", "PUT", "/v2/r/manifests/-bad", []byte("{}"), []string{ct}, 400, "MANIFEST_INVALID"},
		{"over-long tag", "GET", "/v2/r/manifests/" + strings.Repeat("t", 129), nil, nil, 400, "MANIFEST_INVALID"},
		{"malformed digest", "GET", "/v2/r/blobs/sha256:xyz", nil, nil, 400, "DIGEST_INVALID"},
		{"uppercase hex digest", "GET", "/v2/r/blobs/sha256:" + strings.ToUpper(hex64), nil, nil, 400, "DIGEST_INVALID"},
		{"unsupported algorithm", "GET", "/v2/r/blobs/md5:d41d8cd98f00b204e9800998ecf8427e", nil, nil, 400, "UNSUPPORTED"},
		{"unknown blob", "GET", "/v2/r/blobs/sha256:" + hex64, nil, nil, 404, "BLOB_UNKNOWN"},
		{"blob of another repo", "GET", "/v2/other/blobs/" + gd, nil, nil, 404, "BLOB_UNKNOWN"},
		{"unknown manifest", "GET", "/v2/r/manifests/sha256:" + hex64, nil, nil, 404, "MANIFEST_UNKNOWN"},
		{"unknown tag", "GET", "/v2/r/manifests/nope", nil, nil, 404, "MANIFEST_UNKNOWN"},
		{"bad digest reference", "PUT", "/v2/r/manifests/sha256:baddigeststring", []byte("{}"), []string{ct}, 400, "DIGEST_INVALID"},
		{"wrong digest on monolithic push", "POST", "/v2/r/blobs/uploads/?digest=sha256:" + hex64, []byte("data"), nil, 400, "DIGEST_INVALID"},
		{"malformed digest on push", "POST", "/v2/r/blobs/uploads/?digest=sha256:zz", []byte("data"), nil, 400, "DIGEST_INVALID"},
		{"unknown upload", "PATCH", "/v2/r/blobs/uploads/0123456789abcdef", []byte("x"), nil, 404, "BLOB_UPLOAD_UNKNOWN"},
		{"upload id with path tricks", "GET", "/v2/r/blobs/uploads/..", nil, nil, 404, "BLOB_UPLOAD_UNKNOWN"},
		{"inverted range", "GET", "/v2/r/blobs/" + gd, nil, []string{"Range: bytes=5-2"}, 416, "RANGE_INVALID"},
		{"range past end", "GET", "/v2/r/blobs/" + gd, nil, []string{"Range: bytes=500-600"}, 416, "RANGE_INVALID"},
		{"not a byte range", "GET", "/v2/r/blobs/" + gd, nil, []string{"Range: lines=1-2"}, 416, "RANGE_INVALID"},
		{"manifest not json", "PUT", "/v2/r/manifests/x", []byte("{not json"), []string{ct}, 400, "MANIFEST_INVALID"},
		{"manifest schema 1", "PUT", "/v2/r/manifests/x", []byte(`{"schemaVersion":1,"config":` + config + `}`), []string{ct}, 400, "MANIFEST_INVALID"},
		{"manifest without config", "PUT", "/v2/r/manifests/x", []byte(`{"schemaVersion":2,"layers":[]}`), []string{ct}, 400, "MANIFEST_INVALID"},
		{"manifest type mismatch", "PUT", "/v2/r/manifests/x", []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`), []string{ct}, 400, "MANIFEST_INVALID"},
		{"manifest unknown media type", "PUT", "/v2/r/manifests/x", []byte(`{"schemaVersion":2}`), []string{"Content-Type: application/x-nonsense"}, 201, ""},
		{"manifest missing layer", "PUT", "/v2/r/manifests/x", []byte(`{"schemaVersion":2,"config":` + config + `,"layers":[` + missing + `]}`), []string{ct}, 400, "MANIFEST_BLOB_UNKNOWN"},
		{"index missing child", "PUT", "/v2/r/manifests/x", []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[` + missing + `]}`), []string{"Content-Type: application/vnd.oci.image.index.v1+json"}, 400, "MANIFEST_BLOB_UNKNOWN"},
		{"manifest over 4 MiB", "PUT", "/v2/r/manifests/x", []byte(`{"schemaVersion":2,"annotations":{"a":"` + strings.Repeat("x", 4<<20) + `"}}`), []string{ct}, 413, "MANIFEST_INVALID"},
		{"manifest digest mismatch", "PUT", "/v2/r/manifests/" + md, []byte(`{"schemaVersion":2,"config":` + config + `}`), []string{ct}, 400, "DIGEST_INVALID"},
		{"unsupported method", "POST", "/v2/r/manifests/v1", nil, nil, 405, "UNSUPPORTED"},
		{"unknown endpoint", "GET", "/v2/r/whatever", nil, nil, 404, "UNSUPPORTED"},
		{"delete unknown tag", "DELETE", "/v2/r/manifests/nope", nil, nil, 404, "MANIFEST_UNKNOWN"},
		{"delete unknown blob", "DELETE", "/v2/r/blobs/sha256:" + hex64, nil, nil, 404, "BLOB_UNKNOWN"},
		{"NUL in last", "GET", "/v2/r/tags/list?last=%00", nil, nil, 400, "UNSUPPORTED"},
		{"invalid UTF-8 in last", "GET", "/v2/_catalog?last=%FF", nil, nil, 400, "UNSUPPORTED"},
		{"NUL in artifactType filter", "GET", "/v2/r/referrers/" + md + "?artifactType=%00", nil, nil, 400, "UNSUPPORTED"},
		{"NUL in an annotation", "PUT", "/v2/r/manifests/x", []byte(`{"schemaVersion":2,"config":` + config + `,"annotations":{"a":"b\u0000c"}}`), []string{ct}, 400, "MANIFEST_INVALID"},
		{"invalid UTF-8 event type", "GET", "/api/v1/events?type=%FF", nil, nil, 400, "UNSUPPORTED"},
		{"NUL in an annotation search", "GET", "/api/v1/search?annotation=k=%00", nil, nil, 400, "MANIFEST_INVALID"},
		{"invalid version name", "GET", "/api/v1/repositories/r/-/versions/%FF", nil, nil, 404, "VERSION_UNKNOWN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := s.do(tt.method, tt.path, tt.body, tt.headers...)
			if tt.name == "manifest unknown media type" {
				// An unknown Content-Type defers to the body, which lacks
				// a config: refused all the same.
				expect(t, r, 400, "MANIFEST_INVALID")
				return
			}
			if tt.code == "" {
				expect(t, r, tt.status)
			} else {
				expect(t, r, tt.status, tt.code)
			}
			if r.Header.Get("Content-Type") == "application/json" && r.errCode() == "" {
				t.Fatalf("error body is not the spec's envelope: %s", r.body)
			}
		})
	}
	// Nothing bad input touched was recorded: the wrong-digest bytes are
	// nowhere, and "x" never became a tag.
	expect(t, s.do("HEAD", "/v2/r/blobs/"+sha256Of([]byte("data")), nil), 404)
	expect(t, s.do("GET", "/v2/r/manifests/x", nil), 404, "MANIFEST_UNKNOWN")
	if ups, _ := s.blobs.ListUploads(t.Context()); len(ups) != 0 {
		t.Fatalf("bad input left staged bytes: %v", ups)
	}
}

// TestWrongDigestOnUploadLeavesNothing finishes a chunked upload with the
// wrong digest: 400, no blob, and the session is closed.
func TestWrongDigestOnUploadLeavesNothing(t *testing.T) {
	forBackends(t, testWrongDigestOnUploadLeavesNothing)
}

func testWrongDigestOnUploadLeavesNothing(t *testing.T, b backend) {
	s := b.server(t)
	r := s.do("POST", "/v2/r/blobs/uploads/", nil)
	expect(t, r, 202)
	loc := r.Header.Get("Location")
	data := []byte("some bytes")
	expect(t, s.do("PATCH", loc, data, "Content-Range: 0-9"), 202)
	wrong := sha256Of([]byte("other bytes"))
	expect(t, s.do("PUT", loc+"?digest="+wrong, nil), 400, "DIGEST_INVALID")
	expect(t, s.do("HEAD", "/v2/r/blobs/"+sha256Of(data), nil), 404)
	expect(t, s.do("HEAD", "/v2/r/blobs/"+wrong, nil), 404)
	expect(t, s.do("GET", loc, nil), 404, "BLOB_UPLOAD_UNKNOWN")
	if ups, _ := s.blobs.ListUploads(t.Context()); len(ups) != 0 {
		t.Fatalf("staged bytes left behind: %v", ups)
	}
}

// TestOutOfOrderChunks sends gaps and overlaps: each 416 with the current
// Range, and the session stays usable.
func TestOutOfOrderChunks(t *testing.T) { forBackends(t, testOutOfOrderChunks) }

func testOutOfOrderChunks(t *testing.T, b backend) {
	s := b.server(t)
	data := randomBytes(t, 3000)
	r := s.do("POST", "/v2/r/blobs/uploads/", nil)
	loc := r.Header.Get("Location")
	expect(t, s.do("PATCH", loc, data[:1000], "Content-Range: 0-999"), 202)
	for _, bad := range []string{"1500-2499", "0-999", "500-1499"} {
		var a, b int
		fmt.Sscanf(bad, "%d-%d", &a, &b)
		r := s.do("PATCH", loc, data[a:b+1], "Content-Range: "+bad)
		expect(t, r, 416, "BLOB_UPLOAD_INVALID")
		if got := r.Header.Get("Range"); got != "" && got != "0-999" {
			t.Fatalf("416 Range = %q", got)
		}
	}
	st := s.do("GET", loc, nil)
	expect(t, st, 204)
	if st.Header.Get("Range") != "0-999" {
		t.Fatalf("status Range = %q, want 0-999", st.Header.Get("Range"))
	}
	expect(t, s.do("PATCH", loc, data[1000:2000], "Content-Range: 1000-1999"), 202)
	// A last chunk on the PUT with a wrong range is refused before the
	// digest is checked; the right one completes the blob.
	expect(t, s.do("PUT", loc+"?digest="+sha256Of(data), data[2500:], "Content-Range: 2500-2999"), 416)
	expect(t, s.do("PUT", loc+"?digest="+sha256Of(data), data[2000:], "Content-Range: 2000-2999"), 201)
	got := s.do("GET", "/v2/r/blobs/"+sha256Of(data), nil)
	expect(t, got, 200)
	if string(got.body) != string(data) {
		t.Fatal("blob assembled from chunks differs")
	}
}

func TestNoServerErrorOnGarbage(t *testing.T) { forBackends(t, testNoServerErrorOnGarbage) }

func testNoServerErrorOnGarbage(t *testing.T, b backend) {
	s := b.server(t)
	for _, p := range []string{
		"/v2/r/manifests/", "/v2/r/blobs/", "/v2/r/blobs/uploads/x/y", "/v2//", "/v2/r/referrers/notadigest",
		"/v2/r/tags/list?n=abc", "/v2/_catalog?n=1e9", "/v2/r/manifests/sha256:" + strings.Repeat("0", 65),
	} {
		for _, m := range []string{"GET", "HEAD", "PUT", "DELETE", "PATCH", "POST"} {
			r := s.do(m, p, []byte("junk"))
			if r.StatusCode < 400 || r.StatusCode >= 500 {
				if !(m == "GET" && strings.Contains(p, "_catalog")) {
					t.Errorf("%s %s: status %d, want a 4xx", m, p, r.StatusCode)
				}
			}
		}
	}
}

// TestTruncatedChunkBodies cuts a PATCH body short, chunked and with a
// Content-Length, by closing the connection: the partial chunk is not
// taken as complete, the server does not spin, and the session stays
// usable at the size it had.
func TestTruncatedChunkBodies(t *testing.T) {
	s := newServer(t)
	r := s.do("POST", "/v2/r/blobs/uploads/", nil)
	loc := r.Header.Get("Location")
	expect(t, s.do("PATCH", loc, []byte("0123456789")), 202)
	host := strings.TrimPrefix(s.url, "http://")
	for _, raw := range []string{
		"PATCH " + loc + " HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n100\r\nonly-part-of-the-chunk",
		"PATCH " + loc + " HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nonly a little",
	} {
		c, err := net.Dial("tcp", host)
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte(raw))
		time.Sleep(100 * time.Millisecond)
		c.Close()
		deadline := time.Now().Add(10 * time.Second)
		for {
			st := s.do("GET", loc, nil)
			if st.StatusCode == 204 && st.Header.Get("Range") == "0-9" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("after a cut-off PATCH the upload reports %d %q, want 204 0-9", st.StatusCode, st.Header.Get("Range"))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// A chunk whose length contradicts its Content-Range is refused before
	// anything is written.
	expect(t, s.do("PATCH", loc, []byte("abc"), "Content-Range: 10-19"), 400, "SIZE_INVALID")
	expect(t, s.do("PUT", loc+"?digest="+sha256Of([]byte("0123456789")), nil), 201)
}

// TestMalformedQueryOnEveryRoute: a query string that cannot be read whole
// (a bad escape, or more parameters than the parser takes) is a 400 on
// every route, never acted on in part.
func TestMalformedQueryOnEveryRoute(t *testing.T) {
	s := newServer(t)
	_, md := s.pushImage("r", "1", "")
	many := strings.Repeat("tag=x&", 10_001)
	for _, u := range []string{
		"/v2/r/manifests/1?bad=%zz",
		"/v2/r/tags/list?n=%zz",
		"/v2/_catalog?" + many,
		"/v2/r/blobs/uploads/?mount=%zz",
		"/v2/r/referrers/" + md + "?artifactType=%zz",
	} {
		method := "GET"
		if strings.Contains(u, "uploads") {
			method = "POST"
		}
		r := s.do(method, u, nil)
		if r.StatusCode != http.StatusBadRequest {
			t.Fatalf("%s %.80s: %d, want 400; %s", method, u, r.StatusCode, r.body)
		}
	}
	r := s.do("PUT", "/v2/r/manifests/2?"+many, []byte("{}"), "Content-Type: "+ociManifest)
	expect(t, r, http.StatusBadRequest)
	expect(t, s.do("GET", "/v2/r/manifests/2", nil), http.StatusNotFound)
}
