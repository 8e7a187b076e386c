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

type published struct {
	Repository, Version, Digest, BLAKE3, OCIDigest, ArtifactType string
	Files                                                        int
}

func decodePublished(t testing.TB, r response) published {
	t.Helper()
	var p published
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("publish answer %s: %v", r.body, err)
	}
	return p
}

// uploadFile pushes data through a /v2/ upload session of repo and
// returns its manifest entry.
func (s *testServer) uploadFile(repo, path string, data []byte) manifests.File {
	s.t.Helper()
	r := s.do("POST", "/v2/"+repo+"/blobs/uploads/", nil)
	expect(s.t, r, 202)
	loc := r.Header.Get("Location")
	expect(s.t, s.do("PATCH", loc, data), 202)
	expect(s.t, s.do("PUT", loc+"?digest="+sha256Of(data), nil), 201)
	return manifests.File{Path: path, Size: int64(len(data)), SHA256: sha256Of(data), BLAKE3: blake3Of(data)}
}

func TestPublishOneFile(t *testing.T) { forBackends(t, testPublishOneFile) }

func testPublishOneFile(t *testing.T, b backend) {
	s := b.server(t)
	data := randomBytes(t, 100_000)
	url := "/api/v1/repositories/docs/site/-/versions/1.0/files/reports/q3.pdf?artifactType=application/vnd.example.report&annotation=team=docs"
	r := s.do("PUT", url, data, "Content-Type: application/pdf")
	expect(t, r, 201)
	p := decodePublished(t, r)
	if p.Version != "1.0" || p.Files != 1 || p.ArtifactType != "application/vnd.example.report" || !strings.HasPrefix(p.BLAKE3, "blake3:") {
		t.Fatalf("publish answer %+v", p)
	}
	// The manifest as JCS JSON and as canonical CBOR.
	j := s.do("GET", "/api/v1/repositories/docs/site/-/versions/1.0", nil)
	expect(t, j, 200)
	var n manifests.Native
	if err := json.Unmarshal(j.body, &n); err != nil || len(n.Files) != 1 || n.Files[0].Path != "reports/q3.pdf" ||
		n.Files[0].MediaType != "application/pdf" || n.Files[0].BLAKE3 != blake3Of(data) || n.Annotations["team"] != "docs" {
		t.Fatalf("manifest JSON %s (%v)", j.body, err)
	}
	if canon, _ := manifests.CanonicalJSON(j.body); !bytes.Equal(canon, j.body) {
		t.Fatalf("manifest JSON is not in JCS form: %s", j.body)
	}
	c := s.do("GET", "/api/v1/repositories/docs/site/-/versions/1.0", nil, "Accept: application/cbor")
	expect(t, c, 200)
	if sha256Of(c.body) != p.Digest || blake3Of(c.body) != p.BLAKE3 || c.Header.Get("ETag") != `"`+p.Digest+`"` {
		t.Fatalf("CBOR bytes do not hash to the published digest")
	}
	// Each representation has its own validator, and both name the native
	// digest: a browser holding the JSON revalidates with its ETag, and a
	// shared one would get it the JSON back for a CBOR request.
	if j.Header.Get("ETag") == c.Header.Get("ETag") || j.Header.Get("Native-Digest") != p.Digest || c.Header.Get("Native-Digest") != p.Digest {
		t.Fatalf("JSON ETag %s, CBOR ETag %s, Native-Digest %s and %s; want distinct ETags and %s", j.Header.Get("ETag"), c.Header.Get("ETag"), j.Header.Get("Native-Digest"), c.Header.Get("Native-Digest"), p.Digest)
	}
	if r := s.do("GET", "/api/v1/repositories/docs/site/-/versions/1.0", nil, "Accept: application/cbor", "If-None-Match: "+j.Header.Get("ETag")); r.StatusCode != 200 || sha256Of(r.body) != p.Digest {
		t.Fatalf("CBOR request revalidating the JSON's ETag: %d, body %x", r.StatusCode, r.body)
	}
	if _, err := manifests.DecodeNative(c.body); err != nil {
		t.Fatalf("served CBOR is not canonical: %v", err)
	}
	expect(t, s.do("GET", "/api/v1/repositories/docs/site/-/versions/1.0", nil, "If-None-Match: "+j.Header.Get("ETag")), 304)
	expect(t, s.do("GET", "/api/v1/repositories/docs/site/-/versions/1.0", nil, "Accept: application/cbor", `If-None-Match: "`+p.Digest+`"`), 304)
	// The file, whole and in part, with both digests.
	f := s.do("GET", "/api/v1/repositories/docs/site/-/versions/1.0/files/reports/q3.pdf", nil)
	expect(t, f, 200)
	wantRepr := fmt.Sprintf("sha-256=:%s:, blake3=:", b64Of(sha256Of(data)))
	if !bytes.Equal(f.body, data) || f.Header.Get("Content-Type") != "application/pdf" || !strings.HasPrefix(f.Header.Get("Repr-Digest"), wantRepr) {
		t.Fatalf("file: %d bytes, type %q, Repr-Digest %q", len(f.body), f.Header.Get("Content-Type"), f.Header.Get("Repr-Digest"))
	}
	part := s.do("GET", "/api/v1/repositories/docs/site/-/versions/1.0/files/reports/q3.pdf", nil, "Range: bytes=10-19")
	expect(t, part, 206)
	if !bytes.Equal(part.body, data[10:20]) || part.Header.Get("Repr-Digest") != f.Header.Get("Repr-Digest") {
		t.Fatal("ranged file read wrong")
	}
	expect(t, s.do("GET", "/api/v1/repositories/docs/site/-/versions/1.0/files/reports/q3.pdf", nil, `If-None-Match: "`+sha256Of(data)+`"`), 304)
	for _, d := range []string{blake3Of(data), sha256Of(data)} {
		if g := s.do("GET", "/api/v1/repositories/docs/site/-/blobs/"+d, nil); g.StatusCode != 200 || !bytes.Equal(g.body, data) {
			t.Fatalf("blob by %s: %d", d, g.StatusCode)
		}
	}
	// Same bytes again: idempotent. Other bytes: 409.
	expect(t, s.do("PUT", url, data, "Content-Type: application/pdf"), 200)
	expect(t, s.do("PUT", url, []byte("other"), "Content-Type: application/pdf"), 409, "VERSION_EXISTS")
	// The OCI view.
	o := s.do("GET", "/v2/docs/site/manifests/1.0", nil)
	expect(t, o, 200)
	var m v1.Manifest
	json.Unmarshal(o.body, &m)
	if o.Header.Get("Docker-Content-Digest") != p.OCIDigest || m.ArtifactType != "application/vnd.example.report" ||
		m.Config.MediaType != manifests.MediaTypeEmptyJSON || len(m.Layers) != 1 || m.Layers[0].Annotations[manifests.AnnotationTitle] != "reports/q3.pdf" {
		t.Fatalf("derived manifest %s", o.body)
	}
	expect(t, s.do("GET", "/v2/docs/site/blobs/"+m.Config.Digest.String(), nil), 200)
	// Versions are immutable on /v2/ too.
	expect(t, s.do("PUT", "/v2/docs/site/manifests/1.0", o.body, "Content-Type: "+ociManifest), 409, "DENIED")
	expect(t, s.do("DELETE", "/v2/docs/site/manifests/1.0", nil), 409, "DENIED")
	expect(t, s.do("DELETE", "/v2/docs/site/manifests/"+p.OCIDigest, nil), 409, "DENIED")
}

func b64Of(d string) string {
	var raw []byte
	fmt.Sscanf(d[strings.Index(d, ":")+1:], "%x", &raw)
	return base64Std(raw)
}

func TestPublishManifest(t *testing.T) { forBackends(t, testPublishManifest) }

func testPublishManifest(t *testing.T, b backend) {
	s := b.server(t)
	a := s.uploadFile("ml/model", "weights/model.bin", randomBytes(t, 300_000))
	c := s.uploadFile("ml/model", "README.md", []byte("# model\n"))
	a.MediaType = "application/octet-stream"
	// Files out of order, no created, no repository: the server fills in.
	body, _ := json.Marshal(map[string]any{"manifestVersion": 1, "artifactType": "application/vnd.example.model", "files": []manifests.File{a, c},
		"annotations": map[string]string{"stage": "prod"}})
	r := s.do("PUT", "/api/v1/repositories/ml/model/-/versions/v1", body, "Content-Type: application/json")
	expect(t, r, 201)
	p := decodePublished(t, r)
	if r.Header.Get("Location") != "/api/v1/repositories/ml/model/-/versions/v1" || p.Files != 2 {
		t.Fatalf("publish: %s %+v", r.Header.Get("Location"), p)
	}
	expect(t, s.do("PUT", "/api/v1/repositories/ml/model/-/versions/v1", body, "Content-Type: application/json"), 200)
	// The canonical CBOR published again, byte for byte: idempotent.
	cb := s.do("GET", "/api/v1/repositories/ml/model/-/versions/v1", nil, "Accept: application/cbor")
	expect(t, s.do("PUT", "/api/v1/repositories/ml/model/-/versions/v1", cb.body, "Content-Type: application/cbor"), 200)
	files := s.do("GET", "/api/v1/repositories/ml/model/-/versions/v1/files", nil)
	var fl struct{ Files []manifests.File }
	json.Unmarshal(files.body, &fl)
	if len(fl.Files) != 2 || fl.Files[0].Path != "README.md" || fl.Files[0].MediaType != "application/octet-stream" {
		t.Fatalf("files %s", files.body)
	}
	if g := s.do("GET", "/api/v1/repositories/ml/model/-/versions/v1/files/weights/model.bin", nil); g.StatusCode != 200 || int64(len(g.body)) != a.Size {
		t.Fatalf("file by path: %d", g.StatusCode)
	}
}

// TestPublishBadInput: each refused with a 4xx and a JSON error, and
// nothing recorded.
func TestPublishBadInput(t *testing.T) { forBackends(t, testPublishBadInput) }

func testPublishBadInput(t *testing.T, b backend) {
	s := b.server(t)
	f := s.uploadFile("r", "a.txt", []byte("hello"))
	f.MediaType = "text/plain"
	good := manifests.Native{ManifestVersion: 1, Repository: "r", Version: "v1", Created: "2026-01-02T03:04:05Z", Files: []manifests.File{f}}
	canonical, err := good.Encode()
	if err != nil {
		t.Fatal(err)
	}
	head, _ := s.log.Head(t.Context())
	mk := func(mut func(n *manifests.Native)) []byte {
		n := good
		n.Files = append([]manifests.File(nil), good.Files...)
		mut(&n)
		b, _ := json.Marshal(n)
		return b
	}
	// A non-canonical encoding of the same manifest: the integer 1 in two bytes.
	nonCanon := bytes.Replace(canonical, []byte("manifestVersion\x01"), []byte("manifestVersion\x18\x01"), 1)
	if bytes.Equal(nonCanon, canonical) {
		t.Fatal("test setup: could not make a non-canonical encoding")
	}
	tests := []struct {
		name, ct string
		body     []byte
		status   int
		code     string
	}{
		{"non-canonical CBOR", "application/cbor", nonCanon, 400, "MANIFEST_INVALID"},
		{"CBOR garbage", "application/cbor", []byte{0xff, 0x00}, 400, "MANIFEST_INVALID"},
		{"unknown manifest version", "application/json", mk(func(n *manifests.Native) { n.ManifestVersion = 2 }), 400, "MANIFEST_INVALID"},
		{"dot-dot path", "application/json", mk(func(n *manifests.Native) { n.Files[0].Path = "../etc/passwd" }), 400, "MANIFEST_INVALID"},
		{"absolute path", "application/json", mk(func(n *manifests.Native) { n.Files[0].Path = "/etc/passwd" }), 400, "MANIFEST_INVALID"},
		{"NUL in path", "application/json", mk(func(n *manifests.Native) { n.Files[0].Path = "a\x00b" }), 400, "MANIFEST_INVALID"},
		{"wrong blake3", "application/json", mk(func(n *manifests.Native) { n.Files[0].BLAKE3 = blake3Of([]byte("other")) }), 400, "DIGEST_INVALID"},
		{"wrong size", "application/json", mk(func(n *manifests.Native) { n.Files[0].Size = 6 }), 400, "DIGEST_INVALID"},
		{"never uploaded", "application/json", mk(func(n *manifests.Native) {
			n.Files[0].SHA256, n.Files[0].BLAKE3 = sha256Of([]byte("x")), blake3Of([]byte("x"))
		}), 400, "MANIFEST_BLOB_UNKNOWN"},
		{"unknown field", "application/json", []byte(`{"manifestVersion":1,"files":[],"bogus":1}`), 400, "MANIFEST_INVALID"},
		{"key in the wrong case", "application/json", bytes.Replace(mk(func(*manifests.Native) {}), []byte(`"files"`), []byte(`"Files"`), 1), 400, "MANIFEST_INVALID"},
		{"other repository", "application/json", mk(func(n *manifests.Native) { n.Repository = "elsewhere" }), 400, "MANIFEST_INVALID"},
		{"bad created", "application/json", mk(func(n *manifests.Native) { n.Created = "yesterday" }), 400, "MANIFEST_INVALID"},
		{"wrong content type", "text/plain", mk(func(*manifests.Native) {}), 415, "MANIFEST_INVALID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := s.do("PUT", "/api/v1/repositories/r/-/versions/v1", tt.body, "Content-Type: "+tt.ct)
			expect(t, r, tt.status, tt.code)
		})
	}
	for _, p := range []string{"..%2Fx", "a/../b", "a/./b", "a//b", "%00x"} {
		r := s.do("PUT", "/api/v1/repositories/r/-/versions/v2/files/"+p, []byte("x"))
		if r.StatusCode != 400 && r.StatusCode != 404 {
			t.Errorf("file path %q: %d %s", p, r.StatusCode, r.body)
		}
	}
	expect(t, s.do("PUT", "/api/v1/repositories/r/-/versions/v3/files/x?digest="+sha256Of([]byte("y")), []byte("x")), 400, "DIGEST_INVALID")
	expect(t, s.do("GET", "/api/v1/repositories/r/-/versions/v1", nil), 404, "VERSION_UNKNOWN")
	expect(t, s.do("GET", "/api/v1/repositories/r/-/versions/v2", nil), 404, "VERSION_UNKNOWN")
	if after, _ := s.log.Head(t.Context()); after != head {
		t.Fatalf("bad input recorded %d events", after-head)
	}
}

// TestOCIPushSeenNatively: what an OCI client pushes with titled layers is
// a version with files named by their titles.
func TestOCIPushSeenNatively(t *testing.T) { forBackends(t, testOCIPushSeenNatively) }

func testOCIPushSeenNatively(t *testing.T, b backend) {
	s := b.server(t)
	data := []byte("pushed by oras")
	layer := s.pushBlob("o", data)
	cfg := s.pushBlob("o", []byte("{}"))
	m := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"artifactType":"application/vnd.example","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":%q,"size":2},"layers":[{"mediaType":"text/plain","digest":%q,"size":%d,"annotations":{"org.opencontainers.image.title":"notes.txt"}}],"annotations":{"org.opencontainers.image.created":"2026-01-01T00:00:00Z"}}`,
		ociManifest, cfg, layer, len(data)))
	expect(t, s.do("PUT", "/v2/o/manifests/v1", m, "Content-Type: "+ociManifest), 201)
	var vl struct {
		Versions []struct {
			Version, ArtifactType string
			Native                bool
		}
	}
	r := s.do("GET", "/api/v1/repositories/o/-/versions", nil)
	json.Unmarshal(r.body, &vl)
	if len(vl.Versions) != 1 || vl.Versions[0].Version != "v1" || vl.Versions[0].Native || vl.Versions[0].ArtifactType != "application/vnd.example" {
		t.Fatalf("versions %s", r.body)
	}
	f := s.do("GET", "/api/v1/repositories/o/-/versions/v1/files/notes.txt", nil)
	expect(t, f, 200)
	if !bytes.Equal(f.body, data) {
		t.Fatal("file of an OCI push by title")
	}
	if g := s.do("GET", "/api/v1/repositories/o/-/blobs/"+blake3Of(data), nil); !bytes.Equal(g.body, data) {
		t.Fatal("blob by blake3")
	}
	var n manifests.Native
	json.Unmarshal(s.do("GET", "/api/v1/repositories/o/-/versions/v1", nil).body, &n)
	if n.Created != "2026-01-01T00:00:00Z" || len(n.Files) != 1 || n.Files[0].BLAKE3 != blake3Of(data) {
		t.Fatalf("synthesized manifest %+v", n)
	}
}

func TestSearchListDeleteAndReplay(t *testing.T) { forBackends(t, testSearchListDeleteAndReplay) }

func testSearchListDeleteAndReplay(t *testing.T, b backend) {
	s := b.server(t)
	pub := func(repo, version, at, stage string) published {
		r := s.do("PUT", fmt.Sprintf("/api/v1/repositories/%s/-/versions/%s/files/f.txt?artifactType=%s&annotation=stage=%s", repo, version, at, stage), []byte(repo+version))
		expect(t, r, 201)
		return decodePublished(t, r)
	}
	pub("a", "1", "x/report", "dev")
	p2 := pub("a", "2", "x/report", "prod")
	pub("b", "1", "x/model", "prod")
	pub("a", "3", "x/model", "dev")
	var vl struct {
		Versions []struct{ Repository, Version string }
	}
	r := s.do("GET", "/api/v1/repositories/a/-/versions?n=2", nil)
	json.Unmarshal(r.body, &vl)
	if len(vl.Versions) != 2 || vl.Versions[0].Version != "3" || vl.Versions[1].Version != "2" || !strings.Contains(r.Header.Get("Link"), "before=") {
		t.Fatalf("page 1: %s (Link %q)", r.body, r.Header.Get("Link"))
	}
	link := r.Header.Get("Link")
	r = s.do("GET", link[1:strings.Index(link, ">")], nil)
	json.Unmarshal(r.body, &vl)
	if len(vl.Versions) != 1 || vl.Versions[0].Version != "1" {
		t.Fatalf("page 2: %s", r.body)
	}
	r = s.do("GET", "/api/v1/search?annotation=stage=prod", nil)
	json.Unmarshal(r.body, &vl)
	if len(vl.Versions) != 2 || vl.Versions[0].Repository != "b" || vl.Versions[1].Version != "2" {
		t.Fatalf("search by annotation: %s", r.body)
	}
	r = s.do("GET", "/api/v1/search?artifactType=x/model&repository=a", nil)
	json.Unmarshal(r.body, &vl)
	if len(vl.Versions) != 1 || vl.Versions[0].Version != "3" {
		t.Fatalf("search by type: %s", r.body)
	}
	// The derived digest survives replay.
	views := dump(t, s)
	if _, err := s.log.Replay(t.Context()); err != nil {
		t.Fatal(err)
	}
	if after := dump(t, s); fmt.Sprint(after) != fmt.Sprint(views) {
		t.Fatal("views differ after replay")
	}
	if got := s.do("HEAD", "/v2/a/manifests/2", nil).Header.Get("Docker-Content-Digest"); got != p2.OCIDigest {
		t.Fatalf("derived digest after replay %s, want %s", got, p2.OCIDigest)
	}
	expect(t, s.do("DELETE", "/api/v1/repositories/a/-/versions/2", nil), 204)
	expect(t, s.do("GET", "/api/v1/repositories/a/-/versions/2", nil), 404, "VERSION_UNKNOWN")
	expect(t, s.do("GET", "/v2/a/manifests/2", nil), 404)
	// A deleted version may be published again.
	expect(t, s.do("PUT", "/api/v1/repositories/a/-/versions/2/files/f.txt", []byte("new")), 201)
	var _ = http.StatusOK
}

func TestNativeSubjectInReferrers(t *testing.T) {
	s := newServer(t)
	_, subject := s.pushImage("img", "v1", "")
	f := s.uploadFile("img", "sbom.json", []byte(`{"sbom":true}`))
	f.MediaType = "application/spdx+json"
	body, _ := json.Marshal(map[string]any{"manifestVersion": 1, "artifactType": "application/spdx+json", "files": []manifests.File{f},
		"subject": map[string]any{"mediaType": ociManifest, "digest": subject, "size": 1}})
	r := s.do("PUT", "/api/v1/repositories/img/-/versions/sbom-v1", body, "Content-Type: application/json")
	expect(t, r, 201)
	p := decodePublished(t, r)
	ref := s.do("GET", "/v2/img/referrers/"+subject+"?artifactType=application/spdx%2Bjson", nil)
	if !strings.Contains(string(ref.body), p.OCIDigest) {
		t.Fatalf("referrers of the subject: %s", ref.body)
	}
}

func TestNativeEdgeCases(t *testing.T) {
	s := newServer(t)
	// A plain image pushed over /v2/ is a version whose untitled layer is
	// a file named by its digest (TestOCIPushWithoutTitlesSeenNatively).
	m, _ := s.pushImage("img", "v1", "")
	var im v1.Manifest
	json.Unmarshal(m, &im)
	expect(t, s.do("GET", "/api/v1/repositories/img/-/versions/v1", nil), 200)
	if r := s.do("GET", "/api/v1/repositories/img/-/versions/v1/files", nil); !strings.Contains(string(r.body), `"path":"blobs/sha256/`+im.Layers[0].Digest.Encoded()+`"`) {
		t.Fatalf("files of a plain image: %s", r.body)
	}
	// A refused one-file publish records nothing.
	expect(t, s.do("PUT", "/api/v1/repositories/n/-/versions/1/files/a.txt", []byte("one")), 201)
	head, _ := s.log.Head(t.Context())
	expect(t, s.do("PUT", "/api/v1/repositories/n/-/versions/1/files/a.txt", []byte("two")), 409, "VERSION_EXISTS")
	if after, _ := s.log.Head(t.Context()); after != head {
		t.Fatalf("a refused publish appended %d events", after-head)
	}
	// A /v2/ tag on a version's derived manifest survives the version.
	o := s.do("GET", "/v2/n/manifests/1", nil)
	expect(t, s.do("PUT", "/v2/n/manifests/latest", o.body, "Content-Type: "+ociManifest), 201)
	expect(t, s.do("DELETE", "/api/v1/repositories/n/-/versions/1", nil), 204)
	expect(t, s.do("GET", "/v2/n/manifests/latest", nil), 200)
	expect(t, s.do("GET", "/v2/n/manifests/1", nil), 404)
	// Trailing data after a JSON manifest is refused.
	expect(t, s.do("PUT", "/api/v1/repositories/n/-/versions/2", []byte(`{"manifestVersion":1} {}`), "Content-Type: application/json"), 400, "MANIFEST_INVALID")
}

// TestConcurrentPublishes races publishes of different content to one
// version: exactly one wins, the others get 409, none a 5xx.
func TestConcurrentPublishes(t *testing.T) { forBackends(t, testConcurrentPublishes) }

func testConcurrentPublishes(t *testing.T, b backend) {
	s := b.server(t)
	codes := make(chan int, 8)
	for i := 0; i < 8; i++ {
		go func(i int) {
			r := s.do2("PUT", "/api/v1/repositories/race/-/versions/1/files/f.txt", []byte(fmt.Sprintf("content %d", i)))
			codes <- r.StatusCode
		}(i)
	}
	won := 0
	for i := 0; i < 8; i++ {
		switch c := <-codes; c {
		case 201:
			won++
		case 409:
		default:
			t.Errorf("a racing publish got %d", c)
		}
	}
	if won != 1 {
		t.Fatalf("%d publishes won, want exactly 1", won)
	}
}
