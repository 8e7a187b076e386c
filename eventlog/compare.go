package eventlog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// Checking the views against the log. Every view row is a function of the
// events (see the package invariants), so rows the API reads that replay
// would not produce — a tag edited by hand, a blob link inserted into
// another repository — are damage. CheckViews finds them by replaying the
// log into a scratch database and comparing the two sets of views row by
// row.
//
// Consistency beside live servers: the live views move while the check
// runs. CheckViews therefore reads the head and every live view inside one
// read-only snapshot transaction (REPEATABLE READ on PostgreSQL; a deferred
// transaction in SQLite's WAL mode, whose snapshot starts at its first
// read), and replays exactly the events up to that head. Both sides then
// describe the same point of the log, with no retry and no lock that
// writers wait for. The price is a snapshot held open for the check's
// duration (PostgreSQL's vacuum and SQLite's WAL checkpoints wait behind it).
//
// Memory: events are replayed a page at a time, and each view is compared
// as two streams sorted by its primary key (byte order on both backends:
// SQLite's BINARY collation, PostgreSQL's "C"), so memory does not grow
// with the log or the views.

// Position is a point of the log: a sequence number and the chain hash of
// the event there (0 and the genesis hash for an empty log). Since the
// hash covers every earlier event, a Position pins the whole log up to it.
type Position struct {
	Seq  int64
	Hash []byte
}

// LastPosition returns the position of the log's last event.
func (l *Log) LastPosition(ctx context.Context) (Position, error) {
	tx, err := l.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return Position{}, err
	}
	defer tx.Rollback()
	seq, hash, err := l.head(ctx, tx)
	return Position{seq, hash}, err
}

// HashAt returns the chain hash of event seq (ErrNotFound when the log
// holds no such event).
func (l *Log) HashAt(ctx context.Context, seq int64) ([]byte, error) {
	var h []byte
	err := l.db.QueryRowContext(ctx, l.q(`SELECT hash FROM events WHERE seq = ?`), seq).Scan(&h)
	return h, notFound(err, fmt.Sprintf("event %d", seq))
}

// viewKeys is the primary key of each view, in viewTables order.
var viewKeys = map[string][]string{
	"blobs":                {"sha256"},
	"blob_digests":         {"digest"},
	"repositories":         {"name"},
	"blob_links":           {"repo", "sha256"},
	"manifests":            {"repo", "digest"},
	"tags":                 {"repo", "tag"},
	"referrers":            {"repo", "subject", "digest"},
	"uploads":              {"id"},
	"versions":             {"repo", "version"},
	"manifest_annotations": {"repo", "digest", "key"},
	"manifest_blobs":       {"repo", "digest", "sha256"},
	"manifest_children":    {"repo", "digest", "child"},
	"api_keys":             {"id"},
	"blob_tombstones":      {"sha256"},
	"retention_policies":   {"name"},
	"manifest_pulls":       {"repo", "digest"},
	"retention_trash":      {"repo", "kind", "name"},
	"trash_blobs":          {"repo", "digest", "sha256"},
	"contents":             {"sha256"},
	"upload_counts":        {"repo"},
	"ended_uploads":        {"id"},
}

// ViewDiff is one row on which the live views and the replayed ones
// disagree. Live or Replayed is empty when the row exists on one side only.
type ViewDiff struct {
	Table    string
	Key      string // "col=value ..." of the primary key
	Live     string // the other columns as "col=value ...", live
	Replayed string // the same, as replay of the log produces them
}

func (d ViewDiff) String() string {
	switch {
	case d.Replayed == "":
		return fmt.Sprintf("view %s (%s): live row {%s} is not produced by the log", d.Table, d.Key, d.Live)
	case d.Live == "":
		return fmt.Sprintf("view %s (%s): row {%s} that the log produces is missing", d.Table, d.Key, d.Replayed)
	}
	return fmt.Sprintf("view %s (%s): live {%s}, the log says {%s}", d.Table, d.Key, d.Live, d.Replayed)
}

// CheckViews replays the log into scratch (an empty log of its own, e.g. a
// temporary SQLite file; its views are cleared first) up to the head of a
// snapshot of l, compares every view of the snapshot with the replayed
// one, and calls fn for each difference. It returns the head compared at.
func (l *Log) CheckViews(ctx context.Context, scratch *Log, fn func(ViewDiff) error) (Position, error) {
	if scratch == nil || scratch == l || scratch.db == l.db {
		return Position{}, errors.New("check views: needs a scratch log of its own")
	}
	snap, err := l.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true, Isolation: sql.LevelRepeatableRead})
	if err != nil {
		return Position{}, fmt.Errorf("check views: snapshot: %w", err)
	}
	defer snap.Rollback()
	seq, hash, err := l.head(ctx, snap) // the first read: it fixes the snapshot
	if err != nil {
		return Position{}, err
	}
	head := Position{seq, hash}
	if err := scratch.replayFrom(ctx, l, snap, seq); err != nil {
		return head, err
	}
	for _, t := range viewTables {
		if err := l.compareView(ctx, snap, scratch, t, fn); err != nil {
			return head, err
		}
	}
	return head, nil
}

// replayFrom clears l's views and applies the events of src, read in the
// transaction snap, up to and including seq. The chain is not checked
// here: verify reports breaks on its own, and views are compared with
// whatever the log says.
func (l *Log) replayFrom(ctx context.Context, src *Log, snap *sql.Tx, seq int64) error {
	if l.cache != nil {
		defer l.cache.reset()
	}
	tx, err := l.begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, t := range viewTables {
		if _, err := tx.ExecContext(ctx, `DELETE FROM `+t); err != nil {
			return fmt.Errorf("scratch: clear view %s: %w", t, err)
		}
	}
	var after int64
	for after < seq {
		evs, err := src.page(ctx, snap, after, replayPage)
		if err != nil {
			return fmt.Errorf("check views: read events after %d: %w", after, err)
		}
		if len(evs) == 0 {
			break
		}
		for _, e := range evs {
			if e.Seq > seq {
				break
			}
			if err := l.apply(ctx, tx, e); err != nil {
				return fmt.Errorf("check views: replay: %w", err)
			}
			after = e.Seq
		}
	}
	return tx.Commit()
}

// compareView merges view t of the snapshot and of scratch, both sorted by
// primary key in byte order, reporting rows that differ or exist on one
// side only.
func (l *Log) compareView(ctx context.Context, snap *sql.Tx, scratch *Log, t string, fn func(ViewDiff) error) error {
	live, err := l.viewRows(ctx, snap, t)
	if err != nil {
		return err
	}
	defer live.close()
	replayed, err := scratch.viewRows(ctx, nil, t)
	if err != nil {
		return err
	}
	defer replayed.close()
	a, err := live.next()
	if err != nil {
		return err
	}
	b, err := replayed.next()
	if err != nil {
		return err
	}
	for a != nil || b != nil {
		var d *ViewDiff
		switch c := compareKeys(a, b); {
		case c < 0:
			d = &ViewDiff{Table: t, Key: a.key(), Live: a.rest()}
			a, err = live.next()
		case c > 0:
			d = &ViewDiff{Table: t, Key: b.key(), Replayed: b.rest()}
			b, err = replayed.next()
		default:
			if la, lb := a.rest(), b.restAs(a); la != lb {
				d = &ViewDiff{Table: t, Key: a.key(), Live: la, Replayed: lb}
			}
			if a, err = live.next(); err == nil {
				b, err = replayed.next()
			}
		}
		if err != nil {
			return err
		}
		if d != nil {
			if err := fn(*d); err != nil {
				return err
			}
		}
	}
	return nil
}

// viewRow is one row: its key values and every column as text.
type viewRow struct {
	keyCols []string
	keyVals []string
	cols    []string
	vals    []string
}

func (r *viewRow) key() string {
	parts := make([]string, len(r.keyCols))
	for i, c := range r.keyCols {
		parts[i] = c + "=" + r.keyVals[i]
	}
	return strings.Join(parts, " ")
}

// rest formats the non-key columns in the row's own column order.
func (r *viewRow) rest() string {
	var parts []string
	for i, c := range r.cols {
		if !r.isKey(c) {
			parts = append(parts, c+"="+r.vals[i])
		}
	}
	return strings.Join(parts, " ")
}

// restAs formats the non-key columns in like's column order, so that the
// two sides compare by name even if their column order differed.
func (r *viewRow) restAs(like *viewRow) string {
	byName := make(map[string]string, len(r.cols))
	for i, c := range r.cols {
		byName[c] = r.vals[i]
	}
	var parts []string
	for _, c := range like.cols {
		if !like.isKey(c) {
			v, ok := byName[c]
			if !ok {
				v = "<no such column>"
			}
			parts = append(parts, c+"="+v)
		}
	}
	return strings.Join(parts, " ")
}

func (r *viewRow) isKey(c string) bool {
	for _, k := range r.keyCols {
		if k == c {
			return true
		}
	}
	return false
}

// compareKeys orders rows by key, with nil (an exhausted stream) last.
func compareKeys(a, b *viewRow) int {
	switch {
	case a == nil:
		return 1
	case b == nil:
		return -1
	}
	for i := range a.keyVals {
		if c := strings.Compare(a.keyVals[i], b.keyVals[i]); c != 0 {
			return c
		}
	}
	return 0
}

// rowStream reads a view in key order and checks that order as it goes:
// a merge over streams that are not sorted alike would report rows that
// agree as missing.
type rowStream struct {
	table string
	keys  []string
	rows  *sql.Rows
	cols  []string
	prev  *viewRow
}

// viewRows streams view t in primary-key byte order, in tx when given.
func (l *Log) viewRows(ctx context.Context, tx *sql.Tx, t string) (*rowStream, error) {
	keys, ok := viewKeys[t]
	if !ok {
		return nil, fmt.Errorf("view %s has no primary key in viewKeys", t)
	}
	order := make([]string, len(keys))
	for i, k := range keys {
		order[i] = k + l.byteCollation()
	}
	query := `SELECT * FROM ` + t + ` ORDER BY ` + strings.Join(order, ", ")
	var rows *sql.Rows
	var err error
	if tx != nil {
		rows, err = tx.QueryContext(ctx, query)
	} else {
		rows, err = l.db.QueryContext(ctx, query)
	}
	if err != nil {
		return nil, fmt.Errorf("read view %s: %w", t, err)
	}
	cols, err := rows.Columns()
	if err != nil {
		rows.Close()
		return nil, err
	}
	return &rowStream{table: t, keys: keys, rows: rows, cols: cols}, nil
}

// byteCollation makes ORDER BY compare text as bytes: PostgreSQL's default
// collation follows the locale, SQLite's BINARY already compares bytes.
func (l *Log) byteCollation() string {
	if l.dialect.Name == "postgres" {
		return ` COLLATE "C"`
	}
	return ""
}

func (s *rowStream) close() { s.rows.Close() }

// next returns the next row, or nil at the end.
func (s *rowStream) next() (*viewRow, error) {
	if !s.rows.Next() {
		return nil, s.rows.Err()
	}
	vals := make([]any, len(s.cols))
	ptrs := make([]any, len(s.cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := s.rows.Scan(ptrs...); err != nil {
		return nil, fmt.Errorf("read view %s: %w", s.table, err)
	}
	r := &viewRow{keyCols: s.keys, cols: s.cols, vals: make([]string, len(vals)), keyVals: make([]string, len(s.keys))}
	for i, v := range vals {
		switch x := v.(type) {
		case nil:
			r.vals[i] = "NULL"
		case []byte:
			r.vals[i] = string(x)
		default:
			r.vals[i] = fmt.Sprint(x)
		}
	}
	for i, k := range s.keys {
		found := false
		for j, c := range s.cols {
			if c == k {
				r.keyVals[i], found = r.vals[j], true
			}
		}
		if !found {
			return nil, fmt.Errorf("view %s has no key column %s", s.table, k)
		}
	}
	if s.prev != nil && compareKeys(s.prev, r) >= 0 {
		return nil, fmt.Errorf("view %s: rows (%s) and (%s) are not in byte order; cannot compare", s.table, s.prev.key(), r.key())
	}
	s.prev = r
	return r, nil
}
