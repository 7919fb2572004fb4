package main

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/invictus-network/invictus/adapters/natsjs"
	"github.com/invictus-network/invictus/client"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/internal/testenv"
)

// The routing service survives SIGKILL, end to end: `invictus serve --demo`
// runs as a separate process; this test plays Portuguese organisations over
// TCP with the client library (three referrers sending referrals as fast as
// JetStream stores them, and every organisation accepting each offer made
// to it). The node is killed with SIGKILL twice while the referrals pour in
// and once while the acceptances do, and started again on the same data
// directory each time (on new ports; the clients connect again and resend,
// with the same CloudEvents id, whatever was not acknowledged, and the last
// few commands that were). In the end every referral is planned and each of
// its placements offered once and accepted once; REFERRALS holds no event
// twice and DELIVERY no event twice for one organisation; nothing was
// rejected or set aside in DLQ.

const (
	// crashReferrals is how many referrals the test sends.
	crashReferrals = 300
	// crashKillAt1 and crashKillAt2 are the submission counts at which the
	// node is killed while the referrals come in.
	crashKillAt1, crashKillAt2 = crashReferrals / 3, 2 * crashReferrals / 3
	// crashResend is how many of its last acknowledged commands a referrer
	// sends again after each restart, as a client unsure of them would.
	crashResend = 3
)

// crashReferrers send the referrals; crashOrgs (every Portuguese demo
// organisation) accept the offers made to them.
var (
	crashReferrers = []string{"pt.local-lisbon", "pt.local-setubal", "pt.cig-sivvd"}
	crashOrgs      = []string{
		"pt.amcv", "pt.apav", "pt.cig-sivvd", "pt.local-amadora", "pt.local-coimbra", "pt.local-evora",
		"pt.local-faro", "pt.local-funchal", "pt.local-lisbon", "pt.local-ponta-delgada", "pt.local-porto",
		"pt.local-setubal", "pt.quebrar-o-silencio", "pt.sos-crianca-116111",
	}
)

// crashRequest returns the i-th referral's request: even ones ask for
// emotional support and shelter after domestic violence in Lisbon (one
// placement in the demo directory), odd ones add legal aid and information
// on rights in the north (two placements).
func crashRequest(i int) events.Requested {
	p := events.Profile{
		Needs:     []string{events.NeedSupportEmotional, "safety.shelter"},
		Crimes:    []string{"domestic_violence"},
		Urgency:   "soon",
		Location:  events.Location{Country: "pt", Region: "PT1B"},
		Languages: []string{"pt"},
		AgeBand:   "adult",
		Gender:    "female",
		Channels:  []string{events.ChannelInPerson},
	}
	if i%2 == 1 {
		p.Needs = []string{"safety.shelter", "justice.legal_aid", "info.rights"}
		p.Location.Region = "PT11"
		p.Channels = []string{events.ChannelInPerson, events.ChannelPhone}
	}
	return events.Requested{
		Profile: p,
		Consent: events.Consent{Referral: true, ShareData: true, GivenAt: time.Now().UTC().Add(-time.Minute),
			Method: "verbal", RecordedBy: fmt.Sprintf("crash-e%04d", i)},
	}
}

// crashJob is one referral a referrer sends: the referral id and the
// command id it keeps across retries.
type crashJob struct {
	ref, cmd string
	req      events.Requested
}

// crashGen is one run of the node, from start to SIGKILL.
type crashGen struct {
	n    *node
	url  string
	down context.Context    // done once the process was killed
	kill context.CancelFunc // marks down
	next chan struct{}      // closed when the next run is ready
}

// bind returns ctx ended when the run goes down as well.
func (g *crashGen) bind(ctx context.Context) (context.Context, context.CancelFunc) {
	c, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(g.down, cancel)
	return c, func() { stop(); cancel() }
}

// crashNet is the node under test and the organisations' side of it.
type crashNet struct {
	t    *testing.T
	data string

	mu        sync.Mutex
	cur       *crashGen
	lastStart time.Time // of the current run; only the test's goroutine reads it

	submitted atomic.Int64 // referral commands acknowledged by JetStream
	retried   atomic.Int64 // publishes that failed and were sent again
	resent    atomic.Int64 // acknowledged commands sent again after a restart
	accepted  atomic.Int64 // acceptances acknowledged by JetStream
	offers    atomic.Int64 // offers handled (redeliveries included)
	reconnect atomic.Int64 // connections made after the first run

	accepts acceptIDs

	marks map[int64]chan struct{} // closed when submitted reaches the key
}

// gen returns the current run.
func (h *crashNet) gen() *crashGen {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.cur
}

// start starts a node on the data directory and makes it the current run.
func (h *crashNet) start() {
	h.t.Helper()
	n := startNode(h.t, h.data, "--demo")
	down, kill := context.WithCancel(context.Background())
	g := &crashGen{n: n, url: "nats://" + n.NATS, down: down, kill: kill, next: make(chan struct{})}
	h.mu.Lock()
	prev := h.cur
	h.cur, h.lastStart = g, time.Now()
	h.mu.Unlock()
	if prev != nil {
		close(prev.next)
	}
}

// crash kills the current node with SIGKILL and waits until it is gone.
func (h *crashNet) crash() {
	h.t.Helper()
	g := h.gen()
	if err := g.n.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		h.t.Fatalf("SIGKILL: %v", err)
	}
	testenv.Recv(h.t, "the node to die of SIGKILL", g.n.exited)
	var exitErr *exec.ExitError
	if !errors.As(g.n.waitErr, &exitErr) {
		h.t.Fatalf("the node ended with %v, not by SIGKILL\n%s", g.n.waitErr, g.n.stderr)
	}
	if ws, ok := exitErr.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		h.t.Fatalf("the node ended with %v, not by SIGKILL\n%s", g.n.waitErr, g.n.stderr)
	}
	g.kill()
}

// connect connects as org to run g.
func (h *crashNet) connect(ctx context.Context, g *crashGen, org string) (*client.Client, error) {
	return client.Connect(ctx, g.url, org,
		client.WithNKeySeed(filepath.Join(h.data, natsjs.KeysDir, org+natsjs.SeedFileExt)),
		client.WithTimeout(5*time.Second))
}

// pause waits until run g goes down, ctx ends or a short while passes; it
// paces retries on a run that looks alive.
func pause(ctx context.Context, g *crashGen) {
	t := time.NewTimer(50 * time.Millisecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-g.down.Done():
	case <-t.C:
	}
}

// awaitNext waits for the run after g; false when ctx ends first.
func awaitNext(ctx context.Context, g *crashGen) bool {
	select {
	case <-g.next:
		return true
	case <-ctx.Done():
		return false
	}
}

// transient reports whether err of a call on run g is the node going away
// (or not answering yet), to be retried, rather than a failure.
func transient(ctx context.Context, g *crashGen, err error) bool {
	return ctx.Err() != nil || g.down.Err() != nil || errors.Is(err, client.ErrUnavailable)
}

// acceptIDs hands out the command ids of the acceptances of offers: the
// same id each time an offer is delivered, so an acceptance sent again is
// the same command. The zero value is ready.
type acceptIDs struct {
	mu  sync.Mutex
	ids map[string]string // offer event id -> the acceptance's command id
}

// of returns the command id of the acceptance of offer.
func (a *acceptIDs) of(offer string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	id, ok := a.ids[offer]
	if !ok {
		if a.ids == nil {
			a.ids = map[string]string{}
		}
		id = events.NewReferralID()
		a.ids[offer] = id
	}
	return id
}

// receive plays org on every run until ctx ends: it accepts each offer
// made to it and acknowledges everything else.
func (h *crashNet) receive(ctx context.Context, org string) {
	for ctx.Err() == nil {
		g := h.gen()
		err := h.receiveOn(ctx, g, org)
		switch {
		case ctx.Err() != nil:
			return
		case g.down.Err() != nil:
			awaitNext(ctx, g)
		case err == nil || transient(ctx, g, err):
			pause(ctx, g)
		default:
			h.t.Errorf("receiver %s: %v", org, err)
			return
		}
	}
}

// receiveOn runs org's receiver on run g until ctx ends or g goes down.
func (h *crashNet) receiveOn(ctx context.Context, g *crashGen, org string) error {
	rctx, cancel := g.bind(ctx)
	defer cancel()
	c, err := h.connect(rctx, g, org)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Receive(rctx, func(hctx context.Context, env *events.Envelope) error {
		if r, ok := env.Payload.(*events.CommandRejected); ok {
			// Said at once: the rejected acceptance is never sent again,
			// so the wait for every acceptance would never end.
			h.t.Errorf("%s's command %s (%s) about %s was rejected: %+v", org, r.Command, r.CommandType, env.Event.Subject(), r.Errors)
			return nil
		}
		o, ok := env.Payload.(*events.Offered)
		if !ok || o.Organisation != org {
			return nil // the referrer's copies, plans, acceptances
		}
		h.offers.Add(1)
		_, err := c.Send(hctx, env.Event.Subject(), &events.Accepted{Placement: o.Placement}, events.WithID(h.accepts.of(env.Event.ID())))
		if err == nil {
			h.accepted.Add(1)
		} else if !transient(hctx, g, err) {
			h.t.Errorf("%s accepting %s/%s: %v", org, env.Event.Subject(), o.Placement, err)
		}
		return err
	})
}

// refer sends jobs as org, across runs, each until JetStream has stored
// it; after each restart it first sends again its last few acknowledged
// commands.
func (h *crashNet) refer(ctx context.Context, org string, jobs []crashJob) {
	var c *client.Client
	var cg *crashGen
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	first := h.gen()
	for i := 0; i < len(jobs) && ctx.Err() == nil; {
		g := h.gen()
		if g.down.Err() != nil {
			awaitNext(ctx, g)
			continue
		}
		if cg != g {
			if c != nil {
				c.Close()
				c = nil
			}
			var err error
			if c, err = h.connect(ctx, g, org); err != nil {
				if !transient(ctx, g, err) {
					h.t.Errorf("referrer %s: %v", org, err)
					return
				}
				pause(ctx, g)
				continue
			}
			cg = g
			if g != first {
				h.reconnect.Add(1)
				for _, j := range jobs[max(0, i-crashResend):i] {
					if h.send(ctx, g, c, j) == nil {
						h.resent.Add(1)
					}
				}
			}
		}
		err := h.send(ctx, g, c, jobs[i])
		switch {
		case err == nil:
			i++
			h.mark(h.submitted.Add(1))
		case transient(ctx, g, err):
			h.retried.Add(1)
			pause(ctx, g)
		default:
			h.t.Errorf("referrer %s, referral %s: %v", org, jobs[i].ref, err)
			return
		}
	}
}

// send sends job j on run g, giving up when g goes down.
func (h *crashNet) send(ctx context.Context, g *crashGen, c *client.Client, j crashJob) error {
	sctx, cancel := g.bind(ctx)
	defer cancel()
	_, err := c.Send(sctx, j.ref, &j.req, events.WithID(j.cmd))
	return err
}

// mark closes the channel of submission count n, if there is one.
func (h *crashNet) mark(n int64) {
	if ch, ok := h.marks[n]; ok {
		close(ch)
	}
}

// waitMark waits until the submission count reaches n.
func (h *crashNet) waitMark(n int64) {
	h.t.Helper()
	testenv.Recv(h.t, fmt.Sprintf("%d referrals to be submitted", n), h.marks[n], func() string {
		return fmt.Sprintf("%d are", h.submitted.Load())
	})
}

func TestCrashSafetyEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts the node; skipped with -short")
	}
	h := &crashNet{
		t: t, data: filepath.Join(t.TempDir(), "data"),
		marks: map[int64]chan struct{}{crashKillAt1: make(chan struct{}), crashKillAt2: make(chan struct{})},
	}
	h.start()
	began := time.Now()

	jobs := make(map[string][]crashJob, len(crashReferrers))
	byRef := make(map[string]crashJob, crashReferrals)
	referrerOf := make(map[string]string, crashReferrals)
	for i := range crashReferrals {
		org := crashReferrers[i%len(crashReferrers)]
		j := crashJob{ref: events.NewReferralID(), cmd: events.NewReferralID(), req: crashRequest(i)}
		jobs[org] = append(jobs[org], j)
		byRef[j.ref], referrerOf[j.ref] = j, org
	}

	ctx, cancel := context.WithCancel(context.Background())
	var receivers, referrers sync.WaitGroup
	defer func() {
		cancel()
		referrers.Wait()
		receivers.Wait()
	}()
	for _, org := range crashOrgs {
		receivers.Go(func() { h.receive(ctx, org) })
	}
	for _, org := range crashReferrers {
		referrers.Go(func() { h.refer(ctx, org, jobs[org]) })
	}

	kill := func(why string) {
		t.Helper()
		at := time.Now()
		h.crash()
		t.Logf("SIGKILL %s: %d referrals submitted, %d acceptances stored", why, h.submitted.Load(), h.accepted.Load())
		h.start()
		nc := connectAdmin(t, h.gen().n.NATS, h.data)
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("restarted on the same data in %s; %s", time.Since(at).Round(time.Millisecond), crashStores(t, js))
		nc.Close()
	}
	h.waitMark(crashKillAt1)
	kill("during intake")
	h.waitMark(crashKillAt2)
	kill("during intake, again")
	// The third kill lands while the acceptances come in.
	totalPlacements := int64(crashReferrals + crashReferrals/2)
	if remaining := totalPlacements - h.accepted.Load(); remaining > 20 {
		target := h.accepted.Load() + min(60, remaining/2)
		waitFor(t, "acceptances before the third kill", func() bool { return h.accepted.Load() >= target })
		kill("during acceptances")
	} else {
		t.Logf("no third kill: only %d acceptances were left", remaining)
	}
	doneSubmitting := make(chan struct{})
	go func() { referrers.Wait(); close(doneSubmitting) }()
	testenv.Recv(t, "the referrers to finish", doneSubmitting, func() string {
		return fmt.Sprintf("%d submitted", h.submitted.Load())
	})
	if t.Failed() {
		return
	}

	// Every referral is planned and each placement accepted.
	g := h.gen()
	nc := connectAdmin(t, g.n.NATS, h.data)
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	var logs map[string][]crashMsg
	var read time.Time
	// A referral left incomplete while nothing is in flight anywhere
	// (every consumer idle, the log unchanged) can only be a lost event:
	// the wait ends there, with what the stream and consumers hold,
	// rather than near the test binary's timeout.
	var still crashStill
	testenv.Await(t, "every referral to be accepted", func() bool {
		if time.Since(read) < 200*time.Millisecond {
			return false // reading the whole event log at most five times a second
		}
		read, logs = time.Now(), crashLogs(t, js)
		return crashIncomplete(logs, byRef) == 0 || still.stuck(crashCount(logs), crashQuiet(t, js)) || t.Failed()
	}, func() string {
		crashDiagnose(t, js, logs, byRef)
		return fmt.Sprintf("%d of %d referrals are not accepted\n--- node log:\n%s",
			crashIncomplete(logs, byRef), crashReferrals, lastLines(g.n.stderr.String(), 40))
	})
	if n := crashIncomplete(logs, byRef); n > 0 {
		crashDiagnose(t, js, logs, byRef)
		t.Fatalf("%d of %d referrals are not accepted, and nothing is in flight that could complete them (%d reads of an idle node)\n--- node log:\n%s",
			n, crashReferrals, still.reads, lastLines(g.n.stderr.String(), 60))
	}
	settled := time.Since(began)
	t.Logf("every referral accepted %s after the last restart", time.Since(h.lastStart).Round(time.Millisecond))
	// Nothing is left in flight that could still double an event.
	waitFor(t, "the routing service to be idle", func() bool {
		return crashIdle(t, js, natsjs.StreamInbound, natsjs.ConsumerRouting) &&
			crashIdle(t, js, natsjs.StreamReferrals, natsjs.ConsumerDispatcher) &&
			crashStreamMsgs(t, js, natsjs.StreamInbound) == 0
	})
	for _, org := range crashOrgs {
		waitFor(t, "the deliveries to "+org+" to be acknowledged", func() bool {
			return crashIdle(t, js, natsjs.StreamDelivery, natsjs.OrgConsumerName(org))
		})
	}
	logs = crashLogs(t, js)
	deliveries := crashRead(t, js, natsjs.StreamDelivery)
	if crashCheck(t, logs, deliveries, byRef, referrerOf) == 0 {
		t.Error("no referral had two placements: the multi-placement path went untested")
	}
	if n := crashStreamMsgs(t, js, natsjs.StreamDLQ); n != 0 {
		for _, m := range crashRead(t, js, natsjs.StreamDLQ) {
			t.Errorf("DLQ %s: %v %.200s", m.subject, m.header, m.data)
		}
	}
	t.Logf("%d referrals through 3 SIGKILLs in %s: %d publishes retried, %d acknowledged commands resent, %d reconnections, "+
		"%d offers handled for %d acceptances stored; %d events in REFERRALS, %d deliveries",
		crashReferrals, settled.Round(time.Millisecond), h.retried.Load(), h.resent.Load(), h.reconnect.Load(),
		h.offers.Load(), h.accepted.Load(), crashCount(logs), len(deliveries))
}

// crashMsg is one stored message, decoded when it is an event.
type crashMsg struct {
	seq     uint64
	subject string
	header  map[string][]string
	data    []byte
	env     *events.Envelope
	err     error
}

// typ returns the short event type (requested, offered...), or "?".
func (m crashMsg) typ() string {
	if m.env == nil {
		return "?"
	}
	t := strings.TrimSuffix(m.env.Event.Type(), ".v1")
	return strings.TrimPrefix(strings.TrimPrefix(t, "invictus.referral."), "invictus.")
}

// crashRead reads every message of stream, in order.
func crashRead(t *testing.T, js jetstream.JetStream, stream string) []crashMsg {
	t.Helper()
	// On a cluster a node that was just restarted may answer "no
	// responders" or time out while its stream's leader settles: such a
	// read starts again, a few times, and anything else fails at once.
	for attempt := 1; ; attempt++ {
		out, err := crashReadOnce(t, js, stream)
		if err == nil {
			return out
		}
		transient := errors.Is(err, nats.ErrNoResponders) || errors.Is(err, nats.ErrTimeout) ||
			errors.Is(err, context.DeadlineExceeded) || errors.Is(err, jetstream.ErrNoHeartbeat)
		if !transient || attempt == 10 {
			t.Fatalf("read %s: %v", stream, err)
		}
		t.Logf("read %s: %v; reading again (attempt %d)", stream, err, attempt+1)
		idle(t.Context(), time.Duration(attempt)*200*time.Millisecond)
	}
}

// crashReadOnce reads every message of stream once through an ordered
// consumer.
func crashReadOnce(t *testing.T, js jetstream.JetStream, stream string) ([]crashMsg, error) {
	t.Helper()
	ctx := testenv.Context(t)
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, fmt.Errorf("stream: %w", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("stream info: %w", err)
	}
	if info.State.Msgs == 0 {
		return nil, nil
	}
	want := int(info.State.Msgs)
	oc, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return nil, err
	}
	out := make([]crashMsg, 0, want)
	for len(out) < want {
		// Ask for no more than is there, so that no fetch is left waiting.
		batch, err := oc.Fetch(min(512, want-len(out)), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return nil, err
		}
		got := 0
		for m := range batch.Messages() {
			got++
			md, err := m.Metadata()
			if err != nil {
				return nil, err
			}
			cm := crashMsg{seq: md.Sequence.Stream, subject: m.Subject(), header: m.Headers(), data: m.Data()}
			cm.env, cm.err = events.Decode(events.Message{Subject: m.Subject(), Header: m.Headers(), Data: m.Data()})
			out = append(out, cm)
		}
		if err := batch.Error(); err != nil {
			return nil, err
		}
		if got == 0 {
			// Nothing within the fetch's wait: a loaded machine slow to
			// deliver what is still pending, or the end.
			info, err := oc.Info(ctx)
			if err != nil {
				return nil, err
			}
			if info.NumPending == 0 {
				t.Fatalf("read %s: stopped at %d of %d messages", stream, len(out), want)
			}
		}
	}
	return out, nil
}

// crashLogs returns REFERRALS by referral id.
func crashLogs(t *testing.T, js jetstream.JetStream) map[string][]crashMsg {
	t.Helper()
	out := map[string][]crashMsg{}
	for _, m := range crashRead(t, js, natsjs.StreamReferrals) {
		_, ref, err := events.ParseReferralSubject(m.subject)
		if err != nil {
			t.Fatalf("REFERRALS subject %s: %v", m.subject, err)
		}
		out[ref] = append(out[ref], m)
	}
	return out
}

func crashCount(logs map[string][]crashMsg) int {
	n := 0
	for _, l := range logs {
		n += len(l)
	}
	return n
}

// crashPlacements returns the placements of a referral's plan, and
// whether it has one.
func crashPlacements(log []crashMsg) ([]string, bool) {
	for _, m := range log {
		if m.env == nil {
			continue
		}
		if p, ok := m.env.Payload.(*events.Planned); ok {
			var out []string
			for _, g := range p.Groups {
				out = append(out, g.Placement)
			}
			return out, true
		}
	}
	return nil, false
}

// crashIncomplete counts the referrals not planned or with a placement not
// accepted yet.
func crashIncomplete(logs map[string][]crashMsg, byRef map[string]crashJob) int {
	n := 0
	for ref := range byRef {
		log := logs[ref]
		placements, ok := crashPlacements(log)
		if !ok || len(placements) == 0 {
			n++
			continue
		}
		accepted := map[string]bool{}
		for _, m := range log {
			if m.env != nil {
				if a, ok := m.env.Payload.(*events.Accepted); ok {
					accepted[a.Placement] = true
				}
			}
		}
		for _, p := range placements {
			if !accepted[p] {
				n++
				break
			}
		}
	}
	return n
}

// crashCheck checks every referral's log and deliveries: requested and
// planned once, each placement offered once and accepted once by the
// offered organisation; each event delivered once to each party that must
// see it, and nothing else. It returns how many referrals had two
// placements.
func crashCheck(t *testing.T, logs map[string][]crashMsg, deliveries []crashMsg, byRef map[string]crashJob, referrerOf map[string]string) (twoPlacements int) {
	t.Helper()
	for ref := range logs {
		if _, ok := byRef[ref]; !ok {
			t.Errorf("REFERRALS holds referral %s that nobody sent", ref)
		}
	}
	ids := map[string]int{}
	// want[event id] = the organisations that must receive it.
	want := map[string][]string{}
	for ref, j := range byRef {
		log := logs[ref]
		for _, m := range log {
			if m.env == nil {
				t.Errorf("referral %s: event %d does not decode: %v", ref, m.seq, m.err)
				continue
			}
			ids[m.env.Event.ID()]++
		}
		types := make([]string, len(log))
		for i, m := range log {
			types[i] = m.typ()
		}
		count := func(typ string) int {
			n := 0
			for _, s := range types {
				if s == typ {
					n++
				}
			}
			return n
		}
		placements, _ := crashPlacements(log)
		if count("requested") != 1 || count("planned") != 1 || len(placements) == 0 ||
			count("offered") != len(placements) || count("accepted") != len(placements) || len(log) != 2+2*len(placements) {
			t.Errorf("referral %s: log %v, want requested, planned, and per placement of %v one offer and one acceptance", ref, types, placements)
			continue
		}
		if len(placements) == 2 {
			twoPlacements++
		}
		if types[0] != "requested" || types[1] != "planned" {
			t.Errorf("referral %s: log %v, want requested then planned first", ref, types)
		}
		if id := log[0].env.Event.ID(); id != j.cmd {
			t.Errorf("referral %s: requested event id %s, want the command's %s", ref, id, j.cmd)
		}
		if p := log[1].env.Payload.(*events.Planned); len(p.Unmatched) != 0 {
			t.Errorf("referral %s: unmatched needs %+v", ref, p.Unmatched)
		}
		referrer := referrerOf[ref]
		want[log[1].env.Event.ID()] = []string{referrer}
		offeredTo := map[string]string{}
		for _, m := range log[2:] {
			switch v := m.env.Payload.(type) {
			case *events.Offered:
				if offeredTo[v.Placement] != "" {
					t.Errorf("referral %s: placement %s offered twice", ref, v.Placement)
				}
				offeredTo[v.Placement] = v.Organisation
				if v.Referrer != referrer || v.Attempt != 1 {
					t.Errorf("referral %s: offer %+v, want referrer %s, attempt 1", ref, v, referrer)
				}
				want[m.env.Event.ID()] = []string{referrer, v.Organisation}
			case *events.Accepted:
				by, _ := events.OrgOfSource(m.env.Event.Source())
				if offeredTo[v.Placement] == "" || by != offeredTo[v.Placement] {
					t.Errorf("referral %s: placement %s accepted by %s, offered to %q", ref, v.Placement, by, offeredTo[v.Placement])
				}
				want[m.env.Event.ID()] = []string{referrer, by}
			}
		}
	}
	for id, n := range ids {
		if n > 1 {
			t.Errorf("REFERRALS holds event %s %d times", id, n)
		}
	}

	// DELIVERY: exactly the wanted (event, organisation) pairs, once each.
	got := map[string]int{}
	for _, m := range deliveries {
		if m.env == nil {
			t.Errorf("DELIVERY %d on %s does not decode: %v", m.seq, m.subject, m.err)
			continue
		}
		if len(m.header[natsjs.HeaderReminder]) > 0 {
			continue // a reminder repeats an offer's id on purpose
		}
		org, ref, err := events.ParseDeliverySubject(m.subject)
		if err != nil {
			t.Errorf("DELIVERY subject %s: %v", m.subject, err)
			continue
		}
		if r, ok := m.env.Payload.(*events.CommandRejected); ok {
			t.Errorf("%s's command %s (%s) about %s was rejected: %+v", org, r.Command, r.CommandType, ref, r.Errors)
			continue
		}
		got[m.env.Event.ID()+" "+org]++
	}
	for id, orgs := range want {
		for _, org := range orgs {
			if n := got[id+" "+org]; n != 1 {
				t.Errorf("event %s delivered %d times to %s, want once", id, n, org)
			}
			delete(got, id+" "+org)
		}
	}
	for k, n := range got {
		t.Errorf("delivery %s (%d times) was not expected", k, n)
	}
	return twoPlacements
}

// crashIdle reports whether the durable consumer has nothing pending or
// unacknowledged.
func crashIdle(t *testing.T, js jetstream.JetStream, stream, consumer string) bool {
	t.Helper()
	ctx := testenv.Context(t)
	c, err := js.Consumer(ctx, stream, consumer)
	if err != nil {
		t.Fatalf("consumer %s on %s: %v", consumer, stream, err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatalf("consumer %s on %s: %v", consumer, stream, err)
	}
	return info.NumPending == 0 && info.NumAckPending == 0
}

// crashStreamMsgs returns how many messages stream holds.
func crashStreamMsgs(t *testing.T, js jetstream.JetStream, stream string) uint64 {
	t.Helper()
	ctx := testenv.Context(t)
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	return info.State.Msgs
}

// crashDiagnose logs what the referrals that did not finish hold, and the
// state of the consumers.
func crashDiagnose(t *testing.T, js jetstream.JetStream, logs map[string][]crashMsg, byRef map[string]crashJob) {
	t.Helper()
	hist := map[string]int{}
	for ref := range byRef {
		var types []string
		for _, m := range logs[ref] {
			types = append(types, m.typ())
		}
		hist[fmt.Sprint(types)]++
	}
	keys := make([]string, 0, len(hist))
	for k := range hist {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		t.Logf("%4d referrals: %s", hist[k], k)
	}
	var deliveries []crashMsg
	shown := 0
	for ref := range byRef {
		if crashIncomplete(map[string][]crashMsg{ref: logs[ref]}, map[string]crashJob{ref: byRef[ref]}) == 0 {
			continue
		}
		if deliveries == nil {
			deliveries = crashRead(t, js, natsjs.StreamDelivery)
		}
		if shown++; shown > 5 {
			break
		}
		crashDiagnoseReferral(t, js, ref, logs[ref], deliveries)
	}
	for _, m := range crashRead(t, js, natsjs.StreamDLQ) {
		t.Logf("DLQ %d %s: %v %.200s", m.seq, m.subject, m.header, m.data)
	}
	if deliveries != nil {
		// The copies of the events around the lost ones, by their
		// REFERRALS sequence: a hole in DELIVERY's sequence between them
		// says a copy was stored and then removed.
		lost := map[uint64]bool{}
		for ref := range byRef {
			if crashIncomplete(map[string][]crashMsg{ref: logs[ref]}, map[string]crashJob{ref: byRef[ref]}) != 0 {
				for _, m := range logs[ref] {
					lost[m.seq] = true
				}
			}
		}
		for _, m := range deliveries {
			seq, _ := strconv.ParseUint(firstOf(m.header[natsjs.HeaderSequence]), 10, 64)
			for l := range lost {
				if seq+8 >= l && seq <= l+8 {
					t.Logf("  DELIVERY %d %s: copy of REFERRALS %d (%s)", m.seq, m.subject, seq, m.typ())
					break
				}
			}
		}
		t.Log(crashStores(t, js))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for stream, consumer := range map[string]string{natsjs.StreamInbound: natsjs.ConsumerRouting,
		natsjs.StreamReferrals: natsjs.ConsumerDispatcher, natsjs.StreamTimers: natsjs.ConsumerTimers} {
		if c, err := js.Consumer(ctx, stream, consumer); err == nil {
			if info, err := c.Info(ctx); err == nil {
				t.Logf("%s/%s: pending %d, ack pending %d, redelivered %d, waiting %d", stream, consumer,
					info.NumPending, info.NumAckPending, info.NumRedelivered, info.NumWaiting)
			}
		}
	}
}

// crashStillReads is how many reads in a row must find the node idle,
// the event log unchanged, before an incomplete referral counts as lost.
const crashStillReads = 50

// crashStill counts the reads in a row that found the node idle and the
// event log unchanged.
type crashStill struct {
	events int
	reads  int
}

// stuck records one read (events in REFERRALS, whether every consumer
// was idle) and reports whether crashStillReads in a row saw nothing move.
func (s *crashStill) stuck(events int, quiet bool) bool {
	if !quiet || events != s.events {
		s.events, s.reads = events, 0
		return false
	}
	s.reads++
	return s.reads >= crashStillReads
}

// crashQuiet reports whether nothing is in flight: INBOUND is empty and
// the routing service's, the timers' and every organisation's consumer
// have nothing pending or unacknowledged.
func crashQuiet(t *testing.T, js jetstream.JetStream) bool {
	t.Helper()
	ctx := testenv.Context(t)
	if crashStreamMsgs(t, js, natsjs.StreamInbound) != 0 {
		return false
	}
	busy := func(stream, consumer string) bool {
		c, err := js.Consumer(ctx, stream, consumer)
		if err != nil {
			return !errors.Is(err, jetstream.ErrConsumerNotFound)
		}
		info, err := c.Info(ctx)
		return err != nil || info.NumPending != 0 || info.NumAckPending != 0
	}
	if busy(natsjs.StreamInbound, natsjs.ConsumerRouting) || busy(natsjs.StreamReferrals, natsjs.ConsumerDispatcher) ||
		busy(natsjs.StreamTimers, natsjs.ConsumerTimers) {
		return false
	}
	for _, org := range crashOrgs {
		if busy(natsjs.StreamDelivery, natsjs.OrgConsumerName(org)) {
			return false
		}
	}
	return true
}

// crashDiagnoseReferral logs what REFERRALS and DELIVERY hold of one
// referral, and where each recipient's consumer stands.
func crashDiagnoseReferral(t *testing.T, js jetstream.JetStream, ref string, log []crashMsg, deliveries []crashMsg) {
	t.Helper()
	t.Logf("referral %s:", ref)
	orgs := map[string]bool{}
	for _, m := range log {
		line := fmt.Sprintf("  REFERRALS %d %s", m.seq, m.typ())
		if m.env != nil {
			line += " id " + m.env.Event.ID()
			switch v := m.env.Payload.(type) {
			case *events.Offered:
				line += fmt.Sprintf(" placement %s to %s", v.Placement, v.Organisation)
				orgs[v.Organisation] = true
			case *events.Accepted:
				line += " placement " + v.Placement
			}
		}
		line += fmt.Sprintf(" recipients %q", m.header[natsjs.HeaderRecipients])
		t.Log(line)
	}
	for _, m := range deliveries {
		_, r, err := events.ParseDeliverySubject(m.subject)
		if err != nil || r != ref {
			continue
		}
		line := fmt.Sprintf("  DELIVERY %d %s %s", m.seq, m.subject, m.typ())
		if m.env != nil {
			line += " id " + m.env.Event.ID()
			if rj, ok := m.env.Payload.(*events.CommandRejected); ok {
				line += fmt.Sprintf(" rejected %+v", rj)
			}
		}
		if len(m.header[natsjs.HeaderReminder]) > 0 {
			line += " (reminder)"
		}
		t.Log(line)
	}
	ctx := testenv.Context(t)
	for org := range orgs {
		c, err := js.Consumer(ctx, natsjs.StreamDelivery, natsjs.OrgConsumerName(org))
		if err != nil {
			t.Logf("  consumer of %s: %v", org, err)
			continue
		}
		if info, err := c.Info(ctx); err == nil {
			t.Logf("  consumer of %s: delivered stream seq %d, ack floor stream seq %d, pending %d, ack pending %d, redelivered %d, created %s",
				org, info.Delivered.Stream, info.AckFloor.Stream, info.NumPending, info.NumAckPending, info.NumRedelivered, info.Created.Format(time.RFC3339Nano))
		}
	}
}

// crashStores says where REFERRALS, DELIVERY and the dispatcher stand
// on a node just started, so that a lost event can be placed in a run.
func crashStores(t *testing.T, js jetstream.JetStream) string {
	t.Helper()
	ctx := testenv.Context(t)
	// The consumer first: what it was handed is in REFERRALS by the time
	// the stream is read, on a node that may be appending meanwhile.
	out := ""
	if c, err := js.Consumer(ctx, natsjs.StreamReferrals, natsjs.ConsumerDispatcher); err == nil {
		if info, err := c.Info(ctx); err == nil {
			out += fmt.Sprintf("dispatcher delivered %d, ack floor %d, ack pending %d; ", info.Delivered.Stream, info.AckFloor.Stream, info.NumAckPending)
		}
	}
	for _, name := range []string{natsjs.StreamReferrals, natsjs.StreamDelivery} {
		s, err := js.Stream(ctx, name)
		if err != nil {
			out += fmt.Sprintf("%s: %v; ", name, err)
			continue
		}
		info, err := s.Info(ctx, jetstream.WithDeletedDetails(true))
		if err != nil {
			out += fmt.Sprintf("%s: %v; ", name, err)
			continue
		}
		out += fmt.Sprintf("%s last seq %d, %d msgs, deleted %v; ", name, info.State.LastSeq, info.State.Msgs, info.State.Deleted)
	}
	return out
}

// firstOf returns the first of vs, or "".
func firstOf(vs []string) string {
	if len(vs) == 0 {
		return ""
	}
	return vs[0]
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
