package referral_test

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/referral"
)

// TestLifecycle walks the end-to-end story through the state
// machine: request, plan, offer, decline, next offer, deadline expiry,
// next offer, accept, handover, contact, completion, feedback; and checks
// who receives each event.
func TestLifecycle(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	deliver := func(s referral.State, p events.Payload, want ...string) {
		t.Helper()
		if got := referral.Recipients(s, p); !slices.Equal(got, want) {
			t.Fatalf("Recipients(%s) = %v, want %v", p.EventType(), got, want)
		}
	}

	req := requested(true)
	deliver(h.s, req)
	h.by(referrer, req)
	if h.s.Status != referral.StatusRequested || h.s.Referrer != referrer || h.s.ID != refID || h.s.Country != "pt" || !h.s.RequestedAt.Equal(monday) {
		t.Fatalf("after requested: %+v", h.s)
	}
	if out := referral.Pending(h.s, h.now, h.d); out != nil {
		t.Fatalf("Pending before the plan: %s", types(out))
	}

	deliver(h.s, plan1(), referrer)
	h.routing(plan1())
	offers := referral.OffersAfterPlan(h.s, h.now, h.d)
	if len(offers) != 1 {
		t.Fatalf("offers after plan: %s", types(offers))
	}
	first := offers[0].(*events.Offered)
	wantDeadline := monday.Add(2 * time.Hour) // urgent
	if first.Organisation != orgD || first.Service != orgD+".main" || first.Attempt != 1 || !first.Deadline.Equal(wantDeadline) ||
		first.Referrer != referrer || !slices.Equal(first.Needs, bothNeeds) || first.Profile.Urgency != events.UrgencyUrgent {
		t.Fatalf("first offer: %+v", first)
	}
	deliver(h.s, first, referrer, orgD)
	h.routing(first)

	// D declines: the next candidate, A, is offered in the same decision.
	dec := h.by(orgD, &events.Declined{Placement: "p1", Reason: "capacity"})
	if !dec.Record || len(dec.Events) != 1 {
		t.Fatalf("decline decision: %+v", dec)
	}
	second := dec.Events[0].(*events.Offered)
	if second.Organisation != orgA || second.Attempt != 2 {
		t.Fatalf("second offer: %+v", second)
	}

	// The timer of the first offer fires late: stale, nothing happens.
	h.now = h.now.Add(3 * time.Hour)
	if out, err := h.timer("p1", 1); err != nil || out != nil {
		t.Fatalf("stale timer: %s, %v", types(out), err)
	}
	// The timer of the second offer fires a minute early: retry later.
	h.now = second.Deadline.Add(-time.Minute)
	if _, err := h.timer("p1", 2); !errors.Is(err, referral.ErrTooEarly) {
		t.Fatalf("early timer: %v, want too early", err)
	}
	// On time: expired, then B is offered.
	h.now = second.Deadline
	expiredState := h.s
	out, err := h.timer("p1", 2)
	if err != nil || types(out) != "expired,offered" {
		t.Fatalf("timer: %s, %v", types(out), err)
	}
	deliver(expiredState, out[0], referrer, orgA)
	third := out[1].(*events.Offered)
	if third.Organisation != orgB || third.Attempt != 3 || !third.Deadline.Equal(h.now.Add(2*time.Hour)) {
		t.Fatalf("third offer: %+v", third)
	}
	// The same timer again (redelivered) is stale.
	if out, err := h.timer("p1", 2); err != nil || out != nil {
		t.Fatalf("redelivered timer: %s, %v", types(out), err)
	}
	if o, ok := h.s.LiveOffer("p1", 3); !ok || o.Organisation != orgB {
		t.Fatalf("LiveOffer(p1, 3) = %+v, %v", o, ok)
	}
	if _, ok := h.s.LiveOffer("p1", 2); ok {
		t.Fatal("LiveOffer(p1, 2) is live after expiry")
	}

	// A's late acceptance of its expired offer is a conflict; B accepts.
	if _, err := h.send(referral.Actor{Org: orgA}, src(orgA), &events.Accepted{Placement: "p1"}); !errors.Is(err, referral.ErrConflict) {
		t.Fatalf("late accept: %v, want conflict", err)
	}
	deliver(h.s, &events.Accepted{Placement: "p1"}, referrer, orgB)
	h.by(orgB, &events.Accepted{Placement: "p1"})
	if _, ok := h.s.LiveOffer("p1", 3); ok {
		t.Fatal("LiveOffer after acceptance")
	}
	if out, err := h.timer("p1", 3); err != nil || out != nil {
		t.Fatalf("timer after acceptance: %s, %v", types(out), err)
	}

	deliver(h.s, handover("p1"), orgB)
	h.by(referrer, handover("p1"))
	deliver(h.s, &events.Contacted{Placement: "p1"}, referrer, orgB)
	h.by(orgB, &events.Contacted{Placement: "p1"})
	h.by(orgB, &events.OnHold{Placement: "p1"})
	h.by(orgB, &events.Contacted{Placement: "p1"})
	h.by(orgB, &events.Completed{Placement: "p1", Outcome: "supported"})
	deliver(h.s, feedback("p1"), referrer, orgB)
	h.by(referrer, feedback("p1"))
	h.by(orgB, feedback("p1"))

	p := h.placement("p1")
	if h.s.Status != referral.StatusCompleted || p.Status != referral.PlacementCompleted || p.AcceptedBy != orgB ||
		p.Outcome != "supported" || p.Handovers != 1 || p.Attempt != 3 || h.s.Feedback != 2 || h.s.ClosedAt.IsZero() {
		t.Fatalf("final state: %+v\nplacement: %+v", h.s, p)
	}
	wantRefusals := []string{orgD + " declined capacity", orgA + " expired "}
	var got []string
	for _, r := range p.Refusals {
		got = append(got, fmt.Sprintf("%s %s %s", r.Organisation, r.Status, r.Reason))
	}
	if !slices.Equal(got, wantRefusals) {
		t.Fatalf("refusals %q, want %q", got, wantRefusals)
	}
	deliver(h.s, &events.Erased{}, referrer, orgD, orgA, orgB)
	h.checkFold()
}

// TestMultiPlacement: two need groups placed with two organisations; one
// completes, the other runs out of candidates: partially completed. Each
// organisation only ever receives the events of its own placement.
func TestMultiPlacement(t *testing.T) {
	t.Parallel()
	shelter := []string{events.NeedSafetyShelter}
	legal := []string{events.NeedJusticeLegalAid}
	twoGroups := func() *events.Planned {
		return &events.Planned{Groups: []events.PlanGroup{group("shelter", shelter, orgA), group("legal", legal, orgB, orgD)}}
	}

	t.Run("partial", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		h.by(referrer, requested(true))
		offers := h.plan(twoGroups())
		if types(offers) != "offered,offered" {
			t.Fatalf("offers after plan: %s", types(offers))
		}
		for _, p := range offers {
			o := p.(*events.Offered)
			got := referral.Recipients(h.s, o)
			if !slices.Equal(got, []string{referrer, o.Organisation}) {
				t.Fatalf("offer of %s goes to %v", o.Placement, got)
			}
		}
		h.by(orgA, &events.Accepted{Placement: "shelter"})
		if h.s.Status != referral.StatusInProgress {
			t.Fatalf("status %s after one acceptance", h.s.Status)
		}
		// A cannot answer B's offer, nor report on B's placement.
		if _, err := h.send(referral.Actor{Org: orgA}, src(orgA), &events.Declined{Placement: "legal", Reason: "capacity"}); !errors.Is(err, referral.ErrForbidden) {
			t.Fatalf("A declines B's offer: %v", err)
		}
		if got := referral.Recipients(h.s, handover("shelter")); !slices.Equal(got, []string{orgA}) {
			t.Fatalf("handover of shelter goes to %v", got)
		}
		h.by(orgB, &events.Declined{Placement: "legal", Reason: "out_of_area"})
		dec := h.by(orgD, &events.Declined{Placement: "legal", Reason: "capacity"})
		if types(dec.Events) != "unmatched" {
			t.Fatalf("last decline: %s, want unmatched", types(dec.Events))
		}
		u := dec.Events[0].(*events.Unmatched)
		if u.Placement != "legal" || u.Reason != "all_declined" || !slices.Equal(u.Needs, legal) {
			t.Fatalf("unmatched: %+v", u)
		}
		if err := events.ValidatePayload(u); err != nil {
			t.Fatalf("unmatched payload invalid: %v", err)
		}
		if h.placement("legal").Status != referral.PlacementFailed || h.s.Status != referral.StatusInProgress {
			t.Fatalf("after unmatched: legal %s, referral %s", h.placement("legal").Status, h.s.Status)
		}
		// Withdrawal now tells only the organisations still involved.
		if got := referral.Recipients(h.s, &events.Withdrawn{Reason: "error"}); !slices.Equal(got, []string{referrer, orgA}) {
			t.Fatalf("withdrawal goes to %v", got)
		}
		h.by(orgA, &events.Completed{Placement: "shelter", Outcome: "supported"})
		if h.s.Status != referral.StatusPartiallyCompleted || h.s.ClosedAt.IsZero() {
			t.Fatalf("status %s, want partially_completed", h.s.Status)
		}
		h.checkFold()
	})

	t.Run("complete", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		h.by(referrer, requested(true))
		h.plan(twoGroups())
		h.by(orgA, &events.Accepted{Placement: "shelter"})
		h.by(orgB, &events.Accepted{Placement: "legal"})
		h.by(orgA, &events.Completed{Placement: "shelter", Outcome: "supported"})
		if h.s.Status != referral.StatusInProgress {
			t.Fatalf("status %s with one placement open", h.s.Status)
		}
		h.by(orgB, &events.Completed{Placement: "legal", Outcome: "unable_to_contact"})
		if h.s.Status != referral.StatusCompleted {
			t.Fatalf("status %s, want completed", h.s.Status)
		}
		h.checkFold()
	})

	t.Run("gaps make completion partial", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		h.by(referrer, requested(true, events.NeedSafetyShelter, events.NeedJusticeLegalAid, events.NeedHealthMedical, events.NeedFamilySupport))
		plan := &events.Planned{
			Groups:    []events.PlanGroup{group("shelter", shelter, orgA)},
			Unmatched: []events.UnmatchedNeed{{Need: events.NeedJusticeLegalAid, Reason: "no_service"}, {Need: events.NeedHealthMedical, Reason: "excluded", Offered: 3, Excluded: map[string]int{"language": 2, "capacity": 1}}, {Need: events.NeedFamilySupport, Reason: "no_service"}},
		}
		out := h.plan(plan)
		if types(out) != "unmatched,unmatched,offered" {
			t.Fatalf("after plan: %s", types(out))
		}
		gap := out[0].(*events.Unmatched)
		if gap.Placement != "" || gap.Reason != "no_service" || !slices.Equal(gap.Needs, []string{events.NeedJusticeLegalAid, events.NeedFamilySupport}) {
			t.Fatalf("gap report: %+v", gap)
		}
		// The report names, need by need, the constraints that removed
		// the services offering it, as the plan counted them.
		excl := out[1].(*events.Unmatched)
		wantDetails := []events.UnmatchedNeed{{Need: events.NeedHealthMedical, Reason: "excluded", Offered: 3, Excluded: map[string]int{"language": 2, "capacity": 1}}}
		if excl.Reason != "excluded" || !reflect.DeepEqual(excl.Details, wantDetails) {
			t.Fatalf("excluded gap report: %+v, want details %+v", excl, wantDetails)
		}
		if err := events.ValidatePayload(excl); err != nil {
			t.Fatalf("gap report invalid: %v", err)
		}
		if got := referral.Recipients(h.s, gap); !slices.Equal(got, []string{referrer}) {
			t.Fatalf("gap report goes to %v", got)
		}
		// Reported once: Pending owes nothing more, a repeat conflicts.
		if p := referral.Pending(h.s, h.now, h.d); p != nil {
			t.Fatalf("Pending after the plan's events: %s", types(p))
		}
		if _, err := referral.Apply(h.s, h.envelope(events.SourceRouting, gap)); !errors.Is(err, referral.ErrConflict) {
			t.Fatalf("gap reported twice: %v", err)
		}
		h.by(orgA, &events.Accepted{Placement: "shelter"})
		h.by(orgA, &events.Completed{Placement: "shelter", Outcome: "supported"})
		if h.s.Status != referral.StatusPartiallyCompleted {
			t.Fatalf("status %s, want partially_completed", h.s.Status)
		}
		h.checkFold()
	})

	t.Run("nothing covered", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		h.by(referrer, requested(true))
		out := h.plan(&events.Planned{Unmatched: []events.UnmatchedNeed{{Need: events.NeedSafetyShelter, Reason: "no_service"}, {Need: events.NeedJusticeLegalAid, Reason: "no_service"}}})
		if types(out) != "unmatched" || h.s.Status != referral.StatusFailed {
			t.Fatalf("plan without groups: %s, status %s", types(out), h.s.Status)
		}
		h.checkFold()
	})

	t.Run("withdrawal cancels every open placement", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		h.by(referrer, requested(true))
		h.plan(twoGroups())
		h.by(orgA, &events.Accepted{Placement: "shelter"})
		if got := referral.Recipients(h.s, &events.Withdrawn{Reason: "victim_request"}); !slices.Equal(got, []string{referrer, orgA, orgB}) {
			t.Fatalf("withdrawal goes to %v", got)
		}
		h.by(referrer, &events.Withdrawn{Reason: "victim_request"})
		for _, p := range h.s.Placements {
			if p.Status != referral.PlacementCancelled {
				t.Fatalf("placement %s is %s after withdrawal", p.ID, p.Status)
			}
		}
		if h.s.Status != referral.StatusCancelled || h.s.WithdrawnReason != "victim_request" {
			t.Fatalf("after withdrawal: %s", h.s.Status)
		}
		// Timers of the cancelled offers are stale.
		if out, err := h.timer("legal", 1); err != nil || out != nil {
			t.Fatalf("timer after withdrawal: %s, %v", types(out), err)
		}
		h.checkFold()
	})
}

func TestOfferRules(t *testing.T) {
	t.Parallel()
	h := fixture(t, "declined") // D and A refused; B is next
	next := func() *events.Offered {
		return &events.Offered{Placement: "p1", Service: orgB + ".main", Organisation: orgB, Referrer: referrer,
			Needs: bothNeeds, Attempt: 3, Deadline: h.now.Add(time.Hour), Profile: profile(events.UrgencyUrgent)}
	}
	cases := []struct {
		name   string
		change func(o *events.Offered)
		want   error
	}{
		{"the next candidate", func(*events.Offered) {}, nil},
		{"an organisation that declined", func(o *events.Offered) { o.Organisation, o.Service = orgD, orgD+".main" }, referral.ErrConflict},
		{"a service not among the remaining candidates", func(o *events.Offered) { o.Organisation, o.Service = orgX, orgX+".main" }, referral.ErrConflict},
		{"a repeated attempt number", func(o *events.Offered) { o.Attempt = 2 }, referral.ErrConflict},
		{"another referrer", func(o *events.Offered) { o.Referrer = orgX }, referral.ErrInvalid},
		{"other needs", func(o *events.Offered) { o.Needs = []string{events.NeedSafetyShelter} }, referral.ErrInvalid},
		{"an unknown placement", func(o *events.Offered) { o.Placement = "p9" }, referral.ErrNotFound},
	}
	for _, tc := range cases {
		o := next()
		tc.change(o)
		_, err := referral.Apply(h.s, h.envelope(events.SourceRouting, o))
		if (tc.want == nil && err != nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("offer to %s: %v, want %v", tc.name, err, tc.want)
		}
	}

	// An organisation with two services among the candidates (A, B, A
	// again) is skipped as a whole once it declined.
	h2 := newHarness(t)
	h2.by(referrer, requested(true))
	g := group("p1", bothNeeds, orgA, orgB)
	second := candidate(orgA, bothNeeds...)
	second.Service = orgA + ".second"
	g.Candidates = []events.Candidate{g.Candidates[0], g.Candidates[1], second}
	h2.plan(&events.Planned{Groups: []events.PlanGroup{g}})
	dec := h2.by(orgA, &events.Declined{Placement: "p1", Reason: "capacity"})
	if o := dec.Events[0].(*events.Offered); o.Organisation != orgB || o.Attempt != 2 {
		t.Fatalf("after A declined, offered %s (attempt %d), want %s", o.Service, o.Attempt, orgB)
	}

	// Nor can a raw offer reach A's other service once A refused.
	h2.raw(orgB, &events.Declined{Placement: "p1", Reason: "capacity"})
	again := &events.Offered{Placement: "p1", Service: second.Service, Organisation: orgA, Referrer: referrer,
		Needs: bothNeeds, Attempt: 3, Deadline: h2.now.Add(time.Hour), Profile: profile(events.UrgencyUrgent)}
	if _, err := referral.Apply(h2.s, h2.envelope(events.SourceRouting, again)); !errors.Is(err, referral.ErrConflict) {
		t.Fatalf("offer to the other service of an organisation that declined: %v, want conflict", err)
	}
	if out := referral.Pending(h2.s, h2.now, h2.d); types(out) != "unmatched" {
		t.Fatalf("after every organisation refused, Pending = %s, want unmatched", types(out))
	}

	// Bad plans.
	h3 := fixture(t, "requested")
	dup := &events.Planned{Groups: []events.PlanGroup{group("p1", bothNeeds, orgA), group("p1", bothNeeds, orgB)}}
	if _, err := referral.Apply(h3.s, h3.envelope(events.SourceRouting, dup)); !errors.Is(err, referral.ErrInvalid) {
		t.Fatalf("plan with a repeated placement id: %v", err)
	}
}

func TestIdempotency(t *testing.T) {
	t.Parallel()
	h := fixture(t, "offered")
	accept := h.envelope(src(orgA), &events.Accepted{Placement: "p1"})
	dec, err := referral.Decide(h.s, accept, referral.Actor{Org: orgA}, h.now, h.d)
	if err != nil {
		t.Fatal(err)
	}
	h.record(accept, dec)
	s1 := h.s

	// The same command delivered again: duplicate, nothing to append.
	if _, err := referral.Decide(h.s, accept, referral.Actor{Org: orgA}, h.now, h.d); !errors.Is(err, referral.ErrDuplicate) {
		t.Fatalf("Decide again: %v, want duplicate", err)
	}
	// The same event applied again: same state, duplicate.
	s2, err := referral.Apply(h.s, accept)
	if !errors.Is(err, referral.ErrDuplicate) || snapshot(t, s2) != snapshot(t, s1) {
		t.Fatalf("Apply again: %v, state changed: %v", err, snapshot(t, s2) != snapshot(t, s1))
	}
	// A log holding the event twice folds to the same state.
	twice := append(append([]*events.Envelope(nil), h.log...), accept)
	f, err := referral.Fold(twice)
	if err != nil || snapshot(t, f) != snapshot(t, s1) {
		t.Fatalf("Fold with a duplicate: %v", err)
	}
	if h.s.Version != uint64(len(h.log)) {
		t.Fatalf("Version %d, %d events", h.s.Version, len(h.log))
	}

	// The remembered ids are bounded.
	for range referral.MaxSeenIDs + 10 {
		h.by(orgA, &events.OnHold{Placement: "p1"})
	}
	if n := len(h.s.SeenIDs); n != referral.MaxSeenIDs {
		t.Fatalf("%d ids remembered, want %d", n, referral.MaxSeenIDs)
	}
	if first, last := h.log[0].Event, h.log[len(h.log)-1].Event; h.s.Seen(first.Source(), first.ID()) || !h.s.Seen(last.Source(), last.ID()) {
		t.Fatal("the oldest id should be forgotten and the newest remembered")
	}
	// Even forgotten, an old command cannot apply twice: the state rules it out.
	if _, err := referral.Decide(h.s, accept, referral.Actor{Org: orgA}, h.now, h.d); !errors.Is(err, referral.ErrConflict) {
		t.Fatalf("forgotten accept again: %v, want conflict", err)
	}
	h.checkFold()
}

func TestFoldReportsTheFailingEvent(t *testing.T) {
	t.Parallel()
	h := fixture(t, "offered")
	bad := h.envelope(src(orgX), &events.Accepted{Placement: "p1"})
	s, err := referral.Fold(append(h.log, bad))
	if !errors.Is(err, referral.ErrNotFound) || !strings.Contains(err.Error(), "fold event 5") {
		t.Fatalf("Fold: %v, want not found (X is no party) at event 5", err)
	}
	if snapshot(t, s) != snapshot(t, h.s) {
		t.Fatal("Fold should return the state before the failing event")
	}
	if _, err := referral.Fold([]*events.Envelope{h.log[1]}); !errors.Is(err, referral.ErrNotFound) {
		t.Fatalf("Fold without referral.requested: %v, want not found", err)
	}
}

func TestOnTimerErrors(t *testing.T) {
	t.Parallel()
	var none referral.State
	if _, err := referral.OnTimer(none, "p1", 1, monday, referral.DefaultDeadlines()); !errors.Is(err, referral.ErrNotFound) {
		t.Fatalf("timer of an unknown referral: %v", err)
	}
	h := fixture(t, "offered")
	if _, err := referral.OnTimer(h.s, "p9", 1, monday, h.d); !errors.Is(err, referral.ErrNotFound) {
		t.Fatalf("timer of an unknown placement: %v", err)
	}
	// The last candidate's offer expires: expired then unmatched.
	h.by(orgA, &events.Declined{Placement: "p1", Reason: "capacity"})
	h.now = h.placement("p1").Offer.Deadline.Add(time.Second)
	out, err := h.timer("p1", 3)
	if err != nil || types(out) != "expired,unmatched" {
		t.Fatalf("last timer: %s, %v", types(out), err)
	}
	if h.s.Status != referral.StatusFailed || h.placement("p1").Status != referral.PlacementFailed {
		t.Fatalf("after the last expiry: %s", summary(h.s))
	}
	for _, p := range out {
		if err := events.ValidatePayload(p); err != nil {
			t.Fatalf("%s is invalid: %v", p.EventType(), err)
		}
	}
	h.checkFold()
}

func TestPendingHealsAnInterruptedDecision(t *testing.T) {
	t.Parallel()
	// The routing service recorded D's decline and crashed before
	// offering the next candidate. After a restart Pending owes the offer.
	h := newHarness(t)
	h.by(referrer, requested(true))
	h.plan(plan1())
	h.raw(orgD, &events.Declined{Placement: "p1", Reason: "capacity"})
	out := referral.Pending(h.s, h.now, h.d)
	if types(out) != "offered" || out[0].(*events.Offered).Organisation != orgA {
		t.Fatalf("Pending: %s", types(out))
	}
	// Deterministic: the same state and clock give the same events.
	if again := referral.Pending(h.s, h.now, h.d); fmt.Sprint(again[0]) != fmt.Sprint(out[0]) {
		t.Fatal("Pending is not deterministic")
	}
	h.routing(out...)
	if referral.Pending(h.s, h.now, h.d) != nil {
		t.Fatal("Pending owes more after the offer")
	}
}

func TestResponseHoursShortenTheDeadline(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	req := requested(true)
	req.Urgency = events.UrgencyRoutine
	req.ResponseHours = 4
	h.by(referrer, req)
	offers := h.plan(plan1())
	if got := offers[0].(*events.Offered).Deadline; !got.Equal(monday.Add(4 * time.Hour)) {
		t.Fatalf("deadline %s, want 4 hours after %s", got, monday)
	}
	if _, rem := h.d.ForReferral(h.s, monday); !rem.Equal(monday.Add(2 * time.Hour)) {
		t.Fatalf("reminder %s, want 2 hours after %s", rem, monday)
	}
}

func TestRecipientsOfEveryEvent(t *testing.T) {
	t.Parallel()
	h := fixture(t, "accepted") // D declined, A accepted
	cases := []struct {
		p    events.Payload
		want []string
	}{
		{requested(true), nil},
		{plan1(), []string{referrer}},
		{&events.Accepted{Placement: "p1"}, []string{referrer, orgA}},
		{&events.Declined{Placement: "p1", Reason: "capacity"}, []string{referrer, orgA}},
		{&events.Expired{Placement: "p1"}, []string{referrer, orgA}},
		{&events.Unmatched{Placement: "p1"}, []string{referrer}},
		{handover("p1"), []string{orgA}},
		{&events.Contacted{Placement: "p1"}, []string{referrer, orgA}},
		{&events.OnHold{Placement: "p1"}, []string{referrer, orgA}},
		{&events.Completed{Placement: "p1"}, []string{referrer, orgA}},
		{&events.Withdrawn{}, []string{referrer, orgA}},
		{&events.Erase{}, []string{referrer, orgD, orgA}},
		{&events.Erased{}, []string{referrer, orgD, orgA}},
		{feedback("p1"), []string{referrer, orgA}},
		{feedback(""), []string{referrer}},
		{&events.CommandRejected{}, nil},
		{&events.CapacityUpdated{}, nil},
		{events.Accepted{Placement: "p1"}, nil}, // payloads are pointers, as events.Decode returns them; a value is not read
	}
	for _, tc := range cases {
		if got := referral.Recipients(h.s, tc.p); !slices.Equal(got, tc.want) {
			t.Errorf("Recipients(%T) = %v, want %v", tc.p, got, tc.want)
		}
	}
}

// TestDuplicatesAreKeyedOnSourceAndID: an id is unique per source only.
// After the accepting organisation used an id, the referrer's command
// with the same id is a new command; the same source and id again is a
// duplicate.
func TestDuplicatesAreKeyedOnSourceAndID(t *testing.T) {
	t.Parallel()
	h := fixture(t, "offered")
	const shared = "shared-0001"
	accept := h.envelope(src(orgA), &events.Accepted{Placement: "p1"}, events.WithID(shared))
	dec, err := referral.Decide(h.s, accept, referral.Actor{Org: orgA}, h.now, h.d)
	if err != nil {
		t.Fatal(err)
	}
	h.record(accept, dec)
	ho := h.envelope(src(referrer), handover("p1"), events.WithID(shared))
	dec, err = referral.Decide(h.s, ho, referral.Actor{Org: referrer}, h.now, h.d)
	if err != nil || !dec.Record {
		t.Fatalf("the referrer's handover with the accepting organisation's id: %+v %v, want it applied", dec, err)
	}
	h.record(ho, dec)
	if p, _ := h.s.Placement("p1"); p.Handovers != 1 {
		t.Fatalf("handovers = %d, want 1", p.Handovers)
	}
	for _, again := range []*events.Envelope{accept, ho} {
		if _, err := referral.Decide(h.s, again, referral.Actor{Org: mustOrg(t, again.Event.Source())}, h.now, h.d); !errors.Is(err, referral.ErrDuplicate) {
			t.Errorf("%s sent again: %v, want duplicate", again.Event.Type(), err)
		}
	}
	h.checkFold()
}

func mustOrg(t *testing.T, source string) string {
	t.Helper()
	org, ok := events.OrgOfSource(source)
	if !ok {
		t.Fatalf("%q is no organisation's source", source)
	}
	return org
}

// TestNonPartyLearnsNothing: every command of an organisation that is not
// a party, in every state of the referral, gets exactly the rejection of a
// command about a referral that does not exist: same code, pointer and
// message.
func TestNonPartyLearnsNothing(t *testing.T) {
	t.Parallel()
	cmds := []string{"accepted", "declined", "handover", "contacted", "on_hold", "completed", "withdrawn", "erase", "feedback_p", "feedback_r"}
	tried, same := 0, 0
	for _, st := range stateNames {
		h := fixture(t, st)
		for _, name := range cmds {
			cmd := h.envelope(src(orgX), commandPayload(h, name))
			_, got := referral.Decide(h.s, cmd, referral.Actor{Org: orgX}, h.now, h.d)
			_, none := referral.Decide(referral.State{}, cmd, referral.Actor{Org: orgX}, h.now, h.d)
			tried++
			if got == nil || none == nil || got.Error() != none.Error() {
				t.Errorf("%s@%s by a non-party: %v; for no referral: %v", name, st, got, none)
				continue
			}
			same++
		}
	}
	t.Logf("non-party commands: %d tried, %d refused exactly as for a referral that does not exist", tried, same)
}
