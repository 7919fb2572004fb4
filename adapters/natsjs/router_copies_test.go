package natsjs_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/invictus-network/invictus/adapters/natsjs"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/internal/testenv"
	"github.com/invictus-network/invictus/routing"
)

// copyRecipients are the organisations every event of copyAppends goes
// to.
var copyRecipients = []string{"pt.ref", "pt.a1", "pt.a2", "pt.a3"}

// copyAppends appends n referrals of three events each, every event for
// copyRecipients, on a connection of its own.
func copyAppends(t *testing.T, n *netBundle, referrals int) []routing.Append {
	t.Helper()
	ctx := context.Background()
	nc, err := n.connect(ctx, "writer")
	if err != nil {
		t.Fatal(err)
	}
	bus, err := natsjs.NewBus(nc, natsjs.BusConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var as []routing.Append
	for range referrals {
		a := chain(t, events.NewReferralID())
		for i := range a.Events {
			a.Events[i].Recipients = copyRecipients
		}
		as = append(as, a)
	}
	for _, a := range as {
		if _, err := bus.Append(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	return as
}

// awaitCopies waits until the dispatcher has acknowledged every event
// and DELIVERY holds want copies, then checks that every recipient holds
// each event of every referral exactly once, in log order.
func awaitCopies(t *testing.T, n *netBundle, as []routing.Append) {
	t.Helper()
	want := uint64(len(as) * 3 * len(copyRecipients))
	var held uint64
	testenv.Await(t, fmt.Sprintf("DELIVERY to hold %d copies and the dispatcher to be idle", want), func() bool {
		s, err := n.js.Stream(context.Background(), natsjs.StreamDelivery)
		if err != nil {
			return false
		}
		held = s.CachedInfo().State.Msgs
		c, err := n.js.Consumer(context.Background(), natsjs.StreamReferrals, natsjs.ConsumerDispatcher)
		if err != nil {
			return false
		}
		info, err := c.Info(context.Background())
		return err == nil && held >= want && info.NumPending == 0 && info.NumAckPending == 0
	}, func() string { return fmt.Sprintf("DELIVERY holds %d", held) })
	for _, a := range as {
		for _, org := range copyRecipients {
			got := n.deliveries(org, a.ReferralID)
			var ids []string
			for _, m := range got {
				ids = append(ids, m.header.Get("ce-id"))
			}
			wantIDs := []string{a.Events[0].Event.ID(), a.Events[1].Event.ID(), a.Events[2].Event.ID()}
			if fmt.Sprint(ids) != fmt.Sprint(wantIDs) {
				t.Fatalf("%s holds %v of referral %s, want each event once in log order %v", org, ids, a.ReferralID, wantIDs)
			}
		}
	}
	if held != want {
		t.Errorf("DELIVERY holds %d copies, want %d", held, want)
	}
}

// A copy refused because its subject holds it already is looked for and
// found by the router that has its event in hand: here one copy of every
// event is in DELIVERY already, stored with its Nats-Msg-Id before the
// dispatcher ran. Every recipient still holds each event once, and no
// event had to be dispatched again.
func TestDispatchCopyStoredAlreadyIsFoundInHand(t *testing.T) {
	t.Parallel()
	n := newNet(t, time.Hour)
	// Nothing is delivered again for taking long on a loaded machine.
	n.rtCfg.AckWait = time.Hour
	ctx := context.Background()
	const referrals = 10
	// Append first, with no router running, and store one copy of each
	// event beforehand, as a dispatch cut off by a crash would have.
	as := copyAppends(t, n, referrals)
	storeCopies(t, n, as, "pt.a2")
	n.startRouter()
	awaitCopies(t, n, as)
	// The refused copies were looked for by the router that had them in
	// hand, not left to a redelivery of their events.
	c, err := n.js.Consumer(ctx, natsjs.StreamReferrals, natsjs.ConsumerDispatcher)
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := info.Delivered.Consumer; got != referrals*3 {
		t.Errorf("the dispatcher was handed %d events, want each of the %d once", got, referrals*3)
	}
}

// storeCopies stores org's copy of every event of as in DELIVERY, with
// the Nats-Msg-Id the dispatcher gives it, as a dispatch cut off by a
// crash, or made by another router, would have.
func storeCopies(t *testing.T, n *netBundle, as []routing.Append, org string) {
	t.Helper()
	for _, a := range as {
		for _, o := range a.Events {
			subject, err := events.DeliverySubject(org, a.ReferralID)
			if err != nil {
				t.Fatal(err)
			}
			em, err := events.ToNATS(subject, o.Event)
			if err != nil {
				t.Fatal(err)
			}
			m := &nats.Msg{Subject: subject, Header: nats.Header(em.Header), Data: em.Data}
			m.Header.Set(jetstream.MsgIDHeader, events.MsgID(o.Event.Source(), o.Event.ID())+"."+org)
			if _, err := n.js.PublishMsg(context.Background(), m); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// An event handed to the dispatcher for the first time long after it
// was stored (it waited in a router's hands while another router
// dispatched it) is dispatched as one delivered again: the copies
// stored already are found, not stored a second time once the duplicate
// window has passed. Under load, TestCrashSafety and
// TestTwoInstancesUnderLoad found such a copy stored twice.
func TestDispatchOfAnOldEventLooksForItsCopies(t *testing.T) {
	t.Parallel()
	n := newNet(t, time.Hour)
	n.shortWindow()
	as := copyAppends(t, n, 3)
	storeCopies(t, n, as, "pt.a2")
	n.windowPassed()
	n.startRouter()
	awaitCopies(t, n, as)
}
