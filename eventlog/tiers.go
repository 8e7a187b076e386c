package eventlog

import (
	"context"
	"maps"
	"slices"
	"time"
)

// Tiers of the blobs view.
const (
	TierHot  = "hot"  // the primary store, where uploads land
	TierCold = "cold" // the object store that tiering moves blobs to
	// TierInline: the bytes are in the log, carried by the blob.committed
	// that recorded them, and read from the contents view (ADR 0016).
	// Tiering never moves such a blob.
	TierInline = "inline"
)

// TierCandidate is a blob the tiering policy may move.
type TierCandidate struct {
	Blob
	LastUsed time.Time // last read, or the commit if never read
	TierSeq  int64     // the blob.tiered event that put it in its tier
	TierTime time.Time // that event's time (zero when never moved)
}

// TierCandidates lists blobs in tier that were last used before usedBefore
// (zero: any) or are larger than largerThan (negative: any), at most limit.
func (l *Log) TierCandidates(ctx context.Context, tier string, usedBefore time.Time, largerThan int64, limit int) ([]TierCandidate, error) {
	before := int64(0) // no age rule: nothing was used before the epoch
	if !usedBefore.IsZero() {
		before = usedBefore.UnixNano()
	}
	q := `SELECT b.sha256, b.blake3, b.size, b.tier, COALESCE(r.last_ns, c.time_ns), b.tier_seq, COALESCE(t.time_ns, 0)
		FROM blobs b
		JOIN events c ON c.seq = b.seq
		LEFT JOIN events t ON t.seq = b.tier_seq
		LEFT JOIN blob_reads r ON r.sha256 = b.sha256
		WHERE b.tier = ? AND (COALESCE(r.last_ns, c.time_ns) < ? OR b.size > ?)
		ORDER BY b.sha256 LIMIT ?`
	if largerThan < 0 {
		largerThan = 1<<63 - 1
	}
	rows, err := l.db.QueryContext(ctx, l.q(q), tier, before, largerThan, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []TierCandidate
	for rows.Next() {
		var c TierCandidate
		var used, tiered int64
		if err := rows.Scan(&c.SHA256, &c.BLAKE3, &c.Size, &c.Tier, &used, &c.TierSeq, &tiered); err != nil {
			return nil, err
		}
		c.LastUsed = time.Unix(0, used).UTC()
		if tiered > 0 {
			c.TierTime = time.Unix(0, tiered).UTC()
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// MovedBlobs lists blobs moved to another tier by an event at or before
// movedBefore whose source copy has not been swept since (MarkSwept).
func (l *Log) MovedBlobs(ctx context.Context, movedBefore time.Time, limit int) ([]TierCandidate, error) {
	rows, err := l.db.QueryContext(ctx, l.q(`SELECT b.sha256, b.blake3, b.size, b.tier, b.tier_seq, t.time_ns
		FROM blobs b JOIN events t ON t.seq = b.tier_seq
		LEFT JOIN blob_sweeps w ON w.sha256 = b.sha256 AND w.tier_seq = b.tier_seq
		WHERE b.tier_seq > 0 AND t.time_ns <= ? AND w.sha256 IS NULL ORDER BY b.tier_seq LIMIT ?`), movedBefore.UnixNano(), limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []TierCandidate
	for rows.Next() {
		var c TierCandidate
		var tiered int64
		if err := rows.Scan(&c.SHA256, &c.BLAKE3, &c.Size, &c.Tier, &c.TierSeq, &tiered); err != nil {
			return nil, err
		}
		c.TierTime = time.Unix(0, tiered).UTC()
		out = append(out, c)
	}
	return out, rows.Err()
}

// RecordReads stores when blobs were last read (operational metadata for
// the tiering policy, not part of the log).
func (l *Log) RecordReads(ctx context.Context, reads map[string]time.Time) error {
	if len(reads) == 0 {
		return nil
	}
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	// In one order, the same in every replica: two flushes of the same
	// blobs in map order would lock their rows in different orders and
	// deadlock on PostgreSQL.
	for _, sha := range slices.Sorted(maps.Keys(reads)) {
		if _, err := tx.ExecContext(ctx, l.q(`INSERT INTO blob_reads (sha256, last_ns) VALUES (?, ?)
			ON CONFLICT (sha256) DO UPDATE SET last_ns = excluded.last_ns WHERE blob_reads.last_ns < excluded.last_ns`), sha, reads[sha].UnixNano()); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// MarkSwept records that the move recorded by tierSeq has had its source
// copy removed (or found gone).
func (l *Log) MarkSwept(ctx context.Context, sha256 string, tierSeq int64) error {
	_, err := l.db.ExecContext(ctx, l.q(`INSERT INTO blob_sweeps (sha256, tier_seq) VALUES (?, ?)
		ON CONFLICT (sha256) DO UPDATE SET tier_seq = excluded.tier_seq`), sha256, tierSeq)
	return err
}
