package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/artifact-store/artifact-store/auth"
	"github.com/artifact-store/artifact-store/eventlog"
	"github.com/artifact-store/artifact-store/internal/logbuf"
	"github.com/artifact-store/artifact-store/internal/logfmt"
	"github.com/artifact-store/artifact-store/registry"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// readFlushInterval is how often a server records which blobs it served:
// the collector spares blobs read within its grace, on every replica.
const readFlushInterval = 10 * time.Second

// serveFlags are serve's settings, from its flags, the environment and
// the configuration file.
type serveFlags struct {
	fs                                        *flag.FlagSet
	config                                    *string
	addr                                      *string
	sc                                        *storeConfig
	ttl, tierEvery, anchorEvery, bodyIdle     *time.Duration
	redirect, retentionEvery, undo, pullEvery *time.Duration
	sparse, logJSON                           *bool
	policy                                    *registry.TierPolicy
	checkPolicy                               func() error
	maxUploads, maxRepoUploads, maxStreams    *int
	maxConns, maxClientConns                  *int
	inlineMax                                 *int64
	inlineEnvErr                              error
	gcf                                       gcFlags
	authConfig                                *authConfig
	pprofAddr, metricsAddr, logLevel          *string
	otlpEndpoint                              *string
	tc                                        *tlsConfig
	fromFile                                  map[string]string // what the configuration file set, by flag name
	onCommandLine                             map[string]bool   // the flags args gave
}

// newServeFlags defines serve's flags on a new flag set.
func newServeFlags(errorHandling flag.ErrorHandling) *serveFlags {
	fs := flag.NewFlagSet("serve", errorHandling)
	f := &serveFlags{fs: fs}
	f.config = configFlag(fs)
	f.addr = fs.String("addr", env("ARTIFACTSTORE_ADDR", "127.0.0.1:5000"), "listen address (env ARTIFACTSTORE_ADDR)")
	f.sc = storeFlags(fs)
	fs.DurationVar(&f.sc.followLease, "follow-lease", envDuration("ARTIFACTSTORE_FOLLOW_LEASE", eventlog.DefaultFollowLeaseTerm), "PostgreSQL: while no other replica runs, answer pulls from memory without asking the database first, under a lease of this term that another process's first append waits out (ADR 0024); 0: no lease, a query per few pulls (env ARTIFACTSTORE_FOLLOW_LEASE)")
	fs.BoolVar(&f.sc.noMigrate, "no-migrate", envBool("ARTIFACTSTORE_NO_MIGRATE"), "refuse to start if the database needs migrations, instead of applying them (env ARTIFACTSTORE_NO_MIGRATE)")
	f.ttl = fs.Duration("upload-ttl", envDuration("ARTIFACTSTORE_UPLOAD_TTL", 24*time.Hour), "cancel upload sessions idle this long (env ARTIFACTSTORE_UPLOAD_TTL)")
	f.sparse = fs.Bool("allow-sparse-manifests", envBool("ARTIFACTSTORE_ALLOW_SPARSE_MANIFESTS"), "accept manifests whose layers or child manifests are not in the repository (env ARTIFACTSTORE_ALLOW_SPARSE_MANIFESTS)")
	f.redirect = fs.Duration("redirect-pulls", envDuration("ARTIFACTSTORE_REDIRECT_PULLS", 0), "answer blob GETs with a redirect to a presigned URL valid this long, when blobs are in S3 (env ARTIFACTSTORE_REDIRECT_PULLS)")
	f.policy, f.checkPolicy = tierFlags(fs)
	f.tierEvery = fs.Duration("tier-interval", envDuration("ARTIFACTSTORE_TIER_INTERVAL", time.Hour), "how often the tiering policy runs, with --cold-storage (env ARTIFACTSTORE_TIER_INTERVAL)")
	f.anchorEvery = fs.Duration("anchor-interval", envDuration("ARTIFACTSTORE_ANCHOR_INTERVAL", 30*time.Second), "how often the event log's head is anchored in the blob store (and at shutdown), for verify to detect a rolled-back log (env ARTIFACTSTORE_ANCHOR_INTERVAL)")
	f.bodyIdle = fs.Duration("body-idle-timeout", envDuration("ARTIFACTSTORE_BODY_IDLE_TIMEOUT", time.Minute), "cut a request body that sends nothing for this long, so a client that goes quiet holds nothing (env ARTIFACTSTORE_BODY_IDLE_TIMEOUT)")
	f.maxUploads = fs.Int("max-uploads", envInt("ARTIFACTSTORE_MAX_UPLOADS", 10_000), "upload sessions holding bytes allowed in total; more get 429 (env ARTIFACTSTORE_MAX_UPLOADS)")
	f.maxRepoUploads = fs.Int("max-uploads-per-repo", envInt("ARTIFACTSTORE_MAX_UPLOADS_PER_REPO", 1_000), "upload sessions holding bytes allowed per repository; more get 429 (env ARTIFACTSTORE_MAX_UPLOADS_PER_REPO)")
	f.inlineMax = new(int64)
	*f.inlineMax = registry.DefaultInlineMax
	if v := os.Getenv("ARTIFACTSTORE_INLINE_MAX"); v != "" {
		f.inlineEnvErr = sizeValue{f.inlineMax}.Set(v)
	}
	fs.Var(sizeValue{f.inlineMax}, "inline-max", "keep content up to this size that a request brings whole (manifests, blobs pushed in one request, small native files) in the event log with the event that records it, not in the blob store: one group commit makes it durable, with no file or object written; at most 1MiB, 0 keeps none there (env ARTIFACTSTORE_INLINE_MAX)")
	f.maxStreams = fs.Int("max-event-streams", envInt("ARTIFACTSTORE_MAX_EVENT_STREAMS", 1_000), "Server-Sent Events streams of /api/v1/events open at once; more get 503 (env ARTIFACTSTORE_MAX_EVENT_STREAMS)")
	f.maxConns = fs.Int("max-connections", envInt("ARTIFACTSTORE_MAX_CONNECTIONS", 8_192), "client connections open at once, all clients together; more are refused (503 over plain HTTP, closed over TLS); lowered to half the process's descriptor limit if above it; requests in flight are bounded alike (503), which matters over HTTP/2; 0: no bound (env ARTIFACTSTORE_MAX_CONNECTIONS)")
	f.maxClientConns = fs.Int("max-connections-per-client", envInt("ARTIFACTSTORE_MAX_CONNECTIONS_PER_CLIENT", 512), "client connections open at once from one IP address; more are refused (429 over plain HTTP, closed over TLS); its requests in flight are bounded alike (429), which matters over HTTP/2; behind a proxy every connection has the proxy's address, so raise it or set 0: no bound (env ARTIFACTSTORE_MAX_CONNECTIONS_PER_CLIENT)")
	f.gcf = gcFlags{grace: graceFlag(fs), interval: fs.Duration("gc-interval", envDuration("ARTIFACTSTORE_GC_INTERVAL", 0), "collect garbage this often (0: never; run \"artifactstore gc\" instead) (env ARTIFACTSTORE_GC_INTERVAL)")}
	f.retentionEvery = fs.Duration("retention-interval", envDuration("ARTIFACTSTORE_RETENTION_INTERVAL", time.Hour), "apply the retention policies this often (0: only on demand, POST /api/v1/retention/run) (env ARTIFACTSTORE_RETENTION_INTERVAL)")
	f.undo = fs.Duration("retention-undo", envDuration("ARTIFACTSTORE_RETENTION_UNDO", 7*24*time.Hour), "how long a deletion made by a retention policy can be restored; the collector keeps what it needs until then (env ARTIFACTSTORE_RETENTION_UNDO)")
	f.pullEvery = fs.Duration("pull-flush-interval", envDuration("ARTIFACTSTORE_PULL_FLUSH_INTERVAL", time.Minute), "how often the manifest pulls this server served are recorded in the log, for retention's pull rules (env ARTIFACTSTORE_PULL_FLUSH_INTERVAL)")
	f.authConfig = authFlags(fs)
	f.pprofAddr = fs.String("pprof-addr", env("ARTIFACTSTORE_PPROF_ADDR", ""), "serve Go's net/http/pprof profiles on /debug/pprof/ at this address, a listener of its own apart from the registry's, without authentication: keep it on loopback (empty: off) (env ARTIFACTSTORE_PPROF_ADDR)")
	f.logJSON = fs.Bool("log-json", envBool("ARTIFACTSTORE_LOG_JSON"), "log JSON instead of text (env ARTIFACTSTORE_LOG_JSON)")
	f.logLevel = fs.String("log-level", env("ARTIFACTSTORE_LOG_LEVEL", "info"), "debug, info, warn or error; info logs a line per request (env ARTIFACTSTORE_LOG_LEVEL)")
	f.metricsAddr = fs.String("metrics-addr", env("ARTIFACTSTORE_METRICS_ADDR", ""), "serve /metrics, /healthz and /readyz on a listener of their own at this address, and not /metrics on --addr (empty: /metrics on --addr, unauthenticated) (env ARTIFACTSTORE_METRICS_ADDR)")
	f.otlpEndpoint = fs.String("otlp-endpoint", env("ARTIFACTSTORE_OTLP_ENDPOINT", ""), "export OpenTelemetry traces (a span per request, event log append and blob store call) by OTLP over HTTP to this URL, e.g. http://collector:4318 (a URL without a path gets /v1/traces); the OTEL_EXPORTER_OTLP_* and OTEL_TRACES_SAMPLER variables also apply (empty: no tracing, unless OTEL_EXPORTER_OTLP_ENDPOINT is set) (env ARTIFACTSTORE_OTLP_ENDPOINT)")
	f.tc = tlsFlags(fs)
	return f
}

// parse reads args, then the configuration file under them, and checks
// the result.
func (f *serveFlags) parse(args []string) error {
	if err := f.fs.Parse(args); err != nil {
		return err
	}
	if f.fs.NArg() > 0 {
		return fmt.Errorf("serve takes no arguments, got %q", f.fs.Args())
	}
	f.onCommandLine = map[string]bool{}
	f.fs.Visit(func(fl *flag.Flag) { f.onCommandLine[fl.Name] = true })
	var err error
	if f.fromFile, err = applyConfigFile(f.fs, *f.config); err != nil {
		return err
	}
	return f.check()
}

// check refuses settings that cannot work, naming the flag (which is
// also the configuration file's key).
func (f *serveFlags) check() error {
	if err := f.checkPolicy(); err != nil {
		return err
	}
	if *f.ttl <= 0 || *f.tierEvery <= 0 || *f.anchorEvery <= 0 || *f.bodyIdle <= 0 {
		return fmt.Errorf("--upload-ttl, --tier-interval, --anchor-interval and --body-idle-timeout must be positive durations, e.g. 24h")
	}
	if f.inlineEnvErr != nil {
		return fmt.Errorf("ARTIFACTSTORE_INLINE_MAX: %w", f.inlineEnvErr)
	}
	if *f.inlineMax > maxInline {
		return fmt.Errorf("--inline-max %d: at most 1MiB; larger content is better in the blob store", *f.inlineMax)
	}
	if *f.maxUploads <= 0 || *f.maxRepoUploads <= 0 || *f.maxStreams <= 0 {
		return fmt.Errorf("--max-uploads, --max-uploads-per-repo and --max-event-streams must be positive")
	}
	if *f.maxConns < 0 || *f.maxClientConns < 0 {
		return fmt.Errorf("--max-connections and --max-connections-per-client must be 0 (no bound) or positive")
	}
	if err := f.tc.check(); err != nil {
		return err
	}
	if err := f.gcf.check(); err != nil {
		return err
	}
	if *f.retentionEvery < 0 || *f.undo <= 0 || *f.pullEvery <= 0 {
		return fmt.Errorf("--retention-interval must not be negative; --retention-undo and --pull-flush-interval must be positive")
	}
	if f.sc.followLease < 0 || f.sc.followLease > time.Minute {
		return fmt.Errorf("--follow-lease must be from 0 (no lease) to 1m")
	}
	if _, err := f.sc.postgres(); err != nil {
		return err
	}
	if _, err := parseLevel(*f.logLevel); err != nil {
		return err
	}
	return nil
}

// maxInline bounds --inline-max: an event carries its content whole,
// and readers of the event stream receive it.
const maxInline = 1 << 20

// inlineOption is registry.Options.InlineMax for --inline-max, whose 0
// means none (the option's 0 means its default).
func inlineOption(n int64) int64 {
	if n == 0 {
		return -1
	}
	return n
}

// parseLevel reads --log-level.
func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return l, fmt.Errorf("--log-level %q: use debug, info, warn or error", s)
	}
	return l, nil
}

func serve(ctx context.Context, args []string) error {
	f := newServeFlags(flag.ExitOnError)
	if err := f.parse(args); err != nil {
		return err
	}

	var level slog.LevelVar
	lv, _ := parseLevel(*f.logLevel) // checked by parse
	level.Set(lv)
	// A line per request: lines logged while one write is in progress go
	// out together in the next, not a syscall each.
	logOut := logbuf.New(os.Stderr, 1<<20)
	defer logOut.Close()
	var logger *slog.Logger
	if *f.logJSON {
		logger = slog.New(logfmt.NewJSON(logOut, &slog.HandlerOptions{Level: &level}))
	} else {
		logger = slog.New(logfmt.NewText(logOut, &slog.HandlerOptions{Level: &level}))
	}
	bi := readBuild()
	tp, stopTracing, err := openTracing(ctx, *f.otlpEndpoint, bi)
	if err != nil {
		return fmt.Errorf("--otlp-endpoint: %w", err)
	}
	defer func() {
		// Flush the last spans, with a bound: a collector that is gone
		// must not hold the shutdown.
		fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := stopTracing(fctx); err != nil {
			logger.Warn("tracing: flushing the last spans", "err", err)
		}
	}()
	metrics := prometheus.NewRegistry()
	metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), bi.collector())
	// TLS files load before the store opens: a bad file fails fast.
	tlsReloader, err := f.tc.reloader(logger)
	if err != nil {
		return err
	}
	st, err := openStore(ctx, f.sc, exclusive)
	if err != nil {
		return err
	}
	defer st.Close()
	authn, err := f.authConfig.open(ctx, f.sc.data, logger)
	if err != nil {
		return err
	}
	// The connection bounds bound requests in flight too: the same over
	// HTTP/1.1, and what keeps HTTP/2's many streams per connection in
	// check.
	maxConns := connectionBound(*f.maxConns, logger)
	reg, err := registry.New(registry.Options{
		MaxRequests: maxConns, MaxRequestsPerClient: *f.maxClientConns,
		Log: st.log, Blobs: st.blobs, Logger: logger, UploadTTL: *f.ttl, AllowSparse: *f.sparse,
		Cold: st.cold, Tiering: *f.policy, RedirectPulls: *f.redirect,
		BodyIdleTimeout: *f.bodyIdle, MaxUploads: *f.maxUploads, MaxUploadsPerRepo: *f.maxRepoUploads,
		MaxEventStreams: *f.maxStreams, Auth: authn, InlineMax: inlineOption(*f.inlineMax),
		RetentionUndo: *f.undo, GCGrace: *f.gcf.grace, Scratch: func(ctx context.Context) (*eventlog.Log, func(), error) { return scratchLog(ctx, os.TempDir()) },
		Metrics: metrics, ServeMetrics: *f.metricsAddr == "", Tracing: tp,
	})
	if err != nil {
		return err
	}
	if *f.metricsAddr != "" {
		stopOps, err := serveOperations(*f.metricsAddr, reg.OperationsHandler(), logger)
		if err != nil {
			return err
		}
		defer stopOps()
	}
	if *f.pprofAddr != "" {
		stopProfiles, err := serveProfiles(*f.pprofAddr, logger)
		if err != nil {
			return err
		}
		defer stopProfiles()
	} else {
		// No one can ask for a heap profile: stop sampling for one (the
		// samples' stacks are kept for the life of the process).
		runtime.MemProfileRate = 0
	}
	ln, err := net.Listen("tcp", *f.addr)
	if err != nil {
		return err
	}
	if ln, err = registry.LimitListener(ln, registry.ConnLimits{
		Max: maxConns, PerClient: *f.maxClientConns, TLS: tlsReloader != nil, Metrics: metrics, Logger: logger,
	}); err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           reg,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	srv.RegisterOnShutdown(reg.StopStreams)
	janitorCtx, stopJanitor := context.WithCancel(context.Background())
	defer stopJanitor()
	var background sync.WaitGroup
	background.Add(1)
	go func() { defer background.Done(); reg.RunJanitor(janitorCtx, min(*f.ttl/2, time.Minute)) }()
	background.Add(1)
	go func() { defer background.Done(); reg.RunAnchors(janitorCtx, *f.anchorEvery) }()
	background.Add(1)
	go func() {
		defer background.Done()
		if err := reg.FinishCollection(janitorCtx); err != nil && janitorCtx.Err() == nil {
			logger.Error("gc: finishing an interrupted collection", "err", err)
		}
	}()
	background.Add(1)
	go func() { defer background.Done(); reg.RunReadFlush(janitorCtx, readFlushInterval) }()
	background.Add(1)
	go func() { defer background.Done(); reg.RunPullFlush(janitorCtx, *f.pullEvery) }()
	// The schedules a configuration reload may change; each stops before
	// the log closes.
	gcRuns := &schedule{run: func(ctx context.Context, every time.Duration) {
		reg.RunGC(ctx, every, registry.GCOptions{Grace: *f.gcf.grace})
	}}
	retentionRuns := &schedule{run: reg.RunRetention}
	tierRuns := &schedule{run: reg.RunTiering}
	gcRuns.set(janitorCtx, *f.gcf.interval)
	retentionRuns.set(janitorCtx, *f.retentionEvery)
	if st.cold != nil {
		tierRuns.set(janitorCtx, *f.tierEvery)
	}
	defer func() {
		for _, s := range []*schedule{gcRuns, retentionRuns, tierRuns} {
			s.set(janitorCtx, 0)
		}
	}()
	setTiering := func(n *serveFlags) { reg.SetTiering(*n.policy) }
	apply := map[string]func(n *serveFlags){
		"log-level":          func(n *serveFlags) { l, _ := parseLevel(*n.logLevel); level.Set(l) },
		"gc-interval":        func(n *serveFlags) { gcRuns.set(janitorCtx, *n.gcf.interval) },
		"retention-interval": func(n *serveFlags) { retentionRuns.set(janitorCtx, *n.retentionEvery) },
		"tier-unread-for":    setTiering,
		"tier-larger-than":   setTiering,
		"promote-on-read":    setTiering,
		"tier-grace":         setTiering,
	}
	if st.cold != nil {
		apply["tier-interval"] = func(n *serveFlags) { tierRuns.set(janitorCtx, *n.tierEvery) }
	}

	onHangup := []func(){func() { f.reload(args, apply, level.Level, logger) }} // what SIGHUP re-reads
	if tlsReloader != nil {
		onHangup = append(onHangup, func() { tlsReloader.Reload() }) // a failure is logged; the previous files keep serving
	}
	if authn != nil && f.authConfig.policy != "" {
		onHangup = append(onHangup, func() { f.authConfig.reloadPolicy(authn, logger) })
	}
	if authn != nil && f.authConfig.htpasswd != "" {
		onHangup = append(onHangup, func() { f.authConfig.reloadUsers(authn, logger) })
	}
	if len(onHangup) > 0 {
		// Caught from before the server listens, so that a SIGHUP sent as
		// soon as it does reloads rather than kills.
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		background.Add(1)
		go func() { defer background.Done(); reloadOnHangup(janitorCtx, hup, onHangup) }()
	}
	errc := make(chan error, 1)
	if tlsReloader != nil {
		srv.TLSConfig = tlsReloader.Config()
		go func() { errc <- srv.ServeTLS(ln, "", "") }() // HTTP/2 and HTTP/1.1, by ALPN
	} else {
		go func() { errc <- srv.Serve(ln) }()
	}
	logger.Info("listening", "addr", ln.Addr().String(), "tls", tlsReloader != nil, "data", f.sc.data, "eventlog", backendName(f.sc), "version", bi.version, "revision", bi.revision)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down: draining in-flight requests")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err = srv.Shutdown(shutdownCtx)
	stopJanitor()
	for _, s := range []*schedule{gcRuns, retentionRuns, tierRuns} {
		s.set(janitorCtx, 0)
	}
	background.Wait() // the tiering loop records the last reads, and the anchor loop the last head, before the log closes
	if errors.Is(err, context.DeadlineExceeded) {
		logger.Warn("in-flight requests did not finish in time; closing")
		srv.Close()
	}
	logger.Info("stopped")
	return nil
}

// serveProfiles serves net/http/pprof on addr, on a mux of its own: the
// registry's handler and its authentication never see these paths, and
// nothing is added to the registry's listener. It returns a function that
// closes the listener.
func serveProfiles(addr string, logger *slog.Logger) (func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("pprof: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index) // also serves the named profiles: heap, goroutine, allocs, block, mutex...
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	// No write timeout: a CPU profile or trace streams for its ?seconds=.
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 30 * time.Second}
	go srv.Serve(ln)
	logger.Info("pprof listening", "addr", ln.Addr().String())
	return func() { srv.Close() }, nil
}

// serveOperations serves handler (metrics and health) on addr, a listener
// apart from the registry's, so that metrics need not be public. It
// returns a function that closes the listener.
func serveOperations(addr string, handler http.Handler, logger *slog.Logger) (func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
	go srv.Serve(ln)
	logger.Info("metrics and health listening", "addr", ln.Addr().String())
	return func() { srv.Close() }, nil
}

func backendName(c *storeConfig) string {
	if c.db != "" {
		return "postgres"
	}
	return "sqlite"
}

// tlsConfig is what the TLS flags say; empty files: plain HTTP.
type tlsConfig struct{ cert, key, clientCA string }

func tlsFlags(fs *flag.FlagSet) *tlsConfig {
	c := &tlsConfig{}
	fs.StringVar(&c.cert, "tls-cert", env("ARTIFACTSTORE_TLS_CERT", ""), "serve HTTPS (and HTTP/2) with this PEM certificate chain, re-read when it changes or on SIGHUP; needs --tls-key (env ARTIFACTSTORE_TLS_CERT)")
	fs.StringVar(&c.key, "tls-key", env("ARTIFACTSTORE_TLS_KEY", ""), "the PEM private key of --tls-cert (env ARTIFACTSTORE_TLS_KEY)")
	fs.StringVar(&c.clientCA, "tls-client-ca", env("ARTIFACTSTORE_TLS_CLIENT_CA", ""), "verify client certificates, when presented, against these PEM CAs (mutual TLS); clients without one are still served (env ARTIFACTSTORE_TLS_CLIENT_CA)")
	return c
}

func (c *tlsConfig) check() error {
	if (c.cert == "") != (c.key == "") {
		return errors.New("--tls-cert and --tls-key go together: give both to serve HTTPS, or neither")
	}
	if c.clientCA != "" && c.cert == "" {
		return errors.New("--tls-client-ca needs --tls-cert and --tls-key: client certificates are only asked for over HTTPS")
	}
	return nil
}

// reloader loads the TLS files; nil without them.
func (c *tlsConfig) reloader(logger *slog.Logger) (*auth.TLSReloader, error) {
	if c.cert == "" {
		return nil, nil
	}
	return auth.NewTLSReloader(auth.TLSOptions{CertFile: c.cert, KeyFile: c.key, ClientCAFile: c.clientCA, Logger: logger})
}

// reloadOnHangup re-reads the TLS files at each SIGHUP until ctx ends.
func reloadOnHangup(ctx context.Context, hup <-chan os.Signal, reloads []func()) {
	for {
		select {
		case <-hup:
			for _, reload := range reloads {
				reload()
			}
		case <-ctx.Done():
			return
		}
	}
}

// schedule runs one periodic task (gc, retention, tiering) and restarts it
// when a configuration reload changes its interval; 0 stops it.
type schedule struct {
	run func(ctx context.Context, every time.Duration)

	mu     sync.Mutex
	every  time.Duration
	cancel context.CancelFunc // nil: not running
	done   chan struct{}
}

// set runs the task every interval from now on, after stopping the run
// under way (which finishes its pass: the task sees its context end).
func (s *schedule) set(parent context.Context, every time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cancel != nil {
		s.cancel()
		<-s.done
		s.cancel = nil
	}
	s.every = every
	if every <= 0 || parent.Err() != nil {
		return
	}
	ctx, cancel := context.WithCancel(parent)
	done := make(chan struct{})
	s.cancel, s.done = cancel, done
	go func() { defer close(done); s.run(ctx, every) }()
}
