package registry

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/artifact-store/artifact-store/blobstore"
	"github.com/artifact-store/artifact-store/digest"
	"github.com/artifact-store/artifact-store/eventlog"
	"github.com/artifact-store/artifact-store/manifests"
)

// Garbage collection, online, ordered by the event log (eventlog/gc.go
// states the invariants that make it safe beside pushes). One collection:
//
//  1. finish what an interrupted collection condemned but did not sweep;
//  2. expire idle upload sessions and their staged bytes (the janitor);
//  3. mark: read the head P; every link a repository's manifests or
//     versions do not need, linked and read longer ago than the grace,
//     is unlinked (an append each batch, refused by the log if a manifest
//     has come to need it meanwhile);
//  4. every blob committed at or before P that nothing uses, and every
//     stored key no event names (crash orphans, older than the grace), is
//     condemned in a gc.condemned event, whose append re-checks that
//     nothing uses it;
//  5. their bytes are deleted from every store, then gc.swept records it
//     with the bytes freed.
//
// A kill at any point leaves the log consistent: unlinks and condemnations
// are appends, and condemned blobs left unswept are swept by the next run.

// GCOptions configure one collection.
type GCOptions struct {
	// Grace spares links made or read, and unrecorded bytes written, less
	// than this long ago: a client pushes layers before the manifest that
	// needs them, and within the grace its push always completes. Zero
	// spares nothing (tests, or an operator who knows no push is in flight).
	Grace time.Duration
	// DryRun reports what a collection would remove and changes nothing.
	DryRun bool
}

// GCReport says what a collection removed (or, dry, would remove).
type GCReport struct {
	Run            string    `json:"run"`
	Mark           int64     `json:"mark"` // the log position P it marked at
	Unlinked       []GCLink  `json:"unlinked"`
	Swept          []GCBlob  `json:"swept"`
	BytesFreed     int64     `json:"bytesFreed"` // measured on delete; dry: the recorded sizes
	UploadsExpired int       `json:"uploadsExpired"`
	Spared         int       `json:"spared"` // candidates found in use again when condemned
	DryRun         bool      `json:"dryRun,omitempty"`
	Finished       time.Time `json:"finished"`
}

// GCLink is a blob link a collection removed from a repository.
type GCLink struct {
	Repo   string `json:"repository"`
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
}

// GCBlob is a blob whose bytes a collection deleted.
type GCBlob struct {
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
	// Unrecorded marks bytes no event named (a crash between storing
	// bytes and recording them), found by walking the stores.
	Unrecorded bool `json:"unrecorded,omitempty"`
	// InLog marks small content kept in the log (ADR 0016): the
	// collection deleted its row from the contents view, and any stored
	// copy. The event that brought the bytes stays, as every event does.
	InLog bool `json:"inLog,omitempty"`
}

// gcBatch bounds the blobs one gc.condemned or gc.swept names, and the
// links one append removes.
const gcBatch = 500

// CollectGarbage runs one collection. Collections are serialised across
// every process sharing the log.
func (r *Registry) CollectGarbage(ctx context.Context, opts GCOptions) (GCReport, error) {
	rep, err := r.collectGarbage(ctx, opts)
	r.metrics.collected(rep) // what an interrupted run did counts too
	return rep, err
}

func (r *Registry) collectGarbage(ctx context.Context, opts GCOptions) (GCReport, error) {
	ctx = systemActor(ctx, "gc")
	rep := GCReport{Run: newRunID(), DryRun: opts.DryRun}
	r.gcMu.Lock()
	defer r.gcMu.Unlock()
	unlock, err := r.log.LockCollector(ctx)
	if err != nil {
		return rep, err
	}
	defer unlock()
	if opts.DryRun {
		left, err := r.log.Condemned(ctx)
		if err != nil {
			return rep, err
		}
		for _, k := range left {
			rep.Swept = append(rep.Swept, GCBlob{Digest: k}) // an interrupted run's, to finish
		}
	} else {
		if err := r.finishCondemned(ctx, &rep); err != nil {
			return rep, err
		}
		if err := r.purgeTrash(ctx, time.Now()); err != nil {
			return rep, err
		}
		if rep.UploadsExpired, err = r.ExpireUploads(ctx, time.Now()); err != nil {
			return rep, err
		}
	}
	// The grace is measured from before the reads noted so far are
	// flushed. A read this collection does not see was noted after that;
	// if it found the link within its grace, the link was made or read
	// after cutoff and is spared anyway. A read that tells a client a blob
	// exists once its link is older than half the servers' grace renews
	// the link with an append (relyOn), which the unlinks below, carrying
	// the mark, yield to: that holds across replicas and for reads this
	// process never flushed, as long as collections run with a grace no
	// shorter than the servers' (--gc-grace on both).
	cutoff := time.Now().Add(-opts.Grace)
	if err := r.FlushReads(ctx); err != nil {
		return rep, err
	}
	if err := r.gcStage("reads flushed"); err != nil {
		return rep, err
	}
	if rep.Mark, err = r.log.Head(ctx); err != nil {
		return rep, err
	}
	links, err := r.unusedLinks(ctx, cutoff)
	if err != nil {
		return rep, err
	}
	rep.Unlinked = links
	if !opts.DryRun {
		if rep.Unlinked, err = r.unlink(ctx, links, rep.Mark); err != nil {
			return rep, err
		}
		if err := r.gcStage("unlinked"); err != nil {
			return rep, err
		}
	}
	// Blobs are judged after the unlinks, at a mark and a cutoff of their
	// own: a blob whose last link this run removed is unused from then,
	// and waits out the grace like any other (with none, it goes now).
	blobMark, blobCutoff := rep.Mark, time.Now().Add(-opts.Grace)
	if !opts.DryRun {
		if blobMark, err = r.log.Head(ctx); err != nil {
			return rep, err
		}
	}
	cands, err := r.unusedBlobs(ctx, blobMark, blobCutoff, links, opts.DryRun && opts.Grace == 0)
	if err != nil {
		return rep, err
	}
	rep.Mark = blobMark
	orphans, err := r.unrecordedBytes(ctx, cutoff)
	if err != nil {
		return rep, err
	}
	cands = append(cands, orphans...)
	if opts.DryRun {
		rep.Swept = append(rep.Swept, cands...)
		for _, c := range cands {
			rep.BytesFreed += c.Size
		}
		rep.Finished = time.Now().UTC()
		return rep, nil
	}
	for len(cands) > 0 {
		n := min(len(cands), gcBatch)
		if err := r.condemnAndSweep(ctx, &rep, cands[:n]); err != nil {
			return rep, err
		}
		cands = cands[n:]
	}
	rep.Finished = time.Now().UTC()
	return rep, nil
}

// purgeTrash closes the undo window of retention deletions older than it:
// what they kept becomes collectable.
func (r *Registry) purgeTrash(ctx context.Context, now time.Time) error {
	through, err := r.log.LastEventBefore(ctx, now.Add(-r.opts.RetentionUndo))
	if err != nil || through == 0 {
		return err
	}
	expired := 0
	if err := r.log.Trash(ctx, "", func(it eventlog.TrashItem) error {
		if it.Seq <= through {
			expired++
		}
		return nil
	}); err != nil {
		return err
	}
	if expired == 0 {
		return nil
	}
	_, err = r.log.Append(ctx, eventlog.New(eventlog.TypeTrashPurged, "", eventlog.TrashPurged{Through: through}))
	return err
}

// unusedLinks lists the links to remove: needed by nothing in their
// repository, and neither linked nor read since cutoff.
func (r *Registry) unusedLinks(ctx context.Context, cutoff time.Time) ([]GCLink, error) {
	needed, err := r.parsedReferences(ctx)
	if err != nil {
		return nil, err
	}
	var out []GCLink
	err = r.log.UnusedLinks(ctx, func(u eventlog.UnusedLink) error {
		if needed[repoBlob{u.Repo, u.SHA256}] || u.Linked.After(cutoff) || u.LastRead.After(cutoff) {
			return nil
		}
		out = append(out, GCLink{Repo: u.Repo, Digest: u.SHA256, Size: u.Size})
		return nil
	})
	return out, err
}

type repoBlob struct{ repo, sha256 string }

// parsedReferences reads the manifests whose puts may not have recorded
// all they reference (a sparse push, a non-distributable layer not held,
// a put recorded before puts said so: the log's partial flag, whatever
// the server's settings now) and returns the blobs they name that their
// repositories link. A manifest that cannot be read or parsed makes its
// whole repository's links needed: the collector never guesses.
func (r *Registry) parsedReferences(ctx context.Context) (map[repoBlob]bool, error) {
	var ms []eventlog.PartialManifest
	err := r.log.PartialManifests(ctx, func(m eventlog.PartialManifest) error { ms = append(ms, m); return nil })
	if err != nil {
		return nil, err
	}
	// Partial manifests retention deleted, still restorable: a restore
	// must find what they name, not only what trash_blobs kept.
	err = r.log.Trash(ctx, "", func(it eventlog.TrashItem) error {
		if it.Kind != eventlog.TrashManifest {
			return nil
		}
		e, err := r.log.Event(ctx, it.PutSeq)
		if err != nil {
			return err
		}
		var p eventlog.ManifestPut
		if e.Type != eventlog.TypeManifestPut || e.Decode(&p) != nil || p.Complete {
			return nil
		}
		ms = append(ms, eventlog.PartialManifest{Repo: it.Repo, Digest: it.Name, SHA256: p.SHA256, MediaType: p.MediaType, Size: p.Size})
		return nil
	})
	if err != nil {
		return nil, err
	}
	needed := map[repoBlob]bool{}
	for _, m := range ms {
		if manifests.IsIndex(m.MediaType) {
			continue // children are manifests, each marked by its own row
		}
		names, err := r.manifestBlobNames(ctx, m)
		if err != nil {
			r.logger.WarnContext(ctx, "gc: sparing every link of a repository with an unreadable manifest", "repo", m.Repo, "manifest", m.Digest, "err", err)
			if err := r.log.LinksOf(ctx, m.Repo, func(sha string) { needed[repoBlob{m.Repo, sha}] = true }); err != nil {
				return nil, err
			}
			continue
		}
		linked, err := r.log.LinkedBlobs(ctx, m.Repo, names)
		if err != nil {
			return nil, err
		}
		for _, b := range linked {
			needed[repoBlob{m.Repo, b.SHA256}] = true
		}
	}
	return needed, nil
}

// manifestBlobNames returns the digests of an image manifest's config and
// layers, read from its stored bytes.
func (r *Registry) manifestBlobNames(ctx context.Context, m eventlog.PartialManifest) ([]string, error) {
	body, err := r.readStored(ctx, m.SHA256, m.Size, false, nil) // not a client's read
	if err != nil {
		return nil, err
	}
	parsed, err := manifests.Parse(m.MediaType, body)
	if err != nil {
		return nil, err
	}
	if parsed.Image == nil {
		return nil, nil
	}
	names := []string{parsed.Image.Config.Digest.String()}
	for _, l := range parsed.Image.Layers {
		names = append(names, l.Digest.String())
	}
	return names, nil
}

// unlink removes links in batches, each unlink carrying the mark; a batch
// the log refuses (a manifest came to need one of its blobs, or a push or
// read linked one again after the mark) is retried one link at a time. It
// returns the links removed.
func (r *Registry) unlink(ctx context.Context, links []GCLink, mark int64) ([]GCLink, error) {
	var done []GCLink
	event := func(l GCLink) eventlog.Event {
		return eventlog.New(eventlog.TypeBlobUnlinked, l.Repo, eventlog.BlobUnlinked{SHA256: l.Digest, Mark: mark})
	}
	for len(links) > 0 {
		n := min(len(links), gcBatch)
		batch := links[:n]
		links = links[n:]
		evs := make([]eventlog.Event, len(batch))
		for i, l := range batch {
			evs[i] = event(l)
		}
		_, err := r.log.Append(ctx, evs...)
		if err == nil {
			done = append(done, batch...)
			continue
		}
		if !errors.Is(err, eventlog.ErrConflict) {
			return done, err
		}
		for _, l := range batch {
			if _, err := r.log.Append(ctx, event(l)); errors.Is(err, eventlog.ErrConflict) {
				continue // needed again: keep it
			} else if err != nil {
				return done, err
			}
			done = append(done, l)
		}
	}
	return done, nil
}

// unusedBlobs lists the blobs nothing uses now, untouched since mark and
// since cutoff (the grace). A dry run with no grace (dry) has unlinked
// nothing, so it adds the blobs its links would leave unused.
func (r *Registry) unusedBlobs(ctx context.Context, mark int64, cutoff time.Time, unlinked []GCLink, dry bool) ([]GCBlob, error) {
	var out []GCBlob
	seen := map[string]bool{}
	err := r.log.UnusedBlobs(ctx, mark, func(b eventlog.Blob) error {
		seen[b.SHA256] = true // listed, or not yet past its grace
		if !b.Used.After(cutoff) {
			out = append(out, GCBlob{Digest: b.SHA256, Size: b.Size, InLog: b.Tier == eventlog.TierInline})
		}
		return nil
	})
	if err != nil || !dry || len(unlinked) == 0 {
		return out, err
	}
	removed := map[string]int{}
	sizes := map[string]int64{}
	for _, l := range unlinked {
		removed[l.Digest]++
		sizes[l.Digest] = l.Size
	}
	keys := make([]string, 0, len(removed))
	for k := range removed {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	counts, err := r.log.LinkCounts(ctx, keys)
	if err != nil {
		return nil, err
	}
	var whole []string
	for _, k := range keys {
		if counts[k] == removed[k] && !seen[k] {
			whole = append(whole, k)
		}
	}
	free, err := r.log.UnusedButLinked(ctx, mark, whole)
	if err != nil {
		return nil, err
	}
	for _, k := range free {
		// Described as the run describes it, from its row: where its
		// bytes are (the log or a store) is what a reader of the plan
		// weighs.
		b, err := r.log.Blob(ctx, k)
		if errors.Is(err, eventlog.ErrNotFound) {
			out = append(out, GCBlob{Digest: k, Size: sizes[k]})
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, GCBlob{Digest: k, Size: b.Size, InLog: b.Tier == eventlog.TierInline})
	}
	return out, nil
}

// unrecordedBytes walks the stores for keys no event names, written before
// cutoff.
func (r *Registry) unrecordedBytes(ctx context.Context, cutoff time.Time) ([]GCBlob, error) {
	found := map[string]*GCBlob{}
	var order []string
	for _, st := range r.stores() {
		var batch []blobstore.BlobInfo
		flush := func() error {
			keys := make([]string, len(batch))
			for i, b := range batch {
				keys[i] = b.Key.String()
			}
			unknown, err := r.log.Unrecorded(ctx, keys)
			if err != nil {
				return err
			}
			isUnknown := map[string]bool{}
			for _, k := range unknown {
				isUnknown[k] = true
			}
			for _, b := range batch {
				k := b.Key.String()
				if !isUnknown[k] || b.ModTime.After(cutoff) {
					continue
				}
				if g, ok := found[k]; ok {
					g.Size += b.Size
					continue
				}
				found[k] = &GCBlob{Digest: k, Size: b.Size, Unrecorded: true}
				order = append(order, k)
			}
			batch = batch[:0]
			return nil
		}
		err := st.Walk(ctx, func(b blobstore.BlobInfo) error {
			batch = append(batch, b)
			if len(batch) == gcBatch {
				return flush()
			}
			return nil
		})
		if err == nil && len(batch) > 0 {
			err = flush()
		}
		if err != nil {
			return nil, err
		}
	}
	out := make([]GCBlob, len(order))
	for i, k := range order {
		out[i] = *found[k]
	}
	return out, nil
}

// condemnAndSweep condemns the blobs of a batch that are still unused,
// deletes their bytes and records the sweep.
func (r *Registry) condemnAndSweep(ctx context.Context, rep *GCReport, batch []GCBlob) error {
	keys := make([]string, len(batch))
	byKey := map[string]GCBlob{}
	for i, b := range batch {
		keys[i] = b.Digest
		byKey[b.Digest] = b
	}
	for attempt := 0; ; attempt++ {
		still, err := r.log.StillUnused(ctx, rep.Mark, keys)
		if err != nil {
			return err
		}
		rep.Spared += len(keys) - len(still)
		keys = still
		if len(keys) == 0 {
			return nil
		}
		_, err = r.log.Append(ctx, eventlog.New(eventlog.TypeGCCondemned, "", eventlog.GCCondemned{Run: rep.Run, Mark: rep.Mark, Blobs: keys}))
		if err == nil {
			break
		}
		// A push linked one of them between the check and the append:
		// check again; after a few rounds leave the batch to the next run.
		if !errors.Is(err, eventlog.ErrConflict) {
			return err
		}
		if attempt == 2 {
			r.logger.InfoContext(ctx, "gc: blobs in use again as they were condemned; left for the next collection", "blobs", len(keys), "err", err)
			rep.Spared += len(keys)
			return nil
		}
	}
	if err := r.gcStage("condemned"); err != nil {
		return err
	}
	freed, err := r.deleteBytes(ctx, keys)
	if err != nil {
		return err // condemned stay condemned; the next run sweeps them
	}
	for _, k := range keys {
		if b := byKey[k]; b.InLog {
			freed += b.Size // its contents row went with the gc.condemned
		}
	}
	if err := r.gcStage("deleted"); err != nil {
		return err
	}
	if _, err := r.log.Append(ctx, eventlog.New(eventlog.TypeGCSwept, "", eventlog.GCSwept{Run: rep.Run, Blobs: keys, Bytes: freed})); err != nil {
		return err
	}
	for _, k := range keys {
		rep.Swept = append(rep.Swept, byKey[k])
	}
	rep.BytesFreed += freed
	return nil
}

// FinishCollection sweeps what an interrupted collection condemned, so
// that pushes of those blobs, refused meanwhile, succeed again. A server
// runs it at start.
func (r *Registry) FinishCollection(ctx context.Context) error {
	ctx = systemActor(ctx, "gc")
	r.gcMu.Lock()
	defer r.gcMu.Unlock()
	unlock, err := r.log.LockCollector(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	return r.finishCondemned(ctx, &GCReport{Run: newRunID()})
}

// finishCondemned sweeps blobs an interrupted collection condemned.
func (r *Registry) finishCondemned(ctx context.Context, rep *GCReport) error {
	left, err := r.log.Condemned(ctx)
	if err != nil || len(left) == 0 {
		return err
	}
	r.logger.InfoContext(ctx, "gc: finishing an interrupted collection", "blobs", len(left))
	for len(left) > 0 {
		n := min(len(left), gcBatch)
		keys := left[:n]
		left = left[n:]
		freed, err := r.deleteBytes(ctx, keys)
		if err != nil {
			return err
		}
		if _, err := r.log.Append(ctx, eventlog.New(eventlog.TypeGCSwept, "", eventlog.GCSwept{Run: rep.Run, Blobs: keys, Bytes: freed})); err != nil {
			return err
		}
		for _, k := range keys {
			rep.Swept = append(rep.Swept, GCBlob{Digest: k})
		}
		rep.BytesFreed += freed
	}
	return nil
}

// deleteBytes removes condemned blobs from every store and returns the
// bytes that freed.
func (r *Registry) deleteBytes(ctx context.Context, keys []string) (int64, error) {
	var freed int64
	for i, k := range keys {
		if i == len(keys)/2 {
			if err := r.gcStage("deleting"); err != nil {
				return freed, err
			}
		}
		key := digest.Digest(k)
		for _, st := range r.stores() {
			size, err := st.Stat(ctx, key)
			if errors.Is(err, blobstore.ErrNotFound) {
				continue
			}
			if err != nil {
				return freed, fmt.Errorf("gc: stat %s: %w", k, err)
			}
			if err := st.Delete(ctx, key); err != nil {
				return freed, fmt.Errorf("gc: delete %s: %w", k, err)
			}
			freed += size
		}
	}
	return freed, nil
}

// stores returns the hot store and, with tiering, the cold one.
func (r *Registry) stores() []*blobstore.Store {
	if r.opts.Cold != nil {
		return []*blobstore.Store{r.blobs, r.opts.Cold}
	}
	return []*blobstore.Store{r.blobs}
}

// RunGC collects garbage every interval until ctx is done.
func (r *Registry) RunGC(ctx context.Context, interval time.Duration, opts GCOptions) {
	r.every(ctx, interval, "gc", func(ctx context.Context, _ time.Time) error {
		rep, err := r.CollectGarbage(ctx, opts)
		if len(rep.Unlinked)+len(rep.Swept) > 0 {
			r.logger.InfoContext(ctx, "gc", "run", rep.Run, "mark", rep.Mark, "unlinked", len(rep.Unlinked), "swept", len(rep.Swept), "bytes_freed", rep.BytesFreed)
		}
		return err
	}, nil)
}

// gcStage lets a test stop a collection at a named stage, as a kill there
// would: everything it recorded stays, nothing after it happens.
func (r *Registry) gcStage(stage string) error {
	if r.gcCrash == nil {
		return nil
	}
	return r.gcCrash(stage)
}

func newRunID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
