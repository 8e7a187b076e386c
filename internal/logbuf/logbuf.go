// Package logbuf is an io.Writer for logs that coalesces the lines written
// while the previous write is in progress into one write, so that a server
// logging a line per request makes a write syscall per batch of lines
// rather than per line.
//
// When the writer is idle a line is written at once; after each write the
// writer pauses for Interval, and the lines logged meanwhile go out together
// in the next write. So a busy server makes at most one write (and one
// wake-up of the writing goroutine) per Interval, and no line waits longer
// than about Interval plus a write. Lines queue up to a bound, beyond which
// Write waits. Order is kept. What is queued when the process is killed is
// lost, as with any user-space buffer; Close writes it out.
package logbuf

import (
	"io"
	"sync"
	"time"
)

// Interval is the pause after each write, during which lines gather.
const Interval = time.Millisecond

// Writer coalesces writes to an underlying writer.
type Writer struct {
	out io.Writer
	max int

	mu      sync.Mutex
	cond    *sync.Cond // signalled when pending changes or closing
	pending []byte
	idle    bool // the flusher waits for a line: the next Write wakes it
	closed  bool
	done    chan struct{}
}

// New returns a Writer over out that holds at most max bytes queued.
func New(out io.Writer, max int) *Writer {
	w := &Writer{out: out, max: max, done: make(chan struct{})}
	w.cond = sync.NewCond(&w.mu)
	go w.flusher()
	return w
}

// Write queues p and returns at once, unless max bytes are already queued:
// then it waits for the queue to drain, so a slow destination slows the
// loggers rather than growing memory. After Close it writes directly.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	for len(w.pending) > 0 && len(w.pending)+len(p) > w.max && !w.closed {
		w.cond.Wait()
	}
	if w.closed {
		w.mu.Unlock()
		<-w.done // after what was queued, not before
		return w.out.Write(p)
	}
	w.pending = append(w.pending, p...)
	if w.idle {
		w.cond.Broadcast()
	}
	w.mu.Unlock()
	return len(p), nil
}

// flusher writes what is queued, one batch at a time.
func (w *Writer) flusher() {
	defer close(w.done)
	var batch []byte
	w.mu.Lock()
	for {
		for len(w.pending) == 0 && !w.closed {
			w.idle = true
			w.cond.Wait()
			w.idle = false
		}
		if len(w.pending) == 0 && w.closed {
			w.mu.Unlock()
			return
		}
		batch, w.pending = w.pending, batch[:0]
		w.cond.Broadcast() // room for waiting writers
		w.mu.Unlock()
		w.out.Write(batch) // a log destination that fails has nowhere to report it
		time.Sleep(Interval)
		w.mu.Lock()
		if cap(batch) > 4*w.max {
			batch = nil // do not keep a burst's buffer
		}
	}
}

// Close writes out what is queued and makes later writes direct.
func (w *Writer) Close() error {
	w.mu.Lock()
	w.closed = true
	w.cond.Broadcast()
	w.mu.Unlock()
	<-w.done
	return nil
}
