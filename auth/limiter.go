package auth

import (
	"sync"
	"time"
)

// Limiter slows down, then refuses, a client that keeps failing to
// authenticate: after SlowAfter failures within Window each further
// attempt waits (growing, up to a second), and after BlockAfter it is
// refused until Window has passed since its last failure. A success
// forgets the client's failures. Memory is bounded: at most maxClients
// are tracked, the stalest forgotten first.
type Limiter struct {
	SlowAfter, BlockAfter int
	Window                time.Duration

	mu      sync.Mutex
	clients map[string]*failures
	now     func() time.Time
}

type failures struct {
	n    int
	last time.Time
}

const maxClients = 10_000

// NewLimiter returns a limiter with the defaults: slow after 5 failures,
// refuse after 20, within 10 minutes.
func NewLimiter() *Limiter {
	return &Limiter{SlowAfter: 5, BlockAfter: 20, Window: 10 * time.Minute, clients: map[string]*failures{}, now: time.Now}
}

// Check says how long to wait before answering the client's attempt
// (delay), or that it is refused for retryAfter.
func (l *Limiter) Check(client string) (delay, retryAfter time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f, ok := l.clients[client]
	now := l.now()
	if !ok || now.Sub(f.last) > l.Window {
		return 0, 0
	}
	if f.n >= l.BlockAfter {
		return 0, l.Window - now.Sub(f.last)
	}
	if f.n >= l.SlowAfter {
		return min(time.Duration(f.n-l.SlowAfter+1)*100*time.Millisecond, time.Second), 0
	}
	return 0, 0
}

// Fail records a failed attempt.
func (l *Limiter) Fail(client string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	f, ok := l.clients[client]
	if !ok || now.Sub(f.last) > l.Window {
		if len(l.clients) >= maxClients {
			l.evict(now)
		}
		f = &failures{}
		l.clients[client] = f
	}
	f.n++
	f.last = now
}

// Succeed forgets the client's failures.
func (l *Limiter) Succeed(client string) {
	l.mu.Lock()
	delete(l.clients, client)
	l.mu.Unlock()
}

// evict drops expired clients, or if none, the stalest one.
func (l *Limiter) evict(now time.Time) {
	var stalest string
	for c, f := range l.clients {
		if now.Sub(f.last) > l.Window {
			delete(l.clients, c)
			continue
		}
		if stalest == "" || f.last.Before(l.clients[stalest].last) {
			stalest = c
		}
	}
	if len(l.clients) >= maxClients && stalest != "" {
		delete(l.clients, stalest)
	}
}
