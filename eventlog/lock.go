package eventlog

import (
	"context"
	"database/sql"
	"fmt"
	"hash/fnv"
)

// LockBlob serialises moves of one blob between tiers across every process
// sharing the database (PostgreSQL: a session advisory lock on a dedicated
// connection, released if that connection dies; SQLite has one process and
// needs none). Moves copy between stores and never wait on a client, so
// holding a connection for one is bounded; upload sessions, which wait on
// clients, use leases instead (LeaseUpload).
func (l *Log) LockBlob(ctx context.Context, sha256 string) (unlock func(), err error) {
	return l.lockKey(ctx, "blob:"+sha256)
}

// LockCollector serialises garbage collections across every process
// sharing the database (SQLite: one process, whose registry serialises
// its own).
func (l *Log) LockCollector(ctx context.Context) (unlock func(), err error) {
	return l.lockKey(ctx, "gc")
}

// LockRetention serialises retention passes across every process sharing
// the database, so that replicas running the same schedule do not plan
// and apply twice at once.
func (l *Log) LockRetention(ctx context.Context) (unlock func(), err error) {
	return l.lockKey(ctx, "retention")
}

// lockKey holds a connection for as long as the lock: it comes from the
// separate lock pool when the backend gave one (UseLockPool), so that slow
// moves never starve appends and queries.
func (l *Log) lockKey(ctx context.Context, id string) (unlock func(), err error) {
	if l.dialect.KeyLock == "" {
		return func() {}, nil
	}
	db := l.db
	if l.lockDB != nil {
		db = l.lockDB
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	h := fnv.New32a()
	h.Write([]byte(id))
	key := int32(h.Sum32())
	if _, err := conn.ExecContext(ctx, l.q(l.dialect.KeyLock), key); err != nil {
		conn.Close()
		return nil, fmt.Errorf("lock %s: %w", id, err)
	}
	return func() {
		// Unlock on a context of its own: the request's may be cancelled.
		conn.ExecContext(context.Background(), l.q(l.dialect.KeyUnlock), key)
		conn.Close()
	}, nil
}

// UseLockPool makes the cross-process locks take their connections from db
// instead of the main pool; Close closes it.
func (l *Log) UseLockPool(db *sql.DB) { l.lockDB = db }
