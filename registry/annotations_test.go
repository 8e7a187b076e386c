package registry_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/artifact-store/artifact-store/blobstore"
	"github.com/artifact-store/artifact-store/digest"
	"github.com/artifact-store/artifact-store/manifests"
)

func annotationJSON(n, valueLen int) string {
	m := make(map[string]string, n)
	for i := 0; i < n; i++ {
		m[fmt.Sprintf("k%06d", i)] = strings.Repeat("v", valueLen)
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// storedNothing fails the test if the log grew past head or the store
// holds content.
func storedNothing(t *testing.T, s *testServer, head int64, content []byte) {
	t.Helper()
	if after, err := s.log.Head(t.Context()); err != nil || after != head {
		t.Fatalf("log head %d (%v), want %d: a refused request recorded events", after, err, head)
	}
	if _, err := s.blobs.Stat(t.Context(), digest.FromBytes(digest.SHA256, content)); !errors.Is(err, blobstore.ErrNotFound) {
		t.Fatalf("a refused request stored its bytes: %v", err)
	}
}

// TestAnnotationLimits: manifests and native publishes with unreasonable
// annotations are refused with 400 MANIFEST_INVALID naming the limit,
// before anything is stored; at the limit they are accepted, searchable
// and served whole.
func TestAnnotationLimits(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		s := b.server(t)
		_, _ = s.pushImage("r", "base", "")
		cfg := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
		cd := s.pushBlob("r", cfg)
		manifest := func(annotations string) []byte {
			return []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[],"annotations":%s}`,
				cd, len(cfg), annotations))
		}
		head, _ := s.log.Head(t.Context())

		// 100,000 keys: refused before anything is stored.
		huge := manifest(annotationJSON(100_000, 0))
		start := time.Now()
		r := s.do("PUT", "/v2/r/manifests/huge", huge, "Content-Type: application/vnd.oci.image.manifest.v1+json")
		t.Logf("100,000-key manifest (%d bytes) refused in %v", len(huge), time.Since(start))
		expect(t, r, 400, "MANIFEST_INVALID")
		if !strings.Contains(string(r.body), fmt.Sprint(manifests.MaxAnnotations)) {
			t.Fatalf("message does not name the limit: %s", r.body)
		}
		storedNothing(t, s, head, huge)

		// One key over, and one byte over.
		over := manifest(annotationJSON(manifests.MaxAnnotations+1, 0))
		expect(t, s.do("PUT", "/v2/r/manifests/over", over, "Content-Type: application/vnd.oci.image.manifest.v1+json"), 400, "MANIFEST_INVALID")
		storedNothing(t, s, head, over)

		// At the limit: every key, MaxAnnotationBytes in all.
		perValue := manifests.MaxAnnotationBytes/manifests.MaxAnnotations - 7
		full := manifest(annotationJSON(manifests.MaxAnnotations, perValue))
		start = time.Now()
		expect(t, s.do("PUT", "/v2/r/manifests/full", full, "Content-Type: application/vnd.oci.image.manifest.v1+json"), 201)
		t.Logf("manifest at the limit (%d keys, %d bytes of annotations) pushed in %v", manifests.MaxAnnotations, manifests.MaxAnnotationBytes, time.Since(start))
		got := s.do("GET", "/v2/r/manifests/full", nil, "Accept: application/vnd.oci.image.manifest.v1+json")
		if got.StatusCode != 200 || string(got.body) != string(full) {
			t.Fatalf("GET the manifest at the limit: %d", got.StatusCode)
		}
		hit := s.do("GET", "/api/v1/search?annotation=k000511="+strings.Repeat("v", perValue), nil)
		if hit.StatusCode != 200 || !strings.Contains(string(hit.body), `"full"`) {
			t.Fatalf("search by the last annotation: %d %s", hit.StatusCode, hit.body)
		}

		// Native publish of one file: annotations in the query, refused
		// before the body is stored.
		body := randomBytes(t, 100)
		head, _ = s.log.Head(t.Context())
		q := url.Values{}
		for i := 0; i < manifests.MaxAnnotations-1; i++ {
			q.Add("annotation", fmt.Sprintf("k%06d=v", i))
		}
		r = s.do("PUT", "/api/v1/repositories/r/-/versions/n1/files/f.txt?"+q.Encode(), body)
		expect(t, r, 400, "MANIFEST_INVALID")
		storedNothing(t, s, head, body)
		q.Del("annotation")
		for i := 0; i < manifests.MaxAnnotations-2; i++ {
			q.Add("annotation", fmt.Sprintf("k%06d=v", i))
		}
		expect(t, s.do("PUT", "/api/v1/repositories/r/-/versions/n1/files/f.txt?"+q.Encode(), body), 201)
		var oci struct{ Annotations map[string]string }
		json.Unmarshal(s.do("GET", "/v2/r/manifests/n1", nil).body, &oci)
		if len(oci.Annotations) != manifests.MaxAnnotations {
			t.Fatalf("the derived manifest has %d annotations, want %d", len(oci.Annotations), manifests.MaxAnnotations)
		}

		// Native publish of a JSON manifest one key over: refused whole.
		up := s.uploadFile("r", "g.txt", []byte("g"))
		head, _ = s.log.Head(t.Context())
		nm := fmt.Sprintf(`{"manifestVersion":1,"files":[{"path":"g.txt","size":1,"mediaType":"text/plain","sha256":%q,"blake3":%q}],"annotations":%s}`,
			up.SHA256, up.BLAKE3, annotationJSON(manifests.MaxAnnotations-1, 0))
		expect(t, s.do("PUT", "/api/v1/repositories/r/-/versions/n2", []byte(nm), "Content-Type: application/json"), http.StatusBadRequest, "MANIFEST_INVALID")
		if after, _ := s.log.Head(t.Context()); after != head {
			t.Fatalf("a refused native publish recorded %d events", after-head)
		}
	})
}

// TestLongAnnotationValues: one long, incompressible annotation value (a
// signature bundle) is accepted and searchable on every backend; an
// overlong key is refused before anything is stored.
func TestLongAnnotationValues(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		s := b.server(t)
		cfg := []byte(`{}`)
		cd := s.pushBlob("r", cfg)
		manifest := func(ann map[string]string) []byte {
			a, _ := json.Marshal(ann)
			return []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":2},"layers":[],"annotations":%s}`, cd, a))
		}
		long := base64Std(randomBytes(t, 45_000)) // 60,000 bytes, incompressible
		expect(t, s.do("PUT", "/v2/r/manifests/signed", manifest(map[string]string{"dev.example.bundle": long}), "Content-Type: "+ociManifest), http.StatusCreated)
		hit := s.do("GET", "/api/v1/search?annotation=dev.example.bundle="+url.QueryEscape(long), nil)
		if hit.StatusCode != http.StatusOK || !strings.Contains(string(hit.body), `"signed"`) {
			t.Fatalf("search by a long value: %d %.300s", hit.StatusCode, hit.body)
		}
		head, _ := s.log.Head(t.Context())
		bad := manifest(map[string]string{strings.Repeat("k", manifests.MaxAnnotationKey+1): "v"})
		r := s.do("PUT", "/v2/r/manifests/badkey", bad, "Content-Type: "+ociManifest)
		expect(t, r, http.StatusBadRequest, "MANIFEST_INVALID")
		storedNothing(t, s, head, bad)
	})
}

// TestTooManyLayers: a manifest naming more layers than MaxDescriptors is
// refused before anything is stored.
func TestTooManyLayers(t *testing.T) {
	s := newServer(t)
	cd := s.pushBlob("r", []byte("{}"))
	var layers strings.Builder
	for i := range manifests.MaxDescriptors + 1 {
		if i > 0 {
			layers.WriteString(",")
		}
		fmt.Fprintf(&layers, `{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%064x","size":1}`, i)
	}
	m := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":2},"layers":[%s]}`, cd, layers.String()))
	head, _ := s.log.Head(t.Context())
	r := s.do("PUT", "/v2/r/manifests/many", m, "Content-Type: "+ociManifest)
	expect(t, r, http.StatusBadRequest, "MANIFEST_INVALID")
	if !strings.Contains(string(r.body), fmt.Sprint(manifests.MaxDescriptors)) {
		t.Fatalf("the refusal does not name the limit: %s", r.body)
	}
	storedNothing(t, s, head, m)
}
