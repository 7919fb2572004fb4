package natsjs_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/invictus-network/invictus/adapters/natsjs"
	"github.com/invictus-network/invictus/directory"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/internal/testenv"
	"github.com/invictus-network/invictus/referral"
	"github.com/invictus-network/invictus/routing"
	"github.com/invictus-network/invictus/seal"
)

// org describes a test organisation with one service for needs.
type org = testenv.Org

var (
	needsA = []string{events.NeedSupportEmotional, events.NeedInfoRights}
	// orgsLifecycle: a referrer whose own service is not a candidate, and
	// three organisations ranked pt.a1, pt.a2, pt.a3 (ties break on id).
	orgsLifecycle = []org{{ID: "pt.ref", Needs: []string{events.NeedInfoCase}}, {ID: "pt.a1", Needs: needsA}, {ID: "pt.a2", Needs: needsA}, {ID: "pt.a3", Needs: needsA}}
)

// netBundle is an embedded server with the streams, a directory, and the
// routers a test starts.
type netBundle struct {
	t      testing.TB
	srv    *natsjs.Server
	nc     *nats.Conn
	js     jetstream.JetStream
	view   *directory.View
	keys   map[string]seal.Key
	svcCfg routing.ServiceConfig
	rtCfg  natsjs.RouterConfig
	busCfg natsjs.BusConfig

	mu      sync.Mutex
	routers []*runningRouter
	tap     *tap

	storeDir string
	listen   string // host:port when connections go over TCP
}

// connect opens a connection to the server: in process, or over TCP with
// unlimited reconnects.
func (n *netBundle) connect(ctx context.Context, name string) (*nats.Conn, error) {
	if n.listen == "" {
		return n.srv.Connect(ctx, nats.Name(name), nats.MaxReconnects(0))
	}
	return nats.Connect("nats://"+n.listen, nats.Name(name), nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
}

// restartServer shuts the server down and starts it again on the same
// store and address; TCP connections reconnect.
func (n *netBundle) restartServer() {
	n.t.Helper()
	if n.listen == "" {
		n.t.Fatal("restartServer needs a TCP server (newNetWith)")
	}
	ctx := testenv.Context(n.t)
	if err := n.srv.Shutdown(ctx); err != nil {
		n.t.Fatalf("Shutdown: %v", err)
	}
	srv, err := natsjs.StartServer(ctx, natsjs.ServerConfig{StoreDir: n.storeDir, Listen: n.listen}, nil)
	if err != nil {
		n.t.Fatalf("restart: %v", err)
	}
	n.srv = srv
}

// runningRouter is one routing-service instance: its own connection, bus,
// service and router.
type runningRouter struct {
	nc     *nats.Conn
	svc    *routing.Service
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

// newNet starts an embedded server (no TCP listener) with the streams and
// a directory of orgs. deadline is the offer deadline of urgent referrals.
func newNet(t testing.TB, deadline time.Duration, orgs ...org) *netBundle {
	return newNetWith(t, false, deadline, orgs...)
}

// newNetWith is newNet; with tcp the server listens on a free port and
// every connection goes over TCP and reconnects, so that the server can be
// restarted (see restartServer).
func newNetWith(t testing.TB, tcp bool, deadline time.Duration, orgs ...org) *netBundle {
	t.Helper()
	if len(orgs) == 0 {
		orgs = orgsLifecycle
	}
	ctx := testenv.Context(t)
	n := &netBundle{t: t, view: directory.NewView(), keys: map[string]seal.Key{}, storeDir: t.TempDir()}
	cfg := natsjs.ServerConfig{StoreDir: n.storeDir, DontListen: true}
	if tcp {
		cfg = natsjs.ServerConfig{StoreDir: n.storeDir, Listen: "127.0.0.1:0"}
	}
	srv, err := natsjs.StartServer(ctx, cfg, nil)
	if err != nil {
		t.Fatalf("StartServer: %v", err)
	}
	n.srv = srv
	if tcp {
		n.listen = srv.Addr().String()
	}
	t.Cleanup(func() {
		n.stopAll()
		if n.nc != nil && n.listen != "" {
			n.nc.Close()
		}
		sctx, scancel := context.WithTimeout(context.Background(), time.Minute) // against a hang only
		defer scancel()
		if err := n.srv.Shutdown(sctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	if n.nc, err = n.connect(ctx, "test-orgs"); err != nil {
		t.Fatal(err)
	}
	if n.js, err = jetstream.New(n.nc, jetstream.WithDefaultTimeout(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := natsjs.EnsureStreams(ctx, n.js, natsjs.StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	n.view.Load(testenv.Directory(t, orgs, n.keys), 1)
	n.svcCfg = routing.ServiceConfig{Deadlines: referral.Deadlines{Urgent: deadline}}
	n.rtCfg = natsjs.RouterConfig{AckWait: 2 * time.Second, RetryDelay: 20 * time.Millisecond, PinnedTTL: 2 * time.Second}
	return n
}

// startRouter starts one more routing-service instance.
func (n *netBundle) startRouter() *runningRouter {
	n.t.Helper()
	ctx := context.Background()
	nc, err := n.connect(ctx, "router")
	if err != nil {
		n.t.Fatal(err)
	}
	node, err := natsjs.NewNode(nc, n.view, natsjs.NodeConfig{Bus: n.busCfg, Service: n.svcCfg, Router: n.rtCfg})
	if err != nil {
		n.t.Fatal(err)
	}
	svc, rt := node.Service, node.Router
	if err := rt.EnsureConsumers(ctx); err != nil {
		n.t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	r := &runningRouter{nc: nc, svc: svc, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- rt.Run(rctx) }()
	n.mu.Lock()
	n.routers = append(n.routers, r)
	n.mu.Unlock()
	return r
}

// stop stops the router gracefully and closes its connection.
func (r *runningRouter) stop(t testing.TB) {
	r.once.Do(func() {
		r.cancel()
		if err := testenv.Recv(t, "the router to stop", r.done); err != nil {
			t.Errorf("router Run: %v", err)
		}
		r.nc.Close()
	})
}

// crash kills the router's connection first, as a process crash would:
// whatever it was doing fails half way, and its unacknowledged messages
// are delivered again after AckWait.
func (r *runningRouter) crash(t testing.TB) {
	r.once.Do(func() {
		r.nc.Close()
		r.cancel()
		// After a crash Run's error is expected; it is only shown.
		t.Logf("crashed router returned: %v", testenv.Recv(t, "the crashed router to return", r.done))
	})
}

func (n *netBundle) stopAll() {
	n.mu.Lock()
	rs := n.routers
	n.mu.Unlock()
	for _, r := range rs {
		r.stop(n.t)
	}
}

// send publishes a command of org about referral id on org's INBOUND
// subject, with its id as Nats-Msg-Id, and returns it.
func (n *netBundle) send(org, id string, p events.Payload) *events.Envelope {
	n.t.Helper()
	ev, err := events.New(events.SourceOf(org), id, p)
	if err != nil {
		n.t.Fatalf("build %s: %v", p.EventType(), err)
	}
	n.publish(org, ev)
	env, err := events.DecodeEvent(ev)
	if err != nil {
		n.t.Fatal(err)
	}
	return env
}

// publish publishes ev on org's INBOUND subject.
func (n *netBundle) publish(org string, ev event.Event) {
	n.t.Helper()
	subject, err := events.InboundSubject(org)
	if err != nil {
		n.t.Fatal(err)
	}
	m, err := events.ToNATS(subject, ev)
	if err != nil {
		n.t.Fatal(err)
	}
	msg := &nats.Msg{Subject: subject, Header: nats.Header(m.Header), Data: m.Data}
	msg.Header.Set(jetstream.MsgIDHeader, events.MsgID(ev.Source(), ev.ID()))
	ctx := testenv.Context(n.t)
	if _, err := n.js.PublishMsg(ctx, msg); err != nil {
		n.t.Fatalf("publish: %v", err)
	}
}

// stored is a message read back from a stream.
type stored struct {
	seq     uint64
	subject string
	header  nats.Header
	data    []byte
	env     *events.Envelope // nil if it does not decode
}

func (s stored) typ() string {
	if s.env == nil {
		return ""
	}
	return s.env.Event.Type()
}

// read returns every message of stream on filter, in order.
func (n *netBundle) read(stream, filter string) []stored {
	n.t.Helper()
	ctx := testenv.Context(n.t)
	oc, err := n.js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
	if err != nil {
		n.t.Fatalf("ordered consumer on %s: %v", stream, err)
	}
	info, err := oc.Info(ctx)
	if err != nil {
		n.t.Fatalf("consumer info: %v", err)
	}
	defer func() { _ = n.js.DeleteConsumer(context.Background(), stream, info.Name) }()
	var out []stored
	for uint64(len(out)) < info.NumPending {
		// A fetch waits for its whole batch, so a short wait: messages
		// deleted while we read leave it short until the wait ends.
		batch, err := oc.Fetch(int(min(info.NumPending-uint64(len(out)), 1000)), jetstream.FetchMaxWait(time.Second))
		if err != nil {
			n.t.Fatalf("fetch: %v", err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			md, _ := m.Metadata()
			s := stored{seq: md.Sequence.Stream, subject: m.Subject(), header: m.Headers(), data: m.Data()}
			s.env, _ = events.Decode(events.Message{Subject: m.Subject(), Header: m.Headers(), Data: m.Data()})
			out = append(out, s)
		}
		if got == 0 {
			// Nothing within the fetch's wait: either the rest was purged
			// or deleted while we read (a timer cancelled, a fire message
			// handled), and what is left is all, or a loaded machine was
			// slow to deliver it, and it is still pending.
			now, err := oc.Info(ctx)
			if err != nil {
				n.t.Fatalf("consumer info: %v", err)
			}
			if now.NumPending == 0 {
				break
			}
		}
	}
	return out
}

// types returns the short event types of msgs ("offered" for
// invictus.referral.offered.v1).
func types(msgs []stored) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		t := strings.TrimSuffix(m.typ(), ".v1")
		t = strings.TrimPrefix(t, "invictus.referral.")
		out[i] = strings.TrimPrefix(t, "invictus.")
	}
	return out
}

// log returns the REFERRALS events of a referral.
func (n *netBundle) log(id string) []stored {
	return n.read(natsjs.StreamReferrals, "referral.*."+id)
}

// tap follows everything delivered (DELIVERY, out.>) into memory, so
// that tests can poll deliveries without reading the stream each time. It
// does not see purges.
type tap struct {
	mu        sync.Mutex
	bySubject map[string][]stored
	cc        jetstream.ConsumeContext
}

// delivered returns what the tap has seen delivered to org about
// referral id, starting the tap on first use.
func (n *netBundle) delivered(org, id string) []stored {
	n.t.Helper()
	n.mu.Lock()
	tp := n.tap
	if tp == nil {
		tp = &tap{bySubject: map[string][]stored{}}
		oc, err := n.js.OrderedConsumer(context.Background(), natsjs.StreamDelivery, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"out.>"}})
		if err != nil {
			n.mu.Unlock()
			n.t.Fatal(err)
		}
		tp.cc, err = oc.Consume(func(m jetstream.Msg) {
			md, _ := m.Metadata()
			s := stored{seq: md.Sequence.Stream, subject: m.Subject(), header: m.Headers(), data: m.Data()}
			s.env, _ = events.Decode(events.Message{Subject: m.Subject(), Header: m.Headers(), Data: m.Data()})
			tp.mu.Lock()
			tp.bySubject[m.Subject()] = append(tp.bySubject[m.Subject()], s)
			tp.mu.Unlock()
		})
		if err != nil {
			n.mu.Unlock()
			n.t.Fatal(err)
		}
		n.tap = tp
		n.t.Cleanup(func() { tp.cc.Stop(); <-tp.cc.Closed() })
	}
	n.mu.Unlock()
	subject, err := events.DeliverySubject(org, id)
	if err != nil {
		n.t.Fatal(err)
	}
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return slices.Clone(tp.bySubject[subject])
}

// deliveries returns what org received about referral id.
func (n *netBundle) deliveries(org, id string) []stored {
	subject, err := events.DeliverySubject(org, id)
	if err != nil {
		n.t.Fatal(err)
	}
	return n.read(natsjs.StreamDelivery, subject)
}

// progressStall is how long a load test lets its count stand still before
// it fails: longer than a command's longest retry delay plus an ack wait,
// the longest a loaded but working router may show no progress.
const progressStall = 2*natsjs.RetryDelayMax + natsjs.AckWaitDefault

// waitProgress polls count until done says it is complete, failing only
// when count has not grown for progressStall: a loaded machine slows the
// work down, which a fixed deadline mistakes for a hang.
//
// explain, if any, is called before the test fails, to log what may say
// why the work stopped.
func waitProgress(t testing.TB, what string, count func() uint64, done func(uint64) bool, explain ...func()) {
	t.Helper()
	last, since := count(), time.Now()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !done(last) {
		<-tick.C
		c := count()
		if c != last {
			last, since = c, time.Now()
			continue
		}
		if time.Since(since) > progressStall {
			for _, e := range explain {
				e()
			}
			t.Fatalf("no progress for %s waiting for %s (at %d)", progressStall, what, last)
		}
	}
}

// waitDelivery waits until org has received an event of typ about
// referral id that satisfies match (nil: any), and returns it.
func (n *netBundle) waitDelivery(org, id, typ string, match func(stored) bool) stored {
	n.t.Helper()
	var found stored
	testenv.Await(n.t, fmt.Sprintf("%s to receive %s of %s", org, typ, id), func() bool {
		for _, m := range n.delivered(org, id) {
			if m.typ() == typ && (match == nil || match(m)) {
				found = m
				return true
			}
		}
		return false
	})
	return found
}

// state returns the referral's state, folded afresh from the log.
func (n *netBundle) state(id string) referral.State {
	n.t.Helper()
	bus, err := natsjs.NewBus(n.nc, natsjs.BusConfig{})
	if err != nil {
		n.t.Fatal(err)
	}
	svc, err := routing.NewService(bus, n.view, routing.NewMatcher(routing.Config{}), routing.ServiceConfig{CacheSize: -1})
	if err != nil {
		n.t.Fatal(err)
	}
	st, err := svc.State(context.Background(), id)
	if err != nil {
		n.t.Fatalf("state of %s: %v", id, err)
	}
	return st
}

// waitState waits until the referral's state satisfies cond.
func (n *netBundle) waitState(id, what string, cond func(referral.State) bool) referral.State {
	n.t.Helper()
	var st referral.State
	testenv.Await(n.t, fmt.Sprintf("referral %s: %s", id, what), func() bool {
		st = n.state(id)
		return cond(st)
	})
	return st
}

// offer returns the open offer of placement i, failing if there is none.
func offer(t testing.TB, st referral.State, i int) (string, referral.Offer) {
	t.Helper()
	if len(st.Placements) <= i || st.Placements[i].Status != referral.PlacementOffered {
		t.Fatalf("referral %s has no open offer for placement %d: %+v", st.ID, i, st.Placements)
	}
	return st.Placements[i].ID, st.Placements[i].Offer
}

// offeredTo returns a cond that is true when placement i is offered to org.
func offeredTo(i int, org string) func(referral.State) bool {
	return func(st referral.State) bool {
		return len(st.Placements) > i && st.Placements[i].Status == referral.PlacementOffered && st.Placements[i].Offer.Organisation == org
	}
}

// request returns a referral.requested payload for needs.
func request(needs ...string) *events.Requested {
	return testenv.Request(time.Now().Add(-time.Minute).UTC(), needs...)
}

// consumerIdle waits until consumer has no pending and no unacknowledged
// messages.
func (n *netBundle) consumerIdle(stream, consumer string) {
	n.t.Helper()
	testenv.Await(n.t, consumer+" to be idle", func() bool {
		c, err := n.js.Consumer(context.Background(), stream, consumer)
		if err != nil {
			return false
		}
		info, err := c.Info(context.Background())
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0
	})
}

// explainReferrals logs, for a load test that stopped, how many of ids
// stand at each sequence of event types in the log, and for the first
// few of each sequence what each of orgs holds of them in DELIVERY and
// what the tap saw; then where the routing and dispatcher consumers
// stand, and what INBOUND, TIMERS and DLQ hold.
func (n *netBundle) explainReferrals(ids []string, orgs ...string) {
	t := n.t
	t.Helper()
	byLog := map[string][]string{}
	for _, id := range ids {
		k := strings.Join(types(n.log(id)), " ")
		byLog[k] = append(byLog[k], id)
	}
	for k, group := range byLog {
		t.Logf("%d referrals at [%s]", len(group), k)
		for _, id := range group[:min(2, len(group))] {
			for _, org := range orgs {
				t.Logf("  %s: %s holds %v, the tap saw %v", id, org, types(n.deliveries(org, id)), types(n.delivered(org, id)))
			}
		}
	}
	for _, sc := range [][2]string{{natsjs.StreamInbound, natsjs.ConsumerRouting}, {natsjs.StreamReferrals, natsjs.ConsumerDispatcher}} {
		c, err := n.js.Consumer(context.Background(), sc[0], sc[1])
		if err != nil {
			t.Logf("consumer %s on %s: %v", sc[1], sc[0], err)
			continue
		}
		info, err := c.Info(context.Background())
		if err != nil {
			t.Logf("consumer %s on %s: %v", sc[1], sc[0], err)
			continue
		}
		t.Logf("consumer %s on %s: pending %d, ack pending %d, redelivered %d, waiting %d, delivered %d, ack floor %d, priority groups %+v",
			sc[1], sc[0], info.NumPending, info.NumAckPending, info.NumRedelivered, info.NumWaiting, info.Delivered.Stream, info.AckFloor.Stream, info.PriorityGroups)
	}
	for _, name := range []string{natsjs.StreamInbound, natsjs.StreamTimers, natsjs.StreamDLQ} {
		s, err := n.js.Stream(context.Background(), name)
		if err != nil {
			t.Logf("stream %s: %v", name, err)
			continue
		}
		t.Logf("stream %s: %d messages", name, s.CachedInfo().State.Msgs)
	}
}

// rejections returns the command.rejected events org received about
// subject (a referral id, or "rejected" for those naming none).
func (n *netBundle) rejections(org, subject string) []stored {
	var out []stored
	for _, m := range n.read(natsjs.StreamDelivery, "out."+org+"."+subject) {
		if m.typ() == events.TypeCommandRejected {
			out = append(out, m)
		}
	}
	return out
}

// uniqueIDs fails if two messages carry the same event id.
func uniqueIDs(t testing.TB, msgs []stored) {
	t.Helper()
	var ids []string
	for _, m := range msgs {
		if m.env == nil {
			continue
		}
		id := m.env.Event.ID()
		if slices.Contains(ids, id) {
			t.Fatalf("event %s (%s) stored twice on %s", id, m.typ(), m.subject)
		}
		ids = append(ids, id)
	}
}

// natsMsg converts an encoded event into a NATS message.
func natsMsg(m events.Message) *nats.Msg {
	return &nats.Msg{Subject: m.Subject, Header: nats.Header(m.Header), Data: m.Data}
}

// withHeaders returns a message with the given headers and data.
func withHeaders(subject string, h map[string]string, data []byte) *nats.Msg {
	m := &nats.Msg{Subject: subject, Header: nats.Header{}, Data: data}
	for k, v := range h {
		m.Header.Set(k, v)
	}
	return m
}
