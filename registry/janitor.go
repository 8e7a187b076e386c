package registry

import (
	"context"
	"errors"
	"time"

	"github.com/artifact-store/artifact-store/blobstore"
	"github.com/artifact-store/artifact-store/eventlog"
)

// ExpireUploads cancels upload sessions idle for longer than the upload TTL
// and removes staged bytes that no open session owns (left by a crash
// between staging and the upload.started event, or by a crashed monolithic
// push). It returns how many staging areas it removed.
func (r *Registry) ExpireUploads(ctx context.Context, now time.Time) (int, error) {
	ctx = systemActor(ctx, "janitor")
	cutoff := now.Add(-r.opts.UploadTTL)
	open, err := r.log.Uploads(ctx)
	if err != nil {
		return 0, err
	}
	sessions := make(map[string]eventlog.Upload, len(open))
	for _, u := range open {
		sessions[u.ID] = u
	}
	staged, err := r.blobs.ListUploads(ctx)
	if err != nil {
		return 0, err
	}
	// A session that never received a byte gets a short TTL: otherwise
	// empty POSTs, which cost a client nothing, would hold the session
	// caps for the whole upload TTL.
	emptyCutoff := now.Add(-min(r.opts.UploadTTL, emptyUploadTTL))
	removed := 0
	for _, s := range staged {
		u, ok := sessions[s.ID]
		reason := "expired"
		switch {
		case ok && s.Size == 0 && !s.ModTime.After(emptyCutoff) && !u.Started.After(emptyCutoff):
			reason = "no bytes arrived"
		case s.ModTime.After(cutoff), ok && u.Started.After(cutoff):
			continue
		}
		// A session, or an orphan already older than the TTL: remove it,
		// holding the upload's lease so that no replica is mid-append.
		if err := r.expire(ctx, u, ok, s.ID, reason); err != nil {
			return removed, err
		}
		delete(sessions, s.ID)
		removed++
		r.logger.InfoContext(ctx, "expired upload", "upload", s.ID, "idle_since", s.ModTime)
	}
	// Sessions whose staged bytes are gone, whatever their age: a crash
	// between a commit's rename and its event leaves one open but
	// unfinishable. Nobody holding its lease means no commit is under way.
	stagedIDs := make(map[string]bool, len(staged))
	for _, s := range staged {
		stagedIDs[s.ID] = true
	}
	for _, u := range sessions {
		if stagedIDs[u.ID] {
			continue
		}
		if _, err := r.blobs.UploadSize(ctx, u.ID); !errors.Is(err, blobstore.ErrUploadNotFound) {
			continue
		}
		if err := r.expire(ctx, u, true, u.ID, "its staged bytes are gone (a crash during its commit)"); err != nil {
			return removed, err
		}
	}
	return removed, r.log.ForgetLeases(ctx)
}

// expire cancels the session (when there is one) and removes the staged
// bytes of upload id, unless a request is working on it (then the next pass
// looks again).
func (r *Registry) expire(ctx context.Context, u eventlog.Upload, isSession bool, id, reason string) error {
	lease, err := r.log.LeaseUpload(ctx, id, r.leaseTTL(), 0)
	if errors.Is(err, eventlog.ErrBusy) {
		return nil
	}
	if err != nil {
		return err
	}
	defer lease.Release()
	if isSession {
		// Re-check under the lease: a replica may have finished it meanwhile.
		if _, err := r.log.Upload(ctx, id); err != nil {
			return nil
		}
		end, _, err := r.sessionEnd(ctx, u.Repo, id)
		if err != nil {
			return err
		}
		if _, err := r.log.Append(ctx, eventlog.New(eventlog.TypeUploadCancelled, u.Repo, eventlog.UploadCancelled{ID: id, Reason: reason, SessionEnd: end})); err != nil {
			return err
		}
	}
	if err := r.blobs.AbortUpload(ctx, id); err != nil && !errors.Is(err, blobstore.ErrUploadNotFound) {
		return err
	}
	return nil
}

// emptyUploadTTL is how long a session may stay without a byte.
const emptyUploadTTL = 15 * time.Minute

// RunJanitor expires uploads every interval until ctx is done.
func (r *Registry) RunJanitor(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = time.Minute
	}
	expire := func(ctx context.Context, now time.Time) error {
		_, err := r.ExpireUploads(ctx, now)
		return err
	}
	// Once at start: sessions a crash left unfinishable are closed now.
	if err := expire(ctx, time.Now()); err != nil && ctx.Err() == nil {
		r.logger.ErrorContext(ctx, "expire uploads", "err", err)
	}
	r.every(ctx, interval, "expire uploads", expire, nil)
}
