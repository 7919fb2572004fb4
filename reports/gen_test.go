package reports

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/invictus-network/invictus/events"
)

// truth is what the generator knows of one referral, to compute the
// expected figures independently of the model.
type truth struct {
	referrer, country, region string
	needs, crimes             []string
	ageBand                   string
	crossBorder               bool
	day, requested            time.Time
	offers                    map[string]string // organisation → its last answer (offered, accepted, declined, expired)
	answers                   map[string]map[string]bool
	acceptMinutes             map[string][]int64
	contactMinutes            int64 // -1: never
	outcomes                  map[[2]string]bool
	unmatched                 map[[2]string]bool
	feedback                  map[[2]string]bool
}

// traffic is a generated event log with its truths.
type traffic struct {
	envs   []*events.Envelope
	truths []*truth
}

var (
	genCountries = []string{"pt", "es", "fr", "nl", "fi"}
	genOrgs      = map[string][]string{"pt": {"pt.apav", "pt.amcv"}, "es": {"es.ofa"}, "fr": {"fr.fv-75", "fr.fv-13"}, "nl": {"nl.shn"}, "fi": {"fi.riku"}}
	genRegions   = map[string][]string{"pt": {"PT17", "PT11"}, "es": {"ES30"}, "fr": {"FR10", "FRL0"}, "nl": {"NL32", "NL33"}, "fi": {"FI1B"}}
	genNeeds     = []string{"info.rights", "support.emotional", "justice.legal_aid", "safety.shelter"}
	genCrimes    = []string{"domestic_violence", "fraud", "robbery"}
	genOutcomes  = []string{"supported", "not_supported", "unable_to_contact"}
)

func pick[T any](r *rand.Rand, s []T) T { return s[r.IntN(len(s))] }

// generate makes n referrals' events, in time order per referral.
func generate(seed uint64, n int) *traffic {
	r := rand.New(rand.NewPCG(seed, 7))
	start := time.Date(2026, 1, 5, 8, 0, 0, 0, time.UTC)
	tr := &traffic{}
	evn := 0
	add := func(source, subject string, at time.Time, p events.Payload) {
		e := event.New()
		evn++
		e.SetID(fmt.Sprintf("e%d", evn))
		e.SetSource(source)
		e.SetType(p.EventType())
		e.SetSubject(subject)
		e.SetTime(at)
		tr.envs = append(tr.envs, &events.Envelope{Event: e, Payload: p})
	}
	for i := range n {
		id := fmt.Sprintf("ref-%06d", i)
		cc := pick(r, genCountries)
		referrer := pick(r, genOrgs[cc])
		at := start.Add(time.Duration(r.IntN(60*24*3)) * time.Minute * 20) // within ~40 days, whole minutes
		needs := []string{pick(r, genNeeds)}
		if r.IntN(3) == 0 {
			if n2 := pick(r, genNeeds); n2 != needs[0] {
				needs = append(needs, n2)
			}
		}
		t := &truth{referrer: referrer, country: cc, region: pick(r, genRegions[cc]), needs: needs,
			crimes: []string{pick(r, genCrimes)}, ageBand: pick(r, []string{"adult", "child", "older"}),
			day: at.Truncate(24 * time.Hour), requested: at, offers: map[string]string{}, answers: map[string]map[string]bool{},
			acceptMinutes: map[string][]int64{}, contactMinutes: -1, outcomes: map[[2]string]bool{},
			unmatched: map[[2]string]bool{}, feedback: map[[2]string]bool{}}
		residence := ""
		if r.IntN(5) == 0 {
			residence = pick(r, genCountries)
			t.crossBorder = residence != cc
		}
		tr.truths = append(tr.truths, t)
		prof := events.Profile{Needs: needs, Crimes: t.crimes, Urgency: "urgent", AgeBand: t.ageBand,
			Location:  events.Location{Country: cc, Region: t.region, ResidenceCountry: residence},
			Languages: []string{"pt"}, Channels: []string{"phone"}}
		add("/orgs/"+referrer, id, at, &events.Requested{Profile: prof})
		at = at.Add(time.Minute)
		if r.IntN(8) == 0 { // nothing covers the first need
			add(events.SourceRouting, id, at, &events.Planned{Unmatched: []events.UnmatchedNeed{{Need: needs[0], Reason: "no_service"}}})
			add(events.SourceRouting, id, at, &events.Unmatched{Needs: needs[:1], Reason: "no_service", Profile: prof})
			t.unmatched[[2]string{needs[0], "no_service"}] = true
			continue
		}
		add(events.SourceRouting, id, at, &events.Planned{Groups: []events.PlanGroup{{Placement: "p1", Needs: needs}}})
		mark := func(org, code string) {
			if t.answers[org] == nil {
				t.answers[org] = map[string]bool{}
			}
			t.answers[org][code] = true
		}
		accepted := ""
		for attempt := 1; attempt <= 3 && accepted == ""; attempt++ {
			oc := pick(r, genCountries)
			if r.IntN(2) == 0 {
				oc = cc
			}
			org := pick(r, genOrgs[oc])
			deadline := at.Add(2 * time.Hour)
			add(events.SourceRouting, id, at, &events.Offered{Placement: "p1", Service: org + ".s", Organisation: org, Referrer: referrer,
				Needs: needs, Attempt: attempt, Deadline: deadline, Profile: prof})
			mark(org, "offered")
			wait := time.Duration(r.IntN(180)) * time.Minute
			switch {
			case wait >= 2*time.Hour:
				add(events.SourceRouting, id, deadline, &events.Expired{Placement: "p1", Service: org + ".s", Deadline: deadline})
				mark(org, "expired")
				mark(org, "reminded")
				at = deadline
			case r.IntN(4) == 0:
				at = at.Add(wait)
				add("/orgs/"+org, id, at, &events.Declined{Placement: "p1", Reason: "capacity"})
				mark(org, "declined")
				if wait >= time.Hour {
					mark(org, "reminded")
				}
			default:
				at = at.Add(wait)
				add("/orgs/"+org, id, at, &events.Accepted{Placement: "p1"})
				mark(org, "accepted")
				if wait >= time.Hour {
					mark(org, "reminded")
				}
				t.acceptMinutes[org] = append(t.acceptMinutes[org], int64(wait/time.Minute))
				accepted = org
			}
		}
		if accepted == "" {
			add(events.SourceRouting, id, at, &events.Unmatched{Placement: "p1", Needs: needs, Reason: "all_declined", Profile: prof})
			for _, nd := range needs {
				t.unmatched[[2]string{nd, "all_declined"}] = true
			}
			continue
		}
		if r.IntN(5) == 0 {
			continue // still open
		}
		at = at.Add(time.Duration(r.IntN(600)) * time.Minute)
		add("/orgs/"+accepted, id, at, &events.Contacted{Placement: "p1"})
		t.contactMinutes = int64(at.Sub(t.requested) / time.Minute)
		out := pick(r, genOutcomes)
		at = at.Add(time.Hour)
		add("/orgs/"+accepted, id, at, &events.Completed{Placement: "p1", Outcome: out})
		for _, nd := range needs {
			t.outcomes[[2]string{nd, out}] = true
		}
		if r.IntN(2) == 0 {
			v := 1 + r.IntN(5)
			fb := &events.Feedback{Placement: "p1", Answers: []events.Answer{{Question: "helpful", Value: v}}}
			t.feedback[[2]string{"helpful", fmt.Sprint(v)}] = true
			if r.IntN(3) == 0 {
				fb.Missing = []string{"follow_up"}
				t.feedback[[2]string{"missing", "follow_up"}] = true
			}
			add("/orgs/"+accepted, id, at.Add(time.Hour), fb)
		}
	}
	return tr
}
