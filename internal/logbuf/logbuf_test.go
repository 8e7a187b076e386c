package logbuf

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
)

// slowWriter records each write it gets, and blocks each until released.
type slowWriter struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	writes int
	gate   chan struct{}
}

func (s *slowWriter) Write(p []byte) (int, error) {
	if s.gate != nil {
		<-s.gate
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes++
	return s.buf.Write(p)
}

func TestOrderKeptAndEverythingWrittenByClose(t *testing.T) {
	out := &slowWriter{}
	w := New(out, 1<<10)
	var want strings.Builder
	for i := range 5000 {
		line := fmt.Sprintf("line %d\n", i)
		want.WriteString(line)
		w.Write([]byte(line))
	}
	w.Close()
	if out.buf.String() != want.String() {
		t.Fatalf("written out of order or incompletely: %d of %d bytes", out.buf.Len(), want.Len())
	}
	w.Write([]byte("after close\n"))
	if !strings.HasSuffix(out.buf.String(), "after close\n") {
		t.Error("a write after Close was not written")
	}
}

// While one write is in progress, the lines that arrive go out together in
// the next, and the queue never holds more than max (plus one line).
func TestLinesCoalesceAndQueueIsBounded(t *testing.T) {
	out := &slowWriter{gate: make(chan struct{})}
	const max = 100
	w := New(out, max)
	w.Write([]byte("first\n")) // taken by the flusher, which blocks in out.Write
	queued := make(chan struct{})
	go func() {
		for range 30 {
			w.Write([]byte("0123456789\n")) // 330 bytes: more than max, so some writes wait
		}
		close(queued)
	}()
	for {
		w.mu.Lock()
		n := len(w.pending)
		w.mu.Unlock()
		if n > max {
			t.Fatalf("%d bytes queued, bound %d", n, max)
		}
		select {
		case out.gate <- struct{}{}:
			continue
		case <-queued:
		}
		break
	}
	close(out.gate)
	w.Close()
	if got := strings.Count(out.buf.String(), "\n"); got != 31 {
		t.Fatalf("%d lines written, want 31", got)
	}
	if out.writes >= 31 {
		t.Errorf("%d writes for 31 lines: nothing was coalesced", out.writes)
	}
}
