package eventlog

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"
)

// follower keeps the lookup cache (blobcache.go, manifestlookups.go) of a
// log that other processes append to too (OpenOptions.Follow: replicas
// sharing one PostgreSQL database) as exact as an exclusive log's. Before a lookup reads the cache, it waits
// for a round: one query, started after the lookup was asked, that reads
// the events appended since the cache last looked and applies them (the
// same effects a commit in this process has, blobcache.go). Lookups that
// arrive while a round is in flight share the next one, so a busy replica
// makes one small query for many lookups instead of one join each.
//
// Why this is exact: sequence numbers are assigned in commit order
// (Dialect.WriteLock), so a round that reads every event after the cache's
// applied mark, in order, has seen every append that returned before the
// round began, wherever it was made. A lookup answered from the cache
// after its round therefore reflects every append that returned before it
// was asked, as a query of the views would.
//
// Invariants:
//   - At most one round runs at a time; a lookup waits for the round that
//     begins after it asks (the running one may have read too early).
//   - blobCache.applied only grows (unless the database itself went back:
//     rewound, which drops everything), and only over events applied in
//     order: by the committer over a group that directly follows it, by
//     the follower over the events it read (or, far behind, by dropping
//     every entry: skipTo). With no other writer, the committer keeps it
//     at the head and a round reads no event.
type follower struct {
	l    *Log
	ctx  context.Context // ends when the log closes
	stop context.CancelFunc

	mu        sync.Mutex
	cur, next *round // the round in flight and the one queued after it; next is nil while cur is
}

// round is one catch-up; done is closed when it ends, with err set.
type round struct {
	done chan struct{}
	err  error
}

// followPage is how many events a round reads per query, and followPages
// how many pages it reads before giving up reading: a follower that far
// behind (a replica that served no lookup while others appended) drops
// its entries and starts again from the head, which costs less than
// reading thousands of events it has no entries for.
//
// followPayloadMax bounds the payloads a page brings: a blob.committed
// carrying content (up to --inline-max, 1 MiB) or a manifest.put with
// large annotations is read alone afterwards (payloadReduced), and kept
// reduced to what the cache needs. A page holds at most followPage ×
// followPayloadMax bytes of payloads, 4 MiB, and those reductions,
// whatever others push.
const (
	followPage       = 256
	followPages      = 16
	followPayloadMax = 16 << 10
)

// followTimeout bounds one round; lookups waiting on it have their own
// contexts and give up on those first.
const followTimeout = 10 * time.Second

func newFollower(l *Log) *follower {
	ctx, stop := context.WithCancel(context.Background())
	return &follower{l: l, ctx: ctx, stop: stop}
}

// fresh returns once a round that began after it was called has ended:
// then the cache reflects every append that returned before the call.
// An error means the cache may be behind; the caller asks the views.
func (f *follower) fresh(ctx context.Context) error {
	if f.l.lease.trusted() {
		return nil // no other process can have appended (followlease.go)
	}
	f.mu.Lock()
	r := f.next
	switch {
	case f.cur == nil:
		f.cur = &round{done: make(chan struct{})}
		r = f.cur
		go f.run(r)
	case r == nil:
		f.next = &round{done: make(chan struct{})}
		r = f.next
	}
	f.mu.Unlock()
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// run runs r, then each round queued while one ran, until none is.
func (f *follower) run(r *round) {
	for r != nil {
		ctx, cancel := context.WithTimeout(f.ctx, followTimeout)
		f.l.lookups.rounds.Add(1)
		r.err = f.catchUp(ctx)
		cancel()
		close(r.done)
		f.mu.Lock()
		f.cur, f.next = f.next, nil
		r = f.cur
		f.mu.Unlock()
	}
}

// catchUp applies the events after the cache's applied mark, up to the
// log's head as a query begun now sees it.
func (f *follower) catchUp(ctx context.Context) error {
	c := f.l.cache
	for range followPages {
		evs, err := f.l.eventsForCache(ctx, c.appliedSeq(), followPage)
		if err != nil {
			return err
		}
		c.followed(evs)
		if len(evs) < followPage {
			return nil
		}
	}
	head, err := f.l.Head(ctx)
	if err != nil {
		return err
	}
	c.skipTo(head)
	return nil
}

// eventsForCache reads up to n events after seq, in order, with the
// fields cacheEffect and manifestEffect read. Payloads come only with the
// types whose effect depends on what they name (payloadTypes); the
// others' effect is known by type, and a version's or a policy's payload
// would be read for nothing. A payload over followPayloadMax is read
// alone and reduced (payloadReduced), for at most followLargeReads a page.
func (l *Log) eventsForCache(ctx context.Context, seq int64, n int) ([]Event, error) {
	types := payloadTypes()
	args := make([]any, 0, len(types)+3)
	for _, t := range types {
		args = append(args, string(t))
	}
	rows, err := l.db.QueryContext(ctx, l.q(`SELECT seq, time_ns, type, repo, length(payload),
		CASE WHEN type IN (?`+strings.Repeat(`, ?`, len(types)-1)+`) AND length(payload) <= ? THEN payload END
		FROM events WHERE seq > ? ORDER BY seq LIMIT ?`), append(args, followPayloadMax, seq, n)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var evs []Event
	var large []int // indexes of events whose payload was needed but left out
	for rows.Next() {
		var e Event
		var ns int64
		var typ string
		if err := rows.Scan(&e.Seq, &ns, &typ, &e.Repo, &e.PayloadSize, &e.Payload); err != nil {
			return nil, err
		}
		e.Time, e.Type = time.Unix(0, ns).UTC(), Type(typ)
		if e.Payload == nil && e.PayloadSize > followPayloadMax && slices.Contains(types, e.Type) {
			large = append(large, len(evs))
		}
		evs = append(evs, e)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows.Close()
	for n, i := range large {
		if n == followLargeReads {
			break // the rest stay without payloads: each drops every entry
		}
		if evs[i].Payload, err = l.payloadReduced(ctx, evs[i]); err != nil {
			return nil, err
		}
	}
	return evs, nil
}

// followLargeReads bounds the payloads over followPayloadMax a page reads
// one by one: past it, they are applied without (dropping every entry),
// so that a burst of large puts costs a round a few queries, not hundreds.
const followLargeReads = 8

// payloadTypes are the types whose effect on lookups depends on their
// payload (cacheEffect, manifestEffect): the ones eventsForCache reads
// payloads of.
func payloadTypes() []Type {
	return []Type{TypeBlobCommitted, TypeBlobTiered, TypeBlobLinked, TypeBlobUnlinked, TypeGCCondemned,
		TypeManifestPut, TypeManifestDeleted, TypeTagSet, TypeTagDeleted}
}

// payloadReduced reads e's payload whole and returns what the cache's
// effects need of it: a blob.committed without the content it carries, a
// manifest.put without its annotations and lists. The follower holds one
// such payload at a time, and keeps only what it returns. Other types
// over followPayloadMax (a collection condemning thousands of blobs) are
// not read: they come back without payload, and drop every entry.
func (l *Log) payloadReduced(ctx context.Context, e Event) ([]byte, error) {
	if e.Type != TypeBlobCommitted && e.Type != TypeManifestPut {
		return nil, nil
	}
	whole, err := l.Event(ctx, e.Seq)
	if err != nil {
		return nil, err
	}
	// A payload that does not decode comes back without: the effects
	// cannot tell what it names either, and every entry goes.
	if e.Type == TypeBlobCommitted {
		var v blobCommittedView
		if whole.Decode(&v) != nil {
			return nil, nil
		}
		p := v.value()
		p.Content = nil
		return New(e.Type, e.Repo, p).Payload, nil
	}
	var p ManifestPut
	if whole.Decode(&p) != nil {
		return nil, nil
	}
	p.Annotations, p.Blobs, p.Manifests = nil, nil, nil
	return New(e.Type, e.Repo, p).Payload, nil
}
