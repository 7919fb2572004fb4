package natsjs_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/invictus-network/invictus/adapters/natsjs"
)

// The dispatcher acknowledges many events at once (AckAll): 20 referrals
// of 3 events cost the server a handful of acknowledgements, where one
// per event (60) went before. Every organisation still holds each event
// once, in log order, and the consumer has nothing left to deliver or
// acknowledge.
func TestDispatchAcknowledgesManyEventsAtOnce(t *testing.T) {
	t.Parallel()
	n := newNet(t, time.Hour)
	var acks atomic.Int64
	nc, err := n.connect(context.Background(), "ack-watcher")
	if err != nil {
		t.Fatal(err)
	}
	sub, err := nc.Subscribe("$JS.ACK.>", func(m *nats.Msg) {
		if tokenIs(m.Subject, natsjs.ConsumerDispatcher) {
			acks.Add(1)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	n.startRouter()
	const referrals = 20
	as := copyAppends(t, n, referrals)
	awaitCopies(t, n, as)
	events := int64(referrals * 3)
	got := acks.Load()
	t.Logf("%d events dispatched with %d acknowledgements", events, got)
	if got > events/4 {
		t.Errorf("the dispatcher sent %d acknowledgements for %d events, want at most %d", got, events, events/4)
	}
}

// tokenIs reports whether one of subject's tokens is tok.
func tokenIs(subject, tok string) bool {
	start := 0
	for i := 0; i <= len(subject); i++ {
		if i == len(subject) || subject[i] == '.' {
			if subject[start:i] == tok {
				return true
			}
			start = i + 1
		}
	}
	return false
}

// A router that died holding events of the dispatcher holds up neither
// them nor the acknowledgement of the events after them: the router the
// consumer hands events to next reads the events at or before the
// consumer's last delivery that it was not handed, and dispatches them
// itself. Here the dead router's events would otherwise wait an hour
// (AckWait) to be delivered again.
func TestDispatchTakesOverTheEventsOfADeadRouter(t *testing.T) {
	t.Parallel()
	n := newNet(t, time.Hour)
	n.rtCfg.AckWait, n.rtCfg.PinnedTTL = time.Hour, time.Second
	ctx := t.Context()
	nc, err := n.connect(ctx, "dead router")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	dead, err := natsjs.NewNode(nc, n.view, natsjs.NodeConfig{Bus: n.busCfg, Service: n.svcCfg, Router: n.rtCfg})
	if err != nil {
		t.Fatal(err)
	}
	if err := dead.Router.EnsureConsumers(ctx); err != nil {
		t.Fatal(err)
	}
	held := copyAppends(t, n, 2)
	cons, err := n.js.Consumer(ctx, natsjs.StreamReferrals, natsjs.ConsumerDispatcher)
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(6, jetstream.FetchPriorityGroup(natsjs.DispatchGroup))
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for range batch.Messages() {
		got++ // held, never acknowledged
	}
	if err := batch.Error(); err != nil || got != 6 {
		t.Fatalf("the dead router fetched %d events (%v), want 6", got, err)
	}
	later := copyAppends(t, n, 2)
	n.startRouter()
	awaitCopies(t, n, append(held, later...))
}

// The dispatcher consumer of an older router, acknowledging each event
// on its own, cannot be changed to AckAll in place: it is replaced by one
// that starts after its acknowledgement floor. The events the old one
// saw acknowledged are not dispatched again, the others are, once; and
// the replacement is kept as it is when the router starts again.
func TestDispatchConsumerOfAnOlderRouterIsReplaced(t *testing.T) {
	t.Parallel()
	n := newNet(t, time.Hour)
	ctx := t.Context()
	old, err := n.js.CreateConsumer(ctx, natsjs.StreamReferrals, jetstream.ConsumerConfig{
		Durable: natsjs.ConsumerDispatcher, FilterSubject: natsjs.SubjectsReferrals, AckPolicy: jetstream.AckExplicitPolicy,
		MaxDeliver: -1, PriorityPolicy: jetstream.PriorityPolicyPinned, PriorityGroups: []string{natsjs.DispatchGroup}, PinnedTTL: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	done := copyAppends(t, n, 1) // dispatched by the old router
	batch, err := old.Fetch(3, jetstream.FetchPriorityGroup(natsjs.DispatchGroup))
	if err != nil {
		t.Fatal(err)
	}
	for m := range batch.Messages() {
		if err := m.DoubleAck(ctx); err != nil {
			t.Fatal(err)
		}
	}
	todo := copyAppends(t, n, 2)
	n.rtCfg.PinnedTTL = time.Second
	n.startRouter()
	awaitCopies(t, n, todo)
	for _, org := range copyRecipients {
		if got := n.deliveries(org, done[0].ReferralID); len(got) != 0 {
			t.Errorf("%s holds %d copies of a referral the old dispatcher acknowledged, want 0", org, len(got))
		}
	}
	c, err := n.js.Consumer(ctx, natsjs.StreamReferrals, natsjs.ConsumerDispatcher)
	if err != nil {
		t.Fatal(err)
	}
	if p := c.CachedInfo().Config.AckPolicy; p != jetstream.AckAllPolicy {
		t.Errorf("the dispatcher consumer acknowledges %v, want all", p)
	}
	// A router started again keeps the replacement and its start, which an
	// update may not change.
	nc, err := n.connect(ctx, "router started again")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	node, err := natsjs.NewNode(nc, n.view, natsjs.NodeConfig{Bus: n.busCfg, Service: n.svcCfg, Router: n.rtCfg})
	if err != nil {
		t.Fatal(err)
	}
	if err := node.Router.EnsureConsumers(ctx); err != nil {
		t.Fatalf("a router started again: %v", err)
	}
}
