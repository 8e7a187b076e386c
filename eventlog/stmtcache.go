package eventlog

import (
	"context"
	"database/sql/driver"
)

// Statement caching. database/sql prepares, runs and discards a statement
// for every query with arguments; for the embedded SQLite driver the
// preparing (parsing the SQL and planning it) was a fifth of the server's
// CPU on small pushes. A connection made by CachingStatements keeps its
// prepared statements by query text instead and runs them again.
//
// Invariants: a cached statement is used by one call at a time (its rows,
// while open, hold it; a second use of the same text meanwhile, such as a
// query nested in another's iteration, gets a statement of its own); and
// the cache holds at most max statements, closed with their connection.

// CachingStatements is ClassifyErrors whose connections also keep up to n
// prepared statements each, by query text. Use it for drivers that do not
// cache statements themselves (pgx does).
func CachingStatements(c driver.Connector, classify func(error) error, n int) driver.Connector {
	return &connector{c: c, fn: classify, cache: n}
}

type stmtCache struct {
	max   int
	stmts map[string]*cachedStmt
}

type cachedStmt struct {
	s    driver.Stmt
	busy bool
}

// take returns the cached statement for query, prepared on c if need be,
// marked busy; nil (and no error) when the caller should run query
// uncached: the statement is busy, or the driver cannot run one by context.
func (sc *stmtCache) take(ctx context.Context, c driver.Conn, query string) (*cachedStmt, error) {
	if cs, ok := sc.stmts[query]; ok {
		if cs.busy {
			return nil, nil
		}
		cs.busy = true
		return cs, nil
	}
	pc, ok := c.(driver.ConnPrepareContext)
	if !ok {
		return nil, nil
	}
	s, err := pc.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	_, canExec := s.(driver.StmtExecContext)
	_, canQuery := s.(driver.StmtQueryContext)
	if !canExec || !canQuery {
		s.Close()
		return nil, nil
	}
	if len(sc.stmts) >= sc.max {
		for q, old := range sc.stmts { // evict one idle statement, any
			if !old.busy {
				old.s.Close()
				delete(sc.stmts, q)
				break
			}
		}
	}
	cs := &cachedStmt{s: s, busy: true}
	if len(sc.stmts) < sc.max {
		sc.stmts[query] = cs
	}
	return cs, nil
}

// done ends a use of cs begun by take; a statement that did not fit in the
// cache is closed.
func (sc *stmtCache) done(query string, cs *cachedStmt) {
	cs.busy = false
	if sc.stmts[query] != cs {
		cs.s.Close()
	}
}

func (sc *stmtCache) close() {
	for q, cs := range sc.stmts {
		cs.s.Close()
		delete(sc.stmts, q)
	}
}

// execCached runs query through the cache; ok false when it did not.
func (c *conn) execCached(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, bool, error) {
	cs, err := c.cache.take(ctx, c.Conn, query)
	if err != nil || cs == nil {
		return nil, err != nil, wrapErr(c.fn, err)
	}
	defer c.cache.done(query, cs)
	r, err := cs.s.(driver.StmtExecContext).ExecContext(ctx, args)
	return r, true, wrapErr(c.fn, err)
}

// queryCached runs query through the cache; ok false when it did not. The
// statement stays busy until the rows are closed.
func (c *conn) queryCached(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, bool, error) {
	cs, err := c.cache.take(ctx, c.Conn, query)
	if err != nil || cs == nil {
		return nil, err != nil, wrapErr(c.fn, err)
	}
	r, err := cs.s.(driver.StmtQueryContext).QueryContext(ctx, args)
	if err != nil {
		c.cache.done(query, cs)
		return nil, true, wrapErr(c.fn, err)
	}
	return &rows{Rows: r, fn: c.fn, closed: func() { c.cache.done(query, cs) }}, true, nil
}
