package routing_test

import (
	"errors"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/invictus-network/invictus/directory"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/routing"
)

// Lisbon, where the victims of these tests are.
const lisLat, lisLon = 38.72, -9.14

func ptr(f float64) *float64 { return &f }

// baseService is an always-open, accepting service in Lisbon that meets
// support.emotional in Portuguese, in person or by phone.
func baseService(id string) directory.Service {
	return directory.Service{
		ID: id, Organisation: directory.OrgIDOf(id), Name: "Service " + id, Status: directory.StatusActive,
		Needs:     []string{events.NeedSupportEmotional},
		Languages: []string{"pt"},
		Channels:  []string{events.ChannelInPerson, events.ChannelPhone},
		Area:      directory.ServiceArea{Countries: []string{"pt"}, Regions: []string{"PT17"}},
		Locations: []directory.Location{{ID: "lisboa", Country: "pt", Region: "PT170", Lat: lisLat, Lon: lisLon}},
		Hours:     directory.Schedule{TimeZone: "Europe/Lisbon", Always: true},
		Capacity:  directory.Capacity{Status: events.CapacityAccepting, MaxOpen: 10},
	}
}

// baseProfile is an adult in Lisbon who needs emotional support, speaks
// Portuguese and can come in person.
func baseProfile() events.Profile {
	return events.Profile{
		Needs:     []string{events.NeedSupportEmotional},
		Urgency:   events.UrgencyRoutine,
		Location:  events.Location{Country: "pt", Region: "PT170", Lat: ptr(lisLat), Lon: ptr(lisLon)},
		Languages: []string{"pt"},
		AgeBand:   "adult",
		Channels:  []string{events.ChannelInPerson},
	}
}

// index builds a snapshot of the services (organisations are derived).
func index(svcs ...directory.Service) *directory.Index {
	d := &directory.Directory{Services: svcs}
	seen := map[string]bool{}
	for _, s := range svcs {
		if !seen[s.Organisation] {
			seen[s.Organisation] = true
			d.Organisations = append(d.Organisations, directory.Organisation{ID: s.Organisation, Name: s.Organisation, Country: s.Organisation[:2]})
		}
	}
	return directory.NewIndex(d, 42)
}

// planned returns the ids of every candidate of the plan.
func planned(p *routing.Plan) []string {
	var out []string
	for _, g := range p.Groups {
		for _, c := range g.Candidates {
			out = append(out, c.Service)
		}
	}
	return out
}

// Monday 10:00 and Sunday 03:00 in Lisbon (UTC+0 in November).
var (
	mondayMorning = time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	sundayNight   = time.Date(2026, 11, 29, 3, 0, 0, 0, time.UTC)
)

func weekdays(opens, closes string) directory.Schedule {
	s := directory.Schedule{TimeZone: "Europe/Lisbon"}
	for _, d := range directory.Days[:5] {
		s.Weekly = append(s.Weekly, directory.OpeningHours{Day: d, Opens: opens, Closes: closes})
	}
	return s
}

func TestHardConstraints(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		svc     func(*directory.Service)
		profile func(*events.Profile)
		opts    []routing.MatchOption
		at      time.Time
		// want is the constraint that excludes the service, "" if it must
		// be planned.
		want string
	}{
		{name: "eligible by default"},
		{name: "age band not accepted", svc: func(s *directory.Service) { s.Eligibility.AgeBands = []string{"child", "youth"} }, want: routing.ConstraintEligibility},
		{name: "age band accepted", svc: func(s *directory.Service) { s.Eligibility.AgeBands = []string{"child", "youth"} }, profile: func(p *events.Profile) { p.AgeBand = "child" }},
		{name: "gender not accepted", svc: func(s *directory.Service) { s.Eligibility.Genders = []string{"female"} }, profile: func(p *events.Profile) { p.Gender = "male" }, want: routing.ConstraintEligibility},
		{name: "gender unstated does not meet a service only for women", svc: func(s *directory.Service) { s.Eligibility.Genders = []string{"female"} }, want: routing.ConstraintEligibility},
		{name: "gender stated meets it", svc: func(s *directory.Service) { s.Eligibility.Genders = []string{"female"} }, profile: func(p *events.Profile) { p.Gender = "female" }},
		{name: "the referrer's own service", opts: []routing.MatchOption{routing.WithReferrer("pt.org")}, want: routing.ConstraintOwnOrganisation},
		{name: "another organisation's referral", opts: []routing.MatchOption{routing.WithReferrer("pt.other")}},
		{name: "capacity full", svc: func(s *directory.Service) { s.Capacity.Status = events.CapacityFull }, want: routing.ConstraintCapacity},
		{name: "waiting list is no exclusion", svc: func(s *directory.Service) { s.Capacity.Status = events.CapacityWaitlist }},
		{name: "no shared language", svc: func(s *directory.Service) { s.Languages = []string{"fr"} }, want: routing.ConstraintLanguage},
		{name: "victim accepts an interpreter", svc: func(s *directory.Service) { s.Languages = []string{"fr"} }, profile: func(p *events.Profile) { p.InterpreterOK = true }},
		{name: "victim refuses an interpreter, even one the service brings", svc: func(s *directory.Service) { s.Languages = []string{"fr"}; s.InterpreterAvailable = true }, want: routing.ConstraintLanguage},
		{name: "victim accepts the interpreter the service brings", svc: func(s *directory.Service) { s.Languages = []string{"fr"}; s.InterpreterAvailable = true }, profile: func(p *events.Profile) { p.InterpreterOK = true }},
		{name: "second language shared", svc: func(s *directory.Service) { s.Languages = []string{"en"} }, profile: func(p *events.Profile) { p.Languages = []string{"ro", "en"} }},
		{name: "no acceptable channel", svc: func(s *directory.Service) { s.Channels = []string{events.ChannelPhone} }, want: routing.ConstraintChannel},
		{name: "accessibility not met", profile: func(p *events.Profile) { p.Accessibility = []string{"wheelchair"} }, want: routing.ConstraintAccessibility},
		{name: "accessibility met by the location", svc: func(s *directory.Service) { s.Locations[0].Accessibility = []string{"wheelchair"} }, profile: func(p *events.Profile) { p.Accessibility = []string{"wheelchair"} }},
		{name: "accessibility met by the service", svc: func(s *directory.Service) { s.Accessibility = []string{"sign_language"} }, profile: func(p *events.Profile) { p.Accessibility = []string{"sign_language"} }},
		{name: "accessibility met at a second location", svc: func(s *directory.Service) {
			s.Locations = append(s.Locations, directory.Location{ID: "b", Country: "pt", Lat: 38.75, Lon: -9.15, Accessibility: []string{"step_free", "wheelchair"}})
		}, profile: func(p *events.Profile) { p.Accessibility = []string{"wheelchair", "step_free"} }},
		{name: "needs of two places must be met at one", svc: func(s *directory.Service) {
			s.Locations[0].Accessibility = []string{"step_free"}
			s.Locations = append(s.Locations, directory.Location{ID: "b", Country: "pt", Lat: 38.75, Lon: -9.15, Accessibility: []string{"wheelchair"}})
		}, profile: func(p *events.Profile) { p.Accessibility = []string{"wheelchair", "step_free"} }, want: routing.ConstraintAccessibility},
		{name: "place need does not arise by phone", profile: func(p *events.Profile) {
			p.Accessibility = []string{"wheelchair"}
			p.Channels = []string{events.ChannelInPerson, events.ChannelPhone}
		}},
		{name: "sign language is needed by phone too", profile: func(p *events.Profile) {
			p.Accessibility = []string{"sign_language"}
			p.Channels = []string{events.ChannelInPerson, events.ChannelPhone}
		}, want: routing.ConstraintAccessibility},
		{name: "closed in an emergency", svc: func(s *directory.Service) { s.Hours = weekdays("09:00", "17:00") }, profile: func(p *events.Profile) { p.Urgency = events.UrgencyEmergency }, at: sundayNight, want: routing.ConstraintOpenNow},
		{name: "open in an emergency", svc: func(s *directory.Service) { s.Hours = weekdays("09:00", "17:00") }, profile: func(p *events.Profile) { p.Urgency = events.UrgencyEmergency }, at: mondayMorning},
		{name: "closing time is closed", svc: func(s *directory.Service) { s.Hours = weekdays("09:00", "10:00") }, profile: func(p *events.Profile) { p.Urgency = events.UrgencyEmergency }, at: mondayMorning, want: routing.ConstraintOpenNow},
		{name: "hours in the service's time zone", svc: func(s *directory.Service) {
			s.Hours = weekdays("09:00", "10:30")
			s.Hours.TimeZone = "Europe/Helsinki" // 12:00 there
		}, profile: func(p *events.Profile) { p.Urgency = events.UrgencyEmergency }, at: mondayMorning, want: routing.ConstraintOpenNow},
		{name: "closed is fine when not an emergency", svc: func(s *directory.Service) { s.Hours = weekdays("09:00", "17:00") }, profile: func(p *events.Profile) { p.Urgency = events.UrgencyUrgent }, at: sundayNight},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := baseService("pt.org.svc")
			if tt.svc != nil {
				tt.svc(&s)
			}
			p := baseProfile()
			if tt.profile != nil {
				tt.profile(&p)
			}
			at := tt.at
			if at.IsZero() {
				at = mondayMorning
			}
			snap := index(s)
			m := routing.NewMatcher(routing.Config{})
			opts := append([]routing.MatchOption{routing.At(at)}, tt.opts...)
			plan, err := m.Match(snap, p, opts...)
			if err != nil {
				t.Fatal(err)
			}
			a, err := m.Assess(snap, p, s.ID, opts...)
			if err != nil {
				t.Fatal(err)
			}
			if a.Constraint != tt.want {
				t.Errorf("Assess: constraint %q, want %q", a.Constraint, tt.want)
			}
			if tt.want == "" {
				if !slices.Equal(planned(plan), []string{s.ID}) {
					t.Fatalf("planned %v, want [%s]; excluded %v", planned(plan), s.ID, plan.Excluded)
				}
				if plan.Excluded != nil || len(plan.Unmatched) != 0 {
					t.Errorf("excluded %v, unmatched %v; want none", plan.Excluded, plan.Unmatched)
				}
				return
			}
			if len(plan.Groups) != 0 {
				t.Fatalf("planned %v despite %s", planned(plan), tt.want)
			}
			if plan.Excluded[tt.want] != 1 || len(plan.Excluded) != 1 {
				t.Errorf("excluded %v, want {%s: 1}", plan.Excluded, tt.want)
			}
			want := []events.UnmatchedNeed{{Need: events.NeedSupportEmotional, Reason: routing.UnmatchedExcluded, Offered: 1, Excluded: map[string]int{tt.want: 1}}}
			if !reflect.DeepEqual(plan.Unmatched, want) {
				t.Errorf("unmatched %v, want %v", plan.Unmatched, want)
			}
		})
	}
}

func TestInactiveServiceIsNeverPlanned(t *testing.T) {
	t.Parallel()
	s := baseService("pt.org.svc")
	s.Status = directory.StatusInactive
	snap := index(s)
	m := routing.NewMatcher(routing.Config{})
	plan, err := m.Match(snap, baseProfile())
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Groups) != 0 {
		t.Fatalf("planned %v", planned(plan))
	}
	want := []events.UnmatchedNeed{{Need: events.NeedSupportEmotional, Reason: routing.UnmatchedNoService, Nowhere: true}}
	if !reflect.DeepEqual(plan.Unmatched, want) {
		t.Errorf("unmatched %v, want %v", plan.Unmatched, want)
	}
	a, err := m.Assess(snap, baseProfile(), s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if a.Constraint != routing.ConstraintInactive || a.Candidate {
		t.Errorf("assessment %+v: want constraint inactive, not a candidate", a)
	}
}

// stats is a StatsSource from a map.
type stats map[string]routing.ServiceStats

func (s stats) ServiceStats(id string) (routing.ServiceStats, bool) {
	st, ok := s[id]
	return st, ok
}

func TestScoreComponents(t *testing.T) {
	t.Parallel()
	const id = "pt.org.svc"
	tests := []struct {
		name      string
		component string
		svc       func(*directory.Service)
		profile   func(*events.Profile)
		stats     routing.StatsSource
		want      float64
	}{
		{name: "all needs met", component: routing.ComponentNeeds, want: 1},
		{name: "one of two needs met", component: routing.ComponentNeeds, profile: func(p *events.Profile) {
			p.Needs = append(p.Needs, events.NeedSafetyShelter)
		}, want: 0.5},

		{name: "generalist", component: routing.ComponentSpecialisation, profile: func(p *events.Profile) { p.Crimes = []string{"robbery"} }, want: routing.SpecialisationGeneralist},
		{name: "specialist in the crime", component: routing.ComponentSpecialisation, svc: func(s *directory.Service) { s.Crimes = []string{"domestic_violence"} },
			profile: func(p *events.Profile) { p.Crimes = []string{"domestic_violence"} }, want: 1},
		{name: "specialist in one of two crimes", component: routing.ComponentSpecialisation, svc: func(s *directory.Service) { s.Crimes = []string{"domestic_violence"} },
			profile: func(p *events.Profile) { p.Crimes = []string{"domestic_violence", "stalking_harassment"} }, want: 0.75},
		{name: "specialist in other crimes", component: routing.ComponentSpecialisation, svc: func(s *directory.Service) { s.Crimes = []string{"fraud"} },
			profile: func(p *events.Profile) { p.Crimes = []string{"domestic_violence"} }, want: routing.SpecialisationOther},
		{name: "flag specialist", component: routing.ComponentSpecialisation, svc: func(s *directory.Service) { s.Flags = []string{"child"} },
			profile: func(p *events.Profile) { p.Flags = []string{"child", "disability"} }, want: 0.5},
		{name: "crime and flag averaged", component: routing.ComponentSpecialisation, svc: func(s *directory.Service) { s.Crimes = []string{"sexual_violence"}; s.Flags = []string{"child"} },
			profile: func(p *events.Profile) {
				p.Crimes = []string{"sexual_violence"}
				p.Flags = []string{"child", "disability"}
			}, want: 0.75},

		{name: "first language", component: routing.ComponentLanguage, want: routing.LanguageFirst},
		{name: "other language", component: routing.ComponentLanguage, svc: func(s *directory.Service) { s.Languages = []string{"en"} },
			profile: func(p *events.Profile) { p.Languages = []string{"pt", "en"} }, want: routing.LanguageOther},
		{name: "interpreter", component: routing.ComponentLanguage, svc: func(s *directory.Service) { s.Languages = []string{"en"}; s.InterpreterAvailable = true },
			profile: func(p *events.Profile) { p.Languages = []string{"ro"}; p.InterpreterOK = true }, want: routing.LanguageInterpreterProvided},
		{name: "interpreter to be arranged", component: routing.ComponentLanguage, svc: func(s *directory.Service) { s.Languages = []string{"en"} },
			profile: func(p *events.Profile) { p.Languages = []string{"ro"}; p.InterpreterOK = true }, want: routing.LanguageInterpreter},

		{name: "at the location", component: routing.ComponentDistance, want: 1},
		{name: "one scale away", component: routing.ComponentDistance, svc: func(s *directory.Service) {
			s.Locations[0].Lat = lisLat + routing.DistanceScaleKmDefault/111.195
		}, want: math.Exp(-1)},
		{name: "nearest of two locations", component: routing.ComponentDistance, svc: func(s *directory.Service) {
			s.Locations[0].Lat = lisLat + 2
			s.Locations = append(s.Locations, directory.Location{ID: "b", Country: "pt", Lat: lisLat, Lon: lisLon})
		}, want: 1},
		{name: "no location", component: routing.ComponentDistance, svc: func(s *directory.Service) { s.Locations = nil }, want: routing.DistanceNoLocation},
		{name: "remote service far away", component: routing.ComponentDistance, svc: func(s *directory.Service) {
			s.Area = directory.ServiceArea{Countries: []string{"pt"}, Remote: true}
			s.Locations[0].Lat, s.Locations[0].Lon = 41.15, -8.61 // Porto
		}, profile: func(p *events.Profile) { p.Channels = []string{events.ChannelPhone} }, want: routing.DistanceNoLocation},

		{name: "first and only channel", component: routing.ComponentChannel, want: 1},
		{name: "first of two channels", component: routing.ComponentChannel, svc: func(s *directory.Service) { s.Channels = []string{events.ChannelInPerson} },
			profile: func(p *events.Profile) { p.Channels = []string{events.ChannelInPerson, events.ChannelPhone} }, want: 0.75},
		{name: "second of two channels", component: routing.ComponentChannel, svc: func(s *directory.Service) { s.Channels = []string{events.ChannelPhone} },
			profile: func(p *events.Profile) { p.Channels = []string{events.ChannelInPerson, events.ChannelPhone} }, want: 0.25},

		{name: "accessibility met", component: routing.ComponentAccessibility, svc: func(s *directory.Service) { s.Accessibility = []string{"wheelchair"} },
			profile: func(p *events.Profile) { p.Accessibility = []string{"wheelchair"} }, want: 1},
		{name: "accessibility waived by phone", component: routing.ComponentAccessibility,
			profile: func(p *events.Profile) {
				p.Accessibility = []string{"wheelchair"}
				p.Channels = []string{events.ChannelPhone}
			}, want: routing.AccessibilityWaived},

		{name: "accepting, no data", component: routing.ComponentLoad, want: 1},
		{name: "waiting list", component: routing.ComponentLoad, svc: func(s *directory.Service) { s.Capacity.Status = events.CapacityWaitlist }, want: routing.LoadWaitlist},
		{name: "half the open offers", component: routing.ComponentLoad, stats: stats{id: {OpenOffers: 5}}, want: 0.5},
		{name: "open offers, capacity unknown", component: routing.ComponentLoad, svc: func(s *directory.Service) { s.Capacity.MaxOpen = 0 },
			stats: stats{id: {OpenOffers: 5}}, want: 1 - 5.0/routing.LoadAssumedMaxOpen},
		{name: "saturated", component: routing.ComponentLoad, stats: stats{id: {OpenOffers: 25}}, want: 0},

		{name: "acceptance prior", component: routing.ComponentAcceptance, want: routing.PriorScore},
		{name: "acceptance observed", component: routing.ComponentAcceptance, stats: stats{id: {Answered: 10, Accepted: 8}}, want: 10.0 / 14},
		{name: "acceptance of a stranger", component: routing.ComponentAcceptance, stats: stats{"pt.other.svc": {Answered: 10}}, want: routing.PriorScore},

		{name: "response prior", component: routing.ComponentResponseTime, want: routing.PriorScore},
		{name: "response at the scale", component: routing.ComponentResponseTime, stats: stats{id: {Answered: 4, ResponseTime: routing.ResponseScaleRoutine}}, want: 0.5},
		{name: "fast response", component: routing.ComponentResponseTime, stats: stats{id: {Answered: 12, ResponseTime: time.Minute}},
			want: (12/(1+1/60.0/36) + 2) / 16},
		{name: "urgent scale", component: routing.ComponentResponseTime, profile: func(p *events.Profile) { p.Urgency = events.UrgencyUrgent },
			stats: stats{id: {Answered: 4, ResponseTime: 3 * time.Hour}}, want: (4*0.25 + 2) / 8},

		{name: "serves the residence for ongoing support", component: routing.ComponentResidence, svc: func(s *directory.Service) {
			s.Area = directory.ServiceArea{Countries: []string{"fi"}, Remote: true}
		}, profile: func(p *events.Profile) {
			p.Location.ResidenceCountry = "fi"
			p.Channels = []string{events.ChannelPhone}
		}, want: 1},
		{name: "local service for ongoing support", component: routing.ComponentResidence, profile: func(p *events.Profile) {
			p.Location.ResidenceCountry = "fi"
			p.Needs = []string{events.NeedSupportEmotional, events.NeedInfoRights}
		}, svc: func(s *directory.Service) { s.Needs = []string{events.NeedSupportEmotional, events.NeedInfoRights} }, want: 0.5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := baseService(id)
			if tt.svc != nil {
				tt.svc(&s)
			}
			p := baseProfile()
			if tt.profile != nil {
				tt.profile(&p)
			}
			m := routing.NewMatcher(routing.Config{Stats: tt.stats})
			a, err := m.Assess(index(s), p, id, routing.At(mondayMorning))
			if err != nil {
				t.Fatal(err)
			}
			if a.Constraint != "" {
				t.Fatalf("excluded by %s", a.Constraint)
			}
			got, ok := a.Components[tt.component]
			if !ok {
				t.Fatalf("no component %s in %v", tt.component, a.Components)
			}
			if math.Abs(got-tt.want) > 1e-3 {
				t.Errorf("%s = %.5f, want %.5f", tt.component, got, tt.want)
			}
			// The score is the weighted mean of the components.
			w := weightsByName(routing.DefaultWeights())
			sum, wsum := 0.0, 0.0
			for name, v := range a.Components {
				if v < 0 || v > 1 {
					t.Errorf("component %s = %v outside [0, 1]", name, v)
				}
				sum += w[name] * v
				wsum += w[name]
			}
			if math.Abs(a.Score-sum/wsum) > 1e-3 {
				t.Errorf("score %.5f, weighted mean of components %.5f", a.Score, sum/wsum)
			}
		})
	}
}

func weightsByName(w routing.Weights) map[string]float64 {
	return map[string]float64{
		routing.ComponentNeeds: w.Needs, routing.ComponentSpecialisation: w.Specialisation, routing.ComponentLanguage: w.Language,
		routing.ComponentDistance: w.Distance, routing.ComponentChannel: w.Channel, routing.ComponentAccessibility: w.Accessibility,
		routing.ComponentLoad: w.Load, routing.ComponentAcceptance: w.Acceptance, routing.ComponentResponseTime: w.ResponseTime,
		routing.ComponentResidence: w.Residence,
	}
}

func TestComponentsApplyToTheProfile(t *testing.T) {
	t.Parallel()
	s := baseService("pt.org.svc")
	m := routing.NewMatcher(routing.Config{})
	p := baseProfile()
	p.Location.Lat, p.Location.Lon = nil, nil
	a, err := m.Assess(index(s), p, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{routing.ComponentDistance, routing.ComponentSpecialisation, routing.ComponentAccessibility, routing.ComponentResidence} {
		if _, ok := a.Components[c]; ok {
			t.Errorf("component %s applies to a profile without coordinates, crimes, flags, accessibility needs or residence", c)
		}
	}
	for _, c := range []string{routing.ComponentNeeds, routing.ComponentLanguage, routing.ComponentChannel, routing.ComponentLoad, routing.ComponentAcceptance, routing.ComponentResponseTime} {
		if _, ok := a.Components[c]; !ok {
			t.Errorf("component %s missing", c)
		}
	}
}

func TestRanking(t *testing.T) {
	t.Parallel()
	near := baseService("pt.near.svc")
	far := baseService("pt.far.svc")
	far.Locations[0].Lat, far.Locations[0].Lon = 38.52, -8.89 // Setúbal, about 30 km
	waiting := baseService("pt.waiting.svc")
	waiting.Capacity.Status = events.CapacityWaitlist
	english := baseService("pt.english.svc")
	english.Languages = []string{"en"}
	english.InterpreterAvailable = true
	m := routing.NewMatcher(routing.Config{})
	p := baseProfile()
	p.InterpreterOK = true
	plan, err := m.Match(index(near, far, waiting, english), p)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"pt.near.svc", "pt.waiting.svc", "pt.far.svc", "pt.english.svc"}
	if got := planned(plan); !slices.Equal(got, want) {
		t.Fatalf("ranking %v, want %v", got, want)
	}
	c := plan.Groups[0].Candidates
	for i := 1; i < len(c); i++ {
		if c[i].Score > c[i-1].Score {
			t.Errorf("candidate %d scores %.4f above %d's %.4f", i, c[i].Score, i-1, c[i-1].Score)
		}
	}
}

// Exact ties break on the name a caseworker reads, then on the id: the
// order stays deterministic without falling to the id's alphabet.
func TestTiesBreakOnNameThenID(t *testing.T) {
	t.Parallel()
	names := map[string]string{"pt.d.svc": "Apoio (d)", "pt.b.svc": "Zona (b)", "pt.a.svc": "Mesa (a)", "pt.e.svc": "Casa (e)", "pt.c.svc": "Casa (e)"}
	var svcs []directory.Service
	for _, id := range []string{"pt.d.svc", "pt.b.svc", "pt.a.svc", "pt.e.svc", "pt.c.svc"} {
		s := baseService(id)
		s.Name = names[id]
		svcs = append(svcs, s)
	}
	m := routing.NewMatcher(routing.Config{Fallbacks: 3})
	// By name; the two "Casa (e)" by id.
	want := []string{"pt.d.svc", "pt.c.svc", "pt.e.svc", "pt.a.svc"}
	plan, err := m.Match(index(svcs...), baseProfile())
	if err != nil {
		t.Fatal(err)
	}
	if got := planned(plan); !slices.Equal(got, want) {
		t.Fatalf("ranking %v, want %v", got, want)
	}
	// The same with numbers out of id order: services added to a snapshot.
	snap := index(svcs[0], svcs[3]).With(
		directory.Change{Key: directory.ServiceKey(svcs[4].ID), Service: &svcs[4]},
		directory.Change{Key: directory.ServiceKey(svcs[1].ID), Service: &svcs[1]},
		directory.Change{Key: directory.ServiceKey(svcs[2].ID), Service: &svcs[2]},
	)
	plan, err = m.Match(snap, baseProfile())
	if err != nil {
		t.Fatal(err)
	}
	if got := planned(plan); !slices.Equal(got, want) {
		t.Fatalf("ranking on a derived snapshot %v, want %v", got, want)
	}
}

func TestPlanGroupsNeedsWithFewestPlacements(t *testing.T) {
	t.Parallel()
	all := baseService("pt.all.svc")
	all.Needs = []string{events.NeedSupportEmotional, events.NeedSafetyShelter, events.NeedJusticeLegalAid}
	all.Locations[0].Lat += 0.3 // 33 km away: worse on distance
	shelter := baseService("pt.shelter.svc")
	shelter.Needs = []string{events.NeedSafetyShelter}
	legal := baseService("pt.legal.svc")
	legal.Needs = []string{events.NeedJusticeLegalAid, events.NeedSupportEmotional}
	p := baseProfile()
	p.Needs = []string{events.NeedSafetyShelter, events.NeedSupportEmotional, events.NeedJusticeLegalAid, events.NeedHealthMedical}
	m := routing.NewMatcher(routing.Config{})
	plan, err := m.Match(index(all, shelter, legal), p)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Groups) != 1 {
		t.Fatalf("%d groups, want 1 placement covering three needs: %+v", len(plan.Groups), plan.Groups)
	}
	g := plan.Groups[0]
	if g.Placement != "p1" || g.Primary().Service != "pt.all.svc" || len(g.Candidates) != 1 {
		t.Errorf("group %+v: want p1 with pt.all.svc alone", g)
	}
	wantNeeds := []string{events.NeedSafetyShelter, events.NeedSupportEmotional, events.NeedJusticeLegalAid}
	if !slices.Equal(g.Needs, wantNeeds) || !slices.Equal(g.Primary().Covers, wantNeeds) {
		t.Errorf("needs %v covers %v, want %v in profile order", g.Needs, g.Primary().Covers, wantNeeds)
	}
	want := []events.UnmatchedNeed{{Need: events.NeedHealthMedical, Reason: routing.UnmatchedNoService, Nowhere: true}}
	if !reflect.DeepEqual(plan.Unmatched, want) {
		t.Errorf("unmatched %v, want %v", plan.Unmatched, want)
	}

	// Without the all-rounder: two placements, numbered in order.
	plan, err = m.Match(index(shelter, legal), p)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, g := range plan.Groups {
		got = append(got, g.Placement+":"+strings.Join(g.Needs, "+")+"="+g.Primary().Service)
	}
	wantGroups := []string{"p1:support.emotional+justice.legal_aid=pt.legal.svc", "p2:safety.shelter=pt.shelter.svc"}
	if !slices.Equal(got, wantGroups) {
		t.Errorf("groups %v, want %v", got, wantGroups)
	}
}

func TestFallbacks(t *testing.T) {
	t.Parallel()
	var svcs []directory.Service
	for i := range 40 {
		s := baseService("pt.org.s" + string(rune('a'+i%26)) + string(rune('a'+i/26)))
		s.Locations[0].Lat += float64(i) * 0.01
		svcs = append(svcs, s)
	}
	snap := index(svcs...)
	for _, tt := range []struct {
		cfg  int
		opts []routing.MatchOption
		want int
	}{
		{cfg: 0, want: 1 + routing.FallbacksDefault},
		{cfg: routing.FallbacksNone, want: 1},
		{cfg: 5, want: 6},
		{cfg: routing.FallbacksMax, want: 32},
		{cfg: 5, opts: []routing.MatchOption{routing.WithFallbacks(0)}, want: 1},
		{cfg: 5, opts: []routing.MatchOption{routing.WithFallbacks(100)}, want: 32},
	} {
		plan, err := routing.NewMatcher(routing.Config{Fallbacks: tt.cfg}).Match(snap, baseProfile(), tt.opts...)
		if err != nil {
			t.Fatal(err)
		}
		if got := len(plan.Groups[0].Candidates); got != tt.want {
			t.Errorf("Fallbacks %d, options %d: %d candidates, want %d", tt.cfg, len(tt.opts), got, tt.want)
		}
		if plan.Considered != 40 || plan.Eligible != 40 {
			t.Errorf("considered %d, eligible %d; want 40, 40", plan.Considered, plan.Eligible)
		}
	}
}

func TestEmergencyRanksAlwaysOpenFirst(t *testing.T) {
	t.Parallel()
	office := baseService("pt.a-office.svc")
	office.Hours = weekdays("09:00", "17:00")
	office.Crimes = []string{"domestic_violence"} // scores higher
	line := baseService("pt.z-line.svc")
	line.Locations[0].Lat += 0.2
	p := baseProfile()
	p.Crimes = []string{"domestic_violence"}
	m := routing.NewMatcher(routing.Config{})
	for _, tt := range []struct {
		urgency string
		want    []string
	}{
		{events.UrgencyUrgent, []string{"pt.a-office.svc", "pt.z-line.svc"}},
		{events.UrgencyEmergency, []string{"pt.z-line.svc", "pt.a-office.svc"}},
	} {
		p.Urgency = tt.urgency
		plan, err := m.Match(index(office, line), p, routing.At(mondayMorning))
		if err != nil {
			t.Fatal(err)
		}
		if got := planned(plan); !slices.Equal(got, tt.want) {
			t.Errorf("%s: ranking %v, want %v", tt.urgency, got, tt.want)
		}
		if !slices.Contains(plan.Groups[0].Primary().Reasons, "24/7") && tt.urgency == events.UrgencyEmergency {
			t.Errorf("emergency primary reasons %v lack 24/7", plan.Groups[0].Primary().Reasons)
		}
	}
}

func TestPreferredOrganisationFirst(t *testing.T) {
	t.Parallel()
	best := baseService("pt.best.svc")
	liked := baseService("pt.liked.svc")
	liked.Capacity.Status = events.CapacityWaitlist
	m := routing.NewMatcher(routing.Config{})
	plan, err := m.Match(index(best, liked), baseProfile(), routing.WithPreferredOrganisation("pt.liked"))
	if err != nil {
		t.Fatal(err)
	}
	if got := planned(plan); !slices.Equal(got, []string{"pt.liked.svc", "pt.best.svc"}) {
		t.Fatalf("ranking %v, want the preferred organisation first", got)
	}
	if !slices.Contains(plan.Groups[0].Primary().Reasons, "organisation preferred by the victim") {
		t.Errorf("reasons %v", plan.Groups[0].Primary().Reasons)
	}
}

func TestReasons(t *testing.T) {
	t.Parallel()
	s := baseService("pt.org.svc")
	s.Needs = []string{events.NeedSafetyShelter, events.NeedSupportEmotional, events.NeedJusticeLegalAid}
	s.Languages = []string{"pt", "en"}
	s.Crimes = []string{"domestic_violence"}
	s.Locations[0].Lat += 0.03 // 3.3 km north
	s.ResponseHours = 24
	p := baseProfile()
	p.Needs = []string{events.NeedSafetyShelter, events.NeedSupportEmotional}
	p.Languages = []string{"pt", "en"}
	p.Crimes = []string{"domestic_violence"}
	p.Channels = []string{events.ChannelInPerson, events.ChannelPhone}
	m := routing.NewMatcher(routing.Config{})
	plan, err := m.Match(index(s), p)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"covers safety.shelter and support.emotional",
		"specialised in domestic_violence",
		"speaks pt and en",
		"3.3 km",
		"channels: in_person, phone",
		"accepting",
		"24/7",
		"promises an answer within 24 h",
	}
	if got := plan.Groups[0].Primary().Reasons; !slices.Equal(got, want) {
		t.Errorf("reasons\n%q\nwant\n%q", got, want)
	}

	m = routing.NewMatcher(routing.Config{Stats: stats{s.ID: {Answered: 10, Accepted: 9, ResponseTime: 90 * time.Minute, OpenOffers: 3}}})
	plan, err = m.Match(index(s), p)
	if err != nil {
		t.Fatal(err)
	}
	got := plan.Groups[0].Primary().Reasons
	for _, r := range []string{"accepting", "3 open offers", "accepted 9 of 10 offers", "answers in about 2 h"} {
		if !slices.Contains(got, r) {
			t.Errorf("reasons %q lack %q", got, r)
		}
	}
}

func TestEventIsAValidPlannedPayload(t *testing.T) {
	t.Parallel()
	s := baseService("pt.org.svc")
	s.Needs = []string{events.NeedSupportEmotional, events.NeedInfoRights}
	p := baseProfile()
	p.Needs = []string{events.NeedSupportEmotional, events.NeedInfoRights, events.NeedSafetyShelter}
	p.Accessibility = []string{"wheelchair"}
	p.Channels = []string{events.ChannelInPerson, events.ChannelPhone}
	full := baseService("pt.full.svc")
	full.Needs = []string{events.NeedSafetyShelter}
	full.Capacity.Status = events.CapacityFull
	plan, err := routing.NewMatcher(routing.Config{}).Match(index(s, full), p)
	if err != nil {
		t.Fatal(err)
	}
	ev := plan.Event()
	if err := events.ValidatePayload(ev); err != nil {
		t.Fatalf("planned payload invalid: %v", err)
	}
	if ev.DirectoryRevision != 42 || len(ev.Groups) != 1 || ev.Groups[0].Placement != "p1" {
		t.Errorf("event %+v", ev)
	}
	if want := []events.UnmatchedNeed{{Need: events.NeedSafetyShelter, Reason: routing.UnmatchedExcluded, Offered: 1, Excluded: map[string]int{routing.ConstraintCapacity: 1}}}; !reflect.DeepEqual(ev.Unmatched, want) {
		t.Errorf("unmatched %v, want %v", ev.Unmatched, want)
	}
	if ev.Excluded[routing.ConstraintCapacity] != 1 {
		t.Errorf("excluded %v", ev.Excluded)
	}
	c := ev.Groups[0].Candidates[0]
	if c.Score != math.Round(plan.Groups[0].Primary().Score*1e4)/1e4 || c.Components[routing.ComponentAccessibility] != routing.AccessibilityWaived {
		t.Errorf("candidate %+v", c)
	}
}

func TestMatchErrors(t *testing.T) {
	t.Parallel()
	snap := index(baseService("pt.org.svc"))
	m := routing.NewMatcher(routing.Config{})
	for _, tt := range []struct {
		name string
		mod  func(*events.Profile)
	}{
		{"no needs", func(p *events.Profile) { p.Needs = nil }},
		{"unknown need", func(p *events.Profile) { p.Needs = []string{"support.magic"} }},
		{"unknown country", func(p *events.Profile) { p.Location.Country = "zz" }},
		{"unknown residence", func(p *events.Profile) { p.Location.ResidenceCountry = "zz" }},
		{"lat without lon", func(p *events.Profile) { p.Location.Lon = nil }},
		{"unknown urgency", func(p *events.Profile) { p.Urgency = "whenever" }},
		{"no channel", func(p *events.Profile) { p.Channels = nil }},
		{"unknown channel", func(p *events.Profile) { p.Channels = []string{"pigeon"} }},
		{"unknown language", func(p *events.Profile) { p.Languages = []string{"xx"} }},
		{"unknown age band", func(p *events.Profile) { p.AgeBand = "ancient" }},
		{"unknown gender", func(p *events.Profile) { p.Gender = "x" }},
		{"unknown accessibility", func(p *events.Profile) { p.Accessibility = []string{"ramp"} }},
		{"unknown crime", func(p *events.Profile) { p.Crimes = []string{"jaywalking"} }},
		{"unknown flag", func(p *events.Profile) { p.Flags = []string{"vip"} }},
	} {
		p := baseProfile()
		tt.mod(&p)
		_, err := m.Match(snap, p)
		if !errors.Is(err, routing.ErrInvalidProfile) || !errors.Is(err, events.ErrInvalid) {
			t.Errorf("%s: error %v, want ErrInvalidProfile and events.ErrInvalid", tt.name, err)
		}
	}
	if _, err := m.Match(nil, baseProfile()); !errors.Is(err, routing.ErrNoDirectory) {
		t.Errorf("nil snapshot: %v", err)
	}
	if _, err := m.Assess(snap, baseProfile(), "pt.org.none"); !errors.Is(err, routing.ErrUnknownService) {
		t.Errorf("unknown service: %v", err)
	}
}

func TestConfig(t *testing.T) {
	t.Parallel()
	c := routing.Config{}.WithDefaults()
	if c.Weights != routing.DefaultWeights() || c.Fallbacks != routing.FallbacksDefault || c.DistanceScaleKm != routing.DistanceScaleKmDefault || c.Now == nil {
		t.Errorf("defaults %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("defaults invalid: %v", err)
	}
	w := routing.DefaultWeights()
	sum := w.Needs + w.Specialisation + w.Language + w.Distance + w.Channel + w.Accessibility + w.Load + w.Acceptance + w.ResponseTime + w.Residence
	if math.Abs(sum-1) > 1e-9 {
		t.Errorf("default weights sum to %v, want 1", sum)
	}
	for _, tt := range []struct {
		cfg   routing.Config
		field string
	}{
		{routing.Config{Fallbacks: 32}, "Fallbacks"},
		{routing.Config{Fallbacks: -2}, "Fallbacks"},
		{routing.Config{DistanceScaleKm: -1}, "DistanceScaleKm"},
		{routing.Config{DistanceScaleKm: math.Inf(1)}, "DistanceScaleKm"},
		{routing.Config{Weights: routing.Weights{Needs: -1, Language: 1}}, "Weights.Needs"},
		{routing.Config{Weights: routing.Weights{Distance: math.NaN()}}, "Weights.Distance"},
	} {
		err := tt.cfg.WithDefaults().Validate()
		if !errors.Is(err, routing.ErrInvalidConfig) || !strings.Contains(err.Error(), tt.field) {
			t.Errorf("%+v: error %v, want ErrInvalidConfig naming %s", tt.cfg, err, tt.field)
		}
		// A matcher with a bad config does not panic; it reports the error.
		if _, err := routing.NewMatcher(tt.cfg).Match(index(baseService("pt.org.svc")), baseProfile()); !errors.Is(err, routing.ErrInvalidConfig) {
			t.Errorf("%+v: Match error %v", tt.cfg, err)
		}
	}
}

func TestWeightsChangeTheRanking(t *testing.T) {
	t.Parallel()
	near := baseService("pt.near.svc")
	near.Languages = []string{"en"}
	near.InterpreterAvailable = true
	far := baseService("pt.far.svc")
	far.Locations[0].Lat += 0.5
	p := baseProfile()
	p.InterpreterOK = true
	for _, tt := range []struct {
		w    routing.Weights
		want string
	}{
		{routing.Weights{Language: 1}, "pt.far.svc"},
		{routing.Weights{Distance: 1}, "pt.near.svc"},
	} {
		plan, err := routing.NewMatcher(routing.Config{Weights: tt.w}).Match(index(near, far), p)
		if err != nil {
			t.Fatal(err)
		}
		if got := plan.Groups[0].Primary().Service; got != tt.want {
			t.Errorf("weights %+v: primary %s, want %s", tt.w, got, tt.want)
		}
	}
}

// A snapshot derived from another sees its changes at once: the matcher's
// per-snapshot data must not be stale.
func TestDerivedSnapshotsAreMatchedFresh(t *testing.T) {
	t.Parallel()
	a := baseService("pt.a.svc")
	b := baseService("pt.b.svc")
	b.Locations[0].Lat += 0.1
	m := routing.NewMatcher(routing.Config{})
	snap := index(a, b)
	plan, err := m.Match(snap, baseProfile())
	if err != nil {
		t.Fatal(err)
	}
	if got := plan.Groups[0].Primary().Service; got != "pt.a.svc" {
		t.Fatalf("primary %s", got)
	}
	full := a
	full.Capacity.Status = events.CapacityFull
	next := snap.With(directory.Change{Key: directory.ServiceKey(a.ID), Service: &full, Revision: 43})
	plan, err = m.Match(next, baseProfile())
	if err != nil {
		t.Fatal(err)
	}
	if got := planned(plan); !slices.Equal(got, []string{"pt.b.svc"}) || plan.Revision != 43 || plan.Excluded[routing.ConstraintCapacity] != 1 {
		t.Fatalf("after a full: planned %v, revision %d, excluded %v", got, plan.Revision, plan.Excluded)
	}
	// The old snapshot still gives the old plan.
	plan, err = m.Match(snap, baseProfile())
	if err != nil {
		t.Fatal(err)
	}
	if got := plan.Groups[0].Primary().Service; got != "pt.a.svc" {
		t.Fatalf("old snapshot: primary %s", got)
	}
}

func TestEligible(t *testing.T) {
	t.Parallel()
	ok1 := baseService("pt.b.svc")
	ok2 := baseService("pt.a.svc")
	full := baseService("pt.c.svc")
	full.Capacity.Status = events.CapacityFull
	porto := baseService("pt.d.svc")
	porto.Area.Regions = []string{"PT11"}
	got, err := routing.NewMatcher(routing.Config{}).Eligible(index(ok1, ok2, full, porto), baseProfile())
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"pt.a.svc", "pt.b.svc"}; !slices.Equal(got, want) {
		t.Errorf("eligible %v, want %v", got, want)
	}
}

// Matches run concurrently on a stream of snapshots, as the routing service
// and the HTTP preview do while the directory changes; each must equal
// the plan of a fresh matcher on the same snapshot.
func TestConcurrentMatchesOnChangingSnapshots(t *testing.T) {
	t.Parallel()
	d := directory.Generate(1500, 5)
	snaps := []*directory.Index{directory.NewIndex(d, 1)}
	for rev := uint64(2); rev <= 6; rev++ {
		prev := snaps[len(snaps)-1]
		s := *prev.Service(int32(rev * 97 % uint64(prev.Len())))
		s.Capacity.Status = []string{events.CapacityFull, events.CapacityWaitlist, events.CapacityAccepting}[rev%3]
		snaps = append(snaps, prev.With(directory.Change{Key: directory.ServiceKey(s.ID), Service: &s, Revision: rev}))
	}
	profiles := routing.SampleProfiles(20, 9)
	at := routing.At(mondayMorning)
	want := make([][]*routing.Plan, len(snaps))
	for si, snap := range snaps {
		fresh := routing.NewMatcher(routing.Config{})
		for _, p := range profiles {
			plan, err := fresh.Match(snap, p, at)
			if err != nil {
				t.Fatal(err)
			}
			want[si] = append(want[si], plan)
		}
	}
	m := routing.NewMatcher(routing.Config{})
	errs := make(chan string, 64)
	done := make(chan struct{})
	for g := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for k := range 40 {
				si := (g*7 + k) % len(snaps)
				pi := (g + k*3) % len(profiles)
				got, err := m.Match(snaps[si], profiles[pi], at)
				if err != nil {
					errs <- err.Error()
					return
				}
				if !reflectEqual(got, want[si][pi]) {
					errs <- "plan differs from a fresh matcher's"
					return
				}
			}
		}()
	}
	for range 4 {
		<-done
	}
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func reflectEqual(a, b any) bool { return reflect.DeepEqual(a, b) }
