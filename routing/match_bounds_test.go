package routing_test

import (
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/invictus-network/invictus/directory"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/routing"
)

// The matcher skips the candidates of a word (64 services numbered
// together, which the index numbers by place) that cannot enter a ranking
// because the word lies too far from the victim. These tests hold it to
// the plans of the reference: the same matcher scoring every eligible
// candidate (routing.NewUnboundedMatcher), on services numbered by place
// and, for small directories, in the order they were added.

// samePlans fails t unless both matchers give the same plan (or the same
// error) for the profile.
func samePlans(t interface {
	Helper()
	Fatalf(string, ...any)
}, fast, ref *routing.Matcher, snap *directory.Index, p events.Profile, opts ...routing.MatchOption) *routing.Plan {
	t.Helper()
	got, err1 := fast.Match(snap, p, opts...)
	want, err2 := ref.Match(snap, p, opts...)
	if (err1 == nil) != (err2 == nil) {
		t.Fatalf("errors differ: %v and %v", err1, err2)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("the plans differ for %+v:\nbounded   %+v\nunbounded %+v", p, got, want)
	}
	return got
}

// randomStats gives some services observed statistics.
func randomStats(d *directory.Directory, r *rand.Rand) stats {
	st := stats{}
	for _, s := range d.Services {
		if r.IntN(4) == 0 {
			n := r.IntN(40)
			st[s.ID] = routing.ServiceStats{Answered: n, Accepted: r.IntN(n + 1), ResponseTime: time.Duration(r.IntN(72)) * time.Hour, OpenOffers: r.IntN(5)}
		}
	}
	return st
}

// TestBoundsKeepThePlansOfGeneratedDirectories matches sampled profiles
// against generated directories, with every option that changes the
// ranking key (statistics, preferred organisation, referrer, fallbacks),
// with and without the bounds.
func TestBoundsKeepThePlansOfGeneratedDirectories(t *testing.T) {
	t.Parallel()
	at := routing.At(time.Date(2026, 11, 27, 11, 0, 0, 0, time.UTC))
	night := routing.At(time.Date(2026, 11, 28, 2, 30, 0, 0, time.UTC))
	eligible := 0
	for _, n := range []int{700, 3000, 12000} {
		d := directory.Generate(n, int64(n))
		snap := directory.NewIndex(d, 1)
		r := rand.New(rand.NewPCG(uint64(n), 7))
		st := randomStats(d, r)
		plain := [2]*routing.Matcher{routing.NewMatcher(routing.Config{}), routing.NewUnboundedMatcher(routing.Config{})}
		observed := [2]*routing.Matcher{routing.NewMatcher(routing.Config{Stats: st}), routing.NewUnboundedMatcher(routing.Config{Stats: st})}
		for k, p := range routing.SampleProfiles(400, int64(n)) {
			ms := plain
			if k%5 == 0 {
				ms = observed
			}
			opts := []routing.MatchOption{at}
			if k%7 == 0 {
				opts[0] = night
			}
			if k%3 == 0 {
				opts = append(opts, routing.WithFallbacks(r.IntN(6)))
			}
			if k%11 == 0 {
				o := d.Organisations[r.IntN(len(d.Organisations))].ID
				opts = append(opts, routing.WithPreferredOrganisation(o))
			}
			if k%13 == 0 {
				o := d.Organisations[r.IntN(len(d.Organisations))].ID
				opts = append(opts, routing.WithReferrer(o))
			}
			plan := samePlans(t, ms[0], ms[1], snap, p, opts...)
			eligible += plan.Eligible
		}
	}
	if eligible == 0 {
		t.Fatal("no eligible candidate in any plan: the comparison proves nothing")
	}
}

// TestPropertyBoundsKeepThePlans compares the plans with and without the
// bounds on directories of rapid services scattered around the victim,
// numbered by place (NewIndex) and in the order they were added (an
// index grown by With from an empty one).
func TestPropertyBoundsKeepThePlans(t *testing.T) {
	t.Parallel()
	fast, ref := routing.NewMatcher(routing.Config{}), routing.NewUnboundedMatcher(routing.Config{})
	rapid.Check(t, func(t *rapid.T) {
		d := genDirectory(t)
		// Copies of the services spread over 0 to about 300 km, so that
		// words of near and far services fill the rankings.
		copies := rapid.IntRange(0, 6).Draw(t, "copies")
		base := len(d.Services)
		for c := range copies {
			for i := range base {
				s := d.Services[i]
				s.ID = s.ID + "x" + string(rune('a'+c))
				s.Locations = append([]directory.Location(nil), s.Locations...)
				for li := range s.Locations {
					s.Locations[li].Lat += float64(rapid.IntRange(-150, 150).Draw(t, "dlat")) / 100
					s.Locations[li].Lon += float64(rapid.IntRange(-150, 150).Draw(t, "dlon")) / 100
				}
				d.Services = append(d.Services, s)
			}
		}
		p := genProfile(t)
		at := routing.At(genTime(t))
		snap := directory.NewIndex(d, 3)
		samePlans(t, fast, ref, snap, p, at)
		if len(d.Services) <= directory.IndexRebuildMin {
			var changes []directory.Change
			for i := range d.Services {
				s := &d.Services[len(d.Services)-1-i] // numbered against id order
				changes = append(changes, directory.Change{Key: directory.ServiceKey(s.ID), Revision: 3, Service: s})
			}
			for i := range d.Organisations {
				o := &d.Organisations[i]
				changes = append(changes, directory.Change{Key: directory.OrgKey(o.ID), Revision: 3, Org: o})
			}
			added := directory.NewIndex(nil, 3).With(changes...)
			a, err1 := fast.Match(snap, p, at)
			b, err2 := ref.Match(added, p, at)
			if (err1 == nil) != (err2 == nil) {
				t.Fatalf("errors differ: %v and %v", err1, err2)
			}
			if !reflect.DeepEqual(a, b) {
				t.Fatalf("numbered by place and in added order, the plans differ:\n%+v\n%+v", a, b)
			}
		}
	})
}

// TestPruningKeepsThePlans holds the candidates the matcher skips a word
// at a time (whole classes whose rankings they cannot enter, judged on
// bitsets, with open now and the countries of a cross-border case read
// from bitsets too) to the reference, which checks and scores every
// candidate one by one: sampled profiles made emergencies at quarter
// hours all over the week (the generated opening hours start and end on
// the hour), cross-border cases with every demo country as residence,
// and each accessibility need, on a directory dense enough for the
// rankings to fill. The matcher must have skipped candidates of each
// kind, or the comparison proves nothing.
func TestPruningKeepsThePlans(t *testing.T) {
	t.Parallel()
	d := directory.Generate(12000, 41)
	snap := directory.NewIndex(d, 1)
	// A directory where every service of two residence countries serves
	// remotely too: a cross-border victim then has as many candidates at
	// home as where the crime was, so that both rankings of a need set
	// (met in the preferred country or not) fill.
	home := *d
	home.Services = slices.Clone(d.Services)
	for i := range home.Services {
		if s := &home.Services[i]; slices.Contains(s.Area.Countries, "pt") || slices.Contains(s.Area.Countries, "fi") {
			s.Area.Remote = true
		}
	}
	homeSnap := directory.NewIndex(&home, 1)
	// A directory where some services are full, for needs that go
	// unmatched under every constraint (the index returns no inactive
	// service).
	closed := *d
	closed.Services = slices.Clone(d.Services)
	for i := range closed.Services {
		if i%9 == 0 {
			closed.Services[i].Capacity.Status = events.CapacityFull
		}
	}
	closedSnap := directory.NewIndex(&closed, 1)
	profiles := routing.SampleProfiles(300, 41)
	monday := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	// Of the kind "unmatched": what the plans' unmatched needs counted and
	// relaxed, which the reference reads one by one.
	offered, relaxed := 0, 0
	constraints := map[string]bool{}
	for _, kind := range []string{"emergency", "cross-border", "resident at home", "accessibility", "as sampled", "unmatched"} {
		fast, ref := routing.NewMatcher(routing.Config{}), routing.NewUnboundedMatcher(routing.Config{})
		eligible, excluded := 0, 0
		for k, p := range profiles {
			at := routing.At(monday.Add(time.Duration(k*37%(7*24*4)) * 15 * time.Minute))
			snap := snap
			var opts []routing.MatchOption
			switch kind {
			case "unmatched":
				// A language few speak, without an interpreter; an
				// emergency; a need of access; one channel; the
				// referrer's own services: needs no eligible service
				// covers, counted and relaxed by gaps.
				p.Languages, p.InterpreterOK = []string{[]string{"mt", "ga", "lv", p.Languages[0]}[k%4]}, k%5 == 0
				if k%2 == 0 {
					p.Urgency = events.UrgencyEmergency
				}
				if k%3 == 0 {
					p.Accessibility = []string{events.Accessibility[k%len(events.Accessibility)]}
				}
				if k%3 == 1 {
					p.Channels = []string{events.Channels[k%len(events.Channels)]}
				}
				if k%4 == 1 {
					p.AgeBand, p.Gender = "", ""
				}
				snap = closedSnap
				if k%6 == 0 {
					snap = homeSnap
					p.Location.ResidenceCountry = "pt"
				}
				if k%7 == 0 {
					// An organisation offering the first need near
					// the victim refers her.
					for _, s := range d.Services {
						if slices.Contains(s.Needs, p.Needs[0]) && len(s.Locations) > 0 && p.Location.Lat != nil &&
							math.Abs(s.Locations[0].Lat-*p.Location.Lat) < 0.2 && math.Abs(s.Locations[0].Lon-*p.Location.Lon) < 0.2 {
							opts = append(opts, routing.WithReferrer(s.Organisation))
							break
						}
					}
				}
			}
			switch kind {
			case "emergency":
				p.Urgency = events.UrgencyEmergency
			case "cross-border":
				cs := directory.DemoCountries
				p.Location.ResidenceCountry = cs[k%len(cs)]
				if p.Location.ResidenceCountry == p.Location.Country {
					p.Location.ResidenceCountry = cs[(k+1)%len(cs)]
				}
			case "resident at home":
				snap = homeSnap
				p.Location.ResidenceCountry = []string{"pt", "fi"}[k%2]
				if p.Location.ResidenceCountry == p.Location.Country {
					p.Location.ResidenceCountry = "fi"
				}
			case "accessibility":
				p.Accessibility = []string{events.Accessibility[k%len(events.Accessibility)]}
			}
			plan := samePlans(t, fast, ref, snap, p, append(opts, at)...)
			eligible += plan.Eligible
			excluded += plan.Excluded[routing.ConstraintOpenNow] + plan.Excluded[routing.ConstraintAccessibility]
			if kind == "unmatched" {
				for _, u := range plan.Unmatched {
					offered += u.Offered
					for c := range u.Excluded {
						constraints[c] = true
					}
				}
				relaxed += len(plan.Relaxed)
			}
		}
		if kind == "unmatched" {
			if offered == 0 || relaxed == 0 || len(constraints) < 7 {
				t.Fatalf("unmatched: %d offered, %d relaxed, constraints %v: the comparison proves little", offered, relaxed, constraints)
			}
			t.Logf("unmatched: %d offered, %d relaxed options, constraints %v", offered, relaxed, constraints)
			continue
		}
		if eligible == 0 || routing.Pruned(fast) == 0 {
			t.Fatalf("%s: %d eligible, %d skipped on bitsets: the comparison proves nothing", kind, eligible, routing.Pruned(fast))
		}
		if kind == "emergency" || kind == "accessibility" {
			if excluded == 0 {
				t.Fatalf("%s: no candidate excluded by open now or accessibility: the comparison proves nothing", kind)
			}
		}
		if n := routing.Pruned(ref); n != 0 {
			t.Fatalf("%s: the reference skipped %d candidates", kind, n)
		}
		t.Logf("%s: %d eligible, %d skipped on bitsets", kind, eligible, routing.Pruned(fast))
	}
}

// TestPlannedScoresAreAssessed holds the scores of the ranking (read from
// the chunks' bitsets, or from the services' features) to those of
// Assess, which puts each service's score together one service at a time
// (query.fixedScore): the reference matcher ranks through the same paths
// as the fast one, so only this tells a wrong input of the bitset path,
// in a cross-border case above all (the residence component and the
// classes of needs met in the preferred country).
func TestPlannedScoresAreAssessed(t *testing.T) {
	t.Parallel()
	at := routing.At(time.Date(2026, 11, 27, 11, 0, 0, 0, time.UTC))
	d := directory.Generate(4000, 4)
	snap := directory.NewIndex(d, 1)
	m := routing.NewMatcher(routing.Config{})
	cross, checked := 0, 0
	for k, p := range routing.SampleProfiles(300, 4) {
		if k%2 == 0 {
			cs := directory.DemoCountries
			p.Location.ResidenceCountry = cs[k%len(cs)]
			if p.Location.ResidenceCountry == p.Location.Country {
				p.Location.ResidenceCountry = cs[(k+1)%len(cs)]
			}
		}
		plan, err := m.Match(snap, p, at)
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range plan.Groups {
			for _, c := range g.Candidates {
				a, err := m.Assess(snap, p, c.Service, at)
				if err != nil {
					t.Fatal(err)
				}
				if a.Score != c.Score {
					t.Fatalf("profile %d (%+v): %s ranked with %v, assessed %v", k, p, c.Service, c.Score, a.Score)
				}
				checked++
				if c.Components[routing.ComponentResidence] > 0 {
					cross++
				}
			}
		}
	}
	if checked == 0 || cross == 0 {
		t.Fatalf("%d candidates checked, %d with a residence component: the test proves little", checked, cross)
	}
	t.Logf("%d candidates checked, %d with a residence component", checked, cross)
}
