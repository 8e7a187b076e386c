// Package manifests parses and validates the manifest formats the registry
// accepts on /v2/: OCI image manifests and indexes (image-spec v1.1), and
// Docker Image Manifest V2 Schema 2 manifests and manifest lists, which
// docker and podman push by default.
//
// Parse checks what the registry must refuse (malformed JSON, member names
// that only encoding/json's case folding would match, repeated members, a
// wrong schemaVersion, a mediaType that contradicts the Content-Type,
// invalid descriptors, a data field that does not match its digest) and
// reports what the registry must check against its own state: the blobs
// and manifests a manifest references, and its subject.
//
// The documents are image-spec's own types (specs-go/v1: Manifest, Index,
// Descriptor, whose digests are go-digest's Digest), and its media-type
// constants name the OCI formats; Docker schema 2 has no Go types there, and
// its two manifests have the same shapes as the OCI ones, so they parse into
// the same types. What those libraries do not do is ours: validating a
// descriptor's digest by the store's rules (digest.Parse: sha256, sha512 and
// BLAKE3, which go-digest v1.0.0 cannot validate), the strict member-name
// checks (keys.go), NUL refusal and the annotation limits. See
// docs/adr/0001-identity.md and docs/adr/0005-stack.md.
package manifests

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/artifact-store/artifact-store/digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// Media types. The OCI ones are image-spec's constants, named here so that
// callers find every manifest type in one package; image-spec has no
// Docker constants.
const (
	MediaTypeImageManifest  = v1.MediaTypeImageManifest
	MediaTypeImageIndex     = v1.MediaTypeImageIndex
	MediaTypeEmptyJSON      = v1.MediaTypeEmptyJSON
	MediaTypeImageConfig    = v1.MediaTypeImageConfig
	MediaTypeDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
)

// MaxSize is the largest manifest the registry accepts (the spec's 4 MiB).
const MaxSize = 4 << 20

// MaxDescriptors bounds an image's layers and an index's children: each
// is checked and recorded inside the one commit every writer waits on
// (container images stay under 128 layers; the limit matches the files a
// native version may have, MaxFiles).
const MaxDescriptors = 10_000

// Limits on annotations, per annotation map: a manifest's or index's own,
// and each descriptor's. A manifest's own annotations become one row each
// in the searchable view and travel in its event, all inside the single
// log commit every writer waits on; these bounds keep that commit cheap
// (100,000 keys held it for seconds). Real clients stay far below them:
// cosign's signature, certificate, chain and bundle annotations on a
// signature layer total some 5 to 15 KB, notation's a few hundred bytes,
// image metadata a few dozen keys.
const (
	MaxAnnotations = 512 // keys in one map
	// MaxAnnotationBytes leaves room for the rest of a manifest under
	// MaxSize: the conformance suite pushes 390 values of 10,000 bytes.
	MaxAnnotationBytes = MaxSize - 128<<10 // bytes of all keys and values in one map
	// MaxAnnotationKey bounds one key: keys are indexed (a PostgreSQL
	// btree entry must stay under about 2.7 KB), and real keys are
	// reverse-domain names of a few dozen bytes.
	MaxAnnotationKey = 1024
)

// annotationLimits reports why ann is over the limits, or nil.
func annotationLimits(ann map[string]string) error {
	if len(ann) > MaxAnnotations {
		return fmt.Errorf("%d annotations, the limit is %d per manifest or descriptor", len(ann), MaxAnnotations)
	}
	for k := range ann {
		if len(k) > MaxAnnotationKey {
			return fmt.Errorf("an annotation key of %d bytes (%.40q...), the limit is %d", len(k), k, MaxAnnotationKey)
		}
	}
	if n := annotationBytes(ann); n > MaxAnnotationBytes {
		return fmt.Errorf("annotations of %d bytes (keys and values), the limit is %d per manifest or descriptor", n, MaxAnnotationBytes)
	}
	return nil
}

// nativeReserve is the room the derivation's two annotations (created,
// at most 20 bytes, and version, at most 128) take in the derived OCI
// manifest's map.
const nativeReserve = len(AnnotationCreated) + 20 + len(AnnotationVersion) + 128

// CheckNativeAnnotations reports, wrapping ErrInvalid, annotations that a
// native version cannot be published with: the limits less the room the
// derived OCI manifest's created and version annotations take. It lets a
// caller refuse them before storing anything.
func CheckNativeAnnotations(ann map[string]string) error {
	extra := map[string]string{}
	for k, v := range ann {
		extra[k] = v
	}
	extra[AnnotationCreated] = strings.Repeat("x", 20)
	extra[AnnotationVersion] = strings.Repeat("x", 128)
	if len(ann) > MaxAnnotations-2 || annotationLimits(extra) != nil {
		return invalid("%d annotations of %d bytes: a native version may have at most %d annotations of %d bytes (keys and values) in all",
			len(ann), annotationBytes(ann), MaxAnnotations-2, MaxAnnotationBytes-nativeReserve)
	}
	return nil
}

func annotationBytes(ann map[string]string) int {
	n := 0
	for k, v := range ann {
		n += len(k) + len(v)
	}
	return n
}

// ErrInvalid wraps every validation failure.
var ErrInvalid = errors.New("manifest invalid")

// ErrUnsupportedMediaType is returned for media types that are not
// manifests the registry understands.
var ErrUnsupportedMediaType = errors.New("unsupported manifest media type")

// Descriptor is image-spec's descriptor; its Digest is go-digest's type.
// The alias lets callers say manifests.Descriptor where they build or read
// descriptors beside the other manifest types.
type Descriptor = v1.Descriptor

// Manifest is a validated manifest. Exactly one of Image and Index is set:
// Image for an OCI image manifest or a Docker schema 2 manifest, Index for
// an OCI index or a Docker manifest list. They hold the document as sent
// (their own MediaType may be empty); MediaType is the effective type.
type Manifest struct {
	MediaType string
	Image     *v1.Manifest
	Index     *v1.Index
}

// document is what Parse decodes: an index, plus the members only an
// image manifest has. Config is a pointer so that its absence shows.
type document struct {
	v1.Index
	Config *v1.Descriptor  `json:"config,omitempty"`
	Layers []v1.Descriptor `json:"layers,omitempty"`
}

// IsIndex reports whether mediaType is an index or manifest list.
func IsIndex(mediaType string) bool {
	return mediaType == MediaTypeImageIndex || mediaType == MediaTypeDockerList
}

// Known reports whether mediaType is a manifest type Parse accepts.
func Known(mediaType string) bool {
	switch mediaType {
	case MediaTypeImageManifest, MediaTypeImageIndex, MediaTypeDockerManifest, MediaTypeDockerList:
		return true
	}
	return false
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Parse validates body as a manifest sent with contentType (its media type
// parameters ignored). An empty contentType takes the body's mediaType.
func Parse(contentType string, body []byte) (*Manifest, error) {
	ct, _, _ := strings.Cut(contentType, ";")
	ct = strings.TrimSpace(ct)
	if len(body) > MaxSize {
		return nil, invalid("manifest is %d bytes, the limit is %d", len(body), MaxSize)
	}
	var doc document
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&doc); err != nil {
		return nil, invalid("not valid JSON: %v", err)
	}
	if dec.More() {
		return nil, invalid("trailing data after the JSON document")
	}
	if err := checkKeys(body, doc); err != nil {
		return nil, invalid("%v", err)
	}
	if doc.SchemaVersion != 2 {
		return nil, invalid("schemaVersion must be 2, got %d", doc.SchemaVersion)
	}
	switch {
	case doc.MediaType != "" && ct != "" && doc.MediaType != ct && Known(ct):
		return nil, invalid("mediaType %q in the body does not match Content-Type %q", doc.MediaType, ct)
	case ct == "" || !Known(ct):
		if doc.MediaType == "" {
			// Guess as the image-spec allows for documents without mediaType.
			ct = MediaTypeImageManifest
			if doc.Manifests != nil && doc.Config == nil {
				ct = MediaTypeImageIndex
			}
		} else {
			ct = doc.MediaType
		}
	}
	if !Known(ct) {
		return nil, fmt.Errorf("%w: %q", ErrUnsupportedMediaType, ct)
	}
	if n := len(doc.Layers) + len(doc.Manifests); n > MaxDescriptors {
		return nil, invalid("%d layers or child manifests, the limit is %d per manifest", n, MaxDescriptors)
	}
	m := &Manifest{MediaType: ct}
	if IsIndex(ct) {
		if doc.Config != nil || doc.Layers != nil {
			return nil, invalid("an index has no config or layers")
		}
		for i := range doc.Manifests {
			if err := checkDescriptor(&doc.Manifests[i]); err != nil {
				return nil, invalid("manifests[%d]: %v", i, err)
			}
		}
		m.Index = &doc.Index
	} else {
		if doc.Manifests != nil {
			return nil, invalid("an image manifest has no manifests list")
		}
		if doc.Config == nil {
			return nil, invalid("config descriptor is required")
		}
		if err := checkDescriptor(doc.Config); err != nil {
			return nil, invalid("config: %v", err)
		}
		for i := range doc.Layers {
			if err := checkDescriptor(&doc.Layers[i]); err != nil {
				return nil, invalid("layers[%d]: %v", i, err)
			}
		}
		m.Image = &v1.Manifest{Versioned: doc.Versioned, MediaType: doc.MediaType, ArtifactType: doc.ArtifactType,
			Config: *doc.Config, Layers: doc.Layers, Subject: doc.Subject, Annotations: doc.Annotations}
	}
	if doc.Subject != nil {
		if err := checkDescriptor(doc.Subject); err != nil {
			return nil, invalid("subject: %v", err)
		}
	}
	if err := checkText(doc.ArtifactType, doc.Annotations); err != nil {
		return nil, err
	}
	if err := annotationLimits(doc.Annotations); err != nil {
		return nil, invalid("%v", err)
	}
	return m, nil
}

// checkText refuses NUL in text the registry stores and indexes (JSON
// decoding has already replaced invalid UTF-8): databases refuse it.
func checkText(artifactType string, annotations map[string]string) error {
	if strings.ContainsRune(artifactType, 0) {
		return invalid("artifactType contains a NUL character")
	}
	for k, v := range annotations {
		if strings.ContainsRune(k, 0) || strings.ContainsRune(v, 0) {
			return invalid("annotation %q contains a NUL character", k)
		}
	}
	return nil
}

// checkDescriptor validates d's digest by the store's rules, not
// go-digest's (which refuses blake3 and accepts sha384): digest.FromOCI.
func checkDescriptor(d *Descriptor) error {
	if d.MediaType == "" || strings.ContainsRune(d.MediaType, 0) {
		return errors.New("mediaType is required, without NUL")
	}
	dg, err := digest.FromOCI(d.Digest)
	if err != nil {
		return err
	}
	if d.Size < 0 {
		return fmt.Errorf("size %d is negative", d.Size)
	}
	if err := annotationLimits(d.Annotations); err != nil {
		return err
	}
	if d.Data != nil {
		if int64(len(d.Data)) != d.Size {
			return fmt.Errorf("data is %d bytes but size says %d", len(d.Data), d.Size)
		}
		if digest.FromBytes(dg.Algorithm(), d.Data) != dg {
			return errors.New("data does not match digest")
		}
	}
	return nil
}

// Subject is the manifest's subject descriptor, or nil.
func (m *Manifest) Subject() *Descriptor {
	if m.Index != nil {
		return m.Index.Subject
	}
	return m.Image.Subject
}

// Annotations are the manifest's own annotations (nil when it has none).
func (m *Manifest) Annotations() map[string]string {
	if m.Index != nil {
		return m.Index.Annotations
	}
	return m.Image.Annotations
}

// EffectiveArtifactType is the artifact type the referrers API reports: the
// artifactType field, or for image manifests the config's media type.
func (m *Manifest) EffectiveArtifactType() string {
	switch {
	case m.Index != nil:
		return m.Index.ArtifactType
	case m.Image.ArtifactType != "":
		return m.Image.ArtifactType
	}
	return m.Image.Config.MediaType
}

// Nondistributable reports whether a layer may be absent from the registry:
// OCI non-distributable layer types and Docker foreign layers are fetched
// from their URLs, not pushed.
func Nondistributable(d Descriptor) bool {
	return strings.Contains(d.MediaType, ".nondistributable.") || strings.Contains(d.MediaType, ".foreign.")
}

// Blobs returns the descriptors of blobs the registry must hold before it
// accepts the manifest: the config first, then every distributable layer.
// An index has none.
func (m *Manifest) Blobs() []Descriptor {
	if m.Image == nil {
		return nil
	}
	out := []Descriptor{m.Image.Config}
	for _, l := range m.Image.Layers {
		if !Nondistributable(l) {
			out = append(out, l)
		}
	}
	return out
}
