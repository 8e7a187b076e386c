package main_test

import (
	"bytes"
	"compress/gzip"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// otlpReceiver is an OTLP/HTTP trace endpoint: it decodes what the server
// exports (protobuf, as the protocol defines it) and keeps the spans. No
// collector can be installed here, so the test is the receiving end.
type otlpReceiver struct {
	mu    sync.Mutex
	spans []*tracepb.Span
}

func (o *otlpReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		body = zr
	}
	data, _ := io.ReadAll(body)
	var req coltrace.ExportTraceServiceRequest
	if r.URL.Path != "/v1/traces" || proto.Unmarshal(data, &req) != nil {
		http.Error(w, "not an OTLP trace export", 400)
		return
	}
	o.mu.Lock()
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			o.spans = append(o.spans, ss.Spans...)
		}
	}
	o.mu.Unlock()
	out, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.Write(out)
}

// find returns the span named name in trace, or nil.
func (o *otlpReceiver) find(traceID []byte, name string) *tracepb.Span {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, s := range o.spans {
		if s.Name == name && bytes.Equal(s.TraceId, traceID) {
			return s
		}
	}
	return nil
}

// TestTracing: with --otlp-endpoint, a request continues the client's
// trace (traceparent), and its event log append and blob store call are
// spans under it, exported by OTLP.
func TestTracing(t *testing.T) {
	recv := &otlpReceiver{}
	collector := httptest.NewServer(recv)
	defer collector.Close()
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "50") // export every 50 ms, not 5 s
	s := startWith(t, t.TempDir(), freeAddr(t), "--otlp-endpoint", collector.URL)

	traceID, _ := hex.DecodeString("4bf92f3577b34da6a3ce929d0e0e4736")
	blob := bytes.Repeat([]byte("traced bytes "), 10_000) // a file: larger than the log keeps
	req, _ := http.NewRequest("POST", s.url("/v2/traced/app/blobs/uploads/?digest="+sha(blob)), bytes.NewReader(blob))
	req.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("push: %d", resp.StatusCode)
	}

	var root, appendSpan, ingest *tracepb.Span
	for range 100 { // up to 10 s
		root = recv.find(traceID, "POST /v2/{name}/blobs/uploads/")
		appendSpan = recv.find(traceID, "eventlog.append")
		ingest = recv.find(traceID, "blobstore.ingest")
		if root != nil && appendSpan != nil && ingest != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if root == nil || appendSpan == nil || ingest == nil {
		recv.mu.Lock()
		defer recv.mu.Unlock()
		var names []string
		for _, s := range recv.spans {
			names = append(names, s.Name+" "+hex.EncodeToString(s.TraceId))
		}
		t.Fatalf("spans of trace %x: request %v, append %v, ingest %v; received: %v", traceID, root != nil, appendSpan != nil, ingest != nil, names)
	}
	if hex.EncodeToString(root.ParentSpanId) != "00f067aa0ba902b7" || root.Kind != tracepb.Span_SPAN_KIND_SERVER {
		t.Errorf("request span: parent %x (want the client's 00f067aa0ba902b7), kind %v", root.ParentSpanId, root.Kind)
	}
	for _, child := range []*tracepb.Span{appendSpan, ingest} {
		if !bytes.Equal(child.ParentSpanId, root.SpanId) {
			t.Errorf("%s is not under the request's span", child.Name)
		}
	}
}
