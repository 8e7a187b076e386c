package fs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/artifact-store/artifact-store/blobstore"
	"github.com/artifact-store/artifact-store/digest"
)

// Objects kept aside live under the root by their name (for example
// anchors/head, quarantine/sha256/<hex>); the blob and staging trees are
// not theirs to name.

var _ blobstore.Aside = (*Backend)(nil)

func (b *Backend) asidePath(name string) (string, error) {
	if !blobstore.ValidAsideName(name) {
		return "", fmt.Errorf("blobstore fs: %q cannot name an object kept aside", name)
	}
	return filepath.Join(b.root, filepath.FromSlash(name)), nil
}

// PutAside implements blobstore.Aside: write a temporary file beside the
// target, sync it, rename it over the target and sync the directory.
func (b *Backend) PutAside(_ context.Context, name string, data []byte) error {
	p, err := b.asidePath(name)
	if err != nil {
		return err
	}
	if err := b.mkdirsDurable(filepath.Dir(p)); err != nil {
		return err
	}
	var r [8]byte
	rand.Read(r[:])
	tmp := filepath.Join(filepath.Dir(p), "."+filepath.Base(p)+".tmp-"+hex.EncodeToString(r[:]))
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	err = writeBuffered(f, data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("put %s: %w", name, err)
	}
	return syncDir(filepath.Dir(p))
}

// OpenAside implements blobstore.Aside.
func (b *Backend) OpenAside(_ context.Context, name string) (io.ReadCloser, error) {
	p, err := b.asidePath(name)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, notFound(err, blobstore.ErrNotFound, "aside object "+name)
	}
	return f, nil
}

// MoveAside implements blobstore.Aside with one rename, so the bytes are
// under exactly one of the two names at every moment.
func (b *Backend) MoveAside(_ context.Context, key digest.Digest, name string) error {
	src, err := b.blobPath(key)
	if err != nil {
		return err
	}
	dst, err := b.asidePath(name)
	if err != nil {
		return err
	}
	if err := b.mkdirsDurable(filepath.Dir(dst)); err != nil {
		return err
	}
	if err := os.Rename(src, dst); err != nil {
		return notFound(err, blobstore.ErrNotFound, key.String())
	}
	if err := syncDir(filepath.Dir(dst)); err != nil {
		return err
	}
	return syncDir(filepath.Dir(src))
}

// mkdirsDurable creates dir and any missing parents below the root, one
// level at a time, syncing each parent so every new entry survives a crash.
func (b *Backend) mkdirsDurable(dir string) error {
	rel, err := filepath.Rel(b.root, dir)
	if err != nil || rel == "." {
		return err
	}
	cur := b.root
	for _, seg := range strings.Split(rel, string(filepath.Separator)) {
		cur = filepath.Join(cur, seg)
		if err := b.mkdirDurable(cur); err != nil {
			return err
		}
	}
	return nil
}
