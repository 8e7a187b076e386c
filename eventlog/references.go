package eventlog

import "context"

// ManifestRef is a row of the manifest_blobs view joined with what the
// repository holds: a blob a manifest recorded as needed, and whether the
// repository still links it and the log still knows its bytes.
type ManifestRef struct {
	Repo      string
	Digest    string // the manifest
	SHA256    string // the blob it needs
	Linked    bool   // the repository links the blob (holds the child)
	Committed bool   // the blobs view has the blob
	// Child marks an index's child manifest: SHA256 is then the child's
	// digest, Linked says whether the repository still holds it, and
	// Committed is always true.
	Child bool
}

// ManifestRefs calls fn for every blob every manifest needs, in (repo,
// manifest, blob) order, then for every child every index names. Through
// the API a needed blob is always linked and committed, and a child
// present (Append's guards); verify reports rows where it is not.
func (l *Log) ManifestRefs(ctx context.Context, fn func(ManifestRef) error) error {
	rows, err := l.db.QueryContext(ctx, `SELECT mb.repo, mb.digest, mb.sha256,
		EXISTS (SELECT 1 FROM blob_links k WHERE k.repo = mb.repo AND k.sha256 = mb.sha256),
		EXISTS (SELECT 1 FROM blobs b WHERE b.sha256 = mb.sha256)
		FROM manifest_blobs mb ORDER BY mb.repo, mb.digest, mb.sha256`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var r ManifestRef
		if err := rows.Scan(&r.Repo, &r.Digest, &r.SHA256, &r.Linked, &r.Committed); err != nil {
			return err
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	rows.Close()
	crows, err := l.db.QueryContext(ctx, `SELECT mc.repo, mc.digest, mc.child,
		EXISTS (SELECT 1 FROM manifests m WHERE m.repo = mc.repo AND m.digest = mc.child)
		FROM manifest_children mc ORDER BY mc.repo, mc.digest, mc.child`)
	if err != nil {
		return err
	}
	defer crows.Close()
	for crows.Next() {
		r := ManifestRef{Committed: true, Child: true}
		if err := crows.Scan(&r.Repo, &r.Digest, &r.SHA256, &r.Linked); err != nil {
			return err
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return crows.Err()
}
