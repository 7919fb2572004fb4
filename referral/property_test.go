package referral_test

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"pgregory.net/rapid"

	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/referral"
)

// model drives a referral with random commands, timers and raw routing
// events, and checks after every step that the state is one the lifecycle
// allows, whatever was accepted or rejected on the way.
type model struct {
	rt       *rapid.T
	s        referral.State
	log      []*events.Envelope
	sent     []*events.Envelope // commands sent, to send again
	now      time.Time
	seq      int
	d        referral.Deadlines
	accepted map[string]string // placement -> the first organisation that accepted it
	erased   bool
}

var (
	propOrgs   = []string{"pt.org-1", "pt.org-2", "pt.org-3", "pt.org-4"}
	propOutsid = "pt.outsider"
	propRef    = "pt.ref"
)

// envelope builds an event cheaply with sdk-go (the payloads are
// validated separately where the state machine produces them).
func (m *model) envelope(source string, p events.Payload, correlation string) *events.Envelope {
	m.seq++
	e := event.New()
	e.SetID(fmt.Sprintf("p-%05d", m.seq))
	e.SetSource(source)
	e.SetType(p.EventType())
	e.SetSubject(refID)
	e.SetTime(m.now)
	if correlation != "" {
		e.SetExtension(events.ExtCorrelationID, correlation)
	}
	return &events.Envelope{Event: e, Payload: p}
}

// apply applies env, checking purity and the recipients of the event; it
// reports whether the event was accepted.
func (m *model) apply(env *events.Envelope) bool {
	before := snapshot(m.rt, m.s)
	next, err := referral.Apply(m.s, env)
	if snapshot(m.rt, m.s) != before {
		m.rt.Fatalf("Apply(%s) modified its input", env.Event.Type())
	}
	if err != nil {
		if snapshot(m.rt, next) != before {
			m.rt.Fatalf("Apply(%s) returned a changed state with error %v", env.Event.Type(), err)
		}
		if referral.CodeOf(err) == "" {
			m.rt.Fatalf("untyped error %v", err)
		}
		return false
	}
	if m.erased {
		m.rt.Fatalf("%s applied after erasure", env.Event.Type())
	}
	m.checkRecipients(m.s, env.Payload)
	m.s = next
	m.log = append(m.log, env)
	m.check()
	return true
}

// routing applies events the state machine produced; they must be valid
// payloads and must all apply.
func (m *model) routing(ps []events.Payload, correlation string) {
	for _, p := range ps {
		if err := events.ValidatePayload(p); err != nil {
			m.rt.Fatalf("produced an invalid %s: %v", p.EventType(), err)
		}
		if !m.apply(m.envelope(events.SourceRouting, p, correlation)) {
			m.rt.Fatalf("produced %s that does not apply", p.EventType())
		}
	}
}

func (m *model) placementIDs() []string {
	ids := []string{"zz"}
	for _, p := range m.s.Placements {
		ids = append(ids, p.ID)
	}
	return ids
}

func (m *model) randomPlan() *events.Planned {
	plan := &events.Planned{DirectoryRevision: 1}
	groups := rapid.IntRange(0, 3).Draw(m.rt, "groups")
	for g := range groups {
		need := events.Needs[g]
		pg := events.PlanGroup{Placement: fmt.Sprintf("p%d", g+1), Needs: []string{need}}
		n := rapid.IntRange(1, 4).Draw(m.rt, "candidates")
		for c := range n {
			org := rapid.SampledFrom(propOrgs).Draw(m.rt, "candidate")
			cand := candidate(org, need)
			cand.Service = fmt.Sprintf("%s.s%d", org, c)
			pg.Candidates = append(pg.Candidates, cand)
		}
		plan.Groups = append(plan.Groups, pg)
	}
	if groups == 0 || rapid.Bool().Draw(m.rt, "gaps") {
		plan.Unmatched = append(plan.Unmatched, events.UnmatchedNeed{Need: events.Needs[10], Reason: rapid.SampledFrom([]string{"no_service", "excluded"}).Draw(m.rt, "reason")})
	}
	return plan
}

func (m *model) randomCommand() (events.Payload, referral.Actor, string) {
	kind := rapid.SampledFrom([]string{
		"requested", "accepted", "accepted", "declined", "declined", "handover", "contacted", "on_hold",
		"completed", "completed", "withdrawn", "erase", "feedback", "feedback_r", "offered", "planned",
	}).Draw(m.rt, "command")
	pl := rapid.SampledFrom(m.placementIDs()).Draw(m.rt, "placement")
	var p events.Payload
	switch kind {
	case "requested":
		r := requested(rapid.Bool().Draw(m.rt, "share"), events.Needs[0], events.Needs[1], events.Needs[2], events.Needs[10])
		r.Urgency = rapid.SampledFrom(events.Urgencies).Draw(m.rt, "urgency")
		p = r
	case "accepted":
		p = &events.Accepted{Placement: pl}
	case "declined":
		p = &events.Declined{Placement: pl, Reason: "capacity"}
	case "handover":
		p = handover(pl)
	case "contacted":
		p = &events.Contacted{Placement: pl}
	case "on_hold":
		p = &events.OnHold{Placement: pl}
	case "completed":
		p = &events.Completed{Placement: pl, Outcome: rapid.SampledFrom([]string{"supported", "not_supported", "unable_to_contact"}).Draw(m.rt, "outcome")}
	case "withdrawn":
		p = &events.Withdrawn{Reason: "victim_request"}
	case "erase":
		p = &events.Erase{Reason: "victim_request"}
	case "feedback":
		p = feedback(pl)
	case "feedback_r":
		p = feedback("")
	case "offered":
		p = m.randomOffer(pl)
	case "planned":
		p = m.randomPlan()
	}
	who := rapid.IntRange(0, len(propOrgs)+2).Draw(m.rt, "actor")
	switch {
	case who == 0:
		return p, referral.Actor{Org: propRef}, src(propRef)
	case who <= len(propOrgs):
		org := propOrgs[who-1]
		return p, referral.Actor{Org: org}, src(org)
	case who == len(propOrgs)+1:
		return p, referral.Actor{Org: propOutsid}, src(propOutsid)
	}
	return p, referral.Actor{Coordinator: true}, srcCoordinator
}

// randomOffer offers pl mostly to one of its own candidates, with the
// right attempt number, so that the rules about who may be offered
// (never an organisation that refused) are what decides.
func (m *model) randomOffer(pl string) *events.Offered {
	org := rapid.SampledFrom(append([]string{propOutsid}, propOrgs...)).Draw(m.rt, "offer org")
	svc := fmt.Sprintf("%s.s%d", org, rapid.IntRange(0, 3).Draw(m.rt, "offer svc"))
	attempt := rapid.IntRange(1, 5).Draw(m.rt, "offer attempt")
	var needs []string
	if p, ok := m.s.Placement(pl); ok {
		needs = p.Needs
		if rapid.IntRange(0, 3).Draw(m.rt, "own candidate") > 0 {
			c := rapid.SampledFrom(p.Candidates).Draw(m.rt, "offer candidate")
			org, svc, attempt = c.Organisation, c.Service, p.Attempt+1
		}
	}
	return &events.Offered{Placement: pl, Service: svc, Organisation: org, Referrer: m.s.Referrer, Needs: needs,
		Attempt: attempt, Deadline: m.now.Add(time.Hour), Profile: m.s.Profile}
}

func (m *model) step() {
	switch rapid.IntRange(0, 9).Draw(m.rt, "action") {
	case 0, 1, 2, 3, 4: // a command, sometimes one sent before
		var cmd *events.Envelope
		var by referral.Actor
		if len(m.sent) > 0 && rapid.IntRange(0, 9).Draw(m.rt, "resend") == 0 {
			cmd = rapid.SampledFrom(m.sent).Draw(m.rt, "again")
			org, ok := events.OrgOfSource(cmd.Event.Source())
			by = referral.Actor{Org: org, Coordinator: !ok}
		} else {
			var p events.Payload
			var source string
			p, by, source = m.randomCommand()
			cmd = m.envelope(source, p, "")
			m.sent = append(m.sent, cmd)
		}
		before := snapshot(m.rt, m.s)
		dec, err := referral.Decide(m.s, cmd, by, m.now, m.d)
		if snapshot(m.rt, m.s) != before {
			m.rt.Fatalf("Decide modified its input")
		}
		if m.erased && err == nil {
			m.rt.Fatalf("%s accepted after erasure", cmd.Event.Type())
		}
		if err != nil {
			if referral.CodeOf(err) == "" {
				m.rt.Fatalf("untyped error %v", err)
			}
			return
		}
		if dec.Erase {
			m.checkRecipients(m.s, dec.Events[0])
			m.log = nil
			m.s = referral.State{} // what remains after the purge is only the erased event
			m.routing(dec.Events, cmd.Event.ID())
			m.erased = true
			return
		}
		if !m.apply(cmd) {
			m.rt.Fatalf("decided %s does not apply", cmd.Event.Type())
		}
		m.routing(dec.Events, cmd.Event.ID())
	case 5: // the routing service plans
		if m.s.Status == referral.StatusRequested {
			m.apply(m.envelope(events.SourceRouting, m.randomPlan(), ""))
			m.routing(referral.OffersAfterPlan(m.s, m.now, m.d), "")
		}
	case 6: // a timer fires, maybe stale, maybe early
		pl := rapid.SampledFrom(m.placementIDs()).Draw(m.rt, "timer placement")
		attempt := rapid.IntRange(0, 5).Draw(m.rt, "timer attempt")
		if p, ok := m.s.Placement(pl); ok && p.Offer.Attempt > 0 {
			m.now = p.Offer.Deadline.Add(time.Duration(rapid.IntRange(-2, 5).Draw(m.rt, "late")) * time.Minute)
		}
		out, err := referral.OnTimer(m.s, pl, attempt, m.now, m.d)
		if err == nil {
			m.routing(out, "")
		}
	case 7: // a raw routing event, possibly wrong
		pl := rapid.SampledFrom(m.placementIDs()).Draw(m.rt, "raw placement")
		var p events.Payload
		switch rapid.IntRange(0, 3).Draw(m.rt, "raw kind") {
		case 0:
			p = m.randomOffer(pl)
		case 1:
			svc := rapid.SampledFrom(propOrgs).Draw(m.rt, "raw svc org") + ".s0"
			if cur, ok := m.s.Placement(pl); ok && rapid.Bool().Draw(m.rt, "current") {
				svc = cur.Offer.Service
			}
			p = &events.Expired{Placement: pl, Service: svc, Deadline: m.now}
		case 2:
			p = &events.Unmatched{Placement: pl, Needs: []string{events.Needs[0]}, Reason: "all_declined"}
		case 3:
			p = &events.Unmatched{Needs: []string{events.Needs[10]}, Reason: rapid.SampledFrom([]string{"no_service", "excluded"}).Draw(m.rt, "gap reason")}
		}
		m.apply(m.envelope(events.SourceRouting, p, ""))
	case 8: // what the state owes, as after a restart
		m.routing(referral.Pending(m.s, m.now, m.d), "")
	case 9:
		m.now = m.now.Add(time.Duration(rapid.IntRange(1, 600).Draw(m.rt, "minutes")) * time.Minute)
	}
}

// check asserts the invariants of the lifecycle on the current state.
func (m *model) check() {
	s := m.s
	if m.erased || s.Status == referral.StatusErased {
		if s.Status != referral.StatusErased || len(s.Placements) != 0 || s.Referrer != "" || len(s.Profile.Needs) != 0 || s.Erasure == nil {
			m.rt.Fatalf("erased state keeps data: %+v", s)
		}
		return
	}
	open := 0
	for _, p := range s.Placements {
		seen := map[string]bool{}
		for _, r := range p.Refusals {
			if seen[r.Organisation] {
				m.rt.Fatalf("placement %s: %s refused twice, so it was offered again", p.ID, r.Organisation)
			}
			seen[r.Organisation] = true
		}
		if p.Status == referral.PlacementOffered && (seen[p.Offer.Organisation] || p.Offer.Attempt != p.Attempt) {
			m.rt.Fatalf("placement %s offered to %s (attempt %d of %d) which refused it", p.ID, p.Offer.Organisation, p.Offer.Attempt, p.Attempt)
		}
		if n := len(p.Refusals); p.Attempt < n || p.Attempt > n+1 || p.Next > len(p.Candidates) {
			m.rt.Fatalf("placement %s: %d attempts, %d refusals, next %d", p.ID, p.Attempt, n, p.Next)
		}
		if first, ok := m.accepted[p.ID]; ok && p.AcceptedBy != first {
			m.rt.Fatalf("placement %s accepted by %s, then by %s", p.ID, first, p.AcceptedBy)
		}
		if p.AcceptedBy != "" {
			m.accepted[p.ID] = p.AcceptedBy
			if p.AcceptedBy != p.Offer.Organisation || seen[p.AcceptedBy] {
				m.rt.Fatalf("placement %s accepted by %s, not its open offer's organisation %s", p.ID, p.AcceptedBy, p.Offer.Organisation)
			}
		}
		if (p.Status.Active() || p.Status == referral.PlacementCompleted) && p.AcceptedBy == "" {
			m.rt.Fatalf("placement %s is %s without an accepting organisation", p.ID, p.Status)
		}
		if !p.Status.Closed() {
			open++
		}
	}
	if s.Status.Closed() && open > 0 {
		m.rt.Fatalf("referral %s with %d open placements", s.Status, open)
	}
	if (s.Status == referral.StatusPlanned || s.Status == referral.StatusInProgress) && open == 0 {
		m.rt.Fatalf("referral %s with every placement closed", s.Status)
	}
}

// checkRecipients: each event goes only to parties of the referral, and
// an organisation only receives events of its own placements.
func (m *model) checkRecipients(s referral.State, p events.Payload) {
	got := referral.Recipients(s, p)
	if s.Referrer != propOutsid && slices.Contains(got, propOutsid) {
		m.rt.Fatalf("%s delivered to an outsider", p.EventType())
	}
	switch v := p.(type) {
	case *events.Handover:
		pl, _ := s.Placement(v.Placement)
		if !slices.Equal(got, []string{pl.AcceptedBy}) {
			m.rt.Fatalf("handover delivered to %v, accepted by %s", got, pl.AcceptedBy)
		}
	case *events.Offered:
		if !slices.Equal(got, slices.Compact([]string{s.Referrer, v.Organisation})) {
			m.rt.Fatalf("offer to %s delivered to %v", v.Organisation, got)
		}
	case *events.Accepted, *events.Declined, *events.Contacted, *events.OnHold, *events.Completed:
		pl, _ := s.Placement(placementOfPayload(p))
		for _, org := range got {
			if org != s.Referrer && org != pl.Offer.Organisation {
				m.rt.Fatalf("%s of placement %s delivered to %s", p.EventType(), pl.ID, org)
			}
		}
	}
}

func placementOfPayload(p events.Payload) string {
	switch v := p.(type) {
	case *events.Accepted:
		return v.Placement
	case *events.Declined:
		return v.Placement
	case *events.Contacted:
		return v.Placement
	case *events.OnHold:
		return v.Placement
	case *events.Completed:
		return v.Placement
	}
	return ""
}

// TestPropertyLifecycle: random sequences of commands, timers and raw
// routing events never produce an invalid state, nothing applies after
// erasure, and folding the log gives the incrementally built state.
func TestPropertyLifecycle(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(rt *rapid.T) {
		m := &model{rt: rt, now: monday, d: referral.DefaultDeadlines(), accepted: map[string]string{}}
		// Most runs start with a request and a plan, so that they go deep.
		if rapid.IntRange(0, 4).Draw(rt, "start") > 0 {
			r := requested(true, events.Needs[0], events.Needs[1], events.Needs[2], events.Needs[10])
			cmd := m.envelope(src(propRef), r, "")
			if _, err := referral.Decide(m.s, cmd, referral.Actor{Org: propRef}, m.now, m.d); err != nil {
				rt.Fatal(err)
			}
			m.apply(cmd)
			m.apply(m.envelope(events.SourceRouting, m.randomPlan(), ""))
			m.routing(referral.OffersAfterPlan(m.s, m.now, m.d), "")
		}
		steps := rapid.IntRange(1, 80).Draw(rt, "steps")
		for range steps {
			m.step()
		}
		folded, err := referral.Fold(m.log)
		if err != nil {
			rt.Fatalf("Fold: %v", err)
		}
		if !reflect.DeepEqual(folded, m.s) {
			rt.Fatalf("Fold(log) != incremental state\nfold: %+v\nincr: %+v", folded, m.s)
		}
		if m.erased {
			for _, env := range m.sent {
				org, ok := events.OrgOfSource(env.Event.Source())
				if _, err := referral.Decide(m.s, env, referral.Actor{Org: org, Coordinator: !ok}, m.now, m.d); err == nil {
					rt.Fatalf("%s accepted after erasure", env.Event.Type())
				} else if !errors.Is(err, referral.ErrErased) && !errors.Is(err, referral.ErrDuplicate) && !errors.Is(err, referral.ErrForbidden) && !errors.Is(err, referral.ErrNotFound) && !errors.Is(err, referral.ErrConflict) {
					rt.Fatalf("after erasure: %v", err)
				}
			}
		}
	})
}
