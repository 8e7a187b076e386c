package registry

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/artifact-store/artifact-store/blobstore"
	"github.com/artifact-store/artifact-store/eventlog"
)

// Anchors. The hash chain shows an event altered, inserted or removed in
// the middle of the log, but not events removed from its tail, nor a whole
// database restored from an older backup: the shorter log is still a valid
// chain. An anchor is the log's last position (sequence number and chain
// hash) recorded outside the database — in the blob store, another failure
// domain, and in every replica's log output — so that verify can tell when
// the log no longer contains a head it once had. See ADR 0010 for what
// this proves and what it cannot.
//
// Invariant: the stored anchor names an event the log contained when it was
// written, and is only replaced by a later position of the same chain. A
// replica that finds the log no longer contains the stored anchor keeps it
// (the evidence) and says so in its log, rather than anchoring the rolled
// back log.

// anchorName is where the anchor is kept beside the blobs.
const anchorName = "anchors/head"

// maxAnchorSize bounds what reading an anchor may hold in memory.
const maxAnchorSize = 4 << 10

// Anchor is a position of the event log recorded outside the database.
type Anchor struct {
	Seq  int64     `json:"seq"`
	Hash string    `json:"hash"` // hex chain hash of event Seq
	Time time.Time `json:"time"` // when it was written
}

// anchors is the registry's anchoring state.
type anchors struct {
	mu   sync.Mutex
	last Anchor // the last anchor this process wrote or confirmed
	ok   bool
}

// Anchor returns the last anchor this process wrote or confirmed, for the
// event stream and status pages; ok is false before the first.
func (r *Registry) Anchor() (a Anchor, ok bool) {
	r.anchors.mu.Lock()
	defer r.anchors.mu.Unlock()
	return r.anchors.last, r.anchors.ok
}

// errAnchorLost: the log no longer contains the stored anchor.
var errAnchorLost = errors.New("event log no longer contains its anchored head")

// readAnchor returns the anchor stored in st (ok false when there is none).
func readAnchor(ctx context.Context, st *blobstore.Store) (Anchor, bool, error) {
	data, err := st.ReadAside(ctx, anchorName, maxAnchorSize)
	if errors.Is(err, blobstore.ErrNotFound) {
		return Anchor{}, false, nil
	}
	if err != nil {
		return Anchor{}, false, err
	}
	var a Anchor
	if err := json.Unmarshal(data, &a); err != nil {
		return Anchor{}, false, fmt.Errorf("anchor %s: %w", anchorName, err)
	}
	return a, true, nil
}

// checkAnchor returns nil when the log contains the anchored position, and
// an errAnchorLost that says how it does not otherwise.
func checkAnchor(ctx context.Context, log *eventlog.Log, a Anchor) error {
	h, err := log.HashAt(ctx, a.Seq)
	if errors.Is(err, eventlog.ErrNotFound) {
		last, lerr := log.LastPosition(ctx)
		if lerr != nil {
			return lerr
		}
		return fmt.Errorf("%w: the anchor written %s names event %d (hash %s), but the log ends at event %d: events were removed from its tail, or the database was restored from an older backup",
			errAnchorLost, a.Time.Format(time.RFC3339), a.Seq, a.Hash, last.Seq)
	}
	if err != nil {
		return err
	}
	if hex.EncodeToString(h) != a.Hash {
		return fmt.Errorf("%w: the anchor written %s names event %d with hash %s, but the log's event %d hashes to %x: the log was rewritten at or before that event",
			errAnchorLost, a.Time.Format(time.RFC3339), a.Seq, a.Hash, a.Seq, h)
	}
	return nil
}

// WriteAnchor records the log's last position in the blob store, unless it
// is already the stored anchor, and logs it. It refuses (errAnchorLost)
// when the log no longer contains the stored anchor, leaving it in place.
func (r *Registry) WriteAnchor(ctx context.Context) (Anchor, error) {
	pos, err := r.log.LastPosition(ctx)
	if err != nil || pos.Seq == 0 {
		return Anchor{}, err
	}
	prev, found, err := readAnchor(ctx, r.blobs)
	if err != nil {
		return Anchor{}, err
	}
	if found {
		if err := checkAnchor(ctx, r.log, prev); err != nil {
			return prev, err
		}
	}
	a := Anchor{Seq: pos.Seq, Hash: hex.EncodeToString(pos.Hash), Time: time.Now().UTC()}
	switch {
	case found && prev.Seq >= a.Seq:
		// Another replica anchored this position, or a later one since
		// this process read the head: never move the anchor back.
		a = prev
	default:
		data, _ := json.Marshal(a)
		if err := r.blobs.PutAside(ctx, anchorName, data); err != nil {
			return Anchor{}, fmt.Errorf("write anchor: %w", err)
		}
	}
	r.anchors.mu.Lock()
	changed := !r.anchors.ok || r.anchors.last.Seq != a.Seq || r.anchors.last.Hash != a.Hash
	r.anchors.last, r.anchors.ok = a, true
	r.anchors.mu.Unlock()
	if changed {
		// Each replica's own output holds the anchors it saw: a third
		// copy, outside both the database and the blob store.
		r.logger.InfoContext(ctx, "anchored event log head", "seq", a.Seq, "hash", a.Hash)
	}
	return a, nil
}

// RunAnchors writes an anchor now, every interval while the log grows, and
// once more when ctx is done (at shutdown).
func (r *Registry) RunAnchors(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = 30 * time.Second
	}
	write := func(ctx context.Context) error {
		_, err := r.WriteAnchor(ctx)
		if errors.Is(err, errAnchorLost) {
			r.logger.ErrorContext(ctx, "event log rolled back: keeping the old anchor; run artifactstore verify", "err", err)
			return nil
		}
		return err
	}
	if err := write(ctx); err != nil && ctx.Err() == nil {
		r.logger.WarnContext(ctx, "anchor event log head", "err", err)
	}
	r.every(ctx, interval, "anchor event log head", func(ctx context.Context, _ time.Time) error { return write(ctx) }, write)
}
