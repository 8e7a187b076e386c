package manifests

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/artifact-store/artifact-store/digest"
)

// The native manifest, format version 1: the store's own description of a
// non-OCI artifact version. Its one byte form is canonical CBOR (RFC 8949
// §4.2.1), a map with these text keys (docs/native-manifest.md draws it):
//
//	manifestVersion  uint     1
//	repository       text     repository name
//	version          text     version name (OCI tag grammar)
//	artifactType     text     optional media type of the artifact
//	files            array    of maps, sorted by path, paths unique, and
//	                          no path a directory of another ("a", "a/b"):
//	    path         text     relative, "/"-separated, no "." or ".." parts
//	    size         uint     bytes
//	    mediaType    text
//	    sha256       text     "sha256:<hex>"
//	    blake3       text     "blake3:<hex>"
//	annotations      map      optional, text to text
//	created          text     RFC 3339, UTC, whole seconds
//	subject          map      optional: mediaType, digest, size
//
// Its identity is the digest of those canonical bytes, in SHA-256 and
// BLAKE3. Every rule above is checked by Validate, so a manifest that
// decodes has exactly one byte form.
type Native struct {
	ManifestVersion int               `json:"manifestVersion"`
	Repository      string            `json:"repository"`
	Version         string            `json:"version"`
	ArtifactType    string            `json:"artifactType,omitempty"`
	Files           []File            `json:"files"`
	Annotations     map[string]string `json:"annotations,omitempty"`
	Created         string            `json:"created"`
	Subject         *Subject          `json:"subject,omitempty"`
}

// File is one file of a native artifact.
type File struct {
	Path      string `json:"path"`
	Size      int64  `json:"size"`
	MediaType string `json:"mediaType"`
	SHA256    string `json:"sha256"`
	BLAKE3    string `json:"blake3"`
}

// Subject points at the manifest a native artifact refers to (a signature
// or SBOM of an image, say); it becomes the derived OCI manifest's subject.
type Subject struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
}

// NativeVersion1 is the only format version so far.
const NativeVersion1 = 1

// Limits of a native manifest.
const (
	MaxFiles      = 10_000
	MaxPathLen    = 1024
	MediaTypeCBOR = "application/cbor"
	// DefaultArtifactType is the derived OCI manifest's artifactType when
	// the native manifest names none (an OCI artifact must have one).
	DefaultArtifactType = "application/vnd.artifactstore.artifact.v1"
	// DefaultFileMediaType is given to files published without one.
	DefaultFileMediaType = "application/octet-stream"
)

// ErrUnknownManifestVersion is returned for manifest versions this build
// does not know.
var ErrUnknownManifestVersion = errors.New("unknown native manifest version")

// ErrPathConflict is wrapped (with ErrInvalid) by Validate when one file's
// path is another's directory: no file system can hold both, so no client
// could pull the version.
var ErrPathConflict = errors.New("one file's path is a directory of another's")

// ValidPath reports why p cannot name a file of an artifact, or nil.
func ValidPath(p string) error {
	switch {
	case p == "":
		return errors.New("empty path")
	case len(p) > MaxPathLen:
		return fmt.Errorf("path is %d bytes, the limit is %d", len(p), MaxPathLen)
	case !utf8.ValidString(p):
		return fmt.Errorf("path %q is not valid UTF-8", p)
	case strings.ContainsRune(p, 0):
		return fmt.Errorf("path %q contains a NUL byte", p)
	case strings.HasPrefix(p, "/"):
		return fmt.Errorf("path %q is absolute; paths are relative to the artifact", p)
	case strings.Contains(p, `\`):
		return fmt.Errorf("path %q contains a backslash; separate directories with /", p)
	}
	for _, part := range strings.Split(p, "/") {
		if part == "" || part == "." || part == ".." {
			return fmt.Errorf("path %q has an empty, . or .. component", p)
		}
	}
	return nil
}

// ValidVersion reports why v cannot name a version (the OCI tag grammar,
// since every version is also a tag on /v2/), or nil.
func ValidVersion(v string) error {
	if len(v) == 0 || len(v) > 128 || v[0] == '.' || v[0] == '-' {
		return fmt.Errorf("version %q: 1 to 128 characters, not starting with . or -", v)
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return fmt.Errorf("version %q: only letters, digits, _, . and - are allowed", v)
		}
	}
	return nil
}

// FormatCreated is the canonical form of a creation time.
func FormatCreated(t time.Time) string { return t.UTC().Truncate(time.Second).Format(time.RFC3339) }

// Validate checks every rule of the format. Errors wrap ErrInvalid (or
// ErrUnknownManifestVersion) and say what to fix; a path conflict also
// wraps ErrPathConflict.
func (n *Native) Validate() error {
	if err := n.validateFields(1); err != nil {
		return err
	}
	return checkTree(n.Files)
}

// ValidateView is Validate for the native view of a version pushed over
// /v2/ (NativeFromOCI), which has no files when none of its layers can be
// one (an index, say).
func (n *Native) ValidateView() error {
	if err := n.validateFields(0); err != nil {
		return err
	}
	return checkTree(n.Files)
}

// validateFields checks every rule but the tree rule (checkTree), with at
// least minFiles files.
func (n *Native) validateFields(minFiles int) error {
	if n.ManifestVersion != NativeVersion1 {
		return fmt.Errorf("%w: %d (this server understands %d)", ErrUnknownManifestVersion, n.ManifestVersion, NativeVersion1)
	}
	if n.Repository == "" {
		return invalid("repository is required")
	}
	if err := ValidVersion(n.Version); err != nil {
		return invalid("%v", err)
	}
	if len(n.Files) < minFiles || len(n.Files) > MaxFiles {
		return invalid("an artifact has %d to %d files, this one has %d", minFiles, MaxFiles, len(n.Files))
	}
	for i, f := range n.Files {
		if err := ValidPath(f.Path); err != nil {
			return invalid("files[%d]: %v", i, err)
		}
		if i > 0 && n.Files[i-1].Path >= f.Path {
			return invalid("files must be sorted by path with no duplicates: %q comes after %q", f.Path, n.Files[i-1].Path)
		}
		if f.Size < 0 {
			return invalid("files[%d] (%s): negative size", i, f.Path)
		}
		// Invalid UTF-8 would encode but never decode again (CBOR text
		// must be UTF-8): the version would be unreadable.
		if f.MediaType == "" || strings.ContainsRune(f.MediaType, 0) || !utf8.ValidString(f.MediaType) {
			return invalid("files[%d] (%s): mediaType is required: UTF-8 text without NUL", i, f.Path)
		}
		if d, err := digest.Parse(f.SHA256); err != nil || d.Algorithm() != digest.SHA256 {
			return invalid("files[%d] (%s): sha256 must be a sha256: digest, got %q", i, f.Path, f.SHA256)
		}
		if d, err := digest.Parse(f.BLAKE3); err != nil || d.Algorithm() != digest.BLAKE3 {
			return invalid("files[%d] (%s): blake3 must be a blake3: digest, got %q", i, f.Path, f.BLAKE3)
		}
	}
	for k := range n.Annotations {
		if k == "" {
			return invalid("annotation keys must not be empty")
		}
	}
	if err := checkText(n.ArtifactType, n.Annotations); err != nil {
		return err
	}
	// The limits of any OCI manifest, so that the native view of every
	// manifest /v2/ accepted validates; publishing is stricter (DeriveOCI).
	if err := annotationLimits(n.Annotations); err != nil {
		return invalid("%v", err)
	}
	t, err := time.Parse(time.RFC3339, n.Created)
	if err != nil || FormatCreated(t) != n.Created {
		return invalid("created must be an RFC 3339 UTC time in whole seconds, like %q; got %q", FormatCreated(time.Unix(0, 0)), n.Created)
	}
	if s := n.Subject; s != nil {
		if _, err := digest.Parse(s.Digest); err != nil || s.MediaType == "" || s.Size < 0 {
			return invalid("subject needs a mediaType, a valid digest and a size")
		}
	}
	return nil
}

// checkTree refuses files where one path is a directory of another ("a"
// and "a/b"). files are sorted and unique (validateFields).
func checkTree(files []File) error {
	paths := make(map[string]bool, len(files))
	for _, f := range files {
		paths[f.Path] = true
	}
	for _, f := range files {
		if dir, ok := parentFile(f.Path, paths); ok {
			return fmt.Errorf("%w: %w: %q is a file, so %q cannot be under it; rename one of them",
				ErrInvalid, ErrPathConflict, dir, f.Path)
		}
	}
	return nil
}

// parentFile returns the first directory of p (shortest first) that is in
// paths.
func parentFile(p string, paths map[string]bool) (string, bool) {
	for i := 0; i < len(p); i++ {
		if p[i] == '/' && paths[p[:i]] {
			return p[:i], true
		}
	}
	return "", false
}

// Normalize puts a manifest written by a person into canonical shape:
// files sorted by path, missing media types defaulted. It does not fix
// anything Validate would refuse for another reason.
func (n *Native) Normalize() {
	for i := range n.Files {
		if n.Files[i].MediaType == "" {
			n.Files[i].MediaType = DefaultFileMediaType
		}
	}
	sort.SliceStable(n.Files, func(i, j int) bool { return n.Files[i].Path < n.Files[j].Path })
	if len(n.Annotations) == 0 {
		n.Annotations = nil
	}
}

// Encode validates n and returns its canonical CBOR bytes.
func (n *Native) Encode() ([]byte, error) {
	if err := n.Validate(); err != nil {
		return nil, err
	}
	return EncodeCBOR(n)
}

// DecodeNative parses canonical CBOR bytes of a native manifest. Bytes that
// are not the canonical encoding are refused (ErrNotCanonical). It checks
// every rule but the tree rule, so a version stored before that rule stays
// readable; publishing checks the whole of Validate.
func DecodeNative(data []byte) (*Native, error) {
	var n Native
	if err := DecodeCBOR(data, &n); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if err := n.validateFields(1); err != nil {
		return nil, err
	}
	return &n, nil
}
