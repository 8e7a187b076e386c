package registry

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/artifact-store/artifact-store/blobstore"
	"github.com/artifact-store/artifact-store/digest"
	"github.com/artifact-store/artifact-store/eventlog"
)

// VerifyReport is what Verify found.
type VerifyReport struct {
	Events  int64   // events whose chain links were checked
	ViewsAt int64   // the log position the views were compared at
	Anchor  *Anchor // the anchor checked (nil: none stored yet)
	Blobs   int     // blobs re-hashed
	Orphans int     // stored blobs no event names (GC's work, not damage)
	// Unreferenced counts blobs nothing uses and links no manifest or
	// version of their repository needs, as the views record them (not
	// damage either). A collection with no grace removes at most these:
	// it also keeps what partial manifests name (gc.go).
	Unreferenced int
	Quarantined  []string // blobs this run moved aside as damaged
	Problems     []string // damage: each a sentence naming what is wrong
}

// VerifyOptions say what Verify may use and change.
type VerifyOptions struct {
	// Cold is the cold tier's store, when tiering is configured.
	Cold *blobstore.Store
	// Scratch is an empty event log of its own into which Verify replays
	// the log to check the live views (a temporary SQLite file serves for
	// either backend: the views' schema and projection are the same).
	// Required.
	Scratch *eventlog.Log
	// Quarantine moves every blob whose bytes are found damaged aside
	// (blobstore's quarantine), so that no read serves it and a push of
	// the right bytes repairs it. Without it Verify changes nothing.
	Quarantine bool
}

// Verify checks what the API serves against what the log says:
//
//   - the event log's hash chain;
//   - the anchor in store (the log must still contain the head it names:
//     a shorter log is a valid chain, the anchor is what shows a tail
//     removed or a database restored from an older backup);
//   - the views, against views rebuilt from the log in opts.Scratch, at one
//     consistent position even beside live servers (eventlog.CheckViews);
//   - every blob the views name, re-hashed with SHA-256 and BLAKE3 in the
//     store of its recorded tier and compared with the recorded digests and
//     size.
//
// It runs beside live servers: nothing it reads must stand still.
func Verify(ctx context.Context, log *eventlog.Log, store *blobstore.Store, opts VerifyOptions) (VerifyReport, error) {
	var rep VerifyReport
	if opts.Scratch == nil {
		return rep, errors.New("verify: VerifyOptions.Scratch is required (an empty log to replay into)")
	}
	problem := func(format string, args ...any) { rep.Problems = append(rep.Problems, fmt.Sprintf(format, args...)) }
	// The anchor first: every event it names was in the log before this
	// run started, so the log must contain it whatever servers append.
	anchor, anchored, err := readAnchor(ctx, store)
	switch {
	case errors.Is(err, blobstore.ErrNoAside):
	case err != nil:
		problem("anchor: cannot read %s from the blob store: %v", anchorName, err)
	case anchored:
		rep.Anchor = &anchor
	}
	n, breaks, err := log.VerifyChain(ctx)
	if err != nil {
		return rep, fmt.Errorf("read event log: %w", err)
	}
	rep.Events = n
	for _, b := range breaks {
		problem("event log: %s%s", b.Error(), brokenEvent(ctx, log, b.Seq))
	}
	if anchored {
		if err := checkAnchor(ctx, log, anchor); errors.Is(err, errAnchorLost) {
			problem("event log: %v", err)
		} else if err != nil {
			return rep, err
		}
	}
	at, err := log.CheckViews(ctx, opts.Scratch, func(d eventlog.ViewDiff) error {
		problem("%s", d)
		return nil
	})
	rep.ViewsAt = at.Seq
	if err != nil {
		if ctx.Err() != nil {
			return rep, err
		}
		problem("views: cannot compare with the log: %v", err)
	}
	if err := rep.verifyBlobs(ctx, log, store, opts); err != nil {
		return rep, err
	}
	if err := log.UnusedBlobs(ctx, 1<<62, func(eventlog.Blob) error { rep.Unreferenced++; return nil }); err != nil {
		return rep, err
	}
	if err := log.UnusedLinks(ctx, func(eventlog.UnusedLink) error { rep.Unreferenced++; return nil }); err != nil {
		return rep, err
	}
	return rep, nil
}

// verifyBlobs re-hashes every recorded blob and counts stored blobs no
// event names.
func (rep *VerifyReport) verifyBlobs(ctx context.Context, log *eventlog.Log, store *blobstore.Store, opts VerifyOptions) error {
	cold := opts.Cold
	known := make(map[string]bool)
	damaged := make(map[string]bool) // sha256 keys whose bytes are missing or wrong
	problems := len(rep.Problems)
	err := log.Blobs(ctx, func(b eventlog.Blob) error {
		defer func() {
			if len(rep.Problems) > problems {
				damaged[b.SHA256] = true
				problems = len(rep.Problems)
			}
		}()
		known[b.SHA256] = true
		rep.Blobs++
		if b.Tier == eventlog.TierInline {
			return rep.verifyContent(ctx, log, b)
		}
		in, other := store, cold
		if b.Tier == eventlog.TierCold && cold != nil {
			in, other = cold, store
		}
		key := digest.Digest(b.SHA256)
		got, err := in.Rehash(ctx, key)
		if errors.Is(err, blobstore.ErrNotFound) && other != nil {
			// Moved (and swept) since this listing began: look where it went.
			if got, err = other.Rehash(ctx, key); err == nil {
				in = other
			}
		}
		if errors.Is(err, blobstore.ErrNotFound) {
			if _, gerr := log.Blob(ctx, b.SHA256); errors.Is(gerr, eventlog.ErrNotFound) {
				return nil // collected since this listing began
			}
		}
		var damage string
		switch {
		case errors.Is(err, blobstore.ErrNotFound):
			if q, _ := in.Quarantined(ctx, key); q {
				rep.Problems = append(rep.Problems, fmt.Sprintf("blob %s: quarantined as damaged; push the same content again to repair it", b.SHA256))
			} else {
				rep.Problems = append(rep.Problems, fmt.Sprintf("blob %s: recorded in the %s tier but missing from its store", b.SHA256, b.Tier))
			}
		case err != nil:
			return fmt.Errorf("read blob %s: %w", b.SHA256, err)
		default:
			damage = digestDamage(got, b)
			if damage == "" && b.SHA512 != "" {
				// Recorded for a client that addressed it by sha512: check that too.
				if d, err := sha512Of(ctx, in, b.SHA256); err != nil {
					return err
				} else if d != b.SHA512 {
					rep.Problems = append(rep.Problems, fmt.Sprintf("blob %s: sha512 is %s, recorded %s", b.SHA256, d, b.SHA512))
				}
			}
		}
		if damage == "" {
			return nil
		}
		if opts.Quarantine {
			moved, err := quarantineDamaged(ctx, in, b)
			if err != nil {
				return err
			}
			if !moved {
				return nil // whole on a second read: repaired meanwhile
			}
			rep.Quarantined = append(rep.Quarantined, b.SHA256)
			damage += "; moved to quarantine, push the same content again to repair it"
		}
		rep.Problems = append(rep.Problems, fmt.Sprintf("blob %s: %s", b.SHA256, damage))
		return nil
	})
	if err != nil {
		return err
	}
	mp, err := manifestProblems(ctx, log, damaged)
	if err != nil {
		return err
	}
	rep.Problems = append(rep.Problems, mp...)
	for _, st := range []*blobstore.Store{store, cold} {
		if st == nil {
			continue
		}
		if err := st.Walk(ctx, func(b blobstore.BlobInfo) error {
			if !known[b.Key.String()] {
				rep.Orphans++
			}
			return nil
		}); err != nil {
			return err
		}
	}
	return nil
}

// verifyContent re-hashes content the log keeps (tier inline). Damage
// there is a view row edited by hand: the views check reports it too, and
// replay (or a push of the same content) repairs it; there is no file to
// quarantine.
func (rep *VerifyReport) verifyContent(ctx context.Context, log *eventlog.Log, b eventlog.Blob) error {
	data, err := log.Content(ctx, b.SHA256)
	if errors.Is(err, eventlog.ErrNotFound) {
		if _, gerr := log.Blob(ctx, b.SHA256); errors.Is(gerr, eventlog.ErrNotFound) {
			return nil // collected since this listing began
		}
		rep.Problems = append(rep.Problems, fmt.Sprintf("blob %s: recorded as kept in the log, but the contents view has no row for it; replay the log to rebuild the views", b.SHA256))
		return nil
	}
	if err != nil {
		return fmt.Errorf("read content of blob %s: %w", b.SHA256, err)
	}
	got, err := blobstore.Hash(data, "")
	if err != nil {
		return err
	}
	damage := digestDamage(got, b)
	if damage == "" && b.SHA512 != "" {
		// Recorded for a client that addressed it by sha512: check that too.
		if _, err := blobstore.Hash(data, digest.Digest(b.SHA512)); errors.Is(err, blobstore.ErrDigestMismatch) {
			damage = fmt.Sprintf("its sha512 no longer matches %s", b.SHA512)
		}
	}
	if damage != "" {
		rep.Problems = append(rep.Problems, fmt.Sprintf("blob %s: the content kept in the log is damaged: %s; replay the log to rebuild the views, or push the same content again", b.SHA256, damage))
	}
	return nil
}

// digestDamage says how bytes that hash to got differ from blob b as
// recorded: size first, then SHA-256, then BLAKE3; "" when they agree.
func digestDamage(got blobstore.Digests, b eventlog.Blob) string {
	switch {
	case got.Size != b.Size:
		return fmt.Sprintf("size is %d, recorded %d (truncated or overwritten)", got.Size, b.Size)
	case got.SHA256.String() != b.SHA256:
		return fmt.Sprintf("content now hashes to %s (corrupted)", got.SHA256)
	case got.BLAKE3.String() != b.BLAKE3:
		return fmt.Sprintf("BLAKE3 is %s, recorded %s", got.BLAKE3, b.BLAKE3)
	}
	return ""
}

// quarantineDamaged moves a blob found damaged aside, after reading it once
// more: beside a live server a push may have repaired it since the first
// read, and a whole copy must stay in service.
func quarantineDamaged(ctx context.Context, in *blobstore.Store, b eventlog.Blob) (bool, error) {
	key := digest.Digest(b.SHA256)
	got, err := in.Rehash(ctx, key)
	if errors.Is(err, blobstore.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if got.SHA256 == key && got.BLAKE3.String() == b.BLAKE3 && got.Size == b.Size {
		return false, nil
	}
	if err := in.Quarantine(ctx, key); err != nil && !errors.Is(err, blobstore.ErrNotFound) {
		return false, err
	}
	return true, nil
}

// brokenEvent shows the payload of a broken event as JSON, for the report.
func brokenEvent(ctx context.Context, log *eventlog.Log, seq int64) string {
	p, err := log.Read(ctx, eventlog.Query{After: seq - 1, Limit: 1})
	if err != nil || len(p.Events) == 0 || p.Events[0].Seq != seq {
		return ""
	}
	e := p.Events[0]
	return fmt.Sprintf(" (%s %s %s)", e.Type, e.Repo, payloadJSON(e.Payload))
}

func sha512Of(ctx context.Context, s *blobstore.Store, key string) (string, error) {
	f, err := s.Open(ctx, digest.Digest(key))
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := digest.SHA512.New()
	if _, err := io.CopyBuffer(h, struct{ io.Reader }{f}, make([]byte, 1<<20)); err != nil {
		return "", err
	}
	return digest.NewDigest(digest.SHA512, h.Sum(nil)).String(), nil
}
