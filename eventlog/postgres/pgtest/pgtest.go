// Package pgtest gives tests a PostgreSQL database of their own: a fresh
// schema in the server named by ARTIFACTSTORE_TEST_POSTGRES, dropped when
// the test ends.
package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
)

// EnvVar names the server the PostgreSQL tests run against.
const EnvVar = "ARTIFACTSTORE_TEST_POSTGRES"

// DSN returns a connection string whose search_path is a new, empty schema.
// Without EnvVar the test is skipped with one loud line; with EnvVar set
// but the server unreachable, the test fails: CI must not skip silently.
func DSN(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvVar)
	if base == "" {
		t.Skipf("SKIPPED: PostgreSQL backend not tested: set %s (e.g. postgres://postgres@127.0.0.1:5432/test)", EnvVar)
	}
	db, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("%s=%s: %v", EnvVar, base, err)
	}
	defer db.Close()
	var b [6]byte
	rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])
	if _, err := db.ExecContext(context.Background(), "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("PostgreSQL at %s=%s is not usable: %v", EnvVar, base, err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("pgx", base)
		if err == nil {
			db.Exec("DROP SCHEMA " + schema + " CASCADE")
			db.Close()
		}
	})
	return WithSearchPath(base, schema)
}

// WithSearchPath returns dsn with its search_path set to schema.
func WithSearchPath(dsn, schema string) string {
	if strings.Contains(dsn, "://") {
		u, err := url.Parse(dsn)
		if err == nil {
			q := u.Query()
			q.Set("search_path", schema)
			u.RawQuery = q.Encode()
			return u.String()
		}
	}
	return dsn + " search_path=" + schema
}
