package routing_test

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/invictus-network/invictus/directory"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/routing"
)

// The caseworker suite: small directories around Lisbon, each case with
// what a caseworker would accept and why. Every hard constraint, every
// score component, the unmatched reasons, the relaxed options, cross-border
// cases, emergencies at night and the defects of issue 14 have a case;
// the defects' cases are named "defect: ...". Each case also passes the
// checks of every plan: no candidate fails a hard constraint (the
// reference of the property test), every need is planned or reported,
// the planned event is valid.

// cwCase is one case of the suite.
type cwCase struct {
	name string
	// why is what a caseworker would accept, and why.
	why     string
	svcs    []directory.Service
	profile func(*events.Profile)
	// referrer, when set, is the organisation that refers the victim.
	referrer string
	at       time.Time
	stats    routing.StatsSource
	checks   []cwCheck
}

type cwCheck func(t *testing.T, p *routing.Plan)

// svc returns baseService(id) (an always-open, accepting service in
// Lisbon for support.emotional in Portuguese, in person or by phone)
// changed by mods.
func svc(id string, mods ...func(*directory.Service)) directory.Service {
	s := baseService(id)
	for _, m := range mods {
		m(&s)
	}
	return s
}

func named(n string) func(*directory.Service) { return func(s *directory.Service) { s.Name = n } }
func offering(needs ...string) func(*directory.Service) {
	return func(s *directory.Service) { s.Needs = needs }
}
func speaking(langs ...string) func(*directory.Service) {
	return func(s *directory.Service) { s.Languages = langs }
}
func interpreterProvided(s *directory.Service) { s.InterpreterAvailable = true }
func crimes(cs ...string) func(*directory.Service) {
	return func(s *directory.Service) { s.Crimes = cs }
}
func flags(fs ...string) func(*directory.Service) {
	return func(s *directory.Service) { s.Flags = fs }
}
func onlyGenders(gs ...string) func(*directory.Service) {
	return func(s *directory.Service) { s.Eligibility.Genders = gs }
}
func onlyAges(as ...string) func(*directory.Service) {
	return func(s *directory.Service) { s.Eligibility.AgeBands = as }
}
func capacity(status string) func(*directory.Service) {
	return func(s *directory.Service) { s.Capacity.Status = status }
}
func by(chs ...string) func(*directory.Service) {
	return func(s *directory.Service) { s.Channels = chs }
}
func at(lat, lon float64) func(*directory.Service) {
	return func(s *directory.Service) { s.Locations[0].Lat, s.Locations[0].Lon = lat, lon }
}
func unlocated(s *directory.Service) { s.Locations = nil; s.Area.Remote = true }
func meets(acc ...string) func(*directory.Service) {
	return func(s *directory.Service) { s.Accessibility = acc }
}
func officeHours(s *directory.Service) { s.Hours = weekdays("09:00", "17:00") }
func inactive(s *directory.Service)    { s.Status = directory.StatusInactive }
func servesRemotely(cc string) func(*directory.Service) {
	return func(s *directory.Service) {
		s.Organisation = cc + ".home"
		s.ID = cc + ".home." + s.ID[strings.LastIndex(s.ID, ".")+1:]
		s.Area = directory.ServiceArea{Countries: []string{cc}, Remote: true}
		s.Locations = nil
		s.Channels = []string{events.ChannelPhone, events.ChannelVideo}
	}
}

// Checks.

func group(t *testing.T, p *routing.Plan, need string) routing.Group {
	t.Helper()
	for _, g := range p.Groups {
		if slices.Contains(g.Needs, need) {
			return g
		}
	}
	t.Fatalf("need %s not planned; unmatched %+v", need, p.Unmatched)
	return routing.Group{}
}

func ids(cs []routing.Candidate) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Service)
	}
	return out
}

// ranks: the group of the need ranks exactly these services, in order.
func ranks(need string, want ...string) cwCheck {
	return func(t *testing.T, p *routing.Plan) {
		t.Helper()
		if got := ids(group(t, p, need).Candidates); !slices.Equal(got, want) {
			t.Errorf("%s ranked %v, want %v", need, got, want)
		}
	}
}

// first: the primary for the need.
func first(need, want string) cwCheck {
	return func(t *testing.T, p *routing.Plan) {
		t.Helper()
		if got := group(t, p, need).Primary().Service; got != want {
			t.Errorf("%s: primary %s, want %s", need, got, want)
		}
	}
}

// before: a ranks before b in the need's group.
func before(need, a, b string) cwCheck {
	return func(t *testing.T, p *routing.Plan) {
		t.Helper()
		got := ids(group(t, p, need).Candidates)
		ia, ib := slices.Index(got, a), slices.Index(got, b)
		if ia < 0 || ib < 0 || ia > ib {
			t.Errorf("%s ranked %v, want %s before %s", need, got, a, b)
		}
	}
}

// never: none of these is in any group.
func never(svcs ...string) cwCheck {
	return func(t *testing.T, p *routing.Plan) {
		t.Helper()
		for _, g := range p.Groups {
			for _, c := range g.Candidates {
				if slices.Contains(svcs, c.Service) {
					t.Errorf("%s planned in %s", c.Service, g.Placement)
				}
			}
		}
	}
}

// unmatched: the need is unmatched with the reason and exactly these
// counts by constraint (nil: none).
func unmatched(need, reason string, excluded map[string]int) cwCheck {
	return func(t *testing.T, p *routing.Plan) {
		t.Helper()
		for _, u := range p.Unmatched {
			if u.Need == need {
				offered := 0
				for _, n := range excluded {
					offered += n
				}
				if u.Reason != reason || !reflect.DeepEqual(u.Excluded, excluded) || u.Offered != offered {
					t.Errorf("unmatched %+v, want %s with %v", u, reason, excluded)
				}
				return
			}
		}
		t.Errorf("need %s not unmatched; groups %+v", need, p.Groups)
	}
}

// relaxed: the plan shows these services for the need if the constraint
// were relaxed, in order, each with a reason naming it.
func relaxed(need, constraint string, want ...string) cwCheck {
	return func(t *testing.T, p *routing.Plan) {
		t.Helper()
		for _, r := range p.Relaxed {
			if r.Need == need && r.Constraint == constraint {
				if got := ids(r.Candidates); !slices.Equal(got, want) {
					t.Errorf("relaxed %s for %s: %v, want %v", constraint, need, got, want)
				}
				for _, c := range r.Candidates {
					if !slices.ContainsFunc(c.Reasons, func(s string) bool { return strings.HasPrefix(s, "relaxed "+strings.ReplaceAll(constraint, "_", " ")) }) {
						t.Errorf("relaxed candidate %s does not say so: %v", c.Service, c.Reasons)
					}
				}
				return
			}
		}
		t.Errorf("no relaxed %s option for %s; relaxed %+v", constraint, need, p.Relaxed)
	}
}

// nowhere: the unmatched need is (or is not) offered nowhere at all.
func nowhere(need string, want bool) cwCheck {
	return func(t *testing.T, p *routing.Plan) {
		t.Helper()
		for _, u := range p.Unmatched {
			if u.Need == need && u.Nowhere != want {
				t.Errorf("unmatched %s: nowhere %v, want %v", need, u.Nowhere, want)
			}
		}
	}
}

// noRelaxed: the plan shows no relaxed option.
func noRelaxed(t *testing.T, p *routing.Plan) {
	t.Helper()
	if len(p.Relaxed) != 0 {
		t.Errorf("relaxed %+v, want none", p.Relaxed)
	}
}

// says: the candidate's reasons include one containing text.
func says(svcID, text string) cwCheck {
	return func(t *testing.T, p *routing.Plan) {
		t.Helper()
		for _, g := range p.Groups {
			for _, c := range g.Candidates {
				if c.Service == svcID {
					if !slices.ContainsFunc(c.Reasons, func(r string) bool { return strings.Contains(r, text) }) {
						t.Errorf("%s reasons %v, want one with %q", svcID, c.Reasons, text)
					}
					return
				}
			}
		}
		t.Errorf("%s not planned", svcID)
	}
}

// placements: the plan has n groups.
func placements(n int) cwCheck {
	return func(t *testing.T, p *routing.Plan) {
		t.Helper()
		if len(p.Groups) != n {
			t.Errorf("%d placements, want %d: %+v", len(p.Groups), n, p.Groups)
		}
	}
}

// noTies: no two candidates of a group have the same score.
func noTies(t *testing.T, p *routing.Plan) {
	t.Helper()
	for _, g := range p.Groups {
		for i := 1; i < len(g.Candidates); i++ {
			if g.Candidates[i].Score == g.Candidates[i-1].Score {
				t.Errorf("%s and %s tie at %v", g.Candidates[i-1].Service, g.Candidates[i].Service, g.Candidates[i].Score)
			}
		}
	}
}

func needs(ns ...string) func(*events.Profile) { return func(p *events.Profile) { p.Needs = ns } }
func victimCrimes(cs ...string) func(*events.Profile) {
	return func(p *events.Profile) { p.Crimes = cs }
}
func then(fs ...func(*events.Profile)) func(*events.Profile) {
	return func(p *events.Profile) {
		for _, f := range fs {
			f(p)
		}
	}
}

const (
	setubalLat, setubalLon = 38.52, -8.89 // about 31 km from Lisbon
	sintraLat, sintraLon   = 38.80, -9.38 // about 22 km
)

func caseworkerCases() []cwCase {
	emo, shelter, legal, court := events.NeedSupportEmotional, events.NeedSafetyShelter, events.NeedJusticeLegalAid, events.NeedJusticeCourtAccompaniment
	return []cwCase{
		// Hard constraints.
		{name: "defect: refused interpreter binds, even one the service provides",
			why:     "she said no interpreter: a service that would need one is of no use to her, however good",
			svcs:    []directory.Service{svc("pt.fr.svc", speaking("fr"), interpreterProvided), svc("pt.pt.svc", at(setubalLat, setubalLon))},
			profile: func(p *events.Profile) { p.InterpreterOK = false },
			checks:  []cwCheck{ranks(emo, "pt.pt.svc"), never("pt.fr.svc")}},
		{name: "refused interpreter and no shared language: unmatched, named, not relaxed",
			why:    "nothing speaks Portuguese; her refusal is hers to change, so the plan says language removed the one service and offers nothing in its place",
			svcs:   []directory.Service{svc("pt.fr.svc", speaking("fr"), interpreterProvided)},
			checks: []cwCheck{unmatched(emo, routing.UnmatchedExcluded, map[string]int{routing.ConstraintLanguage: 1}), noRelaxed}},
		{name: "accepted interpreter opens other languages",
			why:     "she accepts an interpreter: the French-speaking service is usable, behind one that speaks Portuguese",
			svcs:    []directory.Service{svc("pt.fr.svc", speaking("fr")), svc("pt.pt.svc")},
			profile: func(p *events.Profile) { p.InterpreterOK = true },
			checks:  []cwCheck{ranks(emo, "pt.pt.svc", "pt.fr.svc"), says("pt.fr.svc", "an interpreter must be arranged")}},
		{name: "defect: gender unstated does not meet a service only for women",
			why:    "the profile does not say she is a woman; a women-only service may turn the victim away",
			svcs:   []directory.Service{svc("pt.women.svc", onlyGenders("female")), svc("pt.all.svc", at(sintraLat, sintraLon))},
			checks: []cwCheck{ranks(emo, "pt.all.svc"), never("pt.women.svc")}},
		{name: "gender stated meets a service for women",
			why:     "she is a woman: the nearer women's service is right",
			svcs:    []directory.Service{svc("pt.women.svc", onlyGenders("female")), svc("pt.all.svc", at(sintraLat, sintraLon))},
			profile: func(p *events.Profile) { p.Gender = "female" },
			checks:  []cwCheck{first(emo, "pt.women.svc")}},
		{name: "defect: a helpline for women is not offered to a man robbed",
			why:     "a male robbery victim is not eligible for a helpline for violence against women",
			svcs:    []directory.Service{svc("pt.vaw.line", onlyGenders("female"), crimes("gender_based_violence"), unlocated), svc("pt.gen.svc", at(setubalLat, setubalLon))},
			profile: then(func(p *events.Profile) { p.Gender = "male" }, victimCrimes("robbery")),
			checks:  []cwCheck{ranks(emo, "pt.gen.svc"), never("pt.vaw.line")}},
		{name: "age band outside a children's service",
			why:    "an adult is not referred to a service for children",
			svcs:   []directory.Service{svc("pt.kids.svc", onlyAges("child", "youth"))},
			checks: []cwCheck{unmatched(emo, routing.UnmatchedExcluded, map[string]int{routing.ConstraintEligibility: 1})}},
		{name: "a child meets a children's service",
			why:     "a child goes to the service for children nearby rather than the general one further away",
			svcs:    []directory.Service{svc("pt.kids.svc", onlyAges("child", "youth")), svc("pt.gen.svc", at(setubalLat, setubalLon))},
			profile: func(p *events.Profile) { p.AgeBand = "child" },
			checks:  []cwCheck{first(emo, "pt.kids.svc")}},
		{name: "defect: the referrer's own organisation is never proposed",
			why:      "a referral goes to another organisation: proposing the referrer's own office sends the victim back",
			svcs:     []directory.Service{svc("pt.apav.gav"), svc("pt.other.svc", at(sintraLat, sintraLon))},
			referrer: "pt.apav",
			checks:   []cwCheck{ranks(emo, "pt.other.svc"), never("pt.apav.gav")}},
		{name: "the referrer's own organisation only: unmatched as own_organisation",
			why:      "only the referrer offers it here: the gap is real and named",
			svcs:     []directory.Service{svc("pt.apav.gav")},
			referrer: "pt.apav",
			checks:   []cwCheck{unmatched(emo, routing.UnmatchedExcluded, map[string]int{routing.ConstraintOwnOrganisation: 1}), noRelaxed}},
		{name: "full capacity is excluded, a waiting list is not",
			why:    "a full service cannot take her; a waiting list still can, ranked after an accepting one like it",
			svcs:   []directory.Service{svc("pt.full.svc", capacity(events.CapacityFull)), svc("pt.wait.svc", capacity(events.CapacityWaitlist)), svc("pt.open.svc")},
			checks: []cwCheck{never("pt.full.svc"), before(emo, "pt.open.svc", "pt.wait.svc")}},
		{name: "inactive services are not candidates",
			why:    "a closed service is not offered and not counted as offering the need",
			svcs:   []directory.Service{svc("pt.closed.svc", inactive)},
			checks: []cwCheck{unmatched(emo, routing.UnmatchedNoService, nil)}},
		{name: "no acceptable channel",
			why:    "she can only come in person; a video-only service is not for her, but the plan shows it apart as an option if she could use video",
			svcs:   []directory.Service{svc("pt.video.svc", by(events.ChannelVideo))},
			checks: []cwCheck{unmatched(emo, routing.UnmatchedExcluded, map[string]int{routing.ConstraintChannel: 1}), relaxed(emo, routing.ConstraintChannel, "pt.video.svc")}},
		{name: "defect: a deaf child gets the options with what they lack",
			why:     "no service here offers sign language: rather than an empty plan, show the nearest options, marked, saying they lack sign language",
			svcs:    []directory.Service{svc("pt.near.svc"), svc("pt.far.svc", at(setubalLat, setubalLon)), svc("pt.kids.svc", onlyGenders("male"))},
			profile: func(p *events.Profile) { p.AgeBand = "child"; p.Accessibility = []string{"sign_language"} },
			checks: []cwCheck{
				unmatched(emo, routing.UnmatchedExcluded, map[string]int{routing.ConstraintAccessibility: 2, routing.ConstraintEligibility: 1}),
				relaxed(emo, routing.ConstraintAccessibility, "pt.near.svc", "pt.far.svc"),
			}},
		{name: "accessibility met at the location",
			why:     "a wheelchair user goes where the building has step-free access",
			svcs:    []directory.Service{svc("pt.stairs.svc"), svc("pt.ramp.svc", at(sintraLat, sintraLon), func(s *directory.Service) { s.Locations[0].Accessibility = []string{"wheelchair"} })},
			profile: func(p *events.Profile) { p.Accessibility = []string{"wheelchair"} },
			checks:  []cwCheck{ranks(emo, "pt.ramp.svc"), never("pt.stairs.svc")}},
		{name: "a need of the place does not arise by phone",
			why:  "she accepts the phone: a service without a ramp can still help her by phone, after one she can also visit",
			svcs: []directory.Service{svc("pt.stairs.svc"), svc("pt.ramp.svc", meets("wheelchair"))},
			profile: func(p *events.Profile) {
				p.Accessibility = []string{"wheelchair"}
				p.Channels = []string{events.ChannelInPerson, events.ChannelPhone}
			},
			checks: []cwCheck{ranks(emo, "pt.ramp.svc", "pt.stairs.svc"), says("pt.stairs.svc", "does not arise")}},
		{name: "emergency at night: only services open now",
			why:     "at 3 a.m. an office closed until 9 cannot answer; the 24/7 line can",
			svcs:    []directory.Service{svc("pt.office.svc", officeHours), svc("pt.line.svc", unlocated)},
			profile: func(p *events.Profile) { p.Urgency = events.UrgencyEmergency },
			at:      sundayNight,
			checks:  []cwCheck{ranks(emo, "pt.line.svc"), never("pt.office.svc")}},
		{name: "emergency at night with nothing open: the closed office is shown relaxed",
			why:     "nothing is open at 3 a.m.: the caseworker calls 112 and sees which office can take over in the morning",
			svcs:    []directory.Service{svc("pt.office.svc", officeHours)},
			profile: func(p *events.Profile) { p.Urgency = events.UrgencyEmergency },
			at:      sundayNight,
			checks:  []cwCheck{unmatched(emo, routing.UnmatchedExcluded, map[string]int{routing.ConstraintOpenNow: 1}), relaxed(emo, routing.ConstraintOpenNow, "pt.office.svc")}},
		{name: "emergency by day: 24/7 first",
			why:  "in an emergency the service that is always reachable goes first, even when an office is open and nearer",
			svcs: []directory.Service{svc("pt.office.svc", officeHours), svc("pt.line.svc", unlocated)},
			profile: func(p *events.Profile) {
				p.Urgency = events.UrgencyEmergency
				p.Channels = []string{events.ChannelInPerson, events.ChannelPhone}
			},
			at:     mondayMorning,
			checks: []cwCheck{ranks(emo, "pt.line.svc", "pt.office.svc")}},
		{name: "two constraints on one service: not relaxed",
			why:    "a service that is both full and unreachable by her channels is not an option to discuss",
			svcs:   []directory.Service{svc("pt.x.svc", capacity(events.CapacityFull), by(events.ChannelVideo))},
			checks: []cwCheck{unmatched(emo, routing.UnmatchedExcluded, map[string]int{routing.ConstraintCapacity: 1}), noRelaxed}},
		{name: "every constraint that removed a service is counted",
			why:    "the gap report says what stood in the way: two full, one for children only, one in French",
			svcs:   []directory.Service{svc("pt.a.svc", capacity(events.CapacityFull)), svc("pt.b.svc", capacity(events.CapacityFull)), svc("pt.c.svc", onlyAges("child")), svc("pt.d.svc", speaking("fr"))},
			checks: []cwCheck{unmatched(emo, routing.UnmatchedExcluded, map[string]int{routing.ConstraintCapacity: 2, routing.ConstraintEligibility: 1, routing.ConstraintLanguage: 1})}},
		{name: "defect: nowhere, not just here",
			why:     "nothing in the whole directory offers legal aid: the gap report says nowhere, a gap of the network",
			svcs:    []directory.Service{svc("pt.a.svc")},
			profile: needs(emo, legal),
			checks:  []cwCheck{unmatched(legal, routing.UnmatchedNoService, nil), nowhere(legal, true)}},
		{name: "defect: offered elsewhere, not here",
			why:     "legal aid exists in Porto but not for Lisbon: no service offers it here, which is not nowhere",
			svcs:    []directory.Service{svc("pt.a.svc"), svc("pt.porto.svc", offering(legal), func(s *directory.Service) { s.Area.Regions, s.Locations = []string{"PT11"}, nil })},
			profile: then(needs(emo, legal), func(p *events.Profile) { p.Location.Lat, p.Location.Lon = nil, nil }),
			checks:  []cwCheck{unmatched(legal, routing.UnmatchedNoService, nil), nowhere(legal, false)}},
		{name: "no service offers the need here",
			why:     "nothing offers legal aid: no_service, nothing removed",
			svcs:    []directory.Service{svc("pt.a.svc")},
			profile: needs(emo, legal),
			checks:  []cwCheck{first(emo, "pt.a.svc"), unmatched(legal, routing.UnmatchedNoService, nil)}},

		// Score components.
		{name: "needs: one placement for both needs",
			why:     "one service covering shelter and emotional support beats two placements",
			svcs:    []directory.Service{svc("pt.both.svc", offering(shelter, emo), at(sintraLat, sintraLon)), svc("pt.emo.svc"), svc("pt.shelter.svc", offering(shelter))},
			profile: needs(shelter, emo),
			checks:  []cwCheck{placements(1), first(shelter, "pt.both.svc")}},
		{name: "defect: specialist in her crime, then a generalist, then a specialist in other crimes",
			why:     "for domestic violence the DV specialist first; a service for all crimes before a fraud specialist",
			svcs:    []directory.Service{svc("pt.fraud.svc", crimes("fraud")), svc("pt.all.svc"), svc("pt.dv.svc", crimes("domestic_violence"))},
			profile: victimCrimes("domestic_violence"),
			checks:  []cwCheck{ranks(emo, "pt.dv.svc", "pt.all.svc", "pt.fraud.svc")}},
		{name: "defect: a domestic-violence safe house is not first for a street assault",
			why:     "a street assault victim needs a general service; the DV safe house next door is for others",
			svcs:    []directory.Service{svc("pt.dvhouse.svc", crimes("domestic_violence", "gender_based_violence")), svc("pt.gen.svc", at(sintraLat, sintraLon))},
			profile: victimCrimes("physical_assault"),
			checks:  []cwCheck{ranks(emo, "pt.gen.svc", "pt.dvhouse.svc")}},
		{name: "flags: specialised for children",
			why:     "a child victim: the service specialised in children first",
			svcs:    []directory.Service{svc("pt.gen.svc"), svc("pt.child.svc", flags("child"))},
			profile: func(p *events.Profile) { p.Flags = []string{"child"} },
			checks:  []cwCheck{first(emo, "pt.child.svc")}},
		{name: "language: first language before second",
			why:     "she speaks Romanian first, English second: the Romanian-speaking service first",
			svcs:    []directory.Service{svc("pt.en.svc", speaking("en")), svc("pt.ro.svc", speaking("ro"))},
			profile: func(p *events.Profile) { p.Languages = []string{"ro", "en"} },
			checks:  []cwCheck{ranks(emo, "pt.ro.svc", "pt.en.svc")}},
		{name: "defect: a provided interpreter beats one to be arranged",
			why:     "neither speaks Arabic; the one that brings an interpreter saves the caseworker a step",
			svcs:    []directory.Service{svc("pt.a.svc", named("A - arrange")), svc("pt.b.svc", named("B - provides"), interpreterProvided)},
			profile: func(p *events.Profile) { p.Languages = []string{"ar"}; p.InterpreterOK = true },
			checks:  []cwCheck{ranks(emo, "pt.b.svc", "pt.a.svc"), says("pt.b.svc", "provides an interpreter"), noTies}},
		{name: "distance: the nearer first",
			why:    "the same service 22 km away comes after the one in town",
			svcs:   []directory.Service{svc("pt.far.svc", at(sintraLat, sintraLon)), svc("pt.near.svc")},
			checks: []cwCheck{ranks(emo, "pt.near.svc", "pt.far.svc"), says("pt.far.svc", "km")}},
		{name: "channel: her preferred channel first",
			why:     "she prefers the phone: the service reachable by phone before one she must visit",
			svcs:    []directory.Service{svc("pt.visit.svc", by(events.ChannelInPerson)), svc("pt.phone.svc", by(events.ChannelPhone))},
			profile: func(p *events.Profile) { p.Channels = []string{events.ChannelPhone, events.ChannelInPerson} },
			checks:  []cwCheck{first(emo, "pt.phone.svc")}},
		{name: "accessibility: met beats waived",
			why:  "a wheelchair user: the service with a ramp before the one usable only by phone",
			svcs: []directory.Service{svc("pt.phone.svc"), svc("pt.ramp.svc", meets("wheelchair"))},
			profile: func(p *events.Profile) {
				p.Accessibility = []string{"wheelchair"}
				p.Channels = []string{events.ChannelInPerson, events.ChannelPhone}
			},
			checks: []cwCheck{first(emo, "pt.ramp.svc")}},
		{name: "load: open offers lower the rank",
			why:    "a service with nine of ten slots taken comes after an idle one",
			svcs:   []directory.Service{svc("pt.busy.svc"), svc("pt.idle.svc")},
			stats:  stats{"pt.busy.svc": {OpenOffers: 9}},
			checks: []cwCheck{ranks(emo, "pt.idle.svc", "pt.busy.svc"), says("pt.busy.svc", "9 open offers")}},
		{name: "acceptance: a service that declines most offers comes later",
			why:    "one that accepted 1 of 10 offers is a worse bet than one that accepted 9 of 10",
			svcs:   []directory.Service{svc("pt.declines.svc"), svc("pt.accepts.svc")},
			stats:  stats{"pt.declines.svc": {Answered: 10, Accepted: 1}, "pt.accepts.svc": {Answered: 10, Accepted: 9}},
			checks: []cwCheck{ranks(emo, "pt.accepts.svc", "pt.declines.svc"), says("pt.accepts.svc", "accepted 9 of 10")}},
		{name: "response time: the quicker first",
			why:     "for an urgent case the service that answers in an hour before one that takes two days",
			svcs:    []directory.Service{svc("pt.slow.svc"), svc("pt.quick.svc")},
			profile: func(p *events.Profile) { p.Urgency = events.UrgencyUrgent },
			stats:   stats{"pt.slow.svc": {Answered: 5, Accepted: 5, ResponseTime: 48 * time.Hour}, "pt.quick.svc": {Answered: 5, Accepted: 5, ResponseTime: time.Hour}},
			checks:  []cwCheck{ranks(emo, "pt.quick.svc", "pt.slow.svc")}},
		{name: "defect: exact ties break on the name",
			why:    "two identical helplines: the order is the names', which the caseworker reads, not the ids'",
			svcs:   []directory.Service{svc("pt.a.line", named("Zebra line"), unlocated), svc("pt.b.line", named("Apoio line"), unlocated)},
			checks: []cwCheck{ranks(emo, "pt.b.line", "pt.a.line")}},

		// Cross-border (Art. 17).
		{name: "cross-border: ongoing support from home, the rest where the crime was",
			why: "a Dutch resident assaulted in Lisbon: court accompaniment in Lisbon, psychological support from the Netherlands by phone",
			svcs: []directory.Service{
				svc("pt.court.svc", offering(court, events.NeedSupportPsychological)),
				svc("nl.x.psy", offering(events.NeedSupportPsychological), speaking("nl"), servesRemotely("nl")),
			},
			profile: then(needs(court, events.NeedSupportPsychological), func(p *events.Profile) {
				p.Location.ResidenceCountry = "nl"
				p.Languages = []string{"nl", "pt"}
				p.Channels = []string{events.ChannelInPerson, events.ChannelPhone}
			}),
			checks: []cwCheck{first(court, "pt.court.svc"), first(events.NeedSupportPsychological, "nl.home.psy"), says("nl.home.psy", "serves nl")}},
		{name: "cross-border: a service of the residence country that only works in person is not a candidate",
			why: "a Dutch office she would have to visit cannot help her in Lisbon",
			svcs: []directory.Service{svc("pt.local.svc"), func() directory.Service {
				s := svc("nl.office.svc", speaking("nl"))
				s.Organisation, s.Area = "nl.office", directory.ServiceArea{Countries: []string{"nl"}, Regions: []string{"NL32"}}
				s.Locations[0] = directory.Location{ID: "ams", Country: "nl", Region: "NL329", Lat: 52.37, Lon: 4.90}
				return s
			}()},
			profile: func(p *events.Profile) { p.Location.ResidenceCountry = "nl"; p.Languages = []string{"nl", "pt"} },
			checks:  []cwCheck{ranks(emo, "pt.local.svc")}},

		// Regions (NUTS 2021 tags of the directory).
		{name: "region: a service of the NUTS 2 region covers its NUTS 3 regions",
			why:     "a victim in PT170 is in the area of a service for PT17",
			svcs:    []directory.Service{func() directory.Service { s := svc("pt.r.svc"); s.Locations = nil; return s }()},
			profile: func(p *events.Profile) { p.Location.Lat, p.Location.Lon = nil, nil },
			checks:  []cwCheck{first(emo, "pt.r.svc")}},
		{name: "defect: region in NUTS 2024 meets services tagged NUTS 2021",
			why:     "Setúbal is PT1B in NUTS 2024; the directory says PT17 (NUTS 2021), which contains it: the local service must not drop out",
			svcs:    []directory.Service{func() directory.Service { s := svc("pt.r.svc"); s.Locations = nil; return s }()},
			profile: func(p *events.Profile) { p.Location.Region, p.Location.Lat, p.Location.Lon = "PT1B0", nil, nil },
			checks:  []cwCheck{first(emo, "pt.r.svc")}},
		{name: "region: a NUTS 2024 NUTS 2 code too",
			why:     "Grande Lisboa, PT1A, lies in PT17 as well",
			svcs:    []directory.Service{func() directory.Service { s := svc("pt.r.svc"); s.Locations = nil; return s }()},
			profile: func(p *events.Profile) { p.Location.Region, p.Location.Lat, p.Location.Lon = "PT1A", nil, nil },
			checks:  []cwCheck{first(emo, "pt.r.svc")}},
		{name: "region: a service of another region is not a candidate",
			why: "a service for the Porto region (PT11) does not serve Lisbon",
			svcs: []directory.Service{func() directory.Service {
				s := svc("pt.porto.svc")
				s.Area.Regions, s.Locations = []string{"PT11"}, nil
				return s
			}()},
			profile: func(p *events.Profile) { p.Location.Lat, p.Location.Lon = nil, nil },
			checks:  []cwCheck{unmatched(emo, routing.UnmatchedNoService, nil)}},

		// Plans.
		{name: "fallbacks are ranked and the plan says why",
			why:    "three services: the primary and two fallbacks in order, each with its distance",
			svcs:   []directory.Service{svc("pt.c.svc", at(setubalLat, setubalLon)), svc("pt.a.svc"), svc("pt.b.svc", at(sintraLat, sintraLon))},
			checks: []cwCheck{ranks(emo, "pt.a.svc", "pt.b.svc", "pt.c.svc"), says("pt.a.svc", "covers support.emotional")}},
		{name: "shelter for a man: not a women's shelter",
			why:     "a male victim of domestic violence needs shelter: the women's shelter is excluded by eligibility and the gap names it",
			svcs:    []directory.Service{svc("pt.wshelter.svc", offering(shelter), onlyGenders("female"))},
			profile: then(needs(shelter), func(p *events.Profile) { p.Gender = "male" }, victimCrimes("domestic_violence")),
			checks:  []cwCheck{unmatched(shelter, routing.UnmatchedExcluded, map[string]int{routing.ConstraintEligibility: 1}), noRelaxed}},
		{name: "relaxed options never mix with the plan",
			why:     "shelter is met; emotional support only by relaxing the channel: the video service is shown apart, never as a fallback",
			svcs:    []directory.Service{svc("pt.shelter.svc", offering(shelter)), svc("pt.video.svc", by(events.ChannelVideo))},
			profile: needs(shelter, emo),
			checks:  []cwCheck{ranks(shelter, "pt.shelter.svc"), never("pt.video.svc"), relaxed(emo, routing.ConstraintChannel, "pt.video.svc")}},
	}
}

func TestCaseworkerSuite(t *testing.T) {
	t.Parallel()
	cases := caseworkerCases()
	if len(cases) < 40 {
		t.Fatalf("%d cases, want at least 40", len(cases))
	}
	seen := map[string]bool{}
	for _, tc := range cases {
		if seen[tc.name] || tc.why == "" || len(tc.checks) == 0 {
			t.Fatalf("case %q: duplicate, or without why or checks", tc.name)
		}
		seen[tc.name] = true
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := baseProfile()
			if tc.profile != nil {
				tc.profile(&p)
			}
			when := tc.at
			if when.IsZero() {
				when = mondayMorning
			}
			d := &directory.Directory{Services: tc.svcs}
			orgs := map[string]bool{}
			for _, s := range tc.svcs {
				if !orgs[s.Organisation] {
					orgs[s.Organisation] = true
					d.Organisations = append(d.Organisations, directory.Organisation{ID: s.Organisation, Name: s.Organisation, Country: s.Organisation[:2]})
				}
			}
			m := routing.NewMatcher(routing.Config{Stats: tc.stats})
			opts := []routing.MatchOption{routing.At(when)}
			if tc.referrer != "" {
				opts = append(opts, routing.WithReferrer(tc.referrer))
			}
			plan, err := m.Match(directory.NewIndex(d, 1), p, opts...)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("why: %s", tc.why)
			for _, g := range plan.Groups {
				for _, c := range g.Candidates {
					if v := violation(d.Service(c.Service), p, when, tc.referrer); v != "" {
						t.Errorf("%s planned but fails %s", c.Service, v)
					}
				}
			}
			n := len(plan.Unmatched)
			for _, g := range plan.Groups {
				n += len(g.Needs)
			}
			if n != len(p.Needs) {
				t.Errorf("%d needs, %d planned or unmatched", len(p.Needs), n)
			}
			if err := events.ValidatePayload(plan.Event()); err != nil {
				t.Errorf("planned payload: %v", err)
			}
			for _, c := range tc.checks {
				c(t, plan)
			}
		})
	}
}
