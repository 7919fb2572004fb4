package routing_test

import (
	"reflect"
	"testing"

	"github.com/invictus-network/invictus/directory"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/routing"
)

// Need, crime, flag, age band and gender sets have no width: with 40,
// then 70 made-up codes numbered before the taxonomy's (so that every real code has a number
// past 32, then past 64, as if the taxonomy had grown that long), every
// plan, eligible set and assessment is the one of the usual numbering. A
// matcher with fixed-width masks drops the codes past its width and plans
// nothing for them.
//
// Not parallel: it changes the numbering of the tables built meanwhile.
func TestCodesPastSixtyFourMatchAlike(t *testing.T) {
	snap := directory.NewIndex(directory.Generate(3000, 7), 1)
	profiles := routing.SampleProfiles(80, 11)
	// One with more needs than the dense classes take (classes by map),
	// every crime and flag, and a place's accessibility need (the slow
	// path).
	many := baseProfile()
	many.Needs = events.Needs[:min(12, len(events.Needs))]
	many.Crimes = events.Crimes
	many.Flags = events.Flags
	many.Accessibility = []string{"wheelchair"}
	many.AgeBand, many.Gender = "adult", "female"
	profiles = append(profiles, many)
	at := routing.At(mondayMorning)
	type result struct {
		plan     *routing.Plan
		eligible []string
		assessed []routing.Assessment
	}
	run := func() []result {
		m := routing.NewMatcher(routing.Config{})
		out := make([]result, len(profiles))
		for i, p := range profiles {
			plan, err := m.Match(snap, p, at)
			if err != nil {
				t.Fatal(err)
			}
			el, err := m.Eligible(snap, p, at)
			if err != nil {
				t.Fatal(err)
			}
			r := result{plan: plan, eligible: el}
			for k := 0; k < snap.Len(); k += 251 {
				a, err := m.Assess(snap, p, snap.Service(int32(k)).ID, at)
				if err != nil {
					t.Fatal(err)
				}
				r.assessed = append(r.assessed, a)
			}
			out[i] = r
		}
		return out
	}
	want := run()
	planned, specialised, restricted := 0, 0, 0
	for _, r := range want {
		for _, g := range r.plan.Groups {
			planned++
			for _, c := range g.Candidates {
				for _, why := range c.Why {
					switch why.Code {
					case routing.ReasonSpecialised:
						specialised++
					case routing.ReasonOnlyFor:
						restricted++
					}
				}
			}
		}
	}
	if planned < len(profiles) || specialised == 0 || restricted == 0 {
		t.Fatalf("the sample plans too little to compare: %d placements, %d specialised candidates, %d restricted", planned, specialised, restricted)
	}
	for _, pad := range []int{40, 70} {
		restore := routing.PadNumbering(pad)
		got := run()
		restore()
		for i := range want {
			if !reflect.DeepEqual(got[i], want[i]) {
				t.Errorf("codes numbered from %d: profile %d (%v) matched otherwise:\n got %+v\nwant %+v", pad, i, profiles[i].Needs, got[i].plan, want[i].plan)
			}
		}
	}
}

// A profile's own codes are numbered afresh: a need, channel or
// accessibility need listed past the 64th time is the same code, not a
// 65th bit, and plans as listed once.
func TestRepeatedCodesPlanAsOnce(t *testing.T) {
	t.Parallel()
	snap := directory.NewIndex(directory.Generate(500, 3), 1)
	m := routing.NewMatcher(routing.Config{})
	at := routing.At(mondayMorning)
	p := baseProfile()
	p.Accessibility = []string{"wheelchair"}
	want, err := m.Match(snap, p, at)
	if err != nil {
		t.Fatal(err)
	}
	long := p
	long.Needs, long.Channels, long.Accessibility = nil, nil, nil
	for range 70 {
		long.Needs = append(long.Needs, p.Needs...)
		long.Channels = append(long.Channels, p.Channels...)
		long.Accessibility = append(long.Accessibility, p.Accessibility...)
	}
	got, err := m.Match(snap, long, at)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("repeated codes plan otherwise:\n got %+v\nwant %+v", got, want)
	}
}
