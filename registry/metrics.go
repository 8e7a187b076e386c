package registry

import (
	"context"
	"errors"
	"math"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/artifact-store/artifact-store/blobstore"
	"github.com/artifact-store/artifact-store/eventlog"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the registry's Prometheus collectors. A nil *metrics (no
// Options.Metrics) records nothing: every method checks.
//
// Label values come from closed sets only (route templates, known
// methods, status classes, operation names), never from what a client
// sends, so no client can grow the series without bound.
type metrics struct {
	requests *prometheus.CounterVec   // route, method, status
	latency  *prometheus.HistogramVec // route, method
	bytesIn  *prometheus.CounterVec   // route
	bytesOut *prometheus.CounterVec   // route

	appends     *prometheus.CounterVec // result
	appendTime  prometheus.Histogram
	events      prometheus.Counter
	groupSize   prometheus.Histogram
	commitTime  prometheus.Histogram
	blobOps     *prometheus.CounterVec // backend, tier, op, result
	tasks       *prometheus.CounterVec // task, result
	taskSuccess *prometheus.GaugeVec   // task
	gcUnlinked  prometheus.Counter
	gcSwept     prometheus.Counter
	gcFreed     prometheus.Counter
	tierMoves   *prometheus.CounterVec // to
	inLog       prometheus.Counter

	// perRequest holds each label combination's children, so that a
	// request finds them with one map lookup instead of hashing its
	// labels once per vector. Bounded: routes and methods are closed
	// sets (route templates, methodLabel) and status has five classes.
	perRequest sync.Map // requestLabels -> *requestChildren
}

type requestLabels struct{ route, method, class string }

type requestChildren struct {
	requests          prometheus.Counter
	latency           prometheus.Observer
	bytesIn, bytesOut prometheus.Counter
}

const namespace = "artifactstore"

// newMetrics registers the registry's collectors with reg; nil reg: no
// metrics.
func newMetrics(reg *prometheus.Registry, r *Registry) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	m := buildMetrics()
	gauges := []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: namespace, Subsystem: "eventlog", Name: "head_sequence",
			Help: "The event log's newest sequence number, read from the database at scrape time (NaN when it does not answer)."},
			scrapeQuery(func(ctx context.Context) (int64, error) { return r.log.Head(ctx) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: namespace, Name: "uploads_open",
			Help: "Upload sessions open across every replica, read from the database at scrape time (NaN when it does not answer)."},
			scrapeQuery(func(ctx context.Context) (int64, error) {
				_, total, err := r.log.OpenUploads(ctx, "")
				return int64(total), err
			})),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: namespace, Name: "event_stream_subscribers",
			Help: "Server-Sent Events streams of /api/v1/events open on this server."},
			func() float64 { return float64(r.hub.open.Load()) }),
	}
	const lookupsHelp = "Lookups of pulls (blobs, manifests by tag or digest) this server answered, by where the answer came from: memory (the event log's cache) or views (a database query)."
	for _, from := range []string{"memory", "views"} {
		gauges = append(gauges, prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: namespace, Subsystem: "eventlog", Name: "lookups_total",
			Help: lookupsHelp, ConstLabels: prometheus.Labels{"from": from}}, func() float64 {
			st := r.log.LookupStats()
			if from == "memory" {
				return float64(st.Memory)
			}
			return float64(st.Views)
		}))
	}
	gauges = append(gauges, prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: namespace, Subsystem: "eventlog", Name: "follow_rounds_total",
		Help: "Queries this replica made to read what other replicas appended before answering lookups from memory (PostgreSQL; one serves every lookup waiting at the time)."},
		func() float64 { return float64(r.log.LookupStats().Rounds) }))
	gauges = append(gauges, prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: namespace, Subsystem: "eventlog", Name: "follow_lease_held",
		Help: "1 while this replica holds the follow lease and answers lookups from memory without a round first (PostgreSQL, no other replica running), else 0."},
		func() float64 {
			if r.log.FollowLeaseHeld() {
				return 1
			}
			return 0
		}))
	for _, c := range append(gauges, m.requests, m.latency, m.bytesIn, m.bytesOut, m.appends, m.appendTime, m.events,
		m.groupSize, m.commitTime, m.blobOps, m.tasks, m.taskSuccess, m.gcUnlinked, m.gcSwept, m.gcFreed, m.tierMoves, m.inLog) {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	r.log.SetObserver(logObserver{m})
	m.observeStore(r.blobs, "hot")
	if r.opts.Cold != nil {
		m.observeStore(r.opts.Cold, "cold")
	}
	return m, nil
}

// buildMetrics makes the collectors, unregistered.
func buildMetrics() *metrics {
	return &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "http_requests_total",
			Help: "HTTP requests answered, by route template, method and status class (2xx, 4xx, ...)."}, []string{"route", "method", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Name: "http_request_duration_seconds",
			Help:    "Time from a request's arrival to the end of its answer, by route template and method.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300}}, []string{"route", "method"}),
		bytesIn: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "http_request_body_bytes_total",
			Help: "Bytes of request bodies read, by route template."}, []string{"route"}),
		bytesOut: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "http_response_body_bytes_total",
			Help: "Bytes of response bodies written, by route template."}, []string{"route"}),
		appends: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Subsystem: "eventlog", Name: "appends_total",
			Help: "Appends to the event log, by result (ok, error). A refused append (a conflict, a guard) is an error too."}, []string{"result"}),
		appendTime: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Subsystem: "eventlog", Name: "append_duration_seconds",
			Help:    "Time from an append's call until its events are durable (or it failed), queueing for the group commit included.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .2, .5, 1, 2, 5}}),
		events: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Subsystem: "eventlog", Name: "events_appended_total",
			Help: "Events made durable by this process's appends."}),
		groupSize: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Subsystem: "eventlog", Name: "group_commit_appends",
			Help:    "Appends committed together in one transaction (the group-commit size).",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256}}),
		commitTime: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Subsystem: "eventlog", Name: "commit_duration_seconds",
			Help:    "Time one group-commit transaction took, from begin to durable commit.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .2, .5, 1, 2, 5}}),
		blobOps: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Subsystem: "blobstore", Name: "operations_total",
			Help: "Blob store operations, by backend (fs, s3), tier (hot, cold), operation and result (ok, not_found, error)."}, []string{"backend", "tier", "op", "result"}),
		tasks: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "background_runs_total",
			Help: "Runs of the server's periodic tasks (gc, retention, tiering, anchors, ...), by task and result."}, []string{"task", "result"}),
		taskSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: "background_last_success_timestamp_seconds",
			Help: "When each periodic task last ran without error (Unix time)."}, []string{"task"}),
		gcUnlinked: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Subsystem: "gc", Name: "links_removed_total",
			Help: "Blob links garbage collection removed from repositories."}),
		gcSwept: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Subsystem: "gc", Name: "blobs_deleted_total",
			Help: "Blobs whose bytes garbage collection deleted."}),
		gcFreed: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Subsystem: "gc", Name: "bytes_freed_total",
			Help: "Bytes garbage collection freed in the blob stores."}),
		tierMoves: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Subsystem: "tiering", Name: "blobs_moved_total",
			Help: "Blobs moved between tiers, by the tier moved to."}, []string{"to"}),
		inLog: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Subsystem: "eventlog", Name: "content_bytes_total",
			Help: "Bytes of small content (manifests, small blobs) this process recorded in the event log with the events that commit them, instead of in the blob store (Options.InlineMax)."}),
	}
}

// scrapeQuery makes a gauge of a query: bounded, so that a scrape never
// hangs on a database that does not answer, and answered at most once a
// second, so that scrapes (on a public address, anyone's) cost the
// database at most one query a second each.
func scrapeQuery(q func(ctx context.Context) (int64, error)) func() float64 {
	var mu sync.Mutex
	var at time.Time
	var v float64
	return func() float64 {
		mu.Lock()
		defer mu.Unlock()
		if time.Since(at) < time.Second {
			return v
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		n, err := q(ctx)
		v, at = float64(n), time.Now()
		if err != nil {
			v = math.NaN()
		}
		return v
	}
}

// observeStore counts st's operations under its backend and tier. The
// counters are looked up once here, not per operation: reads of small
// blobs and manifests are the hot path.
func (m *metrics) observeStore(st *blobstore.Store, tier string) {
	kind := st.Kind()
	type key struct {
		op     blobstore.Op
		result int
	}
	results := [...]string{"ok", "not_found", "error"}
	counters := map[key]prometheus.Counter{}
	for _, op := range []blobstore.Op{blobstore.OpStat, blobstore.OpOpen, blobstore.OpDelete, blobstore.OpIngest,
		blobstore.OpCreate, blobstore.OpAppend, blobstore.OpCommit, blobstore.OpAbort} {
		for i, r := range results {
			counters[key{op, i}] = m.blobOps.WithLabelValues(kind, tier, string(op), r)
		}
	}
	st.SetObserver(func(op blobstore.Op, err error) {
		result := 0
		switch {
		case err == nil:
		case errors.Is(err, blobstore.ErrNotFound), errors.Is(err, blobstore.ErrUploadNotFound):
			result = 1
		default:
			result = 2
		}
		if c, ok := counters[key{op, result}]; ok {
			c.Inc()
		} else {
			m.blobOps.WithLabelValues(kind, tier, string(op), results[result]).Inc()
		}
	})
}

// logObserver counts the event log's appends and group commits.
type logObserver struct{ m *metrics }

func (o logObserver) Appended(d time.Duration, events int, err error) {
	if err != nil {
		o.m.appends.WithLabelValues("error").Inc()
	} else {
		o.m.appends.WithLabelValues("ok").Inc()
		o.m.events.Add(float64(events))
	}
	o.m.appendTime.Observe(d.Seconds())
}

func (o logObserver) Committed(appends int, d time.Duration) {
	o.m.groupSize.Observe(float64(appends))
	o.m.commitTime.Observe(d.Seconds())
}

var _ eventlog.Observer = logObserver{}

// request counts one answered request.
func (m *metrics) request(route, method string, status int, in, out int64, d time.Duration) {
	if m == nil {
		return
	}
	key := requestLabels{route, methodLabel(method), statusClass(status)}
	c, ok := m.perRequest.Load(key)
	if !ok {
		c, _ = m.perRequest.LoadOrStore(key, &requestChildren{
			requests: m.requests.WithLabelValues(key.route, key.method, key.class),
			latency:  m.latency.WithLabelValues(key.route, key.method),
			bytesIn:  m.bytesIn.WithLabelValues(key.route),
			bytesOut: m.bytesOut.WithLabelValues(key.route),
		})
	}
	ch := c.(*requestChildren)
	ch.requests.Inc()
	ch.latency.Observe(d.Seconds())
	if in > 0 {
		ch.bytesIn.Add(float64(in))
	}
	if out > 0 {
		ch.bytesOut.Add(float64(out))
	}
}

// task counts one run of a periodic task.
func (m *metrics) task(name string, err error) {
	if m == nil {
		return
	}
	name = strings.ReplaceAll(name, " ", "_")
	if err != nil {
		m.tasks.WithLabelValues(name, "error").Inc()
		return
	}
	m.tasks.WithLabelValues(name, "ok").Inc()
	m.taskSuccess.WithLabelValues(name).SetToCurrentTime()
}

// collected counts what one garbage collection did.
func (m *metrics) collected(rep GCReport) {
	if m == nil || rep.DryRun {
		return
	}
	m.gcUnlinked.Add(float64(len(rep.Unlinked)))
	m.gcSwept.Add(float64(len(rep.Swept)))
	m.gcFreed.Add(float64(rep.BytesFreed))
}

// keptInLog counts the content that the blob.committed events of an
// append that succeeded carried.
func (m *metrics) keptInLog(evs []eventlog.Event) {
	if m == nil {
		return
	}
	for _, e := range evs {
		if n := e.CarriedContent(); n > 0 {
			m.inLog.Add(float64(n))
		}
	}
}

// moved counts one blob moved to tier.
func (m *metrics) moved(tier string) {
	if m == nil {
		return
	}
	m.tierMoves.WithLabelValues(tier).Inc()
}

// methodLabel keeps the method label to a closed set: a client may send
// any token as a method.
func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return method
	}
	return "other"
}

func statusClass(status int) string {
	switch {
	case status >= 500:
		return "5xx"
	case status >= 400:
		return "4xx"
	case status >= 300:
		return "3xx"
	case status >= 200:
		return "2xx"
	}
	return "1xx"
}
