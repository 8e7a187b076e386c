package manifests

import (
	"errors"
	"strings"
	"testing"
	"time"

	godigest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestValidateTreeRule: a path that is another's directory is refused,
// wrapping ErrPathConflict and naming both; siblings sharing a prefix are
// not conflicts.
func TestValidateTreeRule(t *testing.T) {
	file := func(p string) File {
		return File{Path: p, Size: 1, MediaType: "text/plain", SHA256: "sha256:" + strings.Repeat("1", 64), BLAKE3: "blake3:" + strings.Repeat("2", 64)}
	}
	mk := func(paths ...string) *Native {
		n := exampleNative()
		n.Files = nil
		for _, p := range paths {
			n.Files = append(n.Files, file(p))
		}
		return n
	}
	for _, tc := range []struct{ paths []string }{
		{[]string{"a", "a/b"}},
		{[]string{"a", "a-b", "a.c", "a/b/c"}},
		{[]string{"d/e", "d/e/f/g"}},
	} {
		err := mk(tc.paths...).Validate()
		if !errors.Is(err, ErrPathConflict) || !errors.Is(err, ErrInvalid) {
			t.Errorf("%v: %v, want ErrPathConflict", tc.paths, err)
			continue
		}
		parent, child := tc.paths[0], tc.paths[len(tc.paths)-1]
		if !strings.Contains(err.Error(), `"`+parent+`"`) || !strings.Contains(err.Error(), `"`+child+`"`) {
			t.Errorf("%v: %q does not name %s and %s", tc.paths, err, parent, child)
		}
	}
	if err := mk("a", "a-b", "ab/c", "b/a").Validate(); err != nil {
		t.Errorf("siblings: %v", err)
	}
	// A manifest stored before the rule still decodes (so the server can
	// show it); publishing it again is refused.
	n := mk("a", "a/b")
	b, err := EncodeCBOR(n)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeNative(b); err != nil {
		t.Errorf("a stored conflicting manifest no longer decodes: %v", err)
	}
	if _, err := n.Encode(); !errors.Is(err, ErrPathConflict) {
		t.Errorf("Encode of a conflicting manifest: %v", err)
	}
}

func TestValidateMediaTypeUTF8(t *testing.T) {
	n := exampleNative()
	n.Files[0].MediaType = "text/plain; charset=\xff"
	if err := n.Validate(); !errors.Is(err, ErrInvalid) {
		t.Fatalf("non-UTF-8 mediaType: %v", err)
	}
}

// TestNativeFromOCIFiles: which layers of an OCI manifest the native view
// shows as files, and at which paths; the result always passes
// ValidateView.
func TestNativeFromOCIFiles(t *testing.T) {
	sha := func(c string) string { return "sha256:" + strings.Repeat(c, 64) }
	big := "sha512:" + strings.Repeat("1", 128)
	// What the repository holds, by any digest, to its SHA-256.
	held := map[string]string{sha("1"): sha("1"), sha("2"): sha("2"), sha("3"): sha("3"), sha("4"): sha("4"), sha("5"): sha("5"), big: sha("6")}
	lookup := func(d godigest.Digest) (string, string, bool) {
		s, ok := held[d.String()]
		return s, "blake3:" + strings.Repeat("b", 64), ok
	}
	layer := func(d, title string) Descriptor {
		l := Descriptor{MediaType: "application/octet-stream", Digest: godigest.Digest(d), Size: 1}
		if title != "" {
			l.Annotations = map[string]string{AnnotationTitle: title}
		}
		return l
	}
	for _, tc := range []struct {
		name   string
		layers []Descriptor
		want   []string // paths, sorted
	}{
		{"untitled layers", []Descriptor{layer(sha("1"), ""), layer(sha("2"), "")},
			[]string{"blobs/sha256/" + strings.Repeat("1", 64), "blobs/sha256/" + strings.Repeat("2", 64)}},
		{"titled first, then untitled; duplicates once", []Descriptor{layer(sha("1"), ""), layer(sha("2"), "x.txt"), layer(sha("1"), ""), layer(sha("3"), "x.txt")},
			[]string{"blobs/sha256/" + strings.Repeat("1", 64), "x.txt"}},
		{"a file cannot hold another", []Descriptor{layer(sha("1"), "a/b"), layer(sha("2"), "a"), layer(sha("3"), "a/b/c"), layer(sha("4"), "a-b")},
			[]string{"a-b", "a/b"}},
		{"a title named blobs hides untitled layers", []Descriptor{layer(sha("1"), ""), layer(sha("2"), "blobs")},
			[]string{"blobs"}},
		{"not held, invalid title", []Descriptor{layer(sha("9"), "gone"), layer(sha("9"), ""), layer(sha("5"), "../x")},
			[]string{}},
		{"sha512 layers by their blob's sha256", []Descriptor{layer(big, "big"), layer(big, "")},
			[]string{"big", "blobs/sha256/" + strings.Repeat("6", 64)}},
		{"no layers", nil, []string{}},
	} {
		m := &Manifest{MediaType: MediaTypeImageManifest, Image: &v1.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, Layers: tc.layers, Annotations: map[string]string{"": "empty key", "k": "v"}}}
		n := NativeFromOCI("r", "v1", m, time.Unix(0, 0), lookup)
		if n.Files == nil {
			t.Errorf("%s: Files is nil", tc.name)
		}
		var got []string
		for _, f := range n.Files {
			got = append(got, f.Path)
		}
		if strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("%s: files %q, want %q", tc.name, got, tc.want)
		}
		if err := n.ValidateView(); err != nil {
			t.Errorf("%s: the view does not validate: %v", tc.name, err)
		}
	}
}
