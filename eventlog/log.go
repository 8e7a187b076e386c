package eventlog

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/artifact-store/artifact-store/migrations"
)

// ErrNotFound is returned by view queries for rows that do not exist.
var ErrNotFound = errors.New("not found")

// Dialect describes the SQL differences between backends.
type Dialect struct {
	// Name selects the migration set ("sqlite", "postgres").
	Name string
	// Numbered placeholders ($1, $2, ...) instead of "?".
	Numbered bool
	// Notify, when set, is run in every appending transaction to tell
	// other processes, once it commits, that the log has grown
	// (PostgreSQL: pg_notify). Its one parameter is the appending log's
	// ID, which the backend passes to Notified. In-process readers are
	// woken either way.
	Notify string
	// KeyLock and KeyUnlock, when set, take and release a session-wide
	// lock on one int32 key (the only parameter) across processes; see
	// LockUpload.
	KeyLock, KeyUnlock string
	// WriteLock, when set, is run first in every transaction that appends
	// or migrates. It must serialise such transactions across every
	// process sharing the database, so that sequence numbers are assigned
	// in commit order (PostgreSQL: an advisory transaction lock). SQLite
	// needs none: its write transactions are already serial.
	WriteLock string
	// Analyze, when set, is run with the view tables' names (comma
	// separated) once Replay has rebuilt them (PostgreSQL: ANALYZE), so
	// that the planner knows their new sizes before autovacuum gets to
	// them: a join over tables it has no statistics for can be planned as
	// a scan on every lookup. SQLite's planner needs none.
	Analyze string
	// CommitterSetup, when set, makes the committer keep one connection
	// of its own for its group commits and run this statement on it once
	// (SQLite: PRAGMA temp_store = MEMORY, for the savepoints' statement
	// journals). Empty: each group takes a connection from the pool.
	CommitterSetup string
	// GroupSetup, when set, is run in every group commit's transaction
	// after the write lock (PostgreSQL: SET LOCAL plan_cache_mode =
	// force_generic_plan). Where writes are pipelined it travels with the
	// BEGIN, at no round trip.
	GroupSetup string
	// EventRows: an append's events are inserted in one multi-row
	// statement rather than one each. Worth it where every statement is a
	// message the database decodes and runs on its own (PostgreSQL: 3 %
	// more small pushes, 7 % less of its CPU); SQLite's prepared
	// statement per row costs less than building the longer one.
	EventRows bool
	// FollowLease: the database has the follow_lease table
	// (followlease.go), which every append reads with the log's head, and
	// which a followed log may hold.
	FollowLease bool
}

// Log is the event log and its views over one database.
//
// Appends are group-committed: one goroutine takes every append waiting at
// that moment and records them in one transaction, so concurrent writers
// share one fsync instead of queueing for one each. Each append still
// succeeds or fails on its own (a group in which one fails is recorded
// again, a savepoint per append), and none returns
// before its transaction is durable.
type Log struct {
	db      *sql.DB
	dialect Dialect
	now     func() time.Time

	// commitMu is held while a transaction writes events or rebuilds the
	// views, so that Replay never interleaves with a group commit.
	commitMu sync.Mutex
	queue    chan *appendReq
	// committerConn is the committer's own connection when the dialect
	// asks for one (CommitterSetup); only the committer uses it, and Close
	// after the committer has stopped.
	committerConn *sql.Conn
	// repos are the repositories whose rows this process knows exist
	// (commitMu): apply skips their INSERT, one statement of every push
	// (knownrepos.go).
	repos knownRepos
	// isolateNext counts the groups still to take savepoints from their
	// first attempt, after one abandoned for a failure (record). Only the
	// committer uses it.
	isolateNext int
	quit        chan struct{} // closed by Close
	stopped     chan struct{} // closed when the committer has exited

	lockDB *sql.DB    // connections for LockBlob; nil: use db
	leases leaseTable // upload leases, when the dialect has no KeyLock (SQLite)

	numbered  sync.Map     // query text → its rewrite by q
	numberedN atomic.Int32 // entries in numbered

	cache          *blobCache                                    // nil unless opened Exclusive or Follow
	follow         *follower                                     // nil unless opened Follow
	lease          *followLease                                  // nil unless opened Follow, with a dialect that has the lease
	id             string                                        // this log's name among the processes sharing the database (Notify, follow_lease)
	lookups        struct{ memory, views, rounds atomic.Uint64 } // see LookupStats
	uploadsChanged atomic.Uint64                                 // see UploadsChanged

	observed atomic.Int64             // see Observed
	observer atomic.Pointer[Observer] // see SetObserver
	tracer   atomic.Pointer[Tracer]   // see SetTracer

	changedMu sync.Mutex
	changed   chan struct{} // closed and replaced whenever the log may have grown
	closers   []func()
}

// appendReq is one Append waiting for the committer.
type appendReq struct {
	evs  []Event
	out  []Event
	err  error
	done chan struct{}
	// with are appends that must share this one's group commit
	// (AppendEach); the committer takes them along.
	with []*appendReq
}

// maxGroup bounds the appends committed in one transaction.
const maxGroup = 256

// ErrClosed is returned by Append after Close.
var ErrClosed = errors.New("event log closed")

// Open wraps db, applying pending migrations unless told not to.
func Open(ctx context.Context, db *sql.DB, d Dialect, opts OpenOptions) (*Log, error) {
	l := &Log{db: db, dialect: d, now: time.Now,
		queue: make(chan *appendReq, maxGroup), quit: make(chan struct{}), stopped: make(chan struct{}),
		changed: make(chan struct{}), id: newLogID()}
	if opts.Exclusive || opts.Follow {
		l.cache = newBlobCache(blobCacheBytes)
	}
	ms, err := migrations.For(d.Name)
	if err != nil {
		return nil, err
	}
	if opts.NoMigrate {
		pending, err := l.pending(ctx, ms)
		if err != nil {
			return nil, err
		}
		if len(pending) > 0 {
			return nil, fmt.Errorf("%w: %s; run \"artifactstore migrate\"", ErrMigrationsPending, strings.Join(pending, ", "))
		}
	} else if _, err := l.migrate(ctx, ms); err != nil {
		return nil, err
	}
	head, err := l.Head(ctx)
	if err != nil {
		return nil, err
	}
	if l.cache != nil {
		l.cache.applied = head // it starts empty: nothing before the head can change it
	}
	if opts.Follow && !opts.Exclusive {
		l.follow = newFollower(l)
		if d.FollowLease && opts.FollowLeaseTerm >= 0 {
			term := opts.FollowLeaseTerm
			if term == 0 {
				term = DefaultFollowLeaseTerm
			}
			l.lease = newFollowLease(l, min(term, maxFollowLeaseTerm))
		}
	}
	go l.committer()
	if l.lease != nil {
		l.lease.join(ctx)
		l.lease.start()
	}
	return l, nil
}

// Close stops accepting appends, waits for the transaction in progress and
// closes the database.
func (l *Log) Close() error {
	select {
	case <-l.quit:
	default:
		close(l.quit)
	}
	<-l.stopped
	if l.lease != nil {
		l.lease.close()
	}
	if l.follow != nil {
		l.follow.stop()
	}
	if l.committerConn != nil {
		l.committerConn.Close()
	}
	l.changedMu.Lock()
	closers := l.closers
	l.closers = nil
	l.changedMu.Unlock()
	for _, fn := range closers {
		fn()
	}
	if l.lockDB != nil {
		l.lockDB.Close()
	}
	return l.db.Close()
}

// q rewrites "?" placeholders for the dialect. Every query of the
// PostgreSQL dialect passes here, the committer's view writes included, so
// rewrites are kept. Texts built at run time (IN lists, up to a thousand
// keys in a group's facts query) take many shapes: only short texts are
// kept, at most maxNumbered of them, so what is kept stays within a few
// megabytes whatever the workload; longer ones are rewritten each time.
func (l *Log) q(query string) string {
	if !l.dialect.Numbered {
		return query
	}
	if len(query) > maxNumberedLen {
		return numberPlaceholders(query)
	}
	if v, ok := l.numbered.Load(query); ok {
		return v.(string)
	}
	out := numberPlaceholders(query)
	if l.numberedN.Load() < maxNumbered {
		if _, loaded := l.numbered.LoadOrStore(query, out); !loaded {
			l.numberedN.Add(1)
		}
	}
	return out
}

// maxNumbered and maxNumberedLen bound the rewrites q keeps: 1,024 texts
// of at most 1 KiB each, with their rewrites. The log's fixed texts are a
// few hundred, nearly all shorter.
const (
	maxNumbered    = 1024
	maxNumberedLen = 1024
)

// numberPlaceholders turns each "?" of query into $1, $2, ... in order.
func numberPlaceholders(query string) string {
	n := strings.Count(query, "?")
	if n == 0 {
		return query
	}
	b := make([]byte, 0, len(query)+4*n)
	for k := 1; ; k++ {
		i := strings.IndexByte(query, '?')
		if i < 0 {
			return string(append(b, query...))
		}
		b = strconv.AppendInt(append(append(b, query[:i]...), '$'), int64(k), 10)
		query = query[i+1:]
	}
}

// begin starts a writing transaction holding the dialect's write lock.
func (l *Log) begin(ctx context.Context) (*sql.Tx, error) {
	return l.beginOn(ctx, l.db)
}

// beginOn begins a transaction on b (the pool, or one connection) and
// takes the dialect's write lock in it.
func (l *Log) beginOn(ctx context.Context, b interface {
	BeginTx(context.Context, *sql.TxOptions) (*sql.Tx, error)
}) (*sql.Tx, error) {
	tx, err := b.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	if l.dialect.WriteLock != "" {
		if _, err := tx.ExecContext(ctx, l.dialect.WriteLock); err != nil {
			tx.Rollback()
			return nil, fmt.Errorf("take write lock: %w", err)
		}
	}
	return tx, nil
}

// beginGroup begins a group commit's transaction: on the committer's own
// connection when the dialect asks for one, otherwise as begin does. A
// connection that fails to begin is given up, and the next group opens
// another. The dialect's GroupSetup runs in it after the write lock.
func (l *Log) beginGroup(ctx context.Context) (*sql.Tx, error) {
	tx, err := l.beginGroupTx(ctx)
	if err != nil || l.dialect.GroupSetup == "" {
		return tx, err
	}
	if _, err := tx.ExecContext(ctx, l.dialect.GroupSetup); err != nil {
		tx.Rollback()
		return nil, fmt.Errorf("set up the group commit: %w", err)
	}
	return tx, nil
}

func (l *Log) beginGroupTx(ctx context.Context) (*sql.Tx, error) {
	if l.dialect.CommitterSetup == "" {
		return l.begin(ctx)
	}
	if l.committerConn == nil {
		c, err := l.db.Conn(ctx)
		if err != nil {
			return nil, err
		}
		if _, err := c.ExecContext(ctx, l.dialect.CommitterSetup); err != nil {
			c.Close()
			return nil, fmt.Errorf("set up the committer's connection: %w", err)
		}
		l.committerConn = c
	}
	tx, err := l.beginOn(ctx, l.committerConn)
	if err != nil {
		l.committerConn.Close()
		l.committerConn = nil
	}
	return tx, err
}

// Append assigns the next sequence numbers, time and chain hashes to evs,
// inserts them and applies them to the views, all in one transaction, and
// returns the events as recorded once they are durable. Either every event
// of evs is recorded and applied, or none is.
func (l *Log) Append(ctx context.Context, evs ...Event) (out []Event, err error) {
	if len(evs) == 0 {
		return nil, nil
	}
	evs = stamp(ctx, evs)
	if t := l.tracer.Load(); t != nil {
		var end func(error)
		ctx, end = (*t)(ctx, len(evs))
		defer func() { end(err) }()
	}
	if o := l.obs(); o != nil {
		start := time.Now()
		out, err = l.append(ctx, evs)
		o.Appended(time.Since(start), len(evs), err)
		return out, err
	}
	return l.append(ctx, evs)
}

// stamp gives events without an actor the one ctx carries.
func stamp(ctx context.Context, evs []Event) []Event {
	a := ActorFrom(ctx)
	if a.IsZero() {
		return evs
	}
	stamped := make([]Event, len(evs))
	for i, e := range evs {
		if e.Actor.IsZero() {
			e.Actor = a
		}
		stamped[i] = e
	}
	return stamped
}

// AppendEach records each of batches as an append of its own, all in one
// group commit (one transaction, one flush): each succeeds or fails alone,
// exactly as if they had been appended concurrently, and its outcome is at
// the same index of the results (an empty batch records nothing). Batches
// beyond maxGroup go in further groups. It lets a bulk writer share one
// flush among many appends, and a test hold a group's make-up fixed.
func (l *Log) AppendEach(ctx context.Context, batches ...[]Event) ([][]Event, []error) {
	outs, errs := make([][]Event, len(batches)), make([]error, len(batches))
	for start := 0; start < len(batches); start += maxGroup {
		var at []int
		var reqs []*appendReq
		for i := start; i < min(start+maxGroup, len(batches)); i++ {
			if len(batches[i]) > 0 {
				at = append(at, i)
				reqs = append(reqs, &appendReq{evs: stamp(ctx, batches[i]), done: make(chan struct{})})
			}
		}
		if len(reqs) == 0 {
			continue
		}
		reqs[0].with = reqs[1:]
		// A span per append, as Append makes, each ended with its own
		// outcome.
		ends := make([]func(error), len(reqs))
		if t := l.tracer.Load(); t != nil {
			for k, r := range reqs {
				_, ends[k] = (*t)(ctx, len(r.evs))
			}
		}
		began := time.Now()
		if err := l.enqueue(ctx, reqs[0]); err != nil {
			for k, i := range at {
				errs[i] = err
				if ends[k] != nil {
					ends[k](err)
				}
			}
			continue
		}
		for k, r := range reqs {
			outs[at[k]], errs[at[k]] = l.outcome(r)
			if o := l.obs(); o != nil {
				o.Appended(time.Since(began), len(r.evs), errs[at[k]])
			}
			if ends[k] != nil {
				ends[k](errs[at[k]])
			}
		}
	}
	return outs, errs
}

// append queues evs for the committer and waits for the outcome.
func (l *Log) append(ctx context.Context, evs []Event) ([]Event, error) {
	req := &appendReq{evs: evs, done: make(chan struct{})}
	if err := l.enqueue(ctx, req); err != nil {
		return nil, err
	}
	return l.outcome(req)
}

// enqueue hands req to the committer.
func (l *Log) enqueue(ctx context.Context, req *appendReq) error {
	select {
	case l.queue <- req:
		return nil
	case <-l.quit:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// outcome waits for the committer to decide req. Once queued, an append
// is decided by the committer: its outcome is waited for rather than the
// caller's context, so that a cancelled caller is never told "failed"
// about events that were in fact recorded.
func (l *Log) outcome(req *appendReq) ([]Event, error) {
	select {
	case <-req.done:
		return req.out, req.err
	case <-l.stopped:
		select {
		case <-req.done:
			return req.out, req.err
		default:
			return nil, ErrClosed
		}
	}
}

// committer records queued appends, as many as are waiting, per transaction.
func (l *Log) committer() {
	defer close(l.stopped)
	for {
		var first *appendReq
		select {
		case first = <-l.queue:
		case <-l.quit:
			return
		}
		l.commitGroup(first)
	}
}

// gather adds to group the appends waiting in the queue, up to maxGroup
// (an AppendEach's batches come whole, so a group holds fewer than twice
// that).
func (l *Log) gather(group []*appendReq) []*appendReq {
	for len(group) < maxGroup {
		select {
		case r := <-l.queue:
			group = append(append(group, r), r.with...)
		default:
			return group
		}
	}
	return group
}

// commitGroup records first and the appends waiting with it in one
// transaction, so that one failing append does not fail the others: a
// first attempt without savepoints, and when an append fails in it, a
// second with a savepoint per append (record). The group is gathered
// once the transaction holds the write lock: appends that arrived while
// it waited for the lock (another replica's group commit, on PostgreSQL)
// join this transaction instead of waiting for the next, so the commits,
// and their flushes, get fewer as contention grows.
func (l *Log) commitGroup(first *appendReq) {
	group := append([]*appendReq{first}, first.with...)
	start := time.Now()
	defer func() {
		if o := l.obs(); o != nil {
			o.Committed(len(group), time.Since(start))
		}
		for _, r := range group {
			close(r.done)
		}
	}()
	l.commitMu.Lock()
	defer l.commitMu.Unlock()
	var abandoned bool
	group, abandoned = l.record(group, false)
	if !abandoned {
		if l.isolateNext > 0 {
			l.isolateNext--
		}
		return
	}
	for _, r := range group {
		r.out, r.err = nil, nil
	}
	l.isolateNext = isolateAfterFailure
	l.record(group, true)
}

// isolateAfterFailure is how many groups take savepoints from their
// first attempt after a failure abandoned one (record): a stream of
// failing appends costs at most one group in that many a second attempt.
const isolateAfterFailure = 16

// savepoints is how many appends of a group may have writes in flight at
// once. Each append's savepoint is named after its place among as many,
// so that no two of them in flight share a name: rolling back to an
// append's savepoint then succeeds only if that savepoint was taken, that
// is, only if every statement sent before it succeeded.
const savepoints = 16

var savepointNames = func() (names [savepoints]string) {
	for i := range names {
		names[i] = "append" + strconv.Itoa(i)
	}
	return names
}()

// record makes one attempt at recording group, and returns it with the
// appends gathered on the way. Writes are pipelined where the driver can
// (pipeline.go), and sent at the latest at the group's end, before its
// COMMIT. A first attempt takes no savepoints (unless a recent group
// failed, isolateNext): when a statement fails, it is abandoned, nothing
// of it recorded, for a careful one. With savepoints, writes are sent at
// the latest every savepoints appends, and the failing append is rolled
// back to its savepoint and fails alone; when that rollback fails too,
// the failure belongs to an earlier append whose writes were still in
// flight, and a first attempt is abandoned likewise. The careful attempt
// sends every append's writes when its savepoint is released, so that a
// failure is always its append's own.
func (l *Log) record(group []*appendReq, careful bool) (_ []*appendReq, abandoned bool) {
	fail := func(err error) {
		for _, r := range group {
			if r.err == nil {
				r.out, r.err = nil, err
			}
		}
	}
	ctx := batched(context.Background())
	tx, err := l.beginGroup(ctx)
	if err != nil {
		if !careful {
			group = l.gather(group)
		}
		fail(fmt.Errorf("append: begin: %w", err))
		return group, false
	}
	defer tx.Rollback()
	l.repos.pending = l.repos.pending[:0]
	seq, prev, holder, err := l.headUnderLock(ctx, tx) // with pipelined writes, this takes the write lock
	if !careful {
		group = l.gather(group)
	}
	if err != nil {
		fail(err)
		return group, false
	}
	if holder != "" && (l.lease == nil || holder != l.id) {
		// Another replica answers lookups from memory: this append may
		// commit only once its trust has ended (followlease.go).
		tx.Rollback()
		if err := l.takeFollowLease(holder); err != nil {
			fail(err)
			return group, false
		}
		return l.record(group, careful)
	}
	if l.cache != nil && l.cache.rewound(seq) {
		l.lease.distrust()
	}
	l.repos.rewound(seq)
	facts, err := l.readFacts(ctx, tx, group)
	if err != nil {
		fail(err)
		return group, false
	}
	now := l.now().UTC()
	// A first attempt takes no savepoints (unless a recent group failed):
	// they cost every append a copy of each page it changes (SQLite's
	// statement journal) or a subtransaction (PostgreSQL), 7 % of a small
	// push's CPU on SQLite and 5-10 % on PostgreSQL. Should an append
	// fail, the attempt is abandoned, nothing of it recorded, and the group
	// run again with them. Every failure shows before the commit: at the
	// failing statement, or, where writes are pipelined, at the flush
	// that ends the attempt.
	isolate := len(group) > 1 && (careful || l.isolateNext > 0)
	for i, r := range group {
		name := savepointNames[i%savepoints]
		if isolate {
			if _, err := tx.ExecContext(ctx, "SAVEPOINT "+name); err != nil {
				fail(err)
				return group, false
			}
		}
		mark := len(l.repos.pending)
		out, err := l.insert(ctx, tx, seq, prev, now, r.evs, facts)
		if err == nil && isolate {
			send := ctx
			if careful || i%savepoints == savepoints-1 || i == len(group)-1 {
				send = flushing(ctx)
			}
			_, err = tx.ExecContext(send, "RELEASE SAVEPOINT "+name)
		}
		if err != nil {
			if !isolate {
				if len(group) > 1 { // the others must not fail with it
					return group, true
				}
				r.err = err
				return group, false
			}
			// Writes of this append still queued go first, on their own:
			// were one of them refused in the same batch as the rollback,
			// the rollback would be skipped with it. Their failure, if any,
			// is judged by the rollback.
			tx.ExecContext(flushing(ctx), "SELECT 1")
			if _, rerr := tx.ExecContext(flushing(ctx), "ROLLBACK TO SAVEPOINT "+name); rerr != nil {
				if !careful {
					return group, true
				}
				r.err = err
				fail(rerr)
				return group, false
			}
			r.err = err
			l.repos.pending = l.repos.pending[:mark] // rolled back with it
			if _, err := tx.ExecContext(ctx, "RELEASE SAVEPOINT "+name); err != nil {
				fail(err)
				return group, false
			}
		} else {
			r.out = out
			seq, prev = out[len(out)-1].Seq, out[len(out)-1].Hash
		}
	}
	if l.dialect.Notify != "" {
		if _, err := tx.ExecContext(ctx, l.q(l.dialect.Notify), l.id); err != nil {
			fail(fmt.Errorf("append: notify: %w", err))
			return group, false
		}
	}
	// Writes still queued go with the COMMIT, in one round trip. A
	// refusal among them means nothing was committed: an attempt without
	// savepoints is abandoned for a careful one, as at any failed write.
	if err := tx.Commit(); err != nil {
		refused := errors.Is(err, ErrQueuedWriteRefused)
		if refused && !isolate && len(group) > 1 {
			return group, true
		}
		if l.cache != nil && !refused { // what the database kept is not known
			l.cache.reset()
			l.lease.distrust()
		}
		fail(fmt.Errorf("append: commit: %w", err))
		return group, false
	}
	var evs []Event
	for _, r := range group {
		if r.err == nil {
			evs = append(evs, r.out...)
		}
	}
	if len(evs) > 0 {
		l.repos.committed(evs[len(evs)-1].Seq)
	}
	if l.cache != nil {
		l.cache.committed(evs)
	}
	if slices.ContainsFunc(evs, changesUploadCounts) {
		l.uploadsChanged.Add(1)
	}
	l.observe(seq)
	l.Wake()
	return group, false
}

// UploadsChanged counts the group commits of this process that may have
// changed the open sessions OpenUploads counts: an upload.started, or an
// end other than that of a session never recorded. A caller that keeps an
// answer of OpenUploads knows it still holds for this process's appends
// while the count is unchanged (another replica's are not counted).
func (l *Log) UploadsChanged() uint64 { return l.uploadsChanged.Load() }

func changesUploadCounts(e Event) bool {
	switch e.Type {
	case TypeUploadStarted, TypeUploadCancelled:
		return true
	case TypeUploadFinished:
		var p UploadFinished
		return e.Decode(&p) != nil || !p.Unrecorded
	}
	return false
}

// insertEvents begins the statement that stores events, one row per
// eventValues (see eventRow for the values, in this order).
const (
	insertEvents = `INSERT INTO events (seq, time_ns, type, repo, payload, prev_hash, hash, actor) VALUES `
	eventValues  = `(?, ?, ?, ?, ?, ?, ?, ?)`
)

// eventRow is e's row of the events table, in insertEvents' order.
func eventRow(e Event) []any {
	return []any{e.Seq, e.Time.UnixNano(), string(e.Type), e.Repo, e.Payload, e.PrevHash, e.Hash, e.Actor.encode()}
}

// insert records evs after the event (seq, prev) and applies them; facts
// (may be nil) answer checks for the group evs belong to.
func (l *Log) insert(ctx context.Context, tx *sql.Tx, seq int64, prev []byte, now time.Time, evs []Event, facts *groupFacts) ([]Event, error) {
	out := make([]Event, len(evs))
	var rows [][]any
	var committed committedHere
	for i, e := range evs {
		seq++
		e = facts.withoutKeptContent(e)
		e.Seq, e.Time, e.PrevHash = seq, now, prev
		if err := l.guard(ctx, tx, e, committed, facts); err != nil {
			return nil, err
		}
		committed = committed.add(e)
		e.Hash = chainHash(e)
		prev = e.Hash
		row := eventRow(e)
		if l.dialect.EventRows {
			rows = append(rows, row)
		} else if _, err := tx.ExecContext(ctx, l.q(insertEvents+eventValues), row...); err != nil {
			return nil, fmt.Errorf("append %s: %w", e.Type, err)
		}
		if err := l.apply(ctx, tx, e); err != nil {
			return nil, err
		}
		out[i] = e
	}
	// With EventRows, the append's events go in one statement after their
	// projections: neither a guard nor a projection reads the events
	// table, and the append is one transaction (or savepoint) either way.
	if err := l.insertRows(ctx, tx, insertEvents+"%s", rows); err != nil {
		return nil, fmt.Errorf("append %s: %w", evs[0].Type, err)
	}
	return out, nil
}

// headUnderLock returns the last sequence number and hash (0 and genesis
// if empty), and the follow lease's holder where the dialect has one.
func (l *Log) headUnderLock(ctx context.Context, tx *sql.Tx) (int64, []byte, string, error) {
	if l.dialect.FollowLease {
		return l.headAndHolder(ctx, tx)
	}
	seq, hash, err := l.head(ctx, tx)
	return seq, hash, "", err
}

// head returns the last sequence number and hash (0 and genesis if empty).
func (l *Log) head(ctx context.Context, tx *sql.Tx) (int64, []byte, error) {
	var seq int64
	var hash []byte
	err := tx.QueryRowContext(ctx, `SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1`).Scan(&seq, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, genesis, nil
	}
	if err != nil {
		return 0, nil, fmt.Errorf("read log head: %w", err)
	}
	return seq, hash, nil
}

// Events calls fn for each event with a sequence number above after, in
// order, stopping early if fn returns an error.
func (l *Log) Events(ctx context.Context, after int64, fn func(Event) error) error {
	rows, err := l.db.QueryContext(ctx, l.q(`SELECT seq, time_ns, type, repo, payload, prev_hash, hash, actor FROM events WHERE seq > ? ORDER BY seq`), after)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return err
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return rows.Err()
}

func scanEvent(rows *sql.Rows) (Event, error) {
	var e Event
	var ns int64
	var typ, actor string
	if err := rows.Scan(&e.Seq, &ns, &typ, &e.Repo, &e.Payload, &e.PrevHash, &e.Hash, &actor); err != nil {
		return e, err
	}
	e.Time, e.Type = time.Unix(0, ns).UTC(), Type(typ)
	var err error
	e.Actor, err = decodeActor(actor)
	return e, err
}

// ChainError describes a break in the hash chain.
type ChainError struct {
	Seq    int64
	Reason string
}

func (e *ChainError) Error() string { return fmt.Sprintf("event %d: %s", e.Seq, e.Reason) }

// VerifyChain walks the whole log and reports every event whose sequence
// number, PrevHash or Hash is not what the chain requires. It returns the
// number of events checked.
func (l *Log) VerifyChain(ctx context.Context) (int64, []ChainError, error) {
	var n int64
	var bad []ChainError
	prev, want := genesis, int64(1)
	err := l.Events(ctx, 0, func(e Event) error {
		n++
		if e.Seq != want {
			bad = append(bad, ChainError{e.Seq, fmt.Sprintf("sequence gap: expected %d", want)})
		}
		if !bytes.Equal(e.PrevHash, prev) {
			bad = append(bad, ChainError{e.Seq, "prev_hash does not match the previous event's hash"})
		}
		if !bytes.Equal(chainHash(e), e.Hash) {
			bad = append(bad, ChainError{e.Seq, "hash does not match the event's contents"})
		}
		prev, want = e.Hash, e.Seq+1
		return nil
	})
	return n, bad, err
}
