package events_test

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/invictus-network/invictus/events"
)

// requestedData returns the JSON of the sample referral.requested payload
// with change applied to its decoded form.
func requestedData(t *testing.T, change func(map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(payloadJSON(t, events.SamplePayload(events.TypeReferralRequested))), &m); err != nil {
		t.Fatal(err)
	}
	change(m)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeErrorClasses(t *testing.T) {
	t.Parallel()
	requested := sampleMessage(t, events.TypeReferralRequested)
	accepted := sampleMessage(t, events.TypeReferralAccepted)
	withData := func(m events.Message, data string) events.Message {
		m.Data = []byte(data)
		return m
	}
	withoutHeader := func(m events.Message, name string) events.Message { return withHeader(m, name, "") }

	tests := []struct {
		name     string
		msg      events.Message
		class    error
		code     string
		pointers []string
	}{
		// Too large: checked before parsing, so even garbage says so.
		{"oversized data", withData(accepted, strings.Repeat("\xff", events.MaxMessageSize+1)), events.ErrTooLarge, events.CodeTooLarge, []string{""}},
		{"oversized headers count", withHeader(withData(accepted, strings.Repeat(" ", events.MaxMessageSize-100)), "ce-traceparent", strings.Repeat("x", 200)), events.ErrTooLarge, events.CodeTooLarge, []string{""}},

		{"unknown type", withHeader(accepted, "ce-type", "invictus.referral.teleported.v1"), events.ErrUnknownType, events.CodeUnknownType, []string{"/type"}},
		{"unknown major version", withHeader(accepted, "ce-type", "invictus.referral.accepted.v9"), events.ErrUnknownType, events.CodeUnknownType, []string{"/type"}},

		{"missing specversion", withoutHeader(accepted, "ce-specversion"), events.ErrMissingAttribute, events.CodeMissingAttribute, []string{"/specversion"}},
		{"missing id", withoutHeader(accepted, "ce-id"), events.ErrMissingAttribute, events.CodeMissingAttribute, []string{"/id"}},
		{"missing source", withoutHeader(accepted, "ce-source"), events.ErrMissingAttribute, events.CodeMissingAttribute, []string{"/source"}},
		{"missing type", withoutHeader(accepted, "ce-type"), events.ErrMissingAttribute, events.CodeMissingAttribute, []string{"/type"}},
		{"missing subject", withoutHeader(accepted, "ce-subject"), events.ErrMissingAttribute, events.CodeMissingAttribute, []string{"/subject"}},
		{"missing time", withoutHeader(accepted, "ce-time"), events.ErrMissingAttribute, events.CodeMissingAttribute, []string{"/time"}},
		{"missing dataschema", withoutHeader(accepted, "ce-dataschema"), events.ErrMissingAttribute, events.CodeMissingAttribute, []string{"/dataschema"}},
		{"empty id", withHeader(accepted, "ce-id", `""`), events.ErrMissingAttribute, events.CodeMissingAttribute, []string{"/id"}},
		{"missing data", withData(accepted, ""), events.ErrMissingAttribute, events.CodeMissingAttribute, []string{"/data"}},
		{"every missing attribute listed", events.Message{Data: []byte(`{"placement":"p1"}`)}, events.ErrMissingAttribute, events.CodeMissingAttribute,
			[]string{"/specversion", "/id", "/source", "/type", "/time", "/dataschema", "/datacontenttype"}},

		{"wrong datacontenttype", withHeader(withoutHeader(accepted, "Content-Type"), "ce-datacontenttype", "text/plain"), events.ErrContentType, events.CodeContentType, []string{"/datacontenttype"}},
		{"wrong charset", withHeader(withoutHeader(accepted, "Content-Type"), "ce-datacontenttype", "application/json;charset=latin1"), events.ErrContentType, events.CodeContentType, []string{"/datacontenttype"}},
		{"not a media type", withHeader(withoutHeader(accepted, "ce-datacontenttype"), "Content-Type", "json"), events.ErrContentType, events.CodeContentType, []string{"/datacontenttype"}},

		{"invalid UTF-8 in data", withData(accepted, "{\"placement\":\"p\xff1\"}"), events.ErrInvalidUTF8, events.CodeInvalidUTF8, []string{"/data"}},
		{"invalid UTF-8 in a header", withHeader(accepted, "ce-subject", "\xfe"+events.SampleReferralID[1:]), events.ErrInvalidUTF8, events.CodeInvalidUTF8, []string{"/subject"}},

		{"unknown payload field", withData(accepted, `{"placement":"p1","victim_name":"x"}`), events.ErrUnknownField, events.CodeUnknownField, []string{"/data/victim_name"}},
		{"field matched by case only", withData(accepted, `{"Placement":"p1"}`), events.ErrUnknownField, events.CodeUnknownField, []string{"/data/Placement"}},
		{"every unknown field listed", withData(requested, string(requestedData(t, func(m map[string]any) {
			m["name"] = "x"
			m["location"].(map[string]any)["street"] = "x"
			m["consent"].(map[string]any)["signature"] = map[string]any{"png": []any{1, 2}}
		}))), events.ErrUnknownField, events.CodeUnknownField, []string{"/data/name", "/data/location/street", "/data/consent/signature"}},

		{"malformed JSON", withData(accepted, `{"placement": "p1",`), events.ErrMalformedJSON, events.CodeMalformedJSON, []string{"/data"}},
		{"data after the value", withData(accepted, `{"placement":"p1"} x`), events.ErrMalformedJSON, events.CodeMalformedJSON, []string{"/data"}},
		{"second value", withData(accepted, `{"placement":"p1"}{}`), events.ErrMalformedJSON, events.CodeMalformedJSON, []string{"/data"}},
		{"whitespace only", withData(accepted, "  "), events.ErrMalformedJSON, events.CodeMalformedJSON, []string{"/data"}},

		{"every validation failure listed", withData(requested, string(requestedData(t, func(m map[string]any) {
			m["needs"] = []any{"support.emotional", "bogus"}
			m["urgency"] = "whenever"
			m["consent"].(map[string]any)["referral"] = false
			m["location"].(map[string]any)["lat"] = 98.7
		}))), events.ErrInvalid, "", []string{"/data/needs/1", "/data/urgency", "/data/consent/referral", "/data/location/lat"}},
		{"wrong JSON types", withData(requested, string(requestedData(t, func(m map[string]any) {
			m["needs"] = "support.emotional"
			m["interpreter_ok"] = "yes"
			m["response_hours"] = 1.5
			m["consent"].(map[string]any)["given_at"] = "yesterday"
		}))), events.ErrInvalid, events.CodeFormat, []string{"/data/needs", "/data/interpreter_ok", "/data/response_hours", "/data/consent/given_at"}},
		{"null for a string", withData(accepted, `{"placement":null}`), events.ErrInvalid, events.CodeFormat, []string{"/data/placement"}},
		{"data not an object", withData(accepted, `["p1"]`), events.ErrInvalid, events.CodeFormat, []string{"/data"}},
		{"repeated member", withData(accepted, `{"placement":"p1","placement":"p2"}`), events.ErrInvalid, events.CodeDuplicate, []string{"/data/placement"}},
		{"integer out of range", withData(requested, string(requestedData(t, func(m map[string]any) {
			m["response_hours"] = json.Number("99999999999999999999")
		}))), events.ErrInvalid, events.CodeOutOfRange, []string{"/data/response_hours"}},

		{"specversion 0.3", withHeader(accepted, "ce-specversion", "0.3"), events.ErrInvalid, events.CodeInvalidAttribute, []string{"/specversion"}},
		{"source not an organisation", withHeader(accepted, "ce-source", "/people/someone"), events.ErrInvalid, events.CodeInvalidAttribute, []string{"/source"}},
		{"source with a bad organisation id", withHeader(accepted, "ce-source", "/orgs/zz.apav"), events.ErrInvalid, events.CodeInvalidAttribute, []string{"/source"}},
		{"dataschema of another type", withHeader(accepted, "ce-dataschema", "urn:invictus:schema:referral.declined.v1"), events.ErrInvalid, events.CodeInvalidAttribute, []string{"/dataschema"}},
		{"subject not a referral id", withHeader(accepted, "ce-subject", "pt.apav"), events.ErrInvalid, events.CodeInvalidAttribute, []string{"/subject"}},
		{"upper-case referral id", withHeader(accepted, "ce-subject", strings.ToUpper(events.SampleReferralID)), events.ErrInvalid, events.CodeInvalidAttribute, []string{"/subject"}},
		{"time not RFC 3339", withHeader(accepted, "ce-time", "10/03/2025"), events.ErrInvalid, events.CodeInvalidAttribute, []string{"/time"}},
		{"time with a one-digit hour", withHeader(accepted, "ce-time", "2025-03-10T9:31:05Z"), events.ErrInvalid, events.CodeInvalidAttribute, []string{"/time"}},
		{"time with a 24-hour offset", withHeader(accepted, "ce-time", "2025-03-10T09:31:05+24:00"), events.ErrInvalid, events.CodeInvalidAttribute, []string{"/time"}},
		{"payload time not strict RFC 3339", withData(requested, string(requestedData(t, func(m map[string]any) {
			m["consent"].(map[string]any)["given_at"] = "2025-03-10T9:20:00,5Z"
		}))), events.ErrInvalid, events.CodeFormat, []string{"/data/consent/given_at"}},
		{"bad traceparent", withHeader(accepted, "ce-traceparent", "00-00000000000000000000000000000000-00f067aa0ba902b7-01"), events.ErrInvalid, events.CodeInvalidAttribute, []string{"/traceparent"}},
		{"bad extension name", withHeader(accepted, "ce-trace_id", "x"), events.ErrInvalid, events.CodeInvalidAttribute, []string{"/trace_id"}},
		{"id too long", withHeader(accepted, "ce-id", strings.Repeat("a", 600)), events.ErrInvalid, events.CodeTooLong, []string{"/id"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env, err := events.Decode(tt.msg)
			if env != nil {
				t.Error("Decode returned an envelope with an error")
			}
			ve := wantProblem(t, err, tt.class, tt.pointers...)
			if tt.code != "" && !slices.ContainsFunc(ve.Problems, func(p events.Problem) bool { return p.Code == tt.code }) {
				t.Errorf("no problem with code %q in %v", tt.code, err)
			}
			for _, p := range ve.Problems {
				if p.Code == "" || p.Message == "" {
					t.Errorf("problem without code or message: %+v", p)
				}
			}
		})
	}
}

func TestDecodeMalformedJSONOffset(t *testing.T) {
	t.Parallel()
	m := sampleMessage(t, events.TypeReferralAccepted)
	m.Data = []byte(`{"placement": "p1" "x"}`)
	_, err := events.Decode(m)
	ve := wantProblem(t, err, events.ErrMalformedJSON, "/data")
	if msg := ve.Problems[0].Message; !strings.Contains(msg, "offset 19") {
		t.Errorf("message %q does not give the offset 19", msg)
	}
	m.Data = []byte(`{"placement":"p1"} trailing`)
	_, err = events.Decode(m)
	ve = wantProblem(t, err, events.ErrMalformedJSON, "/data")
	if msg := ve.Problems[0].Message; !strings.Contains(msg, "offset 19") {
		t.Errorf("message %q does not give the offset 19", msg)
	}
	m.Data = []byte("{\"placement\":\"p1\xc0\"}")
	_, err = events.Decode(m)
	ve = wantProblem(t, err, events.ErrInvalidUTF8, "/data")
	if msg := ve.Problems[0].Message; !strings.Contains(msg, "offset 16") {
		t.Errorf("message %q does not give the offset 16", msg)
	}
}

func TestDecodeStructuredErrors(t *testing.T) {
	t.Parallel()
	e := sampleEvent(t, events.TypeReferralAccepted)
	good := structuredMessage(t, e)
	var members map[string]json.RawMessage
	if err := json.Unmarshal(good.Data, &members); err != nil {
		t.Fatal(err)
	}
	with := func(change func(map[string]json.RawMessage)) events.Message {
		c := make(map[string]json.RawMessage, len(members))
		for k, v := range members {
			c[k] = v
		}
		change(c)
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		m := good
		m.Data = b
		return m
	}
	raw := func(s string) events.Message { m := good; m.Data = []byte(s); return m }
	tests := []struct {
		name    string
		msg     events.Message
		class   error
		pointer string
	}{
		{"not UTF-8", raw("{\"id\":\"\xff\"}"), events.ErrInvalidUTF8, ""},
		{"malformed", raw(`{"id":`), events.ErrMalformedJSON, ""},
		{"trailing data", raw(string(good.Data) + "{}"), events.ErrMalformedJSON, ""},
		{"not an object", raw(`[1]`), events.ErrInvalid, ""},
		{"missing id", with(func(m map[string]json.RawMessage) { delete(m, "id") }), events.ErrMissingAttribute, "/id"},
		{"null id is absent", with(func(m map[string]json.RawMessage) { m["id"] = json.RawMessage("null") }), events.ErrMissingAttribute, "/id"},
		{"id not a string", with(func(m map[string]json.RawMessage) { m["id"] = json.RawMessage("42") }), events.ErrInvalid, "/id"},
		{"unknown type", with(func(m map[string]json.RawMessage) { m["type"] = json.RawMessage(`"com.example.x"`) }), events.ErrUnknownType, "/type"},
		{"missing data", with(func(m map[string]json.RawMessage) { delete(m, "data") }), events.ErrMissingAttribute, "/data"},
		{"unknown payload field", with(func(m map[string]json.RawMessage) { m["data"] = json.RawMessage(`{"placement":"p1","x":1}`) }), events.ErrUnknownField, "/data/x"},
		{"upper-case attribute", with(func(m map[string]json.RawMessage) { m["Subject"] = json.RawMessage(`"x"`) }), events.ErrInvalid, "/Subject"},
		{"object extension", with(func(m map[string]json.RawMessage) { m["extra"] = json.RawMessage(`{}`) }), events.ErrInvalid, "/extra"},
		{"both data and data_base64", with(func(m map[string]json.RawMessage) { m["data_base64"] = json.RawMessage(`"e30="`) }), events.ErrInvalid, "/data_base64"},
		{"bad base64", with(func(m map[string]json.RawMessage) { delete(m, "data"); m["data_base64"] = json.RawMessage(`"*"`) }), events.ErrInvalid, "/data_base64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := events.Decode(tt.msg)
			wantProblem(t, err, tt.class, tt.pointer)
		})
	}
	// Repeated members are caught although encoding/json would keep the last.
	m := raw(strings.Replace(string(good.Data), `"id":`, `"id":"first","id":`, 1))
	_, err := events.Decode(m)
	wantProblem(t, err, events.ErrInvalid, "/id")

	// data_base64 alone is accepted.
	m = with(func(m map[string]json.RawMessage) {
		delete(m, "data")
		m["data_base64"] = json.RawMessage(`"eyJwbGFjZW1lbnQiOiJwMSJ9"`)
	})
	env, err := events.Decode(m)
	if err != nil {
		t.Fatal(err)
	}
	if got := env.Payload.(*events.Accepted).Placement; got != "p1" {
		t.Errorf("placement %q", got)
	}
}

func TestDecodeListsProblemsOfEveryClass(t *testing.T) {
	t.Parallel()
	m := withHeader(sampleMessage(t, events.TypeReferralAccepted), "ce-id", "")
	m.Data = []byte(`{"placement":"P 1","extra":true}`)
	_, err := events.Decode(m)
	ve := wantProblem(t, err, events.ErrMissingAttribute, "/id", "/data/extra", "/data/placement")
	if !errors.Is(err, events.ErrMissingAttribute) || errors.Is(err, events.ErrUnknownField) {
		t.Errorf("errors.Is matches other classes than %v", ve.Class)
	}
}

func TestDecodeCommandRejectedSubjectOptional(t *testing.T) {
	t.Parallel()
	m := withHeader(sampleMessage(t, events.TypeCommandRejected), "ce-subject", "")
	if _, err := events.Decode(m); err != nil {
		t.Errorf("command.rejected without subject: %v", err)
	}
	m = withHeader(m, "ce-subject", "pt.apav.gav-lisboa")
	if _, err := events.Decode(m); err != nil {
		t.Errorf("command.rejected about a service: %v", err)
	}
	// Directory events name the organisation or service.
	m = withHeader(sampleMessage(t, events.TypeDirectoryCapacityUpdated), "ce-subject", events.SampleReferralID)
	_, err := events.Decode(m)
	wantProblem(t, err, events.ErrInvalid, "/subject")
}

// TestDecodeOldDataSchema checks that the forms of dataschema that clients
// sent before the URN (the path, and an absolute URL with that path) are
// still accepted, and that near misses are not.
func TestDecodeOldDataSchema(t *testing.T) {
	t.Parallel()
	m := sampleMessage(t, events.TypeReferralAccepted)
	for _, ds := range []string{"urn:invictus:schema:referral.accepted.v1", "/schemas/referral.accepted.v1.json", "https://hub.example.org/schemas/referral.accepted.v1.json", "http://127.0.0.1:8080/schemas/referral.accepted.v1.json"} {
		env, err := events.Decode(withHeader(m, "ce-dataschema", ds))
		if err != nil {
			t.Errorf("dataschema %s: %v", ds, err)
			continue
		}
		// What the network stores and delivers carries the URN.
		if got := env.Event.DataSchema(); got != "urn:invictus:schema:referral.accepted.v1" {
			t.Errorf("dataschema %s decodes as %s, want the URN", ds, got)
		}
	}
	for _, ds := range []string{"https://hub.example.org/schemas/referral.declined.v1.json", "https://hub.example.org/schemas/referral.accepted.v1.json?v=2", "ftp://x/schemas/referral.accepted.v1.json", "schemas/referral.accepted.v1.json", "urn:invictus:schema:referral.accepted.v2", "URN:invictus:schema:referral.accepted.v1", "urn:invictus:schema:referral.accepted.v1#x"} {
		_, err := events.Decode(withHeader(m, "ce-dataschema", ds))
		wantProblem(t, err, events.ErrInvalid, "/dataschema")
	}
}

func TestDecodeExtensions(t *testing.T) {
	t.Parallel()
	// The allow-list: correlationid, traceparent, tracestate.
	e := sampleEvent(t, events.TypeReferralAccepted, events.WithCorrelationID("cmd-1"),
		events.WithTraceParent(testTraceParent), events.WithTraceState("congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"))
	for _, m := range []events.Message{structuredMessage(t, e), mustNATS(t, e)} {
		if _, err := events.Decode(m); err != nil {
			t.Fatal(err)
		}
	}
	// Anything else is refused, whatever its type, and its value is never
	// repeated.
	for name, v := range map[string]any{"victim": "Maria Silva", "replayed": true, "hop": 3} {
		e := sampleEvent(t, events.TypeReferralAccepted)
		e.SetExtension(name, v)
		for _, m := range []events.Message{structuredMessage(t, e), mustNATS(t, e)} {
			_, err := events.Decode(m)
			ve := wantProblem(t, err, events.ErrInvalid, "/"+name)
			if ve.Problems[0].Code != events.CodeUnknownExtension || strings.Contains(ve.Error(), "Maria") {
				t.Errorf("extension %s: %v", name, err)
			}
		}
	}
	// The contract's extensions must be strings of their syntax.
	e = sampleEvent(t, events.TypeReferralAccepted)
	e.SetExtension(events.ExtCorrelationID, 7)
	_, err := events.Decode(structuredMessage(t, e))
	wantProblem(t, err, events.ErrInvalid, "/correlationid")
	for _, bad := range []string{"Maria Silva", "a=b=c", "=x", "k=" + strings.Repeat("v", 300)} {
		_, err := events.Decode(withHeader(sampleMessage(t, events.TypeReferralAccepted), "ce-tracestate", bad))
		wantProblem(t, err, events.ErrInvalid, "/tracestate")
	}
}

// mustNATS encodes e in binary mode.
func mustNATS(t testing.TB, e event.Event) events.Message {
	t.Helper()
	m, err := events.ToNATS(testSubjectNATS, e)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestDecodeEvent(t *testing.T) {
	t.Parallel()
	e := sampleEvent(t, events.TypeReferralCompleted, events.WithTraceParent(testTraceParent))
	env, err := events.DecodeEvent(e)
	if err != nil {
		t.Fatal(err)
	}
	checkRoundTrip(t, e, env)

	bad := e.Clone()
	bad.SetType("invictus.referral.nope.v1")
	_, err = events.DecodeEvent(bad)
	wantProblem(t, err, events.ErrUnknownType, "/type")

	bad = e.Clone()
	bad.SetSource("%zz")
	_, err = events.DecodeEvent(bad)
	wantProblem(t, err, events.ErrInvalid, "/source")

	bad = e.Clone()
	bad.DataEncoded = []byte(`{"placement":"p1","outcome":"unknown"}`)
	_, err = events.DecodeEvent(bad)
	wantProblem(t, err, events.ErrInvalid, "/data/outcome")

	_, err = events.DecodeEvent(event.Event{})
	wantProblem(t, err, events.ErrMissingAttribute, "/specversion", "/id", "/data")
}

func TestValidationErrorBounds(t *testing.T) {
	t.Parallel()
	// Thousands of unknown fields and a huge member name still give an
	// error that fits in a command.rejected payload.
	var b strings.Builder
	b.WriteString(`{"placement":"p1"`)
	for i := range 1000 {
		b.WriteString(`,"f` + strings.Repeat("x", i%3) + string(rune('a'+i%26)) + `":` + "1")
	}
	b.WriteString(`,"` + strings.Repeat("é", 2000) + `":1}`)
	m := sampleMessage(t, events.TypeReferralAccepted)
	m.Data = []byte(b.String())
	_, err := events.Decode(m)
	ve := wantProblem(t, err, events.ErrUnknownField)
	if len(ve.Problems) != events.MaxProblems {
		t.Errorf("%d problems; want %d", len(ve.Problems), events.MaxProblems)
	}
	rejected := &events.CommandRejected{Command: testID, Errors: ve.Problems}
	if err := events.ValidatePayload(rejected); err != nil {
		t.Errorf("the problems do not fit in command.rejected: %v", err)
	}
}

// TestDecodeRoundsCoordinates checks that finer coordinates than 0.01 are
// rounded on receipt, in the payload and in the data the event carries on,
// so that nothing downstream sees them.
func TestDecodeRoundsCoordinates(t *testing.T) {
	t.Parallel()
	m := sampleMessage(t, events.TypeReferralRequested)
	m.Data = requestedData(t, func(m map[string]any) {
		m["location"].(map[string]any)["lat"] = 38.72349
		m["location"].(map[string]any)["lon"] = -9.13951
	})
	env, err := events.Decode(m)
	if err != nil {
		t.Fatal(err)
	}
	req := env.Payload.(*events.Requested)
	if *req.Location.Lat != 38.72 || *req.Location.Lon != -9.14 {
		t.Errorf("payload location %v,%v; want 38.72,-9.14", *req.Location.Lat, *req.Location.Lon)
	}
	if d := string(env.Event.Data()); !strings.Contains(d, `"lat":38.72,"lon":-9.14`) || strings.Contains(d, "38.723") {
		t.Errorf("event data keeps the finer coordinates: %s", d)
	}
}
