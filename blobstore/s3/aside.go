package s3

import (
	"bytes"
	"context"
	"fmt"
	"io"

	"github.com/artifact-store/artifact-store/blobstore"
	"github.com/artifact-store/artifact-store/digest"
	"github.com/minio/minio-go/v7"
)

// Objects kept aside live under the prefix by their name (for example
// anchors/head, quarantine/sha256/<hex>); blobs/ and uploads/ are not
// theirs to name.

var _ blobstore.Aside = (*Backend)(nil)

func (b *Backend) asideKey(name string) (string, error) {
	if !blobstore.ValidAsideName(name) {
		return "", fmt.Errorf("blobstore s3: %q cannot name an object kept aside", name)
	}
	return b.key(name), nil
}

// PutAside implements blobstore.Aside: a single PUT replaces an object
// whole.
func (b *Backend) PutAside(ctx context.Context, name string, data []byte) error {
	k, err := b.asideKey(name)
	if err != nil {
		return err
	}
	ctx, cancel := b.bounded(ctx)
	defer cancel()
	return retryConflict(func() error {
		_, err := b.c.PutObject(ctx, b.opts.Bucket, k, bytes.NewReader(data), int64(len(data)), b.putOptions())
		return b.wrap(err, "put "+name)
	})
}

// OpenAside implements blobstore.Aside.
func (b *Backend) OpenAside(ctx context.Context, name string) (io.ReadCloser, error) {
	k, err := b.asideKey(name)
	if err != nil {
		return nil, err
	}
	obj, err := b.c.GetObject(ctx, b.opts.Bucket, k, minio.GetObjectOptions{})
	if err != nil {
		return nil, b.wrap(err, "open "+name)
	}
	// GetObject is lazy: Stat now, so a missing object is reported here.
	if _, err := obj.Stat(); err != nil {
		obj.Close()
		return nil, b.wrap(err, "open "+name)
	}
	return obj, nil
}

// MoveAside implements blobstore.Aside: a server-side copy, then the
// removal of the source, so the bytes exist under one name or both.
func (b *Backend) MoveAside(ctx context.Context, key digest.Digest, name string) error {
	src, err := b.blobKey(key)
	if err != nil {
		return err
	}
	dst, err := b.asideKey(name)
	if err != nil {
		return err
	}
	size, err := b.Stat(ctx, key)
	if err != nil {
		return err
	}
	from := minio.CopySrcOptions{Bucket: b.opts.Bucket, Object: src}
	to := minio.CopyDestOptions{Bucket: b.opts.Bucket, Object: dst}
	if size <= 5<<30 {
		_, err = b.c.CopyObject(ctx, to, from) // one request up to S3's copy limit
	} else {
		_, err = b.c.ComposeObject(ctx, to, from) // multipart copy beyond it
	}
	if err != nil {
		return b.wrap(err, "copy "+key.String()+" to "+name)
	}
	return b.Delete(ctx, key)
}
