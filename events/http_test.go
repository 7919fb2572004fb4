package events_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/invictus-network/invictus/events"
)

func decodeOne(t *testing.T, r *http.Request) *events.Envelope {
	t.Helper()
	envs, err := events.DecodeHTTP(r)
	if err != nil {
		t.Fatal(err)
	}
	if len(envs) != 1 {
		t.Fatalf("%d envelopes; want 1", len(envs))
	}
	return envs[0]
}

func TestHTTPBinaryRoundTripEveryType(t *testing.T) {
	t.Parallel()
	for _, typ := range events.Types() {
		t.Run(typ, func(t *testing.T) {
			t.Parallel()
			e := sampleEvent(t, typ, events.WithCorrelationID("cmd-42"), events.WithTraceState(traceStateNeedingEncoding), events.WithTraceParent(testTraceParent))
			req := httptest.NewRequest(http.MethodPost, "/events", nil)
			if err := events.WriteHTTPRequest(context.Background(), req, e); err != nil {
				t.Fatal(err)
			}
			if got := req.Header.Get("Ce-Tracestate"); got != "vendor=cmd%2042%20%22r%22%20100%25" {
				t.Errorf("Ce-Tracestate = %q; not percent-encoded", got)
			}
			if got := req.Header.Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type = %q", got)
			}
			checkRoundTrip(t, e, decodeOne(t, req))
		})
	}
}

func TestWriteHTTPRequestIsReadBySDK(t *testing.T) {
	t.Parallel()
	e := sampleEvent(t, events.TypeReferralDeclined, events.WithTraceParent(testTraceParent))
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, "http://127.0.0.1/hook", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Ce-Id", "stale") // replaced, not added to
	if err := events.WriteHTTPRequest(context.Background(), req, e); err != nil {
		t.Fatal(err)
	}
	if req.ContentLength != int64(len(e.Data())) || req.GetBody == nil {
		t.Errorf("ContentLength %d, GetBody set %v", req.ContentLength, req.GetBody != nil)
	}
	got, err := cehttp.NewEventFromHTTPRequest(req)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID() != e.ID() || got.Type() != e.Type() || got.Source() != e.Source() || got.Subject() != e.Subject() ||
		!got.Time().Equal(e.Time()) || got.DataSchema() != e.DataSchema() || string(got.Data()) != string(e.Data()) ||
		got.Extensions()[events.ExtTraceParent] != testTraceParent {
		t.Errorf("sdk-go read\n%v\nwant\n%v", got, e)
	}
}

func TestDecodeHTTPFromSDKWriters(t *testing.T) {
	t.Parallel()
	e := sampleEvent(t, events.TypeReferralRequested, events.WithCorrelationID("0195f0c3-4444-7abc-8def-0123456789ab"))
	for _, mode := range []struct {
		name string
		ctx  context.Context
		ct   string
	}{
		{"binary", binding.WithForceBinary(context.Background()), "application/json"},
		{"structured", binding.WithForceStructured(context.Background()), event.ApplicationCloudEventsJSON},
	} {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			req := httptest.NewRequest(http.MethodPost, "/events", nil)
			ev := e.Clone()
			if err := cehttp.WriteRequest(mode.ctx, (*binding.EventMessage)(&ev), req); err != nil {
				t.Fatal(err)
			}
			if got := req.Header.Get("Content-Type"); got != mode.ct {
				t.Fatalf("sdk-go wrote Content-Type %q; want %q", got, mode.ct)
			}
			checkRoundTrip(t, e, decodeOne(t, req))
		})
	}
}

func batchRequest(t *testing.T, evs ...event.Event) *http.Request {
	t.Helper()
	// What sdk-go's NewHTTPRequestFromEvents sends, after its validation.
	b, err := json.Marshal(evs)
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, "/events", bytes.NewReader(b))
	req.Header.Set("Content-Type", event.ApplicationCloudEventsBatchJSON)
	return req
}

func TestDecodeHTTPBatch(t *testing.T) {
	t.Parallel()
	types := []string{events.TypeReferralAccepted, events.TypeReferralRequested, events.TypeDirectoryCapacityUpdated}
	var evs []event.Event
	for _, typ := range types {
		evs = append(evs, sampleEvent(t, typ))
	}
	envs, err := events.DecodeHTTP(batchRequest(t, evs...))
	if err != nil {
		t.Fatal(err)
	}
	if len(envs) != len(evs) {
		t.Fatalf("%d envelopes; want %d", len(envs), len(evs))
	}
	for i, env := range envs {
		checkRoundTrip(t, evs[i], env)
	}

	envs, err = events.DecodeHTTP(batchRequest(t))
	if err != nil || len(envs) != 0 {
		t.Errorf("empty batch: %d envelopes, %v", len(envs), err)
	}
}

func TestDecodeHTTPBatchErrors(t *testing.T) {
	t.Parallel()
	good := sampleEvent(t, events.TypeReferralAccepted)
	unknown := good.Clone()
	unknown.SetType("invictus.referral.nope.v1")
	extra := good.Clone()
	extra.DataEncoded = []byte(`{"placement":"p1","x":1}`)
	_, err := events.DecodeHTTP(batchRequest(t, good, unknown, extra))
	ve := wantProblem(t, err, events.ErrUnknownType, "/1/type", "/2/data/x")
	for _, p := range ve.Problems {
		if strings.HasPrefix(p.Pointer, "/0") {
			t.Errorf("a problem for the valid event: %+v", p)
		}
	}

	many := make([]event.Event, events.MaxBatchEvents+1)
	for i := range many {
		many[i] = good
	}
	_, err = events.DecodeHTTP(batchRequest(t, many...))
	wantProblem(t, err, events.ErrTooLarge, "")

	for _, body := range []string{`{"specversion":"1.0"}`, `[1]`} {
		req := httptest.NewRequest(http.MethodPost, "/events", strings.NewReader(body))
		req.Header.Set("Content-Type", event.ApplicationCloudEventsBatchJSON)
		_, err = events.DecodeHTTP(req)
		wantProblem(t, err, events.ErrInvalid)
	}
	req := httptest.NewRequest(http.MethodPost, "/events", strings.NewReader(`[{"id":`))
	req.Header.Set("Content-Type", event.ApplicationCloudEventsBatchJSON)
	_, err = events.DecodeHTTP(req)
	wantProblem(t, err, events.ErrMalformedJSON, "")
}

func TestDecodeHTTPTooLarge(t *testing.T) {
	t.Parallel()
	e := sampleEvent(t, events.TypeReferralAccepted)
	big := bytes.Repeat([]byte("x"), events.MaxMessageSize+1)
	// Known length: refused without reading.
	req := httptest.NewRequest(http.MethodPost, "/events", bytes.NewReader(big))
	if err := events.WriteHTTPRequest(context.Background(), req, e); err != nil {
		t.Fatal(err)
	}
	req.Body, req.ContentLength = io.NopCloser(bytes.NewReader(big)), int64(len(big))
	_, err := events.DecodeHTTP(req)
	wantProblem(t, err, events.ErrTooLarge, "")
	// Unknown length (chunked): read up to the limit only.
	r := &countingReader{r: io.MultiReader(bytes.NewReader(big), bytes.NewReader(big))}
	req.Body, req.ContentLength = io.NopCloser(r), -1
	_, err = events.DecodeHTTP(req)
	wantProblem(t, err, events.ErrTooLarge, "")
	if r.n > events.MaxMessageSize+1+32*1024 {
		t.Errorf("read %d bytes of an oversized body", r.n)
	}
	// Structured mode has the same limit.
	req = httptest.NewRequest(http.MethodPost, "/events", io.MultiReader(bytes.NewReader(big)))
	req.Header.Set("Content-Type", event.ApplicationCloudEventsJSON)
	_, err = events.DecodeHTTP(req)
	wantProblem(t, err, events.ErrTooLarge, "")
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func TestDecodeHTTPErrors(t *testing.T) {
	t.Parallel()
	e := sampleEvent(t, events.TypeReferralAccepted)
	newReq := func() *http.Request {
		req := httptest.NewRequest(http.MethodPost, "/events", nil)
		if err := events.WriteHTTPRequest(context.Background(), req, e); err != nil {
			t.Fatal(err)
		}
		return req
	}
	req := newReq()
	req.Header.Del("Ce-Specversion")
	_, err := events.DecodeHTTP(req)
	wantProblem(t, err, events.ErrMissingAttribute, "/specversion")

	req = newReq()
	req.Header.Set("Content-Type", "text/xml")
	_, err = events.DecodeHTTP(req)
	wantProblem(t, err, events.ErrContentType, "/datacontenttype")

	req = newReq()
	req.Header.Add("Content-Type", "application/json")
	_, err = events.DecodeHTTP(req)
	wantProblem(t, err, events.ErrInvalid, "/datacontenttype")

	req = newReq()
	req.Header["ce-id"] = []string{"second"} // a second, non-canonical spelling
	_, err = events.DecodeHTTP(req)
	wantProblem(t, err, events.ErrInvalid, "/id")

	req = newReq()
	req.Header.Set("Content-Type", "application/cloudevents+protobuf")
	_, err = events.DecodeHTTP(req)
	wantProblem(t, err, events.ErrContentType, "/datacontenttype")

	req = httptest.NewRequest(http.MethodPost, "/events", strings.NewReader(`{"specversion":"1.0",`))
	req.Header.Set("Content-Type", event.ApplicationCloudEventsJSON)
	_, err = events.DecodeHTTP(req)
	wantProblem(t, err, events.ErrMalformedJSON, "")

	req = newReq()
	req.Body, req.ContentLength = io.NopCloser(&failingReader{}), -1
	_, err = events.DecodeHTTP(req)
	if err == nil || !strings.Contains(err.Error(), "read request body") {
		t.Errorf("error %v; want a read error", err)
	}
}

type failingReader struct{}

func (*failingReader) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }
