package eventlog

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/artifact-store/artifact-store/migrations"
	_ "modernc.org/sqlite"
)

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
