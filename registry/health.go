package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/artifact-store/artifact-store/blobstore"
	"github.com/artifact-store/artifact-store/digest"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// readyFor is how long a readiness answer is reused: load balancers poll
// every second or more often, and many of them polling must not become
// many queries.
const readyFor = time.Second

// readyTimeout bounds one readiness check: a database or object store that
// does not answer within it is not ready.
const readyTimeout = 2 * time.Second

// readiness caches the last readiness check.
type readiness struct {
	mu      sync.Mutex // held during a check: concurrent pollers share it
	at      time.Time
	checks  map[string]string // component: "ok" or "unavailable"
	ready   bool
	wasDown map[string]bool // components last seen failing, to log changes only
}

// quiet adapts fn for the machine-polled routes (health, metrics): no
// authentication, so a load balancer or Prometheus needs no credentials,
// and their request lines are logged at debug level.
func (r *Registry) quiet(fn handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if rec := recorderOf(w); rec != nil {
			rec.noteRoute(req)
			rec.quiet = true
		}
		if err := fn(w, req); err != nil {
			writeError(w, req, r.logger, err)
		}
	})
}

// healthz answers that the process is alive and serving HTTP; it checks
// nothing else, so that a struggling database does not get the process
// restarted.
func (r *Registry) healthz(w http.ResponseWriter, req *http.Request) error {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write([]byte("ok\n"))
	return nil
}

// readyz answers 200 when the event log and every blob store answer, and
// 503 with Retry-After naming the component that does not: a replica that
// cannot reach PostgreSQL or S3 takes no traffic.
func (r *Registry) readyz(w http.ResponseWriter, req *http.Request) error {
	checks, ready := r.checkReady(req.Context())
	body, _ := json.Marshal(struct {
		Ready  bool              `json:"ready"`
		Checks map[string]string `json:"checks"`
	}{ready, checks})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "no-store")
	if !ready {
		h.Set("Retry-After", retryAfter)
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	if req.Method != http.MethodHead {
		w.Write(body)
	}
	return nil
}

// checkReady checks each component, or returns the answer of a check made
// less than readyFor ago.
func (r *Registry) checkReady(ctx context.Context) (map[string]string, bool) {
	rd := &r.ready
	rd.mu.Lock()
	defer rd.mu.Unlock()
	if time.Since(rd.at) < readyFor {
		return rd.checks, rd.ready
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), readyTimeout)
	defer cancel()
	errs := map[string]error{}
	_, errs["eventlog"] = r.log.Head(ctx)
	errs["blobs"] = storeAnswers(ctx, r.blobs)
	if r.opts.Cold != nil {
		errs["cold"] = storeAnswers(ctx, r.opts.Cold)
	}
	if rd.wasDown == nil {
		rd.wasDown = map[string]bool{}
	}
	checks, ready := map[string]string{}, true
	for name, err := range errs {
		checks[name] = "ok"
		if err != nil {
			checks[name], ready = "unavailable", false
			if !rd.wasDown[name] {
				r.logger.WarnContext(ctx, "not ready", "component", name, "err", err)
			}
		} else if rd.wasDown[name] {
			r.logger.InfoContext(ctx, "ready again", "component", name)
		}
		rd.wasDown[name] = err != nil
	}
	rd.at, rd.checks, rd.ready = time.Now(), checks, ready
	return checks, ready
}

// storeAnswers asks st about one key, the empty blob's: found or not
// found, the store answered.
func storeAnswers(ctx context.Context, st *blobstore.Store) error {
	_, err := st.Stat(ctx, digest.FromBytes(digest.SHA256, nil))
	if err == nil || errors.Is(err, blobstore.ErrNotFound) {
		return nil
	}
	return err
}

// serveMetrics serves the Prometheus exposition of Options.Metrics.
func (r *Registry) serveMetrics(w http.ResponseWriter, req *http.Request) error {
	r.metricsHandler.ServeHTTP(w, req)
	return nil
}

// OperationsHandler serves /metrics (with Options.Metrics), /healthz and
// /readyz, and nothing else: for a listener of its own, kept off the
// public address.
func (r *Registry) OperationsHandler() http.Handler {
	mux := http.NewServeMux()
	if r.metricsHandler != nil {
		mux.Handle("GET /metrics", r.quiet(r.serveMetrics))
	}
	mux.Handle("GET /healthz", r.quiet(r.healthz))
	mux.Handle("GET /readyz", r.quiet(r.readyz))
	return mux
}

// newMetricsHandler serves the exposition of opts.Metrics; nil without.
func newMetricsHandler(opts Options) http.Handler {
	if opts.Metrics == nil {
		return nil
	}
	return promhttp.HandlerFor(opts.Metrics, promhttp.HandlerOpts{
		ErrorLog:            slogPrinter{opts.Logger},
		ErrorHandling:       promhttp.ContinueOnError, // one failing collector must not hide the rest
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	})
}

// slogPrinter is promhttp's error log on the registry's logger.
type slogPrinter struct{ l *slog.Logger }

func (p slogPrinter) Println(v ...any) { p.l.Warn("metrics: " + fmt.Sprint(v...)) }
