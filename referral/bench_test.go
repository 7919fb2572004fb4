package referral_test

import (
	"testing"

	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/referral"
)

// BenchmarkDecideAccept measures the state machine's share of the routing
// hop: deciding an acceptance and applying it.
func BenchmarkDecideAccept(b *testing.B) {
	h := fixture(b, "offered")
	cmd := h.envelope(src(orgA), &events.Accepted{Placement: "p1"})
	by := referral.Actor{Org: orgA}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := referral.Decide(h.s, cmd, by, h.now, h.d); err != nil {
			b.Fatal(err)
		}
		if _, err := referral.Apply(h.s, cmd); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFold measures loading a referral's state from a typical log
// (request, plan, three offers, two declines, acceptance, handover,
// contact, completion).
func BenchmarkFold(b *testing.B) {
	h := fixture(b, "completed")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := referral.Fold(h.log); err != nil {
			b.Fatal(err)
		}
	}
}
