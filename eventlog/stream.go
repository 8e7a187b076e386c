package eventlog

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Query selects events for a reader of the log.
type Query struct {
	After int64    // only events with a sequence number above this
	Limit int      // at most this many (default 100)
	Repo  string   // only this repository's events, when set
	Types []string // only these types, when set

	// MaxBytes, when positive, also bounds a page by size: events are
	// added while the bytes read so far (payloads, plus EventOverhead per
	// event) are below it. A page always holds at least one event when
	// one matches, so a reader continuing from Next always progresses.
	MaxBytes int64
	// MaxPayload, when positive, leaves out payloads larger than this many
	// bytes: such events come with Payload nil and PayloadSize set, for
	// the reader to fetch whole with Event. They are never read from the
	// database, so they cost a page nothing but EventOverhead.
	MaxPayload int
}

// EventOverhead is what one event counts towards Query.MaxBytes besides
// its payload: its fixed fields, as a reader is likely to show them.
const EventOverhead = 256

// Page is one answer to a Query.
type Page struct {
	Events []Event
	// Next is the sequence number to ask after next time. It moves past
	// events the filters skipped, so a filtered reader does not rescan them.
	Next int64
	// More reports that the page ended at Limit or MaxBytes: more matching
	// events may follow right away, without waiting for a commit.
	More bool
}

// Read returns the events matching q, in sequence order. Because sequence
// numbers are assigned in commit order (see Dialect.WriteLock), a reader
// that continues from Next never misses an event committed later.
//
// Memory is bounded by the query: at most Limit events and, with MaxBytes
// and MaxPayload, about MaxBytes plus one payload of MaxPayload bytes.
// With MaxBytes, Read first reads only the sizes of up to Limit matching
// events to find where the page ends, then the events up to there.
func (l *Log) Read(ctx context.Context, q Query) (Page, error) {
	if q.Limit <= 0 {
		q.Limit = 100
	}
	// The head first: everything up to it is committed, so when fewer than
	// Limit events match, the reader may skip straight to it.
	head, err := l.Head(ctx)
	if err != nil {
		return Page{}, err
	}
	p := Page{Next: max(q.After, head)}
	upTo, limit := head, q.Limit
	if q.MaxBytes > 0 {
		last, n, more, err := l.pageEnd(ctx, q, head)
		if err != nil || n == 0 {
			return p, err
		}
		upTo, limit, p.More = last, n, more
	}
	where, args := eventFilter(q, upTo)
	payload := `payload`
	if q.MaxPayload > 0 {
		payload = `CASE WHEN length(payload) > ? THEN NULL ELSE payload END`
		args = append([]any{q.MaxPayload}, args...)
	}
	rows, err := l.db.QueryContext(ctx, l.q(`SELECT seq, time_ns, type, repo, `+payload+`, length(payload), prev_hash, hash, actor
		FROM events WHERE `+where+` ORDER BY seq LIMIT ?`), append(args, limit)...)
	if err != nil {
		return Page{}, err
	}
	defer rows.Close()
	for rows.Next() {
		var e Event
		var ns int64
		var typ, actor string
		if err := rows.Scan(&e.Seq, &ns, &typ, &e.Repo, &e.Payload, &e.PayloadSize, &e.PrevHash, &e.Hash, &actor); err != nil {
			return Page{}, err
		}
		e.Time, e.Type = time.Unix(0, ns).UTC(), Type(typ)
		if e.Actor, err = decodeActor(actor); err != nil {
			return Page{}, err
		}
		p.Events = append(p.Events, e)
	}
	if err := rows.Err(); err != nil {
		return Page{}, err
	}
	if len(p.Events) == q.Limit {
		p.More = true
	}
	if p.More && len(p.Events) > 0 {
		p.Next = p.Events[len(p.Events)-1].Seq
	}
	return p, nil
}

// pageEnd reads the sizes of up to q.Limit matching events after q.After
// (and up to head) and returns the sequence number of the last one that
// fits q.MaxBytes, how many events that is, and whether more match.
func (l *Log) pageEnd(ctx context.Context, q Query, head int64) (last int64, n int, more bool, err error) {
	where, args := eventFilter(q, head)
	rows, err := l.db.QueryContext(ctx, l.q(`SELECT seq, length(payload) FROM events WHERE `+where+` ORDER BY seq LIMIT ?`), append(args, q.Limit)...)
	if err != nil {
		return 0, 0, false, err
	}
	defer rows.Close()
	var used int64
	for rows.Next() {
		if used >= q.MaxBytes {
			return last, n, true, nil
		}
		var size int64
		if err := rows.Scan(&last, &size); err != nil {
			return 0, 0, false, err
		}
		if q.MaxPayload > 0 && size > int64(q.MaxPayload) {
			size = 0 // left out: the reader fetches it whole if it wants it
		}
		used += size + EventOverhead
		n++
	}
	return last, n, n == q.Limit, rows.Err()
}

// eventFilter is the WHERE clause (and its arguments) of q's events up to
// seq upTo.
func eventFilter(q Query, upTo int64) (string, []any) {
	where := `seq > ? AND seq <= ?`
	args := []any{q.After, upTo}
	if q.Repo != "" {
		where += ` AND repo = ?`
		args = append(args, q.Repo)
	}
	if len(q.Types) > 0 {
		where += ` AND type IN (?` + strings.Repeat(`, ?`, len(q.Types)-1) + `)`
		for _, t := range q.Types {
			args = append(args, t)
		}
	}
	return where, args
}

// Event returns one event, its payload whole.
func (l *Log) Event(ctx context.Context, seq int64) (Event, error) {
	rows, err := l.db.QueryContext(ctx, l.q(`SELECT seq, time_ns, type, repo, payload, prev_hash, hash, actor FROM events WHERE seq = ?`), seq)
	if err != nil {
		return Event{}, err
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return Event{}, err
		}
		return Event{}, fmt.Errorf("event %d: %w", seq, ErrNotFound)
	}
	e, err := scanEvent(rows)
	e.PayloadSize = int64(len(e.Payload))
	return e, err
}

// Head returns the sequence number of the last committed event (0 when
// the log is empty).
func (l *Log) Head(ctx context.Context) (int64, error) {
	var seq int64
	err := l.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM events`).Scan(&seq)
	if err == nil {
		l.observe(seq)
	}
	return seq, err
}

// Changed returns a channel that is closed the next time the log may have
// grown: after a commit in this process, or when a backend learns of
// another process's commit (Wake). Readers take the channel, read, and wait
// on it when they have caught up. No writer ever waits for a reader.
//
// Every waiting reader re-reads the log when the channel closes; a process
// with many followers should have one of them read and fan the events out
// (as registry does), not one query per follower per commit.
func (l *Log) Changed() <-chan struct{} {
	l.changedMu.Lock()
	defer l.changedMu.Unlock()
	return l.changed
}

// Wake tells waiting readers the log may have grown.
func (l *Log) Wake() {
	l.changedMu.Lock()
	close(l.changed)
	l.changed = make(chan struct{})
	l.changedMu.Unlock()
}

// OnClose registers fn to run when the log is closed, before the database
// is; backends use it to stop their listeners.
func (l *Log) OnClose(fn func()) {
	l.changedMu.Lock()
	l.closers = append(l.closers, fn)
	l.changedMu.Unlock()
}
