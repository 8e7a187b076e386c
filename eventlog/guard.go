package eventlog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// ErrReferenceMissing is returned by Append when a manifest.put names a
// blob or child manifest that its repository does not hold at that moment:
// nothing of that append is recorded.
var ErrReferenceMissing = errors.New("reference missing")

// ErrUploadTaken is returned by Append, with ErrConflict, when an
// upload.finished of a session never recorded (UploadFinished.Unrecorded)
// finds that its id was recorded or ended first: nothing of that append is
// recorded, and its writer may finish the session as a recorded one.
var ErrUploadTaken = errors.New("upload session recorded or ended")

// guard checks an event against the views as they stand inside its append,
// before it is recorded. Checks made here cannot race: the append holds the
// log's write transaction, so no other append runs between the check and
// the event. Unlike the checks in apply, guards run only for new appends,
// never on replay: history recorded before a guard existed replays as it
// was recorded.
//
// Invariants kept:
//   - a manifest is recorded only if its repository links every blob it
//     names in Blobs and holds every child it names in Manifests;
//   - a blob is never unlinked from a repository with a manifest that
//     names it in Blobs (the manifest_blobs view), nor a manifest deleted
//     while an index of the repository names it in Manifests
//     (manifest_children);
//   - a native version is published only under a tag name that is free or
//     already points at its derived manifest, and its tag never moves;
//   - the derived manifest and the tag of a native version are deleted
//     only after the version itself.
//   - a live API key's name is unique, and only a live key is revoked
//     (apikeys.go);
//   - an upload.finished that says its session was never recorded is
//     the only event of that id: no upload.started or end of it precedes;
//   - the garbage collector's ordering (gc.go): a blob is condemned only
//     while nothing uses it, and no event records, links or uses the bytes
//     of a blob a collection may have deleted.
//
// facts, when not nil, answers the most frequent checks for the whole
// group (facts.go); an answer it does not have is asked here.
func (l *Log) guard(ctx context.Context, tx *sql.Tx, e Event, committed committedHere, facts *groupFacts) error {
	switch e.Type {
	case TypeAPIKeyCreated, TypeAPIKeyRevoked:
		return l.guardAPIKey(ctx, tx, e)
	case TypeGCCondemned:
		return l.guardCondemned(ctx, tx, e)
	case TypeGCSwept:
		return l.guardSwept(ctx, tx, e)
	case TypeBlobCommitted:
		return l.guardFenced(ctx, tx, e, facts)
	case TypeUploadFinished:
		var p UploadFinished
		if err := e.Decode(&p); err != nil {
			return err
		}
		if !p.Unrecorded || facts.uploadFree(p.ID) {
			return nil
		}
		taken, err := l.found(ctx, tx, `SELECT 1 FROM uploads WHERE id = ? UNION ALL SELECT 1 FROM ended_uploads WHERE id = ?`, p.ID, p.ID)
		if err != nil {
			return err
		}
		if taken {
			return fmt.Errorf("%w: %w: upload %s was recorded or has ended", ErrConflict, ErrUploadTaken, p.ID)
		}
	case TypeBlobTiered:
		var p BlobTiered
		if err := e.Decode(&p); err != nil {
			return err
		}
		if err := l.guardPresent(ctx, tx, p.SHA256, committed); err != nil {
			return err
		}
		// Content kept in the log has no copy in a store to move.
		if inline, err := l.found(ctx, tx, `SELECT 1 FROM blobs WHERE sha256 = ? AND tier = '`+TierInline+`'`, p.SHA256); err != nil || inline {
			if err == nil {
				err = fmt.Errorf("%w: blob %s is kept in the log; it has no tier to move to", ErrConflict, p.SHA256)
			}
			return err
		}
		return nil
	case TypeBlobLinked:
		var p BlobLinked
		if err := e.Decode(&p); err != nil {
			return err
		}
		return l.guardPresent(ctx, tx, p.SHA256, committed)
	case TypeManifestPut:
		var p ManifestPut
		if err := e.Decode(&p); err != nil {
			return err
		}
		if err := l.guardPresent(ctx, tx, p.SHA256, committed); err != nil {
			return err
		}
		if !facts.allLinked(e.Repo, p.Blobs) {
			b, err := l.firstMissing(ctx, tx, `SELECT sha256 FROM blob_links WHERE repo = ? AND sha256 IN (%s)`, []any{e.Repo}, p.Blobs)
			if err != nil {
				return err
			}
			if b != "" {
				return fmt.Errorf("%w: blob %s is not in repository %s (it was deleted meanwhile)", ErrReferenceMissing, b, e.Repo)
			}
		}
		c, err := l.firstMissing(ctx, tx, `SELECT digest FROM manifests WHERE repo = ? AND digest IN (%s)`, []any{e.Repo}, p.Manifests)
		if err != nil {
			return err
		}
		if c != "" {
			return fmt.Errorf("%w: manifest %s is not in repository %s (it was deleted meanwhile)", ErrReferenceMissing, c, e.Repo)
		}
	case TypeBlobUnlinked:
		var p BlobUnlinked
		if err := e.Decode(&p); err != nil {
			return err
		}
		if p.Mark > 0 {
			renewed, err := l.found(ctx, tx, `SELECT 1 FROM blob_links WHERE repo = ? AND sha256 = ? AND seq > ?`, e.Repo, p.SHA256, p.Mark)
			if err != nil {
				return err
			}
			if renewed {
				return fmt.Errorf("%w: blob %s was linked in %s again after the collector's mark (event %d)", ErrConflict, p.SHA256, e.Repo, p.Mark)
			}
		}
		var m string
		err := tx.QueryRowContext(ctx, l.q(`SELECT digest FROM manifest_blobs WHERE repo = ? AND sha256 = ? ORDER BY digest LIMIT 1`), e.Repo, p.SHA256).Scan(&m)
		if err == nil {
			return fmt.Errorf("%w: blob %s is used by manifest %s in %s; delete the manifest first", ErrConflict, p.SHA256, m, e.Repo)
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("check blob %s references: %w", p.SHA256, err)
		}
	case TypeVersionPublished:
		var p VersionPublished
		if err := e.Decode(&p); err != nil {
			return err
		}
		if err := l.guardPresent(ctx, tx, p.NativeSHA256, committed); err != nil {
			return err
		}
		ok, err := l.found(ctx, tx, `SELECT 1 FROM tags WHERE repo = ? AND tag = ? AND digest <> ?`, e.Repo, p.Version, p.OCIDigest)
		if err != nil {
			return err
		}
		if ok {
			return fmt.Errorf("%w: %s:%s is already a tag pushed over /v2/", ErrConflict, e.Repo, p.Version)
		}
	case TypeTagSet:
		var p TagSet
		if err := e.Decode(&p); err != nil {
			return err
		}
		// A native version's tag never moves (a publish sets it before
		// its version.published, so the version row is not there yet).
		if !facts.notVersion(e.Repo, p.Tag) {
			if moved, err := l.found(ctx, tx, `SELECT 1 FROM versions WHERE repo = ? AND version = ? AND oci_digest <> ?`, e.Repo, p.Tag, p.Digest); err != nil {
				return err
			} else if moved {
				return fmt.Errorf("%w: tag %s:%s is an immutable native version", ErrConflict, e.Repo, p.Tag)
			}
		}
		if p.Fixed {
			moved, err := l.found(ctx, tx, `SELECT 1 FROM tags WHERE repo = ? AND tag = ? AND digest <> ?`, e.Repo, p.Tag, p.Digest)
			if err != nil {
				return err
			}
			if moved {
				return fmt.Errorf("%w: tag %s:%s is immutable and was set to another manifest meanwhile", ErrConflict, e.Repo, p.Tag)
			}
		}
	case TypeVersionDeleted:
		var p VersionDeleted
		if err := e.Decode(&p); err != nil {
			return err
		}
		if p.Policy != "" {
			if there, err := l.found(ctx, tx, `SELECT 1 FROM versions WHERE repo = ? AND version = ?`, e.Repo, p.Version); err != nil {
				return err
			} else if !there {
				return fmt.Errorf("%w: version %s of %s is already gone", ErrNotFound, p.Version, e.Repo)
			}
		}
	case TypeTagDeleted:
		var p TagDeleted
		if err := e.Decode(&p); err != nil {
			return err
		}
		if err := l.guardRetention(ctx, tx, e, p.Retention, p.Tag, ""); err != nil {
			return err
		}
		native, err := l.found(ctx, tx, `SELECT 1 FROM versions WHERE repo = ? AND version = ?`, e.Repo, p.Tag)
		if err != nil {
			return err
		}
		if native {
			return fmt.Errorf("%w: tag %s:%s is an immutable native version; delete the version", ErrConflict, e.Repo, p.Tag)
		}
	case TypeManifestDeleted:
		var p ManifestDeleted
		if err := e.Decode(&p); err != nil {
			return err
		}
		if err := l.guardRetention(ctx, tx, e, p.Retention, "", p.Digest); err != nil {
			return err
		}
		var v string
		err := tx.QueryRowContext(ctx, l.q(`SELECT version FROM versions WHERE repo = ? AND oci_digest = ? ORDER BY version LIMIT 1`), e.Repo, p.Digest).Scan(&v)
		if err == nil {
			return fmt.Errorf("%w: manifest %s is the OCI view of native version %s:%s; delete the version", ErrConflict, p.Digest, e.Repo, v)
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("check manifest %s versions: %w", p.Digest, err)
		}
		var ix string
		err = tx.QueryRowContext(ctx, l.q(`SELECT digest FROM manifest_children WHERE repo = ? AND child = ? ORDER BY digest LIMIT 1`), e.Repo, p.Digest).Scan(&ix)
		if err == nil {
			return fmt.Errorf("%w: manifest %s is part of index %s in %s; delete the index first", ErrConflict, p.Digest, ix, e.Repo)
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("check manifest %s indexes: %w", p.Digest, err)
		}
	}
	return nil
}

// found reports whether query finds a row, inside the append; unlike
// exists, it reports a failed query rather than taking it for "no row".
func (l *Log) found(ctx context.Context, tx *sql.Tx, query string, args ...any) (bool, error) {
	var one int
	err := tx.QueryRowContext(ctx, l.q(query), args...).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("append check: %w", err)
	}
	return true, nil
}
