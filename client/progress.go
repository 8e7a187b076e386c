package client

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// progress reports transfers on a writer. On a terminal, a transfer still
// running after delay gets a one-line bar, redrawn in place every interval:
//
//	docs/model.bin [=========>          ]  10.0 MiB / 20.0 MiB  50%  9.8 MiB/s
//
// When it ends the bar is cleared and replaced by the transfer's summary
// line; elsewhere only the summary lines are written.
type progress struct {
	w        io.Writer
	bars     bool
	delay    time.Duration
	interval time.Duration
	mu       sync.Mutex // one line at a time
}

func newProgress(w io.Writer, terminal bool) *progress {
	if w == nil {
		w = io.Discard
	}
	return &progress{w: w, bars: terminal, delay: time.Second, interval: 200 * time.Millisecond}
}

// isTerminal reports whether f is a character device, as a terminal is.
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// transfer is one file's progress. It is an io.Writer that counts what
// passes through it, so it can sit in an io.MultiWriter or a TeeReader.
type transfer struct {
	p     *progress
	label string
	total int64
	begin time.Time
	done  atomic.Int64 // bytes of the file the other side holds
	moved atomic.Int64 // bytes this transfer moved, for the rate
	stop  chan struct{}
	ended chan struct{}
	drawn bool // a bar is on the line; guarded by p.mu
}

// start begins reporting a transfer of total bytes.
func (p *progress) start(label string, total int64) *transfer {
	t := &transfer{p: p, label: label, total: total, begin: time.Now(), stop: make(chan struct{}), ended: make(chan struct{})}
	if p.bars {
		go t.run()
	} else {
		close(t.ended)
	}
	return t
}

func (t *transfer) Write(b []byte) (int, error) {
	t.add(int64(len(b)))
	return len(b), nil
}

func (t *transfer) add(n int64) {
	t.done.Add(n)
	t.moved.Add(n)
}

// set says how many bytes the other side holds, after a resume.
func (t *transfer) set(n int64) { t.done.Store(n) }

func (t *transfer) run() {
	defer close(t.ended)
	timer := time.NewTimer(t.p.delay)
	defer timer.Stop()
	select {
	case <-t.stop:
		return
	case <-timer.C:
	}
	tick := time.NewTicker(t.p.interval)
	defer tick.Stop()
	for {
		t.draw()
		select {
		case <-t.stop:
			return
		case <-tick.C:
		}
	}
}

func (t *transfer) draw() {
	const width = 20
	done := min(t.done.Load(), t.total)
	frac := 1.0
	if t.total > 0 {
		frac = float64(done) / float64(t.total)
	}
	full := int(frac * width)
	bar := strings.Repeat("=", full)
	if full < width {
		bar += ">" + strings.Repeat(" ", width-full-1)
	}
	t.p.mu.Lock()
	defer t.p.mu.Unlock()
	fmt.Fprintf(t.p.w, "\r%s [%s] %9s / %s %3d%%  %s/s\x1b[K",
		shorten(t.label, 40), bar, size(done), size(t.total), int(frac*100), size(int64(t.rate())))
	t.drawn = true
}

// rate is bytes per second moved so far.
func (t *transfer) rate() float64 {
	s := time.Since(t.begin).Seconds()
	if s <= 0 {
		return 0
	}
	return float64(t.moved.Load()) / s
}

// finish stops the bar, clears it and writes summary, if any, as a line.
func (t *transfer) finish(summary string) {
	close(t.stop)
	<-t.ended
	t.p.mu.Lock()
	defer t.p.mu.Unlock()
	if t.drawn {
		fmt.Fprint(t.p.w, "\r\x1b[K")
	}
	if summary != "" {
		fmt.Fprintln(t.p.w, summary)
	}
}

// timing is the "in 1.2s (9.8 MiB/s)" part of a summary.
func (t *transfer) timing() string {
	d := time.Since(t.begin)
	return fmt.Sprintf("in %s (%s/s)", d.Round(time.Millisecond), size(int64(t.rate())))
}

// shorten keeps the end of s, which names the file, within n characters.
func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return "…" + string(r[len(r)-n+1:])
}

// FormatSize writes a byte count for people, in binary units: 512 B,
// 1.5 KiB, 3.0 MiB.
func FormatSize(n int64) string { return size(n) }

// size formats a byte count in binary units.
func size(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	f, i := float64(n)/unit, 0
	for f >= unit && i < 4 {
		f /= unit
		i++
	}
	return fmt.Sprintf("%.1f %ciB", f, "KMGTP"[i])
}

// line writes one line; on a terminal it first clears a bar the line
// would otherwise be appended to (the bar is redrawn on its next tick).
func (p *progress) line(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bars {
		fmt.Fprint(p.w, "\r\x1b[K")
	}
	fmt.Fprintf(p.w, format+"\n", args...)
}
