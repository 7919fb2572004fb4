package routing

import (
	"slices"
	"testing"
	"time"

	"github.com/invictus-network/invictus/directory"
)

// TestPlannedReasonsStayTheirOwn checks that the reasons of every planned
// candidate (Why, in codes) still say what its texts (Reasons, made from
// them when it was explained) say after the whole plan is made and after
// the matcher has made other plans: the reasons and their terms of the
// candidates of a plan are cut from shared arrays (query.reasons), which
// must give each candidate its own part and each plan its own arrays.
func TestPlannedReasonsStayTheirOwn(t *testing.T) {
	t.Parallel()
	snap := directory.NewIndex(directory.Generate(4000, 9), 1)
	m := NewMatcher(Config{})
	at := At(time.Date(2026, 11, 27, 11, 0, 0, 0, time.UTC))
	var plans []*Plan
	check := func(p *Plan) int {
		n := 0
		var all []Candidate
		for _, g := range p.Groups {
			all = append(all, g.Candidates...)
		}
		for _, r := range p.Relaxed {
			all = append(all, r.Candidates...)
		}
		for _, c := range all {
			if got := codeTexts(c.Why); !slices.Equal(got, c.Reasons) {
				t.Fatalf("candidate %s: its reasons now read\n%q\nbut it was explained as\n%q", c.Service, got, c.Reasons)
			}
			n++
		}
		return n
	}
	explained := 0
	for _, p := range SampleProfiles(300, 9) {
		plan, err := m.Match(snap, p, at, WithFallbacks(5))
		if err != nil {
			t.Fatal(err)
		}
		explained += check(plan)
		plans = append(plans, plan)
	}
	for _, plan := range plans {
		check(plan)
	}
	if explained < 1000 {
		t.Fatalf("only %d candidates explained: the test checks too little", explained)
	}
}
