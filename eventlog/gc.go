package eventlog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Garbage collection is ordered by the log, not by clocks. A collector
// removes a blob's bytes only inside a window the log opens and closes:
//
//	gc.condemned (seq C)  the blob leaves the blobs view; tombstone 'condemned'
//	delete the bytes      from every store
//	gc.swept     (seq S)  tombstone 'swept', seq S
//
// Invariants:
//
//   - A blob is condemned only if, inside the append that condemns it, no
//     repository links it, no manifest's bytes are it, no native version's
//     manifest is it, no restorable retention deletion needs it (its links
//     are kept too: retention.go), and no event committed it or stopped a
//     use of it after the collector's mark (blobs.used_seq; guardCondemned). Links and references are only
//     ever added by appends, which are serial, so nothing can come to
//     need the blob between that check and the event.
//   - While a blob is condemned it has no row in the blobs view, so no
//     append can link it, put a manifest with it as bytes or publish a
//     version with it (guardPresent), and no blob.committed of it is
//     recorded (guardFenced).
//   - A blob.committed carries the position its writer had read before
//     making the bytes durable (Event.Fence). It is refused if the blob's
//     tombstone is newer than that position. So a writer whose bytes a
//     sweep may have deleted (it found them present, or wrote them, before
//     the delete) never records them: its fence is older than the gc.swept
//     that follows the delete. A writer whose fence is at or after the
//     gc.swept read the log after the delete had finished, so the bytes it
//     then found or wrote are not ones the delete removed, and no new
//     delete starts without a newer gc.condemned, which the blobs row its
//     append creates then prevents.
//
// Together: no event ever names bytes a sweep deleted, and a push racing
// a sweep either keeps its blob or gets ErrFenced before anything of it
// is recorded.

// Payloads of the collector's events.
type (
	// GCCondemned: the collector run Run found Blobs unreachable at log
	// position Mark and is deleting their bytes.
	GCCondemned struct {
		Run   string   `json:"run"`
		Mark  int64    `json:"mark"`
		Blobs []string `json:"blobs"`
	}
	// GCSwept: the bytes of Blobs, all condemned, are deleted from every
	// store; Bytes is what that freed.
	GCSwept struct {
		Run   string   `json:"run"`
		Blobs []string `json:"blobs"`
		Bytes int64    `json:"bytes"`
	}
)

// ErrFenced is returned by Append when a blob.committed names a blob that
// a collector condemned or swept after the writer's fence: nothing of the
// append is recorded, and pushing the blob again succeeds.
var ErrFenced = errors.New("blob collected meanwhile")

// Tombstone states.
const (
	tombCondemned = "condemned"
	tombSwept     = "swept"
)

// querier is what both a transaction and the database offer, so that the
// collector's checks read the same outside an append as inside one.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// Observed returns a log position this process has seen committed: at
// most the head, never ahead of it. A writer reads it before making bytes
// durable and sets it as the Fence of its blob.committed; a position
// older than the true head only makes the fence stricter.
func (l *Log) Observed() int64 { return l.observed.Load() }

// observe raises Observed to seq.
func (l *Log) observe(seq int64) {
	for {
		cur := l.observed.Load()
		if seq <= cur || l.observed.CompareAndSwap(cur, seq) {
			return
		}
	}
}

// guardFenced refuses a blob.committed whose blob a collector condemned,
// or swept after the writer's fence.
func (l *Log) guardFenced(ctx context.Context, tx *sql.Tx, e Event, facts *groupFacts) error {
	var p blobCommittedView
	if err := e.Decode(&p); err != nil {
		return err
	}
	carries := p.Content.set
	if carries && int64(p.Content.n) != p.Size {
		// The writer hashed the content; its length is all left to check.
		return fmt.Errorf("blob.committed of %s carries %d bytes of content, not its size %d", p.SHA256, p.Content.n, p.Size)
	}
	if facts.untombstoned(p.SHA256) {
		return nil
	}
	var state string
	var seq int64
	err := tx.QueryRowContext(ctx, l.q(`SELECT state, seq FROM blob_tombstones WHERE sha256 = ?`), p.SHA256).Scan(&state, &seq)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil
	case err != nil:
		return fmt.Errorf("append check: %w", err)
	case state == tombCondemned:
		return fmt.Errorf("%w: blob %s is being garbage-collected; push it again", ErrFenced, p.SHA256)
	case seq > e.Fence && !carries:
		// An event that carries its bytes relies on no earlier copy,
		// so a sweep after its fence cannot have taken them.
		return fmt.Errorf("%w: blob %s was garbage-collected while it was pushed (event %d); push it again", ErrFenced, p.SHA256, seq)
	}
	return nil
}

// committedHere lists the blobs that earlier events of the append being
// recorded committed (blob.committed, which passed guardFenced and put the
// blob's row in place): a later event of the same append that needs one
// (a push's link, a manifest's own bytes) finds it present without asking
// the database again. Usually one or two, so a slice.
type committedHere []string

func (c committedHere) add(e Event) committedHere {
	if e.Type != TypeBlobCommitted {
		return c
	}
	var p blobCommittedView
	if e.Decode(&p) != nil {
		return c
	}
	return append(c, p.SHA256)
}

func (c committedHere) has(sha256 string) bool { return slices.Contains(c, sha256) }

// guardPresent refuses an event that needs the committed blob sha256
// (a link, a manifest's bytes, a version's manifest) unless the blobs view
// has it: a condemned or swept blob has no row.
func (l *Log) guardPresent(ctx context.Context, tx *sql.Tx, sha256 string, committed committedHere) error {
	if committed.has(sha256) {
		return nil // recorded by this append, its fence checked: present
	}
	ok, err := l.found(ctx, tx, `SELECT 1 FROM blobs WHERE sha256 = ?`, sha256)
	if err != nil || ok {
		return err
	}
	return fmt.Errorf("%w: blob %s is not stored (it was garbage-collected meanwhile); push it again", ErrReferenceMissing, sha256)
}

// guardCondemned refuses a gc.condemned naming a blob that is in use or
// was recorded after the mark; guardSwept one naming a blob not condemned.
func (l *Log) guardCondemned(ctx context.Context, tx *sql.Tx, e Event) error {
	var p GCCondemned
	if err := e.Decode(&p); err != nil {
		return err
	}
	inUse, err := l.blobsInUse(ctx, tx, p.Mark, p.Blobs, true)
	if err != nil {
		return err
	}
	for _, b := range p.Blobs {
		if why, ok := inUse[b]; ok {
			return fmt.Errorf("%w: blob %s %s", ErrConflict, b, why)
		}
	}
	return nil
}

func (l *Log) guardSwept(ctx context.Context, tx *sql.Tx, e Event) error {
	var p GCSwept
	if err := e.Decode(&p); err != nil {
		return err
	}
	b, err := l.firstMissing(ctx, tx, `SELECT sha256 FROM blob_tombstones WHERE state = '`+tombCondemned+`' AND sha256 IN (%s)`, nil, p.Blobs)
	if err != nil || b == "" {
		return err
	}
	return fmt.Errorf("%w: blob %s is not condemned", ErrConflict, b)
}

// blobsInUse returns, for each of keys that may not be condemned at mark,
// why not.
func (l *Log) blobsInUse(ctx context.Context, q querier, mark int64, keys []string, links bool) (map[string]string, error) {
	out := map[string]string{}
	for i, c := range []struct{ query, why string }{
		{`SELECT sha256 FROM blob_links WHERE sha256 IN (%s)`, "is linked in a repository"},
		{`SELECT sha256 FROM manifests WHERE sha256 IN (%s)`, "holds a manifest"},
		{`SELECT native_sha256 FROM versions WHERE native_sha256 IN (%s)`, "holds a native version's manifest"},
		{`SELECT sha256 FROM retention_trash WHERE sha256 IN (%s)`, "is needed to restore a retention deletion"},
		{`SELECT sha256 FROM blobs WHERE used_seq > ` + fmt.Sprint(mark) + ` AND sha256 IN (%s)`, "was committed, or stopped being used, after the collector's mark"},
		{`SELECT sha256 FROM blob_tombstones WHERE state = '` + tombCondemned + `' AND sha256 IN (%s)`, "is already condemned by another collection"},
	} {
		if i == 0 && !links {
			continue
		}
		found, err := l.foundKeys(ctx, q, c.query, nil, keys)
		if err != nil {
			return nil, err
		}
		for k := range found {
			if _, dup := out[k]; !dup {
				out[k] = c.why
			}
		}
	}
	return out, nil
}

// applyGC projects the collector's events.
func (l *Log) applyGC(ctx context.Context, tx *sql.Tx, e Event) error {
	var keys []string
	state := tombCondemned
	switch e.Type {
	case TypeGCCondemned:
		var p GCCondemned
		if err := e.Decode(&p); err != nil {
			return err
		}
		keys = p.Blobs
		for _, table := range []string{"blobs", "blob_digests", "contents"} {
			if err := l.execIn(ctx, tx, `DELETE FROM `+table+` WHERE sha256 IN (%s)`, keys); err != nil {
				return fmt.Errorf("apply event %d (%s): %w", e.Seq, e.Type, err)
			}
		}
	case TypeGCSwept:
		var p GCSwept
		if err := e.Decode(&p); err != nil {
			return err
		}
		keys, state = p.Blobs, tombSwept
	}
	rows := make([][]any, len(keys))
	for i, k := range keys {
		rows[i] = []any{k, state, e.Seq}
	}
	if err := l.insertRows(ctx, tx, `INSERT INTO blob_tombstones (sha256, state, seq) VALUES %s
		ON CONFLICT (sha256) DO UPDATE SET state = excluded.state, seq = excluded.seq`, rows); err != nil {
		return fmt.Errorf("apply event %d (%s): %w", e.Seq, e.Type, err)
	}
	return nil
}

// UnusedLink is a blob link that no manifest, native version or manifest
// bytes of its repository need.
type UnusedLink struct {
	Repo, SHA256 string
	Size         int64
	Linked       time.Time // the event that last linked it
	LastRead     time.Time // zero: never read (as far as blob_reads knows)
}

// UnusedLinks calls fn for every link nothing in its repository needs
// by the views (manifest_blobs, versions, manifests' bytes, trash_blobs);
// a collector adds what partial manifests reference (PartialManifests).
func (l *Log) UnusedLinks(ctx context.Context, fn func(UnusedLink) error) error {
	rows, err := l.db.QueryContext(ctx, `SELECT k.repo, k.sha256, b.size, e.time_ns, COALESCE(r.last_ns, 0)
		FROM blob_links k JOIN blobs b ON b.sha256 = k.sha256 JOIN events e ON e.seq = k.seq
		LEFT JOIN blob_reads r ON r.sha256 = k.sha256
		WHERE NOT EXISTS (SELECT 1 FROM manifest_blobs mb WHERE mb.repo = k.repo AND mb.sha256 = k.sha256)
		AND NOT EXISTS (SELECT 1 FROM versions v WHERE v.repo = k.repo AND v.native_sha256 = k.sha256)
		AND NOT EXISTS (SELECT 1 FROM manifests m WHERE m.repo = k.repo AND m.sha256 = k.sha256)
		AND NOT EXISTS (SELECT 1 FROM trash_blobs tb WHERE tb.repo = k.repo AND tb.sha256 = k.sha256)
		ORDER BY k.repo, k.sha256`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var u UnusedLink
		var linked, read int64
		if err := rows.Scan(&u.Repo, &u.SHA256, &u.Size, &linked, &read); err != nil {
			return err
		}
		u.Linked = time.Unix(0, linked).UTC()
		if read > 0 {
			u.LastRead = time.Unix(0, read).UTC()
		}
		if err := fn(u); err != nil {
			return err
		}
	}
	return rows.Err()
}

// PartialManifest is a manifest whose put may not have recorded all it
// references (see ManifestPut.Complete).
type PartialManifest struct {
	Repo, Digest, SHA256, MediaType string
	Size                            int64
}

// PartialManifests calls fn for every manifest whose put may not have
// recorded all it references: a collector reads and parses these.
func (l *Log) PartialManifests(ctx context.Context, fn func(PartialManifest) error) error {
	rows, err := l.db.QueryContext(ctx, `SELECT m.repo, m.digest, m.sha256, m.media_type, m.size FROM manifests m
		WHERE m.partial <> 0 ORDER BY m.repo, m.digest`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var m PartialManifest
		if err := rows.Scan(&m.Repo, &m.Digest, &m.SHA256, &m.MediaType, &m.Size); err != nil {
			return err
		}
		if err := fn(m); err != nil {
			return err
		}
	}
	return rows.Err()
}

// UnusedBlobs calls fn for every blob that nothing uses (no link, no
// manifest's bytes, no version's manifest, no restorable deletion) and
// that no event committed or stopped a use of after mark; Blob.Used says
// when the last did, for the collector's grace.
func (l *Log) UnusedBlobs(ctx context.Context, mark int64, fn func(Blob) error) error {
	rows, err := l.db.QueryContext(ctx, l.q(`SELECT b.sha256, b.blake3, b.size, b.tier, COALESCE(e.time_ns, 0) FROM blobs b
		LEFT JOIN events e ON e.seq = b.used_seq WHERE b.used_seq <= ?
		AND NOT EXISTS (SELECT 1 FROM blob_links k WHERE k.sha256 = b.sha256)
		AND NOT EXISTS (SELECT 1 FROM manifests m WHERE m.sha256 = b.sha256)
		AND NOT EXISTS (SELECT 1 FROM versions v WHERE v.native_sha256 = b.sha256)
		AND NOT EXISTS (SELECT 1 FROM retention_trash t WHERE t.sha256 = b.sha256)
		ORDER BY b.sha256`), mark)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var b Blob
		var used int64
		if err := rows.Scan(&b.SHA256, &b.BLAKE3, &b.Size, &b.Tier, &used); err != nil {
			return err
		}
		b.Used = time.Unix(0, used).UTC()
		if err := fn(b); err != nil {
			return err
		}
	}
	return rows.Err()
}

// StillUnused returns those of keys that may be condemned at mark now
// (the same checks as the append's guard, outside it).
func (l *Log) StillUnused(ctx context.Context, mark int64, keys []string) ([]string, error) {
	return l.unusedOf(ctx, mark, keys, true)
}

// UnusedButLinked returns those of keys that links alone keep: what a dry
// run may count as freed once it has removed every link of each.
func (l *Log) UnusedButLinked(ctx context.Context, mark int64, keys []string) ([]string, error) {
	return l.unusedOf(ctx, mark, keys, false)
}

func (l *Log) unusedOf(ctx context.Context, mark int64, keys []string, links bool) ([]string, error) {
	inUse, err := l.blobsInUse(ctx, l.db, mark, keys, links)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, k := range keys {
		if _, ok := inUse[k]; !ok {
			out = append(out, k)
		}
	}
	return out, nil
}

// Unrecorded returns those of keys (storage keys found in a blob store)
// that the blobs view does not have and no collector has condemned: bytes
// no event names.
func (l *Log) Unrecorded(ctx context.Context, keys []string) ([]string, error) {
	known, err := l.foundKeys(ctx, l.db, `SELECT sha256 FROM blobs WHERE sha256 IN (%s)`, nil, keys)
	if err != nil {
		return nil, err
	}
	condemned, err := l.foundKeys(ctx, l.db, `SELECT sha256 FROM blob_tombstones WHERE state = '`+tombCondemned+`' AND sha256 IN (%s)`, nil, keys)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, k := range keys {
		if !known[k] && !condemned[k] {
			out = append(out, k)
		}
	}
	return out, nil
}

// Condemned returns every blob condemned and not yet swept: the work of a
// collection that stopped between its gc.condemned and its gc.swept.
func (l *Log) Condemned(ctx context.Context) ([]string, error) {
	return l.strings(ctx, `SELECT sha256 FROM blob_tombstones WHERE state = '`+tombCondemned+`' ORDER BY sha256 LIMIT ?`, -1)
}

// LinksOf calls fn with the storage key of every blob repo links.
func (l *Log) LinksOf(ctx context.Context, repo string, fn func(sha256 string)) error {
	keys, err := l.strings(ctx, `SELECT sha256 FROM blob_links WHERE repo = ? ORDER BY sha256 LIMIT ?`, repo, -1)
	for _, k := range keys {
		fn(k)
	}
	return err
}

// LinkCounts returns how many repositories link each of keys.
func (l *Log) LinkCounts(ctx context.Context, keys []string) (map[string]int, error) {
	out := map[string]int{}
	err := l.queryIn(ctx, l.db, `SELECT sha256, COUNT(*) FROM blob_links WHERE sha256 IN (%s) GROUP BY sha256`, nil, keys, func(rows *sql.Rows) error {
		var k string
		var c int
		err := rows.Scan(&k, &c)
		out[k] = c
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// execIn runs query (ending in "IN (%s)") for keys, batchRows at a time.
func (l *Log) execIn(ctx context.Context, tx *sql.Tx, query string, keys []string) error {
	for len(keys) > 0 {
		n := min(len(keys), batchRows)
		in := strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
		if _, err := tx.ExecContext(ctx, l.q(fmt.Sprintf(query, in)), anySlice(keys[:n])...); err != nil {
			return err
		}
		keys = keys[n:]
	}
	return nil
}
