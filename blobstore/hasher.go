package blobstore

import (
	"encoding"
	"fmt"
	"hash"
	"sync"

	"github.com/artifact-store/artifact-store/digest"
	"github.com/zeebo/blake3"
)

// parallelMin is the write size above which SHA-256 runs in its own
// goroutine. Measured on the target machine, one goroutine per hash over the
// same buffers is 1.34x faster than feeding both in turn; below this size
// the goroutine hand-off costs more than it saves.
const parallelMin = 64 << 10

// hasher computes SHA-256 and BLAKE3 (and optionally SHA-512) over one pass
// of the bytes. It is an io.Writer; Write returns only after every hash has
// consumed p, so the caller may reuse p at once.
type hasher struct {
	sha256 hash.Hash
	blake3 *blake3.Hasher
	sha512 hash.Hash // nil unless requested
	size   int64

	pending sync.WaitGroup // hashing of the last buffer given to start
}

func newHasher(withSHA512 bool) *hasher {
	h := &hasher{sha256: digest.SHA256.New(), blake3: blake3.New()}
	if withSHA512 {
		h.sha512 = digest.SHA512.New()
	}
	return h
}

// Write hashes p and returns when every hash has consumed it.
func (h *hasher) Write(p []byte) (int, error) {
	h.start(p)
	h.wait()
	return len(p), nil
}

// start begins hashing p, SHA-256 (and SHA-512) in goroutines of their own
// for large p. p must not change until wait returns.
func (h *hasher) start(p []byte) {
	h.size += int64(len(p))
	if len(p) < parallelMin {
		h.sha256.Write(p)
		h.blake3.Write(p)
		if h.sha512 != nil {
			h.sha512.Write(p)
		}
		return
	}
	h.pending.Add(2)
	go func() {
		defer h.pending.Done()
		h.sha256.Write(p)
	}()
	go func() {
		defer h.pending.Done()
		h.blake3.Write(p)
	}()
	if h.sha512 != nil {
		h.pending.Add(1)
		go func() {
			defer h.pending.Done()
			h.sha512.Write(p)
		}()
	}
}

// snapshot returns a copy of the hash state (SHA-256 and BLAKE3; never
// used with SHA-512), to go back to if an append fails midway. The caller
// has waited for pending hashing.
func (h *hasher) snapshot() (*hasher, error) {
	m, ok := h.sha256.(encoding.BinaryMarshaler)
	if !ok || h.sha512 != nil {
		return nil, fmt.Errorf("hash state cannot be copied")
	}
	state, err := m.MarshalBinary()
	if err != nil {
		return nil, err
	}
	s := digest.SHA256.New()
	if err := s.(encoding.BinaryUnmarshaler).UnmarshalBinary(state); err != nil {
		return nil, err
	}
	return &hasher{sha256: s, blake3: h.blake3.Clone(), size: h.size}, nil
}

// wait returns when the hashing started by start is done.
func (h *hasher) wait() { h.pending.Wait() }

// digests returns the sums of everything written so far.
func (h *hasher) digests() Digests {
	h.wait()
	ds := Digests{
		SHA256: digest.NewDigest(digest.SHA256, h.sha256.Sum(nil)),
		BLAKE3: digest.NewDigest(digest.BLAKE3, h.blake3.Sum(nil)),
		Size:   h.size,
	}
	if h.sha512 != nil {
		ds.SHA512 = digest.NewDigest(digest.SHA512, h.sha512.Sum(nil))
	}
	return ds
}

// Hash returns the digests of content held in memory, checked against
// expect as a store's ingest checks it (ErrDigestMismatch), without
// storing anything: for callers that keep small content elsewhere (the
// event log, ADR 0016). The SHA-512 is computed when expect is one.
func Hash(data []byte, expect digest.Digest) (Digests, error) {
	return hashAll(newHasher(expect.Algorithm() == digest.SHA512), data, expect)
}

// Hash is the package's Hash with hashers the store recycles: a BLAKE3
// hasher is some 9 KiB, which was a seventh of what a small push
// allocated.
func (s *Store) Hash(data []byte, expect digest.Digest) (Digests, error) {
	if expect.Algorithm() == digest.SHA512 {
		return Hash(data, expect)
	}
	h, _ := s.hashers.Get().(*hasher)
	if h == nil {
		h = newHasher(false)
	}
	defer func() {
		h.sha256.Reset()
		h.blake3.Reset()
		h.size = 0
		s.hashers.Put(h)
	}()
	return hashAll(h, data, expect)
}

func hashAll(h *hasher, data []byte, expect digest.Digest) (Digests, error) {
	h.Write(data)
	ds := h.digests()
	if expect != "" && !ds.Matches(expect) {
		return Digests{}, fmt.Errorf("%w: expected %s, content is %s", ErrDigestMismatch, expect, ds.SHA256)
	}
	return ds, nil
}
