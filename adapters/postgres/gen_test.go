package postgres_test

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/referral"
)

// A generated run: referrals that go through their lifecycle as the
// routing service would write it in REFERRALS, checked event by event
// with referral.Apply, so that every event is one the real log could hold.

// genEvent is one event of the log, on its REFERRALS subject.
type genEvent struct {
	subject string
	ev      event.Event
	env     *events.Envelope
}

// genReferral is one generated referral: its events in order and its
// final state as referral.Fold computes it.
type genReferral struct {
	id      string
	country string // of the victim
	region  string
	events  []genEvent
	state   referral.State
	erased  *events.Erased
}

type genRun struct {
	referrals []*genReferral
	log       []genEvent // publish order
}

var (
	genReferrers = []string{"pt.ref-lisboa", "fr.ref-paris", "fi.ref-helsinki"}
	genProviders = []string{"pt.prov-a", "pt.prov-b", "fr.prov-c", "fi.prov-d", "es.prov-e"}
	genRegions   = map[string][]string{"pt": {"PT17", "PT11"}, "fr": {"FR10", "FRK2"}, "fi": {"FI1B", "FI19"}}
	genNeeds     = []string{events.NeedSupportEmotional, events.NeedJusticeLegalAid, events.NeedSafetyShelter,
		events.NeedInfoRights, events.NeedSupportPsychological, events.NeedCommInterpretation}
	genCrimes   = []string{"domestic_violence", "robbery", "fraud", "trafficking"}
	genOutcomes = []string{"supported", "not_supported", "unable_to_contact"}
	// genBase is a Monday; referrals spread over about five weeks.
	genBase = time.Date(2025, 3, 3, 8, 0, 0, 0, time.UTC)
)

// generate returns a run of n referrals from seed.
func generate(t testing.TB, seed uint64, n int) *genRun {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	run := &genRun{}
	for i := range n {
		g := &genReferral{id: events.NewReferralID()}
		genReferralEvents(t, rng, g, genBase.Add(time.Duration(i)*(35*24*time.Hour)/time.Duration(n)))
		run.referrals = append(run.referrals, g)
	}
	// Interleave the referrals' logs as concurrent referrals would, each
	// in its own order.
	next := make([]int, n)
	for left := true; left; {
		left = false
		for i, g := range run.referrals {
			k := min(len(g.events)-next[i], 1+rng.IntN(3))
			run.log = append(run.log, g.events[next[i]:next[i]+k]...)
			next[i] += k
			left = left || next[i] < len(g.events)
		}
	}
	return run
}

func pick[T any](rng *rand.Rand, xs []T) T { return xs[rng.IntN(len(xs))] }

// genReferralEvents writes the events of g, starting at t0.
func genReferralEvents(t testing.TB, rng *rand.Rand, g *genReferral, t0 time.Time) {
	t.Helper()
	referrer := pick(rng, genReferrers)
	cc := referrer[:2]
	subject, err := events.ReferralSubject(cc, g.id)
	if err != nil {
		t.Fatal(err)
	}
	emit := func(source string, at time.Time, p events.Payload) {
		t.Helper()
		ev, err := events.New(source, g.id, p, events.WithTime(at))
		if err != nil {
			t.Fatalf("generate %s: %v", p.EventType(), err)
		}
		env, err := events.DecodeEvent(ev)
		if err != nil {
			t.Fatal(err)
		}
		next, err := referral.Apply(g.state, env)
		if err != nil {
			t.Fatalf("generated %s does not apply: %v", p.EventType(), err)
		}
		g.state = next
		g.events = append(g.events, genEvent{subject: subject, ev: ev, env: env})
	}

	g.country = cc
	if rng.IntN(5) == 0 {
		g.country = pick(rng, []string{"pt", "fr", "fi"})
	}
	g.region = pick(rng, genRegions[g.country])
	needs := slices.Clone(genNeeds)
	rng.Shuffle(len(needs), func(i, j int) { needs[i], needs[j] = needs[j], needs[i] })
	needs = needs[:1+rng.IntN(3)]
	var crimes []string
	for _, c := range genCrimes {
		if rng.IntN(3) == 0 {
			crimes = append(crimes, c)
		}
	}
	profile := events.Profile{
		Needs: needs, Crimes: crimes, Urgency: pick(rng, events.Urgencies),
		Location:  events.Location{Country: g.country, Region: g.region},
		Languages: []string{"en"}, AgeBand: pick(rng, events.AgeBands), Channels: []string{events.ChannelPhone},
	}
	if g.region == "" {
		profile.Location.Region = ""
	}
	req := &events.Requested{Profile: profile, Consent: events.Consent{Referral: true, ShareData: rng.IntN(4) > 0,
		GivenAt: t0.Add(-time.Hour), Method: "verbal", RecordedBy: "staff-s001"}}
	emit(events.SourceOf(referrer), t0, req)

	// The plan: one or two groups, maybe a need nothing covers, rarely
	// nothing at all.
	at := t0.Add(time.Minute)
	plan := &events.Planned{DirectoryRevision: 7}
	covered := needs
	if len(needs) > 1 && rng.IntN(4) == 0 {
		covered = needs[1:]
		plan.Unmatched = []events.UnmatchedNeed{{Need: needs[0], Reason: "no_service"}}
	}
	if rng.IntN(20) == 0 {
		covered = nil
		plan.Unmatched = nil
		for _, nd := range needs {
			plan.Unmatched = append(plan.Unmatched, events.UnmatchedNeed{Need: nd, Reason: "no_service"})
		}
	}
	groups := [][]string{}
	if len(covered) > 0 {
		groups = append(groups, covered)
		if len(covered) > 1 && rng.IntN(2) == 0 {
			groups = [][]string{covered[:1], covered[1:]}
		}
	}
	for gi, gneeds := range groups {
		providers := slices.Clone(genProviders)
		rng.Shuffle(len(providers), func(i, j int) { providers[i], providers[j] = providers[j], providers[i] })
		grp := events.PlanGroup{Placement: []string{"p1", "p2"}[gi], Needs: gneeds}
		for _, org := range providers[:1+rng.IntN(3)] {
			grp.Candidates = append(grp.Candidates, events.Candidate{Service: org + ".svc", Organisation: org,
				Covers: gneeds, Score: 0.5, Components: map[string]float64{"needs": 1}, Reasons: []string{"test"}})
		}
		plan.Groups = append(plan.Groups, grp)
	}
	emit(events.SourceRouting, at, plan)
	if len(plan.Unmatched) > 0 {
		var gap []string
		for _, u := range plan.Unmatched {
			gap = append(gap, u.Need)
		}
		at = at.Add(time.Minute)
		emit(events.SourceRouting, at, &events.Unmatched{Needs: gap, Reason: "no_service", Profile: profile})
	}

	// Each placement is offered down its candidates.
	last := at
	for _, grp := range plan.Groups {
		pt := at
	offers:
		for k, c := range grp.Candidates {
			pt = pt.Add(time.Duration(1+rng.IntN(30)) * time.Minute)
			deadline := pt.Add(2 * time.Hour)
			emit(events.SourceRouting, pt, &events.Offered{Placement: grp.Placement, Service: c.Service, Organisation: c.Organisation,
				Referrer: referrer, Needs: grp.Needs, Attempt: k + 1, Deadline: deadline, Profile: profile})
			switch r := rng.IntN(100); {
			case r < 50:
				pt = pt.Add(time.Duration(1+rng.IntN(90)) * time.Minute)
				emit(events.SourceOf(c.Organisation), pt, &events.Accepted{Placement: grp.Placement})
				if req.Consent.ShareData && rng.IntN(2) == 0 {
					h := events.SamplePayload(events.TypeReferralHandover).(*events.Handover)
					h.Placement = grp.Placement
					emit(events.SourceOf(referrer), pt.Add(time.Minute), h)
				}
				if rng.IntN(10) < 7 {
					pt = pt.Add(24 * time.Hour)
					emit(events.SourceOf(c.Organisation), pt, &events.Contacted{Placement: grp.Placement})
					if rng.IntN(5) == 0 {
						pt = pt.Add(time.Hour)
						emit(events.SourceOf(c.Organisation), pt, &events.OnHold{Placement: grp.Placement})
					}
					if rng.IntN(10) < 6 {
						pt = pt.Add(48 * time.Hour)
						emit(events.SourceOf(c.Organisation), pt, &events.Completed{Placement: grp.Placement, Outcome: pick(rng, genOutcomes)})
						if rng.IntN(3) == 0 {
							emit(events.SourceOf(referrer), pt.Add(time.Hour), &events.Feedback{Placement: grp.Placement,
								Answers: []events.Answer{{Question: "helpful", Value: 1 + rng.IntN(5)}}})
						}
					}
				}
				break offers
			case r < 70:
				pt = pt.Add(time.Duration(1+rng.IntN(60)) * time.Minute)
				emit(events.SourceOf(c.Organisation), pt, &events.Declined{Placement: grp.Placement, Reason: pick(rng, events.DeclineReasons)})
			case r < 85:
				pt = deadline
				emit(events.SourceRouting, pt, &events.Expired{Placement: grp.Placement, Service: c.Service, Deadline: deadline})
			default:
				break offers // still open
			}
			if k == len(grp.Candidates)-1 {
				pt = pt.Add(time.Second)
				emit(events.SourceRouting, pt, &events.Unmatched{Placement: grp.Placement, Needs: grp.Needs, Reason: "all_declined", Profile: profile})
			}
		}
		if pt.After(last) {
			last = pt
		}
	}
	if !g.state.Status.Closed() && rng.IntN(8) == 0 {
		last = last.Add(time.Hour)
		emit(events.SourceOf(referrer), last, &events.Withdrawn{Reason: "needs_met"})
	}
	if rng.IntN(15) == 0 {
		outcome := map[referral.Status]string{
			referral.StatusCompleted: "completed", referral.StatusPartiallyCompleted: "partially_completed",
			referral.StatusFailed: "failed", referral.StatusCancelled: "cancelled",
		}[g.state.Status]
		if outcome == "" {
			outcome = "open"
		}
		last = last.Add(24 * time.Hour)
		g.erased = &events.Erased{Country: g.country, Region: g.region, Needs: needs, Outcome: outcome,
			RequestedOn: t0.Format(time.DateOnly), ErasedOn: last.Format(time.DateOnly)}
		emit(events.SourceRouting, last, g.erased)
	}
}
