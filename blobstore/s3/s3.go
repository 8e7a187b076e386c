// Package s3 is the S3-compatible blobstore backend (AWS S3, MinIO, Ceph,
// the Versity gateway), through minio-go.
//
// Layout under the configured prefix of the bucket:
//
//	blobs/sha256/<hex>               committed blobs, immutable
//	uploads/<id>/created             marks an open staging area (empty)
//	uploads/<id>/<offset, 20 digits> one object per appended chunk
//	<name>                           objects kept aside (aside.go): anchors/head,
//	                                 quarantine/sha256/<hex>
//
// Why chunk objects rather than one S3 multipart upload per session: S3
// parts must be at least 5 MiB (except the last), while /v2/ clients send
// chunks of any size. Each chunk is therefore its own object (itself
// uploaded in parts when large, so memory stays bounded by one part), and
// the commit assembles them server-side (UploadPartCopy via
// ComposeObject) when every chunk but the last is large enough, else by
// streaming them once through this process into the final object. Either
// way nothing is staged on local disk, a session continues on any replica
// (its state is the list of chunk objects), and a cancelled or expired
// session deletes its objects (a failed chunk upload aborts its own
// multipart upload).
//
// Durability: PutObject returns once the object is stored, so an append is
// durable before it is acknowledged; a blob appears under its final key
// only through CommitUpload, which the Store calls after verifying both
// digests.
package s3

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/artifact-store/artifact-store/blobstore"
	"github.com/artifact-store/artifact-store/digest"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Options configure the backend.
type Options struct {
	Endpoint  string // host[:port] of the S3 service
	Secure    bool   // https
	Region    string
	AccessKey string
	SecretKey string
	Bucket    string
	Prefix    string // key prefix inside the bucket, without leading or trailing /
	PathStyle bool   // path-style requests (MinIO, Ceph, gateways); virtual-host style otherwise
	// Timeout bounds each metadata request and the wait for each response
	// (default 30s), so an unreachable store fails requests instead of
	// hanging them.
	Timeout time.Duration
	// PartSize is the multipart part size for large chunks (default 16 MiB):
	// the memory one upload in flight may hold.
	PartSize uint64
}

// minPart is S3's smallest part for all but the last part of a multipart
// upload.
const minPart = 5 << 20

// Backend stores blobs in an S3 bucket.
type Backend struct {
	c    *minio.Client
	opts Options
}

var _ blobstore.Backend = (*Backend)(nil)

// Kind names the backend in metrics.
func (b *Backend) Kind() string { return "s3" }

// New connects to the bucket, creating it if it does not exist.
func New(ctx context.Context, opts Options) (*Backend, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
	}
	if opts.PartSize == 0 {
		opts.PartSize = 16 << 20
	}
	opts.Prefix = strings.Trim(opts.Prefix, "/")
	lookup := minio.BucketLookupDNS
	if opts.PathStyle {
		lookup = minio.BucketLookupPath
	}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ResponseHeaderTimeout: opts.Timeout,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
	}
	c, err := minio.New(opts.Endpoint, &minio.Options{
		Creds:        credentials.NewStaticV4(opts.AccessKey, opts.SecretKey, ""),
		Secure:       opts.Secure,
		Region:       opts.Region,
		BucketLookup: lookup,
		Transport:    tr,
		// A few quick retries ride out a blip; more would hold requests
		// far past Timeout when the store is down.
		MaxRetries: 2,
	})
	if err != nil {
		return nil, fmt.Errorf("s3 %s: %w", opts.Endpoint, err)
	}
	b := &Backend{c: c, opts: opts}
	mctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	ok, err := c.BucketExists(mctx, opts.Bucket)
	if err != nil {
		return nil, b.wrap(err, "check bucket "+opts.Bucket)
	}
	if !ok {
		if err := c.MakeBucket(mctx, opts.Bucket, minio.MakeBucketOptions{Region: opts.Region}); err != nil {
			return nil, b.wrap(err, "create bucket "+opts.Bucket)
		}
	}
	return b, nil
}

func (b *Backend) key(parts ...string) string {
	if b.opts.Prefix == "" {
		return path.Join(parts...)
	}
	return path.Join(append([]string{b.opts.Prefix}, parts...)...)
}

func (b *Backend) blobKey(key digest.Digest) (string, error) {
	if key.Algorithm() != digest.SHA256 || len(key.Hex()) != 64 {
		return "", fmt.Errorf("%w: key %q is not a sha256 digest", blobstore.ErrNotFound, key)
	}
	return b.key("blobs", "sha256", key.Hex()), nil
}

func (b *Backend) uploadDir(id string) (string, error) {
	if id == "" || strings.ContainsAny(id, `/\.`) {
		return "", fmt.Errorf("%w: bad id %q", blobstore.ErrUploadNotFound, id)
	}
	return b.key("uploads", id) + "/", nil
}

// errConflict marks an S3 409: an operation that conflicted with another
// on the same key, worth retrying at once.
var errConflict = errors.New("conflicting operation")

// retryConflict runs write (one that can be repeated whole: no streamed
// body) again, promptly, while it meets a conflicting operation on its key
// or prefix: S3's OperationAborted, or a file-backed gateway removing the
// directory that a delete emptied as the write creates a file in it.
func retryConflict(write func() error) error {
	for attempt := 1; ; attempt++ {
		err := write()
		if !errors.Is(err, errConflict) || attempt == 4 {
			return err
		}
		time.Sleep(time.Duration(attempt) * 20 * time.Millisecond)
	}
}

// wrap classifies an S3 error: missing objects become the sentinel the
// caller expects, unreachable or failing services ErrUnavailable.
func (b *Backend) wrap(err error, what string) error {
	if err == nil {
		return nil
	}
	resp := minio.ToErrorResponse(err)
	switch {
	case resp.Code == minio.NoSuchKey || resp.StatusCode == http.StatusNotFound && resp.Code != minio.NoSuchBucket:
		return fmt.Errorf("%s: %w", what, blobstore.ErrNotFound)
	case resp.StatusCode >= 500, resp.StatusCode == 0, errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s: %w: %v", what, blobstore.ErrUnavailable, err)
	case resp.StatusCode == http.StatusConflict:
		// A conflicting operation on the same key is in progress (S3's
		// OperationAborted; a file-backed gateway's delete racing a copy
		// to the key): retrying later succeeds.
		return fmt.Errorf("%s: %w: %w: %v", what, blobstore.ErrUnavailable, errConflict, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// bounded gives metadata requests the backend's timeout.
func (b *Backend) bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, b.opts.Timeout)
}

// Stat implements blobstore.Backend.
func (b *Backend) Stat(ctx context.Context, key digest.Digest) (int64, error) {
	k, err := b.blobKey(key)
	if err != nil {
		return 0, err
	}
	ctx, cancel := b.bounded(ctx)
	defer cancel()
	info, err := b.c.StatObject(ctx, b.opts.Bucket, k, minio.StatObjectOptions{})
	if err != nil {
		return 0, b.wrap(err, "stat "+key.String())
	}
	return info.Size, nil
}

// Open implements blobstore.Backend. The blob is read lazily: Seek and
// ReadAt issue ranged GETs, so http.ServeContent serves ranges directly.
func (b *Backend) Open(ctx context.Context, key digest.Digest) (blobstore.Blob, error) {
	k, err := b.blobKey(key)
	if err != nil {
		return nil, err
	}
	obj, err := b.c.GetObject(ctx, b.opts.Bucket, k, minio.GetObjectOptions{})
	if err != nil {
		return nil, b.wrap(err, "open "+key.String())
	}
	// GetObject is lazy: Stat now, so a missing blob is reported here.
	// The object's own Stat keeps what it learns, so a later Seek to the
	// end (http.ServeContent's, or a caller's size check) costs no
	// second request. The transport's response timeout bounds it.
	if _, err := obj.Stat(); err != nil {
		obj.Close()
		return nil, b.wrap(err, "open "+key.String())
	}
	return obj, nil
}

// RedirectURL implements blobstore.Redirector with a presigned GET.
func (b *Backend) RedirectURL(ctx context.Context, key digest.Digest, ttl time.Duration) (string, error) {
	k, err := b.blobKey(key)
	if err != nil {
		return "", err
	}
	u, err := b.c.PresignedGetObject(ctx, b.opts.Bucket, k, ttl, nil)
	if err != nil {
		return "", b.wrap(err, "presign "+key.String())
	}
	return u.String(), nil
}

var _ blobstore.Redirector = (*Backend)(nil)

// Delete implements blobstore.Backend.
func (b *Backend) Delete(ctx context.Context, key digest.Digest) error {
	k, err := b.blobKey(key)
	if err != nil {
		return err
	}
	ctx, cancel := b.bounded(ctx)
	defer cancel()
	if err := b.c.RemoveObject(ctx, b.opts.Bucket, k, minio.RemoveObjectOptions{}); err != nil {
		if werr := b.wrap(err, "delete"); errors.Is(werr, blobstore.ErrNotFound) {
			return nil
		}
		return b.wrap(err, "delete "+key.String())
	}
	return nil
}

// Walk implements blobstore.Backend.
func (b *Backend) Walk(ctx context.Context, fn func(blobstore.BlobInfo) error) error {
	prefix := b.key("blobs", "sha256") + "/"
	for obj := range b.c.ListObjects(ctx, b.opts.Bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if obj.Err != nil {
			return b.wrap(obj.Err, "list blobs")
		}
		d, err := digest.Parse("sha256:" + strings.TrimPrefix(obj.Key, prefix))
		if err != nil {
			continue // not ours
		}
		if err := fn(blobstore.BlobInfo{Key: d, Size: obj.Size, ModTime: obj.LastModified}); err != nil {
			return err
		}
	}
	return nil
}
