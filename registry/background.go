package registry

import (
	"context"
	"time"
)

// Background work. A server runs each task below on its own schedule
// (cmd/artifactstore wires which): the janitor (ExpireUploads), anchors,
// tiering, garbage collection, retention, and the flushes of reads and
// pulls. Each is safe on every replica at once: tasks that must not run
// twice take a lock across processes (collections, retention passes,
// tier moves), and the others are idempotent.

// every runs task at every tick of interval until ctx is done, logging
// its failures as name (not those a cancelled ctx causes). final, when
// set, runs once more after ctx is done, on a context of its own bounded
// to 10s: work that must not be lost at shutdown (flushes, an anchor).
func (r *Registry) every(ctx context.Context, interval time.Duration, name string, task func(ctx context.Context, now time.Time) error, final func(ctx context.Context) error) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			if final != nil {
				fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
				if err := final(fctx); err != nil {
					r.logger.WarnContext(fctx, name+" at shutdown", "err", err)
				}
				cancel()
			}
			return
		case now := <-t.C:
			err := task(ctx, now)
			if ctx.Err() != nil {
				continue // stopped, not failed
			}
			r.metrics.task(name, err)
			if err != nil {
				r.logger.ErrorContext(ctx, name, "err", err)
			}
		}
	}
}
