package manifests

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	godigest "github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestParseReturnsImageSpecTypes pins the boundary with image-spec and
// go-digest (ADR 0001, 0005): Parse hands out image-spec's v1.Manifest or
// v1.Index, whose sha256 descriptor digests validate with go-digest; digests
// go-digest cannot validate (blake3) are accepted by the store's rules, and
// one go-digest accepts but the store does not compute (sha384) is refused.
func TestParseReturnsImageSpecTypes(t *testing.T) {
	m, err := Parse(MediaTypeImageManifest, []byte(`{"schemaVersion":2,"config":`+cfg+`,"layers":[`+layer+`],"subject":`+cfg+`}`))
	if err != nil {
		t.Fatal(err)
	}
	var image *v1.Manifest = m.Image
	if image == nil || m.Index != nil || image.SchemaVersion != 2 || len(image.Layers) != 1 || m.Subject() != image.Subject {
		t.Fatalf("image manifest parsed as %+v", m)
	}
	for _, d := range []godigest.Digest{image.Config.Digest, image.Layers[0].Digest, m.Subject().Digest} {
		if err := d.Validate(); err != nil || d.Algorithm() != godigest.SHA256 || d.Encoded() != strings.TrimPrefix(someDigest, "sha256:") {
			t.Errorf("descriptor digest %q: %v", d, err)
		}
	}
	if blobs := m.Blobs(); len(blobs) != 2 || blobs[0].Digest != image.Config.Digest {
		t.Errorf("Blobs() = %+v", blobs)
	}

	ix, err := Parse("", []byte(`{"schemaVersion":2,"mediaType":"`+v1.MediaTypeImageIndex+`","manifests":[`+cfg+`]}`))
	if err != nil {
		t.Fatal(err)
	}
	var index *v1.Index = ix.Index
	if index == nil || ix.Image != nil || ix.MediaType != v1.MediaTypeImageIndex || len(index.Manifests) != 1 || index.Manifests[0].Digest.Validate() != nil || ix.Blobs() != nil {
		t.Fatalf("index parsed as %+v", ix)
	}

	b3 := godigest.Digest("blake3:" + strings.Repeat("0", 64))
	withLayer := func(d godigest.Digest) []byte {
		return []byte(`{"schemaVersion":2,"config":` + cfg + `,"layers":[{"mediaType":"a/b","digest":"` + string(d) + `","size":1}]}`)
	}
	if err := b3.Validate(); !errors.Is(err, godigest.ErrDigestUnsupported) {
		t.Errorf("go-digest on blake3: %v; if it validates now, ADR 0001's reason to keep our digest package is gone", err)
	}
	if m, err := Parse(MediaTypeImageManifest, withLayer(b3)); err != nil || m.Image.Layers[0].Digest != b3 {
		t.Errorf("a blake3 layer digest: %v", err)
	}
	sha384 := godigest.SHA384.FromBytes(nil)
	if err := sha384.Validate(); err != nil {
		t.Fatalf("go-digest on sha384: %v", err)
	}
	if _, err := Parse(MediaTypeImageManifest, withLayer(sha384)); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "sha384") {
		t.Errorf("a sha384 layer digest: %v, want ErrInvalid naming sha384", err)
	}
}

// TestDerivedIsImageSpecManifest: the derived manifest decodes into
// image-spec's v1.Manifest, and encoding that value again gives the same
// bytes, so the derivation writes exactly image-spec's shape.
func TestDerivedIsImageSpecManifest(t *testing.T) {
	n := exampleNative()
	for _, files := range [][]File{n.Files, {}} {
		n.Files = files
		got, err := n.DeriveOCI()
		if err != nil {
			t.Fatal(err)
		}
		var m v1.Manifest
		dec := json.NewDecoder(bytes.NewReader(got))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&m); err != nil {
			t.Fatal(err)
		}
		if again, err := marshalNoEscape(m); err != nil || !bytes.Equal(again, got) {
			t.Fatalf("re-encoded through v1.Manifest:\n got %s\nwant %s", again, got)
		}
		if m.Config.Digest != v1.DescriptorEmptyJSON.Digest || len(m.Layers) != len(files) {
			t.Fatalf("derived %s", got)
		}
	}
}
