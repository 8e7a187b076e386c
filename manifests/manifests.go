// Package manifests parses and validates the manifest formats the registry
// accepts on /v2/: OCI image manifests and indexes (image-spec v1.1), and
// Docker Image Manifest V2 Schema 2 manifests and manifest lists, which
// docker and podman push by default.
//
// Parse checks what the registry must refuse (malformed JSON, a wrong
// schemaVersion, a mediaType that contradicts the Content-Type, invalid
// descriptors, a data field that does not match its digest) and reports what
// the registry must check against its own state: the blobs and manifests a
// manifest references, and its subject.
package manifests

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/artifact-store/artifact-store/digest"
)

// Media types.
const (
	MediaTypeImageManifest  = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeImageIndex     = "application/vnd.oci.image.index.v1+json"
	MediaTypeDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaTypeEmptyJSON      = "application/vnd.oci.empty.v1+json"
	MediaTypeImageConfig    = "application/vnd.oci.image.config.v1+json"
)

// MaxSize is the largest manifest the registry accepts (the spec's 4 MiB).
const MaxSize = 4 << 20

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

// Descriptor points at content by digest.
type Descriptor struct {
	MediaType    string            `json:"mediaType"`
	Digest       string            `json:"digest"`
	Size         int64             `json:"size"`
	URLs         []string          `json:"urls,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	Data         []byte            `json:"data,omitempty"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Platform     json.RawMessage   `json:"platform,omitempty"`
}

// Manifest is the union of the accepted formats: an image manifest fills
// Config and Layers, an index fills Manifests.
type Manifest struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType,omitempty"`
	ArtifactType  string            `json:"artifactType,omitempty"`
	Config        *Descriptor       `json:"config,omitempty"`
	Layers        []Descriptor      `json:"layers,omitempty"`
	Manifests     []Descriptor      `json:"manifests,omitempty"`
	Subject       *Descriptor       `json:"subject,omitempty"`
	Annotations   map[string]string `json:"annotations,omitempty"`
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
// It returns the manifest with MediaType set to the effective media type.
func Parse(contentType string, body []byte) (*Manifest, error) {
	ct, _, _ := strings.Cut(contentType, ";")
	ct = strings.TrimSpace(ct)
	if len(body) > MaxSize {
		return nil, invalid("manifest is %d bytes, the limit is %d", len(body), MaxSize)
	}
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&m); err != nil {
		return nil, invalid("not valid JSON: %v", err)
	}
	if dec.More() {
		return nil, invalid("trailing data after the JSON document")
	}
	if m.SchemaVersion != 2 {
		return nil, invalid("schemaVersion must be 2, got %d", m.SchemaVersion)
	}
	switch {
	case m.MediaType != "" && ct != "" && m.MediaType != ct && Known(ct):
		return nil, invalid("mediaType %q in the body does not match Content-Type %q", m.MediaType, ct)
	case ct == "" || !Known(ct):
		if m.MediaType == "" {
			// Guess as the image-spec allows for documents without mediaType.
			ct = MediaTypeImageManifest
			if m.Manifests != nil && m.Config == nil {
				ct = MediaTypeImageIndex
			}
		} else {
			ct = m.MediaType
		}
	}
	if !Known(ct) {
		return nil, fmt.Errorf("%w: %q", ErrUnsupportedMediaType, ct)
	}
	m.MediaType = ct
	if IsIndex(ct) {
		if m.Config != nil || m.Layers != nil {
			return nil, invalid("an index has no config or layers")
		}
		for i := range m.Manifests {
			if err := checkDescriptor(&m.Manifests[i]); err != nil {
				return nil, invalid("manifests[%d]: %v", i, err)
			}
		}
	} else {
		if m.Manifests != nil {
			return nil, invalid("an image manifest has no manifests list")
		}
		if m.Config == nil {
			return nil, invalid("config descriptor is required")
		}
		if err := checkDescriptor(m.Config); err != nil {
			return nil, invalid("config: %v", err)
		}
		for i := range m.Layers {
			if err := checkDescriptor(&m.Layers[i]); err != nil {
				return nil, invalid("layers[%d]: %v", i, err)
			}
		}
	}
	if m.Subject != nil {
		if err := checkDescriptor(m.Subject); err != nil {
			return nil, invalid("subject: %v", err)
		}
	}
	if err := checkText(m.ArtifactType, m.Annotations); err != nil {
		return nil, err
	}
	if err := annotationLimits(m.Annotations); err != nil {
		return nil, invalid("%v", err)
	}
	return &m, nil
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

func checkDescriptor(d *Descriptor) error {
	if d.MediaType == "" || strings.ContainsRune(d.MediaType, 0) {
		return errors.New("mediaType is required, without NUL")
	}
	if _, err := digest.Parse(d.Digest); err != nil {
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
		if digest.Digest(d.Digest).Algorithm().Supported() && digest.FromBytes(digest.Digest(d.Digest).Algorithm(), d.Data) != digest.Digest(d.Digest) {
			return errors.New("data does not match digest")
		}
	}
	return nil
}

// EffectiveArtifactType is the artifact type the referrers API reports: the
// artifactType field, or for image manifests the config's media type.
func (m *Manifest) EffectiveArtifactType() string {
	if m.ArtifactType != "" || IsIndex(m.MediaType) || m.Config == nil {
		return m.ArtifactType
	}
	return m.Config.MediaType
}

// Nondistributable reports whether a layer may be absent from the registry:
// OCI non-distributable layer types and Docker foreign layers are fetched
// from their URLs, not pushed.
func Nondistributable(d Descriptor) bool {
	return strings.Contains(d.MediaType, ".nondistributable.") || strings.Contains(d.MediaType, ".foreign.")
}

// Blobs returns the descriptors of blobs the registry must hold before it
// accepts the manifest: the config first, then every distributable layer.
func (m *Manifest) Blobs() []Descriptor {
	if IsIndex(m.MediaType) {
		return nil
	}
	out := []Descriptor{*m.Config}
	for _, l := range m.Layers {
		if !Nondistributable(l) {
			out = append(out, l)
		}
	}
	return out
}
