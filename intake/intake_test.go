package intake_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/invictus-network/invictus/adapters/natsjs"
	"github.com/invictus-network/invictus/directory"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/intake"
	"github.com/invictus-network/invictus/internal/testenv"
	"github.com/invictus-network/invictus/internal/testnet"
	"github.com/invictus-network/invictus/seal"
)

const canary = "Ana Canary-5c1e, +351 913 000 555, after 19:00 only"

// syncBuffer is a buffer safe for concurrent writes.
type syncBuffer = testenv.SyncBuffer

// TestSelfReferralReachesTheChosenOrganisation runs a node's JetStream,
// the routing service and the intake: a self-referral is offered to the
// organisation she chose; once it accepts, the intake hands the sealed
// envelope over and only the organisation's key opens it. No stream and
// no log holds her contact details in clear.
func TestSelfReferralReachesTheChosenOrganisation(t *testing.T) {
	ctx := testenv.Context(t)
	srv, nc, js := testnet.Plain(t, "")
	ports, err := natsjs.NewHTTPPorts(ctx, nc, natsjs.StreamsConfig{})
	if err != nil {
		t.Fatal(err)
	}

	// The demo directory, with the chosen organisation's age key.
	key, err := seal.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	d, err := directory.Demo(1)
	if err != nil {
		t.Fatal(err)
	}
	svc := d.Services[0]
	org := d.Organisation(svc.Organisation)
	org.AgeRecipient = key.Recipient
	view := directory.NewView()
	view.Load(d, 1)

	testnet.RunRouter(t, srv, view, natsjs.NodeConfig{
		Router: natsjs.RouterConfig{AckWait: 2 * time.Second, RetryDelay: 20 * time.Millisecond, Workers: 2},
	})

	logs := &syncBuffer{}
	in, err := intake.New(ports.Commands, ports.Inbox, ports.Keys, intake.Config{Org: "pt.public-intake", Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ictx, icancel := context.WithCancel(ctx)
	idone := make(chan error, 1)
	go func() { idone <- in.Run(ictx) }()
	t.Cleanup(func() {
		icancel()
		if err := <-idone; err != nil {
			t.Errorf("intake: %v", err)
		}
	})

	envelope, err := seal.Seal(key.Recipient, []byte(canary))
	if err != nil {
		t.Fatal(err)
	}
	// A request that breaks the contract is refused and nothing is kept.
	if _, err := in.Refer(ctx, intake.Request{Organisation: org.ID, Recipient: key.Recipient, Envelope: "plain text"}); err == nil {
		t.Fatal("a request without a sealed envelope was accepted")
	}
	id, err := in.Refer(ctx, intake.Request{
		Service: svc.ID, Organisation: org.ID, Recipient: key.Recipient, Envelope: envelope,
		Needs: svc.Needs[:1], Country: svc.Area.Countries[0], Language: svc.Languages[0], Channel: svc.Channels[0],
		AgeBand: "adult", Urgency: "soon", ConsentAt: time.Now(),
	})
	if err != nil {
		t.Fatal(err)
	}

	// The chosen organisation is offered the referral, in its inbox.
	offered := waitFor(t, ctx, ports.Inbox, org.ID, id, events.TypeReferralOffered)
	off, ok := offered.Payload.(*events.Offered)
	if !ok {
		t.Fatalf("offered payload %T", offered.Payload)
	}
	if off.Organisation != org.ID || off.Referrer != "pt.public-intake" {
		t.Fatalf("offered %+v", off)
	}
	// It accepts, as any organisation does.
	acc, err := events.New(events.SourceOf(org.ID), id, events.Accepted{Placement: off.Placement})
	if err != nil {
		t.Fatal(err)
	}
	subject, _ := events.InboundSubject(org.ID)
	msg, err := events.ToNATS(subject, acc)
	if err != nil {
		t.Fatal(err)
	}
	if err := ports.Commands.Submit(ctx, org.ID, msg); err != nil {
		t.Fatal(err)
	}
	// The intake hands her contact details over; only the key opens them.
	hv := waitFor(t, ctx, ports.Inbox, org.ID, id, events.TypeReferralHandover)
	h, ok := hv.Payload.(*events.Handover)
	if !ok {
		t.Fatalf("handover payload %T", hv.Payload)
	}
	got, err := seal.Open(key.Identity, h.Envelope)
	if err != nil || string(got) != canary {
		t.Fatalf("opened %q, %v", got, err)
	}
	if _, err := ports.Keys.Get(ctx, "intake.pending."+id); err == nil {
		t.Error("the envelope is still kept after its handover")
	}
	// Nothing in clear anywhere.
	for _, stream := range []string{natsjs.StreamInbound, natsjs.StreamReferrals, natsjs.StreamDelivery} {
		s, err := js.Stream(ctx, stream)
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
			m, err := s.GetMsg(ctx, seq)
			if err != nil {
				continue
			}
			if bytes.Contains(m.Data, []byte("Canary")) || bytes.Contains(m.Data, []byte("913 000")) {
				t.Errorf("%s #%d holds the contact details in clear", stream, seq)
			}
		}
	}
	if strings.Contains(logs.String(), "Canary") || strings.Contains(logs.String(), "BEGIN AGE") {
		t.Error("the log holds the request's content")
	}
}

// waitFor polls org's deliveries until one of type typ about referral id
// is there; the context bounds it.
func waitFor(t *testing.T, ctx context.Context, inbox *natsjs.DeliveryInbox, org, id, typ string) *events.Envelope {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		var found *events.Envelope
		err := inbox.Read(ctx, org, 0, 1000, func(_ uint64, m events.Message) error {
			env, err := events.Decode(m)
			if err == nil && env.Event.Subject() == id && env.Event.Type() == typ {
				found = env
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if found != nil {
			return found
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no %s for %s in %s's deliveries", typ, id, org)
		case <-tick.C:
		}
	}
}
