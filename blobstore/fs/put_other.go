//go:build !linux

package fs

import (
	"context"
	"errors"

	"github.com/artifact-store/artifact-store/digest"
)

// PutBlob implements blobstore.Putter: without Linux's unnamed files the
// Store uses a staging area.
func (b *Backend) PutBlob(context.Context, digest.Digest, []byte) error {
	return errors.ErrUnsupported
}
