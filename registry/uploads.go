package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/artifact-store/artifact-store/auth"
	"github.com/artifact-store/artifact-store/blobstore"
	"github.com/artifact-store/artifact-store/digest"
	"github.com/artifact-store/artifact-store/eventlog"
	"github.com/gorilla/mux"
)

// startUpload begins a push: a cross-repository mount, a monolithic upload
// (POST with ?digest= and the body), or a new upload session.
// Spec: #pushing-blobs, #mounting-a-blob-from-another-repository
func (r *Registry) startUpload(w http.ResponseWriter, req *http.Request) error {
	ctx, repo, q := req.Context(), mux.Vars(req)["name"], req.URL.Query()
	if m := q.Get("mount"); m != "" {
		done, err := r.mount(w, req, repo, m, q.Get("from"))
		if done || err != nil {
			return err
		}
		// Not mountable: the spec says to fall back to a new session.
	} else if d := q.Get("digest"); d != "" {
		return r.monolithicUpload(w, req, repo, d)
	}
	// The caps count recorded sessions, and this one is not recorded
	// until bytes arrive (sessions.go); but a client is better told now
	// that it could not send them. Told from counts up to a second old
	// (openCounts): the check that holds is the one at recording.
	if err := r.checkUploadCapsSoon(ctx, repo); err != nil {
		return err
	}
	id, err := r.newSession(ctx, repo)
	if err != nil {
		return err
	}
	writeUploadStatus(w, repo, id, 0, http.StatusAccepted)
	return nil
}

// mount links a blob from repository from into repo. Without from, only
// a blob repo already holds is "mounted" (a 201 and nothing recorded):
// linking whatever any repository holds would let a client that knows a
// digest read another repository's bytes. It reports false when the blob
// cannot be mounted, and the caller falls back to an upload session.
func (r *Registry) mount(w http.ResponseWriter, req *http.Request, repo, mount, from string) (bool, error) {
	ctx := req.Context()
	d, err := parseDigest(mount)
	if err != nil {
		return false, err
	}
	source := repo
	if from != "" {
		if err := ValidateName(from); err != nil {
			return false, err
		}
		source = from
	}
	if !r.allowed(req, source, auth.ActionPull) {
		if p := principal(req); p.Method == auth.MethodToken && !tokenNames(p, source) {
			// The token was fetched for the target alone: ask for one
			// that also covers the source, as clients expect.
			w.Header().Set("WWW-Authenticate", r.auth.Challenge(req, auth.Scope(repo, auth.ActionPull, auth.ActionPush)+" "+auth.Scope(source, auth.ActionPull)))
			return false, errorf(CodeUnauthorized, "mounting from %s needs a token that covers it too", source)
		}
		// The caller may not read the source: an ordinary upload, which
		// says nothing of whether the source holds the blob.
		return false, nil
	}
	b, err := r.linkedBlob(ctx, source, d, false)
	if re := (*Error)(nil); errors.As(err, &re) && re.Code == CodeBlobUnknown {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if source == repo {
		// Nothing to record; but the client now relies on the blob (it
		// will not upload it): that renews the collector's grace.
		if err := r.relyOn(ctx, repo, b); err != nil {
			if re := (*Error)(nil); errors.As(err, &re) && re.Code == CodeBlobUnknown {
				return false, nil // collected just now: upload it
			}
			return false, err
		}
		r.noteRead(b)
	} else {
		_, err := r.log.Append(ctx, eventlog.New(eventlog.TypeBlobLinked, repo, eventlog.BlobLinked{SHA256: b.SHA256}))
		if errors.Is(err, eventlog.ErrReferenceMissing) {
			return false, nil // collected since it was looked up: upload it
		}
		if err != nil {
			return false, err
		}
	}
	writeBlobCreated(w, repo, d)
	return true, nil
}

func (r *Registry) monolithicUpload(w http.ResponseWriter, req *http.Request, repo, ds string) error {
	d, err := parseDigest(ds)
	if err != nil {
		return err
	}
	fence := r.log.Observed()
	got, content, err := r.ingestBody(req.Context(), req.Body, req.ContentLength, d)
	if err != nil {
		return uploadError(err)
	}
	if err := r.appendCommitted(req.Context(), commitEvents(repo, got, content, fence)...); err != nil {
		return err
	}
	writeBlobCreated(w, repo, d)
	return nil
}

// checkUploadCaps refuses a new session beyond the caps on open sessions.
func (r *Registry) checkUploadCaps(ctx context.Context, repo string) error {
	inRepo, total, err := r.log.OpenUploads(ctx, repo)
	if err != nil {
		return err
	}
	return r.capsError(repo, inRepo, total)
}

// checkUploadCapsSoon is checkUploadCaps from the counts r.openCounts
// kept, for a POST's early warning: a query less for every push on
// PostgreSQL.
func (r *Registry) checkUploadCapsSoon(ctx context.Context, repo string) error {
	gen := r.log.UploadsChanged()
	if inRepo, total, ok := r.openCounts.get(repo, gen, time.Now()); ok {
		return r.capsError(repo, inRepo, total)
	}
	inRepo, total, err := r.log.OpenUploads(ctx, repo)
	if err != nil {
		return err
	}
	r.openCounts.put(repo, gen, time.Now(), inRepo, total)
	return r.capsError(repo, inRepo, total)
}

func (r *Registry) capsError(repo string, inRepo, total int) error {
	switch {
	case inRepo >= r.opts.MaxUploadsPerRepo:
		return errorf(CodeTooManyRequests, "repository %s has %d open upload sessions, the limit; finish or cancel some (DELETE their Location), or wait for them to expire", repo, inRepo)
	case total >= r.opts.MaxUploads:
		return errorf(CodeTooManyRequests, "the registry has %d open upload sessions, the limit; retry later", total)
	}
	return nil
}

// uploadStatus reports how many bytes an upload holds, so a client can
// resume after an interruption (including a server restart). A client
// whose chunk was cut asks at once, often before the server has seen the
// cut: the status waits (statusWait) for a request working on the session
// to end, so that it reports what the server kept, not bytes that request
// is about to give back; past the wait it reports the progress so far.
// Spec: #getting-the-status-of-an-upload
func (r *Registry) uploadStatus(w http.ResponseWriter, req *http.Request) error {
	ctx, repo, id := req.Context(), mux.Vars(req)["name"], mux.Vars(req)["uuid"]
	if _, err := r.session(ctx, repo, id); err != nil {
		return err // an id that is no session takes no lease
	}
	if ls, err := r.log.LeaseUpload(ctx, id, r.leaseTTL(), statusWait); err == nil {
		defer ls.Release()
	} else if !errors.Is(err, eventlog.ErrBusy) {
		return err
	}
	// Again after the wait: the request before may have recorded the
	// session or ended it.
	s, err := r.session(ctx, repo, id)
	if err != nil {
		return err
	}
	var size int64
	if s.recorded {
		if size, err = r.blobs.UploadSize(ctx, id); err != nil {
			return uploadError(err)
		}
	}
	writeUploadStatus(w, repo, id, size, http.StatusNoContent)
	return nil
}

// patchUpload appends a chunk. With Content-Range the chunk must start
// exactly at the end of what the upload holds (416 otherwise, and the
// session stays usable); without it the body is streamed onto the end.
// Spec: #pushing-a-blob-in-chunks
func (r *Registry) patchUpload(w http.ResponseWriter, req *http.Request) error {
	ctx, repo, id := req.Context(), mux.Vars(req)["name"], mux.Vars(req)["uuid"]
	lease, s, err := r.leaseSession(ctx, repo, id)
	if err != nil {
		return err
	}
	defer lease.Release()
	if !s.recorded && req.ContentLength == 0 && req.Header.Get("Content-Range") == "" {
		// Nothing to keep: the session stays as it was.
		writeUploadStatus(w, repo, id, 0, http.StatusAccepted)
		return nil
	}
	if err := r.record(ctx, repo, &s); err != nil {
		return err
	}
	size, err := r.appendChunk(req, repo, id, lease, false)
	if err != nil {
		return err
	}
	writeUploadStatus(w, repo, id, size, http.StatusAccepted)
	return nil
}

// appendChunk appends the request body to the upload and returns the new
// size. last says that the upload is committed right after, which makes
// the bytes durable: the append need not. Out-of-order chunks are refused with 416 before anything is read.
// With Content-Range the body must carry exactly the announced bytes: a
// shorter one keeps what arrived (400, resume from there), a longer one
// stores nothing of the chunk (400); no byte is ever dropped silently.
func (r *Registry) appendChunk(req *http.Request, repo, id string, lease *eventlog.Lease, last bool) (int64, error) {
	ctx := req.Context()
	size, err := r.blobs.UploadSize(ctx, id)
	if err != nil {
		return 0, uploadError(err)
	}
	body := io.Reader(newLeasedBody(ctx, req.Body, lease))
	want := int64(-1) // the size the upload must reach, when Content-Range says
	if cr := req.Header.Get("Content-Range"); cr != "" {
		start, end, err := parseContentRange(cr)
		if err != nil {
			return 0, errorf(CodeBlobUploadInvalid, "Content-Range %q: %v", cr, err).withStatus(http.StatusRequestedRangeNotSatisfiable)
		}
		if start != size {
			return 0, rangeError(repo, id, size, fmt.Sprintf("chunk starts at byte %d but the upload holds %d bytes; resume from byte %d", start, size, size))
		}
		n := end - start + 1 // no overflow: 0 <= start <= end < MaxInt64
		if req.ContentLength >= 0 && req.ContentLength != n {
			return 0, errorf(CodeSizeInvalid, "Content-Range covers %d bytes but Content-Length is %d", n, req.ContentLength)
		}
		body = &exactBody{r: body, left: n}
		want = end + 1
	}
	appendUpload := r.blobs.AppendUpload
	if last {
		appendUpload = r.blobs.AppendBeforeCommit
	}
	newSize, err := appendUpload(ctx, id, size, body)
	if err == nil && want >= 0 && newSize != want {
		if last {
			// No commit follows: make what the answer reports durable.
			if _, err := r.blobs.AppendUpload(ctx, id, newSize, strings.NewReader("")); err != nil {
				return 0, uploadError(err)
			}
		}
		return 0, errorf(CodeSizeInvalid, "the chunk carried %d bytes but Content-Range announced %d; the upload now holds %d bytes: resume from there",
			newSize-size, want-size, newSize)
	}
	if errors.Is(err, blobstore.ErrBadOffset) {
		// Another request appended concurrently.
		cur, _ := r.blobs.UploadSize(ctx, id)
		return 0, rangeError(repo, id, cur, err.Error())
	}
	if err != nil {
		return 0, uploadError(err)
	}
	return newSize, nil
}

// exactBody yields at most left bytes of r and fails, so that the store
// keeps none of the chunk, when r has more than that: a body longer than
// its Content-Range (sent chunked, without Content-Length) is refused
// instead of being cut short silently.
type exactBody struct {
	r    io.Reader
	left int64
}

func (b *exactBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		var one [1]byte
		for {
			n, err := b.r.Read(one[:])
			if n > 0 {
				return 0, errorf(CodeSizeInvalid, "the request body is longer than its Content-Range; nothing of this chunk was stored")
			}
			if err != nil {
				return 0, err // io.EOF: exactly as announced
			}
		}
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	return n, err
}

// finishUpload completes an upload, optionally with a last chunk, verifies
// the digest and makes the blob visible in the repository.
// Spec: #pushing-a-blob-in-chunks (closing the upload)
func (r *Registry) finishUpload(w http.ResponseWriter, req *http.Request) error {
	ctx, repo, id := req.Context(), mux.Vars(req)["name"], mux.Vars(req)["uuid"]
	if done, err := r.finishUnrecorded(w, req, repo, id); done || err != nil {
		return err
	}
	lease, s, err := r.leaseSession(ctx, repo, id)
	if err != nil {
		return err
	}
	defer lease.Release()
	// The digest first: a malformed one must not cost the last chunk.
	ds := req.URL.Query().Get("digest")
	if ds == "" {
		return errorf(CodeDigestInvalid, "the digest query parameter is required to complete an upload")
	}
	d, err := parseDigest(ds)
	if err != nil {
		return err
	}
	if done, err := r.finishWhole(w, req, repo, s, d, lease); done || err != nil {
		return err
	}
	if err := r.record(ctx, repo, &s); err != nil {
		return err
	}
	if req.Header.Get("Content-Range") != "" || req.ContentLength != 0 {
		if _, err := r.appendChunk(req, repo, id, lease, true); err != nil {
			return err
		}
	}
	stop := keepLease(ctx, lease)
	fence := r.log.Observed()
	got, err := r.blobs.CommitUpload(ctx, id, d)
	stop()
	if errors.Is(err, blobstore.ErrDigestMismatch) {
		// The store has discarded the bytes; close the session to match.
		r.log.Append(context.WithoutCancel(ctx), eventlog.New(eventlog.TypeUploadCancelled, repo, eventlog.UploadCancelled{ID: id, Reason: "digest mismatch", SessionEnd: s.end}))
		return uploadError(err)
	}
	if err != nil {
		return uploadError(err)
	}
	// The bytes are committed: record them even if the client goes away
	// now, or they would be an orphan and the session a dead end.
	ctx = context.WithoutCancel(ctx)
	evs := append(commitEvents(repo, got, nil, fence), eventlog.New(eventlog.TypeUploadFinished, repo, eventlog.UploadFinished{ID: id, SHA256: got.SHA256.String(), SessionEnd: s.end}))
	if err := r.appendCommitted(ctx, evs...); err != nil {
		return err
	}
	writeBlobCreated(w, repo, d)
	return nil
}

// cancelUpload abandons an upload and removes its staged bytes.
// Spec: #canceling-an-upload
func (r *Registry) cancelUpload(w http.ResponseWriter, req *http.Request) error {
	ctx, repo, id := req.Context(), mux.Vars(req)["name"], mux.Vars(req)["uuid"]
	lease, s, err := r.leaseSession(ctx, repo, id)
	if err != nil {
		return err
	}
	defer lease.Release()
	// The event first: if the removal below does not happen, the janitor
	// removes staged bytes that no open session owns. A session never
	// recorded has none, but its id must not serve again.
	if _, err := r.log.Append(ctx, eventlog.New(eventlog.TypeUploadCancelled, repo, eventlog.UploadCancelled{ID: id, Reason: "cancelled by client", SessionEnd: s.end})); err != nil {
		return err
	}
	if s.recorded {
		if err := r.blobs.AbortUpload(ctx, id); err != nil {
			return err
		}
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// uploadError maps blob store errors of the upload routes.
func uploadError(err error) error {
	switch {
	case errors.Is(err, blobstore.ErrDigestMismatch):
		return errorf(CodeDigestInvalid, "%s; nothing was stored", publicText(err, blobstore.ErrDigestMismatch))
	case errors.Is(err, blobstore.ErrUploadNotFound):
		return errorf(CodeBlobUploadUnknown, "%s", publicText(err, blobstore.ErrUploadNotFound))
	}
	return err
}

func rangeError(repo, id string, size int64, msg string) error {
	e := errorf(CodeBlobUploadInvalid, "%s", msg).withStatus(http.StatusRequestedRangeNotSatisfiable)
	e.Detail = map[string]any{"location": uploadURL(repo, id), "received": size}
	return e
}

// parseContentRange accepts "<start>-<end>" as the spec writes it, and the
// "bytes <start>-<end>[/<total>]" and "bytes=" forms clients also send.
// Both ends must fit in an int64 and end must be below MaxInt64, so that
// the chunk's length end-start+1 and the upload's new size end+1 cannot
// overflow.
func parseContentRange(s string) (start, end int64, err error) {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(strings.TrimPrefix(s, "bytes="), "bytes ")
	s, _, _ = strings.Cut(s, "/")
	a, b, found := strings.Cut(s, "-")
	if !found {
		return 0, 0, errors.New("not of the form <start>-<end>")
	}
	start, err1 := strconv.ParseInt(a, 10, 64)
	end, err2 := strconv.ParseInt(b, 10, 64)
	switch {
	case errors.Is(err1, strconv.ErrRange) || errors.Is(err2, strconv.ErrRange) || end == math.MaxInt64:
		return 0, 0, fmt.Errorf("offsets must be below %d", int64(math.MaxInt64))
	case err1 != nil || err2 != nil || start < 0 || end < start:
		return 0, 0, errors.New("not of the form <start>-<end> with 0 <= start <= end")
	}
	return start, end, nil
}

func writeUploadStatus(w http.ResponseWriter, repo, id string, size int64, status int) {
	h := w.Header()
	h.Set("Location", uploadURL(repo, id))
	h.Set("Docker-Upload-UUID", id)
	end := size - 1
	if end < 0 {
		end = 0 // the spec's Range has no form for "nothing yet"; 0-0 is what clients expect
	}
	h.Set("Range", fmt.Sprintf("0-%d", end))
	h.Set("Content-Length", "0")
	w.WriteHeader(status)
}

func writeBlobCreated(w http.ResponseWriter, repo string, d digest.Digest) {
	h := w.Header()
	h.Set("Location", blobURL(repo, d.String()))
	h.Set("Docker-Content-Digest", d.String())
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
}
