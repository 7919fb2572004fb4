package client_test

import (
	"context"
	"fmt"
	"log"

	"github.com/invictus-network/invictus/client"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/seal"
)

// A referral from the referring organisation pt.ref to pt.a1, which
// accepts it and receives the case file sealed to its own key. The
// network (an embedded NATS server with the routing service, the
// directory and each organisation's key) is started by a test helper.
func Example() {
	t := &exampleT{}
	defer t.stop()
	network := startNetwork(t, orgsDefault)
	ctx := context.Background()

	ref, err := client.Connect(ctx, network.URL, "pt.ref", client.WithNKeySeed(network.Keys.Path("pt.ref")))
	if err != nil {
		log.Fatal(err)
	}
	defer ref.Close()
	a1, err := client.Connect(ctx, network.URL, "pt.a1", client.WithNKeySeed(network.Keys.Path("pt.a1")))
	if err != nil {
		log.Fatal(err)
	}
	defer a1.Close()

	// pt.ref refers a victim who needs emotional support, and waits for
	// the plan.
	id := events.NewReferralID()
	cmd, err := ref.Refer(ctx, id, request(events.NeedSupportEmotional))
	if err != nil {
		log.Fatal(err)
	}
	plan, err := ref.Await(ctx, id, cmd)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("pt.ref received", plan.Event.Type())

	// pt.a1 receives the offer and accepts it.
	var accepted string
	rctx, stop := context.WithCancel(ctx)
	err = a1.Receive(rctx, func(ctx context.Context, env *events.Envelope) error {
		offer, ok := env.Payload.(*events.Offered)
		if !ok || env.Event.Subject() != id {
			return nil
		}
		fmt.Println("pt.a1 is offered placement", offer.Placement, "for", offer.Needs)
		accepted, err = a1.Accept(ctx, id, offer.Placement)
		stop()
		return err
	})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := ref.Await(ctx, id, accepted); err != nil {
		log.Fatal(err)
	}

	// pt.ref seals the case file to pt.a1's recipient from the directory.
	recipient, err := ref.Recipient(ctx, "pt.a1")
	if err != nil {
		log.Fatal(err)
	}
	if _, err := ref.Handover(ctx, id, "p1", recipient, []byte("Maria, call after 18:00")); err != nil {
		log.Fatal(err)
	}

	// pt.a1 opens it with its own age identity.
	rctx, stop = context.WithCancel(ctx)
	err = a1.Receive(rctx, func(_ context.Context, env *events.Envelope) error {
		if h, ok := env.Payload.(*events.Handover); ok {
			caseFile, err := client.Open(network.identity("pt.a1"), h)
			fmt.Printf("pt.a1 opened the handover: %q\n", caseFile)
			stop()
			return err
		}
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}

	tl, err := ref.Timeline(ctx, id)
	if err != nil {
		log.Fatal(err)
	}
	p, _ := tl.Placement("p1")
	fmt.Println("pt.ref sees the referral", tl.Status+", placement p1", p.Status, "by", p.Organisation)
	// Output:
	// pt.ref received invictus.referral.planned.v1
	// pt.a1 is offered placement p1 for [support.emotional]
	// pt.a1 opened the handover: "Maria, call after 18:00"
	// pt.ref sees the referral in_progress, placement p1 accepted by pt.a1
}

// Only the organisation a handover was sealed to can open it.
func ExampleOpen() {
	receiver, _ := seal.GenerateKey()
	other, _ := seal.GenerateKey()
	envelope, _ := seal.Seal(receiver.Recipient, []byte(`{"name":"Maria"}`))
	h := &events.Handover{Placement: "p1", Recipient: receiver.Recipient, Envelope: envelope}

	caseFile, err := client.Open(receiver.Identity, h)
	fmt.Println(string(caseFile), err)
	_, err = client.Open(other.Identity, h)
	fmt.Println(err)
	// Output:
	// {"name":"Maria"} <nil>
	// client: open the handover of placement p1: seal: envelope is not sealed to this identity
}

// The names an organisation's connections and consumers use, in any
// language: its inbox prefix (nats.CustomInboxPrefix) and its durable
// consumer on DELIVERY.
func ExampleInboxPrefix() {
	fmt.Println(client.InboxPrefix("pt.apav"))
	fmt.Println(client.ConsumerName("pt.apav"))
	fmt.Println(client.InboxPrefix("not an id") == "")
	// Output:
	// _INBOX_pt_apav
	// org_pt_apav
	// true
}
