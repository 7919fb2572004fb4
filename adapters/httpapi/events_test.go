package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/invictus-network/invictus/adapters/httpapi"
	"github.com/invictus-network/invictus/adapters/natsjs"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/internal/testenv"
)

// inbound returns the commands stored in INBOUND on org's subject.
func (b *bundle) inbound(org string) []jetstream.RawStreamMsg {
	b.t.Helper()
	ctx := b.t.Context()
	s, err := b.js.Stream(ctx, natsjs.StreamInbound)
	if err != nil {
		b.t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		b.t.Fatal(err)
	}
	var out []jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			continue
		}
		if m.Subject == "in."+org {
			out = append(out, *m)
		}
	}
	return out
}

func TestPostEventsContentModes(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	tok := b.orgToken(orgRef)

	// Binary mode, written by the same codec webhooks use.
	idBinary := events.NewReferralID()
	e := newEvent(t, orgRef, idBinary, requested())
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, b.http.URL+"/v1/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := events.WriteHTTPRequest(t.Context(), req, e); err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var res httpapi.CommandResult
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || res.ID != e.ID() || res.Referral != idBinary || res.Status != httpapi.StatusSubmitted {
		t.Fatalf("binary: status %d, %+v; want 202 with id %s", resp.StatusCode, res, e.ID())
	}

	// Structured mode.
	es := newEvent(t, orgRef, events.NewReferralID(), requested())
	r := b.postEvent("/v1/events", tok, es)
	r.decode(t, &res)
	if r.status != http.StatusAccepted || res.ID != es.ID() {
		t.Fatalf("structured: status %d %s", r.status, r.body)
	}

	// Batch mode: a list of results, in order.
	batch := []event.Event{
		newEvent(t, orgRef, events.NewReferralID(), requested()),
		newEvent(t, orgRef, events.NewReferralID(), requested()),
	}
	body, _ := json.Marshal(batch)
	r = b.do(http.MethodPost, "/v1/events", tok, body, http.Header{"Content-Type": {"application/cloudevents-batch+json"}})
	var results []httpapi.CommandResult
	r.decode(t, &results)
	if r.status != http.StatusAccepted || len(results) != 2 || results[0].ID != batch[0].ID() || results[1].ID != batch[1].ID() {
		t.Fatalf("batch: status %d %s", r.status, r.body)
	}

	// Every command is in INBOUND on the sender's subject, deduplicated by
	// its CloudEvents id; sending one again stores nothing new.
	r = b.postEvent("/v1/events", tok, es)
	if r.status != http.StatusAccepted {
		t.Fatalf("resend: status %d %s", r.status, r.body)
	}
	stored := b.inbound(orgRef)
	var ids []string
	for _, m := range stored {
		if got, want := m.Header.Get(jetstream.MsgIDHeader), events.MsgID(m.Header.Get("ce-source"), m.Header.Get("ce-id")); got != want {
			t.Errorf("Nats-Msg-Id %q, want %q (the source and the id)", got, want)
		}
		ids = append(ids, m.Header.Get("ce-id"))
	}
	want := []string{e.ID(), es.ID(), batch[0].ID(), batch[1].ID()}
	if !slices.Equal(ids, want) {
		t.Fatalf("INBOUND holds %v, want %v", ids, want)
	}
}

func TestPostEventsErrors(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	tok := b.orgToken(orgRef)
	id := events.NewReferralID()

	structured := func(e event.Event) []byte {
		body, _ := json.Marshal(e)
		return body
	}
	invalid := requested()
	invalid.Needs = []string{"support.emotional", "not.a.need"}
	invalid.Languages = nil
	bad := newEvent(t, orgRef, id, requested())
	bad.DataEncoded, _ = json.Marshal(invalid)
	huge := newEvent(t, orgRef, id, requested())
	huge.DataEncoded = []byte(`{"needs":["` + strings.Repeat("x", events.MaxMessageSize) + `"]}`)
	planned := newEvent(t, orgRef, id, events.SamplePayload(events.TypeReferralPlanned))
	other := newEvent(t, orgA1, id, requested())
	good := newEvent(t, orgRef, id, requested())
	ce := http.Header{"Content-Type": {"application/cloudevents+json"}}
	batchCT := http.Header{"Content-Type": {"application/cloudevents-batch+json"}}
	batchOf := func(es ...event.Event) []byte {
		body, _ := json.Marshal(es)
		return body
	}

	tests := []struct {
		name     string
		token    string
		path     string
		header   http.Header
		body     []byte
		status   int
		pointers []string // every one must appear
		code     string
	}{
		{name: "no token", body: structured(good), header: ce, status: 401, code: httpapi.CodeUnauthorized},
		{name: "wrong source", token: tok, body: structured(other), header: ce, status: 403, pointers: []string{"/source"}, code: httpapi.CodeForbidden},
		{name: "routing-only type", token: tok, body: structured(planned), header: ce, status: 403, pointers: []string{"/type"}, code: httpapi.CodeForbidden},
		{name: "invalid payload", token: tok, body: structured(bad), header: ce, status: 422,
			pointers: []string{"/data/needs/1", "/data/languages"}},
		{name: "oversized", token: tok, body: structured(huge), header: ce, status: 413, code: events.CodeTooLarge},
		{name: "malformed JSON", token: tok, body: []byte(`{"specversion": "1.0",`), header: ce, status: 400, code: events.CodeMalformedJSON},
		{name: "unsupported format", token: tok, body: []byte(`{}`), header: http.Header{"Content-Type": {"application/cloudevents+xml"}}, status: 415, code: events.CodeContentType},
		{name: "batch with a bad member", token: tok, body: batchOf(good, bad), header: batchCT, status: 422, pointers: []string{"/1/data/needs/1"}},
		{name: "batch with another source", token: tok, body: batchOf(good, other), header: batchCT, status: 403, pointers: []string{"/1/source"}},
		{name: "bad wait", token: tok, path: "/v1/events?wait=forever", body: structured(good), header: ce, status: 400, code: events.CodeFormat},
		{name: "wait too long", token: tok, path: "/v1/events?wait=1m", body: structured(good), header: ce, status: 400, code: events.CodeOutOfRange},
		{name: "coordinator", token: b.token("", httpapi.RoleCoordinator), body: structured(good), header: ce, status: 403, code: httpapi.CodeForbidden},
	}
	for _, tc := range tests {
		path := tc.path
		if path == "" {
			path = "/v1/events"
		}
		r := b.do(http.MethodPost, path, tc.token, tc.body, tc.header)
		if r.status != tc.status {
			t.Errorf("%s: status %d, want %d: %s", tc.name, r.status, tc.status, r.body)
			continue
		}
		ps := r.errors(t)
		for _, want := range tc.pointers {
			if !slices.ContainsFunc(ps, func(p httpapi.Problem) bool { return p.Pointer == want }) {
				t.Errorf("%s: no problem at %s in %+v", tc.name, want, ps)
			}
		}
		if tc.code != "" && !slices.ContainsFunc(ps, func(p httpapi.Problem) bool { return p.Code == tc.code }) {
			t.Errorf("%s: no problem with code %s in %+v", tc.name, tc.code, ps)
		}
	}
	if n := len(b.inbound(orgRef)); n != 0 {
		t.Fatalf("INBOUND holds %d commands after refused requests, want 0", n)
	}
}

func TestPostEventsWaitWithoutRouterIsPending(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	e := newEvent(t, orgRef, events.NewReferralID(), requested())
	r := b.postEvent("/v1/events?wait=200ms", b.orgToken(orgRef), e)
	var res httpapi.CommandResult
	r.decode(t, &res)
	if r.status != http.StatusAccepted || res.Status != httpapi.StatusPending {
		t.Fatalf("status %d %s; want 202 pending", r.status, r.body)
	}
}

func TestPostEventsWaitForOutcome(t *testing.T) {
	t.Parallel()
	b := setup(t, options{router: true})
	id := events.NewReferralID()

	// A new referral: 201 with its location once it is in the log.
	r := b.postEvent("/v1/events?wait=10s", b.orgToken(orgRef), newEvent(t, orgRef, id, requested()))
	var res httpapi.CommandResult
	r.decode(t, &res)
	if r.status != http.StatusCreated || res.Status != httpapi.StatusAccepted || r.header.Get("Location") != "/v1/referrals/"+id {
		t.Fatalf("requested: status %d, Location %q: %s", r.status, r.header.Get("Location"), r.body)
	}
	b.eventually("the offer to a1", func() bool { return b.hasDelivery(orgA1, id, events.TypeReferralOffered) })

	// a2 was not offered p1: the routing service rejects its acceptance
	// (as for a referral that does not exist: a2 is no party), and ?wait=
	// answers 422 with the errors of command.rejected.
	r = b.postEvent("/v1/events?wait=10s", b.orgToken(orgA2), newEvent(t, orgA2, id, &events.Accepted{Placement: "p1"}))
	r.decode(t, &res)
	if r.status != http.StatusUnprocessableEntity || res.Status != httpapi.StatusRejected || len(res.Errors) == 0 || res.Errors[0].Code != "not_found" {
		t.Fatalf("a2 accepts: status %d %s; want 422 rejected/not_found", r.status, r.body)
	}

	// a1 accepts: 200 accepted.
	r = b.postEvent("/v1/events?wait=10s", b.orgToken(orgA1), newEvent(t, orgA1, id, &events.Accepted{Placement: "p1"}))
	r.decode(t, &res)
	if r.status != http.StatusOK || res.Status != httpapi.StatusAccepted {
		t.Fatalf("a1 accepts: status %d %s; want 200 accepted", r.status, r.body)
	}

	// A batch with one rejected command: 422 with prefixed pointers and
	// every result.
	batch := []event.Event{
		newEvent(t, orgA1, id, &events.Contacted{Placement: "p1"}),
		newEvent(t, orgA1, id, &events.Accepted{Placement: "p9"}),
	}
	body, _ := json.Marshal(batch)
	r = b.do(http.MethodPost, "/v1/events?wait=10s", b.orgToken(orgA1), body, http.Header{"Content-Type": {"application/cloudevents-batch+json"}})
	var br struct {
		Errors  []httpapi.Problem       `json:"errors"`
		Results []httpapi.CommandResult `json:"results"`
	}
	r.decode(t, &br)
	if r.status != http.StatusUnprocessableEntity || len(br.Results) != 2 ||
		br.Results[0].Status != httpapi.StatusAccepted || br.Results[1].Status != httpapi.StatusRejected ||
		len(br.Errors) == 0 || !strings.HasPrefix(br.Errors[0].Pointer, "/1") {
		t.Fatalf("batch: status %d %s", r.status, r.body)
	}

	// The routing service counts the commands by type and outcome, once
	// each (the API does not count what ?wait= saw); its count may follow
	// the outcome the API answered by a moment. Each want is the start of
	// a line of the exposition.
	wants := []string{
		`invictus_commands_total{outcome="accepted",type="invictus.referral.requested.v1"} 1` + "\n",
		`invictus_commands_total{outcome="accepted",type="invictus.referral.accepted.v1"} 1` + "\n",
		`invictus_commands_total{outcome="rejected",type="invictus.referral.accepted.v1"} 2` + "\n",
		`invictus_commands_total{outcome="accepted",type="invictus.referral.contacted.v1"} 1` + "\n",
		`invictus_consumer_lag_messages{consumer="routing",stream="INBOUND"} `,
		`invictus_dlq_messages 2` + "\n",
		`invictus_offer_latency_seconds_count 1` + "\n",
		`invictus_referrals{status="in_progress"} 1` + "\n",
	}
	var m response
	lacking := func() (out []string) {
		m = b.get("/metrics", "")
		for _, want := range wants {
			if !bytes.Contains(m.body, []byte("\n"+want)) {
				out = append(out, want)
			}
		}
		return out
	}
	testenv.Await(t, "/metrics to count the commands", func() bool { return len(lacking()) == 0 }, func() string {
		return fmt.Sprintf("/metrics lacks %q:\n%s", lacking(), m.body)
	})
	if bytes.Contains(m.body, []byte(`outcome="submitted"`)) {
		t.Errorf("/metrics counts submitted commands as well:\n%s", m.body)
	}
}

func TestSubmitRefusesAnotherOrganisationsSubject(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	e := newEvent(t, orgRef, events.NewReferralID(), requested())
	m, err := events.ToNATS("in."+orgA1, e)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.ports.Commands.Submit(context.Background(), orgRef, m); err == nil {
		t.Fatal("Submit of pt.ref's command on in.pt.a1: no error")
	}
}
