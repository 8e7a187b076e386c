// Package sqlite opens the embedded event log: a SQLite file in WAL mode
// through the pure-Go modernc.org/sqlite driver (no cgo).
package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"

	"github.com/artifact-store/artifact-store/eventlog"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Dialect is the SQLite dialect of the event log.
var Dialect = eventlog.Dialect{Name: "sqlite"}

// Options change how Open treats the database.
type Options struct {
	// NoMigrate refuses a database with pending migrations instead of
	// applying them.
	NoMigrate bool
}

// Open opens (creating if needed) the event log in the file at path.
//
// synchronous=FULL: an event is on disk before Append returns, because
// events are the commit point of every write. Transactions take the write
// lock at BEGIN (_txlock=immediate) so that a read-then-write append never
// fails with SQLITE_BUSY halfway through.
func Open(ctx context.Context, path string, opts Options) (*eventlog.Log, error) {
	db, err := connect(ctx, path)
	if err != nil {
		return nil, err
	}
	l, err := eventlog.Open(ctx, db, Dialect, eventlog.OpenOptions{NoMigrate: opts.NoMigrate})
	if err != nil {
		db.Close()
		return nil, err
	}
	return l, nil
}

// Migrate applies pending migrations to the log in the file at path.
func Migrate(ctx context.Context, path string) ([]string, error) {
	db, err := connect(ctx, path)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	return eventlog.Migrate(ctx, db, Dialect)
}

func connect(ctx context.Context, path string) (*sql.DB, error) {
	q := url.Values{}
	for _, p := range []string{"journal_mode(WAL)", "synchronous(FULL)", "busy_timeout(10000)", "foreign_keys(1)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	return db, nil
}
