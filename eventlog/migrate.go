package eventlog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/artifact-store/artifact-store/migrations"
)

// Schema migrations: each runs in one transaction with its
// schema_migrations row, under the dialect's write lock, so a failed one
// leaves the database as it was and replicas starting together apply it
// once.

// OpenOptions change how Open treats the schema.
type OpenOptions struct {
	// NoMigrate makes Open refuse a database with pending migrations
	// (ErrMigrationsPending) instead of applying them.
	NoMigrate bool
	// Exclusive promises that nothing but this Log writes the database
	// while it is open: no other process (the caller holds a lock that
	// keeps them out) and no statement of the caller's own. The log then
	// answers blob lookups from memory where it can (blobcache.go); it
	// sees every change to them, so the answers are the views' own.
	Exclusive bool
	// Follow promises that every change to the views is made by appending
	// to this log, from this process or another sharing the database (no
	// edits by hand, no writer but Logs). The log then answers blob
	// lookups from memory too, after reading the events appended since it
	// last looked: one query shared by the lookups waiting at that moment
	// (follow.go). For replicas sharing one PostgreSQL database.
	Follow bool
	// FollowLeaseTerm is the term of the follow lease a followed log takes
	// while no other replica runs, so that its lookups skip their rounds
	// (followlease.go): 0 for DefaultFollowLeaseTerm, below 0 for no
	// lease (a round before every lookup, as with other replicas).
	FollowLeaseTerm time.Duration
}

// ErrMigrationsPending is returned by Open with NoMigrate when the schema
// is older than this binary.
var ErrMigrationsPending = errors.New("database schema has pending migrations")

// Migrate applies pending migrations to db and returns their names.
func Migrate(ctx context.Context, db *sql.DB, d Dialect) ([]string, error) {
	ms, err := migrations.For(d.Name)
	if err != nil {
		return nil, err
	}
	l := &Log{db: db, dialect: d}
	return l.migrate(ctx, ms)
}

func (l *Log) migrate(ctx context.Context, ms []migrations.Migration) ([]string, error) {
	var applied []string
	for _, m := range ms {
		name := fmt.Sprintf("%04d_%s", m.Version, m.Name)
		done, err := l.migrateOne(ctx, m)
		if err != nil {
			return applied, fmt.Errorf("migration %s: %w", name, err)
		}
		if done {
			applied = append(applied, name)
		}
	}
	return applied, nil
}

// pending lists the migrations not yet recorded as applied.
func (l *Log) pending(ctx context.Context, ms []migrations.Migration) ([]string, error) {
	var out []string
	for _, m := range ms {
		var n int
		err := l.db.QueryRowContext(ctx, l.q(`SELECT COUNT(*) FROM schema_migrations WHERE version = ?`), m.Version).Scan(&n)
		if err != nil || n == 0 {
			// A missing schema_migrations table means nothing is applied.
			out = append(out, fmt.Sprintf("%04d_%s", m.Version, m.Name))
		}
	}
	return out, nil
}

// migrateOne applies m unless it is recorded as applied, in one
// transaction with its record, under the write lock so that replicas
// starting together apply it once.
func (l *Log) migrateOne(ctx context.Context, m migrations.Migration) (bool, error) {
	tx, err := l.begin(ctx)
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL)`); err != nil {
		return false, err
	}
	var n int
	if err := tx.QueryRowContext(ctx, l.q(`SELECT COUNT(*) FROM schema_migrations WHERE version = ?`), m.Version).Scan(&n); err != nil {
		return false, err
	}
	if n > 0 {
		return false, nil
	}
	if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
		return false, err
	}
	if _, err := tx.ExecContext(ctx, l.q(`INSERT INTO schema_migrations (version, name) VALUES (?, ?)`), m.Version, m.Name); err != nil {
		return false, err
	}
	return true, tx.Commit()
}
