// Package postgres opens the event log on PostgreSQL through pgx/v5, for
// production: several artifactstore replicas share one database.
//
// The log runs over database/sql with pgx's stdlib driver: pgx supplies the
// connection pool and caches a prepared statement per query text on each
// connection, and the log's SQL stays one code path for both backends.
// The writes of a group commit are pipelined (eventlog.BatchingStatements):
// sent as one pgx batch before the next statement that needs an answer,
// instead of a round trip each.
//
// Errors meaning the server is unreachable, shutting down or out of
// connections wrap eventlog.ErrUnavailable, and a full disk (disk_full)
// eventlog.ErrNoSpace, so that callers can tell an outage from a bug. A
// lost connection is replaced on the next query: the log recovers by
// itself when the server comes back.
package postgres

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/artifact-store/artifact-store/eventlog"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// connectTimeout bounds dialling the server when the DSN sets no
// connect_timeout: appends run on a context without a deadline, and a
// server that does not answer must become a retryable error, not a hang.
const connectTimeout = 5 * time.Second

// writeLockKey is the advisory lock that serialises appends across
// replicas ("artstore" in ASCII), so that sequence numbers are assigned in
// commit order: a reader that has seen event N never later finds an event
// below N committed after it looked.
const writeLockKey = 0x6172747374726f72

// channel is the LISTEN/NOTIFY channel on which appends announce
// themselves to every replica.
const channel = "artifactstore_events"

// Dialect is the PostgreSQL dialect of the event log.
var Dialect = eventlog.Dialect{
	Name:      "postgres",
	Numbered:  true,
	WriteLock: fmt.Sprintf("SELECT pg_advisory_xact_lock(%d)", writeLockKey),
	// The payload names the appending log and its schema (listen.go).
	Notify: "SELECT pg_notify('" + channel + "', CAST(? AS text) || '@' || coalesce(current_schema(), ''))",
	// The two-int advisory lock space is separate from the bigint one the
	// write lock uses; uploadLockClass keeps ours apart from other users.
	KeyLock:   fmt.Sprintf("SELECT pg_advisory_lock(%d, ?)", uploadLockClass),
	KeyUnlock: fmt.Sprintf("SELECT pg_advisory_unlock(%d, ?)", uploadLockClass),
	Analyze:   "ANALYZE",
	// A group commit's statements are keyed lookups and writes. Left to
	// choose, PostgreSQL kept planning the group's facts query anew at
	// every execution once a group named five blobs or more (for values
	// it has no statistics on, each custom plan looked cheaper than the
	// generic one): 150-600 µs per group in the committer's serial chain,
	// against some 20 µs to run it. Generic plans are made once per
	// statement and connection; TestGroupCommitsReadTheirRowsOnly checks
	// that they read only the rows they ask about.
	GroupSetup: "SET LOCAL plan_cache_mode = force_generic_plan",
	EventRows:  true,
	// Every append reads the follow lease with the head, and a replica
	// alone takes it (eventlog/followlease.go).
	FollowLease: true,
}

// uploadLockClass is the first key of upload session locks ("up").
const uploadLockClass = 0x7570

// Options tune the connection pool.
type Options struct {
	// MaxConns bounds the pool (default 16).
	MaxConns int
	// NoMigrate refuses a database with pending migrations instead of
	// applying them.
	NoMigrate bool
	// LockConns bounds the separate pool that locks held for a while
	// (tier moves, garbage collection, retention) take their connections
	// from (default 32). Upload sessions use leases and hold none.
	LockConns int
	// Follow keeps blob lookups in memory, exact across replicas
	// (eventlog.OpenOptions.Follow): for a server, whose pulls then cost
	// the database one small query shared by the lookups in flight.
	Follow bool
	// FollowLeaseTerm: see eventlog.OpenOptions.FollowLeaseTerm.
	FollowLeaseTerm time.Duration
}

// Open connects to the database at dsn (a postgres:// URL or key=value
// string) and applies pending migrations.
func Open(ctx context.Context, dsn string, opts Options) (*eventlog.Log, error) {
	db, err := connect(ctx, dsn, opts)
	if err != nil {
		return nil, err
	}
	d := Dialect
	var version int
	if err := db.QueryRowContext(ctx, `SELECT current_setting('server_version_num')::int`).Scan(&version); err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres: read the server's version: %w", err)
	}
	if version < 120000 { // plan_cache_mode is PostgreSQL 12's
		d.GroupSetup = ""
	}
	l, err := eventlog.Open(ctx, db, d, eventlog.OpenOptions{NoMigrate: opts.NoMigrate, Follow: opts.Follow, FollowLeaseTerm: opts.FollowLeaseTerm})
	if err != nil {
		db.Close()
		return nil, err
	}
	if opts.LockConns <= 0 {
		opts.LockConns = 32
	}
	locks, err := connect(ctx, dsn, Options{MaxConns: opts.LockConns})
	if err != nil {
		l.Close()
		return nil, err
	}
	l.UseLockPool(locks)
	lctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		listen(lctx, dsn, l)
	}()
	l.OnClose(func() { stop(); <-done })
	return l, nil
}

// Migrate applies pending migrations to the database at dsn and returns
// their names.
func Migrate(ctx context.Context, dsn string) ([]string, error) {
	db, err := connect(ctx, dsn, Options{MaxConns: 1})
	if err != nil {
		return nil, err
	}
	defer db.Close()
	return eventlog.Migrate(ctx, db, Dialect)
}

func connect(ctx context.Context, dsn string, opts Options) (*sql.DB, error) {
	if opts.MaxConns <= 0 {
		opts.MaxConns = 16
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = connectTimeout
	}
	db := sql.OpenDB(eventlog.BatchingStatements(stdlib.GetConnector(*cfg), classify, batch))
	db.SetMaxOpenConns(opts.MaxConns)
	db.SetMaxIdleConns(opts.MaxConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(pingCtx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to postgres: %w", err)
	}
	return db, nil
}

// batch implements eventlog.Batcher on c's pgx connection.
func batch(ctx context.Context, c driver.Conn, stmts []eventlog.Queued, query *eventlog.Queued) (driver.Rows, error) {
	sc, ok := c.(*stdlib.Conn)
	if !ok {
		return nil, fmt.Errorf("postgres: batch on a %T, not a pgx connection", c)
	}
	var b pgx.Batch
	queue := func(q eventlog.Queued) {
		args := make([]any, len(q.Args))
		for i, a := range q.Args {
			args[i] = a.Value
		}
		b.Queue(q.Query, args...)
	}
	for _, q := range stmts {
		queue(q)
	}
	if query != nil {
		queue(*query)
	}
	br := sc.Conn().SendBatch(ctx, &b)
	for _, q := range stmts {
		tag, err := br.Exec()
		if err != nil {
			br.Close()
			// The server answered this statement with an error, so it
			// skipped the rest of the batch: a COMMIT after it never ran.
			var pg *pgconn.PgError
			if errors.As(err, &pg) && !strings.EqualFold(q.Query, "COMMIT") {
				err = fmt.Errorf("%w: %w", eventlog.ErrQueuedWriteRefused, err)
			}
			return nil, err
		}
		// COMMIT of a transaction that had failed rolls it back
		// without an error: only its tag tells.
		if strings.EqualFold(q.Query, "COMMIT") && tag.String() == "ROLLBACK" {
			br.Close()
			return nil, errors.New("postgres: commit rolled back: the transaction had failed")
		}
	}
	if query == nil {
		return nil, br.Close()
	}
	rows, err := readRows(br)
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return rows, err
}

// readRows reads the batch's next result whole, its values as
// database/sql's drivers give them (integers as int64).
func readRows(br pgx.BatchResults) (*eventlog.ReadRows, error) {
	rs, err := br.Query()
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	out := &eventlog.ReadRows{}
	for _, f := range rs.FieldDescriptions() {
		out.Cols = append(out.Cols, f.Name)
	}
	for rs.Next() {
		vals, err := rs.Values()
		if err != nil {
			return nil, err
		}
		row := make([]driver.Value, len(vals))
		for i, v := range vals {
			switch n := v.(type) {
			case int16:
				row[i] = int64(n)
			case int32:
				row[i] = int64(n)
			default:
				row[i] = v
			}
		}
		out.Rows = append(out.Rows, row)
	}
	return out, rs.Err()
}
