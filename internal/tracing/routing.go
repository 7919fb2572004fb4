package tracing

import (
	"context"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// Steps starts the routing service's spans (routing.Tracer): matching and
// appending. Its attributes are the ones the service names, under the
// node's keys; a key outside [Keys] is dropped.
type Steps struct{}

// Start starts span name as a child of ctx's, with attrs (key, value
// pairs); end ends it with more attrs, failed when err is not nil.
func (Steps) Start(ctx context.Context, name string, attrs ...string) (context.Context, func(err error, attrs ...string)) {
	if !Enabled() {
		return ctx, endNothing
	}
	ctx, span := StartSpan(ctx, name, trace.SpanKindInternal, pairs(attrs)...)
	return ctx, func(err error, attrs ...string) {
		if len(attrs) > 0 {
			span.SetAttributes(pairs(attrs)...)
		}
		End(span, err)
	}
}

// endNothing is the end of a step while tracing is off.
func endNothing(error, ...string) {}

// pairs turns key, value pairs into attributes; a value that is a whole
// number becomes an int attribute, and unknown keys are dropped.
func pairs(kv []string) []attribute.KeyValue {
	out := make([]attribute.KeyValue, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		if !known(kv[i]) {
			continue
		}
		switch kv[i] {
		case KeyEvents, KeyGroups, KeyUnmatched, KeyAttempts, KeyStatus:
			if n, err := strconv.Atoi(kv[i+1]); err == nil {
				out = append(out, attribute.Int(kv[i], n))
				continue
			}
		}
		out = append(out, attribute.String(kv[i], kv[i+1]))
	}
	return out
}

func known(key string) bool {
	for _, k := range Keys {
		if k == key {
			return true
		}
	}
	return false
}
