package postgres

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/invictus-network/invictus/internal/tracing"
)

// The spans of the relay and the inbox (see internal/tracing), while
// traces are exported: "outbox <type>" for each command the relay
// publishes, the child of the span its row's traceparent column names
// (else the root of a trace), its message naming it in a traceparent
// header; "inbox <type>" for each delivery stored, the child of the span
// the DELIVERY message names, its traceparent written to the row. They
// carry ids and codes only, never a payload or an error's text.

// channelPostgres is the tracing.KeyChannel of the adapter's spans.
const channelPostgres = "postgres"

// traceOutbox starts the span of row's command, and names it in the
// traceparent header of the command's message.
func traceOutbox(ctx context.Context, org string, row outboxRow, header map[string][]string) trace.Span {
	if row.traceparent != nil {
		ctx = tracing.Parent(ctx, map[string][]string{tracing.HeaderTraceParent: {*row.traceparent}})
	}
	ctx, span := tracing.StartSpan(ctx, "outbox "+row.typ, trace.SpanKindProducer, outboxAttrs(org, row)...)
	tracing.Inject(ctx, header)
	return span
}

// traceRejected records a row the contract rejects: a failed span with
// outcome rejected, ended at once.
func traceRejected(ctx context.Context, org string, row outboxRow) {
	if row.traceparent != nil {
		ctx = tracing.Parent(ctx, map[string][]string{tracing.HeaderTraceParent: {*row.traceparent}})
	}
	_, span := tracing.StartSpan(ctx, "outbox "+row.typ, trace.SpanKindProducer, outboxAttrs(org, row)...)
	endSpan(span, "rejected")
}

func outboxAttrs(org string, row outboxRow) []attribute.KeyValue {
	ref := ""
	if row.referralID != nil {
		ref = *row.referralID
	}
	return []attribute.KeyValue{
		attribute.String(tracing.KeyChannel, channelPostgres),
		attribute.String(tracing.KeyOrg, org),
		attribute.String(tracing.KeyEventType, row.typ),
		attribute.String(tracing.KeyEventID, row.id),
		attribute.String(tracing.KeyReferral, ref),
	}
}

// traceInbox starts the span of each delivery of ds to org (d.span) and
// sets the traceparent its row records (d.traceparent); it does nothing
// while tracing is off.
func traceInbox(ctx context.Context, org string, ds []delivery) {
	if !tracing.Enabled() {
		return
	}
	for i := range ds {
		d := &ds[i]
		e := d.env.Event
		sctx := tracing.Parent(ctx, d.msg.Headers())
		sctx, d.span = tracing.StartSpan(sctx, "inbox "+e.Type(), trace.SpanKindConsumer,
			attribute.String(tracing.KeyChannel, channelPostgres),
			attribute.String(tracing.KeyOrg, org),
			attribute.String(tracing.KeyEventType, e.Type()),
			attribute.String(tracing.KeyEventID, e.ID()),
			attribute.String(tracing.KeyReferral, e.Subject()))
		h := map[string][]string{}
		tracing.Inject(sctx, h)
		if v := h[tracing.HeaderTraceParent]; len(v) > 0 {
			d.traceparent = &v[0]
		}
	}
}

// endDelivery ends d's span, if any, with outcome.
func endDelivery(d delivery, outcome string) {
	if d.span != nil {
		endSpan(d.span, outcome)
	}
}

// endSpan ends span with outcome, failed unless the outcome is one of
// success (published, stored).
func endSpan(span trace.Span, outcome string) {
	span.SetAttributes(attribute.String(tracing.KeyOutcome, outcome))
	switch outcome {
	case "published", "stored":
	default:
		span.SetStatus(codes.Error, outcome)
	}
	span.End()
}
