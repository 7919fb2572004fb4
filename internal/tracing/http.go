package tracing

import (
	"context"
	"net/http"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Handler wraps next so that each request that may change something (any
// method but GET, HEAD and OPTIONS: the API's commands, the console's
// form posts) has a server span, the child of the caller's traceparent
// header if it sent one. The span is named by the method and the route
// pattern that served it ("POST /v1/events"), never the path or query,
// which may hold more than a route. While tracing is off ([Enabled]
// false when Handler is called) it returns next itself.
func Handler(next http.Handler) http.Handler {
	if !Enabled() {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			next.ServeHTTP(w, r)
			return
		}
		ctx := w3c.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		method := methodLabel(r.Method)
		ctx, span := StartSpan(ctx, method, trace.SpanKindServer, attribute.String(KeyMethod, method))
		defer span.End()
		sw := &statusWriter{ResponseWriter: w}
		slot := new(string)
		r = r.WithContext(context.WithValue(ctx, routeSlot{}, slot))
		next.ServeHTTP(sw, r)
		route := *slot
		if route == "" && r.Pattern != "" {
			route = routeOf(r.Pattern)
		}
		if route != "" {
			span.SetName(method + " " + route)
			span.SetAttributes(attribute.String(KeyRoute, route))
		}
		code := sw.code
		if code == 0 {
			code = http.StatusOK
		}
		span.SetAttributes(attribute.Int(KeyStatus, code))
		if code >= 500 {
			span.SetStatus(codes.Error, http.StatusText(code))
		}
	})
}

// routeSlot is the context key of the route a handler below [Handler]
// names with [Route].
type routeSlot struct{}

// Route names the route that serves r, a ServeMux pattern, for the span
// of [Handler] above it: for a handler with its own mux below the one
// Handler wraps, whose pattern Handler cannot see ("/v1/events" rather
// than the outer "/v1/").
func Route(r *http.Request, pattern string) {
	if slot, ok := r.Context().Value(routeSlot{}).(*string); ok {
		*slot = routeOf(pattern)
	}
}

// routeOf is the path of a ServeMux pattern ("POST /v1/events" is
// "/v1/events").
func routeOf(pattern string) string {
	for i := 0; i < len(pattern); i++ {
		if pattern[i] == '/' {
			return pattern[i:]
		}
	}
	return pattern
}

// methodLabel is m if it is a standard method, otherwise "_OTHER", so a
// client cannot write what it likes into a span.
func methodLabel(m string) string {
	switch m {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "_OTHER"
}

// statusWriter records the status code written.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the writer beneath.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
