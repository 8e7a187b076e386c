// Package digest parses and computes content digests ("algorithm:encoded").
//
// It is the project's leaf vocabulary for content identity: blobstore,
// manifests and registry all speak it, and it imports nothing of the project.
// OCI documents carry github.com/opencontainers/go-digest's Digest (it is
// the type of image-spec's descriptor digests); FromOCI brings one into
// this vocabulary. The store keeps its own type because go-digest's released
// version (v1.0.0) cannot register BLAKE3, which is our internal address,
// and its Validate accepts sha384, which the store does not compute (see
// docs/adr/0001-identity.md).
//
// Grammar (OCI image-spec, descriptor.md):
//
//	digest               ::= algorithm ":" encoded
//	algorithm            ::= algorithm-component (algorithm-separator algorithm-component)*
//	algorithm-component  ::= [a-z0-9]+
//	algorithm-separator  ::= [+._-]
//	encoded              ::= [a-zA-Z0-9=_-]+
//
// Registered algorithms must additionally carry lowercase hex of their exact
// length: sha256 and blake3 64 characters, sha512 128.
package digest

import (
	"errors"
	"fmt"
	"strings"
)

// Algorithm names a hash function.
type Algorithm string

// The algorithms the store understands.
const (
	SHA256 Algorithm = "sha256"
	SHA512 Algorithm = "sha512"
	BLAKE3 Algorithm = "blake3"
)

// hexLen is the encoded length of each supported algorithm.
func (a Algorithm) hexLen() int {
	switch a {
	case SHA256, BLAKE3:
		return 64
	case SHA512:
		return 128
	}
	return 0
}

// Supported reports whether the store can compute a.
func (a Algorithm) Supported() bool { return a.hexLen() > 0 }

// Digest is a validated "algorithm:hex" string.
type Digest string

// ErrInvalid is returned for strings that do not follow the digest grammar.
var ErrInvalid = errors.New("invalid digest")

// ErrUnsupported is returned for well-formed digests of an unknown algorithm.
var ErrUnsupported = errors.New("unsupported digest algorithm")

// Parse validates s. It returns an error wrapping ErrInvalid when s breaks
// the grammar and ErrUnsupported when the algorithm is well-formed but not
// one the store computes.
func Parse(s string) (Digest, error) {
	alg, enc, ok := strings.Cut(s, ":")
	if !ok || alg == "" || enc == "" {
		return "", fmt.Errorf("%w: %q is not of the form algorithm:encoded", ErrInvalid, s)
	}
	if !validAlgorithm(alg) {
		return "", fmt.Errorf("%w: bad algorithm %q", ErrInvalid, alg)
	}
	for i := 0; i < len(enc); i++ {
		c := enc[i]
		if !(isLowerAlnum(c) || (c >= 'A' && c <= 'Z') || c == '=' || c == '_' || c == '-') {
			return "", fmt.Errorf("%w: bad character %q in encoded part", ErrInvalid, c)
		}
	}
	a := Algorithm(alg)
	if !a.Supported() {
		return "", fmt.Errorf("%w: %q (supported: sha256, sha512, blake3)", ErrUnsupported, alg)
	}
	if len(enc) != a.hexLen() {
		return "", fmt.Errorf("%w: %s needs %d hex characters, got %d", ErrInvalid, alg, a.hexLen(), len(enc))
	}
	for i := 0; i < len(enc); i++ {
		if c := enc[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return "", fmt.Errorf("%w: %s must be lowercase hex", ErrInvalid, alg)
		}
	}
	return Digest(s), nil
}

func validAlgorithm(s string) bool {
	prevSep := true // a separator may not lead, trail or repeat
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case isLowerAlnum(c):
			prevSep = false
		case c == '+' || c == '.' || c == '_' || c == '-':
			if prevSep {
				return false
			}
			prevSep = true
		default:
			return false
		}
	}
	return !prevSep
}

func isLowerAlnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

// Algorithm returns the part before the colon.
func (d Digest) Algorithm() Algorithm {
	a, _, _ := strings.Cut(string(d), ":")
	return Algorithm(a)
}

// Hex returns the encoded part after the colon.
func (d Digest) Hex() string {
	_, h, _ := strings.Cut(string(d), ":")
	return h
}

// String returns the digest in its text form.
func (d Digest) String() string { return string(d) }

// NewDigest joins an algorithm and a hex sum.
func NewDigest(a Algorithm, sum []byte) Digest {
	return Digest(string(a) + ":" + fmt.Sprintf("%x", sum))
}
