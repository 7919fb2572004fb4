package natsjs_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/invictus-network/invictus/adapters/natsjs"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/internal/testenv"
	"github.com/invictus-network/invictus/referral"
)

// responder plays the organisations: it reads every delivery and answers
// each offer with answer(org), publishing the answer twice now and then
// (a client retrying).
type responder struct {
	n      *netBundle
	answer func(org string, o *events.Offered) events.Payload
	cc     jetstream.ConsumeContext
	mu     sync.Mutex
	seen   map[string]bool
	errs   []error
	// ctx bounds the retries of an answer: the test binary's timeout,
	// not a clock (a loaded machine can keep the server away for long).
	ctx context.Context
}

func (n *netBundle) respond(answer func(org string, o *events.Offered) events.Payload) *responder {
	n.t.Helper()
	// Not the test's context, which ends before the clean-ups: answers may
	// still be sent until r.stop.
	r := &responder{n: n, answer: answer, seen: map[string]bool{}, ctx: testenv.ContextFrom(n.t, context.Background())}
	ctx := context.Background()
	oc, err := n.js.OrderedConsumer(ctx, natsjs.StreamDelivery, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"out.>"}})
	if err != nil {
		n.t.Fatal(err)
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	r.cc, err = oc.Consume(func(m jetstream.Msg) {
		if m.Headers().Get(natsjs.HeaderReminder) != "" {
			return
		}
		env, err := events.Decode(events.Message{Subject: m.Subject(), Header: m.Headers(), Data: m.Data()})
		if err != nil {
			r.fail(err)
			return
		}
		o, ok := env.Payload.(*events.Offered)
		org, _, perr := events.ParseDeliverySubject(m.Subject())
		if !ok || perr != nil || org != o.Organisation {
			return
		}
		key := fmt.Sprintf("%s %s %d", env.Event.Subject(), o.Placement, o.Attempt)
		r.mu.Lock()
		dup := r.seen[key]
		r.seen[key] = true
		r.mu.Unlock()
		if dup {
			return
		}
		p := answer(org, o)
		if p == nil {
			return
		}
		ev, err := events.New(events.SourceOf(org), env.Event.Subject(), p)
		if err != nil {
			r.fail(err)
			return
		}
		msg, err := events.ToNATS("in."+org, ev)
		if err != nil {
			r.fail(err)
			return
		}
		times := 1
		if rnd.IntN(10) == 0 {
			times = 2 // sent twice, bypassing deduplication
		}
		for range times {
			if err := r.publish(natsMsg(msg)); err != nil {
				r.fail(err)
			}
		}
	})
	if err != nil {
		n.t.Fatal(err)
	}
	n.t.Cleanup(r.stop)
	return r
}

// publish publishes m to INBOUND and waits for the acknowledgement,
// trying again (as a client would) while the server is away.
func (r *responder) publish(m *nats.Msg) error {
	for {
		// Each try bounded by 2 s so that one sent while the server was
		// away is sent again; the tries by the test binary's timeout.
		ctx, cancel := context.WithTimeout(r.ctx, 2*time.Second)
		_, err := r.n.js.PublishMsg(ctx, m)
		cancel()
		if err == nil || r.ctx.Err() != nil {
			return err
		}
	}
}

func (r *responder) fail(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, err)
}

func (r *responder) stop() {
	r.cc.Stop()
	<-r.cc.Closed()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, err := range r.errs {
		r.n.t.Errorf("responder: %v", err)
	}
	r.errs = nil
}

// declineThenAccept declines at pt.a1 and accepts at pt.a2.
func declineThenAccept(org string, o *events.Offered) events.Payload {
	if org == "pt.a1" {
		return &events.Declined{Placement: o.Placement, Reason: "capacity"}
	}
	return &events.Accepted{Placement: o.Placement}
}

// checkReferral checks the log and deliveries of a referral that went
// request, offer to pt.a1, decline, offer to pt.a2, accept: every event
// once, no organisation offered a placement twice.
func checkReferral(t *testing.T, n *netBundle, id string) {
	t.Helper()
	log := n.log(id)
	want := []string{"requested", "planned", "offered", "declined", "offered", "accepted"}
	if got := types(log); !slices.Equal(got, want) {
		t.Errorf("referral %s log %v, want %v", id, got, want)
		return
	}
	uniqueIDs(t, log)
	offered := map[string]bool{}
	for _, m := range log {
		if o, ok := m.env.Payload.(*events.Offered); ok {
			k := o.Placement + " " + o.Organisation
			if offered[k] {
				t.Errorf("referral %s: %s offered twice", id, k)
			}
			offered[k] = true
		}
	}
	for o, want := range map[string][]string{"pt.a1": {"offered", "declined"}, "pt.a2": {"offered", "accepted"}} {
		got := n.deliveries(o, id)
		if !slices.Equal(types(got), want) {
			t.Errorf("referral %s: %s received %v, want %v", id, o, types(got), want)
		}
		uniqueIDs(t, got)
	}
}

// Two routing-service instances share the consumers under load: every
// referral gets its events once and no organisation is offered the same
// placement twice; with chained appends and with atomic batches.
func TestTwoInstancesUnderLoad(t *testing.T) {
	t.Parallel()
	for _, atomic := range []bool{false, true} {
		t.Run(fmt.Sprintf("atomic=%v", atomic), func(t *testing.T) {
			t.Parallel()
			testTwoInstances(t, atomic)
		})
	}
}

func testTwoInstances(t *testing.T, atomic bool) {
	n := newNet(t, time.Hour)
	n.busCfg.AtomicBatch = atomic
	n.startRouter()
	n.startRouter()
	n.respond(declineThenAccept)
	const referrals = 150
	ids := make([]string, referrals)
	for i := range ids {
		ids[i] = events.NewReferralID()
		n.send("pt.ref", ids[i], request(events.NeedSupportEmotional))
	}
	accepted := func() uint64 {
		c := uint64(0)
		for _, id := range ids {
			for _, m := range n.delivered("pt.ref", id) {
				if m.typ() == events.TypeReferralAccepted {
					c++
				}
			}
		}
		return c
	}
	start := time.Now()
	// Progress is every event the referrer receives: under load the first
	// acceptance comes only after many plans, offers and declines.
	received := func() uint64 {
		c := uint64(0)
		for _, id := range ids {
			c += uint64(len(n.delivered("pt.ref", id)))
		}
		return c
	}
	waitProgress(t, "every referral accepted", received, func(uint64) bool { return accepted() == referrals },
		func() { n.explainReferrals(ids, "pt.ref", "pt.a1", "pt.a2") })
	t.Logf("%d referrals accepted in %s", referrals, time.Since(start).Round(time.Millisecond))
	n.consumerIdle(natsjs.StreamInbound, natsjs.ConsumerRouting)
	n.consumerIdle(natsjs.StreamReferrals, natsjs.ConsumerDispatcher)
	for _, id := range ids {
		checkReferral(t, n, id)
	}
}

// Routing-service instances crash at random points while hundreds of
// referrals are in flight; new ones take over. In the second run the
// NATS server itself is restarted half way too. Every referral reaches the
// state it should, with no event lost and none doubled.
func TestCrashSafety(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("crash test skipped in -short mode")
	}
	for _, restart := range []bool{false, true} {
		t.Run(fmt.Sprintf("restart-server=%v", restart), func(t *testing.T) {
			t.Parallel()
			testCrashSafety(t, restart)
		})
	}
}

func testCrashSafety(t *testing.T, restart bool) {
	n := newNetWith(t, restart, time.Hour)
	n.respond(declineThenAccept)
	routers := []*runningRouter{n.startRouter(), n.startRouter()}
	const referrals = 300
	ids := make([]string, referrals)
	for i := range ids {
		ids[i] = events.NewReferralID()
		n.send("pt.ref", ids[i], request(events.NeedSupportEmotional))
	}
	// Crash an instance each time the log has grown by a random number of
	// events, and start another; stop crashing after eight.
	const final = referrals * 6 // requested, planned, offered, declined, offered, accepted
	stream, err := n.js.Stream(t.Context(), natsjs.StreamReferrals)
	if err != nil {
		t.Fatal(err)
	}
	logged := func() uint64 {
		si, err := stream.Info(t.Context())
		if err != nil {
			return 0 // the server is restarting
		}
		return si.State.Msgs
	}
	rnd := rand.New(rand.NewPCG(7, 9))
	crashes, next := 0, uint64(30+rnd.IntN(120))
	restarted := !restart
	defer func() {
		if !t.Failed() {
			return
		}
		hist := map[string]int{}
		for _, id := range ids {
			hist[fmt.Sprint(types(n.log(id)))]++
		}
		t.Logf("logs of the referrals: %v; crashes %d", hist, crashes)
		for _, s := range []string{natsjs.StreamInbound, natsjs.StreamReferrals, natsjs.StreamTimers} {
			if c, err := n.js.Consumer(context.Background(), s, map[string]string{natsjs.StreamInbound: natsjs.ConsumerRouting, natsjs.StreamReferrals: natsjs.ConsumerDispatcher, natsjs.StreamTimers: natsjs.ConsumerTimers}[s]); err == nil {
				info, _ := c.Info(context.Background())
				t.Logf("%s consumer: pending %d ack pending %d redelivered %d waiting %d", s, info.NumPending, info.NumAckPending, info.NumRedelivered, info.NumWaiting)
			}
		}
	}()
	waitProgress(t, "every referral accepted", logged, func(m uint64) bool {
		if !restarted && m >= final/2 {
			n.restartServer()
			restarted = true
			return false
		}
		if crashes < 8 && m >= next {
			i := rnd.IntN(len(routers))
			routers[i].crash(t)
			routers[i] = n.startRouter()
			crashes++
			next = m + uint64(30+rnd.IntN(120))
		}
		return m >= final
	})
	if crashes == 0 {
		t.Fatal("no crash happened")
	}
	for _, id := range ids {
		if st := n.state(id); st.Status != referral.StatusInProgress || st.Placements[0].AcceptedBy != "pt.a2" {
			t.Errorf("referral %s is %s, accepted by %q", id, st.Status, st.Placements[0].AcceptedBy)
		}
	}
	n.consumerIdle(natsjs.StreamInbound, natsjs.ConsumerRouting)
	n.consumerIdle(natsjs.StreamReferrals, natsjs.ConsumerDispatcher)
	for _, id := range ids {
		checkReferral(t, n, id)
	}
	t.Logf("%d referrals, %d crashes, server restarted: %v", referrals, crashes, restart)
}
