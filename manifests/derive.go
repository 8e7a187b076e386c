package manifests

import (
	"bytes"
	"encoding/json"
	"sort"
	"strings"
	"time"

	godigest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// The OCI view of a native artifact: an image manifest with artifactType,
// the empty config and one layer per file. Derivation rules (each is part
// of the derived manifest's identity; changing one changes every derived
// digest, so they change only with a new native format version):
//
//   - schemaVersion 2, mediaType application/vnd.oci.image.manifest.v1+json;
//   - artifactType: the native artifactType, or DefaultArtifactType;
//   - config: the empty descriptor (application/vnd.oci.empty.v1+json,
//     the 2-byte "{}" blob);
//   - layers: one per file, in path order: the file's mediaType, sha256
//     digest and size, annotated org.opencontainers.image.title = path;
//   - subject: the native subject, if any;
//   - annotations: the native annotations, plus
//     org.opencontainers.image.created = created and
//     org.opencontainers.image.version = version (these two win).
//
// The bytes are encoding/json of image-spec's v1.Manifest (fields in
// declaration order, map keys sorted, no HTML escaping), so a native
// manifest always derives the same bytes, on every replica and after every
// replay. TestDeriveOCIGolden pins them.

// Annotation keys the derivation uses.
const (
	AnnotationTitle   = "org.opencontainers.image.title"
	AnnotationCreated = "org.opencontainers.image.created"
	AnnotationVersion = "org.opencontainers.image.version"
)

// EmptyConfig returns the bytes of the empty config blob, "{}".
func EmptyConfig() []byte { return []byte("{}") }

// DeriveOCI returns the OCI image manifest that shows n on /v2/. It
// refuses (ErrInvalid) a manifest whose annotations, with the two the
// derivation adds, are over the limits Parse applies on /v2/.
//
// The bytes are those of image-spec's v1.Manifest: its fields are in the
// order the rules list, and every member it omits when empty (mediaType,
// artifactType, annotations) is never empty here, while layers is always
// written, as [] for a version without files.
func (n *Native) DeriveOCI() ([]byte, error) {
	m := v1.Manifest{
		Versioned:    specs.Versioned{SchemaVersion: 2},
		MediaType:    v1.MediaTypeImageManifest,
		ArtifactType: n.ArtifactType,
		// The empty descriptor without its data member.
		Config:      v1.Descriptor{MediaType: v1.DescriptorEmptyJSON.MediaType, Digest: v1.DescriptorEmptyJSON.Digest, Size: v1.DescriptorEmptyJSON.Size},
		Layers:      make([]v1.Descriptor, len(n.Files)),
		Annotations: make(map[string]string, len(n.Annotations)+2),
	}
	if m.ArtifactType == "" {
		m.ArtifactType = DefaultArtifactType
	}
	for i, f := range n.Files {
		m.Layers[i] = v1.Descriptor{MediaType: f.MediaType, Digest: godigest.Digest(f.SHA256), Size: f.Size,
			Annotations: map[string]string{AnnotationTitle: f.Path}}
	}
	if s := n.Subject; s != nil {
		m.Subject = &v1.Descriptor{MediaType: s.MediaType, Digest: godigest.Digest(s.Digest), Size: s.Size}
	}
	for k, v := range n.Annotations {
		m.Annotations[k] = v
	}
	m.Annotations[AnnotationCreated] = n.Created
	m.Annotations[AnnotationVersion] = n.Version
	if err := annotationLimits(m.Annotations); err != nil {
		return nil, invalid("with %s and %s added for /v2/, %v; remove some annotations", AnnotationCreated, AnnotationVersion, err)
	}
	return marshalNoEscape(m)
}

// marshalNoEscape is json.Marshal without HTML escaping and without the
// trailing newline json.Encoder adds.
func marshalNoEscape(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// NativeFromOCI shows an OCI manifest pushed by an OCI client (oras, say)
// as a native version, so that every client that pulls native versions can
// pull it. Its files are the layers the repository can serve:
//
//   - a layer titled with a valid path (org.opencontainers.image.title, as
//     oras writes) is the file at that path;
//   - an untitled layer (a container image's) is the file at
//     blobs/sha256/<hex> of its blob's SHA-256, the path an OCI image
//     layout gives it;
//   - a layer lookup does not know (bytes the repository does not hold) is
//     not a file; nor is a layer whose path another file already has or
//     that would put a file under another file ("a" and "a/b"): titled
//     layers are taken first, then untitled ones, each in layer order.
//
// Files is never nil: an index, or a manifest without such layers, is a
// version with no files ("files": []), which ValidateView accepts. lookup
// resolves a layer's digest (of any algorithm) to the blob's SHA-256 and
// BLAKE3 digests. created is used unless the manifest carries a creation
// annotation.
func NativeFromOCI(repo, version string, m *Manifest, created time.Time, lookup func(godigest.Digest) (sha256, blake3 string, ok bool)) *Native {
	n := &Native{ManifestVersion: NativeVersion1, Repository: repo, Version: version,
		ArtifactType: m.EffectiveArtifactType(), Created: FormatCreated(created), Files: []File{}}
	var layers []Descriptor
	if m.Image != nil {
		layers = m.Image.Layers
	}
	if t, err := time.Parse(time.RFC3339, m.Annotations()[AnnotationCreated]); err == nil {
		n.Created = FormatCreated(t)
	}
	t := newTree()
	add := func(l Descriptor, title string) {
		if len(n.Files) == MaxFiles {
			return
		}
		sha, b3, ok := lookup(l.Digest)
		if !ok {
			return
		}
		p := title
		if p == "" {
			p = UntitledPath(sha)
		}
		if ValidPath(p) != nil || !t.fits(p) {
			return
		}
		t.add(p)
		n.Files = append(n.Files, File{Path: p, Size: l.Size, MediaType: l.MediaType, SHA256: sha, BLAKE3: b3})
	}
	for _, l := range layers {
		if title := l.Annotations[AnnotationTitle]; title != "" {
			add(l, title)
		}
	}
	for _, l := range layers {
		if l.Annotations[AnnotationTitle] == "" {
			add(l, "")
		}
	}
	sort.Slice(n.Files, func(i, j int) bool { return n.Files[i].Path < n.Files[j].Path })
	for k, v := range m.Annotations() {
		if k != AnnotationCreated && k != "" {
			if n.Annotations == nil {
				n.Annotations = map[string]string{}
			}
			n.Annotations[k] = v
		}
	}
	if s := m.Subject(); s != nil {
		n.Subject = &Subject{MediaType: s.MediaType, Digest: s.Digest.String(), Size: s.Size}
	}
	return n
}

// UntitledPath is the native path of a layer without a title: where an
// OCI image layout keeps the blob ("blobs/sha256/<hex>").
func UntitledPath(sha256 string) string {
	return "blobs/" + strings.Replace(sha256, ":", "/", 1)
}

// tree is the set of paths taken so far and the directories they imply.
type tree struct{ files, dirs map[string]bool }

func newTree() tree { return tree{files: map[string]bool{}, dirs: map[string]bool{}} }

// fits reports whether p can join the tree: not taken, not a directory of
// a file, and no file is one of its directories.
func (t tree) fits(p string) bool {
	if t.files[p] || t.dirs[p] {
		return false
	}
	for i := 0; i < len(p); i++ {
		if p[i] == '/' && t.files[p[:i]] {
			return false
		}
	}
	return true
}

func (t tree) add(p string) {
	t.files[p] = true
	for i := 0; i < len(p); i++ {
		if p[i] == '/' {
			t.dirs[p[:i]] = true
		}
	}
}
