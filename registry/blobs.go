package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/artifact-store/artifact-store/blobstore"
	"github.com/artifact-store/artifact-store/digest"
	"github.com/artifact-store/artifact-store/eventlog"
	"github.com/gorilla/mux"
)

// parseDigest validates a client digest, answering DIGEST_INVALID (or
// UNSUPPORTED for a well-formed unknown algorithm) with the reason.
func parseDigest(s string) (digest.Digest, error) {
	d, err := digest.Parse(s)
	if errors.Is(err, digest.ErrUnsupported) {
		return "", errorf(CodeUnsupported, "%v", err).withStatus(http.StatusBadRequest)
	}
	if err != nil {
		return "", errorf(CodeDigestInvalid, "%v", err)
	}
	return d, nil
}

// linkedBlob resolves d (sha256, sha512 or blake3) to a blob repo may
// serve; forRead brings the bytes along when the log keeps them.
func (r *Registry) linkedBlob(ctx context.Context, repo string, d digest.Digest, forRead bool) (eventlog.Blob, error) {
	lookup := r.log.LinkedBlob
	if forRead {
		lookup = r.log.LinkedBlobForRead
	}
	b, err := lookup(ctx, repo, d.String())
	if errors.Is(err, eventlog.ErrNotFound) {
		return b, errorf(CodeBlobUnknown, "blob %s is not in repository %s", d, repo)
	}
	return b, err
}

// relyOn renews repo's link to b before the caller tells a client that
// the blob exists there (a GET or HEAD, a mount of a blob already held),
// once the link is older than half the collector's grace: a client told
// so may skip pushing it and put a manifest that needs it, and within the
// grace that must succeed. The renewal is an append (blob.linked), so a
// collection that found the link unused before it cannot remove it after
// (its unlink is refused: eventlog guard); one that removed it first made
// the blob unknown here, which the client is then told (404), so it
// pushes the blob. Links younger than half the grace cost nothing.
func (r *Registry) relyOn(ctx context.Context, repo string, b eventlog.Blob) error {
	if time.Since(b.Linked) < r.opts.GCGrace/2 {
		return nil
	}
	ctx = eventlog.WithActor(ctx, eventlog.Actor{Name: "artifactstore:grace", Method: "system"})
	_, err := r.log.Append(ctx, eventlog.New(eventlog.TypeBlobLinked, repo, eventlog.BlobLinked{SHA256: b.SHA256}))
	if errors.Is(err, eventlog.ErrReferenceMissing) {
		return errorf(CodeBlobUnknown, "blob %s was garbage-collected from repository %s just now; push it", b.SHA256, repo)
	}
	return err
}

// routeBlob resolves the route's repository and digest to a blob the
// repository may serve.
func (r *Registry) routeBlob(req *http.Request) (repo string, d digest.Digest, b eventlog.Blob, err error) {
	repo = mux.Vars(req)["name"]
	if d, err = parseDigest(mux.Vars(req)["digest"]); err != nil {
		return repo, d, b, err
	}
	b, err = r.linkedBlob(req.Context(), repo, d, req.Method == http.MethodGet)
	return repo, d, b, err
}

// getBlob serves a blob, with Range and conditional requests. A blob is
// addressed by any of its digests; Docker-Content-Digest echoes the one
// asked for.
// Spec: #pulling-blobs
func (r *Registry) getBlob(w http.ResponseWriter, req *http.Request) error {
	repo, d, b, err := r.routeBlob(req)
	if err != nil {
		return err
	}
	if err := r.relyOn(req.Context(), repo, b); err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Docker-Content-Digest", d.String())
	h.Set("ETag", `"`+d.String()+`"`)
	h.Set("Cache-Control", "max-age=31536000, immutable")
	h.Set("Accept-Ranges", "bytes") // as ServeContent says; the HEAD and small-blob paths skip it
	plain := plainRequest(req)
	if plain && req.Method == http.MethodHead {
		// The view knows the size, and the bytes are durable before the
		// view names them: no need to touch the store. A client that
		// asks whether a blob exists is about to rely on it (a push
		// that skips a layer): the read renews the collector's grace.
		r.noteRead(b)
		h.Set("Content-Length", strconv.FormatInt(b.Size, 10))
		w.WriteHeader(http.StatusOK)
		return nil
	}
	if err := checkRange(w, req, b.Size); err != nil {
		return err
	}
	if r.opts.RedirectPulls > 0 && req.Method == http.MethodGet && b.Tier != eventlog.TierInline { // the log's content has no URL
		if u, ok, err := r.store(b.Tier).RedirectURL(req.Context(), digest.Digest(b.SHA256), r.opts.RedirectPulls); err == nil && ok {
			r.noteRead(b)
			h.Set("Location", u)
			w.WriteHeader(http.StatusTemporaryRedirect)
			return nil
		}
		// No redirect possible: serve the bytes ourselves.
	}
	f, err := r.openBlob(req.Context(), b)
	if errors.Is(err, blobstore.ErrNotFound) {
		// The log says the bytes exist but the store lost them: that is
		// damage for verify to report, not a client error.
		return fmt.Errorf("blob %s recorded but missing from the store: %v", b.SHA256, err)
	}
	if err != nil {
		return err
	}
	defer f.Close()
	if plain && b.Size <= smallBlob {
		// Small blobs: one read and one write beat ServeContent's seeks
		// and a sendfile call for a few bytes.
		buf := make([]byte, b.Size)
		if _, err := io.ReadFull(f, buf); err != nil {
			return fmt.Errorf("read blob %s: %w", b.SHA256, err)
		}
		h.Set("Content-Length", strconv.FormatInt(b.Size, 10))
		w.WriteHeader(http.StatusOK)
		w.Write(buf)
		return nil
	}
	if plain && r.streamed(w, req, b) {
		return nil
	}
	// ServeContent handles Range (206, 416), If-None-Match and HEAD, sets
	// Content-Length, and reaches sendfile for *os.File.
	http.ServeContent(w, req, "", time.Time{}, f)
	return nil
}

// smallBlob is the size up to which a blob is served from one read.
const smallBlob = 64 << 10

// plainRequest reports whether req asks for a whole representation,
// without a range or a condition.
func plainRequest(req *http.Request) bool {
	return req.Header.Get("Range") == "" && req.Header.Get("If-None-Match") == "" &&
		req.Header.Get("If-Range") == "" && req.Header.Get("If-Match") == ""
}

// streamed serves the whole of a large blob that its store reads past the
// page cache (blobstore.Store.OpenStream, ADR 0022) to a plain GET, with
// the headers already set, and reports whether it did; otherwise the
// caller serves the blob as it opened it.
func (r *Registry) streamed(w http.ResponseWriter, req *http.Request, b eventlog.Blob) bool {
	if req.Method != http.MethodGet || b.Tier == eventlog.TierInline || b.Size <= smallBlob {
		return false
	}
	st := r.store(b.Tier).OpenStream(req.Context(), digest.Digest(b.SHA256), b.Size)
	if st == nil {
		return false
	}
	defer st.Close()
	h := w.Header()
	h.Set("Accept-Ranges", "bytes")
	h.Set("Content-Length", strconv.FormatInt(b.Size, 10))
	w.WriteHeader(http.StatusOK)
	if _, err := st.WriteTo(w); errors.Is(err, blobstore.ErrStreamRead) {
		// The status is sent: the client sees a body cut short.
		r.logger.ErrorContext(req.Context(), "blob read failed while serving it", "blob", b.SHA256, "err", err)
	}
	return true
}

// deleteBlob removes a blob from a repository. The bytes stay until GC
// finds no repository that links them.
// Spec: #deleting-blobs
func (r *Registry) deleteBlob(w http.ResponseWriter, req *http.Request) error {
	repo, _, b, err := r.routeBlob(req)
	if err != nil {
		return err
	}
	if _, err := r.log.Append(req.Context(), eventlog.New(eventlog.TypeBlobUnlinked, repo, eventlog.BlobUnlinked{SHA256: b.SHA256})); err != nil {
		return err
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// commitEvents returns the events that record content the caller made
// durable after reading the log position fence (eventlog.Log.Observed), or
// that the blob.committed carries (content, from ingestBytes): a
// blob.committed, fenced, then a link into repo unless repo is empty. The
// blob.committed is recorded even when the log knows the content (its
// projection is idempotent): the fence is what guarantees that the bytes
// the caller found or wrote are not ones a collection deleted meanwhile.
func commitEvents(repo string, ds blobstore.Digests, content []byte, fence int64) []eventlog.Event {
	c := eventlog.New(eventlog.TypeBlobCommitted, "", eventlog.BlobCommitted{
		SHA256: ds.SHA256.String(), BLAKE3: ds.BLAKE3.String(), SHA512: ds.SHA512.String(), Size: ds.Size,
		Content: content,
	})
	c.Fence = fence
	evs := []eventlog.Event{c}
	if repo != "" {
		evs = append(evs, eventlog.New(eventlog.TypeBlobLinked, repo, eventlog.BlobLinked{SHA256: ds.SHA256.String()}))
	}
	return evs
}

// appendCommitted appends evs, whose blob.committed events are fenced
// (commitEvents). When the log refuses them because a collection swept
// one of their blobs after its fence, the bytes the writer relied on may
// be gone; but if the collection has finished (the blob is swept, not
// condemned) and the bytes are in the store, or kept in the log, when
// looked at after reading the head again, they were written after the
// delete: the append is retried once with that head as the fence.
// Otherwise the refusal stands, and the client, told 503, pushes again.
func (r *Registry) appendCommitted(ctx context.Context, evs ...eventlog.Event) error {
	out, err := r.log.Append(ctx, evs...)
	if err == nil {
		r.metrics.keptInLog(out) // as recorded: without content the log kept already
	}
	if !errors.Is(err, eventlog.ErrFenced) {
		return err
	}
	head, herr := r.log.Head(ctx)
	if herr != nil {
		return err
	}
	retry := make([]eventlog.Event, len(evs))
	for i, e := range evs {
		if e.Type == eventlog.TypeBlobCommitted {
			var p eventlog.BlobCommitted
			if derr := e.Decode(&p); derr != nil {
				return derr
			}
			if _, serr := r.blobs.Stat(ctx, digest.Digest(p.SHA256)); serr != nil {
				// Or kept in the log, by a commit after the sweep (a push
				// that carried nothing found it there, ingestBytes).
				if _, cerr := r.log.Content(ctx, p.SHA256); cerr != nil {
					return err
				}
			}
			e.Fence = head
		}
		retry[i] = e
	}
	if out, err = r.log.Append(ctx, retry...); err == nil {
		r.metrics.keptInLog(out)
	}
	return err
}
