package httpapi_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/invictus-network/invictus/adapters/httpapi"
	"github.com/invictus-network/invictus/events"
)

// timeline reads a referral as org and returns the view and its event types.
func (b *bundle) timeline(id, token string) (response, httpapi.ReferralView, []string) {
	b.t.Helper()
	r := b.get("/v1/referrals/"+id, token)
	var v httpapi.ReferralView
	var types []string
	if r.status == http.StatusOK {
		r.decode(b.t, &v)
		for _, raw := range v.Events {
			var head struct {
				Type string `json:"type"`
			}
			if err := json.Unmarshal(raw, &head); err != nil {
				b.t.Fatal(err)
			}
			types = append(types, head.Type)
		}
	}
	return r, v, types
}

func TestReferralTimeline(t *testing.T) {
	t.Parallel()
	b := setup(t, options{router: true})
	id := b.refer()

	// a1 declines: p1 goes to a2.
	r := b.postEvent("/v1/events?wait=10s", b.orgToken(orgA1), newEvent(t, orgA1, id, &events.Declined{Placement: "p1", Reason: "capacity"}))
	if r.status != http.StatusOK {
		t.Fatalf("decline: status %d %s", r.status, r.body)
	}
	b.eventually("the offer to a2", func() bool { return b.hasDelivery(orgA2, id, events.TypeReferralOffered) })

	// The referrer sees everything, with the status.
	r, v, types := b.timeline(id, b.orgToken(orgRef))
	if r.status != http.StatusOK {
		t.Fatalf("referrer: status %d %s", r.status, r.body)
	}
	want := []string{events.TypeReferralRequested, events.TypeReferralPlanned, events.TypeReferralOffered,
		events.TypeReferralDeclined, events.TypeReferralOffered}
	if v.Role != httpapi.PartReferrer || v.Status != "planned" || !slices.Equal(types, want) {
		t.Fatalf("referrer sees role %q status %q events %v; want referrer, planned, %v", v.Role, v.Status, types, want)
	}
	if len(v.Placements) != 1 || v.Placements[0].Organisation != orgA2 || v.Placements[0].Status != "offered" {
		t.Fatalf("referrer's placements: %+v", v.Placements)
	}

	// a1 sees its own offer and its own decline, not the plan, not the
	// offer to a2, and no status.
	r, v, types = b.timeline(id, b.orgToken(orgA1))
	if r.status != http.StatusOK {
		t.Fatalf("a1: status %d %s", r.status, r.body)
	}
	want = []string{events.TypeReferralOffered, events.TypeReferralDeclined}
	if v.Role != httpapi.PartRecipient || v.Status != "" || !slices.Equal(types, want) {
		t.Fatalf("a1 sees role %q status %q events %v; want recipient, no status, %v", v.Role, v.Status, types, want)
	}
	if len(v.Placements) != 1 || v.Placements[0].Status != "declined" || v.Placements[0].Organisation != "" {
		t.Fatalf("a1's placements: %+v; want p1 declined, without a2's name", v.Placements)
	}
	for _, raw := range v.Events {
		if strings.Contains(string(raw), orgA2) {
			t.Fatalf("a1 sees %s", raw)
		}
	}

	// a2 sees the offer it holds.
	_, v, types = b.timeline(id, b.orgToken(orgA2))
	if v.Role != httpapi.PartRecipient || !slices.Equal(types, []string{events.TypeReferralOffered}) {
		t.Fatalf("a2 sees %v", types)
	}

	// a3 (never offered), an unknown referral and a malformed id: the same
	// 404, which tells nothing about existence.
	for name, tc := range map[string]struct{ id, token string }{
		"another organisation's": {id, b.orgToken(orgA3)},
		"unknown":                {events.NewReferralID(), b.orgToken(orgRef)},
		"malformed":              {"not-a-uuid", b.orgToken(orgRef)},
	} {
		r := b.get("/v1/referrals/"+tc.id, tc.token)
		if r.status != http.StatusNotFound || r.errors(t)[0].Code != httpapi.CodeNotFound {
			t.Errorf("%s referral: status %d %s; want 404", name, r.status, r.body)
		}
		if strings.Contains(string(r.body), "offered") {
			t.Errorf("%s referral: the 404 tells more: %s", name, r.body)
		}
	}

	// Coordinators and directory administrators see no case data.
	for _, role := range []httpapi.Role{httpapi.RoleCoordinator, httpapi.RoleDirectoryAdmin} {
		r := b.get("/v1/referrals/"+id, b.token("", role))
		if r.status != http.StatusForbidden {
			t.Errorf("%s: status %d, want 403", role, r.status)
		}
	}

	// Erased on the victim's request: the erase command is accepted once
	// its referral.erased is in the log, and nobody reads the referral
	// any more.
	r = b.postEvent("/v1/events?wait=10s", b.orgToken(orgRef), newEvent(t, orgRef, id, &events.Erase{Reason: "victim_request"}))
	var res httpapi.CommandResult
	r.decode(t, &res)
	if r.status != http.StatusOK || res.Status != httpapi.StatusAccepted {
		t.Fatalf("erase: status %d %s", r.status, r.body)
	}
	for _, org := range []string{orgRef, orgA1, orgA2} {
		if r := b.get("/v1/referrals/"+id, b.orgToken(org)); r.status != http.StatusNotFound {
			t.Errorf("%s after erasure: status %d %s; want 404", org, r.status, r.body)
		}
	}
}

func TestInboxPages(t *testing.T) {
	t.Parallel()
	b := setup(t, options{router: true})
	id := b.refer()
	tok := b.orgToken(orgRef)

	// The referrer's inbox: planned, then its copy of the offer.
	r := b.get("/v1/inbox", tok)
	var page httpapi.InboxPage
	r.decode(t, &page)
	if r.status != http.StatusOK || len(page.Deliveries) != 2 {
		t.Fatalf("inbox: status %d %s", r.status, r.body)
	}
	if d := page.Deliveries[0]; d.Type != events.TypeReferralPlanned || d.Referral != id || d.Seq == 0 || page.Next != page.Deliveries[1].Seq {
		t.Fatalf("inbox: %+v next %d", page.Deliveries, page.Next)
	}

	// One at a time, resuming from next.
	r = b.get("/v1/inbox?limit=1", tok)
	var p1 httpapi.InboxPage
	r.decode(t, &p1)
	r = b.get("/v1/inbox?limit=1&after="+strconv.FormatUint(p1.Next, 10), tok)
	var p2 httpapi.InboxPage
	r.decode(t, &p2)
	if len(p1.Deliveries) != 1 || len(p2.Deliveries) != 1 || p2.Deliveries[0].Seq != page.Deliveries[1].Seq {
		t.Fatalf("paged: %+v then %+v", p1, p2)
	}
	r = b.get("/v1/inbox?after="+strconv.FormatUint(page.Next, 10), tok)
	var p3 httpapi.InboxPage
	r.decode(t, &p3)
	if len(p3.Deliveries) != 0 || p3.Next != page.Next {
		t.Fatalf("after the end: %+v", p3)
	}

	// The event is a structured CloudEvent with its payload.
	var ce struct {
		Type string          `json:"type"`
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(page.Deliveries[1].Event, &ce); err != nil || ce.Type != events.TypeReferralOffered || !strings.Contains(string(ce.Data), `"organisation":"pt.a1"`) {
		t.Fatalf("delivery event: %s (%v)", page.Deliveries[1].Event, err)
	}

	// Another organisation's inbox is its own.
	r = b.get("/v1/inbox", b.orgToken(orgA3))
	var other httpapi.InboxPage
	r.decode(t, &other)
	if len(other.Deliveries) != 0 {
		t.Fatalf("a3's inbox: %s", r.body)
	}

	for _, q := range []string{"limit=0", "limit=1001", "after=-1", "limit=x"} {
		if r := b.get("/v1/inbox?"+q, tok); r.status != http.StatusBadRequest || r.errors(t)[0].Parameter == "" {
			t.Errorf("?%s: status %d %s; want 400 naming the parameter", q, r.status, r.body)
		}
	}
}

func TestInboxEventStreamResumes(t *testing.T) {
	t.Parallel()
	b := setup(t, options{router: true})
	id := b.refer()
	tok := b.orgToken(orgA1)

	// The first stream shows a1's offer; the client goes away.
	s := b.openStream(tok, "")
	first := s.next(t)
	if first.event != events.TypeReferralOffered || first.id == "" {
		t.Fatalf("first event: %+v", first)
	}
	var d httpapi.Delivery
	if err := json.Unmarshal([]byte(first.data), &d); err != nil || strconv.FormatUint(d.Seq, 10) != first.id || d.Referral != id {
		t.Fatalf("first event data: %s (%v)", first.data, err)
	}
	s.close()

	// Meanwhile a1 accepts: its acknowledgement is delivered.
	r := b.postEvent("/v1/events?wait=10s", tok, newEvent(t, orgA1, id, &events.Accepted{Placement: "p1"}))
	if r.status != http.StatusOK {
		t.Fatalf("accept: status %d %s", r.status, r.body)
	}

	// Resuming with Last-Event-ID gives what came after, not the offer
	// again; and the stream stays open for what comes next.
	s = b.openStream(tok, first.id)
	next := s.next(t)
	firstSeq, _ := strconv.ParseUint(first.id, 10, 64)
	nextSeq, _ := strconv.ParseUint(next.id, 10, 64)
	if next.event != events.TypeReferralAccepted || nextSeq <= firstSeq {
		t.Fatalf("resumed stream starts with %+v; want the acceptance after id %s", next, first.id)
	}
	r = b.postEvent("/v1/events?wait=10s", tok, newEvent(t, orgA1, id, &events.Contacted{Placement: "p1"}))
	if r.status != http.StatusOK {
		t.Fatalf("contacted: status %d %s", r.status, r.body)
	}
	live := s.next(t)
	if live.event != events.TypeReferralContacted {
		t.Fatalf("live event: %+v", live)
	}

	// A Last-Event-ID that is not an id is refused.
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, b.http.URL+"/v1/inbox", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Last-Event-ID", "yesterday")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad Last-Event-ID: status %d", resp.StatusCode)
	}
}
