package events_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/invictus-network/invictus/events"
)

// The fuzz targets check, for any input, that the decoders never panic,
// that whatever they accept passes ValidatePayload and survives being
// built, encoded and decoded again with an equal payload, and that
// whatever they reject is a *ValidationError that fits in command.rejected.
// Their seeds are valid events of every type, each in both content modes,
// and the golden examples of package schemas when they exist.

// exampleDir holds the golden examples (full structured events).
const exampleDir = "../schemas/examples"

// exampleSeeds returns the JSON files under exampleDir, or nothing when
// the folder is absent.
func exampleSeeds(f *testing.F) [][]byte {
	f.Helper()
	var out [][]byte
	err := filepath.WalkDir(exampleDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || filepath.Ext(path) != ".json" {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		out = append(out, b)
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		f.Fatalf("read %s: %v", exampleDir, err)
	}
	return out
}

// formatHeaders serialises headers as "name: value" lines, sorted.
func formatHeaders(h map[string][]string) string {
	var lines []string
	for k, vs := range h {
		for _, v := range vs {
			lines = append(lines, k+": "+v)
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// parseHeaders reads formatHeaders' output; repeated names add values.
func parseHeaders(s string) map[string][]string {
	h := map[string][]string{}
	for _, line := range strings.Split(s, "\n") {
		k, v, ok := strings.Cut(line, ": ")
		if !ok {
			continue
		}
		h[k] = append(h[k], v)
	}
	return h
}

// binaryFromStructured turns a JSON-format event into binary-mode headers
// and data (for seeds; attribute values are copied as they are).
func binaryFromStructured(b []byte) (map[string][]string, []byte, bool) {
	var members map[string]json.RawMessage
	if json.Unmarshal(b, &members) != nil {
		return nil, nil, false
	}
	h := map[string][]string{}
	for k, raw := range members {
		var s string
		if k == "data" || json.Unmarshal(raw, &s) != nil {
			continue
		}
		if k == "datacontenttype" {
			h["Content-Type"] = []string{s}
			continue
		}
		h["ce-"+k] = []string{s}
	}
	return h, members["data"], true
}

// natsSeeds returns messages for the seed corpora.
func natsSeeds(f *testing.F) []events.Message {
	var out []events.Message
	for _, typ := range events.Types() {
		e := sampleEvent(f, typ, events.WithCorrelationID("cmd-42"), events.WithTraceState(traceStateNeedingEncoding), events.WithTraceParent(testTraceParent))
		m, err := events.ToNATS(testSubjectNATS, e)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, m, structuredMessage(f, e))
	}
	for _, b := range exampleSeeds(f) {
		out = append(out, events.Message{Header: map[string][]string{"Content-Type": {event.ApplicationCloudEventsJSON}}, Data: b})
		if h, data, ok := binaryFromStructured(b); ok {
			out = append(out, events.Message{Header: h, Data: data})
		}
	}
	return out
}

// checkRejected fails unless err is a well-formed *ValidationError.
func checkRejected(t *testing.T, err error) {
	t.Helper()
	ve := validationError(t, err)
	sentinels := []error{events.ErrInvalid, events.ErrUnknownType, events.ErrMissingAttribute, events.ErrContentType,
		events.ErrInvalidUTF8, events.ErrTooLarge, events.ErrUnknownField, events.ErrMalformedJSON}
	if !slices.Contains(sentinels, ve.Class) || !errors.Is(err, ve.Class) {
		t.Fatalf("class %v is not a sentinel", ve.Class)
	}
	if len(ve.Problems) == 0 || len(ve.Problems) > events.MaxProblems {
		t.Fatalf("%d problems", len(ve.Problems))
	}
	for _, p := range ve.Problems {
		if !utf8.ValidString(p.Pointer) || !utf8.ValidString(p.Message) {
			t.Fatalf("problem is not valid UTF-8: %+v", p)
		}
	}
	if err := events.ValidatePayload(&events.CommandRejected{Command: "c", Errors: ve.Problems}); err != nil {
		t.Fatalf("the problems do not fit in command.rejected: %v\n%v", err, ve)
	}
}

// checkAccepted checks what a decoder accepted: the payload is valid and of
// the event's type, the envelope's event decodes again, and the payload
// survives New, ToNATS and Decode (binary and structured) unchanged.
func checkAccepted(t *testing.T, env *events.Envelope) {
	t.Helper()
	if err := events.ValidatePayload(env.Payload); err != nil {
		t.Fatalf("accepted a payload that ValidatePayload rejects: %v", err)
	}
	e := env.Event
	want, ok := events.NewPayload(e.Type())
	if !ok || reflect.TypeOf(env.Payload) != reflect.TypeOf(want) {
		t.Fatalf("payload %T for type %q", env.Payload, e.Type())
	}
	// encoding/json agrees that the data has no unknown member.
	dec := json.NewDecoder(bytes.NewReader(e.Data()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(want); err != nil {
		t.Fatalf("encoding/json rejects accepted data: %v", err)
	}
	orig := payloadJSON(t, env.Payload)
	again, err := events.DecodeEvent(e)
	if err != nil {
		t.Fatalf("DecodeEvent of an accepted event: %v", err)
	}
	if got := payloadJSON(t, again.Payload); got != orig {
		t.Fatalf("DecodeEvent payload\n%s\nwant\n%s", got, orig)
	}

	opts := []events.Option{events.WithID(e.ID()), events.WithTime(e.Time())}
	if c, ok := e.Extensions()[events.ExtCorrelationID].(string); ok {
		opts = append(opts, events.WithCorrelationID(c))
	}
	if tp, ok := e.Extensions()[events.ExtTraceParent].(string); ok {
		opts = append(opts, events.WithTraceParent(tp))
	}
	if ts, ok := e.Extensions()[events.ExtTraceState].(string); ok {
		opts = append(opts, events.WithTraceState(ts))
	}
	built, err := events.New(e.Source(), e.Subject(), env.Payload, opts...)
	if err != nil {
		t.Fatalf("New rejects an accepted event: %v", err)
	}
	m, err := events.ToNATS(testSubjectNATS, built)
	if err != nil {
		t.Fatalf("ToNATS: %v", err)
	}
	for _, m := range []events.Message{m, structuredMessage(t, built)} {
		env2, err := events.Decode(m)
		if err != nil {
			t.Fatalf("re-encoded event rejected: %v", err)
		}
		if got := payloadJSON(t, env2.Payload); got != orig {
			t.Fatalf("re-decoded payload\n%s\nwant\n%s", got, orig)
		}
		if env2.Event.ID() != e.ID() || env2.Event.Source() != e.Source() || env2.Event.Subject() != e.Subject() || !env2.Event.Time().Equal(e.Time()) {
			t.Fatalf("re-decoded attributes differ:\n%v\nwant\n%v", env2.Event, e)
		}
	}
}

func FuzzDecodeNATS(f *testing.F) {
	for _, m := range natsSeeds(f) {
		f.Add(formatHeaders(m.Header), m.Data)
	}
	f.Add("ce-specversion: 1.0\nCE-ID: %E2%82%AC\nContent-Type: application/json", []byte(`{"placement":"p1"}`))
	f.Add("Content-Type: application/cloudevents+json", []byte(`{"specversion":"1.0","data":{"x":[1,2,{"y":null}]}}`))
	f.Fuzz(func(t *testing.T, headers string, data []byte) {
		env, err := events.Decode(events.Message{Subject: testSubjectNATS, Header: parseHeaders(headers), Data: data})
		if err != nil {
			if env != nil {
				t.Fatal("an envelope with an error")
			}
			checkRejected(t, err)
			return
		}
		checkAccepted(t, env)
	})
}

func FuzzDecodeHTTP(f *testing.F) {
	for _, m := range natsSeeds(f) {
		h := map[string][]string{}
		ct := ""
		for k, v := range m.Header {
			if strings.EqualFold(k, "Content-Type") {
				ct = v[0]
				continue
			}
			h[k] = v
		}
		f.Add(ct, formatHeaders(h), m.Data)
	}
	var batch []event.Event
	for _, typ := range events.Types()[:4] {
		batch = append(batch, sampleEvent(f, typ))
	}
	b, err := json.Marshal(batch)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(event.ApplicationCloudEventsBatchJSON, "", b)
	f.Add(event.ApplicationCloudEventsBatchJSON, "", []byte(`[]`))
	f.Fuzz(func(t *testing.T, contentType, headers string, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/events", bytes.NewReader(body))
		for k, vs := range parseHeaders(headers) {
			for _, v := range vs {
				req.Header.Add(k, v)
			}
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		envs, err := events.DecodeHTTP(req)
		if err != nil {
			if envs != nil {
				t.Fatal("envelopes with an error")
			}
			checkRejected(t, err)
			return
		}
		for _, env := range envs {
			checkAccepted(t, env)
		}
	})
}

func FuzzParseSubject(f *testing.F) {
	for _, s := range []string{
		"in.pt.apav", "in.fr.france-victimes-75", "referral.pt." + refID, "out.fi.riku." + refID,
		"timer." + refID + ".p1", "timer.fire." + refID + ".p1", "dlq.decode", "out.pt.apav.>", "in.pt.*",
		"referral.PT." + refID, "timer.fire.fire.p1", "in..apav", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		accepted := 0
		if org, err := events.ParseInboundSubject(s); err == nil {
			accepted++
			if got, err := events.InboundSubject(org); err != nil || got != s {
				t.Fatalf("InboundSubject(%q) = %q, %v; want %q", org, got, err, s)
			}
		} else if !errors.Is(err, events.ErrInvalidSubject) {
			t.Fatalf("error %v does not wrap ErrInvalidSubject", err)
		}
		if cc, id, err := events.ParseReferralSubject(s); err == nil {
			accepted++
			if got, err := events.ReferralSubject(cc, id); err != nil || got != s {
				t.Fatalf("ReferralSubject(%q, %q) = %q, %v; want %q", cc, id, got, err, s)
			}
		}
		if org, id, err := events.ParseDeliverySubject(s); err == nil {
			accepted++
			if got, err := events.DeliverySubject(org, id); err != nil || got != s {
				t.Fatalf("DeliverySubject(%q, %q) = %q, %v; want %q", org, id, got, err, s)
			}
			if filter := events.DeliveryFilter(org); !strings.HasPrefix(s, strings.TrimSuffix(filter, ">")) {
				t.Fatalf("DeliveryFilter(%q) = %q does not match %q", org, filter, s)
			}
		}
		if id, p, fired, err := events.ParseTimerSubject(s); err == nil {
			accepted++
			build := events.TimerSubject
			if fired {
				build = events.TimerFireSubject
			}
			if got, err := build(id, p); err != nil || got != s {
				t.Fatalf("timer subject of (%q, %q, %v) = %q, %v; want %q", id, p, fired, got, err, s)
			}
		}
		if accepted > 1 {
			t.Fatalf("%q is accepted by %d parsers", s, accepted)
		}
		if accepted == 1 {
			// What a parser accepts is a literal subject of printable ASCII
			// tokens, safe to publish to.
			for _, tok := range strings.Split(s, ".") {
				if tok == "" || tok == "*" || tok == ">" || strings.ContainsFunc(tok, func(r rune) bool { return r <= ' ' || r >= 0x7f }) {
					t.Fatalf("%q has a bad token %q", s, tok)
				}
			}
		}
	})
}
