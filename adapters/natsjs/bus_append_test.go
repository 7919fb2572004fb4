package natsjs_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/invictus-network/invictus/adapters/natsjs"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/routing"
)

// chain returns an append of three events creating referral id.
func chain(t testing.TB, id string) routing.Append {
	t.Helper()
	a := routing.Append{ReferralID: id, Subject: "referral.pt." + id}
	for _, p := range []events.Payload{request(events.NeedSupportEmotional), &events.Declined{Placement: "p1", Reason: "capacity"}, &events.Accepted{Placement: "p1"}} {
		ev, err := events.New(events.SourceOf("pt.ref"), id, p)
		if err != nil {
			t.Fatal(err)
		}
		a.Events = append(a.Events, routing.Outgoing{Event: ev})
	}
	return a
}

// Chains appended by many writers at once on two connections each end
// up whole and in order on their referral's subject, whatever JetStream
// stored in between; an append on a subject that moved on conflicts.
func TestAppendChainsUnderContention(t *testing.T) {
	t.Parallel()
	n := newNet(t, time.Hour)
	ctx := context.Background()
	var buses []*natsjs.Bus
	for range 2 {
		nc, err := n.connect(ctx, "writer")
		if err != nil {
			t.Fatal(err)
		}
		bus, err := natsjs.NewBus(nc, natsjs.BusConfig{})
		if err != nil {
			t.Fatal(err)
		}
		buses = append(buses, bus)
	}
	const writers, perWriter = 8, 25
	appends := make([][]routing.Append, writers)
	lasts := make([][]uint64, writers)
	var wg sync.WaitGroup
	for w := range writers {
		bus := buses[w%len(buses)]
		for range perWriter {
			appends[w] = append(appends[w], chain(t, events.NewReferralID()))
		}
		wg.Go(func() {
			for _, a := range appends[w] {
				last, err := bus.Append(ctx, a)
				if err != nil {
					t.Errorf("append %s: %v", a.ReferralID, err)
				}
				lasts[w] = append(lasts[w], last)
			}
		})
	}
	wg.Wait()
	interleaved := 0
	for w := range writers {
		for i, a := range appends[w] {
			log := n.log(a.ReferralID)
			var ids []string
			for _, m := range log {
				ids = append(ids, m.env.Event.ID())
			}
			want := []string{a.Events[0].Event.ID(), a.Events[1].Event.ID(), a.Events[2].Event.ID()}
			if !slices.Equal(ids, want) {
				t.Fatalf("referral %s holds %v, want %v", a.ReferralID, ids, want)
			}
			if log[2].seq != lasts[w][i] {
				t.Errorf("append returned %d, the last event is at %d", lasts[w][i], log[2].seq)
			}
			if log[2].seq-log[0].seq != 2 {
				interleaved++
			}
		}
	}
	t.Logf("%d of %d chains had other messages stored in between", interleaved, writers*perWriter)

	// The subject has moved on: a stale expectation conflicts, the right
	// one appends.
	a := appends[0][0]
	more := chain(t, a.ReferralID)
	more.Expected = lasts[0][0] - 1
	if _, err := buses[0].Append(ctx, more); !errors.Is(err, routing.ErrConflict) {
		t.Fatalf("append on a stale sequence: %v, want a conflict", err)
	}
	more.Expected = lasts[0][0]
	if _, err := buses[1].Append(ctx, more); err != nil {
		t.Fatalf("append on the current sequence: %v", err)
	}
	if got := len(n.log(a.ReferralID)); got != 6 {
		t.Errorf("%d events after a second chain, want 6", got)
	}
	// A new referral whose id exists already, even in another country,
	// conflicts.
	dup := chain(t, a.ReferralID)
	dup.Subject = "referral.fi." + a.ReferralID
	if _, err := buses[0].Append(ctx, dup); !errors.Is(err, routing.ErrConflict) {
		t.Fatalf("a second subject for one referral: %v, want a conflict", err)
	}
}

// A chain of events costs the server one acknowledgement, not one per
// event: only the last event of a chain asks for one.
func TestAppendChainIsAcknowledgedOnce(t *testing.T) {
	t.Parallel()
	n := newNet(t, time.Hour)
	ctx := context.Background()
	nc, err := n.connect(ctx, "writer")
	if err != nil {
		t.Fatal(err)
	}
	bus, err := natsjs.NewBus(nc, natsjs.BusConfig{})
	if err != nil {
		t.Fatal(err)
	}
	const chains = 20
	var as []routing.Append
	for range chains {
		as = append(as, chain(t, events.NewReferralID()))
	}
	in0, out0 := n.srv.Msgs()
	for _, a := range as {
		if _, err := bus.Append(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	in1, out1 := n.srv.Msgs()
	for _, a := range as {
		if got := len(n.log(a.ReferralID)); got != 3 {
			t.Fatalf("referral %s holds %d events, want 3", a.ReferralID, got)
		}
	}
	t.Logf("%d chains of 3 events: %d messages in, %d out", chains, in1-in0, out1-out0)
	if out := out1 - out0; out > chains+chains/2 {
		t.Errorf("%d chains of 3 events: the server sent %d messages, want about one acknowledgement per chain", chains, out)
	}
}
