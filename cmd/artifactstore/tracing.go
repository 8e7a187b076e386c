package main

import (
	"context"
	"fmt"
	"net/url"
	"os"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// tracingOn reports whether traces are to be exported: --otlp-endpoint,
// or the standard OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT variables. Off by
// default: nothing is sent anywhere unless asked.
func tracingOn(endpoint string) bool {
	if os.Getenv("OTEL_SDK_DISABLED") == "true" {
		return false
	}
	return endpoint != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != ""
}

// openTracing returns a tracer provider exporting OTLP over HTTP, and the
// function that flushes and stops it; nil and a no-op when tracing is
// off. The exporter's other settings (headers, TLS, timeout) and the
// sampler (OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG) come from the
// standard OTEL_* variables; OTEL_SERVICE_NAME overrides "artifactstore".
func openTracing(ctx context.Context, endpoint string, b build) (trace.TracerProvider, func(context.Context) error, error) {
	if !tracingOn(endpoint) {
		return nil, func(context.Context) error { return nil }, nil
	}
	var opts []otlptracehttp.Option
	if endpoint != "" {
		u, err := url.Parse(endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, nil, fmt.Errorf("%q is not an http:// or https:// URL", endpoint)
		}
		if u.Path == "" || u.Path == "/" {
			u.Path = "/v1/traces" // a collector's base URL, as OTEL_EXPORTER_OTLP_ENDPOINT is
		}
		opts = append(opts, otlptracehttp.WithEndpointURL(u.String()))
	}
	exp, err := otlptracehttp.New(ctx, opts...)
	if err != nil {
		return nil, nil, err
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", "artifactstore"), attribute.String("service.version", b.version), attribute.String("vcs.revision", b.revision)),
		resource.WithFromEnv(), resource.WithHost(), resource.WithProcessPID())
	if err != nil {
		return nil, nil, err
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return tp, tp.Shutdown, nil
}
