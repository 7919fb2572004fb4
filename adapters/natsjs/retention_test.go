package natsjs_test

import (
	"math"
	"testing"
	"time"

	"github.com/invictus-network/invictus/adapters/natsjs"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/referral"
)

// A sweep purges, from every stream, the referrals the router closed
// (withdrawn, erased) once older than the age, and only those once the
// aggregates have folded them; a second sweep finds nothing more.
func TestSweepPurgesClosedReferrals(t *testing.T) {
	t.Parallel()
	n := newNet(t, time.Hour)
	n.startRouter()
	offered := func() string {
		id := events.NewReferralID()
		n.send("pt.ref", id, request(events.NeedSupportEmotional))
		n.waitState(id, "offered", offeredTo(0, "pt.a1"))
		return id
	}
	withdrawn, erased, open := offered(), offered(), offered()
	n.send("pt.ref", withdrawn, &events.Withdrawn{Reason: "needs_met"})
	n.waitState(withdrawn, "cancelled", func(st referral.State) bool { return st.Status == referral.StatusCancelled })
	n.send("pt.ref", erased, &events.Erase{Reason: "victim_request"})
	n.waitState(erased, "erased", func(st referral.State) bool { return st.Status == referral.StatusErased })
	n.consumerIdle(natsjs.StreamReferrals, natsjs.ConsumerDispatcher)
	n.waitDelivery("pt.a1", withdrawn, events.TypeReferralWithdrawn, nil)

	bus, err := natsjs.NewBus(n.nc, natsjs.BusConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bus.Sweep(t.Context(), natsjs.SweepConfig{}); err == nil {
		t.Fatal("a sweep without an age succeeded")
	}
	// Nothing is folded yet: nothing goes.
	res, err := bus.Sweep(t.Context(), natsjs.SweepConfig{Age: time.Nanosecond})
	if err != nil || res.Purged != 0 || res.Unfolded != 3 {
		t.Fatalf("sweep before the checkpoint = %+v, %v", res, err)
	}
	// Not old enough: nothing goes.
	res, err = bus.Sweep(t.Context(), natsjs.SweepConfig{Age: time.Hour, Folded: math.MaxUint64})
	if err != nil || res.Purged != 0 {
		t.Fatalf("sweep of young referrals = %+v, %v", res, err)
	}
	res, err = bus.Sweep(t.Context(), natsjs.SweepConfig{Age: time.Nanosecond, Folded: math.MaxUint64})
	if err != nil || res.Purged != 2 || res.Referrals != 3 {
		t.Fatalf("sweep = %+v, %v; want 2 of 3 purged", res, err)
	}
	for _, id := range []string{withdrawn, erased} {
		for _, s := range []struct{ stream, filter string }{
			{natsjs.StreamReferrals, "referral.*." + id},
			{natsjs.StreamDelivery, "out.*.*." + id},
			{natsjs.StreamTimers, "timer." + id + ".>"},
		} {
			if got := n.read(s.stream, s.filter); len(got) > 0 {
				t.Errorf("%s holds %d messages of the closed referral on %s", s.stream, len(got), s.filter)
			}
		}
	}
	if len(n.log(open)) == 0 || len(n.read(natsjs.StreamDelivery, "out.*.*."+open)) == 0 {
		t.Error("the open referral was purged")
	}
	res, err = bus.Sweep(t.Context(), natsjs.SweepConfig{Age: time.Nanosecond, Folded: math.MaxUint64})
	if err != nil || res.Purged != 0 || res.Referrals != 1 {
		t.Fatalf("second sweep = %+v, %v", res, err)
	}
}
