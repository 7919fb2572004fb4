package tracing_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/invictus-network/invictus/internal/testenv"
	"github.com/invictus-network/invictus/internal/tracing"
	"github.com/invictus-network/invictus/internal/tracing/otlptest"
)

// The tests share the global tracer provider: none runs in parallel.

func TestConfigValidate(t *testing.T) {
	for _, bad := range []string{"localhost:4318", "grpc://c:4317", "http://", "http://c:4318/?a=b", "http://c:4318/#x", "::"} {
		err := tracing.Config{Endpoint: bad}.Validate()
		if err == nil || !strings.Contains(err.Error(), "--otlp-endpoint") {
			t.Errorf("Endpoint %q: %v, want an error naming --otlp-endpoint", bad, err)
		}
		if _, err := tracing.Start(t.Context(), tracing.Config{Endpoint: bad}); err == nil {
			t.Errorf("Start with %q: no error", bad)
		}
	}
	for _, good := range []string{"", "http://127.0.0.1:4318", "https://collector.example:4318/otlp", "http://c:4318/v1/traces"} {
		if err := (tracing.Config{Endpoint: good}).Validate(); err != nil {
			t.Errorf("Endpoint %q: %v", good, err)
		}
	}
}

// start starts tracing to a new receiver at path (appended to its URL)
// and returns the receiver and a flush that shuts tracing down.
func start(t *testing.T, path string) (*otlptest.Receiver, func()) {
	t.Helper()
	rcv := otlptest.Start()
	t.Cleanup(rcv.Close)
	shutdown, err := tracing.Start(t.Context(), tracing.Config{Endpoint: rcv.URL() + path, Version: "v9", Instance: "node-1"})
	if err != nil {
		t.Fatal(err)
	}
	done := false
	flush := func() {
		if !done {
			done = true
			if err := shutdown(context.Background()); err != nil {
				t.Errorf("shutdown: %v", err)
			}
		}
	}
	t.Cleanup(flush)
	if !tracing.Enabled() {
		t.Fatal("Enabled is false after Start with an endpoint")
	}
	return rcv, flush
}

// TestExportAndPropagate: spans reach a real OTLP/HTTP receiver (at
// /v1/traces below the base URL, with the resource); a NATS header
// carries the context from one span to the next; the CloudEvents
// extension is the fallback and is never overwritten.
func TestExportAndPropagate(t *testing.T) {
	for _, path := range []string{"", "/", "/v1/traces"} {
		t.Run("path="+path, func(t *testing.T) {
			rcv, flush := start(t, path)
			ctx, parent := tracing.StartSpan(t.Context(), "parent", trace.SpanKindProducer)
			h := map[string][]string{"ce-id": {"x"}}
			tracing.Inject(ctx, h)
			tracing.InjectExtension(ctx, h)
			parent.End()
			if len(h["traceparent"]) != 1 || h["ce-traceparent"][0] != h["traceparent"][0] {
				t.Fatalf("headers after Inject and InjectExtension: %v", h)
			}
			// The extension an event has stays.
			ext := map[string][]string{"ce-traceparent": {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}}
			tracing.InjectExtension(ctx, ext)
			if ext["ce-traceparent"][0] != "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" {
				t.Errorf("InjectExtension replaced the event's own extension: %v", ext)
			}
			_, child := tracing.StartSpan(tracing.Parent(t.Context(), h), "child", trace.SpanKindConsumer)
			child.End()
			_, fromExt := tracing.StartSpan(tracing.Parent(t.Context(), ext), "from-extension", trace.SpanKindConsumer)
			fromExt.End()
			_, fromArg := tracing.StartSpan(tracing.Parent(t.Context(), nil, "00-1af7651916cd43dd8448eb211c80319c-c7ad6b7169203331-01"), "from-structured", trace.SpanKindConsumer)
			fromArg.End()
			_, bad := tracing.StartSpan(tracing.Parent(t.Context(), map[string][]string{"traceparent": {"junk"}}), "root", trace.SpanKindConsumer)
			tracing.End(bad, errors.New("the payload said Maria"))
			flush()

			byName := map[string]otlptest.Span{}
			for _, sp := range rcv.Spans() {
				byName[sp.Name] = sp
			}
			p, c := byName["parent"], byName["child"]
			if p.SpanID == "" || c.TraceID != p.TraceID || c.ParentID != p.SpanID {
				t.Errorf("child %+v is not parent %+v's child", c, p)
			}
			if p.Resource["service.name"] != "invictus" || p.Resource["service.version"] != "v9" || p.Resource["service.instance.id"] != "node-1" {
				t.Errorf("resource %v", p.Resource)
			}
			if s := byName["from-extension"]; s.TraceID != "0af7651916cd43dd8448eb211c80319c" || s.ParentID != "b7ad6b7169203331" {
				t.Errorf("span under the ce-traceparent extension: %+v", s)
			}
			if s := byName["from-structured"]; s.TraceID != "1af7651916cd43dd8448eb211c80319c" || s.ParentID != "c7ad6b7169203331" {
				t.Errorf("span under a structured event's extension: %+v", s)
			}
			if s := byName["root"]; s.ParentID != "" || s.Status != "STATUS_CODE_ERROR" || s.StatusMessage != "error" || len(s.Events) != 0 {
				t.Errorf("span under a malformed traceparent: %+v; want a failed root without the error's text", s)
			}
			if bad := rcv.Bad(); len(bad) > 0 {
				t.Errorf("the receiver refused: %v", bad)
			}
		})
	}
}

// TestOff: without Start, nothing is injected and Handler is the handler
// itself.
func TestOff(t *testing.T) {
	if tracing.Enabled() {
		t.Fatal("Enabled before Start")
	}
	ctx, span := tracing.StartSpan(t.Context(), "x", trace.SpanKindInternal)
	defer span.End()
	h := map[string][]string{}
	tracing.Inject(ctx, h)
	tracing.InjectExtension(ctx, h)
	if len(h) != 0 {
		t.Errorf("headers set while tracing is off: %v", h)
	}
	var next http.Handler = http.NewServeMux()
	if got := tracing.Handler(next); got != next {
		t.Error("Handler wraps while tracing is off")
	}
	// The steps of every referral cost nothing while tracing is off
	// (beyond the caller's own attribute lists).
	if n := testing.AllocsPerRun(100, func() {
		sctx, span := tracing.StartSpan(ctx, "x", trace.SpanKindInternal)
		span.End()
		_, end := tracing.Steps{}.Start(sctx, "y")
		end(nil)
	}); n != 0 {
		t.Errorf("a span and a step cost %v allocations while tracing is off; want 0", n)
	}
}

type innerKey struct{}

// TestHandler: a POST has a server span named by its route, a child of
// the caller's traceparent, with its status code; a GET has none.
func TestHandler(t *testing.T) {
	rcv, flush := start(t, "")
	mux := http.NewServeMux()
	var inner trace.SpanContext
	mux.HandleFunc("POST /v1/things/{id}", func(w http.ResponseWriter, r *http.Request) {
		inner = trace.SpanContextFromContext(r.Context())
		w.WriteHeader(http.StatusTeapot)
	})
	mux.HandleFunc("GET /v1/things/{id}", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	// A handler with a mux of its own, on a request of its own, names
	// its route.
	mux.Handle("/api/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r = r.WithContext(context.WithValue(r.Context(), innerKey{}, 1))
		tracing.Route(r, "POST /api/v2/orders")
		w.WriteHeader(http.StatusAccepted)
	}))
	srv := httptest.NewServer(tracing.Handler(mux))
	defer srv.Close()
	for _, method := range []string{http.MethodPost, http.MethodGet, "BREW"} {
		req, _ := http.NewRequestWithContext(t.Context(), method, srv.URL+"/v1/things/secret-name?q=Maria", nil)
		req.Header.Set("traceparent", "00-2af7651916cd43dd8448eb211c80319c-d7ad6b7169203331-01")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/api/v2/orders", nil)
	if resp, err := http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}
	flush()
	spans := rcv.Spans()
	if len(spans) != 3 {
		t.Fatalf("%d spans, want 3 (POST, the unknown method, the inner mux's POST): %+v", len(spans), spans)
	}
	if sp := spans[2]; sp.Name != "POST /api/v2/orders" || sp.Attrs["http.route"] != "/api/v2/orders" || sp.Attrs["http.response.status_code"] != "202" {
		t.Errorf("the inner mux's span %+v", sp)
	}
	sp := spans[0]
	if sp.Name != "POST /v1/things/{id}" || sp.Kind != "SPAN_KIND_SERVER" || sp.Attrs["http.response.status_code"] != "418" ||
		sp.Attrs["http.route"] != "/v1/things/{id}" || sp.TraceID != "2af7651916cd43dd8448eb211c80319c" || sp.ParentID != "d7ad6b7169203331" {
		t.Errorf("POST span %+v", sp)
	}
	if inner.SpanID().String() != sp.SpanID {
		t.Errorf("the handler's context has span %s, want %s", inner.SpanID(), sp.SpanID)
	}
	if other := spans[1]; other.Name != "_OTHER" || other.Attrs["http.request.method"] != "_OTHER" {
		t.Errorf("unknown method's span %+v, want _OTHER", other)
	}
	for _, sp := range spans {
		for _, v := range sp.Attrs {
			if strings.Contains(v, "secret-name") || strings.Contains(v, "Maria") {
				t.Errorf("span %q carries the path or query: %v", sp.Name, sp.Attrs)
			}
		}
	}
}

// TestStepsDropUnknownKeys: the routing service's spans keep the node's
// keys only, counts as numbers.
func TestStepsDropUnknownKeys(t *testing.T) {
	rcv, flush := start(t, "")
	_, end := tracing.Steps{}.Start(t.Context(), "routing.match", tracing.KeyNeeds, "support.emotional", "victim.name", "Maria")
	end(nil, tracing.KeyGroups, "2", "gender", "female")
	flush()
	testenv.Await(t, "the span", func() bool { return len(rcv.Spans()) == 1 })
	sp := rcv.Spans()[0]
	if len(sp.Attrs) != 2 || sp.Attrs[tracing.KeyNeeds] != "support.emotional" || sp.Attrs[tracing.KeyGroups] != "2" {
		t.Errorf("attributes %v, want the needs and the groups only", sp.Attrs)
	}
}

// TestSampledOut: with the standard OTEL_TRACES_SAMPLER leaving a trace
// out, nothing is exported but the decision still travels (flags 00),
// so the next step leaves it out too.
func TestSampledOut(t *testing.T) {
	t.Setenv("OTEL_TRACES_SAMPLER", "parentbased_always_off")
	rcv, flush := start(t, "")
	ctx, span := tracing.StartSpan(t.Context(), "left out", trace.SpanKindServer)
	h := map[string][]string{}
	tracing.Inject(ctx, h)
	span.End()
	tp := h["traceparent"]
	if len(tp) != 1 || !strings.HasSuffix(tp[0], "-00") {
		t.Fatalf("traceparent %v, want one with flags 00", tp)
	}
	_, next := tracing.StartSpan(tracing.Parent(t.Context(), h), "next", trace.SpanKindConsumer)
	if next.SpanContext().IsSampled() || next.SpanContext().TraceID() != span.SpanContext().TraceID() {
		t.Errorf("the next span %v: want the same trace, left out", next.SpanContext())
	}
	next.End()
	flush()
	if n := len(rcv.Spans()); n != 0 {
		t.Errorf("%d spans exported, want none", n)
	}
}
