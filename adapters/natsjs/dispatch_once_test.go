package natsjs_test

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/invictus-network/invictus/adapters/natsjs"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/internal/testenv"
	"github.com/invictus-network/invictus/routing"
)

// A router that stops pulling the dispatcher consumer with events in hand
// (busy, or starved of CPU) loses it to another router, which receives
// those events again and delivers them; the first router then dispatches
// them too, as first deliveries, after the duplicate window has passed.
// Each organisation still holds one copy of each event: the copy is
// published expecting its subject's last sequence, and the subject has
// moved on. Without that, only Nats-Msg-Id stood between the late copies
// and a second delivery, and only within its window.
func TestLateDispatcherDeliversOnce(t *testing.T) {
	t.Parallel()
	n := newNet(t, time.Hour)
	n.shortWindow()
	n.rtCfg.AckWait, n.rtCfg.PinnedTTL = time.Second, time.Second
	ctx := t.Context()
	nc, err := n.connect(ctx, "late router")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	late, err := natsjs.NewNode(nc, n.view, natsjs.NodeConfig{Bus: n.busCfg, Service: n.svcCfg, Router: n.rtCfg})
	if err != nil {
		t.Fatal(err)
	}
	if err := late.Router.EnsureConsumers(ctx); err != nil {
		t.Fatal(err)
	}

	// Two events of one referral for pt.a1: the first copy is not the
	// subject's last when the late router comes to it.
	id := events.NewReferralID()
	subject, err := events.ReferralSubject("pt", id)
	if err != nil {
		t.Fatal(err)
	}
	var out []routing.Outgoing
	for range 2 {
		ev, err := events.New(events.SourceOf("pt.ref"), id, request(events.NeedSupportEmotional))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, routing.Outgoing{Event: ev, Recipients: []string{"pt.a1"}})
	}
	if _, err := late.Bus.Append(ctx, routing.Append{ReferralID: id, Subject: subject, Events: out}); err != nil {
		t.Fatal(err)
	}

	// The late router takes both events from the dispatcher, and stops
	// pulling.
	cons, err := n.js.Consumer(ctx, natsjs.StreamReferrals, natsjs.ConsumerDispatcher)
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(2, jetstream.FetchPriorityGroup(natsjs.DispatchGroup))
	if err != nil {
		t.Fatal(err)
	}
	var held []jetstream.Msg
	for m := range batch.Messages() {
		held = append(held, m)
	}
	if err := batch.Error(); err != nil {
		t.Fatal(err)
	}
	if len(held) != 2 {
		t.Fatalf("fetched %d events, want 2", len(held))
	}
	for _, m := range held {
		if md, err := m.Metadata(); err != nil || md.NumDelivered != 1 {
			t.Fatalf("held event: metadata %+v, %v; want a first delivery", md, err)
		}
	}

	// Another router takes the dispatcher over once the pin and the
	// events' acknowledgement wait have lapsed, and delivers them.
	n.startRouter()
	copies := func() int { return len(n.deliveries("pt.a1", id)) }
	testenv.Await(t, "the other router to deliver both events to pt.a1", func() bool { return copies() >= 2 })

	// The duplicate window passes: a probe is stored twice under one id.
	probe, probeID, stored := "out.pt.probe."+events.NewReferralID(), nats.NewInbox(), 0
	testenv.Await(t, "the duplicate window to pass", func() bool {
		m := nats.NewMsg(probe)
		m.Header.Set(jetstream.MsgIDHeader, probeID)
		if ack, err := n.js.PublishMsg(ctx, m); err == nil && !ack.Duplicate {
			stored++
		}
		return stored == 2
	})

	natsjs.DispatchHeld(ctx, late.Router, held...)
	got := n.deliveries("pt.a1", id)
	if len(got) != 2 {
		t.Errorf("pt.a1 holds %d copies, want 2: %v", len(got), types(got))
	}
	uniqueIDs(t, got)
}
