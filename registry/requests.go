package registry

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gorilla/mux"
	"go.opentelemetry.io/otel/trace"
)

// RequestIDHeader carries a request's id in the answer. A client may send
// one (a proxy in front, say) and it is kept when it is short and plain;
// otherwise the server makes one. The same id is in the request's log line
// and in its error body, so that a user's report can be found in the log.
const RequestIDHeader = "X-Request-Id"

// ServeHTTP implements http.Handler: every request gets an id, and its
// answer a log line and its metrics.
func (r *Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	rec := &recorder{ResponseWriter: w, id: requestID(req), route: "unmatched", rc: http.NewResponseController(w), idle: r.opts.BodyIdleTimeout}
	w.Header().Set(RequestIDHeader, rec.id)
	if req.Body != nil && req.Body != http.NoBody {
		req.Body = &countedBody{ReadCloser: req.Body, n: &rec.read}
	}
	req, span := r.tracing.startRequest(req)
	start := time.Now()
	done := false
	defer func() {
		if !done { // a handler panicked: net/http recovers it and drops the connection
			rec.status = http.StatusInternalServerError
			r.finish(req.Context(), rec, req, time.Since(start), span)
		}
	}()
	if client, refusal := r.admit(req); refusal != nil {
		writeError(rec, req, r.logger, refusal)
	} else {
		defer r.release(client)
		r.handler.ServeHTTP(rec, req)
		rec.endDeadlines()
	}
	done = true
	r.finish(req.Context(), rec, req, time.Since(start), span)
}

// admit counts req among its client's requests in flight (Options.
// MaxRequests, MaxRequestsPerClient) and returns the client, for release,
// or the refusal to answer with.
func (r *Registry) admit(req *http.Request) (client string, refusal *Error) {
	if r.inFlight == nil {
		return "", nil
	}
	client = clientOfRequest(req)
	return client, r.inFlight.admit(client)
}

// release gives back the place admit counted for client.
func (r *Registry) release(client string) {
	if r.inFlight != nil {
		r.inFlight.release(client)
	}
}

// clientOfRequest tells clients apart as LimitListener does: by the IP
// address of the connection the request came on.
func clientOfRequest(req *http.Request) string {
	if host, _, err := net.SplitHostPort(req.RemoteAddr); err == nil {
		return host
	}
	return req.RemoteAddr
}

// noted serves h, noting its route for the request log and metrics: for
// the routes that are not API handlers (the token service, redirects).
func noted(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		recorderOf(w).noteRoute(req)
		h.ServeHTTP(w, req)
	})
}

// finish logs, counts and ends the span of an answered request.
func (r *Registry) finish(ctx context.Context, rec *recorder, req *http.Request, d time.Duration, span trace.Span) {
	status := rec.status
	if status == 0 {
		status = http.StatusOK // nothing written: net/http answers 200
	}
	endRequest(span, req.Method, rec, status)
	read := rec.read.Load()
	r.metrics.request(rec.route, req.Method, status, read, rec.written, d)
	level := slog.LevelInfo
	if rec.quiet {
		level = slog.LevelDebug // health checks and scrapes: every second, from machines
	}
	h := r.logger.Handler()
	if !h.Enabled(ctx, level) {
		return
	}
	// Straight to the handler, with no caller PC (a request line's source
	// is always this function): runtime.Callers costs more than the line.
	line := slog.NewRecord(time.Now(), level, "request", 0)
	// Gathered first and added at once: the record then allocates once
	// for the attributes beyond its first five, not once per call.
	var attrs [12]slog.Attr
	as := append(attrs[:0],
		slog.String("id", rec.id),
		slog.String("method", req.Method),
		slog.String("route", rec.route),
	)
	if rec.repo != "" {
		as = append(as, slog.String("repo", clip(rec.repo)))
	}
	as = append(as, slog.Int("status", status))
	if read > 0 { // most requests have no body: a line is kept short, as it is written for each
		as = append(as, slog.Int64("bytes_in", read))
	}
	as = append(as,
		slog.Int64("bytes_out", rec.written),
		slog.Duration("duration", d),
		slog.String("client", req.RemoteAddr),
	)
	if rec.principal != "" {
		as = append(as, slog.String("principal", rec.principal))
	}
	if rec.code != "" {
		as = append(as, slog.String("code", string(rec.code)))
	}
	if span != nil {
		as = append(as, slog.String("trace_id", span.SpanContext().TraceID().String()))
	}
	line.AddAttrs(as...)
	h.Handle(ctx, line)
}

// clip bounds what a client's path puts in one log line.
func clip(s string) string {
	const max = 256
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}

// requestID returns the client's X-Request-Id when it is 1 to 64 plain
// characters (letters, digits, ".", "_", ":", "-"), so that it cannot
// forge log lines; otherwise a new random id.
func requestID(req *http.Request) string {
	if id := req.Header.Get(RequestIDHeader); id != "" && len(id) <= 64 && plainID(id) {
		return id
	}
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func plainID(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

// recorder is the ResponseWriter every handler gets: it notes the status
// and bytes of the answer, and handle notes what the route learns (its
// template, repository, principal, error code). It keeps the writer's
// abilities: flushing (the event stream), ReadFrom (sendfile for blobs)
// and, through Unwrap, deadlines (http.ResponseController).
type recorder struct {
	http.ResponseWriter
	id      string
	status  int
	written int64
	read    atomic.Int64 // request body bytes, counted by countedBody (a reader goroutine may read the body)

	route     string // the route template; "unmatched" when none
	repo      string
	principal string
	code      Code // the error code answered, if any
	quiet     bool // logged at debug: health checks, metrics

	// Write deadlines (progress.go): every write waits at most idle for
	// the client; own when the handler sets its own (the event stream).
	rc   *http.ResponseController
	idle time.Duration
	own  bool
}

func (w *recorder) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap gives http.ResponseController the connection's writer.
func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// recorderOf returns the request's recorder; nil when the handler is
// used without ServeHTTP (a test calling routes directly).
func recorderOf(w http.ResponseWriter) *recorder {
	rec, _ := w.(*recorder)
	return rec
}

// noteRoute records the matched route's template and repository.
func (w *recorder) noteRoute(req *http.Request) {
	if w == nil {
		return
	}
	if rt := mux.CurrentRoute(req); rt != nil {
		if name := rt.GetName(); name != "" {
			w.route = name
		}
	}
	w.repo = mux.Vars(req)["name"]
}

// countedBody counts the request body bytes handlers read.
type countedBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// routeName is a route's template without its patterns, as metrics and
// the request log name it: "/v2/{name}/blobs/{digest}".
func routeName(template string) string {
	var b strings.Builder
	for {
		open := strings.IndexByte(template, '{')
		if open < 0 {
			b.WriteString(template)
			return b.String()
		}
		end := strings.IndexByte(template[open:], '}')
		if end < 0 {
			b.WriteString(template)
			return b.String()
		}
		field := template[open : open+end+1]
		if colon := strings.IndexByte(field, ':'); colon >= 0 {
			field = field[:colon] + "}"
		}
		b.WriteString(template[:open])
		b.WriteString(field)
		template = template[open+end+1:]
	}
}
