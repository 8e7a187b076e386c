// Package blobstore is the data plane: it moves bytes, hashes each byte once
// with SHA-256 and BLAKE3, and stores every distinct content once under its
// SHA-256 digest. It knows nothing about repositories, tags or manifests;
// the control plane (eventlog, registry) decides what exists.
//
// Invariants:
//
//   - A blob is visible under its final key only after all of its bytes are
//     durable (synced) and its digests are verified. A crash leaves either
//     the staged bytes of an upload or the complete blob, never a partial
//     blob under a final key.
//   - Final keys are immutable: a second commit of the same content is a
//     no-op, so storage is deduplicated across repositories. The one
//     exception is damage: a stored copy whose size is wrong is moved
//     aside (quarantine.go) and replaced by the newly verified bytes.
//   - Memory use is independent of blob size: bytes stream through fixed
//     buffers.
//
// A Store wraps a Backend (blobstore/fs or blobstore/s3); every
// backend passes the shared contract suite in blobstore/blobstoretest.
package blobstore

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/artifact-store/artifact-store/digest"
)

// Errors returned by stores and backends. Callers test them with errors.Is.
var (
	ErrNotFound       = errors.New("blob not found")
	ErrUploadNotFound = errors.New("upload not found")
	ErrDigestMismatch = errors.New("digest does not match content")
	ErrSizeMismatch   = errors.New("size does not match content")
	ErrBadOffset      = errors.New("chunk does not start at the end of the upload")
	// ErrUnavailable: the storage service could not be reached or failed;
	// retrying later may succeed.
	ErrUnavailable = errors.New("blob storage unavailable")
	// ErrNoSpace: the storage has no room for the bytes (a full disk or an
	// exhausted quota). Nothing partial is kept; the same request succeeds
	// once an operator has made room.
	ErrNoSpace = errors.New("no space left in blob storage")
)

// Digests is the identity of stored content: both digests the store always
// computes, the size, and optionally the SHA-512 a client asked for.
type Digests struct {
	SHA256 digest.Digest
	BLAKE3 digest.Digest
	SHA512 digest.Digest // empty unless a client addressed the content by sha512
	Size   int64
}

// Matches reports whether d is one of the digests of the content.
func (ds Digests) Matches(d digest.Digest) bool {
	return d != "" && (d == ds.SHA256 || d == ds.BLAKE3 || d == ds.SHA512)
}

// Blob is an open stored blob. Backends return *os.File where they can so
// that HTTP responses reach the kernel's sendfile path.
type Blob interface {
	io.ReadSeekCloser
}

// BlobInfo describes a stored blob as the backend lists it: the garbage
// collector needs the size (bytes freed) and the time the bytes were
// written (bytes no event names yet are spared while they are young).
type BlobInfo struct {
	Key     digest.Digest
	Size    int64
	ModTime time.Time
}

// UploadInfo describes the staged bytes of an upload.
type UploadInfo struct {
	ID      string
	Size    int64
	ModTime time.Time
}

// Backend is where bytes live: committed blobs and the staging areas of
// uploads. Keys are SHA-256 digests; upload IDs are opaque strings chosen
// by the caller. Backends never hash: the Store does.
type Backend interface {
	Blobs
	Staging
}

// Blobs holds committed, immutable blobs.
type Blobs interface {
	// Stat returns the size of the blob stored under key.
	Stat(ctx context.Context, key digest.Digest) (int64, error)
	// Open returns the blob stored under key.
	Open(ctx context.Context, key digest.Digest) (Blob, error)
	// Delete removes the blob stored under key; a missing blob is no error.
	Delete(ctx context.Context, key digest.Digest) error
	// Walk calls fn for every stored blob.
	Walk(ctx context.Context, fn func(BlobInfo) error) error
}

// Redirector is implemented by backends that can hand out a short-lived
// URL from which a client reads a blob directly (a presigned S3 URL), so
// that bytes need not flow through the registry.
type Redirector interface {
	RedirectURL(ctx context.Context, key digest.Digest, ttl time.Duration) (string, error)
}

// Putter is implemented by backends that can store small content, held
// in memory and already verified by the Store, in fewer steps than a
// staging area takes (blobstore/fs: an unnamed file, synced, then linked
// under its key). PutBlob makes data durable under key; when key is
// already stored it only makes sure that copy is durable. It returns an
// error wrapping errors.ErrUnsupported when it cannot, and the Store then
// uses a staging area.
type Putter interface {
	PutBlob(ctx context.Context, key digest.Digest, data []byte) error
}

// CommitFollows is implemented by backends for which making an append
// durable on its own costs a sync that the commit repeats: there, an
// append that is committed at once (the last chunk of an upload, a
// monolithic push) skips it. AppendBeforeCommit is AppendUpload without
// the durability; the caller's CommitUpload makes the bytes durable, and
// until it returns nobody is told they are stored.
type CommitFollows interface {
	AppendBeforeCommit(ctx context.Context, id string, offset int64, r io.Reader) (int64, error)
}

// Staging holds the bytes of uploads in progress and turns them into
// blobs.
type Staging interface {
	// CreateUpload makes an empty staging area for id. It need not
	// survive a crash of the machine: it holds no bytes yet.
	CreateUpload(ctx context.Context, id string) error
	// AppendUpload writes r at the end of the staged bytes, which must be
	// offset bytes long, and makes the new bytes (and the staging area)
	// durable before returning the new size. Bytes before offset are
	// never touched. r may implement io.WriterTo, handing over buffers
	// aligned to BufferAlign.
	AppendUpload(ctx context.Context, id string, offset int64, r io.Reader) (int64, error)
	// StatUpload describes the staged bytes.
	StatUpload(ctx context.Context, id string) (UploadInfo, error)
	// OpenUpload reads the staged bytes from the start.
	OpenUpload(ctx context.Context, id string) (io.ReadCloser, error)
	// CommitUpload makes the staged bytes durable under key and removes the
	// staging area. If key already exists the staged bytes are discarded.
	CommitUpload(ctx context.Context, id string, key digest.Digest) error
	// AbortUpload removes the staging area; a missing one is no error.
	AbortUpload(ctx context.Context, id string) error
	// ListUploads describes every staging area.
	ListUploads(ctx context.Context) ([]UploadInfo, error)
}
