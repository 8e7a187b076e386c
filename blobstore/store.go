package blobstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"sync"

	"github.com/artifact-store/artifact-store/digest"
)

// Store hashes and stores blobs on a Backend. It is safe for concurrent use.
//
// Upload sessions keep their running hash state in memory so that each byte
// is hashed once. BLAKE3 state cannot be serialised, so when the state is
// missing or stale (the process restarted, or another replica appended) it
// is re-derived by one sequential read of the staged bytes.
type Store struct {
	backend Backend

	mu     sync.Mutex
	states map[string]*uploadState
}

type uploadState struct {
	mu sync.Mutex // serialises appends to one upload
	h  *hasher
}

// New returns a Store over backend.
func New(backend Backend) *Store {
	return &Store{backend: backend, states: make(map[string]*uploadState)}
}

// Backend returns the backend the store writes to.
func (s *Store) Backend() Backend { return s.backend }

// Stat returns the size of the blob stored under the SHA-256 key.
func (s *Store) Stat(ctx context.Context, key digest.Digest) (int64, error) {
	return s.backend.Stat(ctx, key)
}

// Open returns the blob stored under the SHA-256 key.
func (s *Store) Open(ctx context.Context, key digest.Digest) (Blob, error) {
	return s.backend.Open(ctx, key)
}

// Delete removes the blob stored under the SHA-256 key.
func (s *Store) Delete(ctx context.Context, key digest.Digest) error {
	return s.backend.Delete(ctx, key)
}

// Walk calls fn for every stored key.
func (s *Store) Walk(ctx context.Context, fn func(key digest.Digest) error) error {
	return s.backend.Walk(ctx, fn)
}

// NewUploadID returns a fresh random upload identifier.
func NewUploadID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return hex.EncodeToString(b[:])
}

// Ingest stores everything r yields in one pass and returns its digests.
// When expect is non-empty the content must match it (any supported
// algorithm), and nothing is stored if it does not.
func (s *Store) Ingest(ctx context.Context, r io.Reader, expect digest.Digest) (Digests, error) {
	id := "ingest-" + NewUploadID()
	if err := s.backend.CreateUpload(ctx, id); err != nil {
		return Digests{}, err
	}
	h := newHasher(expect.Algorithm() == digest.SHA512)
	_, err := s.backend.AppendUpload(ctx, id, 0, hashingReader{r, h})
	h.wait()
	if err != nil {
		s.backend.AbortUpload(context.WithoutCancel(ctx), id)
		return Digests{}, err
	}
	return s.commit(ctx, id, h.digests(), expect)
}

// CreateUpload starts an upload session with the given id.
func (s *Store) CreateUpload(ctx context.Context, id string) error {
	if err := s.backend.CreateUpload(ctx, id); err != nil {
		return err
	}
	s.mu.Lock()
	s.states[id] = &uploadState{h: newHasher(false)}
	s.mu.Unlock()
	return nil
}

// UploadSize returns how many bytes an upload has received.
func (s *Store) UploadSize(ctx context.Context, id string) (int64, error) {
	info, err := s.backend.StatUpload(ctx, id)
	return info.Size, err
}

// ListUploads describes every staged upload.
func (s *Store) ListUploads(ctx context.Context) ([]UploadInfo, error) {
	return s.backend.ListUploads(ctx)
}

// state returns the upload's hash state, locked, re-deriving it from the
// staged bytes when it does not cover exactly size bytes.
func (s *Store) state(ctx context.Context, id string, size int64) (*uploadState, error) {
	s.mu.Lock()
	st, ok := s.states[id]
	if !ok {
		st = &uploadState{}
		s.states[id] = st
	}
	s.mu.Unlock()
	st.mu.Lock()
	if st.h != nil && st.h.size == size {
		return st, nil
	}
	h := newHasher(false)
	rc, err := s.backend.OpenUpload(ctx, id)
	if err != nil {
		st.mu.Unlock()
		return nil, err
	}
	defer rc.Close()
	buf := make([]byte, 1<<20)
	if _, err := io.CopyBuffer(h, io.LimitReader(rc, size), buf); err != nil {
		st.mu.Unlock()
		return nil, fmt.Errorf("rehash upload %s: %w", id, err)
	}
	if h.size != size {
		st.mu.Unlock()
		return nil, fmt.Errorf("rehash upload %s: read %d of %d bytes", id, h.size, size)
	}
	st.h = h
	return st, nil
}

// AppendUpload appends r to the upload, which must hold exactly offset
// bytes (ErrBadOffset otherwise), and returns the new size.
func (s *Store) AppendUpload(ctx context.Context, id string, offset int64, r io.Reader) (int64, error) {
	info, err := s.backend.StatUpload(ctx, id)
	if err != nil {
		return 0, err
	}
	if info.Size != offset {
		return info.Size, fmt.Errorf("%w: upload has %d bytes, chunk starts at %d", ErrBadOffset, info.Size, offset)
	}
	st, err := s.state(ctx, id, offset)
	if err != nil {
		return 0, err
	}
	defer st.mu.Unlock()
	n, err := s.backend.AppendUpload(ctx, id, offset, hashingReader{r, st.h})
	st.h.wait()
	if err == nil && n != st.h.size {
		err = fmt.Errorf("append upload %s: stored %d bytes, hashed %d", id, n, st.h.size)
	}
	if err != nil {
		// The staged bytes and the hash may now disagree: re-derive the
		// state from the staged bytes on the next use.
		st.h = nil
		return 0, err
	}
	return n, nil
}

// CommitUpload verifies the upload against expect (sha256, sha512 or
// blake3) and, only if it matches, stores it under its SHA-256 key. On a
// mismatch the staged bytes are discarded and ErrDigestMismatch returned.
func (s *Store) CommitUpload(ctx context.Context, id string, expect digest.Digest) (Digests, error) {
	info, err := s.backend.StatUpload(ctx, id)
	if err != nil {
		return Digests{}, err
	}
	st, err := s.state(ctx, id, info.Size)
	if err != nil {
		return Digests{}, err
	}
	ds := st.h.digests()
	st.mu.Unlock()
	if expect.Algorithm() == digest.SHA512 {
		// SHA-512 is rare; it costs one extra read rather than a third hash
		// on every upload.
		if ds.SHA512, err = s.rehashSHA512(ctx, id); err != nil {
			return Digests{}, err
		}
	}
	return s.commit(ctx, id, ds, expect)
}

func (s *Store) rehashSHA512(ctx context.Context, id string) (digest.Digest, error) {
	rc, err := s.backend.OpenUpload(ctx, id)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	h := digest.SHA512.New()
	if _, err := io.CopyBuffer(h, rc, make([]byte, 1<<20)); err != nil {
		return "", err
	}
	return digest.NewDigest(digest.SHA512, h.Sum(nil)), nil
}

func (s *Store) commit(ctx context.Context, id string, ds Digests, expect digest.Digest) (Digests, error) {
	s.forget(id)
	if expect != "" && !ds.Matches(expect) {
		s.backend.AbortUpload(context.WithoutCancel(ctx), id)
		return Digests{}, fmt.Errorf("%w: expected %s, content is %s", ErrDigestMismatch, expect, ds.SHA256)
	}
	if err := s.backend.CommitUpload(ctx, id, ds.SHA256); err != nil {
		return Digests{}, err
	}
	return ds, nil
}

// AbortUpload discards an upload's staged bytes.
func (s *Store) AbortUpload(ctx context.Context, id string) error {
	s.forget(id)
	return s.backend.AbortUpload(ctx, id)
}

func (s *Store) forget(id string) {
	s.mu.Lock()
	delete(s.states, id)
	s.mu.Unlock()
}

// Rehash reads the blob stored under key and returns its digests; verify
// uses it to detect bit rot.
func (s *Store) Rehash(ctx context.Context, key digest.Digest) (Digests, error) {
	b, err := s.backend.Open(ctx, key)
	if err != nil {
		return Digests{}, err
	}
	defer b.Close()
	h := newHasher(false)
	if _, err := io.CopyBuffer(h, b, make([]byte, 1<<20)); err != nil {
		return Digests{}, err
	}
	return h.digests(), nil
}
