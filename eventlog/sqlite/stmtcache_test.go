package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
)

// A cached statement serves one use at a time: the same query run again
// while its rows are still being read (nested, on one connection) must
// not reset the outer iteration; and more distinct queries than the cache
// holds still all answer right.
func TestCachedStatementsNestAndEvict(t *testing.T) {
	ctx := context.Background()
	db, err := connect(ctx, filepath.Join(t.TempDir(), "c.db"), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `CREATE TABLE t (x INTEGER)`); err != nil {
		t.Fatal(err)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	for i := 1; i <= 5; i++ {
		if _, err := tx.ExecContext(ctx, `INSERT INTO t (x) VALUES (?)`, i); err != nil {
			t.Fatal(err)
		}
	}
	const q = `SELECT x FROM t WHERE x > ? ORDER BY x`
	outer, err := tx.QueryContext(ctx, q, 0)
	if err != nil {
		t.Fatal(err)
	}
	var seen, pairs int
	for outer.Next() {
		var x int
		outer.Scan(&x)
		seen++
		inner, err := tx.QueryContext(ctx, q, x)
		if err != nil {
			t.Fatal(err)
		}
		for inner.Next() {
			pairs++
		}
		inner.Close()
	}
	outer.Close()
	if seen != 5 || pairs != 4+3+2+1 {
		t.Fatalf("nested runs of one query saw %d outer rows and %d pairs; want 5 and 10", seen, pairs)
	}
	for round := range 2 {
		for i := range statementCache + 50 {
			var n int
			if err := tx.QueryRowContext(ctx, fmt.Sprintf(`SELECT count(*) + %d FROM t WHERE x > ?`, i), 2).Scan(&n); err != nil || n != 3+i {
				t.Fatalf("round %d, query %d: %d, %v; want %d", round, i, n, err, 3+i)
			}
		}
	}
}
