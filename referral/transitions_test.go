package referral_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/referral"
)

// States of the transition tables, each reached by a real sequence of
// events on a referral of one placement p1 whose candidates are D, A, B.
// In every state D has declined p1 and A holds (or held) the latest offer.
var stateNames = []string{
	"none", "requested", "planned", "offered", "accepted", "in_progress", "on_hold",
	"completed", "declined", "expired", "exhausted", "failed", "cancelled", "erased",
}

// fixture builds the named state.
func fixture(t testing.TB, name string) *harness {
	t.Helper()
	h := newHarness(t)
	if name == "none" {
		return h
	}
	h.by(referrer, requested(true))
	switch name {
	case "requested":
		return h
	case "planned": // plan recorded, first offer not yet made
		h.routing(plan1())
		return h
	}
	h.plan(plan1())                                                   // offer 1 to D
	h.by(orgD, &events.Declined{Placement: "p1", Reason: "capacity"}) // offer 2 to A
	switch name {
	case "offered":
		return h
	case "declined": // A's decline recorded, next offer not yet made
		h.raw(orgA, &events.Declined{Placement: "p1", Reason: "out_of_scope"})
		return h
	case "expired": // A's offer expired, next offer not yet made
		h.routing(&events.Expired{Placement: "p1", Service: orgA + ".main", Deadline: h.placement("p1").Offer.Deadline})
		return h
	case "exhausted", "failed":
		h.by(orgA, &events.Declined{Placement: "p1", Reason: "capacity"}) // offer 3 to B
		h.raw(orgB, &events.Declined{Placement: "p1", Reason: "language"})
		if name == "failed" {
			h.routing(referral.Pending(h.s, h.now, h.d)...) // unmatched
		}
		return h
	}
	h.by(orgA, &events.Accepted{Placement: "p1"})
	switch name {
	case "in_progress":
		h.by(orgA, &events.Contacted{Placement: "p1"})
	case "on_hold":
		h.by(orgA, &events.OnHold{Placement: "p1"})
	case "completed":
		h.by(orgA, &events.Contacted{Placement: "p1"})
		h.by(orgA, &events.Completed{Placement: "p1", Outcome: "supported"})
	case "cancelled":
		h.by(referrer, &events.Withdrawn{Reason: "victim_request"})
	case "erased":
		h.by(referrer, &events.Erase{Reason: "victim_request"})
	}
	return h
}

// summary is "<p1 status>/<referral status>".
func summary(s referral.State) string {
	ps := "-"
	if p, ok := s.Placement("p1"); ok {
		ps = string(p.Status)
	}
	return ps + "/" + string(s.Status)
}

func TestFixtures(t *testing.T) {
	t.Parallel()
	want := map[string]string{
		"none": "-/", "requested": "-/requested", "planned": "planned/planned", "offered": "offered/planned",
		"accepted": "accepted/in_progress", "in_progress": "in_progress/in_progress", "on_hold": "on_hold/in_progress",
		"completed": "completed/completed", "declined": "declined/planned", "expired": "expired/planned",
		"exhausted": "declined/planned", "failed": "failed/failed", "cancelled": "cancelled/cancelled", "erased": "-/erased",
	}
	for _, name := range stateNames {
		h := fixture(t, name)
		if got := summary(h.s); got != want[name] {
			t.Errorf("fixture %s: %s, want %s", name, got, want[name])
		}
		h.checkFold()
	}
}

type actorCase struct {
	name   string
	by     referral.Actor
	source string
}

// The actor kinds of the tables: the referrer, A (the organisation holding
// or having held the latest offer, the accepting one once accepted), D (an
// organisation that declined p1), X (an organisation with no part in the
// referral) and a coordinator.
var actorCases = []actorCase{
	{"referrer", referral.Actor{Org: referrer}, src(referrer)},
	{"A", referral.Actor{Org: orgA}, src(orgA)},
	{"D", referral.Actor{Org: orgD}, src(orgD)},
	{"X", referral.Actor{Org: orgX}, src(orgX)},
	{"coordinator", referral.Actor{Coordinator: true}, srcCoordinator},
}

var letter = map[string]byte{
	"ok": '.', referral.CodeForbidden: 'F', referral.CodeConflict: 'C', referral.CodeNotFound: 'N',
	referral.CodeErased: 'E', referral.CodeInvalid: 'I', referral.CodeDuplicate: 'D',
}

// commandPayloads are the commands of the tables, by name. The routing
// service's own event types are tried as commands too.
func commandPayload(h *harness, name string) events.Payload {
	switch name {
	case "requested":
		return requested(true)
	case "accepted":
		return &events.Accepted{Placement: "p1"}
	case "declined":
		return &events.Declined{Placement: "p1", Reason: "capacity"}
	case "handover":
		return handover("p1")
	case "contacted":
		return &events.Contacted{Placement: "p1"}
	case "on_hold":
		return &events.OnHold{Placement: "p1"}
	case "completed":
		return &events.Completed{Placement: "p1", Outcome: "supported"}
	case "withdrawn":
		return &events.Withdrawn{Reason: "victim_request"}
	case "erase":
		return &events.Erase{Reason: "victim_request"}
	case "feedback_p":
		return feedback("p1")
	case "feedback_r":
		return feedback("")
	case "planned":
		return plan1()
	case "offered":
		return &events.Offered{Placement: "p1", Service: orgB + ".main", Organisation: orgB, Referrer: referrer,
			Needs: bothNeeds, Attempt: 3, Deadline: h.now.Add(h.d.Urgent), Profile: profile(events.UrgencyUrgent)}
	case "expired":
		return &events.Expired{Placement: "p1", Service: orgA + ".main", Deadline: h.now}
	case "unmatched":
		return &events.Unmatched{Placement: "p1", Needs: bothNeeds, Reason: "all_declined", Profile: profile(events.UrgencyUrgent)}
	case "erased":
		return &events.Erased{Country: "pt", Needs: bothNeeds, Outcome: "open", RequestedOn: "2025-03-03", ErasedOn: "2025-03-03"}
	}
	panic("unknown command " + name)
}

// commandTable: for each command, the expected result in each state for
// the actors referrer, A, D, X, coordinator ('.' accepted, F forbidden,
// C conflict, N not found, E erased). An organisation that is not a party
// (X always; A and D until they are offered the placement; every
// organisation once the referral is erased, since erasure forgets the
// parties) gets N, the answer for a referral that does not exist: a
// rejection tells it nothing about the referral or its placements.
var commandTable = map[string]map[string]string{
	"requested": {
		"none": "....F", "requested": "CCCCC", "planned": "CCCCC", "offered": "CCCCC", "accepted": "CCCCC",
		"in_progress": "CCCCC", "on_hold": "CCCCC", "completed": "CCCCC", "declined": "CCCCC", "expired": "CCCCC",
		"exhausted": "CCCCC", "failed": "CCCCC", "cancelled": "CCCCC", "erased": "CCCCE",
	},
	"accepted": {
		"none": "NNNNN", "requested": "NNNNF", "planned": "FNNNF", "offered": "F.CNF", "accepted": "FCCNF",
		"in_progress": "FCCNF", "on_hold": "FCCNF", "completed": "FCCNF", "declined": "FCCNF", "expired": "FCCNF",
		"exhausted": "FCCNF", "failed": "FCCNF", "cancelled": "FCCNF", "erased": "NNNNE",
	},
	"handover": {
		"none": "NNNNN", "requested": "NNNNF", "planned": "CNNNF", "offered": "CFFNF", "accepted": ".FFNF",
		"in_progress": ".FFNF", "on_hold": ".FFNF", "completed": "CFFNF", "declined": "CFFNF", "expired": "CFFNF",
		"exhausted": "CFFNF", "failed": "CFFNF", "cancelled": "CFFNF", "erased": "NNNNE",
	},
	"contacted": {
		"none": "NNNNN", "requested": "NNNNF", "planned": "FNNNF", "offered": "FCFNF", "accepted": "F.FNF",
		"in_progress": "FCFNF", "on_hold": "F.FNF", "completed": "FCFNF", "declined": "FFFNF", "expired": "FFFNF",
		"exhausted": "FFFNF", "failed": "FFFNF", "cancelled": "FCFNF", "erased": "NNNNE",
	},
	"on_hold": {
		"none": "NNNNN", "requested": "NNNNF", "planned": "FNNNF", "offered": "FCFNF", "accepted": "F.FNF",
		"in_progress": "F.FNF", "on_hold": "F.FNF", "completed": "FCFNF", "declined": "FFFNF", "expired": "FFFNF",
		"exhausted": "FFFNF", "failed": "FFFNF", "cancelled": "FCFNF", "erased": "NNNNE",
	},
	"withdrawn": {
		"none": "NNNNN", "requested": ".NNNF", "planned": ".NNNF", "offered": ".FFNF", "accepted": ".FFNF",
		"in_progress": ".FFNF", "on_hold": ".FFNF", "completed": "CFFNF", "declined": ".FFNF", "expired": ".FFNF",
		"exhausted": ".FFNF", "failed": "CFFNF", "cancelled": "CFFNF", "erased": "NNNNE",
	},
	"erase": {
		"none": "NNNNN", "requested": ".NNN.", "planned": ".NNN.", "offered": ".FFN.", "accepted": ".FFN.",
		"in_progress": ".FFN.", "on_hold": ".FFN.", "completed": ".FFN.", "declined": ".FFN.", "expired": ".FFN.",
		"exhausted": ".FFN.", "failed": ".FFN.", "cancelled": ".FFN.", "erased": "NNNNE",
	},
	"feedback_p": {
		"none": "NNNNN", "requested": "NNNNF", "planned": "CNNNF", "offered": "CFFNF", "accepted": "..FNF",
		"in_progress": "..FNF", "on_hold": "..FNF", "completed": "..FNF", "declined": "CFFNF", "expired": "CFFNF",
		"exhausted": "CFFNF", "failed": "CFFNF", "cancelled": "..FNF", "erased": "NNNNE",
	},
	"feedback_r": {
		"none": "NNNNN", "requested": ".NNNF", "planned": ".NNNF", "offered": ".FFNF", "accepted": ".FFNF",
		"in_progress": ".FFNF", "on_hold": ".FFNF", "completed": ".FFNF", "declined": ".FFNF", "expired": ".FFNF",
		"exhausted": ".FFNF", "failed": ".FFNF", "cancelled": ".FFNF", "erased": "NNNNE",
	},
}

// outcomes: for each allowed command@state, "<p1>/<referral> <routing
// events the decision adds>". A decision also owes what the state owed
// before (the "healing" of a crash between two appends): feedback on a
// declined placement brings its next offer.
var outcomes = map[string]string{
	"requested@none":         "-/requested ",
	"accepted@offered":       "accepted/in_progress ",
	"declined@offered":       "offered/planned offered",
	"handover@accepted":      "accepted/in_progress ",
	"handover@in_progress":   "in_progress/in_progress ",
	"handover@on_hold":       "on_hold/in_progress ",
	"contacted@accepted":     "in_progress/in_progress ",
	"contacted@on_hold":      "in_progress/in_progress ",
	"on_hold@accepted":       "on_hold/in_progress ",
	"on_hold@in_progress":    "on_hold/in_progress ",
	"on_hold@on_hold":        "on_hold/in_progress ",
	"completed@accepted":     "completed/completed ",
	"completed@in_progress":  "completed/completed ",
	"completed@on_hold":      "completed/completed ",
	"withdrawn@requested":    "-/cancelled ",
	"withdrawn@planned":      "cancelled/cancelled ",
	"withdrawn@offered":      "cancelled/cancelled ",
	"withdrawn@accepted":     "cancelled/cancelled ",
	"withdrawn@in_progress":  "cancelled/cancelled ",
	"withdrawn@on_hold":      "cancelled/cancelled ",
	"withdrawn@declined":     "cancelled/cancelled ",
	"withdrawn@expired":      "cancelled/cancelled ",
	"withdrawn@exhausted":    "cancelled/cancelled ",
	"feedback_p@accepted":    "accepted/in_progress ",
	"feedback_p@in_progress": "in_progress/in_progress ",
	"feedback_p@on_hold":     "on_hold/in_progress ",
	"feedback_p@completed":   "completed/completed ",
	"feedback_p@cancelled":   "cancelled/cancelled ",
	"feedback_r@requested":   "-/requested ",
	"feedback_r@planned":     "offered/planned offered",
	"feedback_r@offered":     "offered/planned ",
	"feedback_r@accepted":    "accepted/in_progress ",
	"feedback_r@in_progress": "in_progress/in_progress ",
	"feedback_r@on_hold":     "on_hold/in_progress ",
	"feedback_r@completed":   "completed/completed ",
	"feedback_r@declined":    "offered/planned offered",
	"feedback_r@expired":     "offered/planned offered",
	"feedback_r@exhausted":   "failed/failed unmatched",
	"feedback_r@failed":      "failed/failed ",
	"feedback_r@cancelled":   "cancelled/cancelled ",
}

func init() {
	// declined and completed share the rows of accepted and on_hold.
	commandTable["declined"] = commandTable["accepted"]
	commandTable["completed"] = commandTable["on_hold"]
	// The routing service's own event types are forbidden as commands,
	// whoever sends them, in every state.
	for _, typ := range []string{"planned", "offered", "expired", "unmatched", "erased"} {
		row := map[string]string{}
		for _, st := range stateNames {
			row[st] = "FFFFF"
		}
		commandTable[typ] = row
	}
	for _, st := range stateNames {
		if st != "none" && st != "erased" {
			outcomes["erase@"+st] = "-/erased erased"
		}
	}
}

// TestCommandTransitions tries every command in every state from every
// actor kind, through Decide, and for organisations also through Apply
// (which must agree: a recorded command is checked again when folded).
func TestCommandTransitions(t *testing.T) {
	t.Parallel()
	fixtures := map[string]*harness{}
	for _, st := range stateNames {
		fixtures[st] = fixture(t, st)
	}
	for cmdName, row := range commandTable {
		for _, st := range stateNames {
			want := row[st]
			if len(want) != len(actorCases) {
				t.Fatalf("%s@%s: table row %q", cmdName, st, want)
			}
			for ai, ac := range actorCases {
				t.Run(fmt.Sprintf("%s@%s/%s", cmdName, st, ac.name), func(t *testing.T) {
					h := fixtures[st].clone()
					h.t = t
					before := snapshot(t, h.s)
					p := commandPayload(h, cmdName)
					cmd := h.envelope(ac.source, p)

					dec, err := referral.Decide(h.s, cmd, ac.by, h.now, h.d)
					if got := letter[codeOf(err)]; got != want[ai] {
						t.Fatalf("Decide: %q (%v), want %q", got, err, want[ai])
					}
					if snapshot(t, h.s) != before {
						t.Fatal("Decide modified its input")
					}
					var e *referral.Error
					if err != nil && (!errors.As(err, &e) || e.Message == "") {
						t.Fatalf("error %v is not a *referral.Error with a message", err)
					}

					if ac.by.Org != "" && cmdName != "erase" {
						_, aerr := referral.Apply(h.s, cmd)
						if codeOf(aerr) != codeOf(err) {
							t.Fatalf("Apply disagrees with Decide: %v vs %v", aerr, err)
						}
						if snapshot(t, h.s) != before {
							t.Fatal("Apply modified its input")
						}
					}
					if err != nil {
						return
					}
					h.record(cmd, dec)
					key := cmdName + "@" + st
					wantOut, ok := outcomes[key]
					if !ok {
						t.Fatalf("no expected outcome for %s", key)
					}
					if got := summary(h.s) + " " + types(dec.Events); got != wantOut {
						t.Fatalf("after %s: %q, want %q", key, got, wantOut)
					}
					h.checkFold()
				})
			}
		}
	}
}

// routingTable: each routing-service event applied with the routing
// source in each state.
var routingTable = map[string]string{
	//            none requested planned offered accepted in_progress on_hold completed declined expired exhausted failed cancelled erased
	"planned":   "N.CCCCCCCCCCCE",
	"offered":   "NN.CCCCC..CCCE",
	"expired":   "NNC.CCCCCCCCCE",
	"unmatched": "NNCCCCCCCC.CCE",
	"erased":    ".............E",
}

// routingEvent builds the event to try in h's state: the offer goes to the
// candidate Pending would pick (B when there is none), the expiry to the
// latest offer.
func routingEvent(h *harness, name string) events.Payload {
	pl, _ := h.s.Placement("p1")
	switch name {
	case "offered":
		for _, p := range referral.Pending(h.s, h.now, h.d) {
			if o, ok := p.(*events.Offered); ok && o.Placement == "p1" {
				return o
			}
		}
		o := commandPayload(h, "offered").(*events.Offered)
		o.Attempt = pl.Attempt + 1
		return o
	case "expired":
		svc := pl.Offer.Service
		if svc == "" {
			svc = orgD + ".main"
		}
		return &events.Expired{Placement: "p1", Service: svc, Deadline: h.now}
	}
	return commandPayload(h, name)
}

func TestRoutingEventTransitions(t *testing.T) {
	t.Parallel()
	for name, row := range routingTable {
		for si, st := range stateNames {
			t.Run(name+"@"+st, func(t *testing.T) {
				t.Parallel()
				h := fixture(t, st)
				before := snapshot(t, h.s)
				env := h.envelope(events.SourceRouting, routingEvent(h, name))
				s, err := referral.Apply(h.s, env)
				if got := letter[codeOf(err)]; got != row[si] {
					t.Fatalf("Apply: %q (%v), want %q", got, err, row[si])
				}
				if snapshot(t, h.s) != before {
					t.Fatal("Apply modified its input")
				}
				if err != nil {
					if snapshot(t, s) != before {
						t.Fatal("Apply returned a changed state with an error")
					}
					return
				}
				// Written by an organisation, the same event is forbidden.
				forged := h.envelope(src(orgA), routingEvent(h, name))
				if _, err := referral.Apply(h.s, forged); !errors.Is(err, referral.ErrForbidden) {
					t.Fatalf("forged %s from an organisation: %v, want forbidden", name, err)
				}
			})
		}
	}
}

func TestOrganisationEventsNeedTheirSource(t *testing.T) {
	t.Parallel()
	h := fixture(t, "offered")
	for _, p := range []events.Payload{
		&events.Accepted{Placement: "p1"}, &events.Declined{Placement: "p1", Reason: "capacity"},
		&events.Withdrawn{Reason: "error"}, feedback(""),
	} {
		if _, err := referral.Apply(h.s, h.envelope(events.SourceRouting, p)); !errors.Is(err, referral.ErrForbidden) {
			t.Errorf("%s with the routing source: %v, want forbidden", p.EventType(), err)
		}
	}
	if _, err := referral.Apply(h.s, h.envelope(src(referrer), &events.Erase{Reason: "error"})); !errors.Is(err, referral.ErrInvalid) {
		t.Errorf("Apply(erase): %v, want invalid: only referral.erased is recorded", err)
	}
	if _, err := referral.Apply(h.s, h.envelope(srcCoordinator, &events.Accepted{Placement: "p1"})); !errors.Is(err, referral.ErrInvalid) {
		t.Errorf("Apply from an unknown source: %v, want invalid", err)
	}
}

func TestDecideRejectsForgedAndMalformedCommands(t *testing.T) {
	t.Parallel()
	h := fixture(t, "offered")
	cases := []struct {
		name string
		by   referral.Actor
		cmd  *events.Envelope
		want error
		ptr  string
	}{
		{"source of another organisation", referral.Actor{Org: orgX}, h.envelope(src(orgA), &events.Accepted{Placement: "p1"}), referral.ErrForbidden, "/source"},
		{"no actor", referral.Actor{}, h.envelope(src(orgA), &events.Accepted{Placement: "p1"}), referral.ErrForbidden, "/source"},
		{"unknown placement", referral.Actor{Org: orgA}, h.envelope(src(orgA), &events.Accepted{Placement: "p9"}), referral.ErrNotFound, "/data/placement"},
		{"routing event as command", referral.Actor{Org: orgA}, h.envelope(src(orgA), plan1()), referral.ErrForbidden, "/type"},
		{"nil", referral.Actor{Org: orgA}, nil, referral.ErrInvalid, ""},
	}
	// A command about another referral.
	other, err := events.New(src(orgA), "01956a2e-7c00-7000-8000-0000000000ff", &events.Accepted{Placement: "p1"}, events.WithID("other-1"))
	if err != nil {
		t.Fatal(err)
	}
	cases = append(cases, struct {
		name string
		by   referral.Actor
		cmd  *events.Envelope
		want error
		ptr  string
	}{"subject of another referral", referral.Actor{Org: orgA}, &events.Envelope{Event: other, Payload: &events.Accepted{Placement: "p1"}}, referral.ErrInvalid, "/subject"})
	// An event that is not about a referral.
	capEvent, err := events.New(src(orgA), orgA+".main", &events.CapacityUpdated{Service: orgA + ".main", Status: "full"}, events.WithID("cap-1"))
	if err != nil {
		t.Fatal(err)
	}
	cases = append(cases, struct {
		name string
		by   referral.Actor
		cmd  *events.Envelope
		want error
		ptr  string
	}{"not a referral command", referral.Actor{Org: orgA}, &events.Envelope{Event: capEvent, Payload: &events.CapacityUpdated{Service: orgA + ".main", Status: "full"}}, referral.ErrInvalid, "/type"})
	// A type attribute that does not match the payload.
	mismatch := h.envelope(src(orgA), &events.Accepted{Placement: "p1"})
	mismatch.Payload = &events.Declined{Placement: "p1", Reason: "capacity"}
	cases = append(cases, struct {
		name string
		by   referral.Actor
		cmd  *events.Envelope
		want error
		ptr  string
	}{"type mismatch", referral.Actor{Org: orgA}, mismatch, referral.ErrInvalid, "/type"})

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := referral.Decide(h.s, tc.cmd, tc.by, h.now, h.d)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Decide: %v, want %v", err, tc.want)
			}
			var e *referral.Error
			if !errors.As(err, &e) || e.Pointer != tc.ptr {
				t.Fatalf("pointer %q, want %q", e.Pointer, tc.ptr)
			}
			if p := e.Problem(); p.Code != e.Code || p.Message == "" {
				t.Fatalf("Problem() = %+v", p)
			}
		})
	}
}

func TestHandoverNeedsConsentToShareData(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.by(referrer, requested(false))
	h.plan(plan1())
	h.by(orgD, &events.Accepted{Placement: "p1"})
	_, err := h.send(referral.Actor{Org: referrer}, src(referrer), handover("p1"))
	if !errors.Is(err, referral.ErrForbidden) || !strings.Contains(err.Error(), "consent") {
		t.Fatalf("handover without consent to share: %v, want forbidden (consent)", err)
	}
	if p := h.placement("p1"); p.Handovers != 0 {
		t.Fatalf("handovers = %d after a rejected handover", p.Handovers)
	}
}

// TestErasedRejectsEverything: after erasure every command and every
// event is rejected, whoever sends it; only the erase command itself, sent
// again, is a harmless duplicate.
func TestErasedRejectsEverything(t *testing.T) {
	t.Parallel()
	h := fixture(t, "accepted")
	eraseCmd := h.envelope(src(referrer), &events.Erase{Reason: "victim_request"})
	dec, err := referral.Decide(h.s, eraseCmd, referral.Actor{Org: referrer}, h.now, h.d)
	if err != nil {
		t.Fatal(err)
	}
	erased := dec.Events[0].(*events.Erased)
	want := events.Erased{Country: "pt", Region: "PT17", Needs: bothNeeds, Outcome: "open", RequestedOn: "2025-03-03", ErasedOn: "2025-03-03"}
	if fmt.Sprint(*erased) != fmt.Sprint(want) {
		t.Fatalf("erased = %+v, want %+v", *erased, want)
	}
	if err := events.ValidatePayload(erased); err != nil {
		t.Fatalf("erased payload is invalid: %v", err)
	}
	if !dec.Erase || dec.Record || len(dec.Events) != 1 {
		t.Fatalf("decision %+v, want Erase with only the erased event", dec)
	}
	h.record(eraseCmd, dec)
	if len(h.log) != 1 || h.s.Status != referral.StatusErased || h.s.Referrer != "" || len(h.s.Placements) != 0 || len(h.s.Profile.Needs) != 0 {
		t.Fatalf("erased state keeps case data: %+v", h.s)
	}
	if h.s.Version != 1 || h.s.Erasure == nil || h.s.Erasure.Outcome != "open" {
		t.Fatalf("erased state: %+v", h.s)
	}
	h.checkFold()

	for cmdName := range commandTable {
		for _, ac := range actorCases {
			_, err := referral.Decide(h.s, h.envelope(ac.source, commandPayload(h, cmdName)), ac.by, h.now, h.d)
			if err == nil {
				t.Errorf("%s by %s accepted after erasure", cmdName, ac.name)
			}
			// A coordinator is told the referral was erased; an
			// organisation, like any non-party, that it does not exist (or,
			// requesting it again, that the id is taken).
			want := referral.ErrErased
			switch {
			case ac.by.Coordinator:
			case cmdName == "requested":
				want = referral.ErrConflict
			default:
				want = referral.ErrNotFound
			}
			if isRouting := routingTable[cmdName] != ""; !isRouting && !errors.Is(err, want) {
				t.Errorf("%s by %s after erasure: %v, want %v", cmdName, ac.name, err, want)
			}
		}
	}
	for name := range routingTable {
		if _, err := referral.Apply(h.s, h.envelope(events.SourceRouting, routingEvent(h, name))); !errors.Is(err, referral.ErrErased) {
			t.Errorf("%s after erasure: %v, want erased", name, err)
		}
	}
	if out, err := referral.OnTimer(h.s, "p1", 2, h.now.Add(24*time.Hour), h.d); err != nil || out != nil {
		t.Errorf("timer after erasure: %v, %v; want nothing", out, err)
	}
	if p := referral.Pending(h.s, h.now, h.d); p != nil {
		t.Errorf("Pending after erasure: %v", types(p))
	}
	// The same erase command delivered again is a duplicate (success).
	if _, err := referral.Decide(h.s, eraseCmd, referral.Actor{Org: referrer}, h.now, h.d); !errors.Is(err, referral.ErrDuplicate) {
		t.Errorf("re-sent erase: %v, want duplicate", err)
	}
}
