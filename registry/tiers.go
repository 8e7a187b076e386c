package registry

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/artifact-store/artifact-store/blobstore"
	"github.com/artifact-store/artifact-store/digest"
	"github.com/artifact-store/artifact-store/eventlog"
)

// Retrieval tiering. Blobs land in the primary store ("hot"); with a cold
// store configured, a policy moves them there and back. A move is:
//
//  1. copy the bytes into the destination (streamed, hashed on the way);
//  2. re-read them from the destination and check both digests and size;
//  3. append blob.tiered: from now on reads start at the destination;
//  4. after a grace period, remove the source copy.
//
// At every point at least one verified copy exists, and reads try the
// recorded tier first and the other second, so a crash anywhere leaves
// every blob readable: before 3 the view still names the source, after 3
// the destination holds verified bytes, and a source copy left by a crash
// before 4 is removed by the next pass. The grace period lets reads that
// opened the source before 3 finish.

// TierPolicy says which hot blobs go cold.
type TierPolicy struct {
	UnreadFor  time.Duration // blobs not read for this long (0: never by age)
	LargerThan int64         // blobs larger than this many bytes (0: never by size)
	Promote    bool          // a read of a cold blob moves it back hot
	Grace      time.Duration // how long a moved blob's source copy is kept (default 1m)
}

// tiering is the registry's tiering state.
type tiering struct {
	moveMu    sync.Mutex // one move at a time in this process
	flushMu   sync.Mutex // one flush of reads at a time (FlushReads)
	mu        sync.Mutex
	reads     map[string]time.Time // not yet recorded in blob_reads
	promoting map[string]bool
	policy    TierPolicy // guarded by mu: SetTiering changes it while serving
}

// SetTiering makes p the policy of the passes and reads from now on (a
// configuration reload); a pass under way finishes with the one it began
// with.
func (r *Registry) SetTiering(p TierPolicy) {
	r.tiers.mu.Lock()
	r.tiers.policy = p
	r.tiers.mu.Unlock()
}

func (r *Registry) tierPolicy() TierPolicy {
	r.tiers.mu.Lock()
	defer r.tiers.mu.Unlock()
	return r.tiers.policy
}

func (r *Registry) store(tier string) *blobstore.Store {
	if tier == eventlog.TierCold && r.opts.Cold != nil {
		return r.opts.Cold
	}
	return r.blobs
}

// openBlob opens a blob wherever it is: its recorded tier first, then the
// other (a move in progress or interrupted). It notes the read for the
// tiering policy and, if asked, promotes a cold blob.
func (r *Registry) openBlob(ctx context.Context, b eventlog.Blob) (blobstore.Blob, error) {
	f, err := r.openAnywhere(ctx, b)
	if err == nil {
		r.noteRead(b) // for the tiering policy and the collector's grace
	}
	return f, err
}

// openAnywhere opens a blob from its recorded tier, else the other. A copy
// whose size is not the recorded one is refused (damage.go); the other
// tier's copy, if whole, is served instead. Content the log keeps (tier
// inline) is read from there; a blob in neither store is looked for there
// too, since a caller that knows no tier (readStored) says hot.
func (r *Registry) openAnywhere(ctx context.Context, b eventlog.Blob) (blobstore.Blob, error) {
	if b.Tier == eventlog.TierInline {
		f, err := r.openContent(ctx, b)
		if !errors.Is(err, blobstore.ErrNotFound) {
			return f, err
		}
		b.Tier = eventlog.TierHot // not in the log after all: look in the stores
	}
	f, err := r.openStored(ctx, b)
	if errors.Is(err, blobstore.ErrNotFound) {
		if f2, err2 := r.openContent(ctx, b); err2 == nil {
			return f2, nil
		}
	}
	return f, err
}

// openStored opens a blob from the stores: its recorded tier, else the
// other.
func (r *Registry) openStored(ctx context.Context, b eventlog.Blob) (blobstore.Blob, error) {
	first, second := r.store(b.Tier), r.blobs
	if first == r.blobs {
		second = r.opts.Cold
	}
	f, err := r.openChecked(ctx, first, b)
	if (errors.Is(err, blobstore.ErrNotFound) || isDamaged(err)) && second != nil {
		if f2, err2 := r.openChecked(ctx, second, b); !errors.Is(err2, blobstore.ErrNotFound) || !isDamaged(err) {
			f, err = f2, err2
		}
	}
	if errors.Is(err, blobstore.ErrNotFound) {
		if qerr := r.quarantinedIn(ctx, b.SHA256, first, second); qerr != nil {
			return nil, qerr
		}
	}
	return f, err
}

func (r *Registry) noteRead(b eventlog.Blob) {
	r.tiers.mu.Lock()
	defer r.tiers.mu.Unlock()
	if r.tiers.reads == nil {
		r.tiers.reads = map[string]time.Time{}
	}
	if r.tiers.promoting == nil {
		r.tiers.promoting = map[string]bool{}
	}
	r.tiers.reads[b.SHA256] = time.Now()
	if b.Tier == eventlog.TierCold && r.tiers.policy.Promote && !r.tiers.promoting[b.SHA256] {
		r.tiers.promoting[b.SHA256] = true
		go func() {
			ctx := context.Background()
			if err := r.MoveBlob(ctx, b.SHA256, eventlog.TierHot); err != nil {
				r.logger.WarnContext(ctx, "promote blob", "blob", b.SHA256, "err", err)
			}
			r.tiers.mu.Lock()
			delete(r.tiers.promoting, b.SHA256)
			r.tiers.mu.Unlock()
		}()
	}
}

// FlushReads records the reads noted since the last flush. When it
// returns nil, every read noted before it was called is in blob_reads,
// which the collector's grace relies on: so it waits for a flush already
// under way, whose reads are no longer in the map, and a flush that fails
// puts its reads back for the next.
func (r *Registry) FlushReads(ctx context.Context) error {
	r.tiers.flushMu.Lock()
	defer r.tiers.flushMu.Unlock()
	r.tiers.mu.Lock()
	reads := r.tiers.reads
	r.tiers.reads = map[string]time.Time{}
	r.tiers.mu.Unlock()
	err := r.log.RecordReads(ctx, reads)
	if err != nil {
		r.tiers.mu.Lock()
		for sha, t := range reads {
			if t.After(r.tiers.reads[sha]) {
				r.tiers.reads[sha] = t
			}
		}
		r.tiers.mu.Unlock()
	}
	return err
}

// RunReadFlush records the reads noted (FlushReads) every interval until
// ctx is done, and once more then.
func (r *Registry) RunReadFlush(ctx context.Context, interval time.Duration) {
	flush := func(ctx context.Context, _ time.Time) error { return r.FlushReads(ctx) }
	r.every(ctx, interval, "record blob reads", flush, func(ctx context.Context) error { return flush(ctx, time.Time{}) })
}

// MoveBlob moves a blob to tier ("hot" or "cold") by the protocol above,
// except the source removal, which waits for the grace period (SweepMoved).
func (r *Registry) MoveBlob(ctx context.Context, sha256, tier string) error {
	ctx = systemActor(ctx, "tiering")
	if r.opts.Cold == nil {
		return errors.New("tiering: no cold store configured")
	}
	if tier != eventlog.TierHot && tier != eventlog.TierCold {
		return fmt.Errorf("tiering: unknown tier %q", tier)
	}
	// Lock under the sha256 key, whichever digest was given.
	first, err := r.log.Blob(ctx, sha256)
	if err != nil {
		return err
	}
	sha256 = first.SHA256
	// One mover per blob, in this process and across replicas (each runs
	// the policy), so a blob is copied and recorded once.
	r.tiers.moveMu.Lock()
	defer r.tiers.moveMu.Unlock()
	unlock, err := r.log.LockBlob(ctx, sha256)
	if err != nil {
		return err
	}
	defer unlock()
	b, err := r.log.Blob(ctx, sha256) // again, under the locks
	if err != nil {
		return err
	}
	if b.Tier == tier {
		return nil
	}
	if b.Tier == eventlog.TierInline {
		return fmt.Errorf("tiering: blob %s is kept in the event log (it is small), not in a store: it has no tier to move to", sha256)
	}
	key := digest.Digest(b.SHA256)
	dst := r.store(tier)
	if _, err := dst.Stat(ctx, key); err != nil {
		f, err := r.openAnywhere(ctx, b) // not a client's read: the policy must not see it
		if err != nil {
			return fmt.Errorf("tiering: read %s: %w", sha256, err)
		}
		_, err = dst.Ingest(ctx, f, key)
		f.Close()
		if err != nil {
			return fmt.Errorf("tiering: copy %s to %s: %w", sha256, tier, err)
		}
	}
	// Verify at the destination, by reading it back, before saying so.
	got, err := dst.Rehash(ctx, key)
	if err != nil {
		return fmt.Errorf("tiering: re-read %s in %s: %w", sha256, tier, err)
	}
	if got.SHA256 != key || got.BLAKE3.String() != b.BLAKE3 || got.Size != b.Size {
		dst.Delete(context.WithoutCancel(ctx), key)
		return fmt.Errorf("tiering: %s reads back from %s as %s %s (%d bytes); left where it was", sha256, tier, got.SHA256, got.BLAKE3, got.Size)
	}
	if _, err := r.log.Append(ctx, eventlog.New(eventlog.TypeBlobTiered, "", eventlog.BlobTiered{SHA256: sha256, Tier: tier})); err != nil {
		return err
	}
	r.metrics.moved(tier)
	return nil // the source copy goes in SweepMoved, after the grace period
}

// SweepMoved removes the source copies of blobs moved more than the grace
// period ago (including copies a crash left behind).
func (r *Registry) SweepMoved(ctx context.Context, now time.Time) (int, error) {
	if r.opts.Cold == nil {
		return 0, nil
	}
	grace := r.tierPolicy().Grace
	if grace <= 0 {
		grace = time.Minute
	}
	moved, err := r.log.MovedBlobs(ctx, now.Add(-grace), 10_000)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, c := range moved {
		removed, err := r.sweepOne(ctx, c.SHA256)
		if err != nil {
			r.logger.WarnContext(ctx, "tiering: sweep", "blob", c.SHA256, "err", err)
			continue
		}
		if removed {
			n++
		}
	}
	// Staging a crashed copy left in the cold store.
	if ups, err := r.opts.Cold.ListUploads(ctx); err == nil {
		for _, u := range ups {
			if u.ModTime.Before(now.Add(-time.Hour)) {
				r.opts.Cold.AbortUpload(ctx, u.ID)
			}
		}
	}
	return n, nil
}

// sweepOne removes the copy of a moved blob in the tier it left, under the
// same locks as moves, and only while the recorded tier holds the bytes.
func (r *Registry) sweepOne(ctx context.Context, sha256 string) (bool, error) {
	r.tiers.moveMu.Lock()
	defer r.tiers.moveMu.Unlock()
	unlock, err := r.log.LockBlob(ctx, sha256)
	if err != nil {
		return false, err
	}
	defer unlock()
	b, err := r.log.Blob(ctx, sha256) // the tier now, not when listed
	if err != nil {
		return false, err
	}
	if b.Tier == eventlog.TierInline {
		// Committed again with its content since it moved: the log holds
		// the bytes, and the stored copies go when the blob is collected.
		return false, r.log.MarkSwept(ctx, b.SHA256, b.TierSeq)
	}
	other := r.blobs
	if b.Tier == eventlog.TierHot {
		other = r.opts.Cold
	}
	key := digest.Digest(b.SHA256)
	if _, err := r.store(b.Tier).Stat(ctx, key); err != nil {
		return false, nil // keep the only copy; look again next pass
	}
	removed := false
	if _, err := other.Stat(ctx, key); err == nil {
		if err := other.Delete(ctx, key); err != nil {
			return false, err
		}
		removed = true
	}
	return removed, r.log.MarkSwept(ctx, b.SHA256, b.TierSeq)
}

// TierPass applies the policy once: hot blobs it selects go cold, and
// source copies past their grace period are removed. It returns how many
// blobs moved.
func (r *Registry) TierPass(ctx context.Context, now time.Time) (int, error) {
	if r.opts.Cold == nil {
		return 0, errors.New("tiering: no cold store configured")
	}
	if err := r.FlushReads(ctx); err != nil {
		return 0, err
	}
	p := r.tierPolicy()
	var before time.Time
	if p.UnreadFor > 0 {
		before = now.Add(-p.UnreadFor)
	}
	larger := int64(-1)
	if p.LargerThan > 0 {
		larger = p.LargerThan
	}
	moved := 0
	if p.UnreadFor > 0 || p.LargerThan > 0 {
		cands, err := r.log.TierCandidates(ctx, eventlog.TierHot, before, larger, 1000)
		if err != nil {
			return 0, err
		}
		for _, c := range cands {
			// One blob that cannot move (unreadable, store trouble) must
			// not stop the others, nor the sweep.
			if err := r.MoveBlob(ctx, c.SHA256, eventlog.TierCold); err != nil {
				r.logger.WarnContext(ctx, "tiering: move", "blob", c.SHA256, "err", err)
				continue
			}
			moved++
		}
	}
	_, err := r.SweepMoved(ctx, now)
	return moved, err
}

// RunTiering applies the policy every interval until ctx is done.
func (r *Registry) RunTiering(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = time.Minute
	}
	r.every(ctx, interval, "tiering pass", func(ctx context.Context, now time.Time) error {
		n, err := r.TierPass(ctx, now)
		if n > 0 {
			r.logger.InfoContext(ctx, "tiering pass", "moved_cold", n)
		}
		return err
	}, r.FlushReads)
}
