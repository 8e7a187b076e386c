package blobstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/artifact-store/artifact-store/digest"
)

// Aside is implemented by backends that keep a few named objects beside
// the blobs, outside their key space: Walk never lists them and no blob
// commit or delete touches them. Callers keep there what must live in the
// blob store's failure domain without being content (a small record such
// as an anchor of the event log's head), and blobs taken out of service
// (quarantine).
//
// Names are slash-separated segments of [a-z0-9._-] that do not start
// with a dot; a first segment of blobs, sha256 or uploads is reserved for
// the backends' own areas.
type Aside interface {
	// PutAside stores data under name, replacing any object of that name;
	// a reader sees the old object or the new one whole, never a mix, and
	// the new one is durable before PutAside returns.
	PutAside(ctx context.Context, name string, data []byte) error
	// OpenAside opens the object stored under name (ErrNotFound if none).
	OpenAside(ctx context.Context, name string) (io.ReadCloser, error)
	// MoveAside moves the blob stored under key to name, replacing what
	// name held; afterwards key holds no blob (ErrNotFound if it held
	// none). At every moment the bytes exist under key or name.
	MoveAside(ctx context.Context, key digest.Digest, name string) error
}

// ErrNoAside is returned when the backend cannot keep objects aside.
var ErrNoAside = errors.New("blob backend keeps no objects aside")

// ValidAsideName reports whether name may name an object kept aside.
// Backends call it before mapping a name to a path or object key.
func ValidAsideName(name string) bool {
	if name == "" || len(name) > 256 {
		return false
	}
	switch first, _, _ := strings.Cut(name, "/"); first {
	case "blobs", "sha256", "uploads":
		return false
	}
	for _, seg := range strings.Split(name, "/") {
		if seg == "" || seg[0] == '.' {
			return false
		}
		for _, c := range seg {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
				return false
			}
		}
	}
	return true
}

func (s *Store) aside() (Aside, error) {
	a, ok := s.backend.(Aside)
	if !ok {
		return nil, fmt.Errorf("%w (%T)", ErrNoAside, s.backend)
	}
	return a, nil
}

// PutAside stores a small named object beside the blobs (see Aside).
func (s *Store) PutAside(ctx context.Context, name string, data []byte) error {
	a, err := s.aside()
	if err != nil {
		return err
	}
	return a.PutAside(ctx, name, data)
}

// ReadAside returns the object stored aside under name, refusing one
// larger than limit bytes: these are small records, and a reader never
// holds more than it asked for.
func (s *Store) ReadAside(ctx context.Context, name string, limit int64) ([]byte, error) {
	a, err := s.aside()
	if err != nil {
		return nil, err
	}
	rc, err := a.OpenAside(ctx, name)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("read %s: larger than %d bytes", name, limit)
	}
	return data, nil
}
