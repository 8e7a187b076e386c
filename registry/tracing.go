package registry

import (
	"context"
	"net/http"

	"github.com/artifact-store/artifact-store/blobstore"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// tracing makes OpenTelemetry spans: one per request (continuing a trace
// the client started, by its traceparent header), and under it one per
// event log append and per blob store call. A nil *tracing (no
// Options.Tracing) makes none.
type tracing struct {
	tracer trace.Tracer
	prop   propagation.TextMapPropagator
}

// newTracing hooks spans into the log and the stores; nil tp: none.
func newTracing(tp trace.TracerProvider, r *Registry) *tracing {
	if tp == nil {
		return nil
	}
	t := &tracing{tracer: tp.Tracer("github.com/artifact-store/artifact-store/registry"), prop: propagation.TraceContext{}}
	r.log.SetTracer(func(ctx context.Context, events int) (context.Context, func(error)) {
		ctx, span := t.tracer.Start(ctx, "eventlog.append", trace.WithAttributes(attribute.Int("artifactstore.events", events)))
		return ctx, func(err error) { endSpan(span, err) }
	})
	t.traceStore(r.blobs, "hot")
	if r.opts.Cold != nil {
		t.traceStore(r.opts.Cold, "cold")
	}
	return t
}

func (t *tracing) traceStore(st *blobstore.Store, tier string) {
	attrs := trace.WithAttributes(attribute.String("artifactstore.blobstore.backend", st.Kind()), attribute.String("artifactstore.blobstore.tier", tier))
	st.SetTracer(func(ctx context.Context, op blobstore.Op) (context.Context, func(error)) {
		ctx, span := t.tracer.Start(ctx, "blobstore."+string(op), attrs)
		return ctx, func(err error) { endSpan(span, err) }
	})
}

func endSpan(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// startRequest starts req's span, and returns req carrying it.
func (t *tracing) startRequest(req *http.Request) (*http.Request, trace.Span) {
	if t == nil {
		return req, nil
	}
	ctx := t.prop.Extract(req.Context(), propagation.HeaderCarrier(req.Header))
	ctx, span := t.tracer.Start(ctx, req.Method, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("http.request.method", req.Method), attribute.String("client.address", req.RemoteAddr)))
	return req.WithContext(ctx), span
}

// endRequest names req's span after its route and ends it.
func endRequest(span trace.Span, method string, rec *recorder, status int) {
	if span == nil {
		return
	}
	span.SetName(methodLabel(method) + " " + rec.route)
	span.SetAttributes(attribute.String("http.route", rec.route), attribute.Int("http.response.status_code", status))
	if rec.repo != "" {
		span.SetAttributes(attribute.String("artifactstore.repository", clip(rec.repo)))
	}
	if rec.code != "" {
		span.SetAttributes(attribute.String("artifactstore.error_code", string(rec.code)))
	}
	if status >= 500 {
		span.SetStatus(codes.Error, http.StatusText(status))
	}
	span.End()
}
