package eventlog

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// Batched statements keep an append that names many rows (a manifest's
// thousands of layers) to a few round trips inside the committer, which
// every writer waits on, rather than one per row.

// batchRows is how many rows one multi-row statement carries; with up to
// four columns that stays far below both backends' parameter limits.
const batchRows = 250

// insertRows runs insert (an INSERT whose VALUES list is "%s") for rows,
// batchRows at a time.
func (l *Log) insertRows(ctx context.Context, tx *sql.Tx, insert string, rows [][]any) error {
	for len(rows) > 0 {
		n := min(len(rows), batchRows)
		tuple := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(rows[0])), ", ") + ")"
		values := strings.TrimSuffix(strings.Repeat(tuple+", ", n), ", ")
		var args []any
		for _, r := range rows[:n] {
			args = append(args, r...)
		}
		if _, err := tx.ExecContext(ctx, l.q(fmt.Sprintf(insert, values)), args...); err != nil {
			return err
		}
		rows = rows[n:]
	}
	return nil
}

// firstMissing returns the first of keys that query does not find, or ""
// when it finds them all. query selects one key column and ends in
// "IN (%s)"; args come before the keys.
func (l *Log) firstMissing(ctx context.Context, tx *sql.Tx, query string, args []any, keys []string) (string, error) {
	found, err := l.foundKeys(ctx, tx, query, args, keys)
	if err != nil {
		return "", fmt.Errorf("append check: %w", err)
	}
	for _, k := range keys {
		if !found[k] {
			return k, nil
		}
	}
	return "", nil
}

// queryIn runs query, whose key list is "IN (%s)", for keys, batchRows
// keys per statement, and calls scan for every row; args come before the
// keys.
func (l *Log) queryIn(ctx context.Context, q querier, query string, args []any, keys []string, scan func(*sql.Rows) error) error {
	for len(keys) > 0 {
		n := min(len(keys), batchRows)
		in := strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
		qargs := append(append([]any{}, args...), anySlice(keys[:n])...)
		rows, err := q.QueryContext(ctx, l.q(fmt.Sprintf(query, in)), qargs...)
		if err != nil {
			return err
		}
		for rows.Next() {
			if err := scan(rows); err != nil {
				rows.Close()
				return err
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		keys = keys[n:]
	}
	return nil
}

// foundKeys returns the set of keys that query finds, batchRows keys per
// statement. query selects one key column and ends in "IN (%s)"; args
// come before the keys.
func (l *Log) foundKeys(ctx context.Context, q querier, query string, args []any, keys []string) (map[string]bool, error) {
	found := map[string]bool{}
	err := l.queryIn(ctx, q, query, args, keys, func(rows *sql.Rows) error {
		var k string
		err := rows.Scan(&k)
		found[k] = true
		return err
	})
	if err != nil {
		return nil, err
	}
	return found, nil
}

func anySlice(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
