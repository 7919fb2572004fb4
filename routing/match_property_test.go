package routing_test

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/invictus-network/invictus/directory"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/routing"
)

// Small pools, so that services and profiles often agree and often clash.
var (
	needPool   = []string{events.NeedSupportEmotional, events.NeedSafetyShelter, events.NeedJusticeLegalAid, events.NeedInfoRights, events.NeedSupportPsychological}
	langPool   = []string{"pt", "en", "fr", "ro"}
	chanPool   = []string{events.ChannelInPerson, events.ChannelPhone, events.ChannelVideo, events.ChannelHomeVisit}
	accPool    = []string{"wheelchair", "step_free", "sign_language", "easy_read"}
	crimePool  = []string{"domestic_violence", "robbery", "sexual_violence"}
	flagPool   = []string{"child", "disability"}
	placeNeeds = []string{"wheelchair", "step_free", "hearing_loop", "quiet_space", "childcare"}
)

func subset(t *rapid.T, pool []string, lo, hi int, label string) []string {
	return rapid.SliceOfNDistinct(rapid.SampledFrom(pool), lo, hi, rapid.ID).Draw(t, label)
}

// genService draws a service of organisation k near Lisbon (or a remote
// French one).
func genService(t *rapid.T, k int) directory.Service {
	cc := "pt"
	if rapid.IntRange(0, 9).Draw(t, "french") == 0 {
		cc = "fr"
	}
	s := directory.Service{
		ID: fmt.Sprintf("%s.org-%02d.s", cc, k), Organisation: fmt.Sprintf("%s.org-%02d", cc, k), Status: directory.StatusActive,
		Needs:                subset(t, needPool, 1, 3, "needs"),
		Crimes:               subset(t, crimePool, 0, 2, "crimes"),
		Flags:                subset(t, flagPool, 0, 1, "flags"),
		Languages:            subset(t, langPool, 1, 2, "languages"),
		InterpreterAvailable: rapid.IntRange(0, 3).Draw(t, "interp") == 0,
		Channels:             subset(t, chanPool, 1, 3, "channels"),
		Accessibility:        subset(t, accPool, 0, 1, "accessibility"),
		Area:                 directory.ServiceArea{Countries: []string{cc}},
		Capacity:             directory.Capacity{Status: rapid.SampledFrom([]string{"accepting", "accepting", "waitlist", "full"}).Draw(t, "capacity"), MaxOpen: rapid.IntRange(0, 20).Draw(t, "maxopen")},
	}
	if rapid.IntRange(0, 9).Draw(t, "inactive") == 0 {
		s.Status = directory.StatusInactive
	}
	if rapid.Bool().Draw(t, "aged") {
		s.Eligibility.AgeBands = subset(t, events.AgeBands, 1, 2, "ages")
	}
	if rapid.IntRange(0, 4).Draw(t, "gendered") == 0 {
		s.Eligibility.Genders = []string{"female"}
	}
	for l := range rapid.IntRange(0, 2).Draw(t, "locations") {
		s.Locations = append(s.Locations, directory.Location{
			ID: fmt.Sprintf("l%d", l), Country: "pt",
			Lat:           38.60 + float64(rapid.IntRange(0, 40).Draw(t, "lat"))/100,
			Lon:           -9.30 + float64(rapid.IntRange(0, 40).Draw(t, "lon"))/100,
			Accessibility: subset(t, accPool, 0, 2, "locacc"),
		})
	}
	switch {
	case cc == "fr":
		s.Area.Remote = true
		s.Channels = append(s.Channels, events.ChannelPhone)
		s.Locations = nil
	default:
		switch rapid.IntRange(0, 4).Draw(t, "area") {
		case 0:
			s.Area.Regions = []string{"PT17"}
		case 1:
			s.Area.Regions = []string{"PT"}
		case 2:
			s.Area.Regions = []string{"PT11"} // Porto: not the victim's
		case 3:
			s.Area.RadiusKm = 15
		default:
			s.Area.Remote = true
		}
	}
	s.Channels = slices.Compact(s.Channels)
	zone := rapid.SampledFrom([]string{"Europe/Lisbon", "Europe/Paris", "Europe/Helsinki"}).Draw(t, "zone")
	s.Hours = directory.Schedule{TimeZone: zone, Always: rapid.IntRange(0, 3).Draw(t, "always") == 0}
	if !s.Hours.Always {
		opens := rapid.IntRange(0, 12).Draw(t, "opens")
		for _, d := range subset(t, directory.Days, 1, 7, "days") {
			s.Hours.Weekly = append(s.Hours.Weekly, directory.OpeningHours{Day: d, Opens: fmt.Sprintf("%02d:00", opens), Closes: fmt.Sprintf("%02d:30", opens+rapid.IntRange(1, 11).Draw(t, "hours"))})
		}
	}
	return s
}

func genDirectory(t *rapid.T) *directory.Directory {
	d := &directory.Directory{}
	for k := range rapid.IntRange(0, 40).Draw(t, "services") {
		s := genService(t, k)
		d.Services = append(d.Services, s)
		d.Organisations = append(d.Organisations, directory.Organisation{ID: s.Organisation, Name: s.Organisation, Country: s.Organisation[:2]})
	}
	return d
}

func genProfile(t *rapid.T) events.Profile {
	p := events.Profile{
		Needs:         subset(t, append(slices.Clone(needPool), events.NeedHealthMedical), 1, 4, "p.needs"),
		Crimes:        subset(t, crimePool, 0, 2, "p.crimes"),
		Flags:         subset(t, flagPool, 0, 2, "p.flags"),
		Urgency:       rapid.SampledFrom(events.Urgencies).Draw(t, "p.urgency"),
		Location:      events.Location{Country: "pt", Region: "PT170"},
		Languages:     subset(t, langPool, 1, 2, "p.languages"),
		InterpreterOK: rapid.Bool().Draw(t, "p.interp"),
		AgeBand:       rapid.SampledFrom(events.AgeBands).Draw(t, "p.age"),
		Gender:        rapid.SampledFrom([]string{"", "female", "male"}).Draw(t, "p.gender"),
		Channels:      subset(t, chanPool, 1, 3, "p.channels"),
		Accessibility: subset(t, accPool, 0, 2, "p.accessibility"),
	}
	if rapid.IntRange(0, 4).Draw(t, "p.nopoint") > 0 {
		p.Location.Lat = ptr(38.60 + float64(rapid.IntRange(0, 40).Draw(t, "p.lat"))/100)
		p.Location.Lon = ptr(-9.30 + float64(rapid.IntRange(0, 40).Draw(t, "p.lon"))/100)
	}
	if rapid.IntRange(0, 4).Draw(t, "p.cross") == 0 {
		p.Location.ResidenceCountry = "fr"
	}
	return p
}

func genTime(t *rapid.T) time.Time {
	return time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC).Add(time.Duration(rapid.IntRange(0, 7*24*4-1).Draw(t, "quarter")) * 15 * time.Minute)
}

// violation is the first hard constraint s fails for p (see violations).
func violation(s *directory.Service, p events.Profile, now time.Time, referrer string) string {
	if v := violations(s, p, now, referrer); len(v) > 0 {
		return v[0]
	}
	return ""
}

// violations is the reference definition of the hard constraints, written
// from their documentation and independent of the matcher's bit masks:
// every constraint s fails for p, in the matcher's order.
func violations(s *directory.Service, p events.Profile, now time.Time, referrer string) []string {
	var out []string
	shares := func(a, b []string) bool {
		return slices.ContainsFunc(a, func(x string) bool { return slices.Contains(b, x) })
	}
	if !s.Active() {
		out = append(out, routing.ConstraintInactive)
	}
	if referrer != "" && s.Organisation == referrer {
		out = append(out, routing.ConstraintOwnOrganisation)
	}
	// A restricted service needs a stated, matching age band and gender.
	if (len(s.Eligibility.AgeBands) > 0 && !slices.Contains(s.Eligibility.AgeBands, p.AgeBand)) ||
		(len(s.Eligibility.Genders) > 0 && !slices.Contains(s.Eligibility.Genders, p.Gender)) {
		out = append(out, routing.ConstraintEligibility)
	}
	if s.Capacity.Status == events.CapacityFull {
		out = append(out, routing.ConstraintCapacity)
	}
	// The victim's refusal of an interpreter binds.
	if !shares(p.Languages, s.Languages) && !p.InterpreterOK {
		out = append(out, routing.ConstraintLanguage)
	}
	if !shares(p.Channels, s.Channels) {
		out = append(out, routing.ConstraintChannel)
	}
	var place []string
	for _, a := range p.Accessibility {
		if slices.Contains(placeNeeds, a) {
			place = append(place, a)
			continue
		}
		met := slices.Contains(s.Accessibility, a)
		for _, l := range s.Locations {
			met = met || slices.Contains(l.Accessibility, a)
		}
		if !met && !slices.Contains(out, routing.ConstraintAccessibility) {
			out = append(out, routing.ConstraintAccessibility)
		}
	}
	if len(place) > 0 && !slices.Contains(out, routing.ConstraintAccessibility) {
		metAt := func(extra []string) bool {
			for _, a := range place {
				if !slices.Contains(s.Accessibility, a) && !slices.Contains(extra, a) {
					return false
				}
			}
			return true
		}
		met := metAt(nil)
		for _, l := range s.Locations {
			met = met || metAt(l.Accessibility)
		}
		remote := slices.ContainsFunc(p.Channels, func(c string) bool { return c != events.ChannelInPerson && slices.Contains(s.Channels, c) })
		if !met && !remote {
			out = append(out, routing.ConstraintAccessibility)
		}
	}
	if p.Urgency == events.UrgencyEmergency && !s.Hours.OpenAt(now) {
		out = append(out, routing.ConstraintOpenNow)
	}
	return out
}

func TestPropertyPlans(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		d := genDirectory(t)
		p := genProfile(t)
		now := genTime(t)
		snap := directory.NewIndex(d, 7)
		m := routing.NewMatcher(routing.Config{})
		// Sometimes the referral comes from one of the organisations.
		referrer := ""
		if len(d.Organisations) > 0 && rapid.Bool().Draw(t, "referred") {
			referrer = rapid.SampledFrom(d.Organisations).Draw(t, "referrer").ID
		}
		at := []routing.MatchOption{routing.At(now), routing.WithReferrer(referrer)}
		plan, err := m.Match(snap, p, at...)
		if err != nil {
			t.Fatal(err)
		}
		q := directory.Query{Needs: p.Needs, Country: p.Location.Country, Region: p.Location.Region, Lat: p.Location.Lat, Lon: p.Location.Lon}
		if r := p.Location.ResidenceCountry; r != "" {
			q.RemoteCountries = []string{r}
		}

		// The reference: candidates, eligible services, what each offers.
		var eligible []string
		considered, excluded := 0, map[string]int{}
		offered, coverable := map[string]bool{}, map[string]bool{}
		needOffered, needExcluded := map[string]int{}, map[string]map[string]int{}
		for i := range d.Services {
			s := &d.Services[i]
			if !q.Matches(s) {
				continue
			}
			considered++
			v := violation(s, p, now, referrer)
			for _, n := range s.Needs {
				offered[n] = true
				needOffered[n]++
				if v != "" {
					if needExcluded[n] == nil {
						needExcluded[n] = map[string]int{}
					}
					needExcluded[n][v]++
				}
			}
			if v != "" {
				excluded[v]++
				continue
			}
			eligible = append(eligible, s.ID)
			for _, n := range s.Needs {
				coverable[n] = true
			}
		}
		slices.Sort(eligible)
		got, err := m.Eligible(snap, p, at...)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, eligible) {
			t.Fatalf("eligible %v, reference %v", got, eligible)
		}
		if plan.Considered != considered || plan.Eligible != len(eligible) {
			t.Fatalf("considered %d eligible %d, reference %d %d", plan.Considered, plan.Eligible, considered, len(eligible))
		}
		if len(excluded) == 0 {
			excluded = nil
		}
		if !reflect.DeepEqual(plan.Excluded, excluded) {
			t.Fatalf("excluded %v, reference %v", plan.Excluded, excluded)
		}

		// No plan holds a service that fails a constraint; every
		// candidate covers its group's needs; groups are disjoint.
		seen := map[string]string{}
		for gi, g := range plan.Groups {
			if g.Placement != fmt.Sprintf("p%d", gi+1) {
				t.Fatalf("group %d is %s", gi, g.Placement)
			}
			if len(g.Candidates) == 0 || len(g.Candidates) > 1+routing.FallbacksDefault {
				t.Fatalf("group %s has %d candidates", g.Placement, len(g.Candidates))
			}
			for _, n := range g.Needs {
				if prev, dup := seen[n]; dup {
					t.Fatalf("need %s in %s and %s", n, prev, g.Placement)
				}
				seen[n] = g.Placement
			}
			ids := map[string]bool{}
			for ci, c := range g.Candidates {
				s := d.Service(c.Service)
				if v := violation(s, p, now, referrer); v != "" {
					t.Fatalf("%s planned in %s but fails %s", c.Service, g.Placement, v)
				}
				if !q.Matches(s) {
					t.Fatalf("%s planned but not a candidate", c.Service)
				}
				for _, n := range g.Needs {
					if !slices.Contains(s.Needs, n) {
						t.Fatalf("%s in %s does not offer %s", c.Service, g.Placement, n)
					}
				}
				if ids[c.Service] {
					t.Fatalf("%s twice in %s", c.Service, g.Placement)
				}
				ids[c.Service] = true
				if c.Score < 0 || c.Score > 1 {
					t.Fatalf("score %v", c.Score)
				}
				if p.Urgency != events.UrgencyEmergency && ci > 0 && c.Score > g.Candidates[ci-1].Score {
					t.Fatalf("%s ranked below a lower score", c.Service)
				}
			}
		}
		// Every need is covered or reported unmatched, with the right reason.
		unmatched := map[string]string{}
		for _, u := range plan.Unmatched {
			unmatched[u.Need] = u.Reason
		}
		for _, n := range p.Needs {
			_, covered := seen[n]
			reason, isUnmatched := unmatched[n]
			switch {
			case covered == isUnmatched:
				t.Fatalf("need %s: covered %v, unmatched %v", n, covered, isUnmatched)
			case covered != coverable[n]:
				t.Fatalf("need %s covered %v, but an eligible service offers it: %v", n, covered, coverable[n])
			case isUnmatched && offered[n] && reason != routing.UnmatchedExcluded,
				isUnmatched && !offered[n] && reason != routing.UnmatchedNoService:
				t.Fatalf("need %s unmatched as %s; offered by a candidate: %v", n, reason, offered[n])
			}
		}
		// Each unmatched need names every constraint that removed a
		// service offering it, with counts.
		for _, u := range plan.Unmatched {
			anywhere := slices.ContainsFunc(d.Services, func(s directory.Service) bool { return s.Active() && slices.Contains(s.Needs, u.Need) })
			if u.Nowhere != (u.Offered == 0 && !anywhere) {
				t.Fatalf("unmatched %s: nowhere %v, offered here %d, anywhere %v", u.Need, u.Nowhere, u.Offered, anywhere)
			}
			if u.Offered != needOffered[u.Need] || (u.Offered > 0 && !reflect.DeepEqual(u.Excluded, needExcluded[u.Need])) || (u.Offered == 0 && u.Excluded != nil) {
				t.Fatalf("unmatched %s: offered %d excluded %v, reference %d %v", u.Need, u.Offered, u.Excluded, needOffered[u.Need], needExcluded[u.Need])
			}
		}
		// Relaxed options fail exactly their one relaxable constraint,
		// offer the need, and exist whenever such a service does.
		relaxable := []string{routing.ConstraintAccessibility, routing.ConstraintChannel, routing.ConstraintOpenNow}
		shown := map[[2]string]bool{}
		for _, r := range plan.Relaxed {
			shown[[2]string{r.Need, r.Constraint}] = true
			if _, ok := unmatched[r.Need]; !ok || !slices.Contains(relaxable, r.Constraint) {
				t.Fatalf("relaxed %s for %s, a need that is covered or a constraint that is not relaxable", r.Constraint, r.Need)
			}
			for _, c := range r.Candidates {
				s := d.Service(c.Service)
				if v := violations(s, p, now, referrer); !slices.Equal(v, []string{r.Constraint}) || !slices.Contains(s.Needs, r.Need) {
					t.Fatalf("relaxed %s for %s: %s fails %v", r.Constraint, r.Need, c.Service, v)
				}
			}
		}
		for i := range d.Services {
			s := &d.Services[i]
			v := violations(s, p, now, referrer)
			if !q.Matches(s) || len(v) != 1 || !slices.Contains(relaxable, v[0]) {
				continue
			}
			for _, n := range s.Needs {
				if _, ok := unmatched[n]; ok && slices.Contains(p.Needs, n) && !shown[[2]string{n, v[0]}] {
					t.Fatalf("%s meets %s but for %s, and no relaxed option shows it", s.ID, n, v[0])
				}
			}
		}
		if len(seen)+len(unmatched) != len(p.Needs) {
			t.Fatalf("%d needs, %d covered, %d unmatched", len(p.Needs), len(seen), len(unmatched))
		}
		if err := events.ValidatePayload(plan.Event()); err != nil {
			t.Fatalf("invalid planned payload: %v", err)
		}

		// Deterministic: again, with another matcher, with the directory
		// in another order, and on a snapshot whose numbers are not in id
		// order.
		again, err := m.Match(snap, p, at...)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(again, plan) {
			t.Fatalf("second match differs")
		}
		shuffled := &directory.Directory{Organisations: d.Organisations, Services: rapid.Permutation(d.Services).Draw(t, "order")}
		other, err := routing.NewMatcher(routing.Config{}).Match(directory.NewIndex(shuffled, 7), p, at...)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(other, plan) {
			t.Fatalf("match on the shuffled directory differs")
		}
		if len(shuffled.Services) > 1 {
			half := len(shuffled.Services) / 2
			base := directory.NewIndex(&directory.Directory{Organisations: d.Organisations, Services: shuffled.Services[:half]}, 7)
			var changes []directory.Change
			for i := half; i < len(shuffled.Services); i++ {
				changes = append(changes, directory.Change{Key: directory.ServiceKey(shuffled.Services[i].ID), Service: &shuffled.Services[i]})
			}
			derived, err := m.Match(base.With(changes...), p, at...)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(derived, plan) {
				t.Fatalf("match on a derived snapshot differs:\n%+v\n%+v", derived.Groups, plan.Groups)
			}
		}
	})
}

// dominate returns a copy of s under a new id that is at least as good for
// p on every score component and meets every constraint.
func dominate(s directory.Service, p events.Profile) directory.Service {
	b := s
	b.ID, b.Organisation = "pt.zzz.s", "pt.zzz"
	b.Status = directory.StatusActive
	b.Eligibility = directory.Eligibility{}
	b.Languages = append([]string{p.Languages[0]}, s.Languages...)
	b.InterpreterAvailable = true
	b.Channels = slices.Clone(events.Channels)
	b.Accessibility = slices.Clone(events.Accessibility)
	if len(p.Crimes) > 0 {
		b.Crimes = slices.Clone(p.Crimes)
	}
	b.Flags = append(slices.Clone(p.Flags), s.Flags...)
	b.Capacity = directory.Capacity{Status: events.CapacityAccepting, MaxOpen: s.Capacity.MaxOpen}
	b.Hours = directory.Schedule{TimeZone: "Europe/Lisbon", Always: true}
	b.Area.Regions = append([]string{"PT"}, s.Area.Regions...)
	if p.Location.Lat != nil {
		b.Locations = []directory.Location{{ID: "here", Country: "pt", Lat: *p.Location.Lat, Lon: *p.Location.Lon}}
	}
	return b
}

func TestPropertyBetterServiceNeverLowersTheBestScore(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		d := genDirectory(t)
		p := genProfile(t)
		p.Location.ResidenceCountry = "" // the cross-border two-step plan is tested above
		now := genTime(t)
		m := routing.NewMatcher(routing.Config{})
		plan, err := m.Match(directory.NewIndex(d, 7), p, routing.At(now))
		if err != nil {
			t.Fatal(err)
		}
		if len(plan.Groups) == 0 {
			return
		}
		target := rapid.IntRange(0, len(plan.Groups)-1).Draw(t, "group")
		old := plan.Groups[target]
		better := dominate(*d.Service(old.Primary().Service), p)
		d2 := &directory.Directory{Organisations: d.Organisations, Services: append(slices.Clone(d.Services), better)}
		snap2 := directory.NewIndex(d2, 8)
		plan2, err := m.Match(snap2, p, routing.At(now))
		if err != nil {
			t.Fatal(err)
		}
		a, err := m.Assess(snap2, p, better.ID, routing.At(now))
		if err != nil {
			t.Fatal(err)
		}
		if a.Constraint != "" || a.Score < old.Primary().Score {
			t.Fatalf("the better service: constraint %q, score %v below %v", a.Constraint, a.Score, old.Primary().Score)
		}
		// Every need of the group is in a group whose best score is no
		// lower than before.
		for _, n := range old.Needs {
			found := false
			for _, g := range plan2.Groups {
				if slices.Contains(g.Needs, n) {
					found = true
					if g.Primary().Score < old.Primary().Score-1e-12 && p.Urgency != events.UrgencyEmergency {
						t.Fatalf("need %s: best score %v, was %v", n, g.Primary().Score, old.Primary().Score)
					}
				}
			}
			if !found {
				t.Fatalf("need %s no longer planned", n)
			}
		}
		// Scores are absolute: another service does not change them.
		for _, g := range plan.Groups {
			for _, c := range g.Candidates {
				a, err := m.Assess(snap2, p, c.Service, routing.At(now))
				if err != nil {
					t.Fatal(err)
				}
				if math.Abs(a.Score-c.Score) > 1e-12 {
					t.Fatalf("%s scored %v, now %v", c.Service, c.Score, a.Score)
				}
			}
		}
	})
}

// The emergency hours in the matcher's tables agree with
// Schedule.OpenAt at every quarter hour of a week, across a DST change.
func TestPropertyOpenNowAgreesWithSchedule(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		s := genService(t, 1)
		s.ID, s.Organisation, s.Status, s.Area = "pt.org-01.s", "pt.org-01", directory.StatusActive, directory.ServiceArea{Countries: []string{"pt"}, Remote: true}
		s.Eligibility, s.Capacity.Status, s.Channels, s.Accessibility = directory.Eligibility{}, events.CapacityAccepting, []string{events.ChannelPhone}, nil
		p := baseProfile()
		p.Needs = s.Needs[:1]
		p.Languages, p.Channels, p.Urgency = s.Languages[:1], []string{events.ChannelPhone}, events.UrgencyEmergency
		snap := index(s)
		m := routing.NewMatcher(routing.Config{})
		start := time.Date(2026, 3, 26, 0, 0, 0, 0, time.UTC) // DST starts on the 29th
		for q := range 10 * 24 * 4 {
			at := start.Add(time.Duration(q) * 15 * time.Minute)
			a, err := m.Assess(snap, p, s.ID, routing.At(at))
			if err != nil {
				t.Fatal(err)
			}
			if open := a.Constraint == ""; open != s.Hours.OpenAt(at) {
				t.Fatalf("at %v: matcher open %v, schedule %v (%+v)", at, open, !open, s.Hours)
			}
		}
	})
}
