// Package sqlite opens the embedded event log: a SQLite file in WAL mode
// through the pure-Go modernc.org/sqlite driver (no cgo).
//
// A database still locked after the busy timeout wraps
// eventlog.ErrUnavailable, and a full disk (SQLITE_FULL)
// eventlog.ErrNoSpace; the transaction is rolled back either way.
package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/artifact-store/artifact-store/eventlog"
	"modernc.org/sqlite"
)

// Dialect is the SQLite dialect of the event log.
//
// The committer's connection keeps temporary files in memory: the
// statement journals a transaction writes, a copy of every page an append
// changes behind a savepoint (a group run again after one of its appends
// failed; see eventlog's record) and of the pages a statement changing
// several rows touches. SQLite spills a journal to a file of its own past
// 64 KiB: when every append of a group was behind a savepoint, a group of
// small pushes created, wrote and deleted one every time, about 15 page
// writes per push and an open, unlink and close per group, all on the path
// every append waits on (8 clients pushing 4 KiB blobs: server CPU per
// push 475 → 440 µs, pushes per second up by about 5 %). In memory a
// journal is bounded by what one group changes, and gone with its
// transaction. Other connections keep the default, so that a large sort
// (a collection's, a verify's) still spills to disk.
//
// The committer's connection also leaves checkpoints to a goroutine of
// their own (checkpoint.go).
var Dialect = eventlog.Dialect{Name: "sqlite",
	CommitterSetup: "PRAGMA temp_store = MEMORY; PRAGMA wal_autocheckpoint = " + strconv.Itoa(committerCheckpointPages)}

// Options change how Open treats the database.
type Options struct {
	// NoMigrate refuses a database with pending migrations instead of
	// applying them.
	NoMigrate bool
	// BusyTimeout is how long a statement waits for a lock another
	// process holds before failing with eventlog.ErrUnavailable
	// (default 10 s).
	BusyTimeout time.Duration
	// Exclusive promises that no other process writes the database while
	// the log is open (the caller holds a lock that keeps them out): see
	// eventlog.OpenOptions.
	Exclusive bool
}

// defaultBusyTimeout outlasts any single group commit by far: only another
// process holding the file (a backup, a stray "artifactstore replay")
// waits that long.
const defaultBusyTimeout = 10 * time.Second

// Open opens (creating if needed) the event log in the file at path.
//
// synchronous=FULL: an event is on disk before Append returns, because
// events are the commit point of every write. Transactions take the write
// lock at BEGIN (_txlock=immediate) so that a read-then-write append never
// fails with SQLITE_BUSY halfway through.
func Open(ctx context.Context, path string, opts Options) (*eventlog.Log, error) {
	db, err := connect(ctx, path, opts.BusyTimeout)
	if err != nil {
		return nil, err
	}
	l, err := eventlog.Open(ctx, db, Dialect, eventlog.OpenOptions{NoMigrate: opts.NoMigrate, Exclusive: opts.Exclusive})
	if err != nil {
		db.Close()
		return nil, err
	}
	checkpointInBackground(db, l)
	return l, nil
}

// Migrate applies pending migrations to the log in the file at path.
func Migrate(ctx context.Context, path string) ([]string, error) {
	db, err := connect(ctx, path, 0)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	return eventlog.Migrate(ctx, db, Dialect)
}

// statementCache is how many prepared statements each connection keeps:
// more than the log's distinct queries, so that only the dynamic ones
// (IN lists of varying length) are ever evicted.
const statementCache = 256

// idleConns is how many open connections are kept between uses.
const idleConns = 32

// cacheKiB bounds each connection's page cache (SQLite's default is 2,000
// KiB). Every connection has its own, outside the Go heap, and a server
// under concurrent requests keeps a dozen or more open: at the default
// they held some 20 MiB of copies of the same hot pages, a third of the
// server's resident memory. The file's pages stay in the kernel's page
// cache, so a page this cache no longer holds costs a read from memory;
// the pulls and pushes of make bench-peers measured the same throughput
// and CPU with 512 KiB, and 22 MiB less peak RSS.
const cacheKiB = 512

func connect(ctx context.Context, path string, busy time.Duration) (*sql.DB, error) {
	if busy <= 0 {
		busy = defaultBusyTimeout
	}
	q := url.Values{}
	for _, p := range []string{"journal_mode(WAL)", "synchronous(FULL)", "busy_timeout(" + strconv.FormatInt(busy.Milliseconds(), 10) + ")", "foreign_keys(1)", "cache_size(-" + strconv.Itoa(cacheKiB) + ")"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	c, err := sqlite.NewConnector("file:" + path + "?" + q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	db := sql.OpenDB(eventlog.CachingStatements(c, classify, statementCache))
	// Keep the connections concurrent requests open: database/sql keeps
	// two idle by default, and every other one would be opened again
	// (with its statement cache) for the next burst of reads.
	db.SetMaxIdleConns(idleConns)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	return db, nil
}
