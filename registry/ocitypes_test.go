package registry_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestManifestMemberNamesStrict: a manifest whose member names only
// encoding/json's case folding would read ("Layers"), or with a member
// repeated, is refused with 400 MANIFEST_INVALID naming the member, and
// nothing is stored; the same manifest spelled exactly is accepted.
func TestManifestMemberNamesStrict(t *testing.T) {
	s := newServer(t)
	good, _ := s.pushImage("app", "good", "")
	for _, c := range []struct{ name, from, to, want string }{
		{"case", `"layers":`, `"Layers":`, `"Layers" must be spelled "layers"`},
		{"repeated", `"schemaVersion":2,`, `"schemaVersion":2,"schemaVersion":2,`, `"schemaVersion" appears more than once`},
	} {
		bad := bytes.Replace(good, []byte(c.from), []byte(c.to), 1)
		r := s.do("PUT", "/v2/app/manifests/bad", bad, "Content-Type: "+v1.MediaTypeImageManifest)
		expect(t, r, http.StatusBadRequest, "MANIFEST_INVALID")
		if !strings.Contains(string(r.body), strings.ReplaceAll(c.want, `"`, `\"`)) {
			t.Errorf("%s: body %s does not say %s", c.name, r.body, c.want)
		}
		expect(t, s.do("GET", "/v2/app/manifests/"+sha256Of(bad), nil), http.StatusNotFound, "MANIFEST_UNKNOWN")
	}
	expect(t, s.do("GET", "/v2/app/manifests/bad", nil), http.StatusNotFound, "MANIFEST_UNKNOWN")
}

// TestReferrersIsImageSpecIndex: the referrers response decodes into
// image-spec's v1.Index with no member left over, re-encodes to the same
// bytes, and its descriptors' digests validate with go-digest.
func TestReferrersIsImageSpecIndex(t *testing.T) {
	s := newServer(t)
	subject, sd := s.pushImage("app", "1", "")
	_, rd := s.pushImage("app", "sig", fmt.Sprintf(`,"artifactType":"application/vnd.example.sig","subject":{"mediaType":%q,"digest":%q,"size":%d},"annotations":{"note":"<&>"}`,
		v1.MediaTypeImageManifest, sd, len(subject)))
	r := s.do("GET", "/v2/app/referrers/"+sd, nil)
	expect(t, r, http.StatusOK)
	var ix v1.Index
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ix); err != nil {
		t.Fatal(err)
	}
	again, err := json.Marshal(ix)
	if err != nil || !bytes.Equal(again, r.body) {
		t.Fatalf("re-encoded through v1.Index:\n got %s\nwant %s", again, r.body)
	}
	if len(ix.Manifests) != 1 || ix.Manifests[0].Digest.String() != rd || ix.Manifests[0].Digest.Validate() != nil ||
		ix.Manifests[0].ArtifactType != "application/vnd.example.sig" || ix.Manifests[0].Annotations["note"] != "<&>" {
		t.Fatalf("referrers %s", r.body)
	}
}
