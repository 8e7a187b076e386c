package manifests

import (
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/artifact-store/artifact-store/digest"
	godigest "github.com/opencontainers/go-digest"
)

func exampleNative() *Native {
	return &Native{
		ManifestVersion: 1, Repository: "team/reports", Version: "2026.11", ArtifactType: "application/vnd.example.report",
		Files: []File{
			{Path: "README.md", Size: 8, MediaType: "text/markdown",
				SHA256: "sha256:" + strings.Repeat("1", 64), BLAKE3: "blake3:" + strings.Repeat("2", 64)},
			{Path: "data/q3.csv", Size: 1234, MediaType: "text/csv",
				SHA256: "sha256:" + strings.Repeat("3", 64), BLAKE3: "blake3:" + strings.Repeat("4", 64)},
		},
		Annotations: map[string]string{"team": "finance"},
		Created:     "2026-11-27T04:00:00Z",
	}
}

// TestDeriveOCIGolden pins the derived bytes: a change here changes every
// derived digest in every deployed store.
func TestDeriveOCIGolden(t *testing.T) {
	got, err := exampleNative().DeriveOCI()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.example.report",` +
		`"config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},` +
		`"layers":[{"mediaType":"text/markdown","digest":"sha256:` + strings.Repeat("1", 64) + `","size":8,"annotations":{"org.opencontainers.image.title":"README.md"}},` +
		`{"mediaType":"text/csv","digest":"sha256:` + strings.Repeat("3", 64) + `","size":1234,"annotations":{"org.opencontainers.image.title":"data/q3.csv"}}],` +
		`"annotations":{"org.opencontainers.image.created":"2026-11-27T04:00:00Z","org.opencontainers.image.version":"2026.11","team":"finance"}}`
	if string(got) != want {
		t.Fatalf("derived manifest changed:\n got %s\nwant %s", got, want)
	}
	m, err := Parse(MediaTypeImageManifest, got)
	if err != nil || m.EffectiveArtifactType() != "application/vnd.example.report" {
		t.Fatalf("derived manifest does not parse as an OCI artifact: %v", err)
	}
	for i := 0; i < 3; i++ {
		again, _ := exampleNative().DeriveOCI()
		if digest.FromBytes(digest.SHA256, again) != digest.FromBytes(digest.SHA256, got) {
			t.Fatal("derivation is not deterministic")
		}
	}
}

func TestNativeRoundTripAndOCIView(t *testing.T) {
	n := exampleNative()
	b, err := n.Encode()
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeNative(b)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := back.Encode(); string(again) != string(b) {
		t.Fatal("encode(decode(x)) != x")
	}
	oci, _ := n.DeriveOCI()
	m, _ := Parse(MediaTypeImageManifest, oci)
	view := NativeFromOCI(n.Repository, n.Version, m, time.Unix(0, 0), func(d godigest.Digest) (string, string, bool) {
		for _, f := range n.Files {
			if f.SHA256 == d.String() || f.BLAKE3 == d.String() {
				return f.SHA256, f.BLAKE3, true
			}
		}
		return "", "", false
	})
	view.Annotations = n.Annotations // the OCI view adds the version annotation
	vb, err := view.Encode()
	if err != nil || string(vb) != string(b) {
		t.Fatalf("the OCI view does not lead back to the native manifest: %v\n%+v", err, view)
	}
}

func TestValidateRefuses(t *testing.T) {
	for name, mut := range map[string]func(*Native){
		"version 2":        func(n *Native) { n.ManifestVersion = 2 },
		"no files":         func(n *Native) { n.Files = nil },
		"unsorted":         func(n *Native) { n.Files[0], n.Files[1] = n.Files[1], n.Files[0] },
		"duplicate":        func(n *Native) { n.Files[1].Path = n.Files[0].Path },
		"dot-dot":          func(n *Native) { n.Files[0].Path = "../x" },
		"absolute":         func(n *Native) { n.Files[0].Path = "/x" },
		"NUL":              func(n *Native) { n.Files[0].Path = "a\x00" },
		"backslash":        func(n *Native) { n.Files[0].Path = `a\b` },
		"sha256 as blake3": func(n *Native) { n.Files[0].BLAKE3 = n.Files[0].SHA256 },
		"local time":       func(n *Native) { n.Created = "2026-11-27T05:00:00+01:00" },
		"fractional time":  func(n *Native) { n.Created = "2026-11-27T04:00:00.5Z" },
		"bad version":      func(n *Native) { n.Version = "-x" },
	} {
		n := exampleNative()
		mut(n)
		if _, err := n.Encode(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// BenchmarkDeriveOCI measures deriving the OCI view of a 10-file native
// manifest, the work a pull of a native version would add if it were not
// stored at publish time.
func BenchmarkDeriveOCI(b *testing.B) {
	n := exampleNative()
	n.Files = nil
	for i := 0; i < 10; i++ {
		n.Files = append(n.Files, File{Path: fmt.Sprintf("dir/file-%02d.bin", i), Size: int64(i) << 20, MediaType: "application/octet-stream",
			SHA256: "sha256:" + strings.Repeat("a", 64), BLAKE3: "blake3:" + strings.Repeat("b", 64)})
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := n.DeriveOCI(); err != nil {
			b.Fatal(err)
		}
	}
}

// TestDocumentedExample keeps docs/native-manifest.md honest: its worked
// example must be what the code produces.
func TestDocumentedExample(t *testing.T) {
	doc, err := os.ReadFile("../docs/native-manifest.md")
	if err != nil {
		t.Fatal(err)
	}
	content := []byte("a,b\n1")
	n := &Native{ManifestVersion: 1, Repository: "team/reports", Version: "2026.11", ArtifactType: "application/vnd.example.report",
		Files: []File{{Path: "q3.csv", Size: 5, MediaType: "text/csv",
			SHA256: digest.FromBytes(digest.SHA256, content).String(), BLAKE3: digest.FromBytes(digest.BLAKE3, content).String()}},
		Annotations: map[string]string{"team": "finance"}, Created: "2026-11-27T04:00:00Z"}
	b, err := n.Encode()
	if err != nil {
		t.Fatal(err)
	}
	oci, _ := n.DeriveOCI()
	for _, want := range []string{
		hex.EncodeToString(b),
		digest.FromBytes(digest.SHA256, b).String(),
		digest.FromBytes(digest.BLAKE3, b).String(),
		string(oci),
		digest.FromBytes(digest.SHA256, oci).String(),
	} {
		if !strings.Contains(string(doc), want) {
			t.Errorf("docs/native-manifest.md does not show %.80s…", want)
		}
	}
}
