package httpapi_test

import (
	"bytes"
	"encoding/json"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/invictus-network/invictus/adapters/httpapi"
	"github.com/invictus-network/invictus/adapters/natsjs"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/internal/testenv"
)

// identityMarkers are the pieces of a made-up victim identity the attacks
// smuggle in; no answer may repeat them.
var identityMarkers = []string{"Maria", "Silva", "912345678", "912 345 678", "Ana Exemplo", "900 000 000"}

// attack is one message an organisation sends, in the binary content mode
// of both bindings (or structured when contentType says so), and the
// problem it must be refused with.
type attack struct {
	name     string
	referral string
	header   map[string]string
	data     []byte
	pointer  string
	code     string
}

// attackBuilder makes attacks of the referrer about fresh referral ids.
type attackBuilder struct {
	t   *testing.T
	org string
}

// from returns the binary-mode headers and data of a valid command p
// about a fresh referral, after mutate changes its payload's JSON members.
func (a attackBuilder) from(p events.Payload, mutate func(m map[string]any), opts ...events.Option) (string, map[string]string, []byte) {
	a.t.Helper()
	id := events.NewReferralID()
	ev, err := events.New(events.SourceOf(a.org), id, p, opts...)
	if err != nil {
		a.t.Fatalf("a valid command to start from: %v", err)
	}
	m, err := events.ToNATS("in."+a.org, ev)
	if err != nil {
		a.t.Fatal(err)
	}
	h := map[string]string{}
	for k, vs := range m.Header {
		h[k] = vs[0]
	}
	data := m.Data
	if mutate != nil {
		var obj map[string]any
		if err := json.Unmarshal(data, &obj); err != nil {
			a.t.Fatal(err)
		}
		mutate(obj)
		if data, err = json.Marshal(obj); err != nil {
			a.t.Fatal(err)
		}
	}
	return id, h, data
}

func (a attackBuilder) payload(name string, p events.Payload, mutate func(map[string]any), pointer, code string) attack {
	id, h, data := a.from(p, mutate)
	return attack{name: name, referral: id, header: h, data: data, pointer: pointer, code: code}
}

func (a attackBuilder) header(name string, p events.Payload, k, v, pointer, code string) attack {
	id, h, data := a.from(p, nil)
	h[k] = v
	return attack{name: name, referral: id, header: h, data: data, pointer: pointer, code: code}
}

// structured returns the command in the structured mode with raw JSON
// replacing the value of one attribute.
func (a attackBuilder) structured(name string, p events.Payload, attr, rawValue, pointer, code string) attack {
	id, h, data := a.from(p, nil)
	var b bytes.Buffer
	b.WriteString("{")
	for _, k := range []string{"specversion", "id", "source", "type", "subject", "time", "dataschema", "datacontenttype"} {
		v, _ := json.Marshal(h["ce-"+k])
		if k == attr {
			v = []byte(rawValue)
		}
		b.WriteString(`"` + k + `":` + string(v) + ",")
	}
	b.WriteString(`"data":` + string(data) + "}")
	return attack{name: name, referral: id, header: map[string]string{"Content-Type": "application/cloudevents+json"}, data: b.Bytes(), pointer: pointer, code: code}
}

// payloadAttacks are findings 4, 5 and 6 of issue 17 as messages.
func payloadAttacks(t *testing.T, org string, sealedTo string) []attack {
	a := attackBuilder{t: t, org: org}
	req := requested
	handover := func(envelope string) *events.Handover {
		return &events.Handover{Placement: "p1", Recipient: sealedTo, Envelope: envelope}
	}
	sample := events.SamplePayload(events.TypeReferralHandover).(*events.Handover).Envelope
	clear := "Name: Ana Exemplo\nPhone: +351 900 000 000\n"
	armored := func(s string) string { return events.AgeArmorHeader + "\n" + s + "-----END AGE ENCRYPTED FILE-----\n" }
	setEnvelope := func(v string) func(map[string]any) { return func(m map[string]any) { m["envelope"] = v } }
	consent := func(k string, v any) func(map[string]any) {
		return func(m map[string]any) { m["consent"].(map[string]any)[k] = v }
	}
	old := time.Now().UTC().Add(-3 * 365 * 24 * time.Hour).Format(time.RFC3339)
	var attacks []attack
	add := func(at ...attack) { attacks = append(attacks, at...) }
	// Finding 4: a handover that is not a sealed envelope.
	add(
		a.payload("plain text inside the armor lines", handover(sample), setEnvelope(armored(clear)), "/data/envelope", events.CodeFormat),
		a.payload("armor header then plain text", handover(sample), setEnvelope(events.AgeArmorHeader+"\n"+clear), "/data/envelope", events.CodeFormat),
		a.payload("armored base64 of plain text", handover(sample), setEnvelope(armored("TmFtZTogQW5hIEV4ZW1wbG8K\n")), "/data/envelope", events.CodeFormat),
		a.payload("not armored at all", handover(sample), setEnvelope(clear), "/data/envelope", events.CodeFormat),
	)
	// Finding 5: free text, names and phone numbers, extensions.
	add(
		a.payload("decline with text", &events.Declined{Placement: "p1", Reason: "other"}, func(m map[string]any) { m["text"] = "Maria Silva moved to Porto" }, "/data/text", events.CodeFreeText),
		a.payload("withdraw with a note", &events.Withdrawn{Reason: "other"}, func(m map[string]any) { m["note"] = "Maria Silva asked" }, "/data/note", events.CodeFreeText),
		a.payload("requested with comments", req(), func(m map[string]any) { m["comments"] = "Maria Silva, 912345678" }, "/data/comments", events.CodeFreeText),
		a.payload("recorded_by a name", req(), consent("recorded_by", "Maria.Silva"), "/data/consent/recorded_by", events.CodeFormat),
		a.payload("recorded_by a hyphenated name", req(), consent("recorded_by", "maria-silva"), "/data/consent/recorded_by", events.CodeFormat),
		a.payload("recorded_by a phone number", req(), consent("recorded_by", "+351 912 345 678"), "/data/consent/recorded_by", events.CodeFormat),
		a.payload("recorded_by a prefixed phone number", req(), consent("recorded_by", "tel-912345678"), "/data/consent/recorded_by", events.CodeFormat),
		a.header("extension naming the victim", req(), "ce-victim", "Maria%20Silva", "/victim", events.CodeUnknownExtension),
		a.header("extension with a phone number", req(), "ce-phone", "912345678", "/phone", events.CodeUnknownExtension),
		a.header("tracestate that is not one", req(), "ce-tracestate", "Maria%20Silva", "/tracestate", events.CodeInvalidAttribute),
	)
	many := a.header("1,000 extensions", req(), "ce-x0", "Maria", "/x0", events.CodeUnknownExtension)
	for i := 1; i < 1000; i++ {
		many.header["ce-x"+strconv.Itoa(i)] = "Silva"
	}
	add(many)
	// Finding 6: ids, times.
	for _, id := range []string{"../../etc/passwd", "*", ">", "<script>", "a b", "é", strings.Repeat("a", 129)} {
		add(a.header("id "+id[:min(len(id), 20)], req(), "ce-id", percent(id), "/id", events.CodeInvalidAttribute))
	}
	add(
		a.structured("id with a lone surrogate", req(), "id", `"abc\ud800"`, "/id", events.CodeInvalidUTF8),
		a.header("correlationid that is a path", req(), "ce-correlationid", "../x", "/correlationid", events.CodeInvalidAttribute),
		a.header("event time in 9999", req(), "ce-time", "9999-01-01T00:00:00Z", "/time", events.CodeOutOfRange),
		a.header("event time in 1970", req(), "ce-time", "1970-01-01T00:00:00Z", "/time", events.CodeOutOfRange),
		a.header("event time an hour ahead", req(), "ce-time", time.Now().UTC().Add(time.Hour).Format(time.RFC3339), "/time", events.CodeOutOfRange),
		a.payload("consent in 9999", req(), consent("given_at", "9999-01-01T00:00:00Z"), "/data/consent/given_at", events.CodeOutOfRange),
		a.payload("consent in 1900", req(), consent("given_at", "1900-01-01T00:00:00Z"), "/data/consent/given_at", events.CodeOutOfRange),
		a.payload("consent three years old", req(), consent("given_at", old), "/data/consent/given_at", events.CodeOutOfRange),
	)
	return attacks
}

// percent encodes v as a binding header value.
func percent(v string) string {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c <= ' ' || c >= 0x7f || c == '"' || c == '%' {
			b.WriteString("%" + strings.ToUpper(string("0123456789abcdef"[c>>4])+string("0123456789abcdef"[c&0xf])))
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// TestPayloadAttacksRefused sends every attack over HTTP (POST /v1/events)
// and over NATS (the organisation's INBOUND subject), and checks that each
// is refused with its problem, that no answer repeats the identity, and
// that nothing reached the referral log.
func TestPayloadAttacksRefused(t *testing.T) {
	t.Parallel()
	b := setup(t, options{router: true})
	attacks := payloadAttacks(t, orgRef, "age13wswxm896mvzulrrqqymgpr3ts452928df5969pcjuw06f6ur35q0kdcky")
	token := b.orgToken(orgRef)

	httpRefused := 0
	for _, at := range attacks {
		h := http.Header{}
		for k, v := range at.header {
			h[k] = []string{v}
		}
		if _, ok := at.header["Content-Type"]; !ok {
			h.Set("Content-Type", "application/json")
		}
		r := b.do(http.MethodPost, "/v1/events", token, at.data, h)
		if r.status != http.StatusUnprocessableEntity && r.status != http.StatusBadRequest {
			t.Errorf("HTTP %s: status %d, want 422 (or 400 for bytes that are not text): %.300s", at.name, r.status, r.body)
			continue
		}
		if !hasProblem(r.errors(t), at.pointer, at.code) {
			t.Errorf("HTTP %s: %s; want %s at %s", at.name, r.body, at.code, at.pointer)
			continue
		}
		if leaks(r.body) {
			t.Errorf("HTTP %s: the answer repeats the identity: %s", at.name, r.body)
			continue
		}
		httpRefused++
	}

	natsRefused := 0
	for _, at := range attacks {
		msg := &nats.Msg{Subject: "in." + orgRef, Header: nats.Header{}, Data: at.data}
		for k, v := range at.header {
			msg.Header[k] = []string{v}
		}
		if _, err := b.js.PublishMsg(testenv.Context(t), msg); err != nil {
			t.Fatalf("NATS %s: publish: %v", at.name, err)
		}
	}
	for _, at := range attacks {
		var rej *events.CommandRejected
		var raw []byte
		b.eventually("the rejection of "+at.name, func() bool {
			rej, raw = b.rejection(orgRef, at.referral)
			return rej != nil
		})
		found := false
		for _, p := range rej.Errors {
			found = found || (p.Pointer == at.pointer && p.Code == at.code)
		}
		switch {
		case !found:
			t.Errorf("NATS %s: rejected with %+v; want %s at %s", at.name, rej.Errors, at.code, at.pointer)
		case leaks(raw):
			t.Errorf("NATS %s: the rejection repeats the identity: %s", at.name, raw)
		default:
			natsRefused++
		}
		if evs, err := b.ports.Timeline.Events(t.Context(), at.referral); err != nil || len(evs) > 0 {
			t.Errorf("%s: the referral log holds %d events (%v)", at.name, len(evs), err)
		}
	}
	// The DLQ keeps the refused messages for operators, without the
	// extension headers that carried an identity.
	for _, m := range b.streamMsgs(natsjs.StreamDLQ) {
		for k, vs := range m.Header {
			if strings.HasPrefix(strings.ToLower(k), "ce-") && !events.IsAttribute(strings.ToLower(k[3:])) {
				t.Errorf("DLQ keeps header %s: %v", k, vs)
			}
		}
	}
	t.Logf("payload attacks: HTTP %d tried, %d refused; NATS %d tried, %d refused", len(attacks), httpRefused, len(attacks), natsRefused)
}

func hasProblem(ps []httpapi.Problem, pointer, code string) bool {
	for _, p := range ps {
		if p.Pointer == pointer && p.Code == code {
			return true
		}
	}
	return false
}

func leaks(b []byte) bool {
	for _, m := range identityMarkers {
		if bytes.Contains(b, []byte(m)) {
			return true
		}
	}
	return false
}

// rejection returns the command.rejected delivered to org about referral
// id, and its data, or nil.
func (b *bundle) rejection(org, id string) (*events.CommandRejected, []byte) {
	var out *events.CommandRejected
	var raw []byte
	err := b.ports.Inbox.Read(b.t.Context(), org, 0, 10000, func(_ uint64, m events.Message) error {
		env, err := events.Decode(m)
		if err == nil && env.Event.Subject() == id && env.Event.Type() == events.TypeCommandRejected {
			out, raw = env.Payload.(*events.CommandRejected), m.Data
		}
		return nil
	})
	if err != nil {
		b.t.Fatalf("read inbox: %v", err)
	}
	return out, raw
}

// streamMsgs returns every message of stream.
func (b *bundle) streamMsgs(stream string) []*jetstream.RawStreamMsg {
	ctx := b.t.Context()
	st, err := b.js.Stream(ctx, stream)
	if err != nil {
		b.t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		b.t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq > 0 && seq <= info.State.LastSeq; seq++ {
		if m, err := st.GetMsg(ctx, seq); err == nil {
			out = append(out, m)
		}
	}
	return out
}

// TestDeduplicationIsPerSource: after one organisation used an id, another
// organisation's new command with the same id is processed, over NATS and
// over HTTP; a Nats-Msg-Id that is not the sender's own source and id is
// refused.
func TestDeduplicationIsPerSource(t *testing.T) {
	t.Parallel()
	b := setup(t, options{router: true})
	offered := func(id string) bool {
		evs, err := b.ports.Timeline.Events(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			if e.Event.Type() == events.TypeReferralOffered {
				return true
			}
		}
		return false
	}
	tried, processed := 0, 0
	// NATS, as the client publishes: Nats-Msg-Id = events.MsgID.
	const natsID = "shared-nats-0001"
	var natsRefs []string
	for _, org := range []string{orgRef, orgA1} {
		ref := events.NewReferralID()
		natsRefs = append(natsRefs, ref)
		ev, err := events.New(events.SourceOf(org), ref, requested(), events.WithID(natsID))
		if err != nil {
			t.Fatal(err)
		}
		m, err := events.ToNATS("in."+org, ev)
		if err != nil {
			t.Fatal(err)
		}
		msg := &nats.Msg{Subject: m.Subject, Header: nats.Header(m.Header), Data: m.Data}
		msg.Header.Set(jetstream.MsgIDHeader, events.MsgID(ev.Source(), ev.ID()))
		ack, err := b.js.PublishMsg(t.Context(), msg)
		if err != nil || ack.Duplicate {
			t.Fatalf("%s: publish %v, duplicate %v", org, err, ack != nil && ack.Duplicate)
		}
		tried++
	}
	for _, ref := range natsRefs {
		b.eventually("the offer of "+ref, func() bool { return offered(ref) })
		processed++
	}
	// HTTP.
	const httpID = "shared-http-0001"
	for _, org := range []string{orgRef, orgA1} {
		ref := events.NewReferralID()
		ev, err := events.New(events.SourceOf(org), ref, requested(), events.WithID(httpID))
		if err != nil {
			t.Fatal(err)
		}
		tried++
		r := b.postEvent("/v1/events?wait=10s", b.orgToken(org), ev)
		if r.status != http.StatusCreated {
			t.Errorf("%s: status %d %s, want 201", org, r.status, r.body)
			continue
		}
		b.eventually("the offer of "+ref, func() bool { return offered(ref) })
		processed++
	}
	t.Logf("one id, two organisations: %d commands tried, %d processed", tried, processed)

	// A Nats-Msg-Id that would shadow another organisation's id, or the
	// bare id, is refused; the right one is accepted.
	refused := 0
	keys := map[string]string{
		"another organisation's": events.MsgID(events.SourceOf(orgA1), "forged-0001"),
		"the bare id":            "forged-0001",
	}
	for name, key := range keys {
		ref := events.NewReferralID()
		ev, err := events.New(events.SourceOf(orgRef), ref, requested(), events.WithID("forged-0001"))
		if err != nil {
			t.Fatal(err)
		}
		m, _ := events.ToNATS("in."+orgRef, ev)
		msg := &nats.Msg{Subject: m.Subject, Header: maps.Clone(nats.Header(m.Header)), Data: m.Data}
		msg.Header.Set(jetstream.MsgIDHeader, key)
		if _, err := b.js.PublishMsg(t.Context(), msg); err != nil {
			t.Fatal(err)
		}
		var rej *events.CommandRejected
		b.eventually("the rejection of "+name+" key", func() bool { rej, _ = b.rejection(orgRef, ref); return rej != nil })
		if rej.Errors[0].Pointer != "/id" || !strings.Contains(rej.Errors[0].Message, "Nats-Msg-Id") {
			t.Errorf("%s key: %+v", name, rej.Errors)
			continue
		}
		refused++
	}
	t.Logf("forged Nats-Msg-Id: %d tried, %d refused", len(keys), refused)
}

// TestNonPartyRejectionRevealsNothing: a command about a referral the
// sender is not a party to gets the answer a command about a referral
// that does not exist gets, over HTTP and NATS.
func TestNonPartyRejectionRevealsNothing(t *testing.T) {
	t.Parallel()
	b := setup(t, options{router: true})
	id := b.refer() // offered to a1; a3 is no party
	missing := events.NewReferralID()
	cmds := []events.Payload{
		&events.Accepted{Placement: "p1"},
		&events.Declined{Placement: "p1", Reason: "capacity"},
		&events.Contacted{Placement: "p1"},
		&events.Completed{Placement: "p1", Outcome: "supported"},
		&events.Withdrawn{Reason: "error"},
		&events.Erase{Reason: "error"},
		&events.Feedback{Answers: []events.Answer{{Question: "helpful", Value: 5}}},
	}
	tried, same := 0, 0
	for _, p := range cmds {
		answer := func(ref string) string {
			r := b.postEvent("/v1/events?wait=10s", b.orgToken(orgA3), newEvent(t, orgA3, ref, p))
			var res struct {
				Errors []httpapi.Problem `json:"errors"`
			}
			if err := json.Unmarshal(r.body, &res); err != nil {
				t.Fatalf("%s: %v: %s", p.EventType(), err, r.body)
			}
			b, _ := json.Marshal(res.Errors)
			return strconv.Itoa(r.status) + " " + strings.ReplaceAll(string(b), ref, "<referral>")
		}
		tried++
		got, want := answer(id), answer(missing)
		if got != want {
			t.Errorf("%s by a non-party: %s; for a referral that does not exist: %s", p.EventType(), got, want)
			continue
		}
		same++
	}
	t.Logf("non-party commands over HTTP (decided by the routing service over NATS): %d tried, %d answered as for a referral that does not exist", tried, same)
}
