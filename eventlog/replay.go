package eventlog

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"
)

// replayPage is how many events Replay holds in memory at once.
const replayPage = 10_000

// Replay drops every view row and rebuilds the views from the log, in one
// transaction: readers see either the old views or the rebuilt ones. It
// checks the hash chain as it goes and refuses to build views from a log
// whose chain is broken. It returns the number of events applied. Where the
// dialect says how (Dialect.Analyze), it then gathers the rebuilt views'
// statistics.
func (l *Log) Replay(ctx context.Context) (int64, error) {
	l.commitMu.Lock()
	defer l.commitMu.Unlock()
	if l.cache != nil {
		defer l.cache.reset() // after the commit: entries read before it go
	}
	l.repos.reset() // the rows go with the views, and apply must insert them again
	defer l.repos.reset()
	tx, err := l.begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	for _, t := range viewTables {
		if _, err := tx.ExecContext(ctx, `DELETE FROM `+t); err != nil {
			return 0, fmt.Errorf("clear view %s: %w", t, err)
		}
	}
	var n int64
	prev := genesis
	for {
		// Read a page, then apply it: a database/sql transaction cannot
		// interleave reading rows with writes on its one connection.
		evs, err := l.page(ctx, tx, n, replayPage)
		if err != nil {
			return 0, err
		}
		for _, e := range evs {
			if e.Seq != n+1 || !bytes.Equal(e.PrevHash, prev) || !bytes.Equal(chainHash(e), e.Hash) {
				return 0, fmt.Errorf("replay: event %d breaks the hash chain; run verify", e.Seq)
			}
			if err := l.apply(ctx, tx, e); err != nil {
				return 0, err
			}
			n, prev = e.Seq, e.Hash
		}
		if len(evs) < replayPage {
			break
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, err
	}
	if l.dialect.Analyze != "" {
		// Statistics only: the rebuild has committed whatever this says.
		if _, err := l.db.ExecContext(ctx, l.dialect.Analyze+" "+strings.Join(viewTables, ", ")); err != nil {
			return n, fmt.Errorf("replay: the views are rebuilt, but analyzing them failed (autovacuum will): %w", err)
		}
	}
	return n, nil
}

func (l *Log) page(ctx context.Context, tx *sql.Tx, after int64, limit int) ([]Event, error) {
	rows, err := tx.QueryContext(ctx, l.q(`SELECT seq, time_ns, type, repo, payload, prev_hash, hash, actor FROM events WHERE seq > ? ORDER BY seq LIMIT ?`), after, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var evs []Event
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, err
		}
		evs = append(evs, e)
	}
	return evs, rows.Err()
}

// Dump returns every view row as text, sorted, keyed by view name. Two logs
// with equal dumps serve identical state; the replay tests compare them.
func (l *Log) Dump(ctx context.Context) (map[string][]string, error) {
	out := make(map[string][]string)
	for _, t := range viewTables {
		rows, err := l.db.QueryContext(ctx, `SELECT * FROM `+t)
		if err != nil {
			return nil, err
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				rows.Close()
				return nil, err
			}
			parts := make([]string, len(cols))
			for i, v := range vals {
				if b, ok := v.([]byte); ok {
					v = string(b)
				}
				parts[i] = fmt.Sprintf("%s=%v", cols[i], v)
			}
			out[t] = append(out[t], strings.Join(parts, " "))
		}
		rows.Close()
		sort.Strings(out[t])
	}
	return out, nil
}
