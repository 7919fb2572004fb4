package routing

import (
	"context"
	"slices"
	"strings"
)

// Tracer starts the spans of the service's steps (matching a referral to
// a plan, appending to its log) for an adapter that records traces;
// cmd/invictus wires OpenTelemetry's (internal/tracing.Steps). attrs are
// key, value pairs of ids, codes and counts, never victim data.
type Tracer interface {
	// Start starts span name as a child of ctx's and returns its context
	// and end, which ends it with more attrs, marked failed when err is
	// not nil.
	Start(ctx context.Context, name string, attrs ...string) (_ context.Context, end func(err error, attrs ...string))
}

// Span names and attribute keys of the service's spans.
const (
	SpanMatch  = "routing.match"
	SpanAppend = "routing.append"

	AttrReferral  = "invictus.referral.id"
	AttrNeeds     = "invictus.needs"
	AttrEvents    = "invictus.events"
	AttrEventType = "cloudevents.event_type"
	AttrGroups    = "invictus.plan.groups"
	AttrUnmatched = "invictus.plan.unmatched"
)

// nopTracer is the Tracer of a ServiceConfig without one.
type nopTracer struct{}

func (nopTracer) Start(ctx context.Context, _ string, _ ...string) (context.Context, func(error, ...string)) {
	return ctx, func(error, ...string) {}
}

// eventTypes lists the distinct CloudEvents types of out, in order,
// comma-separated.
func eventTypes(out []Outgoing) string {
	var types []string
	for _, o := range out {
		if t := o.Event.Type(); !slices.Contains(types, t) {
			types = append(types, t)
		}
	}
	return strings.Join(types, ",")
}
