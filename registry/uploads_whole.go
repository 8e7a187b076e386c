package registry

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/artifact-store/artifact-store/blobstore"
	"github.com/artifact-store/artifact-store/digest"
	"github.com/artifact-store/artifact-store/eventlog"
)

// A PUT that carries a whole small blob (ADR 0016, 0018, 0021): the
// common POST, then PUT ?digest= with the bytes. Its content goes into the
// log with the event that ends the session; no staging file is written.

// finishUnrecorded ends, without a lease, a session never recorded whose
// PUT carries the whole blob: the POST then PUT of a small blob, on any
// replica. A lease is a round trip to take and one to give back on
// PostgreSQL, and so is asking whether the session was recorded: instead
// the upload.finished says it was not (Unrecorded), and Append refuses it
// if the id was recorded or ended first (ErrUploadTaken). Then, or for
// anything else (a recorded session, a partial range, a body over the
// inline size, a digest that does not match), it reports false and leaves
// the request to the leased path, with the body it has read put back.
//
// What the lease guarded stays guarded: a PATCH that records the session
// meanwhile, or another PUT that ends it, comes first in the log and this
// append is refused; one that comes after finds the session ended.
func (r *Registry) finishUnrecorded(w http.ResponseWriter, req *http.Request, repo, id string) (bool, error) {
	n, whole := r.wholeBody(req)
	if !whole {
		return false, nil
	}
	ds := req.URL.Query().Get("digest")
	d, err := parseDigest(ds)
	if ds == "" || err != nil {
		return false, nil // the leased path says what is wrong, in its order
	}
	ctx := req.Context()
	end, expires, err := r.sessionEnd(ctx, repo, id)
	if err != nil || !time.Now().Before(expires) {
		return false, nil // not an id valid on its own (or its key unreadable): the leased path decides
	}
	data, err := readWhole(req.Body, n)
	if err != nil {
		return true, err // a short body, a stalled one (idleBody) or a client gone
	}
	putBack := func() { req.Body = io.NopCloser(bytes.NewReader(data)) }
	fence := r.log.Observed()
	got, content, err := r.ingestBytes(ctx, data, d)
	if errors.Is(err, blobstore.ErrDigestMismatch) {
		putBack() // the leased path ends the session with the refusal
		return false, nil
	}
	if err != nil {
		return true, uploadError(err)
	}
	ctx = context.WithoutCancel(ctx) // as the leased path: record what a client may have been told
	evs := append(commitEvents(repo, got, content, fence), eventlog.New(eventlog.TypeUploadFinished, repo,
		eventlog.UploadFinished{ID: id, SHA256: got.SHA256.String(), SessionEnd: end, Unrecorded: true}))
	switch err := r.appendCommitted(ctx, evs...); {
	case errors.Is(err, eventlog.ErrUploadTaken):
		putBack()
		return false, nil
	case err != nil:
		return true, err
	}
	writeBlobCreated(w, repo, d)
	return true, nil
}

// finishWhole completes a session that holds nothing yet and whose PUT
// carries the whole blob, small enough for the log to keep (ADR 0016): the
// common POST then PUT ?digest= of a small blob. The bytes are hashed in
// memory and travel in the blob.committed; no staged file is written. A
// session never recorded (ADR 0018) ends with this one append; a recorded
// one's empty staging file goes after it. It reports false, and leaves the
// request to the staged path, for anything else.
func (r *Registry) finishWhole(w http.ResponseWriter, req *http.Request, repo string, s uploadSession, d digest.Digest, lease *eventlog.Lease) (bool, error) {
	id := s.id
	n, whole := r.wholeBody(req)
	if !whole || (n == 0 && s.recorded) {
		return false, nil // (a recorded session's staged bytes may be the blob)
	}
	ctx := req.Context()
	if s.recorded { // (an unrecorded session holds nothing)
		if size, err := r.blobs.UploadSize(ctx, id); err != nil || size != 0 {
			return false, nil
		}
	}
	data, err := readWhole(newLeasedBody(ctx, req.Body, lease), n)
	if err != nil {
		return true, err // a short body, a stalled one, a lost lease: answered as on the staged path
	}
	fence := r.log.Observed()
	ds, content, err := r.ingestBytes(ctx, data, d)
	if errors.Is(err, blobstore.ErrDigestMismatch) {
		// As the staged path: the session ends with the refusal.
		r.log.Append(context.WithoutCancel(ctx), eventlog.New(eventlog.TypeUploadCancelled, repo, eventlog.UploadCancelled{ID: id, Reason: "digest mismatch", SessionEnd: s.end}))
		if s.recorded {
			r.blobs.AbortUpload(context.WithoutCancel(ctx), id)
		}
		return true, uploadError(err)
	}
	if err != nil {
		return true, uploadError(err)
	}
	ctx = context.WithoutCancel(ctx) // as the staged path: record what a client may have been told
	evs := append(commitEvents(repo, ds, content, fence), eventlog.New(eventlog.TypeUploadFinished, repo, eventlog.UploadFinished{ID: id, SHA256: ds.SHA256.String(), SessionEnd: s.end, Unrecorded: !s.recorded}))
	if err := r.appendCommitted(ctx, evs...); err != nil {
		return true, err
	}
	// A recorded session's empty staging file; one left by a crash here
	// is an abandoned upload's, which the janitor removes.
	if s.recorded {
		if err := r.blobs.AbortUpload(ctx, id); err != nil {
			r.logger.WarnContext(ctx, "remove the staging area of a finished upload", "upload", id, "err", err)
		}
	}
	writeBlobCreated(w, repo, d)
	return true, nil
}

// wholeBody reports whether req's body is a whole blob the log may keep:
// a Content-Length of at most the inline size, and no Content-Range or
// one that covers it all from 0 (anything else the staged path answers).
func (r *Registry) wholeBody(req *http.Request) (n int64, ok bool) {
	n = req.ContentLength
	if n < 0 || n > r.inlineMax() {
		return n, false
	}
	if cr := req.Header.Get("Content-Range"); cr != "" {
		if start, end, err := parseContentRange(cr); err != nil || start != 0 || end+1 != n {
			return n, false
		}
	}
	return n, true
}

// readWhole reads the n bytes of a whole body; one that ends early is
// SIZE_INVALID, and nothing was stored.
func readWhole(body io.Reader, n int64) ([]byte, error) {
	data := make([]byte, n)
	if _, err := io.ReadFull(body, data); errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, errorf(CodeSizeInvalid, "the body ended before its Content-Length of %d bytes; nothing was stored, send the blob again", n)
	} else if err != nil {
		return nil, err
	}
	return data, nil
}
