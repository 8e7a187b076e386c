package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/artifact-store/artifact-store/blobstore"
	"github.com/artifact-store/artifact-store/digest"
	"github.com/artifact-store/artifact-store/eventlog"
)

// Damaged blobs. The log records each blob's size, so a stored copy of
// another size (truncated, overwritten) is damage that costs nothing to
// see when the blob is opened: the copy is refused rather than served
// under the recorded digest headers. Same-size damage needs a re-hash,
// which verify does (and moves the copy aside: blobstore's quarantine).
// Either way the client gets a 500 that says so, never wrong bytes, and a
// push of the right bytes repairs the blob (blobstore replaces a copy of
// the wrong size, and a quarantined key is simply empty).

// damaged is the answer for a blob whose stored bytes cannot be served.
func damaged(sha256, why string) error {
	return &Error{
		Code:    CodeUnknown,
		Status:  http.StatusInternalServerError,
		Message: fmt.Sprintf("blob %s is damaged in storage (%s) and is not served; pushing the same content again repairs it", sha256, why),
		Detail:  damageDetail{Digest: sha256, Damaged: why},
	}
}

// isDamaged reports whether err is a damage answer.
func isDamaged(err error) bool {
	var re *Error
	if !errors.As(err, &re) {
		return false
	}
	_, ok := re.Detail.(damageDetail)
	return ok
}

// damageDetail is the error's machine-readable detail.
type damageDetail struct {
	Digest  string `json:"digest"`
	Damaged string `json:"damaged"`
}

// openChecked opens b in one store and refuses a copy whose size is not
// the recorded one (b.Size < 0: unknown, not checked).
func (r *Registry) openChecked(ctx context.Context, st *blobstore.Store, b eventlog.Blob) (blobstore.Blob, error) {
	f, err := st.Open(ctx, digest.Digest(b.SHA256))
	if err != nil || b.Size < 0 {
		return f, err
	}
	n, err := storedSize(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("size of blob %s: %w", b.SHA256, err)
	}
	if n != b.Size {
		f.Close()
		why := fmt.Sprintf("stored size %d, recorded %d", n, b.Size)
		r.logger.ErrorContext(ctx, "damaged blob refused", "blob", b.SHA256, "stored_size", n, "recorded_size", b.Size)
		return nil, damaged(b.SHA256, why)
	}
	return f, nil
}

// storedSize is the size of an open blob: an lseek on a file, and on S3
// the size the open already learned.
func storedSize(f blobstore.Blob) (int64, error) {
	n, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return 0, err
	}
	_, err = f.Seek(0, io.SeekStart)
	return n, err
}

// quarantinedIn says, for a blob no store holds, whether one of them moved
// it aside as damaged.
func (r *Registry) quarantinedIn(ctx context.Context, sha256 string, stores ...*blobstore.Store) error {
	for _, st := range stores {
		if st == nil {
			continue
		}
		if q, err := st.Quarantined(ctx, digest.Digest(sha256)); err == nil && q {
			return damaged(sha256, "quarantined by verify")
		}
	}
	return nil
}
