package eventlog

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// The follow lease lets a followed log (follow.go) that is the only
// replica answer lookups from memory without a round first: the round is
// what makes a replica's cache exact when others append, and on a lone
// replica it is nothing but a query per few lookups, which halves the
// pulls it serves (ADR 0024).
//
// The lease is one row (follow_lease): the holder, and whether an appender
// is taking it away (revoking). The protocol:
//
//   - The holder takes it (acquire) under the write lock, only when no
//     other replica has been seen for a while (log_replicas, a policy, not
//     a guarantee), then runs a round, and only then trusts its cache.
//   - The holder gives it back (release) when it closes, and when its
//     renewal finds another replica present (one starting waits for that
//     in Open: join).
//   - The holder re-reads the row every term/4 (renew). Having read itself
//     as holder, not revoking, at monotonic time t0 (taken before the
//     query is sent), it answers lookups from memory until t0 + term -
//     term/4. Any other answer, or an error, ends its trust at once.
//   - Every append reads the row with the log's head, under the write lock
//     (record). An append of another process that finds a holder does not
//     commit: it marks the row revoking, waits term on its own clock from
//     then, clears the holder, and starts again (takeFollowLease).
//
// Why this is exact: an append A by another process commits only after
// reading the row empty under the write lock. Either the holder acquired
// after A committed (its round, begun after its acquisition, reads A), or
// the row was cleared before A read it: by the holder itself (release,
// which ends its trust first), or by someone who had seen the row
// revoking at some time Tr and waited term from then, while every read
// of the row that found it not revoking was begun before Tr, so the
// holder's trust ended before Tr + term, before A committed, before A
// returned. A lookup asked after A returned is then answered after a
// round, which reads A.
//
// What it rests on: the holder's and the appenders' monotonic clocks run
// at the same rate within term/4 over term (they do on one host, and with
// NTP across hosts), and a process paused past its trust re-checks the
// clock before each lookup. A holder whose machine is suspended, with its
// monotonic clock stopped, could trust past its term; ADR 0024 says so.
//
// Invariants: only the holder writes its id into the row (acquire); the
// row is cleared only by its holder (release) or by an appender that
// waited term since it saw the row revoking; trust is set only by the
// keeper, from a read of the row, after a round begun after the last
// distrust (a commit of unknown outcome, a rewound database).

// DefaultFollowLeaseTerm is the lease's term when OpenOptions sets none:
// how long another process's first append waits while a replica holds it.
const DefaultFollowLeaseTerm = 2 * time.Second

// maxFollowLeaseTerm bounds the term an appender waits out, whatever the
// row says.
const maxFollowLeaseTerm = time.Minute

// followQuietTerms is how many terms a replica waits after the lease was
// last taken away, or another replica was last seen, before it takes the
// lease: so that replicas that append now and then do not each pay a term
// per append, and a one-off appender (an "artifactstore gc") pays once.
const followQuietTerms = 15

// followLease is a followed log's side of the lease: its keeper goroutine
// and the trust lookups read.
type followLease struct {
	l    *Log
	term time.Duration
	base time.Time // trust is kept as nanoseconds since base (monotonic)

	// until is when trust ends, in nanoseconds since base; 0: no trust.
	until atomic.Int64
	// lastForeign is when another process's append was last announced
	// (Notified), in nanoseconds since base; 0: never.
	lastForeign atomic.Int64

	mu        sync.Mutex
	gen       uint64 // distrust counts here
	caughtGen uint64 // the gen a round has caught up past (acquire distrusts, so a round follows it)

	held bool // the keeper's view (only the keeper's goroutine): this process is the holder

	stop context.CancelFunc
	done chan struct{}
}

func newFollowLease(l *Log, term time.Duration) *followLease {
	return &followLease{l: l, term: term, base: time.Now()}
}

func newLogID() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Notified is told by the backend of every append another process
// announces (Dialect.Notify), with the appending log's ID, and wakes the
// readers. An append from a process that did not take the lease away
// first (one whose version has no lease: a rolling upgrade) ends this
// log's trust and keeps it from the lease for the quiet time: a safety
// net, since a notification arrives when it arrives, not a guarantee.
func (l *Log) Notified(from string) {
	if from != l.id && l.lease != nil {
		l.lease.foreign()
	}
	l.Wake()
}

// foreign notes an append of another process.
func (fl *followLease) foreign() {
	fl.lastForeign.Store(max(int64(time.Since(fl.base)), 1))
	fl.distrust()
}

// quiet reports whether no other process's append has been announced
// within the quiet time.
func (fl *followLease) quiet() bool {
	last := fl.lastForeign.Load()
	return last == 0 || time.Since(fl.base)-time.Duration(last) >= fl.term*followQuietTerms
}

// trusted reports whether a lookup asked now may skip its round.
func (fl *followLease) trusted() bool {
	if fl == nil {
		return false
	}
	u := fl.until.Load()
	return u != 0 && int64(time.Since(fl.base)) < u
}

// FollowLeaseHeld reports whether this log holds the follow lease and answers
// lookups from memory without a round: for operators (a replica that
// keeps it while others run means they cannot see each other's presence).
func (l *Log) FollowLeaseHeld() bool { return l.lease.trusted() }

// distrust ends trust until the keeper has run a round again.
func (fl *followLease) distrust() {
	if fl == nil {
		return
	}
	fl.mu.Lock()
	fl.gen++
	fl.until.Store(0)
	fl.mu.Unlock()
}

// start runs the keeper until Close.
func (fl *followLease) start() {
	ctx, stop := context.WithCancel(context.Background())
	fl.stop, fl.done = stop, make(chan struct{})
	go func() {
		defer close(fl.done)
		fl.keep(ctx)
	}()
}

// close stops the keeper, ends trust, and gives the lease and the
// presence row back, so that other processes need not wait out the term.
func (fl *followLease) close() {
	fl.stop()
	<-fl.done
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	fl.release(ctx)
	fl.l.db.ExecContext(ctx, fl.l.q(`DELETE FROM log_replicas WHERE id = ?`), fl.l.id)
}

// release ends trust, then gives the lease back.
func (fl *followLease) release(ctx context.Context) {
	fl.distrust()
	fl.l.db.ExecContext(ctx, fl.l.q(`UPDATE follow_lease SET holder = '', revoking = false WHERE id = 1 AND holder = ?`), fl.l.id)
}

// keep renews the lease while held, tries to take it while not, and
// writes this replica's presence, until ctx ends.
func (fl *followLease) keep(ctx context.Context) {
	tick := time.NewTicker(fl.term / 4)
	defer tick.Stop()
	var seen time.Time
	for {
		if time.Since(seen) >= fl.presenceEvery() {
			if fl.present(ctx) == nil {
				seen = time.Now()
			}
			if !fl.held && fl.quiet() {
				fl.held = fl.acquire(ctx) == nil
			}
		}
		if fl.held && !fl.quiet() {
			fl.release(ctx)
			fl.held = false
		}
		if fl.held {
			fl.renew(ctx)
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
	}
}

// quietStart is the wall-clock time, in nanoseconds, before which another
// replica's presence or a revocation no longer keeps this one from the
// lease.
func (fl *followLease) quietStart() int64 {
	return time.Now().Add(-fl.term * followQuietTerms).UnixNano()
}

// join writes this replica's presence and, when another replica holds the
// lease, waits for it to give the lease back on seeing that presence
// (renew), or takes it away after two terms (a holder that died holding
// it): so that the first appends this replica serves do not wait. Errors
// are left to the appends, which check the lease anyway.
func (fl *followLease) join(ctx context.Context) {
	if fl.present(ctx) != nil {
		return
	}
	deadline := time.Now().Add(2 * fl.term)
	for {
		var holder string
		if err := fl.l.db.QueryRowContext(ctx, `SELECT holder FROM follow_lease WHERE id = 1`).Scan(&holder); err != nil || holder == "" || holder == fl.l.id {
			return
		}
		if time.Now().After(deadline) {
			fl.l.takeFollowLease(holder)
			return
		}
		select {
		case <-time.After(fl.term / 8):
		case <-ctx.Done():
			return
		}
	}
}

// presenceEvery is how often a replica writes its presence: three times
// within the quiet time, so that a live replica is never taken for gone.
func (fl *followLease) presenceEvery() time.Duration { return fl.term * followQuietTerms / 3 }

func (fl *followLease) present(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, fl.term)
	defer cancel()
	_, err := fl.l.db.ExecContext(ctx, fl.l.q(`INSERT INTO log_replicas (id, seen_ns) VALUES (?, ?)
		ON CONFLICT (id) DO UPDATE SET seen_ns = excluded.seen_ns`), fl.l.id, time.Now().UnixNano())
	return err
}

// errNotTaken: the lease is someone else's, or taking it now is against
// the policy.
var errNotTaken = errors.New("follow lease not taken")

// acquire takes the lease when it is free and no other replica, nor any
// appender taking it away, has been here within the quiet time. Under the
// write lock: no append is between reading the row and committing.
func (fl *followLease) acquire(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, fl.term)
	defer cancel()
	quiet := fl.quietStart()
	tx, err := fl.l.begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, fl.l.q(`UPDATE follow_lease SET holder = ?, revoking = false, term_ns = ?
		WHERE id = 1 AND (holder = '' OR holder = ?) AND NOT revoking AND revoked_ns < ?
		AND NOT EXISTS (SELECT 1 FROM log_replicas WHERE id <> ? AND seen_ns > ?)`), fl.l.id, int64(fl.term), fl.l.id, quiet, fl.l.id, quiet)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return errNotTaken
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	// Trust only after a round begun now: appends committed before the
	// lease was taken are read by it, and none can commit after.
	fl.distrust()
	return nil
}

// renew reads the row; trust is kept for term - term/4 from before the
// read when it names this process, not revoking, and the cache has caught
// up since the last distrust. Anything else ends it.
func (fl *followLease) renew(ctx context.Context) {
	t0 := int64(time.Since(fl.base))
	rctx, cancel := context.WithTimeout(ctx, fl.term/2)
	var holder string
	var revoking, others bool
	err := fl.l.db.QueryRowContext(rctx, fl.l.q(`SELECT holder, revoking, EXISTS (SELECT 1 FROM log_replicas WHERE id <> ? AND seen_ns > ?)
		FROM follow_lease WHERE id = 1`), fl.l.id, fl.quietStart()).Scan(&holder, &revoking, &others)
	cancel()
	if err == nil && holder == fl.l.id && others {
		// Another replica has started: give the lease back before its
		// first append has to take it (join).
		fl.release(ctx)
		fl.held = false
		return
	}
	if err != nil || holder != fl.l.id || revoking {
		// Trusted again only after taking the lease again (acquire), and
		// a round; a failed read may hold it still: read again next tick.
		fl.mu.Lock()
		fl.until.Store(0)
		fl.mu.Unlock()
		fl.held = err != nil
		return
	}
	fl.mu.Lock()
	gen, caught := fl.gen, fl.caughtGen
	fl.mu.Unlock()
	if caught != gen {
		// A round that begins now reads every append committed before it:
		// those before this process held the lease, or before the
		// distrust. None can commit after it while the row is as read.
		if err := fl.l.follow.fresh(ctx); err != nil {
			return
		}
	}
	fl.mu.Lock()
	defer fl.mu.Unlock()
	if caught != gen {
		fl.caughtGen = gen
	}
	if fl.gen == gen {
		fl.until.Store(max(t0+int64(fl.term-fl.term/4), 1))
	}
}

// takeFollowLease is what an append of this process does on finding the
// lease held by another: mark it revoking, wait out its term, then clear
// it. The caller starts its transaction again afterwards.
func (l *Log) takeFollowLease(holder string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var term int64
	err := l.db.QueryRowContext(ctx, l.q(`UPDATE follow_lease SET revoking = true, revoked_ns = ? WHERE id = 1 AND holder = ? RETURNING term_ns`),
		time.Now().UnixNano(), holder).Scan(&term)
	if errors.Is(err, sql.ErrNoRows) {
		return nil // given back or taken meanwhile: the caller reads the row again
	}
	if err != nil {
		return fmt.Errorf("append: take the follow lease from replica %s: %w", holder, err)
	}
	// Seen revoking (by this process or another) no earlier than now:
	// every read by the holder that found it not revoking came before.
	select {
	case <-time.After(time.Duration(min(term, int64(maxFollowLeaseTerm)))):
	case <-l.quit:
		return ErrClosed
	}
	if _, err := l.db.ExecContext(ctx, l.q(`UPDATE follow_lease SET holder = '', revoking = false WHERE id = 1 AND holder = ? AND revoking`), holder); err != nil {
		return fmt.Errorf("append: take the follow lease from replica %s: %w", holder, err)
	}
	return nil
}

// headAndHolder reads the log's head and the follow lease's holder, in
// one query, under the write lock (record).
func (l *Log) headAndHolder(ctx context.Context, tx *sql.Tx) (int64, []byte, string, error) {
	var seq sql.NullInt64
	var hash []byte
	var holder sql.NullString // no row (removed by hand): no holder can renew either
	err := tx.QueryRowContext(ctx, `SELECT e.seq, e.hash, (SELECT holder FROM follow_lease WHERE id = 1)
		FROM (SELECT 1) one LEFT JOIN (SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1) e ON true`).Scan(&seq, &hash, &holder)
	if err != nil {
		return 0, nil, "", fmt.Errorf("read log head: %w", err)
	}
	if !seq.Valid {
		return 0, genesis, holder.String, nil
	}
	return seq.Int64, hash, holder.String, nil
}
