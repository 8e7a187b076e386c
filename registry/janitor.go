package registry

import (
	"context"
	"time"

	"github.com/artifact-store/artifact-store/eventlog"
)

// ExpireUploads cancels upload sessions idle for longer than the upload TTL
// and removes staged bytes that no open session owns (left by a crash
// between staging and the upload.started event, or by a crashed monolithic
// push). It returns how many staging areas it removed.
func (r *Registry) ExpireUploads(ctx context.Context, now time.Time) (int, error) {
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
	removed := 0
	for _, s := range staged {
		if s.ModTime.After(cutoff) {
			continue
		}
		u, ok := sessions[s.ID]
		if ok && u.Started.After(cutoff) {
			continue
		}
		// A session, or an orphan already older than the TTL: remove it,
		// holding the upload's lock so that no replica is mid-append.
		if err := r.expire(ctx, u, ok, s.ID); err != nil {
			return removed, err
		}
		delete(sessions, s.ID)
		removed++
		r.logger.InfoContext(ctx, "expired upload", "upload", s.ID, "idle_since", s.ModTime)
	}
	// Sessions whose staged bytes are already gone are closed too.
	for _, u := range sessions {
		if u.Started.After(cutoff) {
			continue
		}
		if _, err := r.blobs.UploadSize(ctx, u.ID); err == nil {
			continue
		}
		if _, err := r.log.Append(ctx, eventlog.New(eventlog.TypeUploadCancelled, u.Repo, eventlog.UploadCancelled{ID: u.ID, Reason: "expired"})); err != nil {
			return removed, err
		}
	}
	return removed, nil
}

// expire cancels the session (when there is one) and removes the staged
// bytes of upload id.
func (r *Registry) expire(ctx context.Context, u eventlog.Upload, isSession bool, id string) error {
	unlock, err := r.log.LockUpload(ctx, id)
	if err != nil {
		return err
	}
	defer unlock()
	if isSession {
		// Re-check under the lock: a replica may have finished it meanwhile.
		if _, err := r.log.Upload(ctx, id); err != nil {
			return nil
		}
		if _, err := r.log.Append(ctx, eventlog.New(eventlog.TypeUploadCancelled, u.Repo, eventlog.UploadCancelled{ID: id, Reason: "expired"})); err != nil {
			return err
		}
	}
	return r.blobs.AbortUpload(ctx, id)
}

// RunJanitor expires uploads every interval until ctx is done.
func (r *Registry) RunJanitor(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = time.Minute
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if _, err := r.ExpireUploads(ctx, now); err != nil && ctx.Err() == nil {
				r.logger.ErrorContext(ctx, "expire uploads", "err", err)
			}
		}
	}
}
