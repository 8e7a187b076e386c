package eventlog

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/artifact-store/artifact-store/migrations"
	_ "modernc.org/sqlite"
)

// TestFailedMigrationLeavesDatabaseAsItWas runs a migration whose second
// statement fails: neither its first statement nor its record remain.
func TestFailedMigrationLeavesDatabaseAsItWas(t *testing.T) {
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	l := &Log{db: db, dialect: Dialect{Name: "sqlite"}}
	good := migrations.Migration{Version: 1, Name: "good", SQL: `CREATE TABLE a (x INTEGER)`}
	bad := migrations.Migration{Version: 2, Name: "bad", SQL: `CREATE TABLE b (x INTEGER); INSERT INTO nowhere VALUES (1)`}
	applied, err := l.migrate(ctx, []migrations.Migration{good, bad})
	if err == nil || len(applied) != 1 {
		t.Fatalf("migrate = %v, %v; want the first applied and an error", applied, err)
	}
	var n int
	db.QueryRow(`SELECT COUNT(*) FROM sqlite_master WHERE name = 'b'`).Scan(&n)
	if n != 0 {
		t.Fatal("the failed migration's table exists")
	}
	db.QueryRow(`SELECT COUNT(*) FROM schema_migrations`).Scan(&n)
	if n != 1 {
		t.Fatalf("%d migrations recorded, want 1", n)
	}
	// Re-running after fixing is a no-op for the first.
	if applied, err := l.migrate(ctx, []migrations.Migration{good}); err != nil || len(applied) != 0 {
		t.Fatalf("re-run = %v, %v", applied, err)
	}
	pending, _ := l.pending(ctx, []migrations.Migration{good, bad})
	if len(pending) != 1 || pending[0] != "0002_bad" {
		t.Fatalf("pending = %v", pending)
	}
}

// TestMigrationDropsKeyDigests: a database whose blob_digests mapped each
// storage key to itself (before 0014) keeps only the other digests once
// migrated, which is what replaying its events now builds.
func TestMigrationDropsKeyDigests(t *testing.T) {
	ctx := context.Background()
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	all, err := migrations.For("sqlite")
	if err != nil {
		t.Fatal(err)
	}
	before := 0
	for before < len(all) && all[before].Version < 14 {
		before++
	}
	l := &Log{db: db, dialect: Dialect{Name: "sqlite"}}
	if _, err := l.migrate(ctx, all[:before]); err != nil {
		t.Fatal(err)
	}
	const key, alias = "sha256:" + "ab", "blake3:" + "cd"
	if _, err := db.ExecContext(ctx, `INSERT INTO blob_digests (digest, sha256) VALUES (?, ?), (?, ?)`, key, key, alias, key); err != nil {
		t.Fatal(err)
	}
	if _, err := l.migrate(ctx, all); err != nil {
		t.Fatal(err)
	}
	var digests []string
	rows, err := db.QueryContext(ctx, `SELECT digest FROM blob_digests ORDER BY digest`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var d string
		rows.Scan(&d)
		digests = append(digests, d)
	}
	if len(digests) != 1 || digests[0] != alias {
		t.Fatalf("blob_digests after the migration: %q; want only %q", digests, alias)
	}
}
