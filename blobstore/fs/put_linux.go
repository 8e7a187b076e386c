package fs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/artifact-store/artifact-store/digest"
	"golang.org/x/sys/unix"
)

// PutBlob implements blobstore.Putter. The bytes go into an unnamed file
// in the blob's own directory (O_TMPFILE), which is synced and then linked
// under the blob's name, and the directory synced: two syncs, no staging
// file to create in uploads/ (where creates wait on other uploads'
// directory syncs), no rename, and nothing left behind by a crash, since
// an unnamed file vanishes with its descriptor.
func (b *Backend) PutBlob(_ context.Context, key digest.Digest, data []byte) error {
	dst, err := b.blobPath(key)
	if err != nil {
		return err
	}
	dir := filepath.Dir(dst)
	if _, err := os.Stat(dst); err == nil {
		// Already stored; a concurrent put's link may not be durable yet.
		return noSpace(syncDir(dir))
	}
	if err := b.mkdirDurable(dir); err != nil {
		return noSpace(err)
	}
	f, err := b.openFile(dir, unix.O_TMPFILE|os.O_WRONLY, 0o644)
	if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EISDIR) || errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("put %s: no unnamed files here: %w", key, errors.ErrUnsupported)
	}
	if err != nil {
		return noSpace(err)
	}
	defer f.Close()
	fd, ok := f.(interface{ Fd() uintptr })
	if !ok {
		return fmt.Errorf("put %s: file has no descriptor: %w", key, errors.ErrUnsupported)
	}
	if err := writeBuffered(f, data); err != nil {
		return fmt.Errorf("put %s: %w", key, noSpace(err))
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("put %s: %w", key, noSpace(err))
	}
	// Linking an unnamed file by its descriptor needs /proc (linkat with
	// AT_EMPTY_PATH would need CAP_DAC_READ_SEARCH).
	err = unix.Linkat(unix.AT_FDCWD, fmt.Sprintf("/proc/self/fd/%d", fd.Fd()), unix.AT_FDCWD, dst, unix.AT_SYMLINK_FOLLOW)
	switch {
	case errors.Is(err, fs.ErrExist):
		// A concurrent put of the same content won: identical bytes.
	case err != nil && isNoSpace(err):
		return fmt.Errorf("put %s: %w", key, noSpace(err))
	case err != nil:
		return fmt.Errorf("put %s: link: %v: %w", key, err, errors.ErrUnsupported)
	}
	return noSpace(syncDir(dir))
}
