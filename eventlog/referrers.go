package eventlog

import "context"

// ReferrersQuery selects one page of the manifests whose subject is a
// digest, in digest order.
type ReferrersQuery struct {
	Repo         string
	Subject      string // the subject's digest
	ArtifactType string // only manifests of this artifact type, when set
	After        string // only digests that sort after this (the previous page's last)
	Limit        int    // at most this many (default 100)
	// MaxBytes, when positive, also bounds the page by the size of the
	// referrers' annotations (plus ReferrerOverhead each): referrers are
	// added while the bytes so far are below it, and at least one is.
	MaxBytes int64
}

// ReferrerOverhead is what one referrer counts towards
// ReferrersQuery.MaxBytes besides its annotations.
const ReferrerOverhead = 256

// Referrers returns one page of q.Repo's manifests whose subject is
// q.Subject, and whether more follow the page. It reads the annotations'
// sizes first, then only the manifests that fit the page, so memory stays
// within about MaxBytes whatever the manifests carry.
func (l *Log) Referrers(ctx context.Context, q ReferrersQuery) ([]Manifest, bool, error) {
	if q.Limit <= 0 {
		q.Limit = 100
	}
	const from = ` FROM referrers r JOIN manifests m ON m.repo = r.repo AND m.digest = r.digest
		WHERE r.repo = ? AND r.subject = ? AND r.digest > ?`
	args := []any{q.Repo, q.Subject, q.After}
	filter := ``
	if q.ArtifactType != "" {
		filter = ` AND m.artifact_type = ?`
		args = append(args, q.ArtifactType)
	}
	last, n, more, err := l.referrersEnd(ctx, from+filter, args, q)
	if err != nil || n == 0 {
		return nil, false, err
	}
	rows, err := l.db.QueryContext(ctx, l.q(`SELECT m.repo, m.digest, m.sha256, m.media_type, m.artifact_type, m.size, m.subject, m.annotations`+
		from+filter+` AND r.digest <= ? ORDER BY r.digest LIMIT ?`), append(args, last, n)...)
	if err != nil {
		return nil, false, err
	}
	defer rows.Close()
	out := make([]Manifest, 0, n)
	for rows.Next() {
		m, err := scanManifest(rows)
		if err != nil {
			return nil, false, err
		}
		out = append(out, m)
	}
	return out, more, rows.Err()
}

// referrersEnd reads the annotation sizes of up to q.Limit referrers and
// returns the digest of the last that fits q.MaxBytes, how many that is,
// and whether more follow.
func (l *Log) referrersEnd(ctx context.Context, from string, args []any, q ReferrersQuery) (last string, n int, more bool, err error) {
	rows, err := l.db.QueryContext(ctx, l.q(`SELECT r.digest, length(m.annotations)`+from+` ORDER BY r.digest LIMIT ?`), append(args, q.Limit+1)...)
	if err != nil {
		return "", 0, false, err
	}
	defer rows.Close()
	var used int64
	for rows.Next() {
		if n == q.Limit || (q.MaxBytes > 0 && used >= q.MaxBytes) {
			return last, n, true, nil
		}
		var size int64
		if err := rows.Scan(&last, &size); err != nil {
			return "", 0, false, err
		}
		used += size + ReferrerOverhead
		n++
	}
	return last, n, false, rows.Err()
}
