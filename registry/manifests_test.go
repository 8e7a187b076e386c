package registry_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/artifact-store/artifact-store/registry"
)

const (
	ociManifest = "application/vnd.oci.image.manifest.v1+json"
	ociIndex    = "application/vnd.oci.image.index.v1+json"
	dockerV2    = "application/vnd.docker.distribution.manifest.v2+json"
	dockerList  = "application/vnd.docker.distribution.manifest.list.v2+json"
)

func TestManifestByTagAndDigest(t *testing.T) { forBackends(t, testManifestByTagAndDigest) }

func testManifestByTagAndDigest(t *testing.T, b backend) {
	s := b.server(t)
	m, d := s.pushImage("lib/app", "v1", "")
	for _, ref := range []string{"v1", d} {
		r := s.do("GET", "/v2/lib/app/manifests/"+ref, nil, "Accept: "+ociIndex, "Accept: "+ociManifest)
		expect(t, r, 200)
		if string(r.body) != string(m) || r.Header.Get("Content-Type") != ociManifest ||
			r.Header.Get("Docker-Content-Digest") != d || r.ContentLength != int64(len(m)) {
			t.Fatalf("GET %s: type %q digest %q len %d", ref, r.Header.Get("Content-Type"), r.Header.Get("Docker-Content-Digest"), r.ContentLength)
		}
		h := s.do("HEAD", "/v2/lib/app/manifests/"+ref, nil)
		expect(t, h, 200)
		if len(h.body) != 0 || h.ContentLength != int64(len(m)) {
			t.Fatalf("HEAD %s: body %d bytes, Content-Length %d", ref, len(h.body), h.ContentLength)
		}
	}
	// Content negotiation: a client that accepts only Docker types does
	// not get an OCI manifest it cannot parse.
	expect(t, s.do("GET", "/v2/lib/app/manifests/v1", nil, "Accept: "+dockerV2), 406, "MANIFEST_UNKNOWN")
	expect(t, s.do("GET", "/v2/lib/app/manifests/v1", nil, "Accept: */*"), 200)
	// Conditional GET by digest ETag.
	expect(t, s.do("GET", "/v2/lib/app/manifests/v1", nil, `If-None-Match: "`+d+`"`), 304)

	// Re-tag, then delete the tag: the manifest stays.
	expect(t, s.do("PUT", "/v2/lib/app/manifests/latest", m, "Content-Type: "+ociManifest), 201)
	expect(t, s.do("DELETE", "/v2/lib/app/manifests/latest", nil), 202)
	expect(t, s.do("GET", "/v2/lib/app/manifests/latest", nil), 404, "MANIFEST_UNKNOWN")
	expect(t, s.do("GET", "/v2/lib/app/manifests/"+d, nil), 200)
	// Delete by digest removes the manifest and its remaining tags.
	expect(t, s.do("DELETE", "/v2/lib/app/manifests/"+d, nil), 202)
	expect(t, s.do("HEAD", "/v2/lib/app/manifests/"+d, nil), 404)
	expect(t, s.do("HEAD", "/v2/lib/app/manifests/v1", nil), 404)
}

func TestDockerManifestAndList(t *testing.T) { forBackends(t, testDockerManifestAndList) }

func testDockerManifestAndList(t *testing.T, b backend) {
	s := b.server(t)
	cfg := []byte(`{"architecture":"amd64","os":"linux"}`)
	layer := randomBytes(t, 1000)
	m := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":%d,"digest":%q},"layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":%d,"digest":%q},{"mediaType":"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip","size":5,"digest":"sha256:%s","urls":["https://example.com/l"]}]}`,
		dockerV2, len(cfg), s.pushBlob("d", cfg), len(layer), s.pushBlob("d", layer), strings.Repeat("b", 64)))
	expect(t, s.do("PUT", "/v2/d/manifests/v1", m, "Content-Type: "+dockerV2), 201)
	list := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"manifests":[{"mediaType":%q,"size":%d,"digest":%q,"platform":{"architecture":"amd64","os":"linux"}}]}`,
		dockerList, dockerV2, len(m), sha256Of(m)))
	r := s.do("PUT", "/v2/d/manifests/multi", list, "Content-Type: "+dockerList)
	expect(t, r, 201)
	got := s.do("GET", "/v2/d/manifests/multi", nil, "Accept: "+dockerList+", "+dockerV2)
	expect(t, got, 200)
	if got.Header.Get("Content-Type") != dockerList || string(got.body) != string(list) {
		t.Fatalf("manifest list came back as %q", got.Header.Get("Content-Type"))
	}
}

func TestReferrers(t *testing.T) { forBackends(t, testReferrers) }

func testReferrers(t *testing.T, b backend) {
	s := b.server(t)
	_, subject := s.pushImage("r", "base", "")
	// Referrers pushed before and after, with different artifact types.
	subj := fmt.Sprintf(`,"subject":{"mediaType":%q,"digest":%q,"size":1}`, ociManifest, subject)
	empty := s.pushBlob("r", []byte("{}"))
	art := func(at, note string) (string, []byte) {
		m := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"artifactType":%q,"config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":%q,"size":2},"layers":[]%s,"annotations":{"note":%q}}`,
			ociManifest, at, empty, subj, note))
		r := s.do("PUT", "/v2/r/manifests/"+sha256Of(m), m, "Content-Type: "+ociManifest)
		expect(t, r, 201)
		if r.Header.Get("OCI-Subject") != subject {
			t.Fatalf("OCI-Subject = %q", r.Header.Get("OCI-Subject"))
		}
		return sha256Of(m), m
	}
	sbom, _ := art("application/spdx+json", "sbom")
	sig, _ := art("application/vnd.dev.sig", "sig")
	_, plain := s.pushImage("r", "plain", subj)

	type index struct {
		SchemaVersion int
		MediaType     string
		Manifests     []struct {
			MediaType, Digest, ArtifactType string
			Size                            int64
			Annotations                     map[string]string
		}
	}
	list := func(q string) (index, response) {
		r := s.do("GET", "/v2/r/referrers/"+subject+q, nil)
		expect(t, r, 200)
		if r.Header.Get("Content-Type") != ociIndex {
			t.Fatalf("referrers Content-Type %q", r.Header.Get("Content-Type"))
		}
		var ix index
		if err := json.Unmarshal(r.body, &ix); err != nil {
			t.Fatal(err)
		}
		return ix, r
	}
	ix, r := list("")
	if len(ix.Manifests) != 3 || r.Header.Get("OCI-Filters-Applied") != "" {
		t.Fatalf("unfiltered referrers: %+v", ix)
	}
	types := map[string]string{}
	for _, m := range ix.Manifests {
		types[m.Digest] = m.ArtifactType
	}
	want := map[string]string{sbom: "application/spdx+json", sig: "application/vnd.dev.sig", plain: "application/vnd.oci.image.config.v1+json"}
	if !reflect.DeepEqual(types, want) {
		t.Fatalf("artifact types %v, want %v", types, want)
	}
	ix, r = list("?artifactType=application/spdx%2Bjson")
	if len(ix.Manifests) != 1 || ix.Manifests[0].Digest != sbom || ix.Manifests[0].Annotations["note"] != "sbom" || r.Header.Get("OCI-Filters-Applied") != "artifactType" {
		t.Fatalf("filtered referrers: %+v, header %q", ix, r.Header.Get("OCI-Filters-Applied"))
	}
	// An unknown subject, even in an unknown repository, has no referrers.
	r = s.do("GET", "/v2/nowhere/referrers/"+sha256Of([]byte("none")), nil)
	expect(t, r, 200)
	if !strings.Contains(string(r.body), `"manifests":[]`) {
		t.Fatalf("empty referrers body %s", r.body)
	}
	// Deleting a referrer removes it from the list.
	expect(t, s.do("DELETE", "/v2/r/manifests/"+sig, nil), 202)
	if ix, _ := list(""); len(ix.Manifests) != 2 {
		t.Fatalf("%d referrers after delete", len(ix.Manifests))
	}
}

func TestTagParamsAndPagination(t *testing.T) { forBackends(t, testTagParamsAndPagination) }

func testTagParamsAndPagination(t *testing.T, b backend) {
	s := b.server(t)
	m, d := s.pushImage("p", d0(), "")
	r := s.do("PUT", "/v2/p/manifests/"+d+"?tag=b&tag=a&tag=c", m, "Content-Type: "+ociManifest)
	expect(t, r, 201)
	if got := r.Header.Values("OCI-Tag"); !reflect.DeepEqual(got, []string{"b", "a", "c"}) {
		t.Fatalf("OCI-Tag = %v", got)
	}
	var tl struct {
		Name string
		Tags []string
	}
	r = s.do("GET", "/v2/p/tags/list", nil)
	json.Unmarshal(r.body, &tl)
	if !reflect.DeepEqual(tl.Tags, []string{"a", "b", "c", d0()}) || tl.Name != "p" {
		t.Fatalf("tags %+v", tl)
	}
	r = s.do("GET", "/v2/p/tags/list?n=2", nil)
	json.Unmarshal(r.body, &tl)
	if !reflect.DeepEqual(tl.Tags, []string{"a", "b"}) || r.Header.Get("Link") != `</v2/p/tags/list?last=b&n=2>; rel="next"` {
		t.Fatalf("page 1: %v, Link %q", tl.Tags, r.Header.Get("Link"))
	}
	r = s.do("GET", "/v2/p/tags/list?n=2&last=b", nil)
	json.Unmarshal(r.body, &tl)
	if !reflect.DeepEqual(tl.Tags, []string{"c", d0()}) || r.Header.Get("Link") != "" {
		t.Fatalf("page 2: %v, Link %q", tl.Tags, r.Header.Get("Link"))
	}
	r = s.do("GET", "/v2/p/tags/list?n=0", nil)
	json.Unmarshal(r.body, &tl)
	if len(tl.Tags) != 0 {
		t.Fatalf("n=0 gave %v", tl.Tags)
	}
	for _, repo := range []string{"z", "m/n", "a"} {
		s.pushBlob(repo, []byte(repo))
	}
	var cat struct{ Repositories []string }
	r = s.do("GET", "/v2/_catalog?n=2", nil)
	json.Unmarshal(r.body, &cat)
	if !reflect.DeepEqual(cat.Repositories, []string{"a", "m/n"}) || !strings.Contains(r.Header.Get("Link"), "last=m%2Fn") {
		t.Fatalf("catalog page 1 %v, Link %q", cat.Repositories, r.Header.Get("Link"))
	}
	r = s.do("GET", "/v2/_catalog?n=2&last=m/n", nil)
	json.Unmarshal(r.body, &cat)
	if !reflect.DeepEqual(cat.Repositories, []string{"p", "z"}) {
		t.Fatalf("catalog page 2 %v", cat.Repositories)
	}
}

func d0() string { return "v0" }

func TestSparseManifestsOption(t *testing.T) { forBackends(t, testSparseManifestsOption) }

func testSparseManifestsOption(t *testing.T, b backend) {
	s := b.server(t, func(o *registry.Options) { o.AllowSparse = true })
	cfg := s.pushBlob("r", []byte("{}"))
	m := []byte(fmt.Sprintf(`{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":%q,"size":2},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":3}]}`, cfg, strings.Repeat("c", 64)))
	expect(t, s.do("PUT", "/v2/r/manifests/sparse", m, "Content-Type: "+ociManifest), 201)
	ix := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"manifests":[{"mediaType":%q,"digest":"sha256:%s","size":9}]}`, ociIndex, ociManifest, strings.Repeat("d", 64)))
	expect(t, s.do("PUT", "/v2/r/manifests/sparse-index", ix, "Content-Type: "+ociIndex), 201)
	// The config is required all the same.
	noConfig := []byte(fmt.Sprintf(`{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:%s","size":2},"layers":[]}`, strings.Repeat("e", 64)))
	expect(t, s.do("PUT", "/v2/r/manifests/noconfig", noConfig, "Content-Type: "+ociManifest), 400, "MANIFEST_BLOB_UNKNOWN")
}

// TestIndexChildren: an index is accepted when its repository holds every
// child it names (one named by another algorithm's digest of its bytes),
// and refused, naming the child, when one is held only by another
// repository.
func TestIndexChildren(t *testing.T) { forBackends(t, testIndexChildren) }

func testIndexChildren(t *testing.T, b backend) {
	s := b.server(t)
	desc := func(m []byte, d string) string {
		return fmt.Sprintf(`{"mediaType":%q,"digest":%q,"size":%d}`, ociManifest, d, len(m))
	}
	index := func(children ...string) []byte {
		return []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"manifests":[%s]}`, ociIndex, strings.Join(children, ",")))
	}
	var children []string
	for i := range 3 {
		m, d := s.pushImage("r", fmt.Sprint("c", i), "")
		if i == 2 {
			d = blake3Of(m)
		}
		children = append(children, desc(m, d))
	}
	expect(t, s.do("PUT", "/v2/r/manifests/all", index(children...), "Content-Type: "+ociIndex), 201)
	m, d := s.pushImage("elsewhere", "x", "")
	r := s.do("PUT", "/v2/r/manifests/foreign", index(append(children, desc(m, d))...), "Content-Type: "+ociIndex)
	expect(t, r, 400, "MANIFEST_BLOB_UNKNOWN")
	if !strings.Contains(string(r.body), d) {
		t.Fatalf("the refusal does not name the missing child %s: %s", d, r.body)
	}
}
