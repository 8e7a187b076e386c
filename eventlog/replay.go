package eventlog

import (
	"context"
	"fmt"
	"sort"
	"strings"
)

// Replay drops every view row and rebuilds the views from the log, in one
// transaction: readers see either the old views or the rebuilt ones. It
// returns the number of events applied.
func (l *Log) Replay(ctx context.Context) (int64, error) {
	l.commitMu.Lock()
	defer l.commitMu.Unlock()
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	for _, t := range viewTables {
		if _, err := tx.ExecContext(ctx, `DELETE FROM `+t); err != nil {
			return 0, fmt.Errorf("clear view %s: %w", t, err)
		}
	}
	// Read the events first: a database/sql transaction cannot interleave
	// reading rows with writes on the same connection.
	var evs []Event
	rows, err := tx.QueryContext(ctx, `SELECT seq, time_ns, type, repo, payload, prev_hash, hash FROM events ORDER BY seq`)
	if err != nil {
		return 0, err
	}
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			rows.Close()
			return 0, err
		}
		evs = append(evs, e)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	for _, e := range evs {
		if err := l.apply(ctx, tx, e); err != nil {
			return 0, err
		}
	}
	return int64(len(evs)), tx.Commit()
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
