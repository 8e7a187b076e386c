package eventlog

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// Version is a repository tag seen as a version of an artifact: published
// natively (Native set), or pushed over /v2/ by an OCI client.
type Version struct {
	Repo         string
	Version      string
	Seq          int64     // of the tag.set that last moved the tag
	Time         time.Time // of that event
	Manifest     Manifest  // what the tag points at
	NativeSHA256 string    // the native manifest blob; empty for OCI pushes
	NativeBLAKE3 string
	NativeSize   int64
}

// VersionQuery selects versions, newest (most recently tagged) first.
type VersionQuery struct {
	Repo         string            // one repository, or all when empty
	ArtifactType string            // only this artifact type, when set
	Annotations  map[string]string // only versions carrying all of these
	Before       int64             // only versions tagged before this seq (a cursor); 0 for none
	Limit        int
}

const versionCols = `t.repo, t.tag, t.seq, ev.time_ns,
	m.repo, m.digest, m.sha256, m.media_type, m.artifact_type, m.size, m.subject, m.annotations,
	COALESCE(v.native_sha256, ''), COALESCE(v.native_blake3, ''), COALESCE(v.native_size, 0)`

const versionFrom = ` FROM tags t
	JOIN manifests m ON m.repo = t.repo AND m.digest = t.digest
	JOIN events ev ON ev.seq = t.seq
	LEFT JOIN versions v ON v.repo = t.repo AND v.version = t.tag`

func scanVersion(row interface{ Scan(...any) error }) (Version, error) {
	var v Version
	var ns int64
	var ann string
	err := row.Scan(&v.Repo, &v.Version, &v.Seq, &ns,
		&v.Manifest.Repo, &v.Manifest.Digest, &v.Manifest.SHA256, &v.Manifest.MediaType, &v.Manifest.ArtifactType,
		&v.Manifest.Size, &v.Manifest.Subject, &ann, &v.NativeSHA256, &v.NativeBLAKE3, &v.NativeSize)
	if err != nil {
		return v, err
	}
	v.Time = time.Unix(0, ns).UTC()
	v.Manifest.Annotations, err = decodeAnnotations(v.Manifest.Digest, ann)
	return v, err
}

// Version returns one version of repo.
func (l *Log) Version(ctx context.Context, repo, version string) (Version, error) {
	v, err := scanVersion(l.db.QueryRowContext(ctx, l.q(`SELECT `+versionCols+versionFrom+` WHERE t.repo = ? AND t.tag = ?`), repo, version))
	return v, notFound(err, "version "+version)
}

// NativeVersion reports whether repo's version was published natively
// (and so is immutable).
func (l *Log) NativeVersion(ctx context.Context, repo, version string) (bool, error) {
	var n int
	err := l.db.QueryRowContext(ctx, l.q(`SELECT COUNT(*) FROM versions WHERE repo = ? AND version = ?`), repo, version).Scan(&n)
	return n > 0, err
}

// Versions lists versions matching q, newest first.
func (l *Log) Versions(ctx context.Context, q VersionQuery) ([]Version, error) {
	query := `SELECT ` + versionCols + versionFrom + ` WHERE 1 = 1`
	var args []any
	if q.Repo != "" {
		query += ` AND t.repo = ?`
		args = append(args, q.Repo)
	}
	if q.Before > 0 {
		query += ` AND t.seq < ?`
		args = append(args, q.Before)
	}
	if q.ArtifactType != "" {
		query += ` AND m.artifact_type = ?`
		args = append(args, q.ArtifactType)
	}
	for k, v := range q.Annotations {
		query += ` AND EXISTS (SELECT 1 FROM manifest_annotations a WHERE a.repo = m.repo AND a.digest = m.digest AND a.key = ? AND a.value = ?)`
		args = append(args, k, v)
	}
	if q.Limit <= 0 {
		q.Limit = 100
	}
	query += ` ORDER BY t.seq DESC LIMIT ?`
	args = append(args, q.Limit)
	rows, err := l.db.QueryContext(ctx, l.q(query), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Version
	for rows.Next() {
		v, err := scanVersion(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// NativeVersionOf returns the native version of repo whose derived OCI
// manifest is digest, if any.
func (l *Log) NativeVersionOf(ctx context.Context, repo, digest string) (string, bool, error) {
	var v string
	err := l.db.QueryRowContext(ctx, l.q(`SELECT version FROM versions WHERE repo = ? AND oci_digest = ? LIMIT 1`), repo, digest).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	return v, err == nil, err
}
