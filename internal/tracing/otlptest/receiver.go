// Package otlptest is a real OTLP/HTTP trace receiver for tests: an HTTP
// server on a loopback port that decodes what exporters POST to
// /v1/traces (protobuf or JSON, gzip or not) with the OTLP collector
// types, and keeps the spans.
package otlptest

import (
	"compress/gzip"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	common "go.opentelemetry.io/proto/otlp/common/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// Span is one span received, flattened.
type Span struct {
	TraceID, SpanID, ParentID string // hex
	Name                      string
	Kind                      string
	// Attrs are the span's attributes as text; Resource the resource's.
	Attrs, Resource map[string]string
	// Status is the status code ("STATUS_CODE_ERROR", ...) and its
	// message.
	Status, StatusMessage string
	// Events are the names and attributes of the span's events, as text.
	Events []string
}

// Receiver is an OTLP/HTTP receiver: an http.Handler of /v1/traces.
type Receiver struct {
	srv      *httptest.Server
	mu       sync.Mutex
	spans    []Span
	count    int
	requests int
	bad      []string
	// discard counts spans without keeping them.
	discard bool
}

// Start starts a receiver on a loopback port that keeps every span;
// Close stops it.
func Start() *Receiver {
	r := &Receiver{}
	r.srv = httptest.NewServer(r)
	return r
}

// New returns a receiver to serve with an http.Server of one's own; it
// decodes every request but only counts the spans.
func New() *Receiver { return &Receiver{discard: true} }

// ServeHTTP decodes one export request.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) { r.serve(w, req) }

// Count is how many spans were decoded.
func (r *Receiver) Count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.count
}

// URL is the receiver's base URL, for OTEL_EXPORTER_OTLP_ENDPOINT or
// serve --otlp-endpoint.
func (r *Receiver) URL() string { return r.srv.URL }

// Close stops the receiver.
func (r *Receiver) Close() { r.srv.Close() }

// Spans returns a copy of the spans received so far.
func (r *Receiver) Spans() []Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Span(nil), r.spans...)
}

// Requests is how many export requests were decoded.
func (r *Receiver) Requests() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests
}

// Bad lists the requests that were refused, and why.
func (r *Receiver) Bad() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.bad...)
}

func (r *Receiver) refuse(w http.ResponseWriter, code int, format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	r.mu.Lock()
	r.bad = append(r.bad, msg)
	r.mu.Unlock()
	http.Error(w, msg, code)
}

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost || req.URL.Path != "/v1/traces" {
		r.refuse(w, http.StatusNotFound, "%s %s: not the traces endpoint", req.Method, req.URL.Path)
		return
	}
	var body io.Reader = req.Body
	if req.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(req.Body)
		if err != nil {
			r.refuse(w, http.StatusBadRequest, "gzip: %v", err)
			return
		}
		body = zr
	}
	b, err := io.ReadAll(io.LimitReader(body, 64<<20))
	if err != nil {
		r.refuse(w, http.StatusBadRequest, "read: %v", err)
		return
	}
	var msg coltrace.ExportTraceServiceRequest
	ct := req.Header.Get("Content-Type")
	switch {
	case strings.HasPrefix(ct, "application/x-protobuf"):
		err = proto.Unmarshal(b, &msg)
	case strings.HasPrefix(ct, "application/json"):
		err = protojson.Unmarshal(b, &msg)
	default:
		r.refuse(w, http.StatusUnsupportedMediaType, "content type %q", ct)
		return
	}
	if err != nil {
		r.refuse(w, http.StatusBadRequest, "decode: %v", err)
		return
	}
	var got []Span
	for _, rs := range msg.GetResourceSpans() {
		res := attrs(rs.GetResource().GetAttributes())
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				sp := Span{
					TraceID: hex.EncodeToString(s.GetTraceId()), SpanID: hex.EncodeToString(s.GetSpanId()),
					ParentID: hex.EncodeToString(s.GetParentSpanId()), Name: s.GetName(), Kind: s.GetKind().String(),
					Attrs: attrs(s.GetAttributes()), Resource: res,
					Status: s.GetStatus().GetCode().String(), StatusMessage: s.GetStatus().GetMessage(),
				}
				for _, e := range s.GetEvents() {
					sp.Events = append(sp.Events, fmt.Sprintf("%s %v", e.GetName(), attrs(e.GetAttributes())))
				}
				got = append(got, sp)
			}
		}
	}
	r.mu.Lock()
	if !r.discard {
		r.spans = append(r.spans, got...)
	}
	r.count += len(got)
	r.requests++
	r.mu.Unlock()
	out, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

func attrs(kvs []*common.KeyValue) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		m[kv.GetKey()] = value(kv.GetValue())
	}
	return m
}

func value(v *common.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *common.AnyValue_StringValue:
		return x.StringValue
	case *common.AnyValue_IntValue:
		return fmt.Sprint(x.IntValue)
	case *common.AnyValue_BoolValue:
		return fmt.Sprint(x.BoolValue)
	case *common.AnyValue_DoubleValue:
		return fmt.Sprint(x.DoubleValue)
	case *common.AnyValue_ArrayValue:
		parts := make([]string, 0, len(x.ArrayValue.GetValues()))
		for _, e := range x.ArrayValue.GetValues() {
			parts = append(parts, value(e))
		}
		return "[" + strings.Join(parts, ",") + "]"
	case *common.AnyValue_BytesValue:
		return hex.EncodeToString(x.BytesValue)
	}
	return ""
}
