package registry

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/artifact-store/artifact-store/eventlog"
)

// Pulls of manifests are noted in memory and recorded in batches, one
// manifest.pulled event per repository per flush, so that "not pulled for
// 90 days" is a retention rule about the log without an event per pull.
// A crash loses at most the pulls since the last flush.

// pullBatch holds the pulls noted since the last flush.
type pullBatch struct {
	mu    sync.Mutex
	pulls map[string]map[string]time.Time // repo -> digest -> last pull
}

// notePull notes that repo's manifest digest was pulled now.
func (r *Registry) notePull(repo, digest string) {
	b := &r.pulls
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.pulls == nil {
		b.pulls = map[string]map[string]time.Time{}
	}
	m := b.pulls[repo]
	if m == nil {
		m = map[string]time.Time{}
		b.pulls[repo] = m
	}
	m[digest] = time.Now()
}

// FlushPulls records the pulls noted since the last flush. Pulls that
// cannot be recorded (the database is down) are noted again for the next.
func (r *Registry) FlushPulls(ctx context.Context) error {
	b := &r.pulls
	b.mu.Lock()
	pulls := b.pulls
	b.pulls = nil
	b.mu.Unlock()
	// The server's own record, whoever's request flushes it.
	ctx = eventlog.WithActor(ctx, eventlog.Actor{Name: "artifactstore:pulls", Method: "system"})
	repos := sortedKeys(pulls)
	for i, repo := range repos {
		var p eventlog.ManifestPulled
		for d, t := range pulls[repo] {
			p.Pulls = append(p.Pulls, eventlog.Pull{Digest: d, Time: t.UnixNano()})
		}
		sort.Slice(p.Pulls, func(i, j int) bool { return p.Pulls[i].Digest < p.Pulls[j].Digest })
		if _, err := r.log.Append(ctx, eventlog.New(eventlog.TypeManifestPulled, repo, p)); err != nil {
			for _, left := range repos[i:] {
				for d, t := range pulls[left] {
					r.renotePull(left, d, t)
				}
			}
			return err
		}
	}
	return nil
}

func (r *Registry) renotePull(repo, digest string, t time.Time) {
	b := &r.pulls
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.pulls == nil {
		b.pulls = map[string]map[string]time.Time{}
	}
	if b.pulls[repo] == nil {
		b.pulls[repo] = map[string]time.Time{}
	}
	if t.After(b.pulls[repo][digest]) {
		b.pulls[repo][digest] = t
	}
}

// RunPullFlush records noted pulls every interval until ctx is done, and
// once more then.
func (r *Registry) RunPullFlush(ctx context.Context, interval time.Duration) {
	flush := func(ctx context.Context, _ time.Time) error { return r.FlushPulls(ctx) }
	r.every(ctx, interval, "record manifest pulls", flush, func(ctx context.Context) error { return flush(ctx, time.Time{}) })
}
