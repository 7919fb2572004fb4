package tracing

import (
	"context"
	"net/http"
	"strings"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// W3C trace-context header names, as NATS headers and as CloudEvents
// binary-mode extension headers (ce-traceparent is the distributed-
// tracing extension of an event encoded for NATS).
const (
	HeaderTraceParent   = "traceparent"
	HeaderTraceState    = "tracestate"
	HeaderCETraceParent = "ce-traceparent"
	HeaderCETraceState  = "ce-tracestate"
)

var w3c = propagation.TraceContext{}

// Inject sets the traceparent (and tracestate) header of h, a NATS
// message's headers, to ctx's span. A span a sampler left out is
// propagated too (flags 00), so that the next step follows the decision
// of the first. It does nothing while tracing is off ([Enabled] false),
// so messages are then as they always were.
func Inject(ctx context.Context, h map[string][]string) {
	if h == nil || !propagating(ctx) {
		return
	}
	w3c.Inject(ctx, headerCarrier{h: h})
}

// InjectExtension sets the CloudEvents traceparent extension (the
// ce-traceparent header of an event in binary mode) of h to ctx's span,
// unless the event has one: the extension names the trace the event was
// created in and is not changed on the way. It does nothing while tracing
// is off.
func InjectExtension(ctx context.Context, h map[string][]string) {
	if h == nil || !propagating(ctx) || fold(h, HeaderCETraceParent) != "" {
		return
	}
	var c propagation.MapCarrier = map[string]string{}
	w3c.Inject(ctx, c)
	h[HeaderCETraceParent] = []string{c[HeaderTraceParent]}
	if ts := c[HeaderTraceState]; ts != "" {
		h[HeaderCETraceState] = []string{ts}
	}
}

// Parent returns ctx with the remote span a message names as its parent:
// its traceparent header, or else its CloudEvents traceparent extension
// (the ce-traceparent header, or ext, the extension of an event read in
// structured mode). ctx is returned unchanged when neither is a valid
// W3C trace context, or while tracing is off.
func Parent(ctx context.Context, h map[string][]string, ext ...string) context.Context {
	if !Enabled() {
		return ctx
	}
	if tp := fold(h, HeaderTraceParent); tp != "" {
		if out := extract(ctx, tp, fold(h, HeaderTraceState)); out != nil {
			return out
		}
	}
	if tp := fold(h, HeaderCETraceParent); tp != "" {
		if out := extract(ctx, tp, fold(h, HeaderCETraceState)); out != nil {
			return out
		}
	}
	for _, tp := range ext {
		if out := extract(ctx, tp, ""); out != nil {
			return out
		}
	}
	return ctx
}

// propagating reports whether ctx's span is to be passed on: tracing is
// on and the span is valid.
func propagating(ctx context.Context) bool {
	return Enabled() && trace.SpanContextFromContext(ctx).IsValid()
}

func extract(ctx context.Context, tp, ts string) context.Context {
	c := propagation.MapCarrier{HeaderTraceParent: tp}
	if ts != "" {
		c[HeaderTraceState] = ts
	}
	out := w3c.Extract(ctx, c)
	if !trace.SpanContextFromContext(out).IsValid() {
		return nil
	}
	return out
}

// InjectHTTP sets the traceparent header of an outgoing HTTP request to
// ctx's span, while tracing is on.
func InjectHTTP(ctx context.Context, h http.Header) {
	if !propagating(ctx) {
		return
	}
	w3c.Inject(ctx, propagation.HeaderCarrier(h))
}

// fold returns the first value of the header named name in any case.
func fold(h map[string][]string, name string) string {
	if vs := h[name]; len(vs) > 0 {
		return vs[0]
	}
	for k, vs := range h {
		if len(vs) > 0 && strings.EqualFold(k, name) {
			return vs[0]
		}
	}
	return ""
}

// headerCarrier is a TextMapCarrier over NATS headers, which keep their
// keys as written: the W3C names, lower-case.
type headerCarrier struct{ h map[string][]string }

func (c headerCarrier) Get(key string) string { return fold(c.h, key) }
func (c headerCarrier) Set(key, value string) { c.h[key] = []string{value} }
func (c headerCarrier) Keys() []string {
	out := make([]string, 0, len(c.h))
	for k := range c.h {
		out = append(out, k)
	}
	return out
}
