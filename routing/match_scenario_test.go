package routing_test

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/invictus-network/invictus/directory"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/routing"
)

// Scenarios on the demo directory, judged as a caseworker would: what must
// be in the plan and what must never be.

// demo is the demo directory of seed 1 and its index, built once.
var demo = sync.OnceValues(func() (*directory.Directory, *directory.Index) {
	d, err := directory.Demo(1)
	if err != nil {
		panic(err)
	}
	return d, directory.NewIndex(d, 1)
})

// Friday 27 November 2026, 03:00 in Marseille, and noon of the same day.
var (
	threeAM = time.Date(2026, 11, 27, 2, 0, 0, 0, time.UTC)
	noon    = time.Date(2026, 11, 27, 11, 0, 0, 0, time.UTC)
)

type scenario struct {
	t    *testing.T
	d    *directory.Directory
	p    events.Profile
	at   time.Time
	plan *routing.Plan
}

// victim returns a profile: an adult in the city who speaks langs and can
// come in person or talk by phone, needing needs soon.
func victim(city string, langs []string, needs ...string) events.Profile {
	for _, c := range directory.Cities() {
		if c.Name == city {
			return events.Profile{
				Needs: needs, Urgency: events.UrgencySoon,
				Location:  events.Location{Country: c.Country, Region: c.NUTS3, Lat: ptr(round2(c.Lat)), Lon: ptr(round2(c.Lon))},
				Languages: langs, AgeBand: "adult",
				Channels: []string{events.ChannelInPerson, events.ChannelPhone},
			}
		}
	}
	panic("no city " + city)
}

func round2(f float64) float64 {
	return float64(int(f*100+0.5*sign(f))) / 100
}

func sign(f float64) float64 {
	if f < 0 {
		return -1
	}
	return 1
}

// run plans p at the time and checks what every plan must satisfy: no
// candidate fails a hard constraint, every need is planned or reported,
// the event is valid.
func run(t *testing.T, p events.Profile, at time.Time, opts ...routing.MatchOption) *scenario {
	t.Helper()
	d, snap := demo()
	plan, err := routing.NewMatcher(routing.Config{}).Match(snap, p, append(opts, routing.At(at))...)
	if err != nil {
		t.Fatal(err)
	}
	sc := &scenario{t: t, d: d, p: p, at: at, plan: plan}
	for _, c := range sc.candidates() {
		if v := violation(sc.svc(c.Service), p, at, ""); v != "" {
			t.Errorf("%s planned despite failing %s", c.Service, v)
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
	return sc
}

func (sc *scenario) svc(id string) *directory.Service {
	s := sc.d.Service(id)
	if s == nil {
		sc.t.Fatalf("no service %s", id)
	}
	return s
}

func (sc *scenario) candidates() []routing.Candidate {
	var out []routing.Candidate
	for _, g := range sc.plan.Groups {
		out = append(out, g.Candidates...)
	}
	return out
}

// group returns the group planned for the need, failing if none.
func (sc *scenario) group(need string) routing.Group {
	sc.t.Helper()
	for _, g := range sc.plan.Groups {
		if slices.Contains(g.Needs, need) {
			return g
		}
	}
	sc.t.Fatalf("need %s not planned; groups %+v, unmatched %v", need, sc.plan.Groups, sc.plan.Unmatched)
	return routing.Group{}
}

// every fails unless pred holds for every candidate.
func (sc *scenario) every(what string, pred func(*directory.Service, routing.Candidate) bool) {
	sc.t.Helper()
	for _, c := range sc.candidates() {
		if !pred(sc.svc(c.Service), c) {
			sc.t.Errorf("%s: %s (%v)", what, c.Service, c.Reasons)
		}
	}
}

func (sc *scenario) unmatched(need, reason string) {
	sc.t.Helper()
	if !slices.ContainsFunc(sc.plan.Unmatched, func(u events.UnmatchedNeed) bool { return u.Need == need && u.Reason == reason }) {
		sc.t.Errorf("want %s unmatched as %s; unmatched %v", need, reason, sc.plan.Unmatched)
	}
}

func speaks(s *directory.Service, l string) bool { return slices.Contains(s.Languages, l) }

func serves(s *directory.Service, cc string) bool { return slices.Contains(s.Area.Countries, cc) }

func nearestKm(s *directory.Service, p events.Profile) float64 {
	best := 1e9
	for _, l := range s.Locations {
		best = min(best, directory.DistanceKm(*p.Location.Lat, *p.Location.Lon, l.Lat, l.Lon))
	}
	return best
}

func TestScenarioLisbonDomesticViolenceShelterAndSupport(t *testing.T) {
	t.Parallel()
	p := victim("Lisbon", []string{"pt"}, events.NeedSafetyShelter, events.NeedSupportEmotional)
	p.Crimes, p.Flags = []string{"domestic_violence"}, []string{"close_relationship_offender"}
	p.Gender, p.Urgency = "female", events.UrgencyUrgent
	sc := run(t, p, noon)
	// Safe houses give emotional support too: one placement is enough.
	if len(sc.plan.Groups) != 1 {
		t.Fatalf("%d placements, want one safe place that also supports", len(sc.plan.Groups))
	}
	g := sc.plan.Groups[0]
	primary := sc.svc(g.Primary().Service)
	if !slices.Contains(primary.Crimes, "domestic_violence") || !speaks(primary, "pt") {
		t.Errorf("primary %s: want a Portuguese-speaking domestic-violence service", primary.ID)
	}
	if len(g.Candidates) < 3 {
		t.Errorf("only %d candidates: a shelter can be full tomorrow, fallbacks are needed", len(g.Candidates))
	}
	sc.every("outside Portugal", func(s *directory.Service, _ routing.Candidate) bool { return serves(s, "pt") })
	sc.every("not a shelter", func(s *directory.Service, _ routing.Candidate) bool {
		return slices.Contains(s.Needs, events.NeedSafetyShelter)
	})
	for _, r := range []string{"covers safety.shelter and support.emotional", "speaks pt"} {
		if !slices.Contains(g.Primary().Reasons, r) {
			t.Errorf("primary reasons %q lack %q", g.Primary().Reasons, r)
		}
	}
}

func TestScenarioZagrebChildVictimOfSexualViolence(t *testing.T) {
	t.Parallel()
	p := victim("Zagreb", []string{"hr"}, events.NeedSupportPsychological, events.NeedInfoRights, events.NeedSupportTrauma)
	p.AgeBand, p.Crimes, p.Flags = "child", []string{"sexual_violence"}, []string{"child"}
	sc := run(t, p, noon)
	sc.every("does not take children", func(s *directory.Service, _ routing.Candidate) bool { return s.Eligibility.Accepts("child", "") })
	sc.every("not Croatian-speaking", func(s *directory.Service, _ routing.Candidate) bool { return speaks(s, "hr") })
	primary := sc.svc(sc.group(events.NeedSupportPsychological).Primary().Service)
	if !slices.Contains(primary.Crimes, "sexual_violence") && !slices.Contains(primary.Flags, "child") {
		t.Errorf("primary %s is specialised neither in sexual violence nor in children", primary.ID)
	}
	// Nobody in Zagreb lists trauma support: a gap to report, not to hide.
	sc.unmatched(events.NeedSupportTrauma, routing.UnmatchedNoService)
}

func TestScenarioFlorenceTouristLivingInFinland(t *testing.T) {
	t.Parallel()
	p := victim("Florence", []string{"en"}, events.NeedInfoRights, events.NeedSupportEmotional, events.NeedInfoCompensation)
	p.Location.ResidenceCountry = "fi"
	p.Crimes, p.Flags = []string{"robbery"}, []string{"non_resident"}
	p.Channels = []string{events.ChannelInPerson, events.ChannelPhone, events.ChannelVideo}
	sc := run(t, p, noon)
	// Information on her rights here and now, from someone in Florence.
	local := sc.svc(sc.group(events.NeedInfoRights).Primary().Service)
	if !serves(local, "it") || nearestKm(local, p) > 20 {
		t.Errorf("rights information from %s: want an Italian service near Florence", local.ID)
	}
	// Emotional support that goes on when she is home, from Finland.
	home := sc.group(events.NeedSupportEmotional)
	if !serves(sc.svc(home.Primary().Service), "fi") {
		t.Errorf("emotional support from %s: want a service in Finland", home.Primary().Service)
	}
	if !slices.ContainsFunc(home.Candidates, func(c routing.Candidate) bool { return c.Organisation == "fi.riku" }) {
		t.Errorf("RIKU, Finland's general victim support, is not among %v", planned(&routing.Plan{Groups: []routing.Group{home}}))
	}
	primaries := map[string]bool{}
	for _, g := range sc.plan.Groups {
		if primaries[g.Primary().Service] {
			t.Errorf("%s is the primary of two placements", g.Primary().Service)
		}
		primaries[g.Primary().Service] = true
	}
	sc.every("speaks no English", func(s *directory.Service, _ routing.Candidate) bool { return speaks(s, "en") || s.InterpreterAvailable })
}

func TestScenarioSofiaTraffickingVictimSpeakingOnlyRomanian(t *testing.T) {
	t.Parallel()
	p := victim("Sofia", []string{"ro"}, events.NeedSafetyShelter, events.NeedInfoRights, events.NeedSupportPsychological)
	p.Crimes, p.InterpreterOK = []string{"trafficking"}, true
	sc := run(t, p, noon)
	shelter := sc.group(events.NeedSafetyShelter)
	if s := sc.svc(shelter.Primary().Service); !slices.Contains(s.Crimes, "trafficking") || !serves(s, "bg") {
		t.Errorf("shelter with %s: want a Bulgarian trafficking specialist", s.ID)
	}
	if len(sc.plan.Unmatched) != 0 {
		t.Errorf("unmatched %v: with an interpreter every need can be met", sc.plan.Unmatched)
	}
	sc.every("the interpreter is not explained", func(_ *directory.Service, c routing.Candidate) bool {
		return slices.ContainsFunc(c.Reasons, func(r string) bool { return strings.Contains(r, "interpreter") })
	})
}

func TestScenarioSofiaTraffickingVictimRefusingAnInterpreter(t *testing.T) {
	t.Parallel()
	p := victim("Sofia", []string{"ro"}, events.NeedSafetyShelter, events.NeedInfoRights)
	p.Crimes = []string{"trafficking"}
	sc := run(t, p, noon)
	// No shelter in Sofia speaks Romanian or brings an interpreter: the gap
	// is reported with its cause.
	sc.unmatched(events.NeedSafetyShelter, routing.UnmatchedExcluded)
	if sc.plan.Excluded[routing.ConstraintLanguage] == 0 {
		t.Errorf("excluded %v: want services excluded for language", sc.plan.Excluded)
	}
	sc.every("neither speaks Romanian nor brings an interpreter", func(s *directory.Service, _ routing.Candidate) bool {
		return speaks(s, "ro") || s.InterpreterAvailable
	})
}

func TestScenarioMarseilleEmergencyAtThreeAM(t *testing.T) {
	t.Parallel()
	p := victim("Marseille", []string{"fr"}, events.NeedSafetyShelter, events.NeedSafetyRiskAdvice)
	p.Urgency, p.Crimes = events.UrgencyEmergency, []string{"domestic_violence"}
	sc := run(t, p, threeAM)
	if sc.plan.Urgency != events.UrgencyEmergency {
		t.Errorf("urgency %q", sc.plan.Urgency)
	}
	// At 3 a.m. no office is open: only services that never close.
	sc.every("not open at 3 a.m.", func(s *directory.Service, _ routing.Candidate) bool { return s.Hours.Always })
	if sc.plan.Excluded[routing.ConstraintOpenNow] == 0 {
		t.Errorf("excluded %v: offices closed at night must be counted", sc.plan.Excluded)
	}
	if !slices.Contains(sc.group(events.NeedSafetyShelter).Primary().Reasons, "24/7") {
		t.Errorf("primary reasons lack 24/7")
	}
}

func TestScenarioMarseilleEmergencyAtNoonStillPuts247First(t *testing.T) {
	t.Parallel()
	p := victim("Marseille", []string{"fr"}, events.NeedInfoRights, events.NeedSupportEmotional)
	p.Urgency = events.UrgencyEmergency
	sc := run(t, p, noon)
	open := 0
	for _, g := range sc.plan.Groups {
		seenOffice := false
		for _, c := range g.Candidates {
			s := sc.svc(c.Service)
			if !s.Hours.Always {
				seenOffice = true
				open++
			} else if seenOffice {
				t.Errorf("24/7 %s ranked after an office in %s", s.ID, g.Placement)
			}
		}
	}
	if open == 0 {
		t.Errorf("offices open at noon may help in an emergency too; none planned")
	}
}

func TestScenarioEveryNeedIsOfferedInAmsterdam(t *testing.T) {
	t.Parallel()
	// The demo offers every need code in every demo country, interpretation
	// included (issue 14: it used to be "not covered" everywhere).
	p := victim("Amsterdam", []string{"nl"}, events.NeedCommInterpretation, events.NeedInfoRights, events.NeedSupportFinancial, events.NeedCrossborderAssistance)
	sc := run(t, p, noon)
	if len(sc.plan.Unmatched) != 0 {
		t.Errorf("unmatched %+v: every need is offered in the Netherlands", sc.plan.Unmatched)
	}
	if s := sc.svc(sc.group(events.NeedInfoRights).Primary().Service); nearestKm(s, p) > 5 {
		t.Errorf("rights information from %s, %.0f km away: a local office is expected", s.ID, nearestKm(s, p))
	}
}

func TestScenarioDeafVictimInParis(t *testing.T) {
	t.Parallel()
	p := victim("Paris", []string{"fr"}, events.NeedInfoRights, events.NeedSupportEmotional)
	p.Accessibility = []string{"sign_language"}
	sc := run(t, p, noon)
	sc.every("no sign language", func(s *directory.Service, _ routing.Candidate) bool {
		ok := slices.Contains(s.Accessibility, "sign_language")
		for _, l := range s.Locations {
			ok = ok || slices.Contains(l.Accessibility, "sign_language")
		}
		return ok
	})
	if sc.plan.Excluded[routing.ConstraintAccessibility] == 0 {
		t.Errorf("excluded %v: services without sign language must be counted", sc.plan.Excluded)
	}
	for _, u := range sc.plan.Unmatched {
		if u.Reason != routing.UnmatchedExcluded {
			t.Errorf("%s unmatched as %s: services exist, they lack sign language", u.Need, u.Reason)
		}
	}
}

func TestScenarioWheelchairUserInPorto(t *testing.T) {
	t.Parallel()
	p := victim("Porto", []string{"pt"}, events.NeedJusticeLegalAid, events.NeedSupportEmotional)
	p.Channels, p.Accessibility = []string{events.ChannelInPerson}, []string{"wheelchair"}
	sc := run(t, p, noon)
	sc.every("no wheelchair access", func(s *directory.Service, _ routing.Candidate) bool {
		ok := slices.Contains(s.Accessibility, "wheelchair")
		for _, l := range s.Locations {
			ok = ok || slices.Contains(l.Accessibility, "wheelchair")
		}
		return ok
	})
	sc.every("not in person", func(s *directory.Service, _ routing.Candidate) bool {
		return slices.Contains(s.Channels, events.ChannelInPerson)
	})
	if len(sc.plan.Groups) == 0 {
		t.Fatalf("nothing planned: Porto's offices have step-free access")
	}
}

func TestScenarioMaleVictimNeedingShelterInLisbon(t *testing.T) {
	t.Parallel()
	p := victim("Lisbon", []string{"pt"}, events.NeedSafetyShelter)
	p.Gender, p.Crimes = "male", []string{"domestic_violence"}
	sc := run(t, p, noon)
	sc.every("does not take men", func(s *directory.Service, _ routing.Candidate) bool { return s.Eligibility.Accepts("adult", "male") })
	if sc.plan.Excluded[routing.ConstraintEligibility] == 0 {
		t.Errorf("excluded %v: the women-only safe house must be counted", sc.plan.Excluded)
	}
	sc.group(events.NeedSafetyShelter)
}

func TestScenarioOlderVictimInHelsinkiByPhone(t *testing.T) {
	t.Parallel()
	p := victim("Helsinki", []string{"fi"}, events.NeedSupportEmotional, events.NeedInfoRights)
	p.AgeBand, p.Crimes, p.Flags = "older", []string{"elder_abuse"}, []string{"older_person"}
	p.Channels = []string{events.ChannelPhone}
	sc := run(t, p, noon)
	sc.every("no phone", func(s *directory.Service, _ routing.Candidate) bool {
		return slices.Contains(s.Channels, events.ChannelPhone)
	})
	sc.every("no Finnish", func(s *directory.Service, _ routing.Candidate) bool { return speaks(s, "fi") })
	sc.every("not for older people", func(s *directory.Service, _ routing.Candidate) bool { return s.Eligibility.Accepts("older", "") })
	if sc.plan.Excluded[routing.ConstraintChannel] == 0 {
		t.Errorf("excluded %v: in-person-only services must be counted", sc.plan.Excluded)
	}
}

func TestScenarioDutchResidentAssaultedInLisbon(t *testing.T) {
	t.Parallel()
	p := victim("Lisbon", []string{"nl", "en"}, events.NeedJusticeCourtAccompaniment, events.NeedSupportPsychological)
	p.Location.ResidenceCountry, p.Crimes = "nl", []string{"physical_assault"}
	sc := run(t, p, noon)
	// The trial is in Lisbon: someone there goes to court with her.
	court := sc.svc(sc.group(events.NeedJusticeCourtAccompaniment).Primary().Service)
	if !serves(court, "pt") || !slices.Contains(court.Channels, events.ChannelInPerson) {
		t.Errorf("court accompaniment by %s: want an in-person service in Portugal", court.ID)
	}
	// Psychological support goes on at home, in the Netherlands.
	if home := sc.svc(sc.group(events.NeedSupportPsychological).Primary().Service); !serves(home, "nl") {
		t.Errorf("psychological support by %s: want a Dutch service", home.ID)
	}
}

func TestScenarioVideoOnlyInTurin(t *testing.T) {
	t.Parallel()
	p := victim("Turin", []string{"it"}, events.NeedSupportPsychological)
	p.Channels = []string{events.ChannelVideo}
	sc := run(t, p, noon)
	sc.every("no video", func(s *directory.Service, _ routing.Candidate) bool {
		return slices.Contains(s.Channels, events.ChannelVideo)
	})
	sc.group(events.NeedSupportPsychological)
}

func TestScenarioPreferredOrganisationInLisbon(t *testing.T) {
	t.Parallel()
	p := victim("Lisbon", []string{"pt"}, events.NeedSupportEmotional, events.NeedInfoRights)
	without := run(t, p, noon)
	with := run(t, p, noon, routing.WithPreferredOrganisation("pt.apav"))
	if without.plan.Groups[0].Primary().Organisation == "pt.apav" {
		t.Fatalf("APAV is first anyway: the scenario shows nothing")
	}
	if got := with.plan.Groups[0].Primary().Organisation; got != "pt.apav" {
		t.Errorf("primary of %s with APAV preferred", got)
	}
}

func TestScenarioYouthInRotterdamGetsTheLocalOffice(t *testing.T) {
	t.Parallel()
	p := victim("Rotterdam", []string{"nl"}, events.NeedSupportEmotional, events.NeedInfoRights)
	p.AgeBand, p.Crimes = "youth", []string{"image_based_abuse"}
	sc := run(t, p, noon)
	sc.every("does not take young people", func(s *directory.Service, _ routing.Candidate) bool { return s.Eligibility.Accepts("youth", "") })
	if got := sc.plan.Groups[0].Primary().Service; got != "nl.local-rotterdam.general" {
		t.Errorf("primary %s: the Rotterdam office meets both needs around the corner", got)
	}
}

func TestScenarioFaroPrefersTheOfficeInTown(t *testing.T) {
	t.Parallel()
	p := victim("Faro", []string{"pt"}, events.NeedSupportEmotional, events.NeedSupportPractical)
	sc := run(t, p, noon)
	g := sc.plan.Groups[0]
	if s := sc.svc(g.Primary().Service); nearestKm(s, p) > 5 {
		t.Errorf("primary %s: an office in Faro should come before national services without a local address", s.ID)
	}
	if !slices.ContainsFunc(g.Primary().Reasons, func(r string) bool { return strings.HasSuffix(r, " km") }) {
		t.Errorf("primary reasons %q give no distance", g.Primary().Reasons)
	}
}

func TestScenarioSamePlanForTheSameRevision(t *testing.T) {
	t.Parallel()
	p := victim("Lisbon", []string{"pt", "en"}, events.NeedSafetyShelter, events.NeedJusticeLegalAid, events.NeedSupportPsychological)
	a := run(t, p, noon)
	b := run(t, p, noon)
	if !reflect.DeepEqual(a.plan, b.plan) {
		t.Fatalf("two plans differ")
	}
	ja, _ := json.Marshal(a.plan.Event())
	jb, _ := json.Marshal(b.plan.Event())
	if string(ja) != string(jb) {
		t.Fatalf("two planned events differ:\n%s\n%s", ja, jb)
	}
	if a.plan.Revision != 1 {
		t.Errorf("revision %d, want the snapshot's 1", a.plan.Revision)
	}
}
