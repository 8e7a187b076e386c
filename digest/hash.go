package digest

import (
	"crypto/sha256"
	"crypto/sha512"
	"hash"

	"github.com/zeebo/blake3"
)

// New returns a fresh hash for a. It panics only for an unsupported
// algorithm, which Parse has already rejected for every caller input.
func (a Algorithm) New() hash.Hash {
	switch a {
	case SHA256:
		return sha256.New()
	case SHA512:
		return sha512.New()
	case BLAKE3:
		return blake3.New()
	}
	panic("digest: unsupported algorithm " + string(a))
}

// FromBytes digests p with a.
func FromBytes(a Algorithm, p []byte) Digest {
	h := a.New()
	h.Write(p)
	return NewDigest(a, h.Sum(nil))
}
