package eventlog

import (
	"context"
	"database/sql/driver"
	"errors"
	"io"
	"time"
)

// Pipelined writes. On PostgreSQL every statement is a network round trip,
// and the committer, which every writer waits on, runs some twenty per
// manifest put: most are view writes whose only result is success. In a
// transaction begun with a context from batched, a connection made by
// BatchingStatements queues those writes instead of sending them, and
// sends the queue in one round trip (the driver's batch) before anything
// that needs an answer: a query (in the same round trip), a commit, or an
// exec whose context comes from flushing. So the order of statements is
// unchanged and every read sees every earlier write; what changes is only
// when a failed write is reported: at the next flush, which the caller
// places where it can still tell whose failure it is (the group commit
// names each append's savepoint after its place among 16 and flushes at
// least that often; without savepoints, a refused write shows as
// ErrQueuedWriteRefused at the commit it travelled with: Log.record).
//
// The transaction's bounds are pipelined as well: its BEGIN is queued
// first, so it travels with the first batch (the write lock and the log's
// head), and its COMMIT last, with the last writes, so that a group
// commit holds the write lock for two round trips fewer.
//
// Invariants: a queued exec reports no result (RowsAffected fails); a
// queue is never carried past its transaction (commit flushes it first,
// rollback drops it); after a flush fails the transaction is aborted, and
// the queue is empty; a pipelined transaction that could not be ended
// (its ROLLBACK failed) leaves its connection marked broken, and
// database/sql discards it.

// ErrQueuedWriteRefused is what a Batcher's error wraps, with the
// database's own, when the database refused one of the queued statements
// other than a COMMIT: that statement failed, none after it ran (a COMMIT
// among them included), and the transaction is aborted, not committed. So
// a commit that fails with it has a known outcome: nothing was recorded,
// and the group can be run again (Log.record). Any other failure of a
// batch ending in COMMIT (the connection lost) leaves the outcome unknown.
var ErrQueuedWriteRefused = errors.New("a queued write was refused")

// Batcher sends stmts on c, inside its open transaction, in one round
// trip, and returns the first error. When query is not nil it goes last in
// the same round trip, and its rows are returned, read whole: the queries
// that wait on a flush are the append's checks, of a row or a few.
type Batcher func(ctx context.Context, c driver.Conn, stmts []Queued, query *Queued) (driver.Rows, error)

// Queued is one statement waiting for a Batcher.
type Queued struct {
	Query string
	Args  []driver.NamedValue
}

// BatchingStatements is ClassifyErrors whose connections pipeline the
// writes of transactions begun with a batched context through batch.
func BatchingStatements(c driver.Connector, classify func(error) error, batch Batcher) driver.Connector {
	return &connector{c: c, fn: classify, batch: batch}
}

type pipelineKey int

const (
	keyBatched pipelineKey = iota
	keyFlush
)

// batched returns ctx marked so that a transaction begun with it, and the
// execs run with it, pipeline writes where the driver can.
func batched(ctx context.Context) context.Context {
	return context.WithValue(ctx, keyBatched, true)
}

// flushing returns ctx marked so that an exec run with it is sent at once,
// after the writes queued before it, and reports their first error.
func flushing(ctx context.Context) context.Context {
	return context.WithValue(ctx, keyFlush, true)
}

func isSet(ctx context.Context, k pipelineKey) bool {
	v, _ := ctx.Value(k).(bool)
	return v
}

// queue takes an exec into the pipeline; ok false when it must run now.
func (c *conn) queue(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, bool, error) {
	if !c.batching || !isSet(ctx, keyBatched) {
		return nil, false, nil
	}
	c.queued = append(c.queued, Queued{Query: query, Args: append([]driver.NamedValue(nil), args...)})
	if !isSet(ctx, keyFlush) {
		return driver.ResultNoRows, true, nil
	}
	return driver.ResultNoRows, true, c.flush(ctx)
}

// flush sends the queued writes; the queue is empty afterwards.
func (c *conn) flush(ctx context.Context) error {
	if len(c.queued) == 0 {
		return nil
	}
	q := c.queued
	c.queued = nil
	_, err := c.batch(ctx, c.Conn, q, nil)
	return wrapErr(c.fn, err)
}

const beginStmt, commitStmt, rollbackStmt = "BEGIN", "COMMIT", "ROLLBACK"

// unsent reports whether the pipelined transaction's BEGIN is still in the
// queue: the database has seen nothing of it.
func (c *conn) unsent() bool {
	return len(c.queued) > 0 && c.queued[0].Query == beginStmt
}

// commitPipelined sends what is queued and COMMIT in one round trip. When
// a statement fails, the database skips the rest, COMMIT included, and the
// transaction is rolled back.
func (c *conn) commitPipelined() error {
	if c.unsent() && len(c.queued) == 1 {
		c.queued = nil // nothing was done
		return nil
	}
	c.queued = append(c.queued, Queued{Query: commitStmt})
	if err := c.flush(context.Background()); err != nil {
		c.endAborted()
		return err
	}
	return nil
}

// rollbackPipelined drops the queue and, unless the database never saw
// the transaction, rolls it back.
func (c *conn) rollbackPipelined() error {
	if c.unsent() {
		c.queued = nil
		return nil
	}
	c.queued = nil
	return c.endAborted()
}

// endAborted ends a pipelined transaction a failed batch left open (a
// ROLLBACK outside one only draws a warning); a connection where even that
// fails is marked broken.
func (c *conn) endAborted() error {
	ec, ok := c.Conn.(driver.ExecerContext)
	if !ok {
		c.broken = true
		return driver.ErrBadConn
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := ec.ExecContext(ctx, rollbackStmt, nil); err != nil {
		c.broken = true
		return wrapErr(c.fn, err)
	}
	return nil
}

// queryAfterFlush runs a query together with the queued writes; ok false
// when there are none (the query then runs as usual).
func (c *conn) queryAfterFlush(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, bool, error) {
	if len(c.queued) == 0 {
		return nil, false, nil
	}
	q := c.queued
	c.queued = nil
	r, err := c.batch(ctx, c.Conn, q, &Queued{Query: query, Args: args})
	if err != nil {
		return nil, true, wrapErr(c.fn, err)
	}
	return r, true, nil
}

// ReadRows is driver.Rows over rows already read.
type ReadRows struct {
	Cols []string
	Rows [][]driver.Value
}

// Columns implements driver.Rows.
func (r *ReadRows) Columns() []string { return r.Cols }

// Close implements driver.Rows.
func (r *ReadRows) Close() error { return nil }

// Next implements driver.Rows.
func (r *ReadRows) Next(dest []driver.Value) error {
	if len(r.Rows) == 0 {
		return io.EOF
	}
	copy(dest, r.Rows[0])
	r.Rows = r.Rows[1:]
	return nil
}
