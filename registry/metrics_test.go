package registry_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/artifact-store/artifact-store/registry"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape reads /metrics as Prometheus would and parses it.
func (s *testServer) scrape() (map[string]*dto.MetricFamily, []byte) {
	s.t.Helper()
	r := s.do("GET", "/metrics", nil)
	expect(s.t, r, http.StatusOK)
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(r.body))
	if err != nil {
		s.t.Fatalf("parse /metrics: %v\n%s", err, r.body)
	}
	return fams, r.body
}

// value is the value of the family's series whose labels include want
// ("name=value" pairs); counters, gauges, and histograms' sample counts.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, want ...string) float64 {
	t.Helper()
	fam, ok := fams[name]
	if !ok {
		t.Fatalf("/metrics has no %s", name)
	}
	total, found := 0.0, false
next:
	for _, m := range fam.GetMetric() {
		for _, w := range want {
			k, v, _ := strings.Cut(w, "=")
			has := false
			for _, l := range m.GetLabel() {
				has = has || l.GetName() == k && l.GetValue() == v
			}
			if !has {
				continue next
			}
		}
		found = true
		switch {
		case m.Counter != nil:
			total += m.GetCounter().GetValue()
		case m.Gauge != nil:
			total += m.GetGauge().GetValue()
		case m.Histogram != nil:
			total += float64(m.GetHistogram().GetSampleCount())
		}
	}
	if !found {
		t.Fatalf("%s has no series with %v", name, want)
	}
	return total
}

// TestLookupsCounted: the pulls of a manifest just pushed are answered
// from memory (the put filled the log's cache), a tag that does not exist
// by a query, and /metrics says so.
func TestLookupsCounted(t *testing.T) {
	s := newServer(t, func(o *registry.Options) {
		o.Metrics = prometheus.NewRegistry()
		o.ServeMetrics = true
	})
	const repo = "metrics/lookups"
	s.pushImage(repo, "v1", "")
	before, _ := s.scrape()
	for range 3 {
		expect(t, s.do("GET", "/v2/"+repo+"/manifests/v1", nil, "Accept: application/vnd.oci.image.manifest.v1+json"), http.StatusOK)
	}
	expect(t, s.do("GET", "/v2/"+repo+"/manifests/nope", nil), http.StatusNotFound, "MANIFEST_UNKNOWN")
	after, _ := s.scrape()
	delta := func(from string) float64 {
		return value(t, after, "artifactstore_eventlog_lookups_total", "from="+from) - value(t, before, "artifactstore_eventlog_lookups_total", "from="+from)
	}
	if m, v := delta("memory"), delta("views"); m != 3 || v != 1 {
		t.Errorf("lookups from memory %v, from the views %v; want 3 (the pushed manifest) and 1 (the missing tag)", m, v)
	}
	if got := value(t, after, "artifactstore_eventlog_follow_rounds_total"); got != 0 {
		t.Errorf("follow rounds on a SQLite server: %v, want 0", got)
	}
}

func TestMetricsCountAKnownWorkload(t *testing.T) {
	s := newServer(t, func(o *registry.Options) {
		o.Metrics = prometheus.NewRegistry()
		o.ServeMetrics = true
	})
	const repo = "metrics/app"
	m, _ := s.pushImage(repo, "v1", "") // two blobs POSTed with ?digest=, one manifest PUT
	var parsed struct{ Config struct{ Size int } }
	mustJSON(t, m, &parsed)
	blobBytes := parsed.Config.Size + 300 // pushImage's layer
	for range 3 {
		expect(t, s.do("GET", "/v2/"+repo+"/manifests/v1", nil, "Accept: application/vnd.oci.image.manifest.v1+json"), http.StatusOK)
	}
	expect(t, s.do("GET", "/v2/"+repo+"/manifests/nope", nil), http.StatusNotFound, "MANIFEST_UNKNOWN")
	expect(t, s.do("GET", "/nowhere", nil), http.StatusNotFound)
	expect(t, s.do("BREW", "/v2/", nil), http.StatusMethodNotAllowed)

	fams, text := s.scrape()
	const manifests = "/v2/{name}/manifests/{reference}"
	if got := value(t, fams, "artifactstore_http_requests_total", "route="+manifests, "method=GET", "status=2xx"); got != 3 {
		t.Errorf("manifest GETs answered 2xx: %v, want 3", got)
	}
	if got := value(t, fams, "artifactstore_http_requests_total", "route="+manifests, "method=GET", "status=4xx"); got != 1 {
		t.Errorf("manifest GETs answered 4xx: %v, want 1", got)
	}
	if got := value(t, fams, "artifactstore_http_requests_total", "route="+manifests, "method=PUT", "status=2xx"); got != 1 {
		t.Errorf("manifest PUTs: %v, want 1", got)
	}
	if got := value(t, fams, "artifactstore_http_requests_total", "route=/v2/{name}/blobs/uploads/", "method=POST", "status=2xx"); got != 2 {
		t.Errorf("blob POSTs: %v, want 2", got)
	}
	// A path no route has, and a method no client should send, are
	// counted under closed labels: a client cannot mint series.
	if got := value(t, fams, "artifactstore_http_requests_total", "route=unmatched", "status=4xx"); got != 2 {
		t.Errorf("unmatched requests: %v, want 2", got)
	}
	if got := value(t, fams, "artifactstore_http_requests_total", "method=other"); got != 1 {
		t.Errorf("requests with an unknown method: %v, want 1", got)
	}
	if strings.Contains(string(text), "BREW") || strings.Contains(string(text), "nowhere") || strings.Contains(string(text), repo) {
		t.Errorf("a client's method, path or repository became a label:\n%s", text)
	}
	if got := value(t, fams, "artifactstore_http_request_duration_seconds", "route="+manifests, "method=GET"); got != 4 {
		t.Errorf("manifest GET latencies observed: %v, want 4", got)
	}
	if got := value(t, fams, "artifactstore_http_request_body_bytes_total", "route="+manifests); got != float64(len(m)) {
		t.Errorf("manifest bytes in: %v, want %d", got, len(m))
	}
	if got := value(t, fams, "artifactstore_http_response_body_bytes_total", "route="+manifests); got < float64(3*len(m)) {
		t.Errorf("manifest bytes out: %v, want at least %d", got, 3*len(m))
	}

	// Three appends (two blobs, one manifest), all durable.
	if got := value(t, fams, "artifactstore_eventlog_appends_total", "result=ok"); got < 3 {
		t.Errorf("appends: %v, want at least 3", got)
	}
	if got := value(t, fams, "artifactstore_eventlog_group_commit_appends"); got < 1 {
		t.Errorf("group commits observed: %v", got)
	}
	head, err := s.log.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := value(t, fams, "artifactstore_eventlog_head_sequence"); got != float64(head) {
		t.Errorf("head_sequence %v, log head %d", got, head)
	}
	// The two blobs and the manifest are small: the log keeps them.
	if got := value(t, fams, "artifactstore_eventlog_content_bytes_total"); got != float64(len(m)+blobBytes) {
		t.Errorf("content kept in the log: %v bytes, want %d (two blobs, one manifest)", got, len(m)+blobBytes)
	}
	large := randomBytes(t, registry.DefaultInlineMax+1)
	s.pushBlob(repo, large)
	fams, _ = s.scrape()
	if got := value(t, fams, "artifactstore_blobstore_operations_total", "backend=fs", "tier=hot", "op=ingest", "result=ok"); got != 1 {
		t.Errorf("blob store ingests: %v, want 1 (the large blob)", got)
	}
	if got := value(t, fams, "artifactstore_uploads_open"); got != 0 {
		t.Errorf("uploads open: %v, want 0", got)
	}
	// A session counts as open once it holds bytes (ADR 0018).
	loc := s.do("POST", "/v2/"+repo+"/blobs/uploads/", nil).Header.Get("Location")
	expect(t, s.do("PATCH", loc, []byte("x")), http.StatusAccepted)
	// The database's gauges are read at most once a second.
	got := 0.0
	for range 30 {
		fams, _ = s.scrape()
		if got = value(t, fams, "artifactstore_uploads_open"); got == 1 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got != 1 {
		t.Errorf("uploads open after a POST and a PATCH: %v, want 1", got)
	}
	if got := value(t, fams, "artifactstore_event_stream_subscribers"); got != 0 {
		t.Errorf("subscribers: %v, want 0", got)
	}
}

// The exposition passes the client library's linter (what promtool check
// metrics runs): names, units, help texts, counter suffixes.
func TestMetricsLint(t *testing.T) {
	s := newServer(t, func(o *registry.Options) {
		o.Metrics = prometheus.NewRegistry()
		o.ServeMetrics = true
	})
	s.pushImage("lint/app", "v1", "")
	_, text := s.scrape()
	problems, err := promlint.New(bytes.NewReader(text)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}

// Without ServeMetrics, /metrics is not on the registry's routes (it is on
// OperationsHandler's listener), and without Metrics nothing is kept.
func TestMetricsOffTheMainRoutes(t *testing.T) {
	s := newServer(t, func(o *registry.Options) { o.Metrics = prometheus.NewRegistry() })
	expect(t, s.do("GET", "/metrics", nil), http.StatusNotFound)
	ops := httptestServe(t, s.reg.OperationsHandler())
	r := ops.do("GET", "/metrics", nil)
	expect(t, r, http.StatusOK)
	if !strings.Contains(string(r.body), "artifactstore_eventlog_head_sequence") {
		t.Errorf("operations listener's /metrics lacks the registry's metrics:\n%s", r.body)
	}
	expect(t, ops.do("GET", "/readyz", nil), http.StatusOK)
	expect(t, ops.do("GET", "/v2/", nil), http.StatusNotFound)

	none := newServer(t)
	expect(t, none.do("GET", "/metrics", nil), http.StatusNotFound)
}
