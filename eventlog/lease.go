package eventlog

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrBusy is returned by LeaseUpload when another request holds the
// upload's lease and does not give it up within the wait.
var ErrBusy = errors.New("busy")

// Lease is the right, held by one request, to change one upload session's
// staged bytes. It is not a lock that waits: it expires by itself after its
// TTL unless renewed, so a request that dies, or one stuck on a client
// that went quiet, never keeps the session from others for longer than
// the TTL, and holding one costs no database connection.
//
// Invariant: at most one unexpired lease per upload exists at any moment,
// across every process sharing the database. Holders renew while they make
// progress (Renew) and must stop touching the upload when Renew fails.
type Lease struct {
	l      *Log
	id     string
	holder string
	ttl    time.Duration
}

// leaseTable holds the leases of a log without cross-process locks
// (SQLite: one process owns the database), in memory.
type leaseTable struct {
	mu     sync.Mutex
	leases map[string]memLease
}

type memLease struct {
	holder  string
	expires time.Time
}

// leaseRetry is how often LeaseUpload tries again while it waits.
const leaseRetry = 20 * time.Millisecond

// LeaseUpload takes the lease of upload id for ttl, waiting up to wait for
// a current holder to release it or for its lease to expire; then it gives
// up with ErrBusy.
func (l *Log) LeaseUpload(ctx context.Context, id string, ttl, wait time.Duration) (*Lease, error) {
	var b [12]byte
	rand.Read(b[:])
	ls := &Lease{l: l, id: id, holder: hex.EncodeToString(b[:]), ttl: ttl}
	deadline := time.Now().Add(wait)
	for {
		ok, err := ls.acquire(ctx)
		if err != nil {
			return nil, fmt.Errorf("lease upload %s: %w", id, err)
		}
		if ok {
			return ls, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%w: another request is working on upload %s", ErrBusy, id)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(leaseRetry):
		}
	}
}

// acquire takes the lease if it is free or expired (or already ours, so
// that it doubles as renewal).
func (ls *Lease) acquire(ctx context.Context) (bool, error) {
	now := ls.l.now()
	exp := now.Add(ls.ttl)
	if ls.l.dialect.KeyLock == "" {
		t := &ls.l.leases
		t.mu.Lock()
		defer t.mu.Unlock()
		if cur, ok := t.leases[ls.id]; ok && cur.holder != ls.holder && cur.expires.After(now) {
			return false, nil
		}
		if t.leases == nil {
			t.leases = make(map[string]memLease)
		}
		t.leases[ls.id] = memLease{ls.holder, exp}
		return true, nil
	}
	// One statement, atomic under PostgreSQL's row locking: insert, or
	// take over a lease that is ours or has expired.
	res, err := ls.l.db.ExecContext(ctx, ls.l.q(`INSERT INTO upload_leases (id, holder, expires_ns) VALUES (?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET holder = excluded.holder, expires_ns = excluded.expires_ns
		WHERE upload_leases.holder = excluded.holder OR upload_leases.expires_ns < ?`),
		ls.id, ls.holder, exp.UnixNano(), now.UnixNano())
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// Renew extends the lease by its TTL from now. It fails if the lease
// expired and another request took it meanwhile: the holder must then stop
// changing the upload.
func (ls *Lease) Renew(ctx context.Context) error {
	ok, err := ls.acquire(ctx)
	if err != nil {
		return fmt.Errorf("renew lease of upload %s: %w", ls.id, err)
	}
	if !ok {
		return fmt.Errorf("%w: the lease of upload %s expired and was taken by another request", ErrBusy, ls.id)
	}
	return nil
}

// Release gives the lease up, if it is still ours.
func (ls *Lease) Release() {
	if ls.l.dialect.KeyLock == "" {
		t := &ls.l.leases
		t.mu.Lock()
		if cur, ok := t.leases[ls.id]; ok && cur.holder == ls.holder {
			delete(t.leases, ls.id)
		}
		t.mu.Unlock()
		return
	}
	// A context of its own: the request's may be cancelled. If this
	// fails, the lease expires by itself.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ls.l.db.ExecContext(ctx, ls.l.q(`DELETE FROM upload_leases WHERE id = ? AND holder = ?`), ls.id, ls.holder)
}

// TTL is how long the lease lasts without renewal.
func (ls *Lease) TTL() time.Duration { return ls.ttl }

// ForgetLeases removes expired leases (PostgreSQL rows), so that the table
// holds only sessions in use.
func (l *Log) ForgetLeases(ctx context.Context) error {
	now := l.now()
	if l.dialect.KeyLock == "" {
		l.leases.mu.Lock()
		for id, cur := range l.leases.leases {
			if !cur.expires.After(now) {
				delete(l.leases.leases, id)
			}
		}
		l.leases.mu.Unlock()
		return nil
	}
	_, err := l.db.ExecContext(ctx, l.q(`DELETE FROM upload_leases WHERE expires_ns < ?`), now.UnixNano())
	return err
}
