package natsjs_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/invictus-network/invictus/adapters/natsjs"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/internal/testenv"
)

// shortWindow gives every stream of n the shortest duplicate window
// JetStream allows (and creates a deleted stream again).
func (n *netBundle) shortWindow() {
	n.t.Helper()
	ctx := testenv.Context(n.t)
	if err := natsjs.EnsureStreams(ctx, n.js, natsjs.StreamsConfig{Duplicates: 100 * time.Millisecond}); err != nil {
		n.t.Fatal(err)
	}
}

// windowPassed waits until the duplicate window has passed for every
// message stored so far: a probe published on DELIVERY under one id
// before is stored again. Every stream has the same window, and the
// probe was published after everything the test replays. The probes are
// purged.
func (n *netBundle) windowPassed() {
	n.t.Helper()
	subject, id := "out.pt.probe."+events.NewReferralID(), nats.NewInbox()
	first := true
	testenv.Await(n.t, "the duplicate window to pass", func() bool {
		m := &nats.Msg{Subject: subject, Header: nats.Header{}}
		m.Header.Set(jetstream.MsgIDHeader, id)
		ack, err := n.js.PublishMsg(context.Background(), m)
		if err != nil || ack.Duplicate {
			return false
		}
		if first {
			first = false
			return false
		}
		return true
	})
	s, err := n.js.Stream(context.Background(), natsjs.StreamDelivery)
	if err != nil {
		n.t.Fatal(err)
	}
	if err := s.Purge(context.Background(), jetstream.WithPurgeSubject(subject)); err != nil {
		n.t.Fatal(err)
	}
}

// deleteStream deletes stream name, so that publishing to it fails until
// EnsureStreams creates it again.
func (n *netBundle) deleteStream(name string) {
	n.t.Helper()
	if err := n.js.DeleteStream(context.Background(), name); err != nil {
		n.t.Fatal(err)
	}
}

// redelivered waits until consumer has delivered a message again.
func (n *netBundle) redelivered(stream, consumer string) {
	n.t.Helper()
	testenv.Await(n.t, consumer+" to deliver a message again", func() bool {
		c, err := n.js.Consumer(context.Background(), stream, consumer)
		if err != nil {
			return false
		}
		info, err := c.Info(context.Background())
		return err == nil && info.NumRedelivered > 0
	})
}

// A command or an event the router receives again after the duplicate
// window (its acknowledgement was lost, or it waited longer than AckWait
// under load) is delivered once. The window is cut to 100 ms, and the
// second receipt is made certain: the router delivers, then fails to
// finish the message (its DLQ copy, or its timer, cannot be stored: the
// stream is gone), so JetStream delivers it again until the stream is
// back, which is only after the window has passed.
func TestRedeliveryAfterDuplicateWindow(t *testing.T) {
	t.Parallel()
	t.Run("rejection", func(t *testing.T) {
		t.Parallel()
		n := newNet(t, time.Hour)
		n.shortWindow()
		n.startRouter()
		id := events.NewReferralID()
		n.send("pt.ref", id, request(events.NeedSupportEmotional))
		off := n.waitDelivery("pt.a1", id, events.TypeReferralOffered, nil)
		pl := off.env.Payload.(*events.Offered).Placement
		n.consumerIdle(natsjs.StreamReferrals, natsjs.ConsumerDispatcher)

		n.deleteStream(natsjs.StreamDLQ)
		// pt.a2 was not offered the placement: its accept is rejected.
		n.send("pt.a2", id, &events.Accepted{Placement: pl})
		n.waitDelivery("pt.a2", id, events.TypeCommandRejected, nil)
		n.redelivered(natsjs.StreamInbound, natsjs.ConsumerRouting)
		n.windowPassed()
		n.shortWindow() // creates the deleted stream again
		testenv.Await(t, "the command set aside in DLQ", func() bool { return len(n.read(natsjs.StreamDLQ, ">")) == 1 })
		n.consumerIdle(natsjs.StreamInbound, natsjs.ConsumerRouting)

		got := n.rejections("pt.a2", id)
		t.Logf("rejections stored for one rejected command received again after the window: %d", len(got))
		if len(got) != 1 {
			t.Fatalf("the rejection is stored %d times on out.pt.a2.%s, want once", len(got), id)
		}
	})
	t.Run("dispatch", func(t *testing.T) {
		t.Parallel()
		n := newNet(t, time.Hour)
		n.shortWindow()
		n.startRouter()
		// Once the router pulls from every consumer (TIMERS' is its last),
		// TIMERS goes.
		testenv.Await(t, "the router pulling timers", func() bool {
			c, err := n.js.Consumer(context.Background(), natsjs.StreamTimers, natsjs.ConsumerTimers)
			if err != nil {
				return false
			}
			info, err := c.Info(context.Background())
			return err == nil && info.NumWaiting > 0
		})
		n.deleteStream(natsjs.StreamTimers)
		id := events.NewReferralID()
		n.send("pt.ref", id, request(events.NeedSupportEmotional))
		// The offer is delivered, but its timer cannot be set: the
		// dispatcher has the event delivered again.
		n.waitDelivery("pt.a1", id, events.TypeReferralOffered, nil)
		n.waitDelivery("pt.ref", id, events.TypeReferralOffered, nil)
		n.redelivered(natsjs.StreamReferrals, natsjs.ConsumerDispatcher)
		n.windowPassed()
		n.shortWindow() // creates the deleted stream again
		n.consumerIdle(natsjs.StreamReferrals, natsjs.ConsumerDispatcher)
		testenv.Await(t, "the offer's timer", func() bool { return len(n.read(natsjs.StreamTimers, "timer."+id+".>")) == 1 })

		for _, o := range []string{"pt.ref", "pt.a1"} {
			d := n.deliveries(o, id)
			t.Logf("%s received %v", o, types(d))
			uniqueIDs(t, d)
		}
		if got := types(n.deliveries("pt.a1", id)); len(got) != 1 {
			t.Fatalf("pt.a1 received %v, want its offer once", got)
		}
	})
	t.Run("command", func(t *testing.T) {
		// A command its sender publishes again after the window is a new
		// message: its referral log says it was applied, nothing more is
		// delivered.
		t.Parallel()
		n := newNet(t, time.Hour)
		n.shortWindow()
		n.startRouter()
		id := events.NewReferralID()
		req := n.send("pt.ref", id, request(events.NeedSupportEmotional))
		off := n.waitDelivery("pt.a1", id, events.TypeReferralOffered, nil)
		acc := n.send("pt.a1", id, &events.Accepted{Placement: off.env.Payload.(*events.Offered).Placement})
		n.waitDelivery("pt.ref", id, events.TypeReferralAccepted, nil)
		n.consumerIdle(natsjs.StreamInbound, natsjs.ConsumerRouting)
		n.consumerIdle(natsjs.StreamReferrals, natsjs.ConsumerDispatcher)
		before := map[string][]string{"pt.ref": types(n.deliveries("pt.ref", id)), "pt.a1": types(n.deliveries("pt.a1", id))}
		n.windowPassed()
		n.publish("pt.ref", req.Event)
		n.publish("pt.a1", acc.Event)
		n.consumerIdle(natsjs.StreamInbound, natsjs.ConsumerRouting)
		n.consumerIdle(natsjs.StreamReferrals, natsjs.ConsumerDispatcher)
		for o, want := range before {
			if got := types(n.deliveries(o, id)); !slices.Equal(got, want) {
				t.Errorf("%s received %v after the commands came again, want %v", o, got, want)
			}
		}
		if got := types(n.log(id)); !slices.Equal(got, []string{"requested", "planned", "offered", "accepted"}) {
			t.Errorf("log %v", got)
		}
	})
}
