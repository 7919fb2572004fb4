package client_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nkeys"

	"github.com/invictus-network/invictus/adapters/natsjs"
	"github.com/invictus-network/invictus/client"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/internal/testenv"
	"github.com/invictus-network/invictus/seal"
)

// receiver runs Client.Receive in the background and keeps what the
// handler saw.
type receiver struct {
	mu   sync.Mutex
	got  []*events.Envelope
	fail func(*events.Envelope) error // optional: the handler's answer
}

func receive(t *testing.T, c *client.Client, fail func(*events.Envelope) error) *receiver {
	t.Helper()
	r := &receiver{fail: fail}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- c.Receive(ctx, func(_ context.Context, env *events.Envelope) error {
			r.mu.Lock()
			r.got = append(r.got, env)
			f := r.fail
			r.mu.Unlock()
			if f != nil {
				return f(env)
			}
			return nil
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Receive: %v", err)
		}
	})
	return r
}

// wait returns the first envelope received of type typ about referral
// ref that match accepts (nil: any).
func (r *receiver) wait(t *testing.T, ref, typ string, match func(*events.Envelope) bool) *events.Envelope {
	t.Helper()
	var found *events.Envelope
	testenv.Await(t, "a "+typ+" delivery", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, env := range r.got {
			if env.Event.Subject() == ref && env.Event.Type() == typ && (match == nil || match(env)) {
				found = env
				return true
			}
		}
		return false
	})
	return found
}

func (r *receiver) types(ref string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, env := range r.got {
		if env.Event.Subject() == ref {
			out = append(out, env.Event.Type())
		}
	}
	return out
}

func TestNamesAgreeWithTheServer(t *testing.T) {
	t.Parallel()
	for _, org := range []string{"pt.apav", "fr.france-victimes-75", "fi.riku", "bad", "pt.*", "pt.a.b", ""} {
		if got, want := client.ConsumerName(org), natsjs.OrgConsumerName(org); got != want {
			t.Errorf("ConsumerName(%q) = %q, the server uses %q", org, got, want)
		}
		if got, want := client.InboxPrefix(org), natsjs.OrgInboxPrefix(org); got != want {
			t.Errorf("InboxPrefix(%q) = %q, the server uses %q", org, got, want)
		}
		if got, want := client.ReaderNames(org), natsjs.OrgReaderNames(org); !slices.Equal(got, want) {
			t.Errorf("ReaderNames(%q) = %q, the server uses %q", org, got, want)
		}
	}
	if client.ReaderSlots != natsjs.OrgReaderSlots || client.StreamDelivery != natsjs.StreamDelivery || client.BucketDirectory != natsjs.BucketDirectory {
		t.Error("the client's stream, bucket or slot count differs from the server's")
	}
	if got := client.InboxPrefix("pt.apav"); got != "_INBOX_pt_apav" {
		t.Errorf("InboxPrefix(pt.apav) = %q", got)
	}
}

// The whole lifecycle through the client: refer, offer, decline, next
// offer, accept, sealed handover, contact, completion, feedback, and the
// timelines each organisation sees.
func TestLifecycle(t *testing.T) {
	t.Parallel()
	n := startNetwork(t, orgsDefault)
	ref, a1, a2 := n.connect("pt.ref"), n.connect("pt.a1"), n.connect("pt.a2")
	r1, r2 := receive(t, a1, nil), receive(t, a2, nil)
	ctx := testenv.Context(t)

	id := events.NewReferralID()
	cmd := must(ref.Refer(ctx, id, request(events.NeedSupportEmotional))).ok(t)
	plan, err := ref.Await(testenv.Context(t), id, cmd)
	if err != nil {
		t.Fatalf("Await the plan: %v", err)
	}
	if plan.Event.Type() != events.TypeReferralPlanned {
		t.Fatalf("the answer to the referral is %s, want the plan", plan.Event.Type())
	}

	offer := r1.wait(t, id, events.TypeReferralOffered, nil).Payload.(*events.Offered)
	if offer.Organisation != "pt.a1" || offer.Referrer != "pt.ref" {
		t.Fatalf("first offer %+v", offer)
	}
	pl := offer.Placement
	dcmd := must(a1.Decline(ctx, id, pl, "capacity")).ok(t)
	if env, err := a1.Await(testenv.Context(t), id, dcmd); err != nil || env.Event.ID() != dcmd {
		t.Fatalf("Await the decline: %v", err)
	}
	r2.wait(t, id, events.TypeReferralOffered, nil)
	acmd := must(a2.Accept(ctx, id, pl)).ok(t)
	if _, err := ref.Await(testenv.Context(t), id, acmd); err != nil {
		t.Fatalf("the referrer awaits the acceptance: %v", err)
	}

	// The referrer seals the case file to pt.a2's recipient from the
	// directory; only pt.a2 can open it.
	caseFile := []byte(`{"name":"Maria Exemplo","phone":"+351 900 000 000","safe_contact":"after 18:00"}`)
	recipient := must(ref.Recipient(ctx, "pt.a2")).ok(t)
	if recipient != n.Age["pt.a2"].Recipient {
		t.Fatalf("Recipient(pt.a2) = %s, want the directory's %s", recipient, n.Age["pt.a2"].Recipient)
	}
	must(ref.Handover(ctx, id, pl, recipient, caseFile)).ok(t)
	h := r2.wait(t, id, events.TypeReferralHandover, nil).Payload.(*events.Handover)
	opened, err := client.Open(n.identity("pt.a2"), h)
	if err != nil || !bytes.Equal(opened, caseFile) {
		t.Fatalf("pt.a2 opens the handover: %q, %v", opened, err)
	}
	for _, other := range []string{"pt.ref", "pt.a1"} {
		if _, err := client.Open(n.identity(other), h); !errors.Is(err, seal.ErrNotForYou) {
			t.Errorf("%s opens the handover: %v", other, err)
		}
	}

	must(a2.Contacted(ctx, id, pl)).ok(t)
	ccmd := must(a2.Complete(ctx, id, pl, "supported")).ok(t)
	if _, err := a2.Await(testenv.Context(t), id, ccmd); err != nil {
		t.Fatalf("Await the completion: %v", err)
	}
	fcmd := must(ref.Feedback(ctx, id, events.Feedback{Answers: []events.Answer{{Question: "helpful", Value: 5}}})).ok(t)
	if _, err := ref.Await(testenv.Context(t), id, fcmd); err != nil {
		t.Fatalf("Await the feedback: %v", err)
	}

	tl := must(ref.Timeline(ctx, id)).ok(t)
	if tl.Status != "completed" || len(tl.Placements) != 1 {
		t.Fatalf("referrer's timeline: %s with %d placements", tl.Status, len(tl.Placements))
	}
	if p := tl.Placements[0]; p.Status != "completed" || p.Organisation != "pt.a2" || p.Outcome != "supported" {
		t.Errorf("referrer's placement %+v", p)
	}
	for _, d := range tl.Deliveries {
		if d.Envelope != nil && d.Envelope.Event.Type() == events.TypeReferralHandover {
			t.Error("the referrer received its own handover back")
		}
	}
	tl2 := must(a2.Timeline(ctx, id)).ok(t)
	if p, ok := tl2.Placement(pl); !ok || p.Status != "completed" || p.Handovers != 1 {
		t.Errorf("pt.a2's view of the placement: %+v", p)
	}
	tl1 := must(a1.Timeline(ctx, id)).ok(t)
	if p, _ := tl1.Placement(pl); p.Status != "declined" {
		t.Errorf("pt.a1's view of the placement: %+v", p)
	}
	if got := r1.types(id); !slices.Equal(got, []string{events.TypeReferralOffered, events.TypeReferralDeclined}) {
		t.Errorf("pt.a1 received %v, want its offer and its decline only", got)
	}
}

func TestAwaitReturnsTheRejection(t *testing.T) {
	t.Parallel()
	n := startNetwork(t, orgsDefault)
	ref, a1, a2 := n.connect("pt.ref"), n.connect("pt.a1"), n.connect("pt.a2")
	r1 := receive(t, a1, nil)
	ctx := testenv.Context(t)
	id := events.NewReferralID()
	must(ref.Refer(ctx, id, request(events.NeedSupportEmotional))).ok(t)
	pl := r1.wait(t, id, events.TypeReferralOffered, nil).Payload.(*events.Offered).Placement

	// pt.a2 was not offered the placement: its acceptance is rejected, as
	// for a referral that does not exist (it is no party).
	cmd := must(a2.Accept(ctx, id, pl)).ok(t)
	env, err := a2.Await(testenv.Context(t), id, cmd)
	var rej *client.RejectedError
	if !errors.As(err, &rej) || !errors.Is(err, client.ErrRejected) {
		t.Fatalf("Await = %v, want a rejection", err)
	}
	if rej.Command != cmd || len(rej.Problems) == 0 || rej.Problems[0].Code != "not_found" {
		t.Errorf("rejection %+v", rej)
	}
	if env == nil || env.Event.Type() != events.TypeCommandRejected {
		t.Errorf("Await returned %v with the rejection", env)
	}
	// The referral did not change: pt.a1's offer is still open.
	if p, _ := must(ref.Timeline(ctx, id)).ok(t).Placement(pl); p.Status != "offered" || p.Organisation != "pt.a1" {
		t.Errorf("after the rejected acceptance the placement is %+v", p)
	}
}

func TestAwaitTimesOutWithoutAnswer(t *testing.T) {
	t.Parallel()
	n := startNetwork(t, orgsDefault)
	a1 := n.connect("pt.a1")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := a1.Await(ctx, events.NewReferralID(), "no-such-command")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Await = %v, want the context's deadline", err)
	}
}

func TestInvalidCommandsAreNotSent(t *testing.T) {
	t.Parallel()
	n := startNetwork(t, orgsDefault)
	ref := n.connect("pt.ref")
	ctx := testenv.Context(t)
	req := request(events.NeedSupportEmotional)
	req.Consent.Referral = false
	_, err := ref.Refer(ctx, events.NewReferralID(), req)
	var ve *events.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("Refer without consent = %v, want a validation error", err)
	}
	if _, err := ref.Decline(ctx, "not-a-referral", "p1", "capacity"); !errors.As(err, &ve) {
		t.Errorf("Decline of an invalid id = %v", err)
	}
	if _, err := ref.Handover(ctx, events.NewReferralID(), "p1", "age1notarecipient", []byte("x")); !errors.Is(err, seal.ErrRecipient) {
		t.Errorf("Handover to a bad recipient = %v", err)
	}
	info, err := n.Admin.Stream(ctx, natsjs.StreamInbound)
	if err != nil {
		t.Fatal(err)
	}
	if info.CachedInfo().State.Msgs != 0 {
		t.Errorf("INBOUND holds %d messages after invalid commands", info.CachedInfo().State.Msgs)
	}
}

func TestConnectErrors(t *testing.T) {
	t.Parallel()
	n := startNetwork(t, orgsDefault)
	ctx := testenv.Context(t)

	// A key the server does not know.
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := kp.Seed()
	pub, _ := kp.PublicKey()
	unknown := t.TempDir() + "/unknown.nk"
	if err := writeFile(unknown, natsjs.SeedFile("pt.a1", pub, seed)); err != nil {
		t.Fatal(err)
	}
	_, err = client.Connect(ctx, n.URL, "pt.a1", client.WithNKeySeed(unknown), client.WithTimeout(time.Minute))
	if !errors.Is(err, client.ErrUnauthorized) {
		t.Errorf("Connect with an unknown key = %v, want ErrUnauthorized", err)
	}
	// No credentials at all.
	if _, err := client.Connect(ctx, n.URL, "pt.a1", client.WithTimeout(time.Minute)); !errors.Is(err, client.ErrUnauthorized) {
		t.Errorf("Connect without credentials = %v, want ErrUnauthorized", err)
	}
	// Nothing listening.
	if _, err := client.Connect(ctx, "nats://127.0.0.1:1", "pt.a1", client.WithNKeySeed(n.Keys.Path("pt.a1"))); !errors.Is(err, client.ErrUnavailable) {
		t.Errorf("Connect to a closed port = %v, want ErrUnavailable", err)
	}
	// A server that hangs up during the handshake (a node stopping, or
	// one too loaded to answer in time): the caller tries again later.
	if _, err := client.Connect(ctx, hangUp(t), "pt.a1", client.WithNKeySeed(n.Keys.Path("pt.a1"))); !errors.Is(err, client.ErrUnavailable) {
		t.Errorf("Connect to a server that hangs up = %v, want ErrUnavailable", err)
	}
	if _, err := client.Connect(ctx, n.URL, "not an org"); err == nil {
		t.Error("Connect accepted an invalid organisation id")
	}

	// pt.a2's key claiming to be pt.a1: the server knows it as pt.a2, so
	// it may neither publish on in.pt.a1 nor use pt.a1's inbox.
	// The refused command is never acknowledged: the client names the
	// server's permission violation when its request times out, so a short
	// timeout keeps the test quick. On a loaded machine the violation can
	// come after that timeout (ErrUnavailable); then the command is sent
	// again, until the violation is named.
	c, err := n.tryConnect("pt.a1", client.WithNKeySeed(n.Keys.Path("pt.a2")), client.WithTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	testenv.Await(t, "the refusal of a command on another organisation's subject", func() bool {
		_, err := c.Accept(ctx, events.NewReferralID(), "p1")
		switch {
		case errors.Is(err, client.ErrUnauthorized):
			return true
		case errors.Is(err, client.ErrUnavailable):
			return false
		}
		t.Fatalf("a command on another organisation's subject = %v, want ErrUnauthorized", err)
		return false
	})
}

func TestReceiveRetriesAFailedHandler(t *testing.T) {
	t.Parallel()
	n := startNetwork(t, orgsDefault)
	ref, a1 := n.connect("pt.ref"), n.connect("pt.a1")
	var mu sync.Mutex
	failures := 0
	r := receive(t, a1, func(env *events.Envelope) error {
		mu.Lock()
		defer mu.Unlock()
		if env.Event.Type() == events.TypeReferralOffered && failures == 0 {
			failures++
			return errors.New("case system down")
		}
		return nil
	})
	ctx := testenv.Context(t)
	id := events.NewReferralID()
	must(ref.Refer(ctx, id, request(events.NeedSupportEmotional))).ok(t)
	testenv.Await(t, "the offer to be delivered again", func() bool {
		n := 0
		for _, typ := range r.types(id) {
			if typ == events.TypeReferralOffered {
				n++
			}
		}
		return n >= 2
	})
	// Once handled, it is acknowledged: the consumer has nothing pending.
	testenv.Await(t, "the consumer to be idle", func() bool {
		c, err := n.Admin.Consumer(ctx, natsjs.StreamDelivery, client.ConsumerName("pt.a1"))
		if err != nil {
			return false
		}
		info, err := c.Info(ctx)
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0
	})
}

// TestReceiveRemakesTheConsumer: an organisation's consumer is made on
// its first use and removed when idle; Receive after it was removed makes
// it again.
func TestReceiveRemakesTheConsumer(t *testing.T) {
	t.Parallel()
	n := startNetwork(t, orgsDefault)
	a1 := n.connect("pt.a1")
	ctx := testenv.Context(t)
	if err := n.Admin.DeleteConsumer(ctx, natsjs.StreamDelivery, client.ConsumerName("pt.a1")); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a1.Receive(rctx, func(context.Context, *events.Envelope) error { return nil }) }()
	testenv.Await(t, "the consumer to be made again", func() bool {
		select {
		case err := <-done:
			cancel()
			t.Fatalf("Receive ended before it made the consumer: %v", err)
		default:
		}
		_, err := n.Admin.Consumer(ctx, natsjs.StreamDelivery, client.ConsumerName("pt.a1"))
		return err == nil
	})
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Receive = %v, want nil once its context ends", err)
	}
}

func TestInboxFollowAndReaderSlots(t *testing.T) {
	t.Parallel()
	n := startNetwork(t, orgsDefault)
	ref := n.connect("pt.ref")
	ctx := testenv.Context(t)

	ids := make([]string, 3)
	for i := range ids {
		ids[i] = events.NewReferralID()
		cmd := must(ref.Refer(ctx, ids[i], request(events.NeedSupportEmotional))).ok(t)
		if _, err := ref.Await(testenv.Context(t), ids[i], cmd); err != nil {
			t.Fatal(err)
		}
	}
	// Each referral gives the referrer its plan and its offer.
	testenv.Await(t, "six deliveries", func() bool {
		all, err := ref.Inbox(ctx, 0)
		return err == nil && len(all) == 6
	})
	last := must(ref.Inbox(ctx, 2)).ok(t)
	if len(last) != 2 || last[1].Referral != ids[2] || last[0].Sequence >= last[1].Sequence {
		t.Fatalf("Inbox(2) = %d deliveries, last about %s", len(last), last[len(last)-1].Referral)
	}

	// Follow from the last one sees only what comes next.
	got := make(chan client.Delivery, 16)
	fctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- ref.Follow(fctx, last[1].Sequence, func(d client.Delivery) error { got <- d; return nil })
	}()
	next := events.NewReferralID()
	must(ref.Refer(ctx, next, request(events.NeedSupportEmotional))).ok(t)
	if d := testenv.Recv(t, "Follow's first delivery", got); d.Referral != next || d.Envelope == nil || d.Envelope.Event.Type() != events.TypeReferralPlanned {
		t.Errorf("Follow delivered %+v first, want the new plan", d)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Follow: %v", err)
	}

	// Every slot taken: the next reader is refused with ErrBusy.
	sctx, sstop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for range client.ReaderSlots {
		wg.Go(func() { _ = ref.Follow(sctx, 0, func(client.Delivery) error { return nil }) })
	}
	testenv.Await(t, "every reader slot to be taken", func() bool {
		st, err := n.Admin.Stream(ctx, natsjs.StreamDelivery)
		if err != nil {
			return false
		}
		names := st.ConsumerNames(ctx)
		count := 0
		for name := range names.Name() {
			if slices.Contains(client.ReaderNames("pt.ref"), name) {
				count++
			}
		}
		return count == client.ReaderSlots
	})
	if _, err := ref.Inbox(ctx, 1); !errors.Is(err, client.ErrBusy) {
		t.Errorf("Inbox with every slot taken = %v, want ErrBusy", err)
	}
	sstop()
	wg.Wait()
	// The readers delete themselves: the slots are free again.
	if _, err := ref.Inbox(ctx, 1); err != nil {
		t.Errorf("Inbox after the readers stopped: %v", err)
	}
}

func TestTimelineOfAnUnknownReferral(t *testing.T) {
	t.Parallel()
	n := startNetwork(t, orgsDefault)
	a1 := n.connect("pt.a1")
	if _, err := a1.Timeline(testenv.Context(t), events.NewReferralID()); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("Timeline of an unknown referral = %v, want ErrNotFound", err)
	}
	if _, err := a1.Recipient(testenv.Context(t), "pt.nobody"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("Recipient of an unknown organisation = %v, want ErrNotFound", err)
	}
}

// An organisation that pulls its own delivery with its command subject as
// the reply makes JetStream store that delivery on INBOUND under its
// delivery subject; the router sets it aside rather than leaving it in
// the work queue.
func TestAReplyToTheOwnCommandSubjectIsSetAside(t *testing.T) {
	t.Parallel()
	n := startNetwork(t, orgsDefault)
	ctx := testenv.Context(t)
	ref := events.NewReferralID()
	if _, err := n.Admin.Publish(ctx, "out.pt.a1."+ref, []byte("a delivery")); err != nil {
		t.Fatal(err)
	}
	a1 := n.connect("pt.a1")
	if err := a1.Conn().PublishRequest("$JS.API.CONSUMER.MSG.NEXT.DELIVERY."+client.ConsumerName("pt.a1"), "in.pt.a1",
		[]byte(`{"batch":1,"no_wait":true}`)); err != nil {
		t.Fatal(err)
	}
	dlq, err := n.Admin.Stream(ctx, natsjs.StreamDLQ)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Await(t, "the echoed delivery set aside in DLQ", func() bool {
		m, err := dlq.GetLastMsgForSubject(ctx, "dlq."+natsjs.ReasonSubject)
		return err == nil && string(m.Data) == "a delivery"
	})
	inbound, err := n.Admin.Stream(ctx, natsjs.StreamInbound)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Await(t, "INBOUND empty", func() bool {
		info, err := inbound.Info(ctx)
		return err == nil && info.State.Msgs == 0
	})
}

// hangUp returns the URL of a TCP listener that closes each connection as
// soon as it accepts it, before the NATS handshake.
func hangUp(t *testing.T) string {
	t.Helper()
	var lc net.ListenConfig
	ln, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return "nats://" + ln.Addr().String()
}
