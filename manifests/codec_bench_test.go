package manifests

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"testing"
)

// benchManifest is shaped like a native manifest: a few scalar fields,
// annotations, and one entry per file.
type benchManifest struct {
	SchemaVersion int               `cbor:"schemaVersion" json:"schemaVersion"`
	MediaType     string            `cbor:"mediaType" json:"mediaType"`
	Annotations   map[string]string `cbor:"annotations,omitempty" json:"annotations,omitempty"`
	Files         []benchFile       `cbor:"files" json:"files"`
}

type benchFile struct {
	Path   string `cbor:"path" json:"path"`
	Size   uint64 `cbor:"size" json:"size"`
	Mode   uint32 `cbor:"mode" json:"mode"`
	SHA256 []byte `cbor:"sha256" json:"sha256"`
}

func newBenchManifest() benchManifest {
	m := benchManifest{
		SchemaVersion: 1,
		MediaType:     "application/vnd.artifact-store.manifest.v1+cbor",
		Annotations: map[string]string{
			"org.opencontainers.image.created": "2025-01-02T03:04:05Z",
			"org.opencontainers.image.source":  "https://example.com/repo",
		},
	}
	for i := range 10 {
		sum := sha256.Sum256(fmt.Appendf(nil, "file %d", i))
		m.Files = append(m.Files, benchFile{
			Path:   fmt.Sprintf("usr/share/doc/package-%d/README.md", i),
			Size:   uint64(1000 * (i + 1) * (i + 1)),
			Mode:   0o644,
			SHA256: sum[:],
		})
	}
	return m
}

func BenchmarkEncodeCBOR(b *testing.B) {
	m := newBenchManifest()
	for b.Loop() {
		if _, err := EncodeCBOR(&m); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeCBOR(b *testing.B) {
	data, err := EncodeCBOR(newBenchManifest())
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		var m benchManifest
		if err := DecodeCBOR(data, &m); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCBORToJSON(b *testing.B) {
	data, err := EncodeCBOR(newBenchManifest())
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := CBORToJSON(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCanonicalJSON(b *testing.B) {
	data, err := json.MarshalIndent(newBenchManifest(), "", "  ")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := CanonicalJSON(data); err != nil {
			b.Fatal(err)
		}
	}
}

// TestBenchManifestRoundTrip keeps the benchmark's inputs honest: the
// manifest decodes back from its canonical bytes.
func TestBenchManifestRoundTrip(t *testing.T) {
	data, err := EncodeCBOR(newBenchManifest())
	if err != nil {
		t.Fatal(err)
	}
	var m benchManifest
	if err := DecodeCBOR(data, &m); err != nil {
		t.Fatal(err)
	}
	if len(m.Files) != 10 || m.Files[9].Size != 100000 || len(m.Files[0].SHA256) != sha256.Size {
		t.Errorf("decoded %+v", m)
	}
}
