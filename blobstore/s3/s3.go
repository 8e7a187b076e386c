// Package s3 is the S3-compatible blobstore backend (AWS S3, MinIO, Ceph,
// the Versity gateway), through minio-go.
//
// Layout under the configured prefix of the bucket:
//
//	blobs/sha256/<hex>               committed blobs, immutable
//	uploads/<id>/created             marks an open staging area (empty)
//	uploads/<id>/<offset, 20 digits> one object per appended chunk
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
	"io"
	"net"
	"net/http"
	"path"
	"sort"
	"strconv"
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
	sctx, cancel := b.bounded(ctx)
	defer cancel()
	if _, err := b.c.StatObject(sctx, b.opts.Bucket, k, minio.StatObjectOptions{}); err != nil {
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
func (b *Backend) Walk(ctx context.Context, fn func(digest.Digest) error) error {
	prefix := b.key("blobs", "sha256") + "/"
	for obj := range b.c.ListObjects(ctx, b.opts.Bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if obj.Err != nil {
			return b.wrap(obj.Err, "list blobs")
		}
		d, err := digest.Parse("sha256:" + strings.TrimPrefix(obj.Key, prefix))
		if err != nil {
			continue // not ours
		}
		if err := fn(d); err != nil {
			return err
		}
	}
	return nil
}

// chunk is one appended chunk object of an upload.
type chunk struct {
	key    string
	offset int64
	size   int64
	mod    time.Time
}

// chunks lists an upload's chunk objects in offset order; ok is false when
// the staging area does not exist.
func (b *Backend) chunks(ctx context.Context, id string) (cs []chunk, created time.Time, ok bool, err error) {
	dir, err := b.uploadDir(id)
	if err != nil {
		return nil, time.Time{}, false, err
	}
	for obj := range b.c.ListObjects(ctx, b.opts.Bucket, minio.ListObjectsOptions{Prefix: dir, Recursive: true}) {
		if obj.Err != nil {
			return nil, time.Time{}, false, b.wrap(obj.Err, "list upload "+id)
		}
		name := strings.TrimPrefix(obj.Key, dir)
		if name == "created" {
			ok, created = true, obj.LastModified
			continue
		}
		off, perr := strconv.ParseInt(name, 10, 64)
		if perr != nil {
			continue
		}
		cs = append(cs, chunk{key: obj.Key, offset: off, size: obj.Size, mod: obj.LastModified})
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].offset < cs[j].offset })
	return cs, created, ok, nil
}

// CreateUpload implements blobstore.Backend.
func (b *Backend) CreateUpload(ctx context.Context, id string) error {
	dir, err := b.uploadDir(id)
	if err != nil {
		return err
	}
	ctx, cancel := b.bounded(ctx)
	defer cancel()
	_, err = b.c.PutObject(ctx, b.opts.Bucket, dir+"created", strings.NewReader(""), 0, minio.PutObjectOptions{})
	return b.wrap(err, "create upload "+id)
}

// StatUpload implements blobstore.Backend.
func (b *Backend) StatUpload(ctx context.Context, id string) (blobstore.UploadInfo, error) {
	cs, created, ok, err := b.chunks(ctx, id)
	if err != nil {
		return blobstore.UploadInfo{}, err
	}
	if !ok {
		return blobstore.UploadInfo{}, fmt.Errorf("%w: %s", blobstore.ErrUploadNotFound, id)
	}
	info := blobstore.UploadInfo{ID: id, ModTime: created}
	for _, c := range cs {
		info.Size += c.size
		if c.mod.After(info.ModTime) {
			info.ModTime = c.mod
		}
	}
	return info, nil
}

// AppendUpload implements blobstore.Backend: the chunk becomes one object
// named by its offset.
func (b *Backend) AppendUpload(ctx context.Context, id string, offset int64, r io.Reader) (int64, error) {
	info, err := b.StatUpload(ctx, id)
	if err != nil {
		return 0, err
	}
	if info.Size != offset {
		return info.Size, fmt.Errorf("%w: have %d bytes, chunk starts at %d", blobstore.ErrBadOffset, info.Size, offset)
	}
	dir, _ := b.uploadDir(id)
	cr := &countingReader{r: r}
	up, err := b.c.PutObject(ctx, b.opts.Bucket, fmt.Sprintf("%s%020d", dir, offset), cr, -1, b.putOptions())
	if err != nil {
		return 0, b.wrap(err, "append upload "+id)
	}
	if up.Size != cr.n {
		return 0, fmt.Errorf("append upload %s: stored %d bytes of %d", id, up.Size, cr.n)
	}
	if up.Size == 0 {
		// An empty chunk adds nothing; keep the listing free of it.
		b.c.RemoveObject(context.WithoutCancel(ctx), b.opts.Bucket, fmt.Sprintf("%s%020d", dir, offset), minio.RemoveObjectOptions{})
	}
	return offset + up.Size, nil
}

// putOptions: parts of PartSize, and no SigV4 payload hash. The store
// hashes every byte with SHA-256 and BLAKE3 already, and a blob is
// re-read and checked wherever it matters (a tier move); a third pass here
// would cost a whole core on plain-HTTP endpoints, where minio-go would
// otherwise sign each chunk's SHA-256. Over TLS the transport protects
// the bytes in transit.
func (b *Backend) putOptions() minio.PutObjectOptions {
	return minio.PutObjectOptions{PartSize: b.opts.PartSize, ContentType: "application/octet-stream", DisableContentSha256: true}
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// OpenUpload implements blobstore.Backend: the chunks, read in order.
func (b *Backend) OpenUpload(ctx context.Context, id string) (io.ReadCloser, error) {
	cs, _, ok, err := b.chunks(ctx, id)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: %s", blobstore.ErrUploadNotFound, id)
	}
	return &chunkReader{ctx: ctx, b: b, cs: cs}, nil
}

// chunkReader reads chunk objects one after another, opening each lazily.
type chunkReader struct {
	ctx context.Context
	b   *Backend
	cs  []chunk
	cur io.ReadCloser
}

func (r *chunkReader) Read(p []byte) (int, error) {
	for {
		if r.cur == nil {
			if len(r.cs) == 0 {
				return 0, io.EOF
			}
			obj, err := r.b.c.GetObject(r.ctx, r.b.opts.Bucket, r.cs[0].key, minio.GetObjectOptions{})
			if err != nil {
				return 0, r.b.wrap(err, "read chunk")
			}
			r.cur, r.cs = obj, r.cs[1:]
		}
		n, err := r.cur.Read(p)
		if err == io.EOF {
			r.cur.Close()
			r.cur = nil
			if n > 0 {
				return n, nil
			}
			continue
		}
		if err != nil {
			return n, r.b.wrap(err, "read chunk")
		}
		return n, nil
	}
}

func (r *chunkReader) Close() error {
	if r.cur != nil {
		return r.cur.Close()
	}
	return nil
}

// CommitUpload implements blobstore.Backend.
func (b *Backend) CommitUpload(ctx context.Context, id string, key digest.Digest) error {
	dst, err := b.blobKey(key)
	if err != nil {
		return err
	}
	cs, _, ok, err := b.chunks(ctx, id)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: %s", blobstore.ErrUploadNotFound, id)
	}
	if _, err := b.Stat(ctx, key); err == nil {
		return b.AbortUpload(ctx, id) // already stored: identical by content addressing
	}
	if err := b.assemble(ctx, cs, dst); err != nil {
		return fmt.Errorf("commit upload %s: %w", id, err)
	}
	return b.AbortUpload(ctx, id)
}

// assemble writes the chunks, in order, as the object dst.
func (b *Backend) assemble(ctx context.Context, cs []chunk, dst string) error {
	composable := len(cs) > 0 && len(cs) <= 10000
	for i, c := range cs {
		if i < len(cs)-1 && c.size < minPart {
			composable = false
		}
	}
	if composable {
		srcs := make([]minio.CopySrcOptions, len(cs))
		for i, c := range cs {
			srcs[i] = minio.CopySrcOptions{Bucket: b.opts.Bucket, Object: c.key}
		}
		if len(cs) == 1 && cs[0].size <= 5<<30 {
			_, err := b.c.CopyObject(ctx, minio.CopyDestOptions{Bucket: b.opts.Bucket, Object: dst}, srcs[0])
			return b.wrap(err, "copy")
		}
		_, err := b.c.ComposeObject(ctx, minio.CopyDestOptions{Bucket: b.opts.Bucket, Object: dst}, srcs...)
		return b.wrap(err, "compose")
	}
	// Small chunks: stream them once, in order, into the final object.
	r := &chunkReader{ctx: ctx, b: b, cs: cs}
	defer r.Close()
	var size int64
	for _, c := range cs {
		size += c.size
	}
	_, err := b.c.PutObject(ctx, b.opts.Bucket, dst, r, size, b.putOptions())
	return b.wrap(err, "assemble")
}

// AbortUpload implements blobstore.Backend.
func (b *Backend) AbortUpload(ctx context.Context, id string) error {
	dir, err := b.uploadDir(id)
	if err != nil {
		return err
	}
	var keys []minio.ObjectInfo
	for obj := range b.c.ListObjects(ctx, b.opts.Bucket, minio.ListObjectsOptions{Prefix: dir, Recursive: true}) {
		if obj.Err != nil {
			return b.wrap(obj.Err, "list upload "+id)
		}
		keys = append(keys, obj)
	}
	objs := make(chan minio.ObjectInfo, len(keys))
	for _, k := range keys {
		objs <- k
	}
	close(objs)
	var first error
	for e := range b.c.RemoveObjects(ctx, b.opts.Bucket, objs, minio.RemoveObjectsOptions{}) {
		if e.Err != nil && first == nil {
			first = b.wrap(e.Err, "abort upload "+id) // keep draining: the channel must empty
		}
	}
	return first
}

// ListUploads implements blobstore.Backend.
func (b *Backend) ListUploads(ctx context.Context) ([]blobstore.UploadInfo, error) {
	prefix := b.key("uploads") + "/"
	var out []blobstore.UploadInfo
	for obj := range b.c.ListObjects(ctx, b.opts.Bucket, minio.ListObjectsOptions{Prefix: prefix}) {
		if obj.Err != nil {
			return nil, b.wrap(obj.Err, "list uploads")
		}
		id := strings.Trim(strings.TrimPrefix(obj.Key, prefix), "/")
		info, err := b.StatUpload(ctx, id)
		if err != nil {
			continue // removed while listing
		}
		out = append(out, info)
	}
	return out, nil
}
