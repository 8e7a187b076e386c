package fs

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/artifact-store/artifact-store/blobstore"
	"github.com/artifact-store/artifact-store/digest"
)

// blockSize is the alignment direct reads need: of the buffer, the offset
// and the length.
const blockSize = blobstore.BufferAlign

var _ blobstore.DirectReader = (*Backend)(nil)

// OpenDirect implements blobstore.DirectReader for blobs the backend wrote
// past the page cache: those longer than Options.CacheFirst, unless the
// backend is Buffered. Reading them through the cache would fill pages
// only to copy them out once, and the kernel's read-ahead, one window at
// a time, reads a blob that is not cached at a fraction of what the disk
// gives to several large reads in flight. The rest are left to the page
// cache, where a blob just pushed (or pulled) still is.
func (b *Backend) OpenDirect(_ context.Context, key digest.Digest, size int64) (blobstore.BlockReader, error) {
	if oDirect == 0 || b.buffered || size <= b.cacheFirst {
		return nil, errors.ErrUnsupported
	}
	p, err := b.blobPath(key)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(p, os.O_RDONLY|oDirect, 0)
	if err != nil {
		// Not found, or a filesystem without direct I/O (tmpfs: EINVAL).
		return nil, fmt.Errorf("open %s for direct reads: %w", key, notFound(err, blobstore.ErrNotFound, key.String()))
	}
	return directFile{f}, nil
}
