package eventlog

import (
	"context"
	"time"
)

// Observer is told how appends go, for metrics. Its methods run on the
// appending path (Committed on the committer goroutine, which every append
// waits for), so they must be cheap, must not block and must not call the
// log.
type Observer interface {
	// Appended reports one Append returning after d, the time from the
	// call to its outcome (queueing and the group's transaction), with
	// events events; err is nil once they are durable.
	Appended(d time.Duration, events int, err error)
	// Committed reports one group transaction of appends (the group-commit
	// size), which took d from begin to durable commit or failure.
	Committed(appends int, d time.Duration)
}

// SetObserver makes o the log's observer; nil stops observing. Safe to call
// while appends run.
func (l *Log) SetObserver(o Observer) {
	if o == nil {
		l.observer.Store(nil)
		return
	}
	l.observer.Store(&o)
}

// obs returns the current observer, or nil.
func (l *Log) obs() Observer {
	if p := l.observer.Load(); p != nil {
		return *p
	}
	return nil
}

// Tracer starts a span for an append of events events; the function it
// returns ends it with the append's outcome. It runs on the caller's path.
type Tracer func(ctx context.Context, events int) (context.Context, func(err error))

// SetTracer makes t trace every append; nil stops tracing. Safe to call
// while appends run.
func (l *Log) SetTracer(t Tracer) {
	if t == nil {
		l.tracer.Store(nil)
		return
	}
	l.tracer.Store(&t)
}
