package registry

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ConnLimits bounds the connections a listener hands to the HTTP server
// (LimitListener): every other bound of the server (body and answer
// deadlines, upload sessions, event streams) is per connection or per
// request, so without this one a client could hold descriptors without
// bound simply by opening connections and keeping them idle.
type ConnLimits struct {
	// Max bounds the connections open at once, from every client
	// together; 0: no bound.
	Max int
	// PerClient bounds the connections open at once from one client,
	// told apart by its IP address; 0: no bound. Behind a proxy every
	// connection comes from the proxy's address: raise it or turn it off.
	PerClient int
	// TLS says the server speaks TLS on the listener's connections: a
	// refused one is then closed without an answer, since answering means
	// a handshake, which is what a flood would have the server pay for.
	TLS bool
	// Metrics, when set, receives the open-connections gauge and the
	// refusals counter.
	Metrics *prometheus.Registry
	Logger  *slog.Logger
}

// refusalWriters bounds the goroutines answering refused connections at
// once; past it a refused connection is closed without an answer.
// refusalTimeout bounds each: the answer, then reading what the client
// had sent until it closes (closing with unread bytes would reset the
// connection, and some clients then lose the answer).
const (
	refusalWriters = 64
	refusalTimeout = time.Second
)

// refusalLogEvery spaces the warnings about refused connections: a flood
// is one line a minute with its count, not a line per connection.
const refusalLogEvery = time.Minute

// LimitListener returns ln bounded by limits. A connection past a bound
// is refused as soon as it is accepted: over plain HTTP it is answered
// 429 TOOMANYREQUESTS (its client's bound) or 503 UNAVAILABLE (the
// server's), both with Retry-After, then closed; a refused connection
// never reaches the server and holds nothing past refusalTimeout.
// HTTP/2 carries many requests on one connection: Options.MaxRequests
// and MaxRequestsPerClient bound those.
func LimitListener(ln net.Listener, limits ConnLimits) (net.Listener, error) {
	l := &limitListener{Listener: ln, limits: limits, writers: make(chan struct{}, refusalWriters),
		conns: newOccupancy(limits.Max, limits.PerClient, "connections open")}
	if l.limits.Logger == nil {
		l.limits.Logger = slog.New(slog.DiscardHandler)
	}
	l.refusedTotal = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "connections_refused_total",
		Help: "Connections refused when accepted, by the bound they were past: client (--max-connections-per-client) or server (--max-connections)."}, []string{"bound"})
	if reg := limits.Metrics; reg != nil {
		open := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: namespace, Name: "connections_open",
			Help: "Client connections open on this server."}, func() float64 { return float64(l.conns.total()) })
		for _, c := range []prometheus.Collector{open, l.refusedTotal} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return l, nil
}

type limitListener struct {
	net.Listener
	limits  ConnLimits
	writers chan struct{} // a token per answering goroutine
	conns   *occupancy

	refusedTotal *prometheus.CounterVec
	refused      atomic.Int64 // since the last warning
	lastWarning  atomic.Int64 // unix nanoseconds
}

// Accept returns the next connection within the bounds, refusing those
// past them on the way; it fails only when the listener does.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		client := clientOf(c.RemoteAddr())
		if refusal := l.conns.admit(client); refusal != nil {
			l.refuse(c, refusal)
			continue
		}
		return &limitedConn{Conn: c, release: func() { l.conns.release(client) }}, nil
	}
}

// occupancy counts what clients hold at once (connections, requests in
// flight) against a bound for all and one for each client (0: none).
//
// Invariant: open counts every admission not yet released, and byClient
// each client's share of it; a client with none has no entry, so the map
// never outgrows what is held.
type occupancy struct {
	max, perClient int
	what           string // "connections open", in refusals

	mu       sync.Mutex
	open     int
	byClient map[string]int
}

func newOccupancy(max, perClient int, what string) *occupancy {
	return &occupancy{max: max, perClient: perClient, what: what, byClient: map[string]int{}}
}

// admit counts one more for client, or says why not: 503 UNAVAILABLE
// past the bound for all, 429 TOOMANYREQUESTS past the client's.
func (o *occupancy) admit(client string) *Error {
	o.mu.Lock()
	defer o.mu.Unlock()
	switch {
	case o.max > 0 && o.open >= o.max:
		return errorf(CodeUnavailable, "the server has %d %s, as many as it takes; retry later", o.open, o.what)
	case o.perClient > 0 && o.byClient[client] >= o.perClient:
		return errorf(CodeTooManyRequests, "this client (%s) already has %d %s, as many as one client may; wait for them to end (or reuse connections), then retry", client, o.byClient[client], o.what)
	}
	o.open++
	o.byClient[client]++
	return nil
}

// release gives back one admission of client.
func (o *occupancy) release(client string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.open--
	if o.byClient[client]--; o.byClient[client] <= 0 {
		delete(o.byClient, client)
	}
}

func (o *occupancy) total() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.open
}

// refuse answers c with refusal (over plain HTTP, while fewer than
// refusalWriters answers are under way) and closes it.
func (l *limitListener) refuse(c net.Conn, refusal *Error) {
	bound := "client"
	if refusal.Code == CodeUnavailable {
		bound = "server"
	}
	l.refusedTotal.WithLabelValues(bound).Inc()
	l.warn(refusal)
	if l.limits.TLS {
		c.Close()
		return
	}
	select {
	case l.writers <- struct{}{}:
	default:
		c.Close()
		return
	}
	go func() {
		defer func() { <-l.writers }()
		defer c.Close()
		c.SetDeadline(time.Now().Add(refusalTimeout))
		body := refusal.envelope("")
		fmt.Fprintf(c, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nRetry-After: %s\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s",
			refusal.Code.status(), http.StatusText(refusal.Code.status()), retryAfter, len(body), body)
		if cw, ok := c.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
		io.Copy(io.Discard, io.LimitReader(c, 64<<10))
	}()
}

// warn logs refusals at most once per refusalLogEvery, with how many
// there were since the last line.
func (l *limitListener) warn(refusal *Error) {
	n := l.refused.Add(1)
	now := time.Now().UnixNano()
	last := l.lastWarning.Load()
	if now-last < int64(refusalLogEvery) || !l.lastWarning.CompareAndSwap(last, now) {
		return
	}
	l.refused.Add(-n)
	l.limits.Logger.Warn("connections refused", "count", n, "last", refusal.Message)
}

// clientOf is what tells clients apart: the IP address of a TCP peer,
// the whole address otherwise.
func clientOf(a net.Addr) string {
	if a == nil {
		return ""
	}
	if tcp, ok := a.(*net.TCPAddr); ok {
		return tcp.IP.String()
	}
	return a.String()
}

// limitedConn gives its slot back once, when closed. It keeps the inner
// connection's ReadFrom, which net/http looks for to send files with
// sendfile(2), and CloseWrite, which it uses to close gracefully.
type limitedConn struct {
	net.Conn
	release func()
	once    sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

func (c *limitedConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(c.Conn, r)
}

func (c *limitedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
