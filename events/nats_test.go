package events_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/cloudevents/sdk-go/v2/binding/format"
	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/invictus-network/invictus/events"
)

// checkRoundTrip fails unless env holds e's attributes and the sample
// payload of e's type.
func checkRoundTrip(t *testing.T, e event.Event, env *events.Envelope) {
	t.Helper()
	got := env.Event
	for _, c := range []struct{ name, got, want string }{
		{"specversion", got.SpecVersion(), e.SpecVersion()},
		{"id", got.ID(), e.ID()},
		{"source", got.Source(), e.Source()},
		{"type", got.Type(), e.Type()},
		{"subject", got.Subject(), e.Subject()},
		{"dataschema", got.DataSchema(), e.DataSchema()},
		{"datacontenttype", got.DataContentType(), e.DataContentType()},
		{"data", string(got.Data()), string(e.Data())},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q; want %q", c.name, c.got, c.want)
		}
	}
	if !got.Time().Equal(e.Time()) {
		t.Errorf("time = %v; want %v", got.Time(), e.Time())
	}
	if !reflect.DeepEqual(got.Extensions(), e.Extensions()) {
		t.Errorf("extensions = %v; want %v", got.Extensions(), e.Extensions())
	}
	want := events.SamplePayload(e.Type())
	if !reflect.DeepEqual(env.Payload, want) {
		t.Errorf("payload = %s; want %s", payloadJSON(t, env.Payload), payloadJSON(t, want))
	}
}

// traceStateNeedingEncoding is a trace state that needs every kind of
// percent-encoding an accepted attribute can need: space, double quote
// and percent. (Non-ASCII characters fit no attribute of the contract:
// see TestDecodeHeaderValueEncodings.)
const traceStateNeedingEncoding = `vendor=cmd 42 "r" 100%`

func TestRoundTripBinaryEveryType(t *testing.T) {
	t.Parallel()
	types := events.Types()
	if len(types) != 21 {
		t.Fatalf("%d types in the catalogue; want 21", len(types))
	}
	for _, typ := range types {
		t.Run(typ, func(t *testing.T) {
			t.Parallel()
			e := sampleEvent(t, typ, events.WithCorrelationID("cmd-42"), events.WithTraceState(traceStateNeedingEncoding), events.WithTraceParent(testTraceParent))
			m, err := events.ToNATS(testSubjectNATS, e)
			if err != nil {
				t.Fatal(err)
			}
			if m.Subject != testSubjectNATS {
				t.Errorf("subject %q; want %q", m.Subject, testSubjectNATS)
			}
			if got, want := m.Header["ce-tracestate"], []string{"vendor=cmd%2042%20%22r%22%20100%25"}; !reflect.DeepEqual(got, want) {
				t.Errorf("ce-tracestate = %q; want %q", got, want)
			}
			env, err := events.Decode(m)
			if err != nil {
				t.Fatal(err)
			}
			checkRoundTrip(t, e, env)
			if got, _ := env.Event.Extensions()[events.ExtTraceState].(string); got != traceStateNeedingEncoding {
				t.Errorf("tracestate = %q; want %q", got, traceStateNeedingEncoding)
			}
		})
	}
}

func TestRoundTripStructuredEveryType(t *testing.T) {
	t.Parallel()
	for _, typ := range events.Types() {
		t.Run(typ, func(t *testing.T) {
			t.Parallel()
			e := sampleEvent(t, typ, events.WithCorrelationID("cmd-42"), events.WithTraceState(traceStateNeedingEncoding), events.WithTraceParent(testTraceParent))
			m := structuredMessage(t, e)
			env, err := events.Decode(m)
			if err != nil {
				t.Fatal(err)
			}
			checkRoundTrip(t, e, env)

			// The same through sdk-go's structured format, with a charset.
			b, err := format.JSON.Marshal(&e)
			if err != nil {
				t.Fatal(err)
			}
			m = events.Message{Header: map[string][]string{"content-type": {"application/cloudevents+json; charset=UTF-8"}}, Data: b}
			if env, err = events.Decode(m); err != nil {
				t.Fatal(err)
			}
			checkRoundTrip(t, e, env)
		})
	}
}

func TestToNATSHeaders(t *testing.T) {
	t.Parallel()
	e := sampleEvent(t, events.TypeReferralAccepted, events.WithCorrelationID("0195f0c3-2222-7abc-8def-0123456789ab"), events.WithTraceParent(testTraceParent))
	m, err := events.ToNATS("in.pt.apav", e)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"ce-specversion":     {"1.0"},
		"ce-id":              {testID},
		"ce-source":          {"/orgs/pt.apav"},
		"ce-type":            {events.TypeReferralAccepted},
		"ce-subject":         {events.SampleReferralID},
		"ce-time":            {"2025-03-10T09:31:05.123Z"},
		"ce-dataschema":      {"urn:invictus:schema:referral.accepted.v1"},
		"ce-datacontenttype": {"application/json"},
		"Content-Type":       {"application/json"},
		"ce-correlationid":   {"0195f0c3-2222-7abc-8def-0123456789ab"},
		"ce-traceparent":     {testTraceParent},
	}
	if !reflect.DeepEqual(m.Header, want) {
		t.Errorf("headers\n got %v\nwant %v", m.Header, want)
	}
	if got := string(m.Data); got != `{"placement":"p1"}` {
		t.Errorf("data %s", got)
	}
}

func TestToNATSRejects(t *testing.T) {
	t.Parallel()
	e := sampleEvent(t, events.TypeReferralAccepted)
	for _, subject := range []string{"", "in.pt.*", "in.>", "in..apav", "in.pt apav", "in.pt.apav.", "in.pt.\x01"} {
		if _, err := events.ToNATS(subject, e); err == nil {
			t.Errorf("ToNATS(%q) accepted the subject", subject)
		}
	}
	if _, err := events.ToNATS("in.pt.apav", event.Event{}); err == nil {
		t.Error("ToNATS accepted an event without context")
	}
	big := e.Clone()
	big.DataEncoded = []byte(`{"placement":"` + strings.Repeat("x", events.MaxMessageSize) + `"}`)
	_, err := events.ToNATS("in.pt.apav", big)
	wantProblem(t, err, events.ErrTooLarge, "")
}

func TestDecodeHeaderNamesCaseInsensitive(t *testing.T) {
	t.Parallel()
	e := sampleEvent(t, events.TypeReferralDeclined, events.WithTraceParent(testTraceParent))
	m, err := events.ToNATS(testSubjectNATS, e)
	if err != nil {
		t.Fatal(err)
	}
	h := map[string][]string{}
	for k, v := range m.Header {
		switch k {
		case "ce-id":
			k = "CE-ID"
		case "ce-type":
			k = "Ce-Type"
		case "ce-specversion":
			k = "CE-SpecVersion"
		case "ce-traceparent":
			k = "Ce-TraceParent"
		case "Content-Type":
			k = "content-type"
		default:
			k = strings.ToUpper(k)
		}
		h[k] = v
	}
	m.Header = h
	env, err := events.Decode(m)
	if err != nil {
		t.Fatal(err)
	}
	checkRoundTrip(t, e, env)
}

func TestDecodeHeaderValueEncodings(t *testing.T) {
	t.Parallel()
	base := sampleMessage(t, events.TypeReferralAccepted)
	tests := []struct {
		name, header, want string
	}{
		{"binding spec example", "Euro%20%E2%82%AC%20%F0%9F%98%80", "Euro € 😀"},
		{"lower-case hex", "Euro%20%e2%82%ac", "Euro €"},
		{"unnecessary encoding", "%41%42c", "ABc"},
		{"quoted string", `"cmd 42 \"x\""`, `cmd 42 "x"`},
		{"quoted then percent-decoded", `"a%20b"`, "a b"},
		{"raw UTF-8 from a lenient sender", "Euro€", "Euro€"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env, err := events.Decode(withHeader(base, "ce-correlationid", tt.header))
			if !events.IsEventID(tt.want) {
				// Decoded as the binding says, then refused: an id is
				// ASCII without spaces or quotes, and never rewritten.
				ve := wantProblem(t, err, events.ErrInvalid, "/correlationid")
				if !strings.Contains(ve.Problems[0].Message, fmt.Sprintf("%q", tt.want)) {
					t.Errorf("problem %q does not name the decoded value %q", ve.Problems[0].Message, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := env.Event.Extensions()[events.ExtCorrelationID]; got != tt.want {
				t.Errorf("correlationid = %q; want %q", got, tt.want)
			}
		})
	}

	bad := []struct {
		name, header string
		class        error
	}{
		{"overlong encoding of space", "a%C0%A0b", events.ErrInvalidUTF8},
		{"encoded invalid byte", "a%FFb", events.ErrInvalidUTF8},
		{"raw invalid byte", "a\xffb", events.ErrInvalidUTF8},
		{"truncated escape", "ab%4", events.ErrInvalid},
		{"not hex", "a%G0", events.ErrInvalid},
		{"unterminated quote", `"abc`, events.ErrInvalid},
		{"data after quote", `"abc"d`, events.ErrInvalid},
		{"encoded control character", "a%0Ab", events.ErrInvalid},
		{"encoded surrounding space", "%20ab", events.ErrInvalid},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := events.Decode(withHeader(base, "ce-correlationid", tt.header))
			wantProblem(t, err, tt.class, "/correlationid")
		})
	}
}

func TestDecodeContentTypeHeaders(t *testing.T) {
	t.Parallel()
	base := sampleMessage(t, events.TypeReferralAccepted)
	// Content-Type alone carries datacontenttype (as with sdk-go's NATS
	// JetStream binding reading other senders).
	if _, err := events.Decode(withHeader(base, "ce-datacontenttype", "")); err != nil {
		t.Errorf("Content-Type alone: %v", err)
	}
	// ce-datacontenttype alone (as the binding 1.0.3 example sends it).
	if _, err := events.Decode(withHeader(base, "Content-Type", "")); err != nil {
		t.Errorf("ce-datacontenttype alone: %v", err)
	}
	// Both, equal as media types.
	m := withHeader(base, "Content-Type", "Application/JSON; charset=UTF-8")
	m = withHeader(m, "ce-datacontenttype", "application/json;%20charset=utf-8")
	if _, err := events.Decode(m); err != nil {
		t.Errorf("equivalent media types: %v", err)
	}
	// Both, different.
	_, err := events.Decode(withHeader(base, "Content-Type", "text/plain"))
	wantProblem(t, err, events.ErrContentType, "/datacontenttype")
	// Neither.
	_, err = events.Decode(withHeader(withHeader(base, "Content-Type", ""), "ce-datacontenttype", ""))
	wantProblem(t, err, events.ErrMissingAttribute, "/datacontenttype")
	// Structured mode in another format, or batch over NATS.
	for _, ct := range []string{"application/cloudevents+xml", "application/cloudevents-batch+json", "application/cloudevents+json; charset=latin1"} {
		_, err = events.Decode(withHeader(base, "Content-Type", ct))
		wantProblem(t, err, events.ErrContentType, "/datacontenttype")
	}
}

func TestDecodeDuplicateHeaders(t *testing.T) {
	t.Parallel()
	base := sampleMessage(t, events.TypeReferralAccepted)
	m := withHeader(base, "ce-id", testID)
	m.Header["CE-ID"] = []string{"other-id"}
	_, err := events.Decode(m)
	wantProblem(t, err, events.ErrInvalid, "/id")

	m = withHeader(base, "ce-subject", "")
	m.Header["ce-subject"] = []string{events.SampleReferralID, events.SampleReferralID}
	_, err = events.Decode(m)
	ve := wantProblem(t, err, events.ErrInvalid, "/subject")
	if ve.Problems[0].Code != events.CodeDuplicate {
		t.Errorf("code %q; want %q", ve.Problems[0].Code, events.CodeDuplicate)
	}
}

func TestDecodeIgnoresOtherHeaders(t *testing.T) {
	t.Parallel()
	m := sampleMessage(t, events.TypeReferralAccepted)
	m.Header["Nats-Msg-Id"] = []string{testID}
	m.Header["Nats-Expected-Last-Subject-Sequence"] = []string{"41"}
	if _, err := events.Decode(m); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkNewToNATS(b *testing.B) {
	p := events.SamplePayload(events.TypeReferralRequested)
	for b.Loop() {
		e, err := events.New(events.SourceOf("pt.apav"), refID, p)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := events.ToNATS(testSubjectNATS, e); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkToNATS(b *testing.B) {
	e := sampleEvent(b, events.TypeReferralOffered)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := events.ToNATS(testSubjectNATS, e); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	e := sampleEvent(b, events.TypeReferralRequested)
	binary, err := events.ToNATS(testSubjectNATS, e)
	if err != nil {
		b.Fatal(err)
	}
	for _, bm := range []struct {
		name string
		m    events.Message
	}{{"binary", binary}, {"structured", structuredMessage(b, e)}} {
		b.Run(bm.name, func(b *testing.B) {
			b.SetBytes(int64(len(bm.m.Data)))
			for b.Loop() {
				if _, err := events.Decode(bm.m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
