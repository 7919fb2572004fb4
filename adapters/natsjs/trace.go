package natsjs

import (
	"context"
	"errors"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/internal/tracing"
	"github.com/invictus-network/invictus/routing"
)

// The spans of the router and the bus (see internal/tracing). Each is a
// child of the span its message names: a command's of the HTTP request
// (or the sender's own trace) that submitted it, a dispatch's of the
// append that stored the event, so that one trace follows a referral
// from its request to each delivery.

// traceCommand starts the router's span of command env from org, a child
// of the span the INBOUND message names.
func traceCommand(ctx context.Context, m jetstream.Msg, org string, env *events.Envelope) (context.Context, trace.Span) {
	if !tracing.Enabled() {
		return ctx, tracing.NoSpan()
	}
	var ext []string
	if tp, ok := env.Event.Extensions()[events.ExtTraceParent].(string); ok {
		ext = append(ext, tp)
	}
	ctx = tracing.Parent(ctx, m.Headers(), ext...)
	return tracing.StartSpan(ctx, "route "+env.Event.Type(), trace.SpanKindConsumer,
		attribute.String(tracing.KeyEventType, env.Event.Type()),
		attribute.String(tracing.KeyEventID, env.Event.ID()),
		attribute.String(tracing.KeyReferral, referralOf(env.Event.Subject())),
		attribute.String(tracing.KeyOrg, org))
}

// traceOutcome records what the routing service made of a command:
// accepted, rejected (the sender is told), retried or corrupt (both
// marked failed).
func traceOutcome(span trace.Span, err error) {
	if !span.IsRecording() {
		return
	}
	outcome := "accepted"
	switch {
	case err == nil:
	case errors.Is(err, routing.ErrRejected):
		outcome = "rejected"
		if rej := routing.RejectionOf(err); rej != nil {
			outcome += " " + rej.Code
		}
	case errors.Is(err, routing.ErrCorrupt):
		outcome = "corrupt"
		span.SetStatus(codes.Error, outcome)
	default:
		outcome = "retried"
		span.SetStatus(codes.Error, outcome)
	}
	span.SetAttributes(attribute.String(tracing.KeyOutcome, outcome))
}

// traceAppend has each message of an append name ctx's span (the routing
// service's append) in its traceparent header; an event the routing
// service made itself also carries it as its CloudEvents traceparent
// extension, which its recipients receive.
func traceAppend(ctx context.Context, a routing.Append, msgs []*nats.Msg) {
	if !tracing.Enabled() {
		return // nothing to inject
	}
	for i, m := range msgs {
		tracing.Inject(ctx, m.Header)
		if _, fromOrg := events.OrgOfSource(a.Events[i].Event.Source()); !fromOrg {
			tracing.InjectExtension(ctx, m.Header)
		}
	}
}

// traceDispatch starts the dispatcher's span of an event appended to
// REFERRALS, a child of the append's.
func traceDispatch(ctx context.Context, m jetstream.Msg) (context.Context, trace.Span) {
	if !tracing.Enabled() {
		return ctx, tracing.NoSpan()
	}
	h := m.Headers()
	ctx = tracing.Parent(ctx, h)
	typ := headerFold(h, "ce-type")
	_, id, _ := events.ParseReferralSubject(m.Subject())
	return tracing.StartSpan(ctx, "dispatch "+typ, trace.SpanKindConsumer,
		attribute.String(tracing.KeyEventType, typ),
		attribute.String(tracing.KeyEventID, headerFold(h, "ce-id")),
		attribute.String(tracing.KeyReferral, id))
}

// traceCopy records the copy c of an event published to org's delivery
// subject, and has c name that span: the webhook and e-mail deliveries
// of the copy are its children.
func traceCopy(ctx context.Context, c *nats.Msg, org string) {
	if !tracing.Enabled() {
		return
	}
	ctx, span := tracing.StartSpan(ctx, "deliver "+headerFold(c.Header, "ce-type"), trace.SpanKindProducer,
		attribute.String(tracing.KeyChannel, "nats"),
		attribute.String(tracing.KeyOrg, org))
	tracing.Inject(ctx, c.Header)
	span.End()
}

// referralOf is subject if it is a referral id, otherwise "".
func referralOf(subject string) string {
	if events.IsReferralID(subject) {
		return subject
	}
	return ""
}

// traceTimer starts the span of the timer of kind for t firing, a child
// of the span its schedule names (the dispatch of the offer, or the
// reminder that set the deadline): a deadline's referral.expired and next
// offer, and a reminder's copy, join the referral's trace. A schedule
// written while tracing was off names no span; the offer's CloudEvents
// traceparent extension, which the schedule carries, is the parent then.
func traceTimer(ctx context.Context, m jetstream.Msg, kind string, t routing.Timer) (context.Context, trace.Span) {
	if !tracing.Enabled() {
		return ctx, tracing.NoSpan()
	}
	h := m.Headers()
	ctx = tracing.Parent(ctx, h)
	return tracing.StartSpan(ctx, "timer "+kind, trace.SpanKindConsumer,
		attribute.String(tracing.KeyEventType, headerFold(h, "ce-type")),
		attribute.String(tracing.KeyEventID, headerFold(h, "ce-id")),
		attribute.String(tracing.KeyReferral, t.ReferralID),
		attribute.String(tracing.KeyOrg, t.Organisation))
}

// traceTimerOutcome records what became of a timer: done (handled, or
// stale), early (fired before its deadline, handed back), dropped or
// retried (both marked failed).
func traceTimerOutcome(span trace.Span, outcome string) {
	span.SetAttributes(attribute.String(tracing.KeyOutcome, outcome))
	if outcome == "dropped" || outcome == "retried" {
		span.SetStatus(codes.Error, outcome)
	}
}
