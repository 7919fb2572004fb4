// Package tracing holds the node's OpenTelemetry traces: the exporter that
// [Start] sets up (OTLP over HTTP, only when an endpoint is configured),
// the spans of each step a referral takes, and the W3C trace context
// carried between them over HTTP and NATS.
//
// One trace follows a command from the HTTP request that submitted it
// ([Handler]) through INBOUND to the router (its span a child of the
// request's, through the traceparent header [Inject] sets on the INBOUND
// message), the routing service's match and append, the dispatcher that
// copies each appended event to its recipients' delivery subjects, and
// each delivery: a webhook, an e-mail. An offer's timers carry the span
// that set them too, so a reminder and a deadline's expiry and next offer
// stay in the referral's trace. The adapters run as processes of their own
// (invictus adapter email, adapter postgres) call [Start] with a service
// name of their own and continue the trace from the messages they consume,
// the PostgreSQL relay from an outbox row's traceparent column. An event the
// routing service creates carries the CloudEvents distributed-tracing
// extension (traceparent) of the span that appended it; [Parent] reads the
// traceparent header first and that extension after, so an organisation
// that sets the extension on a command it publishes over NATS sees the
// router's spans in its own trace.
//
// Without [Start] (or with an empty [Config]) the global tracer provider
// is OpenTelemetry's no-op one: spans are neither recorded nor exported,
// nothing is injected into messages, and [Handler] returns its handler
// unchanged.
//
// Spans carry ids and codes only (see [Keys]): referral and event ids,
// event types, organisation ids, need codes, counts and HTTP routes and
// status codes. Never a payload, a sealed envelope or an error's text,
// which may quote a payload.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync/atomic"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	sdkresource "go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// ScopeName is the instrumentation scope of every span of the node.
const ScopeName = "github.com/invictus-network/invictus"

// Attribute keys: the only ones the node's spans carry.
const (
	KeyReferral   = "invictus.referral.id"
	KeyOrg        = "invictus.org"        // the organisation acting or receiving
	KeyRecipients = "invictus.recipients" // organisation ids, comma-separated
	KeyNeeds      = "invictus.needs"      // need codes, comma-separated
	KeyEvents     = "invictus.events"     // how many events an append holds
	KeyGroups     = "invictus.plan.groups"
	KeyUnmatched  = "invictus.plan.unmatched"
	KeyOutcome    = "invictus.outcome" // a code: accepted, rejected, retried, ...
	KeyAttempts   = "invictus.attempts"
	KeyEventType  = "cloudevents.event_type"
	KeyEventID    = "cloudevents.event_id"
	KeyMethod     = "http.request.method"
	KeyRoute      = "http.route"
	KeyStatus     = "http.response.status_code"
	KeyChannel    = "invictus.channel" // webhook, email, nats
)

// Keys lists every attribute key the node sets, for the tests that check
// no other reaches an exporter.
var Keys = []string{KeyReferral, KeyOrg, KeyRecipients, KeyNeeds, KeyEvents, KeyGroups, KeyUnmatched,
	KeyOutcome, KeyAttempts, KeyEventType, KeyEventID, KeyMethod, KeyRoute, KeyStatus, KeyChannel}

// Config configures [Start].
type Config struct {
	// Endpoint is the base URL of an OTLP/HTTP receiver, as in
	// OTEL_EXPORTER_OTLP_ENDPOINT: spans go to its path /v1/traces (a URL
	// whose path ends in /v1/traces is used as it is). http:// sends in
	// the clear, https:// over TLS.
	Endpoint string
	// FromEnvironment, with no Endpoint, lets the exporter read the
	// standard OTEL_EXPORTER_OTLP_* variables (endpoint, headers,
	// certificate, timeout). cmd sets it when one of them names an
	// endpoint.
	FromEnvironment bool
	// Service and Version name the resource (service.name,
	// service.version); Instance is service.instance.id. Service defaults
	// to "invictus".
	Service, Version, Instance string
}

// Enabled reports whether c exports anything.
func (c Config) Enabled() bool { return c.Endpoint != "" || c.FromEnvironment }

// Validate reports an Endpoint that is not an http or https URL with a
// host, naming the setting.
func (c Config) Validate() error {
	if c.Endpoint == "" {
		return nil
	}
	u, err := url.Parse(c.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("--otlp-endpoint %q: want the http:// or https:// URL of an OTLP/HTTP receiver, such as http://127.0.0.1:4318", c.Endpoint)
	}
	return nil
}

// enabled is set while a provider that exports is installed.
var enabled atomic.Bool

// Enabled reports whether spans are being exported (Start set up an
// exporter, and its shutdown has not run).
func Enabled() bool { return enabled.Load() }

// Start installs the global tracer provider and W3C trace-context
// propagator: with an exporter to c's OTLP/HTTP receiver when c is
// enabled, otherwise the no-op provider. The returned shutdown flushes
// the spans not yet sent (bounded by ctx) and puts the no-op provider
// back. An invalid Endpoint is an error naming --otlp-endpoint, and
// nothing is installed.
func Start(ctx context.Context, c Config) (shutdown func(context.Context) error, err error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	otel.SetTextMapPropagator(propagation.TraceContext{})
	if !c.Enabled() {
		otel.SetTracerProvider(noop.NewTracerProvider())
		return func(context.Context) error { return nil }, nil
	}
	var opts []otlptracehttp.Option
	if c.Endpoint != "" {
		opts = append(opts, otlptracehttp.WithEndpointURL(tracesURL(c.Endpoint)))
	}
	exp, err := otlptracehttp.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("otlp exporter: %w", err)
	}
	service := c.Service
	if service == "" {
		service = "invictus"
	}
	attrs := []attribute.KeyValue{attribute.String("service.name", service)}
	if c.Version != "" {
		attrs = append(attrs, attribute.String("service.version", c.Version))
	}
	if c.Instance != "" {
		attrs = append(attrs, attribute.String("service.instance.id", c.Instance))
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(sdkresource.NewSchemaless(attrs...)),
	)
	otel.SetTracerProvider(tp)
	enabled.Store(true)
	return func(ctx context.Context) error {
		enabled.Store(false)
		otel.SetTracerProvider(noop.NewTracerProvider())
		return tp.Shutdown(ctx)
	}, nil
}

// tracesURL is endpoint with the signal path /v1/traces appended, as the
// OTLP specification appends it to OTEL_EXPORTER_OTLP_ENDPOINT.
func tracesURL(endpoint string) string {
	u, err := url.Parse(endpoint)
	if err != nil || strings.HasSuffix(u.Path, "/v1/traces") {
		return endpoint
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/v1/traces"
	return u.String()
}

// Tracer is the node's tracer, from the global provider.
func Tracer() trace.Tracer { return otel.Tracer(ScopeName) }

// StartSpan starts span name as a child of ctx's span. While tracing is
// off ([Enabled] false) it returns ctx and [NoSpan]: asking OpenTelemetry's
// global provider for a span that records nothing cost allocations on
// every step of every referral.
func StartSpan(ctx context.Context, name string, kind trace.SpanKind, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	if !Enabled() {
		return ctx, noSpan
	}
	return Tracer().Start(ctx, name, trace.WithSpanKind(kind), trace.WithAttributes(attrs...))
}

// noSpan is NoSpan's span, made once.
var noSpan trace.Span = noop.Span{}

// NoSpan returns the span of every step while tracing is off: it records
// nothing, and ending it ends nothing.
func NoSpan() trace.Span { return noSpan }

// End ends span, marking it failed when err is not nil. The error's text
// is not recorded (it may quote a payload): only its kind, the
// description being "canceled", "deadline" or "error".
func End(span trace.Span, err error) {
	if err != nil {
		desc := "error"
		switch {
		case errors.Is(err, context.Canceled):
			desc = "canceled"
		case errors.Is(err, context.DeadlineExceeded):
			desc = "deadline"
		}
		span.SetStatus(codes.Error, desc)
	}
	span.End()
}

// StartDelivery starts the span of one delivery over channel ("webhook",
// "email") of the event eventID, of type eventType, of referral, to org:
// a child of the span that the DELIVERY copy h names.
func StartDelivery(ctx context.Context, channel string, h map[string][]string, org, eventType, eventID, referral string) (context.Context, trace.Span) {
	ctx = Parent(ctx, h)
	return StartSpan(ctx, channel+" "+eventType, trace.SpanKindConsumer,
		attribute.String(KeyChannel, channel),
		attribute.String(KeyOrg, org),
		attribute.String(KeyEventType, eventType),
		attribute.String(KeyEventID, eventID),
		attribute.String(KeyReferral, referral))
}
