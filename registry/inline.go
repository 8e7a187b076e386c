package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/artifact-store/artifact-store/blobstore"
	"github.com/artifact-store/artifact-store/digest"
	"github.com/artifact-store/artifact-store/eventlog"
)

// Small content in the log (ADR 0016). Content of at most
// Options.InlineMax bytes that a request carries whole (a manifest, a
// blob pushed in one request, a native manifest) is not written to the
// blob store: its blob.committed carries the bytes, and the group commit
// that makes the event durable makes them durable too. The blobs view
// records such a blob in tier inline and the contents view keeps its
// bytes; readers look there first for inline blobs and for manifests, and
// fall back to the stores, so content stored before this (or by a racing
// upload session) is read as ever.
//
// Invariant: a blob whose tier is inline has a contents row of its size
// (the log applies the row and the tier in one projection; a collection
// deletes both).

// DefaultInlineMax is Options.InlineMax's default: manifests and the
// small blobs that make up most of a registry's objects, well under the
// size where a file costs less than its share of a group commit.
const DefaultInlineMax = 64 << 10

// inlineMax is the largest content kept in the log; 0 when none is.
func (r *Registry) inlineMax() int64 { return max(r.opts.InlineMax, 0) }

// ingestBytes stores data, which must hash to expect when that is set:
// in the log when it is small (content is then the bytes for
// commitEvents), else in the blob store. Small content is always carried:
// the append drops it when the log keeps the same bytes already (facts.go
// in eventlog), so the log stores it once however many repositories push
// it, and a push asks nothing before its append. A kept row that differs
// (damaged by hand) is written again, which repairs it, as a push repairs
// a damaged file.
func (r *Registry) ingestBytes(ctx context.Context, data []byte, expect digest.Digest) (ds blobstore.Digests, content []byte, err error) {
	// The empty blob is stored as a file: an event cannot tell empty
	// content from none (the payload omits an empty field).
	if len(data) > 0 && int64(len(data)) <= r.inlineMax() {
		ds, err = r.blobs.Hash(data, expect)
		return ds, data, err
	}
	ds, err = r.blobs.Ingest(ctx, bytes.NewReader(data), expect)
	return ds, nil, err
}

// ingestBody is ingestBytes for a request body of size bytes (its
// Content-Length; -1 when unknown): a body that ends within the inline
// size is kept in the log; a longer one streams on into the blob store,
// after the bytes already read.
func (r *Registry) ingestBody(ctx context.Context, body io.Reader, size int64, expect digest.Digest) (ds blobstore.Digests, content []byte, err error) {
	limit := r.inlineMax()
	if limit == 0 {
		ds, err = r.blobs.Ingest(ctx, body, expect)
		return ds, nil, err
	}
	head, err := readHead(body, size, limit+1)
	if err != nil {
		return ds, nil, err
	}
	if int64(len(head)) <= limit {
		return r.ingestBytes(ctx, head, expect)
	}
	ds, err = r.blobs.Ingest(ctx, io.MultiReader(bytes.NewReader(head), body), expect)
	return ds, nil, err
}

// readHead reads body up to max bytes. A body that declares a size below
// max is read into a buffer that grows by doubling up to that size, from
// at most headStart bytes, instead of from 512 bytes with no bound (a 4
// KiB push allocated 10 KiB); whatever follows its declared end is read
// on, up to max, so the result never depends on the declaration. Nor does
// what a request holds before its bytes arrive: a client that declares
// 64 KiB and sends nothing holds headStart bytes, not 64 KiB.
func readHead(body io.Reader, size, max int64) ([]byte, error) {
	if size < 0 || size >= max {
		return io.ReadAll(io.LimitReader(body, max))
	}
	buf := make([]byte, 0, min(size, headStart))
	for int64(len(buf)) < size {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, int(min(size, 2*int64(cap(buf))))-len(buf))
		}
		m, err := body.Read(buf[len(buf):min(int64(cap(buf)), size)])
		buf = buf[:len(buf)+m]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
	rest, err := io.ReadAll(io.LimitReader(body, max-size))
	if err != nil {
		return nil, err
	}
	if len(rest) > 0 {
		buf = append(buf, rest...)
	}
	return buf, nil
}

// headStart is the most readHead allocates before a body's first bytes.
const headStart = 4 << 10

// contentBlob is content kept in the log, opened like a stored blob.
type contentBlob struct{ *bytes.Reader }

func (contentBlob) Close() error { return nil }

// openContent opens the bytes the log keeps for b. A row whose length is
// not the recorded size is damage (a view edited by hand; verify reports
// it and replay repairs it), refused like a damaged file.
func (r *Registry) openContent(ctx context.Context, b eventlog.Blob) (blobstore.Blob, error) {
	data, err := b.Content, error(nil) // the lookup's, when it brought them
	if data == nil {
		data, err = r.log.Content(ctx, b.SHA256)
	}
	if errors.Is(err, eventlog.ErrNotFound) {
		return nil, fmt.Errorf("%w: %s is not kept in the log", blobstore.ErrNotFound, b.SHA256)
	}
	if err != nil {
		return nil, err
	}
	if b.Size >= 0 && int64(len(data)) != b.Size {
		return nil, damaged(b.SHA256, fmt.Sprintf("the log keeps %d bytes of it, recorded %d", len(data), b.Size))
	}
	return contentBlob{bytes.NewReader(data)}, nil
}
