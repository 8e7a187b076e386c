// Package fs is the local-filesystem blobstore backend.
//
// Layout under the root directory:
//
//	sha256/<first two hex>/<hex>   committed blobs, immutable
//	uploads/<id>                   staged bytes of an upload, append-only
//	<name>                         objects kept aside (aside.go): anchors/head,
//	                               quarantine/sha256/<hex>
//
// Durability: every append is fsynced before it is acknowledged (with the
// uploads/ directory, the first time), and a commit fsyncs the staged file,
// renames it into sha256/ and fsyncs the directory, so a blob under its
// final name is always complete. A new, empty staging file is not synced:
// it holds nothing a client was told is stored, and if a power failure
// takes it the client is told the upload is unknown and starts again. An
// append the commit follows at once (AppendBeforeCommit) leaves its sync
// to the commit. Small content the Store holds whole is put in place
// without a staging file (put_linux.go: an unnamed file, synced, linked
// under its name). A crash leaves at worst an upload file (which upload
// expiry removes) or a committed blob no event names yet (which GC
// collects). Directory syncs are the costly part on small pushes: each
// takes the directory's lock while the journal commits, and creates in
// the same directory wait for it.
//
// Errors: a full filesystem or exhausted quota (ENOSPC, EDQUOT) wraps
// blobstore.ErrNoSpace, and an append that meets it is cut back to where it
// started. Not-found errors wrap the blobstore sentinels and name the key or
// upload id, never a path under the root: their text reaches clients.
package fs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/artifact-store/artifact-store/blobstore"
	"github.com/artifact-store/artifact-store/digest"
)

// Backend stores blobs in a directory tree.
type Backend struct {
	root       string
	openFile   func(name string, flag int, perm fs.FileMode) (File, error)
	buffered   bool  // no direct I/O (appender.go)
	cacheFirst int64 // bytes of each upload written buffered before direct I/O

	directBytes atomic.Int64 // written with direct I/O, for tests
}

var _ blobstore.Backend = (*Backend)(nil)

// Kind names the backend in metrics.
func (b *Backend) Kind() string { return "fs" }

// File is what the backend needs of a staging file it writes; *os.File
// has it.
type File interface {
	io.Writer
	io.Seeker
	Stat() (fs.FileInfo, error)
	Sync() error
	Truncate(size int64) error
	Close() error
}

// Options tune a Backend; the zero value is the default.
type Options struct {
	// OpenFile opens the staging files that uploads create, append to and
	// sync (default: os.OpenFile). It is a seam for tests that inject the
	// faults a real disk produces rarely: a write or sync failing with
	// ENOSPC, EDQUOT or EIO partway through.
	OpenFile func(name string, flag int, perm fs.FileMode) (File, error)
	// Buffered writes every byte through the page cache instead of
	// writing whole blocks with direct I/O (appender.go): a blob just
	// pushed then stays cached for the pulls that follow, at the cost
	// of a copy per byte and the kernel's writeback limits.
	Buffered bool
	// CacheFirst is how many bytes at the start of every upload are
	// written through the page cache before direct I/O takes over
	// (default 32 MiB; negative: none). Blobs up to that size stay
	// cached for the pulls that often follow a push; beyond it, the
	// page cache's cost per byte is what limits a push.
	CacheFirst int64
}

// defaultCacheFirst is Options.CacheFirst's default.
const defaultCacheFirst = 32 << 20

// New returns a backend rooted at dir, creating the directories it needs.
func New(dir string) (*Backend, error) { return NewWithOptions(dir, Options{}) }

// NewWithOptions is New with options.
func NewWithOptions(dir string, opts Options) (*Backend, error) {
	for _, d := range []string{"sha256", "uploads"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, fmt.Errorf("blobstore fs: %w", noSpace(err))
		}
	}
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := syncDir(d); err != nil {
			return nil, fmt.Errorf("blobstore fs: sync %s: %w", d, err)
		}
	}
	b := &Backend{root: dir, openFile: opts.OpenFile, buffered: opts.Buffered, cacheFirst: opts.CacheFirst}
	if b.cacheFirst == 0 {
		b.cacheFirst = defaultCacheFirst
	}
	if b.openFile == nil {
		b.openFile = func(name string, flag int, perm fs.FileMode) (File, error) { return os.OpenFile(name, flag, perm) }
	}
	return b, nil
}

func (b *Backend) blobPath(key digest.Digest) (string, error) {
	if key.Algorithm() != digest.SHA256 || len(key.Hex()) != 64 {
		return "", fmt.Errorf("%w: key %q is not a sha256 digest", blobstore.ErrNotFound, key)
	}
	h := key.Hex()
	return filepath.Join(b.root, "sha256", h[:2], h), nil
}

func (b *Backend) uploadPath(id string) (string, error) {
	if id == "" || strings.ContainsAny(id, `/\.`) {
		return "", fmt.Errorf("%w: bad id %q", blobstore.ErrUploadNotFound, id)
	}
	return filepath.Join(b.root, "uploads", id), nil
}

// notFound turns a missing file into sentinel, naming what (a key or an
// upload id) instead of the file's path; other errors pass through.
func notFound(err error, sentinel error, what string) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s", sentinel, what)
	}
	return err
}

// noSpace marks an error that says the filesystem has no room (ENOSPC) or
// the quota is spent (EDQUOT) with blobstore.ErrNoSpace, keeping the cause
// for the server log.
func noSpace(err error) error {
	if err != nil && isNoSpace(err) {
		return fmt.Errorf("%w: %w", blobstore.ErrNoSpace, err)
	}
	return err
}

// Stat implements blobstore.Backend.
func (b *Backend) Stat(_ context.Context, key digest.Digest) (int64, error) {
	p, err := b.blobPath(key)
	if err != nil {
		return 0, err
	}
	fi, err := os.Stat(p)
	if err != nil {
		return 0, notFound(err, blobstore.ErrNotFound, key.String())
	}
	return fi.Size(), nil
}

// Open implements blobstore.Backend. It returns an *os.File.
func (b *Backend) Open(_ context.Context, key digest.Digest) (blobstore.Blob, error) {
	p, err := b.blobPath(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, notFound(err, blobstore.ErrNotFound, key.String())
	}
	return f, nil
}

// Delete implements blobstore.Backend.
func (b *Backend) Delete(_ context.Context, key digest.Digest) error {
	p, err := b.blobPath(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// Walk implements blobstore.Backend.
func (b *Backend) Walk(ctx context.Context, fn func(blobstore.BlobInfo) error) error {
	return filepath.WalkDir(filepath.Join(b.root, "sha256"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		key, perr := digest.Parse("sha256:" + d.Name())
		if perr != nil {
			return nil // not ours
		}
		info, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil // deleted since the directory was read
		}
		if err != nil {
			return err
		}
		return fn(blobstore.BlobInfo{Key: key, Size: info.Size(), ModTime: info.ModTime()})
	})
}

// CreateUpload implements blobstore.Backend.
func (b *Backend) CreateUpload(_ context.Context, id string) error {
	p, err := b.uploadPath(id)
	if err != nil {
		return err
	}
	f, err := b.openFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return noSpace(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(p)
		return noSpace(err)
	}
	return nil
}

// AppendUpload implements blobstore.Backend.
func (b *Backend) AppendUpload(ctx context.Context, id string, offset int64, r io.Reader) (int64, error) {
	return b.append(ctx, id, offset, r, true)
}

// AppendBeforeCommit implements blobstore.CommitFollows: the append is
// not synced, because the commit that follows syncs the file first.
func (b *Backend) AppendBeforeCommit(ctx context.Context, id string, offset int64, r io.Reader) (int64, error) {
	return b.append(ctx, id, offset, r, false)
}

func (b *Backend) append(_ context.Context, id string, offset int64, r io.Reader, sync bool) (int64, error) {
	p, err := b.uploadPath(id)
	if err != nil {
		return 0, err
	}
	f, err := b.openFile(p, os.O_WRONLY, 0)
	if err != nil {
		return 0, notFound(err, blobstore.ErrUploadNotFound, "upload "+id)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if fi.Size() != offset {
		return fi.Size(), fmt.Errorf("%w: have %d bytes, chunk starts at %d", blobstore.ErrBadOffset, fi.Size(), offset)
	}
	a := b.newAppender(p, f, offset)
	defer a.close()
	// The Store's reader hands over its own aligned buffers (io.WriterTo);
	// any other reader is copied through one of ours.
	var n int64
	if wt, ok := r.(io.WriterTo); ok {
		n, err = wt.WriteTo(a)
	} else {
		n, err = io.CopyBuffer(a, r, blobstore.AlignedBuffer(blobstore.BufferSize))
	}
	if err != nil {
		// Keep only whole, acknowledged state: cut back to where we started.
		f.Truncate(offset)
		return 0, fmt.Errorf("append upload %s: %w", id, noSpace(err))
	}
	if !sync {
		return offset + n, nil
	}
	if err := f.Sync(); err != nil {
		f.Truncate(offset)
		return 0, fmt.Errorf("sync upload %s: %w", id, noSpace(err))
	}
	if offset == 0 {
		// The file's name was not made durable when it was created.
		if err := syncDir(filepath.Dir(p)); err != nil {
			return 0, fmt.Errorf("sync upload %s: %w", id, noSpace(err))
		}
	}
	return offset + n, nil
}

// StatUpload implements blobstore.Backend.
func (b *Backend) StatUpload(_ context.Context, id string) (blobstore.UploadInfo, error) {
	p, err := b.uploadPath(id)
	if err != nil {
		return blobstore.UploadInfo{}, err
	}
	fi, err := os.Stat(p)
	if err != nil {
		return blobstore.UploadInfo{}, notFound(err, blobstore.ErrUploadNotFound, "upload "+id)
	}
	return blobstore.UploadInfo{ID: id, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// OpenUpload implements blobstore.Backend.
func (b *Backend) OpenUpload(_ context.Context, id string) (io.ReadCloser, error) {
	p, err := b.uploadPath(id)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, notFound(err, blobstore.ErrUploadNotFound, "upload "+id)
	}
	return f, nil
}

// CommitUpload implements blobstore.Backend.
func (b *Backend) CommitUpload(_ context.Context, id string, key digest.Digest) error {
	src, err := b.uploadPath(id)
	if err != nil {
		return err
	}
	dst, err := b.blobPath(key)
	if err != nil {
		return err
	}
	if _, err := os.Stat(dst); err == nil {
		// Already stored: content addressing makes the copies identical.
		// Sync its directory: a concurrent commit's rename may not be
		// durable yet, and our caller is about to record the blob.
		if err := syncDir(filepath.Dir(dst)); err != nil {
			return err
		}
		// A missing staging file here means a racing commit of the same
		// upload won: the upload is gone, not the server broken.
		return notFound(os.Remove(src), blobstore.ErrUploadNotFound, "upload "+id)
	}
	f, err := b.openFile(src, os.O_RDWR, 0)
	if err != nil {
		return notFound(err, blobstore.ErrUploadNotFound, "upload "+id)
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync upload %s: %w", id, noSpace(err))
	}
	if err := b.mkdirDurable(filepath.Dir(dst)); err != nil {
		return noSpace(err)
	}
	if err := os.Rename(src, dst); err != nil {
		return notFound(noSpace(err), blobstore.ErrUploadNotFound, "upload "+id)
	}
	return noSpace(syncDir(filepath.Dir(dst)))
}

// AbortUpload implements blobstore.Backend.
func (b *Backend) AbortUpload(_ context.Context, id string) error {
	p, err := b.uploadPath(id)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// ListUploads implements blobstore.Backend.
func (b *Backend) ListUploads(_ context.Context) ([]blobstore.UploadInfo, error) {
	entries, err := os.ReadDir(filepath.Join(b.root, "uploads"))
	if err != nil {
		return nil, err
	}
	var out []blobstore.UploadInfo
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil {
			continue // removed while listing
		}
		out = append(out, blobstore.UploadInfo{ID: e.Name(), Size: fi.Size(), ModTime: fi.ModTime()})
	}
	return out, nil
}

// mkdirDurable creates a shard directory and syncs its parent, so that
// the new entry (and the blob about to go in it) survives a crash.
func (b *Backend) mkdirDurable(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return syncDir(filepath.Dir(dir))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
