package eventlog

import (
	"context"
	"database/sql/driver"
)

// Pipelined writes. On PostgreSQL every statement is a network round trip,
// and the committer, which every writer waits on, runs some twenty per
// manifest put: most are view writes whose only result is success. In a
// transaction begun with a context from batched, a connection made by
// BatchingStatements queues those writes instead of sending them, and
// sends the queue in one round trip (the driver's batch) before anything
// that needs an answer: a query, a commit, or an exec whose context comes
// from flushing. So the order of statements is unchanged and every read
// sees every earlier write; what changes is only when a failed write is
// reported: at the next flush, which the caller places where the failure
// is still its own (the end of one append's savepoint).
//
// Invariants: a queued exec reports no result (RowsAffected fails); a
// queue is never carried past its transaction (commit flushes it first,
// rollback drops it); after a flush fails the transaction is aborted, and
// the queue is empty.

// Batcher sends stmts on c, inside its open transaction, in one round
// trip, and returns the first error.
type Batcher func(ctx context.Context, c driver.Conn, stmts []Queued) error

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
	return wrapErr(c.fn, c.batch(ctx, c.Conn, q))
}
