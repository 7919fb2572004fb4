// Package reportstest generates referral traffic for the tests of the
// coordinators' figures: valid events of the v1 contract, in log order,
// with what each referral went through, so that tests compute the
// expected figures independently of the code under test.
package reportstest

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/invictus-network/invictus/events"
)

// Truth is what the generator knows of one referral, to compute the
// expected figures independently of the model.
type Truth struct {
	ID                        string
	Referrer, Country, Region string
	Needs, Crimes             []string
	AgeBand                   string
	CrossBorder               bool
	Day, Requested            time.Time
	// Answers are the facts of each offered organisation: offered,
	// accepted, declined, expired, reminded (still open half way).
	Answers        map[string]map[string]bool
	AcceptMinutes  map[string][]int64
	ContactMinutes int64 // -1: never
	// Outcomes (need, outcome), Unmatched (need, reason) and Feedback
	// (question or "missing", answer or code).
	Outcomes  map[[2]string]bool
	Unmatched map[[2]string]bool
	Feedback  map[[2]string]bool
	// Excluded (need, constraint): every service of an unmatched need
	// was excluded, some by this constraint.
	Excluded map[[2]string]bool
}

// Traffic is a generated event log with its truths.
type Traffic struct {
	Envelopes []*events.Envelope
	Truths    []*Truth
}

var (
	// Countries are the countries of the generated organisations.
	Countries  = []string{"pt", "es", "fr", "nl", "fi"}
	genOrgs    = map[string][]string{"pt": {"pt.apav", "pt.amcv"}, "es": {"es.ofa"}, "fr": {"fr.fv-75", "fr.fv-13"}, "nl": {"nl.shn"}, "fi": {"fi.riku"}}
	genRegions = map[string][]string{"pt": {"PT17", "PT11"}, "es": {"ES30"}, "fr": {"FR10", "FRL0"}, "nl": {"NL32", "NL33"}, "fi": {"FI1B"}}
	genNeeds   = []string{"info.rights", "support.emotional", "justice.legal_aid", "safety.shelter"}
	genCrimes  = []string{"domestic_violence", "fraud", "robbery"}
	// genConstraints are hard constraints that exclude services.
	genConstraints = []string{"language", "capacity", "eligibility", "channel"}
	genOutcomes    = []string{"supported", "not_supported", "unable_to_contact"}
)

func pick[T any](r *rand.Rand, s []T) T { return s[r.IntN(len(s))] }

// Sorted returns the envelopes in time order, as a log receives them;
// each referral's events keep their order.
func (t *Traffic) Sorted() []*events.Envelope {
	out := slices.Clone(t.Envelopes)
	slices.SortStableFunc(out, func(a, b *events.Envelope) int { return a.Event.Time().Compare(b.Event.Time()) })
	return out
}

// Generate makes n referrals' events, in time order per referral,
// requested over 60 days from 2026-01-05.
func Generate(seed uint64, n int) *Traffic { return GenerateSpan(seed, n, 60*24*time.Hour) }

// GenerateSpan is [Generate] with the requests spread over span (whole
// 20-minute steps) instead of 60 days; a span that would reach past three
// days ago starts earlier, so that no event is in the future.
func GenerateSpan(seed uint64, n int, span time.Duration) *Traffic {
	start := time.Date(2026, 1, 5, 8, 0, 0, 0, time.UTC)
	if late := time.Now().Add(-span - 72*time.Hour); start.After(late) {
		// Events may not be in the future: a long span ends three days
		// before today (and starts at 08:00 UTC).
		start = late.UTC().Truncate(24 * time.Hour).Add(8 * time.Hour)
	}
	return GenerateAt(seed, n, start, span)
}

// GenerateAt is [Generate] with the requests spread over span from
// start. Every event must be in the past (events.New refuses the
// future), at most about a day after its request.
func GenerateAt(seed uint64, n int, start time.Time, span time.Duration) *Traffic {
	steps := max(int(span/(20*time.Minute)), 1)
	r := rand.New(rand.NewPCG(seed, 7))
	tr := &Traffic{}
	add := func(source, subject string, at time.Time, p events.Payload) {
		e, err := events.New(source, subject, p, events.WithTime(at))
		if err != nil {
			panic(fmt.Sprintf("reportstest: %T: %v", p, err))
		}
		tr.Envelopes = append(tr.Envelopes, &events.Envelope{Event: e, Payload: p})
	}
	for i := range n {
		id := referralID(r, start.Add(time.Duration(i)*time.Millisecond))
		cc := pick(r, Countries)
		referrer := pick(r, genOrgs[cc])
		at := start.Add(time.Duration(r.IntN(steps)) * time.Minute * 20) // within span, whole minutes
		needs := []string{pick(r, genNeeds)}
		if r.IntN(3) == 0 {
			if n2 := pick(r, genNeeds); n2 != needs[0] {
				needs = append(needs, n2)
			}
		}
		t := &Truth{ID: id, Referrer: referrer, Country: cc, Region: pick(r, genRegions[cc]), Needs: needs,
			Crimes: []string{pick(r, genCrimes)}, AgeBand: pick(r, []string{"adult", "child", "older"}),
			Day: at.Truncate(24 * time.Hour), Requested: at, Answers: map[string]map[string]bool{},
			AcceptMinutes: map[string][]int64{}, ContactMinutes: -1, Outcomes: map[[2]string]bool{},
			Unmatched: map[[2]string]bool{}, Feedback: map[[2]string]bool{}, Excluded: map[[2]string]bool{}}
		residence := ""
		if r.IntN(5) == 0 {
			residence = pick(r, Countries)
			t.CrossBorder = residence != cc
		}
		tr.Truths = append(tr.Truths, t)
		prof := events.Profile{Needs: needs, Crimes: t.Crimes, Urgency: "urgent", AgeBand: t.AgeBand,
			Location:  events.Location{Country: cc, Region: t.Region, ResidenceCountry: residence},
			Languages: []string{"pt"}, Channels: []string{"phone"}}
		add("/orgs/"+referrer, id, at, &events.Requested{Profile: prof,
			Consent: events.Consent{Referral: true, GivenAt: at.Add(-time.Minute), Method: "verbal", RecordedBy: "staff-s0001"}})
		at = at.Add(time.Minute)
		if r.IntN(8) == 0 { // nothing covers the first need
			add(events.SourceRouting, id, at, &events.Planned{Unmatched: []events.UnmatchedNeed{{Need: needs[0], Reason: "no_service"}}})
			add(events.SourceRouting, id, at, &events.Unmatched{Needs: needs[:1], Reason: "no_service", Profile: prof})
			t.Unmatched[[2]string{needs[0], "no_service"}] = true
			continue
		}
		if i%9 == 4 { // the services there are all excluded, by one or two constraints
			excl := map[string]int{pick(r, genConstraints): 2}
			if i%2 == 0 {
				excl[pick(r, genConstraints)]++
			}
			add(events.SourceRouting, id, at, &events.Planned{Unmatched: []events.UnmatchedNeed{{Need: needs[0], Reason: "excluded", Offered: 3, Excluded: excl}}})
			add(events.SourceRouting, id, at, &events.Unmatched{Needs: needs[:1], Reason: "excluded", Profile: prof})
			t.Unmatched[[2]string{needs[0], "excluded"}] = true
			for c := range excl {
				t.Excluded[[2]string{needs[0], c}] = true
			}
			continue
		}
		add(events.SourceRouting, id, at, &events.Planned{Groups: []events.PlanGroup{{Placement: "p1", Needs: needs,
			Candidates: []events.Candidate{{Service: "pt.apav.s", Organisation: "pt.apav", Covers: needs, Score: 0.5}}}}})
		mark := func(org, code string) {
			if t.Answers[org] == nil {
				t.Answers[org] = map[string]bool{}
			}
			t.Answers[org][code] = true
		}
		accepted := ""
		for attempt := 1; attempt <= 3 && accepted == ""; attempt++ {
			oc := pick(r, Countries)
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
				t.AcceptMinutes[org] = append(t.AcceptMinutes[org], int64(wait/time.Minute))
				accepted = org
			}
		}
		if accepted == "" {
			add(events.SourceRouting, id, at, &events.Unmatched{Placement: "p1", Needs: needs, Reason: "all_declined", Profile: prof})
			for _, nd := range needs {
				t.Unmatched[[2]string{nd, "all_declined"}] = true
			}
			continue
		}
		if r.IntN(5) == 0 {
			continue // still open
		}
		at = at.Add(time.Duration(r.IntN(600)) * time.Minute)
		add("/orgs/"+accepted, id, at, &events.Contacted{Placement: "p1"})
		t.ContactMinutes = int64(at.Sub(t.Requested) / time.Minute)
		out := pick(r, genOutcomes)
		at = at.Add(time.Hour)
		add("/orgs/"+accepted, id, at, &events.Completed{Placement: "p1", Outcome: out})
		for _, nd := range needs {
			t.Outcomes[[2]string{nd, out}] = true
		}
		if r.IntN(2) == 0 {
			v := 1 + r.IntN(5)
			fb := &events.Feedback{Placement: "p1", Answers: []events.Answer{{Question: "helpful", Value: v}}}
			t.Feedback[[2]string{"helpful", fmt.Sprint(v)}] = true
			if r.IntN(3) == 0 {
				fb.Missing = []string{"follow_up"}
				t.Feedback[[2]string{"missing", "follow_up"}] = true
			}
			add("/orgs/"+accepted, id, at.Add(time.Hour), fb)
		}
	}
	return tr
}

// referralID returns a UUIDv7 for at drawn from r, so that a seed gives
// the same ids.
func referralID(r *rand.Rand, at time.Time) string {
	var b [16]byte
	for i := range b {
		b[i] = byte(r.UintN(256))
	}
	ms := uint64(at.UnixMilli())
	for i := range 6 {
		b[i] = byte(ms >> (40 - 8*i))
	}
	b[6] = 0x70 | b[6]&0x0f
	b[8] = 0x80 | b[8]&0x3f
	return uuid.UUID(b).String()
}
