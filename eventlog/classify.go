package eventlog

import (
	"context"
	"database/sql/driver"
	"errors"
	"io"
	"reflect"
)

// ClassifyErrors wraps a database/sql connector so that every error its
// connections, statements, transactions and rows return passes through
// classify first. A backend passes a classify that wraps what its driver
// means by "the database cannot be reached" in ErrUnavailable and "the
// database is full" in ErrNoSpace, keeping the driver's error in the chain
// (with %w, so database/sql still sees driver.ErrBadConn and retries).
//
// The control values database/sql compares with == (driver.ErrSkip,
// driver.ErrRemoveArgument, io.EOF from Rows.Next) pass unchanged, and
// every optional driver interface the wrapped connection lacks answers as
// database/sql would without it.
func ClassifyErrors(c driver.Connector, classify func(error) error) driver.Connector {
	return &connector{c: c, fn: classify}
}

type connector struct {
	c     driver.Connector
	fn    func(error) error
	cache int     // prepared statements kept per connection (stmtcache.go)
	batch Batcher // pipelines writes (pipeline.go), if set
}

func (c *connector) Connect(ctx context.Context) (driver.Conn, error) {
	dc, err := c.c.Connect(ctx)
	if err != nil {
		return nil, wrapErr(c.fn, err)
	}
	cn := &conn{Conn: dc, fn: c.fn, batch: c.batch}
	if c.cache > 0 {
		cn.cache = &stmtCache{max: c.cache, stmts: map[string]*cachedStmt{}}
	}
	return cn, nil
}

func (c *connector) Driver() driver.Driver { return c.c.Driver() }

func wrapErr(fn func(error) error, err error) error {
	if err == nil || err == driver.ErrSkip || err == driver.ErrRemoveArgument {
		return err
	}
	return fn(err)
}

// endOrWrap is wrapErr for Rows.Next, where io.EOF means "no more rows".
func endOrWrap(fn func(error) error, err error) error {
	if err == io.EOF {
		return err
	}
	return wrapErr(fn, err)
}

type conn struct {
	driver.Conn
	fn    func(error) error
	cache *stmtCache // nil: no statement caching

	batch    Batcher  // nil: no pipelining
	batching bool     // in a transaction that pipelines writes
	queued   []Queued // writes not sent yet
	broken   bool     // a pipelined transaction could not be ended: discard
}

// Close closes the cached statements, then the connection.
func (c *conn) Close() error {
	if c.cache != nil {
		c.cache.close()
	}
	return wrapErr(c.fn, c.Conn.Close())
}

var (
	_ driver.ConnBeginTx        = (*conn)(nil)
	_ driver.ConnPrepareContext = (*conn)(nil)
	_ driver.ExecerContext      = (*conn)(nil)
	_ driver.QueryerContext     = (*conn)(nil)
	_ driver.Pinger             = (*conn)(nil)
	_ driver.SessionResetter    = (*conn)(nil)
	_ driver.Validator          = (*conn)(nil)
	_ driver.NamedValueChecker  = (*conn)(nil)
)

func (c *conn) Prepare(query string) (driver.Stmt, error) {
	s, err := c.Conn.Prepare(query)
	if err != nil {
		return nil, wrapErr(c.fn, err)
	}
	return &stmt{Stmt: s, conn: c.Conn, owner: c, fn: c.fn}, nil
}

func (c *conn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	pc, ok := c.Conn.(driver.ConnPrepareContext)
	if !ok {
		return c.Prepare(query)
	}
	s, err := pc.PrepareContext(ctx, query)
	if err != nil {
		return nil, wrapErr(c.fn, err)
	}
	return &stmt{Stmt: s, conn: c.Conn, owner: c, fn: c.fn}, nil
}

func (c *conn) Begin() (driver.Tx, error) {
	//lint:ignore SA1019 a driver.Conn must implement Begin; BeginTx is preferred where the driver has it
	t, err := c.Conn.Begin() //nolint:staticcheck
	if err != nil {
		return nil, wrapErr(c.fn, err)
	}
	c.batching, c.queued = false, nil
	return &tx{Tx: t, fn: c.fn, c: c}, nil
}

func (c *conn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	bt, ok := c.Conn.(driver.ConnBeginTx)
	if !ok {
		if opts.Isolation != 0 || opts.ReadOnly {
			return nil, errors.New("eventlog: driver does not support transaction options")
		}
		return c.Begin()
	}
	if c.batch != nil && isSet(ctx, keyBatched) && opts.Isolation == 0 && !opts.ReadOnly {
		// The transaction's bounds are pipelined too (pipeline.go).
		c.batching, c.queued = true, []Queued{{Query: beginStmt}}
		return &tx{fn: c.fn, c: c}, nil
	}
	t, err := bt.BeginTx(ctx, opts)
	if err != nil {
		return nil, wrapErr(c.fn, err)
	}
	c.batching, c.queued = false, nil
	return &tx{Tx: t, fn: c.fn, c: c}, nil
}

func (c *conn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	if r, ok, err := c.queue(ctx, query, args); ok {
		return r, err
	}
	if err := c.flush(ctx); err != nil {
		return nil, err
	}
	if c.cache != nil {
		if r, ok, err := c.execCached(ctx, query, args); ok {
			return r, err
		}
	}
	ec, ok := c.Conn.(driver.ExecerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	r, err := ec.ExecContext(ctx, query, args)
	return r, wrapErr(c.fn, err)
}

func (c *conn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	if r, ok, err := c.queryAfterFlush(ctx, query, args); ok {
		if err != nil {
			return nil, err
		}
		return &rows{Rows: r, fn: c.fn}, nil
	}
	if c.cache != nil {
		if r, ok, err := c.queryCached(ctx, query, args); ok {
			return r, err
		}
	}
	qc, ok := c.Conn.(driver.QueryerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	r, err := qc.QueryContext(ctx, query, args)
	if err != nil {
		return nil, wrapErr(c.fn, err)
	}
	return &rows{Rows: r, fn: c.fn}, nil
}

func (c *conn) Ping(ctx context.Context) error {
	if p, ok := c.Conn.(driver.Pinger); ok {
		return wrapErr(c.fn, p.Ping(ctx))
	}
	return nil
}

func (c *conn) ResetSession(ctx context.Context) error {
	if r, ok := c.Conn.(driver.SessionResetter); ok {
		return wrapErr(c.fn, r.ResetSession(ctx))
	}
	return nil
}

func (c *conn) IsValid() bool {
	if c.broken {
		return false
	}
	if v, ok := c.Conn.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}

func (c *conn) CheckNamedValue(nv *driver.NamedValue) error {
	if n, ok := c.Conn.(driver.NamedValueChecker); ok {
		return n.CheckNamedValue(nv)
	}
	return driver.ErrSkip
}

type stmt struct {
	driver.Stmt
	conn  driver.Conn // for CheckNamedValue, which database/sql asks the statement first
	owner *conn       // whose queued writes go first
	fn    func(error) error
}

var (
	_ driver.StmtExecContext   = (*stmt)(nil)
	_ driver.StmtQueryContext  = (*stmt)(nil)
	_ driver.NamedValueChecker = (*stmt)(nil)
)

func (s *stmt) Close() error { return wrapErr(s.fn, s.Stmt.Close()) }

func (s *stmt) Exec(args []driver.Value) (driver.Result, error) {
	//lint:ignore SA1019 the non-context form is part of driver.Stmt
	r, err := s.Stmt.Exec(args) //nolint:staticcheck
	return r, wrapErr(s.fn, err)
}

func (s *stmt) Query(args []driver.Value) (driver.Rows, error) {
	//lint:ignore SA1019 the non-context form is part of driver.Stmt
	r, err := s.Stmt.Query(args) //nolint:staticcheck
	if err != nil {
		return nil, wrapErr(s.fn, err)
	}
	return &rows{Rows: r, fn: s.fn}, nil
}

func (s *stmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	if err := s.owner.flush(ctx); err != nil {
		return nil, err
	}
	ec, ok := s.Stmt.(driver.StmtExecContext)
	if !ok {
		vals, err := plainValues(args)
		if err != nil {
			return nil, err
		}
		return s.Exec(vals)
	}
	r, err := ec.ExecContext(ctx, args)
	return r, wrapErr(s.fn, err)
}

func (s *stmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	if err := s.owner.flush(ctx); err != nil {
		return nil, err
	}
	qc, ok := s.Stmt.(driver.StmtQueryContext)
	if !ok {
		vals, err := plainValues(args)
		if err != nil {
			return nil, err
		}
		return s.Query(vals)
	}
	r, err := qc.QueryContext(ctx, args)
	if err != nil {
		return nil, wrapErr(s.fn, err)
	}
	return &rows{Rows: r, fn: s.fn}, nil
}

// CheckNamedValue asks the statement, then the connection, as database/sql
// would have without the wrapper.
func (s *stmt) CheckNamedValue(nv *driver.NamedValue) error {
	if n, ok := s.Stmt.(driver.NamedValueChecker); ok {
		return n.CheckNamedValue(nv)
	}
	if n, ok := s.conn.(driver.NamedValueChecker); ok {
		return n.CheckNamedValue(nv)
	}
	return driver.ErrSkip
}

func plainValues(named []driver.NamedValue) ([]driver.Value, error) {
	out := make([]driver.Value, len(named))
	for i, nv := range named {
		if nv.Name != "" {
			return nil, errors.New("eventlog: driver does not support named parameters")
		}
		out[i] = nv.Value
	}
	return out, nil
}

// tx is a transaction; with Tx nil, a pipelined one whose BEGIN and
// COMMIT travel in the batches (pipeline.go).
type tx struct {
	driver.Tx
	fn func(error) error
	c  *conn
}

// Commit sends the writes still queued, then commits; if they fail, the
// transaction is rolled back and their error returned.
func (t *tx) Commit() error {
	t.c.batching = false
	if t.Tx == nil {
		return t.c.commitPipelined()
	}
	if err := t.c.flush(context.Background()); err != nil {
		t.Tx.Rollback()
		return err
	}
	return wrapErr(t.fn, t.Tx.Commit())
}

// Rollback drops the writes still queued and rolls back.
func (t *tx) Rollback() error {
	t.c.batching = false
	if t.Tx == nil {
		return t.c.rollbackPipelined()
	}
	t.c.queued = nil
	return wrapErr(t.fn, t.Tx.Rollback())
}

type rows struct {
	driver.Rows
	fn     func(error) error
	closed func() // run once by Close, if set
}

var (
	_ driver.RowsNextResultSet              = (*rows)(nil)
	_ driver.RowsColumnTypeScanType         = (*rows)(nil)
	_ driver.RowsColumnTypeDatabaseTypeName = (*rows)(nil)
	_ driver.RowsColumnTypeLength           = (*rows)(nil)
	_ driver.RowsColumnTypeNullable         = (*rows)(nil)
	_ driver.RowsColumnTypePrecisionScale   = (*rows)(nil)
)

func (r *rows) Next(dest []driver.Value) error { return endOrWrap(r.fn, r.Rows.Next(dest)) }
func (r *rows) Close() error {
	err := r.Rows.Close()
	if r.closed != nil {
		r.closed()
		r.closed = nil
	}
	return wrapErr(r.fn, err)
}

func (r *rows) HasNextResultSet() bool {
	n, ok := r.Rows.(driver.RowsNextResultSet)
	return ok && n.HasNextResultSet()
}

func (r *rows) NextResultSet() error {
	if n, ok := r.Rows.(driver.RowsNextResultSet); ok {
		return endOrWrap(r.fn, n.NextResultSet())
	}
	return io.EOF
}

func (r *rows) ColumnTypeScanType(i int) reflect.Type {
	if c, ok := r.Rows.(driver.RowsColumnTypeScanType); ok {
		return c.ColumnTypeScanType(i)
	}
	return reflect.TypeFor[any]()
}

func (r *rows) ColumnTypeDatabaseTypeName(i int) string {
	if c, ok := r.Rows.(driver.RowsColumnTypeDatabaseTypeName); ok {
		return c.ColumnTypeDatabaseTypeName(i)
	}
	return ""
}

func (r *rows) ColumnTypeLength(i int) (int64, bool) {
	if c, ok := r.Rows.(driver.RowsColumnTypeLength); ok {
		return c.ColumnTypeLength(i)
	}
	return 0, false
}

func (r *rows) ColumnTypeNullable(i int) (bool, bool) {
	if c, ok := r.Rows.(driver.RowsColumnTypeNullable); ok {
		return c.ColumnTypeNullable(i)
	}
	return false, false
}

func (r *rows) ColumnTypePrecisionScale(i int) (int64, int64, bool) {
	if c, ok := r.Rows.(driver.RowsColumnTypePrecisionScale); ok {
		return c.ColumnTypePrecisionScale(i)
	}
	return 0, 0, false
}
