package registry_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/artifact-store/artifact-store/manifests"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestNativeURLsOneMeaning: repository "acme/versions/1/files" and version
// 1 of repository "acme" have distinct URLs, neither can shadow the other's
// files (even a file path spelling the other's URL), and the old URLs
// without the /-/ separator answer 404 with the URL to use.
func TestNativeURLsOneMeaning(t *testing.T) { forBackends(t, testNativeURLsOneMeaning) }

func testNativeURLsOneMeaning(t *testing.T, b backend) {
	s := b.server(t)
	const odd = "acme/versions/1/files" // a valid repository name
	mine, theirs, trap := []byte("acme's own"), []byte("the other repository's"), []byte("acme's file shaped like a URL")
	expect(t, s.do("PUT", "/api/v1/repositories/acme/-/versions/1/files/x.txt", mine), 201)
	expect(t, s.do("PUT", "/api/v1/repositories/"+odd+"/-/versions/v1/files/x.txt", theirs), 201)
	// acme publishes a file whose path spells the other repository's URL
	// tail: it stays acme's, under acme's version.
	expect(t, s.do("PUT", "/api/v1/repositories/acme/-/versions/2/files/-/versions/v1/files/x.txt", trap), 201)

	for url, want := range map[string][]byte{
		"/api/v1/repositories/acme/-/versions/1/files/x.txt":                     mine,
		"/api/v1/repositories/" + odd + "/-/versions/v1/files/x.txt":             theirs,
		"/api/v1/repositories/acme/-/versions/2/files/-/versions/v1/files/x.txt": trap,
		"/api/v1/repositories/acme/-/blobs/" + blake3Of(mine):                    mine,
		"/api/v1/repositories/" + odd + "/-/blobs/" + blake3Of(theirs):           theirs,
	} {
		r := s.do("GET", url, nil)
		expect(t, r, 200)
		if !bytes.Equal(r.body, want) {
			t.Errorf("GET %s: %q, want %q", url, r.body, want)
		}
	}
	var n manifests.Native
	json.Unmarshal(s.do("GET", "/api/v1/repositories/"+odd+"/-/versions/v1", nil).body, &n)
	if n.Repository != odd || n.Version != "v1" {
		t.Fatalf("manifest of %s:v1 names %s:%s", odd, n.Repository, n.Version)
	}
	var vl struct {
		Versions []struct{ Repository, Version string }
	}
	json.Unmarshal(s.do("GET", "/api/v1/repositories/acme/-/versions", nil).body, &vl)
	if len(vl.Versions) != 2 || vl.Versions[0].Repository != "acme" || vl.Versions[1].Repository != "acme" {
		t.Fatalf("versions of acme: %+v", vl.Versions)
	}
	// Neither repository's blobs are the other's.
	expect(t, s.do("GET", "/api/v1/repositories/acme/-/blobs/"+blake3Of(theirs), nil), 404, "BLOB_UNKNOWN")
	expect(t, s.do("GET", "/api/v1/repositories/"+odd+"/-/blobs/"+blake3Of(mine), nil), 404, "BLOB_UNKNOWN")
	// A name with a "-" component is no repository.
	expect(t, s.do("GET", "/api/v1/repositories/acme/-/x/-/versions", nil), 400, "NAME_INVALID")

	// The old form: 404, and the message shows the URL with the separator.
	for old, hint := range map[string]string{
		"/api/v1/repositories/acme/versions/1/files/x.txt":  "/api/v1/repositories/acme/-/versions/1/files/x.txt",
		"/api/v1/repositories/acme/versions":                "/api/v1/repositories/acme/-/versions",
		"/api/v1/repositories/acme/blobs/" + sha256Of(mine): "/api/v1/repositories/acme/-/blobs/" + sha256Of(mine),
	} {
		for _, method := range []string{"GET", "PUT"} {
			r := s.do(method, old, []byte("x"))
			expect(t, r, 404, "UNSUPPORTED")
			if !strings.Contains(string(r.body), hint) {
				t.Errorf("%s %s: %s does not point at %s", method, old, r.body, hint)
			}
		}
	}
	// Nothing was published through an old URL.
	json.Unmarshal(s.do("GET", "/api/v1/repositories/acme/-/versions", nil).body, &vl)
	if len(vl.Versions) != 2 {
		t.Fatalf("versions of acme after old-form PUTs: %+v", vl.Versions)
	}
}

// TestPublishPathConflicts: a version where one file's path is another's
// directory cannot be written to any file system, so it is refused with
// PATH_INVALID naming both paths, and nothing is recorded.
func TestPublishPathConflicts(t *testing.T) { forBackends(t, testPublishPathConflicts) }

func testPublishPathConflicts(t *testing.T, b backend) {
	s := b.server(t)
	file := func(p string) manifests.File {
		f := s.uploadFile("tree", p, []byte("bytes of "+p))
		f.MediaType = "text/plain"
		return f
	}
	for _, tc := range []struct {
		paths         []string
		parent, child string
	}{
		{[]string{"a", "a/b"}, "a", "a/b"},
		{[]string{"a", "a-b", "a.txt", "a/b/c"}, "a", "a/b/c"}, // sorts between them
		{[]string{"x/y", "x/y/z", "x/z"}, "x/y", "x/y/z"},
	} {
		var files []manifests.File
		for _, p := range tc.paths {
			files = append(files, file(p))
		}
		head, _ := s.log.Head(t.Context())
		body, _ := json.Marshal(map[string]any{"manifestVersion": 1, "files": files})
		r := s.do("PUT", "/api/v1/repositories/tree/-/versions/v1", body, "Content-Type: application/json")
		expect(t, r, 400, "PATH_INVALID")
		if !strings.Contains(string(r.body), fmt.Sprintf(`\"%s\"`, tc.parent)) || !strings.Contains(string(r.body), fmt.Sprintf(`\"%s\"`, tc.child)) {
			t.Errorf("%v: message does not name %s and %s: %s", tc.paths, tc.parent, tc.child, r.body)
		}
		if after, _ := s.log.Head(t.Context()); after != head {
			t.Fatalf("%v: a refused publish appended %d events", tc.paths, after-head)
		}
	}
	expect(t, s.do("GET", "/api/v1/repositories/tree/-/versions/v1", nil), 404, "VERSION_UNKNOWN")
	// Siblings that share a prefix but no directory are fine.
	body, _ := json.Marshal(map[string]any{"manifestVersion": 1, "files": []manifests.File{file("a"), file("a-b"), file("ab/c")}})
	expect(t, s.do("PUT", "/api/v1/repositories/tree/-/versions/v2", body, "Content-Type: application/json"), 201)
}

// TestPublishFileContentTypeNotUTF8: a Content-Type that is not UTF-8 is
// refused before anything is stored; the version stays publishable.
func TestPublishFileContentTypeNotUTF8(t *testing.T) {
	forBackends(t, testPublishFileContentTypeNotUTF8)
}

func testPublishFileContentTypeNotUTF8(t *testing.T, b backend) {
	s := b.server(t)
	head, _ := s.log.Head(t.Context())
	for _, ct := range []string{"text/plain; charset=\xff", "\xc3\x28/x", "application/\xe2\x82"} {
		r := s.do("PUT", "/api/v1/repositories/ct/-/versions/1/files/a.bin", []byte("data"), "Content-Type: "+ct)
		expect(t, r, 400, "MANIFEST_INVALID")
		if !strings.Contains(string(r.body), "UTF-8") {
			t.Errorf("Content-Type %q: message %s", ct, r.body)
		}
	}
	if after, _ := s.log.Head(t.Context()); after != head {
		t.Fatalf("refused publishes appended %d events", after-head)
	}
	expect(t, s.do("PUT", "/api/v1/repositories/ct/-/versions/1/files/a.bin", []byte("data"), "Content-Type: text/plain; charset=utf-8"), 201)
	r := s.do("GET", "/api/v1/repositories/ct/-/versions/1/files/a.bin", nil)
	expect(t, r, 200)
	if r.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Fatalf("Content-Type %q", r.Header.Get("Content-Type"))
	}
	// Without a Content-Type (curl -T), the type comes from the extension.
	expect(t, s.do("PUT", "/api/v1/repositories/ct/-/versions/2/files/r.pdf", []byte("%PDF")), 201)
	if ct := s.do("GET", "/api/v1/repositories/ct/-/versions/2/files/r.pdf", nil).Header.Get("Content-Type"); ct != "application/pdf" {
		t.Fatalf("guessed Content-Type %q", ct)
	}
}

// TestOCIPushWithoutTitlesSeenNatively: layers without a title are files
// named by digest; a titled layer that would put a file under another file
// is left out; an index is a version with no files, "files": [].
func TestOCIPushWithoutTitlesSeenNatively(t *testing.T) {
	forBackends(t, testOCIPushWithoutTitlesSeenNatively)
}

func testOCIPushWithoutTitlesSeenNatively(t *testing.T, b backend) {
	s := b.server(t)
	m, md := s.pushImage("img", "v1", "")
	var im v1.Manifest
	json.Unmarshal(m, &im)
	layer := im.Layers[0].Digest.String()
	want := "blobs/sha256/" + strings.TrimPrefix(layer, "sha256:")
	var n manifests.Native
	r := s.do("GET", "/api/v1/repositories/img/-/versions/v1", nil)
	expect(t, r, 200)
	if err := json.Unmarshal(r.body, &n); err != nil || len(n.Files) != 1 || n.Files[0].Path != want || n.Files[0].SHA256 != layer {
		t.Fatalf("view of an untitled image: %s", r.body)
	}
	if err := n.ValidateView(); err != nil {
		t.Fatalf("the view does not validate: %v", err)
	}
	f := s.do("GET", "/api/v1/repositories/img/-/versions/v1/files/"+want, nil)
	expect(t, f, 200)
	if sha256Of(f.body) != layer {
		t.Fatal("the untitled layer's file has other bytes")
	}

	// Layers titled "a/b" then "a": the first in layer order stays a file,
	// the other would be its directory and is left out.
	one, two := []byte("one"), []byte("two")
	d1, d2 := s.pushBlob("t", one), s.pushBlob("t", two)
	cfg := s.pushBlob("t", []byte("{}"))
	tm := fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"artifactType":"application/x","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":%q,"size":2},"layers":[`+
		`{"mediaType":"text/plain","digest":%q,"size":3,"annotations":{"org.opencontainers.image.title":"a/b"}},`+
		`{"mediaType":"text/plain","digest":%q,"size":3,"annotations":{"org.opencontainers.image.title":"a"}}]}`, ociManifest, cfg, d2, d1)
	expect(t, s.do("PUT", "/v2/t/manifests/v1", []byte(tm), "Content-Type: "+ociManifest), 201)
	n = manifests.Native{}
	json.Unmarshal(s.do("GET", "/api/v1/repositories/t/-/versions/v1", nil).body, &n)
	if err := n.ValidateView(); err != nil || len(n.Files) != 1 || n.Files[0].Path != "a/b" || n.Files[0].SHA256 != d2 {
		t.Fatalf("view of titles a/b then a: %+v (%v)", n.Files, err)
	}

	// An index: no files, as [] in both the manifest and the file list.
	idx := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":%q,"digest":%q,"size":%d}]}`, ociManifest, md, len(m))
	expect(t, s.do("PUT", "/v2/img/manifests/multi", []byte(idx), "Content-Type: application/vnd.oci.image.index.v1+json"), 201)
	for _, u := range []string{"/api/v1/repositories/img/-/versions/multi", "/api/v1/repositories/img/-/versions/multi/files"} {
		r := s.do("GET", u, nil)
		expect(t, r, 200)
		if !strings.Contains(string(r.body), `"files":[]`) {
			t.Errorf("GET %s: %s", u, r.body)
		}
	}
}

// TestMethodNotAllowedAllow: a 405 lists in Allow the methods the path
// serves, on both APIs.
func TestMethodNotAllowedAllow(t *testing.T) {
	s := newServer(t)
	for _, tc := range []struct{ method, path, allow string }{
		{"POST", "/api/v1/repositories/a/-/versions/1", "DELETE, GET, HEAD, PUT"},
		{"DELETE", "/api/v1/repositories/a/-/versions/1/files/x/y.txt", "GET, HEAD, PUT"},
		{"POST", "/api/v1/repositories/a/-/blobs/" + sha256Of([]byte("x")), "GET, HEAD"},
		{"PUT", "/api/v1/events", "GET"},
		{"POST", "/v2/", "GET, HEAD"},
		{"DELETE", "/v2/a/b/tags/list", "GET"},
		{"POST", "/v2/a/manifests/latest", "DELETE, GET, HEAD, PUT"},
		{"POST", "/v2/a/blobs/uploads/" + strings.Repeat("0", 32), "DELETE, GET, PATCH, PUT"},
	} {
		r := s.do(tc.method, tc.path, nil)
		expect(t, r, http.StatusMethodNotAllowed, "UNSUPPORTED")
		if got := r.Header.Get("Allow"); got != tc.allow {
			t.Errorf("%s %s: Allow %q, want %q", tc.method, tc.path, got, tc.allow)
		}
	}
}

// TestBlobHeadAcceptRanges: a blob HEAD says ranges are accepted, as the
// GET does, for small and large blobs.
func TestBlobHeadAcceptRanges(t *testing.T) {
	s := newServer(t)
	for _, size := range []int{10, 1 << 20} {
		d := s.pushBlob("r", randomBytes(t, size))
		for _, method := range []string{"HEAD", "GET"} {
			r := s.do(method, "/v2/r/blobs/"+d, nil)
			expect(t, r, 200)
			if got := r.Header.Get("Accept-Ranges"); got != "bytes" {
				t.Errorf("%s of a %d-byte blob: Accept-Ranges %q", method, size, got)
			}
		}
	}
}
