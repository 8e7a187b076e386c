package digest

import godigest "github.com/opencontainers/go-digest"

// FromOCI validates a digest taken from an OCI document (a descriptor's
// digest, go-digest's type) by this package's rules and returns it in the
// store's vocabulary. It does not use go-digest's Validate, which refuses
// blake3 (its v1.0.0 maps algorithm names to crypto.Hash values in a fixed,
// unexported table, and the standard library has no BLAKE3) and accepts
// sha384, which the store does not compute. The way back is a plain
// conversion, godigest.Digest(d): both types hold the same text.
func FromOCI(d godigest.Digest) (Digest, error) {
	return Parse(string(d))
}
