// Package registry serves the OCI Distribution API (/v2/) and the native
// API (/api/v1/: versioned artifacts, their files and blobs, search, the
// event stream, tag history and API keys) over the event log (what
// exists) and the blob store (the bytes).
//
// A repository serves only what it links: every read, by any digest and
// on every route, resolves through the repository's own blob links, and
// a descriptor naming content the repository does not hold answers 404
// there. No client holds anything without bound: bodies that stall are
// cut (Options.BodyIdleTimeout), upload sessions are guarded by expiring
// leases rather than locks, and open sessions are capped.
//
// Every write follows one order: bytes are made durable in the blob store
// first, then one eventlog.Append records the events that make them visible
// and updates the views in the same transaction. A crash between the two
// leaves bytes no event names (collected by GC), never an event naming
// bytes that are missing.
package registry

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/artifact-store/artifact-store/auth"
	"github.com/artifact-store/artifact-store/blobstore"
	"github.com/artifact-store/artifact-store/eventlog"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
)

// Options configure a Registry.
type Options struct {
	// Log is the event log and its views. Required.
	Log *eventlog.Log
	// Blobs is the blob store. Required.
	Blobs *blobstore.Store
	// Logger receives request errors and janitor reports.
	Logger *slog.Logger
	// UploadTTL is how long an upload session may stay idle before it is
	// cancelled and its staged bytes removed. Default 24h.
	UploadTTL time.Duration
	// AllowSparse accepts image manifests whose layers and indexes whose
	// child manifests are not (yet) in the repository, as the spec allows
	// ("MAY reject"). Off by default: a manifest naming a missing blob or
	// manifest is refused with MANIFEST_BLOB_UNKNOWN. Configs are always
	// required; non-distributable layers and subjects never are.
	AllowSparse bool
	// Cold, when set, is the object store that retrieval tiering moves
	// blobs to (Blobs being the hot store); reads find a blob in either.
	Cold *blobstore.Store
	// Tiering is the policy RunTiering and TierPass apply (SetTiering
	// changes it).
	Tiering TierPolicy
	// RedirectPulls, when positive, answers blob GETs with a redirect to a
	// URL valid this long (a presigned S3 URL) where the blob's store can
	// make one, so bytes flow from the object store, not through the
	// registry. HEAD and the native API's file routes are not redirected.
	RedirectPulls time.Duration
	// InlineMax is the largest content that is kept in the event log,
	// carried by the event that records it, rather than in the blob
	// store, when a request brings it whole: manifests, blobs pushed in
	// one request, native manifests and small files (ADR 0016). The
	// group commit that makes the event durable makes the bytes durable
	// too, with no file written. Zero means DefaultInlineMax; negative,
	// never (everything goes to the blob store, as before).
	InlineMax int64
	// MaxEventStreams caps the Server-Sent Events streams open at once
	// (GET /api/v1/events with Accept: text/event-stream); one more is
	// refused with 503 UNAVAILABLE and Retry-After. Default 1000.
	MaxEventStreams int
	// MaxRequests and MaxRequestsPerClient bound the requests in flight at
	// once, from all clients and from one (its IP address); past either a
	// request is answered 503 UNAVAILABLE or 429 TOOMANYREQUESTS, with
	// Retry-After. 0: no bound. Over HTTP/1.1 a connection carries one
	// request at a time and LimitListener's bounds suffice; HTTP/2
	// carries up to 250 on one, which only these bound.
	MaxRequests, MaxRequestsPerClient int
	// BodyIdleTimeout cuts a request body that makes no progress for this
	// long: a client that sends part of a body and goes quiet then holds
	// nothing (no lease, descriptor or connection) beyond it. Default 60s.
	BodyIdleTimeout time.Duration
	// MaxUploads and MaxUploadsPerRepo cap the open upload sessions, in
	// total and per repository; a session counts once recorded, with its
	// first bytes (ADR 0018). A POST beyond a cap, or the first bytes of
	// a session beyond it, get 429 TOOMANYREQUESTS. Defaults 10,000 and
	// 1,000. The caps are checked before the session is recorded, so
	// concurrent first PATCHes may pass them by at most their number.
	MaxUploads, MaxUploadsPerRepo int
	// Auth, when set, authenticates every request and authorizes it
	// against its policy, and serves the token service at auth.TokenPath.
	// The registry gives it the API keys of its log (SetKeyLookup), so
	// an Authenticator serves one registry. Nil: open, as the embedded
	// default is.
	Auth *auth.Authenticator
	// RetentionUndo is how long a deletion made by a retention policy can
	// be restored; the collector keeps what such deletions need until
	// then. Default 7 days.
	RetentionUndo time.Duration
	// GCGrace is the grace of collections run by RunGC's callers and by
	// POST /api/v1/gc without ?grace= (GCOptions.Grace). Default 1h.
	GCGrace time.Duration
	// Scratch, when set, opens an empty event log of its own (a temporary
	// SQLite file) and returns a function that removes it: retention
	// simulations replay history into one. Without it they are refused.
	Scratch func(ctx context.Context) (*eventlog.Log, func(), error)
	// Metrics, when set, receives the registry's Prometheus collectors:
	// requests by route, the event log's appends and group commits, blob
	// store operations by backend and tier, background work. The caller
	// adds the process-wide ones (Go runtime, process, build_info). Nil:
	// no metrics are kept.
	Metrics *prometheus.Registry
	// ServeMetrics serves Options.Metrics at /metrics on the registry's
	// own routes, without authentication. Leave it off to serve them only
	// on a listener of their own (OperationsHandler).
	ServeMetrics bool
	// Tracing, when set, receives OpenTelemetry spans: one per request
	// (continuing a client's traceparent), and under it one per event log
	// append and blob store call. Nil: no spans are made.
	Tracing trace.TracerProvider
}

func (o *Options) ensureDefaults() error {
	if o.Log == nil || o.Blobs == nil {
		return errors.New("registry: Options.Log and Options.Blobs are required")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.UploadTTL <= 0 {
		o.UploadTTL = 24 * time.Hour
	}
	if o.InlineMax == 0 {
		o.InlineMax = DefaultInlineMax
	}
	if o.MaxEventStreams <= 0 {
		o.MaxEventStreams = 1000
	}
	if o.BodyIdleTimeout <= 0 {
		o.BodyIdleTimeout = 60 * time.Second
	}
	if o.MaxUploads <= 0 {
		o.MaxUploads = 10_000
	}
	if o.MaxUploadsPerRepo <= 0 {
		o.MaxUploadsPerRepo = 1_000
	}
	if o.GCGrace <= 0 {
		o.GCGrace = time.Hour
	}
	if o.RetentionUndo <= 0 {
		o.RetentionUndo = 7 * 24 * time.Hour
	}
	return nil
}

// Registry is the HTTP surface of the store.
type Registry struct {
	opts    Options
	log     *eventlog.Log
	blobs   *blobstore.Store
	logger  *slog.Logger
	handler http.Handler
	auth    *auth.Authenticator // nil: open

	stopStreams chan struct{} // closed by StopStreams
	stopOnce    sync.Once
	hub         *hub       // the event stream's one reader of the log
	inFlight    *occupancy // nil without Options.MaxRequests and MaxRequestsPerClient
	tiers       tiering
	gcMu        sync.Mutex               // one collection at a time in this process
	gcCrash     func(stage string) error // tests: stop a collection at a stage, as a kill would
	retention   retentionCache
	retentionMu sync.Mutex // one retention pass at a time in this process
	pulls       pullBatch
	anchors     anchors

	metrics        *metrics     // nil: none kept
	tracing        *tracing     // nil: no spans
	metricsHandler http.Handler // nil without Options.Metrics
	ready          readiness
	manifests      *manifestCache // bytes of recently read manifests
	ids            sessionIDs     // upload session ids (sessions.go)
	openCounts     openCounts     // the caps' counts a POST checks (sessions.go)
}

// New returns a Registry.
func New(opts Options) (*Registry, error) {
	if err := opts.ensureDefaults(); err != nil {
		return nil, err
	}
	r := &Registry{opts: opts, log: opts.Log, blobs: opts.Blobs, logger: opts.Logger, auth: opts.Auth, stopStreams: make(chan struct{})}
	r.ids.log = opts.Log
	r.hub = newHub(opts.Log, opts.Logger, r.stopStreams, opts.MaxEventStreams)
	if opts.MaxRequests > 0 || opts.MaxRequestsPerClient > 0 {
		r.inFlight = newOccupancy(opts.MaxRequests, opts.MaxRequestsPerClient, "requests in flight")
	}
	r.manifests = newManifestCache(manifestCacheBytes, manifestCacheEntry)
	r.tiers.policy = opts.Tiering
	if r.auth != nil {
		r.auth.SetKeyLookup(r.lookupKey) // API keys live in this registry's log
	}
	var err error
	if r.metrics, err = newMetrics(opts.Metrics, r); err != nil {
		return nil, err
	}
	r.metricsHandler = newMetricsHandler(opts)
	r.tracing = newTracing(opts.Tracing, r)
	r.handler = r.routes()
	return r, nil
}
