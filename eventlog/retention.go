package eventlog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Retention in the log. Policies are events (retention.policy.set and
// .removed) projected into retention_policies. A deletion retention makes
// is an ordinary tag.deleted, manifest.deleted or version.deleted whose
// Retention fields name the policy and rule; projecting it also records
// the deleted item in the retention_trash view (and a manifest's needed
// blobs in trash_blobs), from which it can be restored by appending its
// creating event again. Invariants:
//
//   - While a trash row exists, the garbage collector keeps the bytes it
//     names (a manifest's, a native version's) and the links trash_blobs
//     names, so a restore finds everything it needs.
//   - Re-creating an item (manifest.put of the digest, tag.set of the tag,
//     version.published of the version) removes its trash row: a restore
//     never resurrects something that was superseded.
//   - Trash rows go only by retention.purged, which the collector appends
//     for deletions older than the undo window: what is restorable is a
//     function of the log, like every view.
//
// Pulls are recorded in batches (manifest.pulled, one event per
// repository per flush), so "unused for 90 days" is a rule about the log.

// Retention is what a deletion made by a retention policy says about
// itself; zero for a deletion a client asked for.
type Retention struct {
	Policy string `json:"policy,omitempty"`
	Rule   string `json:"rule,omitempty"`
	Reason string `json:"reason,omitempty"`
	// Mark is the log position the plan was made at: a retention
	// deletion of an item changed after it is refused (guardRetention).
	Mark int64 `json:"mark,omitempty"`
}

// guardRetention refuses a retention deletion whose item changed since
// the plan that chose it: a tag set (created, moved or pushed again)
// after the plan's mark, a manifest a tag points at now. A client's
// deletion (no policy) is not checked here.
func (l *Log) guardRetention(ctx context.Context, tx *sql.Tx, e Event, r Retention, tag, manifest string) error {
	if r.Policy == "" {
		return nil
	}
	// What a plan deletes must still be there: a second replica applying
	// the same plan records nothing.
	what, q, key := "tag", `SELECT 1 FROM tags WHERE repo = ? AND tag = ?`, tag
	if tag == "" {
		what, q, key = "manifest", `SELECT 1 FROM manifests WHERE repo = ? AND digest = ?`, manifest
	}
	if there, err := l.found(ctx, tx, q, e.Repo, key); err != nil {
		return err
	} else if !there {
		return fmt.Errorf("%w: %s %s of %s is already gone", ErrNotFound, what, key, e.Repo)
	}
	if tag != "" {
		moved, err := l.found(ctx, tx, `SELECT 1 FROM tags WHERE repo = ? AND tag = ? AND seq > ?`, e.Repo, tag, r.Mark)
		if err != nil {
			return err
		}
		if moved {
			return fmt.Errorf("%w: tag %s:%s was set after the retention plan (event %d)", ErrConflict, e.Repo, tag, r.Mark)
		}
	}
	if manifest != "" {
		tagged, err := l.found(ctx, tx, `SELECT 1 FROM tags WHERE repo = ? AND digest = ?`, e.Repo, manifest)
		if err != nil {
			return err
		}
		if tagged {
			return fmt.Errorf("%w: manifest %s in %s is tagged again", ErrConflict, manifest, e.Repo)
		}
	}
	return nil
}

// IndexesOf returns the indexes of repo that list the manifest digest.
func (l *Log) IndexesOf(ctx context.Context, repo, digest string) ([]string, error) {
	return l.strings(ctx, `SELECT digest FROM manifest_children WHERE repo = ? AND child = ? ORDER BY digest LIMIT ?`, repo, digest, -1)
}

// BlobUser is a blob and one thing that uses it: "m:REPO@DIGEST" for a
// manifest (its bytes, or a blob it needs), "v:REPO@VERSION" for a native
// version's manifest.
type BlobUser struct {
	SHA256, User string
	Size         int64
}

// BlobUsers calls fn for every use of every blob.
func (l *Log) BlobUsers(ctx context.Context, fn func(BlobUser) error) error {
	for _, q := range []string{
		`SELECT mb.sha256, 'm:' || mb.repo || '@' || mb.digest, b.size FROM manifest_blobs mb JOIN blobs b ON b.sha256 = mb.sha256`,
		`SELECT m.sha256, 'm:' || m.repo || '@' || m.digest, b.size FROM manifests m JOIN blobs b ON b.sha256 = m.sha256`,
		`SELECT v.native_sha256, 'v:' || v.repo || '@' || v.version, v.native_size FROM versions v`,
	} {
		err := l.each(ctx, q, nil, func(rows *sql.Rows) error {
			var u BlobUser
			if err := rows.Scan(&u.SHA256, &u.User, &u.Size); err != nil {
				return err
			}
			return fn(u)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// Payloads of the retention events.
type (
	// PolicySet: the retention policy Name is Policy (canonical JSON).
	PolicySet struct {
		Name   string `json:"name"`
		Policy string `json:"policy"`
	}
	// PolicyRemoved: the retention policy Name no longer applies.
	PolicyRemoved struct {
		Name string `json:"name"`
	}
	// TrashPurged: deletions recorded at or before event Through can no
	// longer be restored (their undo window closed).
	TrashPurged struct {
		Through int64 `json:"through"`
	}
	// ManifestPulled: the repository's manifests were pulled, each last
	// at Time (Unix nanoseconds).
	ManifestPulled struct {
		Pulls []Pull `json:"pulls"`
	}
	// Pull is one manifest's last pull in a ManifestPulled batch.
	Pull struct {
		Digest string `json:"digest"`
		Time   int64  `json:"time"`
	}
)

// Trash kinds.
const (
	TrashTag      = "tag"
	TrashManifest = "manifest"
	TrashVersion  = "version"
)

// applyRetention projects the retention events.
func (l *Log) applyRetention(ctx context.Context, tx *sql.Tx, e Event) error {
	exec := func(query string, args ...any) error {
		if _, err := tx.ExecContext(ctx, l.q(query), args...); err != nil {
			return fmt.Errorf("apply event %d (%s): %w", e.Seq, e.Type, err)
		}
		return nil
	}
	switch e.Type {
	case TypePolicySet:
		var p PolicySet
		if err := e.Decode(&p); err != nil {
			return err
		}
		return exec(`INSERT INTO retention_policies (name, policy, seq) VALUES (?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET policy = excluded.policy, seq = excluded.seq`, p.Name, p.Policy, e.Seq)
	case TypePolicyRemoved:
		var p PolicyRemoved
		if err := e.Decode(&p); err != nil {
			return err
		}
		return exec(`DELETE FROM retention_policies WHERE name = ?`, p.Name)
	case TypeTrashPurged:
		var p TrashPurged
		if err := e.Decode(&p); err != nil {
			return err
		}
		if err := exec(`DELETE FROM trash_blobs WHERE EXISTS (SELECT 1 FROM retention_trash t
			WHERE t.repo = trash_blobs.repo AND t.kind = 'manifest' AND t.name = trash_blobs.digest AND t.seq <= ?)`, p.Through); err != nil {
			return err
		}
		return exec(`DELETE FROM retention_trash WHERE seq <= ?`, p.Through)
	case TypeManifestPulled:
		var p ManifestPulled
		if err := e.Decode(&p); err != nil {
			return err
		}
		rows := make([][]any, len(p.Pulls))
		for i, u := range p.Pulls {
			rows[i] = []any{e.Repo, u.Digest, u.Time}
		}
		if err := l.insertRows(ctx, tx, `INSERT INTO manifest_pulls (repo, digest, last_ns) VALUES %s
			ON CONFLICT (repo, digest) DO UPDATE SET last_ns = excluded.last_ns WHERE manifest_pulls.last_ns < excluded.last_ns`, rows); err != nil {
			return fmt.Errorf("apply event %d (%s): %w", e.Seq, e.Type, err)
		}
	}
	return nil
}

// trashDeleted records, before it is projected away, an item a retention
// policy deletes.
func (l *Log) trashDeleted(ctx context.Context, tx *sql.Tx, e Event, kind, name string, r Retention) error {
	if r.Policy == "" {
		return nil // a client's deletion: nothing to restore
	}
	var q string
	switch kind {
	case TrashTag:
		q = `SELECT t.digest, '', CASE WHEN t.since_seq > 0 THEN t.since_seq ELSE t.seq END FROM tags t WHERE t.repo = ? AND t.tag = ?`
	case TrashManifest:
		q = `SELECT m.digest, m.sha256, m.seq FROM manifests m WHERE m.repo = ? AND m.digest = ?`
	case TrashVersion:
		q = `SELECT v.oci_digest, v.native_sha256, CASE WHEN v.since_seq > 0 THEN v.since_seq ELSE v.seq END FROM versions v WHERE v.repo = ? AND v.version = ?`
	}
	var digest, sha string
	var putSeq int64
	err := tx.QueryRowContext(ctx, l.q(q), e.Repo, name).Scan(&digest, &sha, &putSeq)
	if errors.Is(err, sql.ErrNoRows) {
		return nil // nothing there to delete
	}
	if err != nil {
		return fmt.Errorf("apply event %d (%s): %w", e.Seq, e.Type, err)
	}
	if _, err := tx.ExecContext(ctx, l.q(`INSERT INTO retention_trash (repo, kind, name, digest, sha256, seq, put_seq, policy) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (repo, kind, name) DO UPDATE SET digest = excluded.digest, sha256 = excluded.sha256, seq = excluded.seq, put_seq = excluded.put_seq, policy = excluded.policy`),
		e.Repo, kind, name, digest, sha, e.Seq, putSeq, r.Policy); err != nil {
		return fmt.Errorf("apply event %d (%s): %w", e.Seq, e.Type, err)
	}
	if kind != TrashManifest {
		return nil
	}
	if _, err := tx.ExecContext(ctx, l.q(`INSERT INTO trash_blobs (repo, digest, sha256) SELECT repo, digest, sha256 FROM manifest_blobs
		WHERE repo = ? AND digest = ? ON CONFLICT DO NOTHING`), e.Repo, name); err != nil {
		return fmt.Errorf("apply event %d (%s): %w", e.Seq, e.Type, err)
	}
	return nil
}

// untrash removes the trash row of an item created again.
func (l *Log) untrash(ctx context.Context, tx *sql.Tx, e Event, kind, name string) error {
	if _, err := tx.ExecContext(ctx, l.q(`DELETE FROM retention_trash WHERE repo = ? AND kind = ? AND name = ?`), e.Repo, kind, name); err != nil {
		return fmt.Errorf("apply event %d (%s): %w", e.Seq, e.Type, err)
	}
	if kind == TrashManifest {
		if _, err := tx.ExecContext(ctx, l.q(`DELETE FROM trash_blobs WHERE repo = ? AND digest = ?`), e.Repo, name); err != nil {
			return fmt.Errorf("apply event %d (%s): %w", e.Seq, e.Type, err)
		}
	}
	return nil
}

// Policies returns the retention policies (name -> canonical JSON).
func (l *Log) Policies(ctx context.Context) (map[string]string, int64, error) {
	rows, err := l.db.QueryContext(ctx, `SELECT name, policy, seq FROM retention_policies ORDER BY name`)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	out := map[string]string{}
	var last int64
	for rows.Next() {
		var name, policy string
		var seq int64
		if err := rows.Scan(&name, &policy, &seq); err != nil {
			return nil, 0, err
		}
		out[name] = policy
		last = max(last, seq)
	}
	return out, last, rows.Err()
}

// TrashItem is something retention deleted that can still be restored.
type TrashItem struct {
	Repo, Kind, Name, Digest, SHA256, Policy string
	Seq, PutSeq                              int64     // the deleting event and the creating one
	Deleted                                  time.Time // the deleting event's time
}

// Trash calls fn for every restorable deletion, oldest first; repo ""
// means every repository.
func (l *Log) Trash(ctx context.Context, repo string, fn func(TrashItem) error) error {
	rows, err := l.db.QueryContext(ctx, l.q(`SELECT t.repo, t.kind, t.name, t.digest, t.sha256, t.policy, t.seq, t.put_seq, e.time_ns
		FROM retention_trash t JOIN events e ON e.seq = t.seq WHERE ? = '' OR t.repo = ? ORDER BY t.seq, t.kind, t.name`), repo, repo)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var it TrashItem
		var ns int64
		if err := rows.Scan(&it.Repo, &it.Kind, &it.Name, &it.Digest, &it.SHA256, &it.Policy, &it.Seq, &it.PutSeq, &ns); err != nil {
			return err
		}
		it.Deleted = time.Unix(0, ns).UTC()
		if err := fn(it); err != nil {
			return err
		}
	}
	return rows.Err()
}

// LastEventBefore returns the last event recorded at or before t (0 if
// none): what a purge of deletions older than t goes through.
func (l *Log) LastEventBefore(ctx context.Context, t time.Time) (int64, error) {
	var seq int64
	err := l.db.QueryRowContext(ctx, l.q(`SELECT COALESCE(MAX(seq), 0) FROM events WHERE time_ns <= ?`), t.UnixNano()).Scan(&seq)
	return seq, err
}

// RepoState is one repository as retention sees it.
type RepoState struct {
	Name      string
	Tags      []TagState
	Manifests []ManifestState
	Versions  []VersionState
}

// TagState is a tag: Set is when it was last set (a restored tag's, when
// it was set before its deletion).
type TagState struct {
	Name, Digest string
	Set          time.Time
	Version      bool // a native version's tag
}

// ManifestState is a manifest: Put is when it was (first) put.
type ManifestState struct {
	Digest, Subject string
	Children        []string
	Size            int64
	Put, LastPulled time.Time
}

// VersionState is a native version.
type VersionState struct {
	Name, Digest string
	Size         int64
	Published    time.Time
}

// RetentionState calls fn with every repository's tags, manifests and
// versions, their times and last pulls, one repository at a time.
func (l *Log) RetentionState(ctx context.Context, fn func(RepoState) error) error {
	repos, err := l.strings(ctx, `SELECT name FROM repositories ORDER BY name LIMIT ?`, -1)
	if err != nil {
		return err
	}
	for _, repo := range repos {
		st, err := l.repoState(ctx, repo)
		if err != nil {
			return err
		}
		if err := fn(st); err != nil {
			return err
		}
	}
	return nil
}

func (l *Log) repoState(ctx context.Context, repo string) (RepoState, error) {
	st := RepoState{Name: repo}
	ts := func(ns int64) time.Time {
		if ns == 0 {
			return time.Time{}
		}
		return time.Unix(0, ns).UTC()
	}
	err := l.each(ctx, `SELECT t.tag, t.digest, e.time_ns, EXISTS (SELECT 1 FROM versions v WHERE v.repo = t.repo AND v.version = t.tag)
		FROM tags t JOIN events e ON e.seq = CASE WHEN t.since_seq > 0 THEN t.since_seq ELSE t.seq END WHERE t.repo = ? ORDER BY t.tag`, []any{repo}, func(rows *sql.Rows) error {
		var t TagState
		var ns int64
		if err := rows.Scan(&t.Name, &t.Digest, &ns, &t.Version); err != nil {
			return err
		}
		t.Set = ts(ns)
		st.Tags = append(st.Tags, t)
		return nil
	})
	if err != nil {
		return st, err
	}
	idx := map[string]int{}
	err = l.each(ctx, `SELECT m.digest, m.subject, m.size, e.time_ns, COALESCE(p.last_ns, 0)
		FROM manifests m JOIN events e ON e.seq = m.seq LEFT JOIN manifest_pulls p ON p.repo = m.repo AND p.digest = m.digest
		WHERE m.repo = ? ORDER BY m.digest`, []any{repo}, func(rows *sql.Rows) error {
		var m ManifestState
		var put, pulled int64
		if err := rows.Scan(&m.Digest, &m.Subject, &m.Size, &put, &pulled); err != nil {
			return err
		}
		m.Put, m.LastPulled = ts(put), ts(pulled)
		idx[m.Digest] = len(st.Manifests)
		st.Manifests = append(st.Manifests, m)
		return nil
	})
	if err != nil {
		return st, err
	}
	err = l.each(ctx, `SELECT digest, child FROM manifest_children WHERE repo = ? ORDER BY digest, child`, []any{repo}, func(rows *sql.Rows) error {
		var d, c string
		if err := rows.Scan(&d, &c); err != nil {
			return err
		}
		if i, ok := idx[d]; ok {
			st.Manifests[i].Children = append(st.Manifests[i].Children, c)
		}
		return nil
	})
	if err != nil {
		return st, err
	}
	err = l.each(ctx, `SELECT v.version, v.oci_digest, v.native_size, e.time_ns FROM versions v
		JOIN events e ON e.seq = CASE WHEN v.since_seq > 0 THEN v.since_seq ELSE v.seq END
		WHERE v.repo = ? ORDER BY v.version`, []any{repo}, func(rows *sql.Rows) error {
		var v VersionState
		var ns int64
		if err := rows.Scan(&v.Name, &v.Digest, &v.Size, &ns); err != nil {
			return err
		}
		v.Published = ts(ns)
		st.Versions = append(st.Versions, v)
		return nil
	})
	return st, err
}

// RepoStorage is what one repository holds: the blobs it links, the
// bytes of its manifests and native versions, each counted once per
// repository. Unique bytes are held by no other repository; shared bytes
// by others too (stored once for all).
type RepoStorage struct {
	Repo        string `json:"repository"`
	Blobs       int64  `json:"blobs"`
	Bytes       int64  `json:"bytes"`
	UniqueBytes int64  `json:"uniqueBytes"`
	SharedBytes int64  `json:"sharedBytes"`
}

// Storage calls fn with every repository's storage, in name order.
func (l *Log) Storage(ctx context.Context, fn func(RepoStorage) error) error {
	return l.each(ctx, `WITH held AS (
			SELECT repo, sha256 FROM blob_links
			UNION SELECT repo, sha256 FROM manifests
			UNION SELECT repo, native_sha256 FROM versions),
		holders AS (SELECT sha256, COUNT(*) AS n FROM held GROUP BY sha256)
		SELECT h.repo, COUNT(*), COALESCE(SUM(b.size), 0),
			COALESCE(SUM(CASE WHEN c.n = 1 THEN b.size ELSE 0 END), 0),
			COALESCE(SUM(CASE WHEN c.n > 1 THEN b.size ELSE 0 END), 0)
		FROM held h JOIN blobs b ON b.sha256 = h.sha256 JOIN holders c ON c.sha256 = h.sha256
		GROUP BY h.repo ORDER BY h.repo`, nil, func(rows *sql.Rows) error {
		var s RepoStorage
		if err := rows.Scan(&s.Repo, &s.Blobs, &s.Bytes, &s.UniqueBytes, &s.SharedBytes); err != nil {
			return err
		}
		return fn(s)
	})
}

// each runs query and calls fn for each row.
func (l *Log) each(ctx context.Context, query string, args []any, fn func(*sql.Rows) error) error {
	rows, err := l.db.QueryContext(ctx, l.q(query), args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Project records evs, events of another log, verbatim (their sequence
// numbers, times and hashes) and applies them to l's views, without
// guards: it makes l a copy of that log up to the last of them, for
// reading past states (a retention simulation). l must be a scratch log
// of its own that nothing else appends to.
func (l *Log) Project(ctx context.Context, evs []Event) error {
	l.commitMu.Lock()
	defer l.commitMu.Unlock()
	if l.cache != nil {
		defer l.cache.reset()
	}
	defer l.repos.reset() // what apply noted here is not committed by record
	tx, err := l.begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, e := range evs {
		if _, err := tx.ExecContext(ctx, l.q(insertEvents+eventValues), eventRow(e)...); err != nil {
			return fmt.Errorf("project event %d: %w", e.Seq, err)
		}
		if err := l.apply(ctx, tx, e); err != nil {
			return err
		}
	}
	return tx.Commit()
}
