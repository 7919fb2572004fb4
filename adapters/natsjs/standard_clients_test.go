package natsjs_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	cejs "github.com/cloudevents/sdk-go/protocol/nats_jetstream/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/invictus-network/invictus/adapters/natsjs"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/internal/testenv"
)

// The standard constructors work with an organisation's permissions, as
// the README's section for integrators shows them: sdk-go's NATS
// JetStream sender (which asks for the stream's info, and would create it
// if that failed) on stream INBOUND and subject in.<cc>.<org>; the
// organisation's pull consumer read with nats.go and decoded by sdk-go's
// NATS JetStream message; nats.go's JetStream manager and KV. A stream
// info tells nothing of other organisations' traffic, and no stream can be
// created.
func TestStandardClientsWithOrganisationPermissions(t *testing.T) {
	t.Parallel()
	b := newAuthBundle(t, "pt.a", "pt.b")
	a := b.connect("pt.a")
	ctx := testenv.Context(t)
	// Other organisations' traffic that a stream info must not show.
	b.deliver("pt.b", events.NewReferralID())

	// sdk-go's sender on INBOUND.
	sender, err := cejs.NewSenderFromConn(a.nc, natsjs.StreamInbound, "in.pt.a", nil)
	if err != nil {
		t.Fatalf("sdk-go's NATS JetStream sender: %v", err)
	}
	ev, err := events.New(events.SourceOf("pt.a"), events.NewReferralID(), &events.Accepted{Placement: "p1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := sender.Send(ctx, binding.ToMessage(&ev)); err != nil {
		t.Fatalf("sdk-go sends a command: %v", err)
	}
	if err := sender.Close(ctx); err != nil {
		t.Fatal(err)
	}
	testenv.Await(t, "the command in INBOUND", func() bool {
		s, err := b.admin.Stream(ctx, natsjs.StreamInbound)
		if err != nil {
			return false
		}
		info, err := s.Info(ctx, jetstream.WithSubjectFilter("in.pt.a"))
		return err == nil && info.State.Subjects["in.pt.a"] == 1
	})

	// The stream info pt.a reads has the configuration, not the state.
	legacy, err := a.nc.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	for _, stream := range []string{natsjs.StreamInbound, natsjs.StreamDelivery} {
		info, err := legacy.StreamInfo(stream, nats.Context(ctx))
		if err != nil {
			t.Fatalf("stream info of %s: %v", stream, err)
		}
		if info.Config.Name != stream || info.State.Msgs != 0 || info.State.Consumers != 0 {
			t.Errorf("stream info of %s: config %s, state %+v: want the configuration and an empty state", stream, info.Config.Name, info.State)
		}
	}
	if _, err := legacy.AddStream(&nats.StreamConfig{Name: "SPY", Subjects: []string{"spy.>"}}, nats.Context(shortCtx(t))); err == nil {
		t.Error("pt.a created a stream")
	}
	a.waitViolation(t, "$JS.API.STREAM.CREATE.SPY")

	// A delivery, read with nats.go from pt.a's consumer and decoded
	// by sdk-go.
	want := b.deliver("pt.a", events.NewReferralID())
	sub, err := legacy.PullSubscribe(events.DeliveryFilter("pt.a"), natsjs.OrgConsumerName("pt.a"), nats.Bind(natsjs.StreamDelivery, natsjs.OrgConsumerName("pt.a")))
	if err != nil {
		t.Fatalf("pull subscribe to pt.a's consumer: %v", err)
	}
	msgs, err := sub.Fetch(1, nats.Context(ctx))
	if err != nil || len(msgs) != 1 {
		t.Fatalf("fetch: %v", err)
	}
	got, err := binding.ToEvent(ctx, cejs.NewMessage(msgs[0]))
	if err != nil {
		t.Fatalf("sdk-go decodes the delivery: %v", err)
	}
	if err := got.Validate(); err != nil || got.ID() != want.Event.ID() {
		t.Errorf("delivery %s: %v, want %s", got.ID(), err, want.Event.ID())
	}
	if err := msgs[0].Ack(nats.Context(ctx)); err != nil {
		t.Fatal(err)
	}

	// nats.go's manager and KV, as they come.
	info, err := a.js.AccountInfo(ctx)
	if err != nil || info.Streams != 0 {
		t.Errorf("account info: %+v, %v", info, err)
	}
	kv, err := a.js.KeyValue(ctx, natsjs.BucketDirectory)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Get(ctx, "org.pt.b"); err != nil {
		t.Errorf("pt.a reads the directory: %v", err)
	}
	if v := a.violations(); len(v) != 1 {
		t.Errorf("permission violations: %v, want the stream creation's only", v)
	}
}

// The README's nats CLI lines, done with nats.go over the same subjects
// with the same credentials (the nats CLI is not installed where the
// tests run): an organisation's nkey seed file and inbox prefix take the
// next 10 messages of its durable consumer, with JetStream's pull request
// and acknowledgements as `nats consumer next DELIVERY org_<cc>_<org>
// --count 10` sends them; the administrator's seed file lists the five
// streams (`nats stream ls`, which leaves out the buckets' streams).
func TestREADMENatsCLILines(t *testing.T) {
	t.Parallel()
	b := newAuthBundle(t, "pt.amcv", "pt.b")
	ctx := testenv.Context(t)
	var want []string
	for range 12 {
		want = append(want, b.deliver("pt.amcv", events.NewReferralID()).Event.ID())
	}
	b.deliver("pt.b", events.NewReferralID())

	// nats -s "$NATS" --nkey "$DATA/keys/pt.amcv.nk" --inbox-prefix _INBOX_pt_amcv \
	//     consumer next DELIVERY org_pt_amcv --count 10
	nkey, err := nats.NkeyOptionFromSeed(b.keys.Path("pt.amcv"))
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(b.srv.ClientURL(), nkey, nats.CustomInboxPrefix("_INBOX_pt_amcv"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	consumer := natsjs.OrgConsumerName("pt.amcv")
	if consumer != "org_pt_amcv" {
		t.Fatalf("the README names org_pt_amcv, the consumer is %s", consumer)
	}
	if _, err := nc.RequestWithContext(ctx, "$JS.API.CONSUMER.INFO.DELIVERY."+consumer, nil); err != nil {
		t.Fatalf("consumer info: %v", err)
	}
	var got []string
	for range 10 {
		m, err := nc.RequestWithContext(ctx, "$JS.API.CONSUMER.MSG.NEXT.DELIVERY."+consumer, []byte(`{"batch":1,"expires":5000000000}`))
		if err != nil {
			t.Fatalf("consumer next: %v", err)
		}
		if m.Header.Get("Status") != "" {
			t.Fatalf("consumer next: status %s %s", m.Header.Get("Status"), m.Header.Get("Description"))
		}
		got = append(got, m.Header.Get("ce-id"))
		if err := m.Respond([]byte("+ACK")); err != nil {
			t.Fatal(err)
		}
	}
	if len(got) != 10 || got[0] != want[0] || got[9] != want[9] {
		t.Errorf("consumer next --count 10: %v, want the first 10 of %v", got, want)
	}
	testenv.Await(t, "the 10 acknowledgements", func() bool {
		info, err := b.consumerInfo(consumer)
		return err == nil && info.AckFloor.Consumer == 10 && info.NumPending == 2
	})

	// nats -s "$NATS" --nkey "$DATA/keys/admin.nk" stream ls
	admin, err := nats.NkeyOptionFromSeed(b.keys.Path(natsjs.UserAdmin))
	if err != nil {
		t.Fatal(err)
	}
	anc, err := nats.Connect(b.srv.ClientURL(), admin)
	if err != nil {
		t.Fatal(err)
	}
	defer anc.Close()
	ajs, err := jetstream.New(anc, jetstream.WithDefaultTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	var streams []string
	names := ajs.StreamNames(ctx)
	for n := range names.Name() {
		if !strings.HasPrefix(n, "KV_") && !strings.HasPrefix(n, "OBJ_") {
			streams = append(streams, n)
		}
	}
	slices.Sort(streams)
	if !slices.Equal(streams, []string{"DELIVERY", "DLQ", "INBOUND", "REFERRALS", "TIMERS"}) {
		t.Errorf("stream ls: %v", streams)
	}
}
