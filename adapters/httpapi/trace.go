package httpapi

import (
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/invictus-network/invictus/internal/tracing"
)

// traceAttempt records a webhook attempt on the delivery's span: the
// attempts so far, the status code received, and a failure once the
// message is given up. The attempt's error text is not recorded.
func traceAttempt(span trace.Span, a WebhookAttempt) {
	span.SetAttributes(attribute.Int(tracing.KeyAttempts, a.Attempt), attribute.String(tracing.KeyOutcome, a.Result))
	if a.StatusCode != 0 {
		span.SetAttributes(attribute.Int(tracing.KeyStatus, a.StatusCode))
	}
	if a.Result == ResultGaveUp {
		span.SetStatus(codes.Error, ResultGaveUp)
	}
}
