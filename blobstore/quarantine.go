package blobstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/artifact-store/artifact-store/digest"
)

// Quarantine: a blob whose stored bytes are damaged (found by a re-hash, or
// by a size that differs from the recorded one) is moved aside, out of the
// key space, rather than deleted: no read serves it any more, an operator
// can still inspect it, and the next commit of the same content stores a
// fresh copy under the key (a repair by re-push).

// quarantineName is where the damaged blob stored under key is kept.
func quarantineName(key digest.Digest) string { return "quarantine/sha256/" + key.Hex() }

// Quarantine moves the blob stored under the SHA-256 key aside as damaged
// (ErrNotFound when there is none). A later quarantine of the same key
// replaces the earlier copy.
func (s *Store) Quarantine(ctx context.Context, key digest.Digest) error {
	if key.Algorithm() != digest.SHA256 || len(key.Hex()) != 64 {
		return fmt.Errorf("%w: key %q is not a sha256 digest", ErrNotFound, key)
	}
	a, err := s.aside()
	if err != nil {
		return err
	}
	if err := a.MoveAside(ctx, key, quarantineName(key)); err != nil {
		return fmt.Errorf("quarantine %s: %w", key, err)
	}
	return nil
}

// Quarantined reports whether a copy of the blob under key was moved
// aside as damaged. It says nothing about the key itself, which a re-push
// may have filled again since.
func (s *Store) Quarantined(ctx context.Context, key digest.Digest) (bool, error) {
	if key.Algorithm() != digest.SHA256 || len(key.Hex()) != 64 {
		return false, nil
	}
	a, err := s.aside()
	if errors.Is(err, ErrNoAside) {
		return false, nil
	}
	rc, err := a.OpenAside(ctx, quarantineName(key))
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	rc.Close()
	return true, nil
}

// replaceDamaged moves aside a copy already stored under ds.SHA256 whose
// size is not ds.Size, before verified bytes of that content are committed:
// backends keep an existing key as it is, so without this a re-push would
// leave a truncated copy in place. A same-size corruption is only found by
// a re-hash (verify), which quarantines it itself.
func (s *Store) replaceDamaged(ctx context.Context, ds Digests) error {
	n, err := s.backend.Stat(ctx, ds.SHA256)
	if err != nil || n == ds.Size {
		return nil // absent (or unknowable now: the commit reports it) or whole
	}
	err = s.Quarantine(ctx, ds.SHA256)
	if errors.Is(err, ErrNoAside) {
		// Nowhere to keep it: the copy is wrong anyway, so let the
		// verified bytes take its place.
		err = s.backend.Delete(ctx, ds.SHA256)
	}
	if errors.Is(err, ErrNotFound) {
		return nil // a concurrent commit moved it first
	}
	return err
}
