package eventlog

import (
	"context"
	"strings"
)

// Query selects events for a reader of the log.
type Query struct {
	After int64    // only events with a sequence number above this
	Limit int      // at most this many (default 100)
	Repo  string   // only this repository's events, when set
	Types []string // only these types, when set
}

// Page is one answer to a Query.
type Page struct {
	Events []Event
	// Next is the sequence number to ask after next time. It moves past
	// events the filters skipped, so a filtered reader does not rescan them.
	Next int64
}

// Read returns the events matching q, in sequence order. Because sequence
// numbers are assigned in commit order (see Dialect.WriteLock), a reader
// that continues from Next never misses an event committed later.
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
	query := `SELECT seq, time_ns, type, repo, payload, prev_hash, hash FROM events WHERE seq > ? AND seq <= ?`
	args := []any{q.After, head}
	if q.Repo != "" {
		query += ` AND repo = ?`
		args = append(args, q.Repo)
	}
	if len(q.Types) > 0 {
		query += ` AND type IN (?` + strings.Repeat(`, ?`, len(q.Types)-1) + `)`
		for _, t := range q.Types {
			args = append(args, t)
		}
	}
	query += ` ORDER BY seq LIMIT ?`
	args = append(args, q.Limit)
	rows, err := l.db.QueryContext(ctx, l.q(query), args...)
	if err != nil {
		return Page{}, err
	}
	defer rows.Close()
	p := Page{Next: max(q.After, head)}
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return Page{}, err
		}
		p.Events = append(p.Events, e)
	}
	if len(p.Events) == q.Limit {
		p.Next = p.Events[len(p.Events)-1].Seq
	}
	return p, rows.Err()
}

// Head returns the sequence number of the last committed event (0 when
// the log is empty).
func (l *Log) Head(ctx context.Context) (int64, error) {
	var seq int64
	err := l.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM events`).Scan(&seq)
	return seq, err
}

// Changed returns a channel that is closed the next time the log may have
// grown: after a commit in this process, or when a backend learns of
// another process's commit (Wake). Readers take the channel, read, and wait
// on it when they have caught up. No writer ever waits for a reader.
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
