package eventlog

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
)

// viewTables lists every view, in the order Replay clears them.
var viewTables = []string{"blobs", "blob_digests", "repositories", "blob_links", "manifests", "tags", "referrers", "uploads", "versions", "manifest_annotations", "manifest_blobs", "manifest_children", "api_keys", "blob_tombstones",
	"retention_policies", "manifest_pulls", "retention_trash", "trash_blobs", "contents", "upload_counts", "ended_uploads"}

// endUpload removes upload id from uploads and from upload_counts, which
// counts it under its repository and under the empty name, the total (a
// session already ended counts nowhere), dropping counts that reach zero.
// An end whose id stays valid past the event (end.IDExpires) is kept in
// ended_uploads until then; each such end drops the ids expired by its
// time, so the view's size follows the ends of the last ID lifetime.
//
// An end recorded as the whole of its session (UploadFinished.Unrecorded)
// has no uploads row to remove and no count to drop: Append refuses it
// when the id has an uploads or ended_uploads row (guard), so the three
// statements that would find nothing are not sent (a small push's end
// is one of them: 3 of its 13 statements on PostgreSQL).
func endUpload(exec func(string, ...any) error, e Event, id string, end SessionEnd, unrecorded bool) error {
	if at := e.Time.UnixNano(); end.IDExpires > at {
		if err := exec(`DELETE FROM ended_uploads WHERE id_expires_ns < ?`, at); err != nil {
			return err
		}
		if err := exec(`INSERT INTO ended_uploads (id, id_expires_ns) VALUES (?, ?) ON CONFLICT (id) DO NOTHING`, id, end.IDExpires); err != nil {
			return err
		}
	}
	if unrecorded {
		return nil
	}
	const counted = `repo IN (SELECT repo FROM uploads WHERE id = ? UNION ALL SELECT '' FROM uploads WHERE id = ?)`
	if err := exec(`UPDATE upload_counts SET n = n - 1 WHERE `+counted, id, id); err != nil {
		return err
	}
	if err := exec(`DELETE FROM upload_counts WHERE n = 0 AND `+counted, id, id); err != nil {
		return err
	}
	return exec(`DELETE FROM uploads WHERE id = ?`, id)
}

// apply projects one event into the views. It must depend only on the event
// and the views' current rows, so that replay reproduces the same state.
func (l *Log) apply(ctx context.Context, tx *sql.Tx, e Event) error {
	exec := func(query string, args ...any) error {
		_, err := tx.ExecContext(ctx, l.q(query), args...)
		if err != nil {
			return fmt.Errorf("apply event %d (%s): %w", e.Seq, e.Type, err)
		}
		return nil
	}
	repo := func() error {
		if _, ok := l.repos.known[e.Repo]; ok {
			return nil // the row exists, and rows of repositories are never deleted
		}
		if err := exec(`INSERT INTO repositories (name, seq) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`, e.Repo, e.Seq); err != nil {
			return err
		}
		l.repos.pending = append(l.repos.pending, e.Repo)
		return nil
	}
	switch e.Type {
	case TypeBlobCommitted:
		var v blobCommittedView // the content is bound, not kept: no copy
		if err := e.Decode(&v); err != nil {
			return err
		}
		p := v.value()
		// used_seq: the last event that committed the blob or stopped a
		// use of it; the collector's grace counts from it (gc.go). A
		// commit that carries the bytes makes the tier 'inline', from any
		// other: the log then holds whole bytes whatever became of a
		// stored copy (a push of the same content repairs a damaged
		// file). A commit without leaves the tier. A copy the tier no
		// longer names goes when the blob is collected (from every store).
		tier := TierHot
		if p.Content != nil {
			// The same key is the same bytes: writing them again changes
			// nothing but a row damaged by hand, which it repairs.
			tier = TierInline
			if err := exec(`INSERT INTO contents (sha256, bytes) VALUES (?, ?) ON CONFLICT (sha256) DO UPDATE SET bytes = excluded.bytes`, p.SHA256, p.Content); err != nil {
				return err
			}
		}
		if err := exec(`INSERT INTO blobs (sha256, blake3, size, tier, seq, used_seq) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (sha256) DO UPDATE SET used_seq = excluded.used_seq,
			tier = CASE WHEN excluded.tier = '`+TierInline+`' THEN excluded.tier ELSE blobs.tier END`, p.SHA256, p.BLAKE3, p.Size, tier, e.Seq, e.Seq); err != nil {
			return err
		}
		// The blob's other digests; its sha256 is its key (keyOf).
		digests := [][]any{{p.BLAKE3, p.SHA256}}
		if p.SHA512 != "" {
			digests = append(digests, []any{p.SHA512, p.SHA256})
		}
		if err := l.insertRows(ctx, tx, `INSERT INTO blob_digests (digest, sha256) VALUES %s ON CONFLICT (digest) DO NOTHING`, digests); err != nil {
			return fmt.Errorf("apply event %d (%s): %w", e.Seq, e.Type, err)
		}
		return nil
	case TypeBlobTiered:
		var p BlobTiered
		if err := e.Decode(&p); err != nil {
			return err
		}
		return exec(`UPDATE blobs SET tier = ?, tier_seq = ? WHERE sha256 = ?`, p.Tier, e.Seq, p.SHA256)
	case TypeBlobLinked:
		var p BlobLinked
		if err := e.Decode(&p); err != nil {
			return err
		}
		if err := repo(); err != nil {
			return err
		}
		// seq is the last event that linked the blob: a push of it again
		// renews the link, which the collector's grace counts from.
		return exec(`INSERT INTO blob_links (repo, sha256, seq) VALUES (?, ?, ?) ON CONFLICT (repo, sha256) DO UPDATE SET seq = excluded.seq`, e.Repo, p.SHA256, e.Seq)
	case TypeBlobUnlinked:
		var p BlobUnlinked
		if err := e.Decode(&p); err != nil {
			return err
		}
		if err := exec(`UPDATE blobs SET used_seq = ? WHERE sha256 = ?`, e.Seq, p.SHA256); err != nil {
			return err
		}
		return exec(`DELETE FROM blob_links WHERE repo = ? AND sha256 = ?`, e.Repo, p.SHA256)
	case TypeManifestPut:
		var p ManifestPut
		if err := e.Decode(&p); err != nil {
			return err
		}
		if err := repo(); err != nil {
			return err
		}
		if err := l.untrash(ctx, tx, e, TrashManifest, p.Digest); err != nil {
			return err
		}
		ann := "{}"
		if len(p.Annotations) > 0 {
			b, _ := json.Marshal(p.Annotations) // map keys are sorted: deterministic
			ann = string(b)
		}
		partial := 1
		if p.Complete {
			partial = 0
		}
		if err := exec(`INSERT INTO manifests (repo, digest, sha256, media_type, artifact_type, size, subject, annotations, seq, partial)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (repo, digest) DO UPDATE SET sha256 = excluded.sha256, media_type = excluded.media_type,
			artifact_type = excluded.artifact_type, size = excluded.size, subject = excluded.subject, annotations = excluded.annotations,
			partial = excluded.partial`,
			e.Repo, p.Digest, p.SHA256, p.MediaType, p.ArtifactType, p.Size, p.Subject, ann, e.Seq, partial); err != nil {
			return err
		}
		// The rows a manifest owns in its side views are replaced whole:
		// a put of the same digest again leaves exactly what it says.
		var annotations, blobs, children [][]any
		for k, v := range p.Annotations {
			annotations = append(annotations, []any{e.Repo, p.Digest, k, v})
		}
		for _, b := range p.Blobs {
			blobs = append(blobs, []any{e.Repo, p.Digest, b})
		}
		for _, c := range p.Manifests {
			children = append(children, []any{e.Repo, p.Digest, c})
		}
		for _, r := range []struct {
			table, cols string
			rows        [][]any
		}{
			{"manifest_annotations", "repo, digest, key, value", annotations},
			{"manifest_blobs", "repo, digest, sha256", blobs},
			{"manifest_children", "repo, digest, child", children},
		} {
			if err := exec(`DELETE FROM `+r.table+` WHERE repo = ? AND digest = ?`, e.Repo, p.Digest); err != nil {
				return err
			}
			if err := l.insertRows(ctx, tx, `INSERT INTO `+r.table+` (`+r.cols+`) VALUES %s ON CONFLICT DO NOTHING`, r.rows); err != nil {
				return fmt.Errorf("apply event %d (%s): %w", e.Seq, e.Type, err)
			}
		}
		if p.Subject == "" {
			return nil
		}
		return exec(`INSERT INTO referrers (repo, subject, digest) VALUES (?, ?, ?) ON CONFLICT (repo, subject, digest) DO NOTHING`, e.Repo, p.Subject, p.Digest)
	case TypeManifestDeleted:
		var p ManifestDeleted
		if err := e.Decode(&p); err != nil {
			return err
		}
		if err := l.trashDeleted(ctx, tx, e, TrashManifest, p.Digest, p.Retention); err != nil {
			return err
		}
		if err := exec(`UPDATE blobs SET used_seq = ? WHERE sha256 IN (SELECT sha256 FROM manifests WHERE repo = ? AND digest = ?)`, e.Seq, e.Repo, p.Digest); err != nil {
			return err
		}
		for _, q := range []string{
			`DELETE FROM manifests WHERE repo = ? AND digest = ?`,
			`DELETE FROM tags WHERE repo = ? AND digest = ?`,
			`DELETE FROM referrers WHERE repo = ? AND digest = ?`,
			`DELETE FROM manifest_annotations WHERE repo = ? AND digest = ?`,
			`DELETE FROM manifest_blobs WHERE repo = ? AND digest = ?`,
			`DELETE FROM manifest_children WHERE repo = ? AND digest = ?`,
		} {
			if err := exec(q, e.Repo, p.Digest); err != nil {
				return err
			}
		}
		return nil
	case TypeTagSet:
		var p TagSet
		if err := e.Decode(&p); err != nil {
			return err
		}
		if err := repo(); err != nil {
			return err
		}
		if err := l.untrash(ctx, tx, e, TrashTag, p.Tag); err != nil {
			return err
		}
		return exec(`INSERT INTO tags (repo, tag, digest, seq, since_seq) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (repo, tag) DO UPDATE SET digest = excluded.digest, seq = excluded.seq, since_seq = excluded.since_seq`, e.Repo, p.Tag, p.Digest, e.Seq, p.Restores)
	case TypeTagDeleted:
		var p TagDeleted
		if err := e.Decode(&p); err != nil {
			return err
		}
		if err := l.trashDeleted(ctx, tx, e, TrashTag, p.Tag, p.Retention); err != nil {
			return err
		}
		return exec(`DELETE FROM tags WHERE repo = ? AND tag = ?`, e.Repo, p.Tag)
	case TypeVersionPublished:
		var p VersionPublished
		if err := e.Decode(&p); err != nil {
			return err
		}
		// Versions are immutable: a second publish that lost a race with
		// the first fails here, inside the append, not on a constraint.
		if again, err := l.found(ctx, tx, `SELECT 1 FROM versions WHERE repo = ? AND version = ?`, e.Repo, p.Version); err != nil {
			return err
		} else if again {
			return fmt.Errorf("%w: version %s:%s is already published", ErrConflict, e.Repo, p.Version)
		}
		if err := l.untrash(ctx, tx, e, TrashVersion, p.Version); err != nil {
			return err
		}
		return exec(`INSERT INTO versions (repo, version, native_sha256, native_blake3, native_size, oci_digest, seq, since_seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			e.Repo, p.Version, p.NativeSHA256, p.NativeBLAKE3, p.NativeSize, p.OCIDigest, e.Seq, p.Restores)
	case TypeVersionDeleted:
		var p VersionDeleted
		if err := e.Decode(&p); err != nil {
			return err
		}
		if err := l.trashDeleted(ctx, tx, e, TrashVersion, p.Version, p.Retention); err != nil {
			return err
		}
		if err := exec(`UPDATE blobs SET used_seq = ? WHERE sha256 IN (SELECT native_sha256 FROM versions WHERE repo = ? AND version = ?)`, e.Seq, e.Repo, p.Version); err != nil {
			return err
		}
		return exec(`DELETE FROM versions WHERE repo = ? AND version = ?`, e.Repo, p.Version)
	case TypeUploadStarted:
		var p UploadStarted
		if err := e.Decode(&p); err != nil {
			return err
		}
		// A session that has ended stays ended, even for a writer whose
		// lease lapsed while the end was recorded: the append fails
		// whole, as a second publish of a version does.
		if ended, err := l.found(ctx, tx, `SELECT 1 FROM ended_uploads WHERE id = ?`, p.ID); err != nil {
			return err
		} else if ended {
			return fmt.Errorf("%w: upload %s has ended", ErrConflict, p.ID)
		}
		if err := exec(`INSERT INTO uploads (id, repo, started_ns, seq) VALUES (?, ?, ?, ?)`, p.ID, e.Repo, e.Time.UnixNano(), e.Seq); err != nil {
			return err
		}
		if e.Repo == "" { // the library allows it; the total row counts it once
			return exec(`INSERT INTO upload_counts (repo, n) VALUES ('', 1) ON CONFLICT (repo) DO UPDATE SET n = upload_counts.n + 1`)
		}
		return exec(`INSERT INTO upload_counts (repo, n) VALUES (?, 1), ('', 1) ON CONFLICT (repo) DO UPDATE SET n = upload_counts.n + 1`, e.Repo)
	case TypeUploadFinished:
		var p UploadFinished
		if err := e.Decode(&p); err != nil {
			return err
		}
		return endUpload(exec, e, p.ID, p.SessionEnd, p.Unrecorded)
	case TypeUploadCancelled:
		var p UploadCancelled
		if err := e.Decode(&p); err != nil {
			return err
		}
		return endUpload(exec, e, p.ID, p.SessionEnd, false)
	case TypeAPIKeyCreated, TypeAPIKeyRevoked:
		return l.applyAPIKey(ctx, tx, e)
	case TypeGCCondemned, TypeGCSwept:
		return l.applyGC(ctx, tx, e)
	case TypePolicySet, TypePolicyRemoved, TypeTrashPurged, TypeManifestPulled:
		return l.applyRetention(ctx, tx, e)
	}
	return fmt.Errorf("apply event %d: unknown type %q", e.Seq, e.Type)
}

// ErrConflict is returned by Append when an event contradicts the views'
// invariants (an immutable version): nothing of that append is recorded.
var ErrConflict = errors.New("conflict")
