package natsjs_test

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/invictus-network/invictus/adapters/natsjs"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/internal/testenv"
	"github.com/invictus-network/invictus/referral"
	"github.com/invictus-network/invictus/seal"
)

// The whole life of a referral over NATS: request, plan, offer, decline,
// next offer, reminder and deadline expiry, next offer, accept, sealed
// handover, contact, completion, feedback; with chained appends and with
// atomic batches.
func TestLifecycle(t *testing.T) {
	t.Parallel()
	for _, atomic := range []bool{false, true} {
		t.Run(fmt.Sprintf("atomic=%v", atomic), func(t *testing.T) {
			t.Parallel()
			n := newNet(t, 3*time.Second)
			n.busCfg.AtomicBatch = atomic
			n.startRouter()
			testLifecycle(t, n)
		})
	}
}

func testLifecycle(t *testing.T, n *netBundle) {
	id := events.NewReferralID()

	n.send("pt.ref", id, request(events.NeedSupportEmotional))
	n.waitDelivery("pt.ref", id, events.TypeReferralPlanned, nil)
	first := n.waitDelivery("pt.a1", id, events.TypeReferralOffered, nil)
	off := first.env.Payload.(*events.Offered)
	if off.Organisation != "pt.a1" || off.Attempt != 1 || off.Referrer != "pt.ref" {
		t.Fatalf("first offer %+v", off)
	}
	pl := off.Placement
	n.waitDelivery("pt.ref", id, events.TypeReferralOffered, nil)
	testenv.Await(t, "the reminder to be scheduled", func() bool {
		timer := n.read(natsjs.StreamTimers, "timer."+id+"."+pl)
		return len(timer) == 1 && timer[0].header.Get(natsjs.HeaderTimerKind) == natsjs.TimerReminder &&
			timer[0].header.Get(natsjs.HeaderAttempt) == "1"
	})

	// pt.a1 declines: pt.a2 is offered the placement.
	n.send("pt.a1", id, &events.Declined{Placement: pl, Reason: "capacity"})
	n.waitDelivery("pt.a1", id, events.TypeReferralDeclined, nil)
	second := n.waitDelivery("pt.a2", id, events.TypeReferralOffered, nil)
	if o := second.env.Payload.(*events.Offered); o.Attempt != 2 || o.Placement != pl {
		t.Fatalf("second offer %+v", o)
	}

	// pt.a2 does not answer: a reminder, then the deadline passes and
	// pt.a3 is offered the placement.
	reminder := n.waitDelivery("pt.a2", id, events.TypeReferralOffered, func(m stored) bool {
		return m.header.Get(natsjs.HeaderReminder) != ""
	})
	if reminder.env.Event.ID() != second.env.Event.ID() {
		t.Errorf("reminder carries event %s, want the offer %s", reminder.env.Event.ID(), second.env.Event.ID())
	}
	n.waitDelivery("pt.a2", id, events.TypeReferralExpired, nil)
	third := n.waitDelivery("pt.a3", id, events.TypeReferralOffered, nil)
	if o := third.env.Payload.(*events.Offered); o.Attempt != 3 {
		t.Fatalf("third offer %+v", o)
	}

	// pt.a3 accepts: the referrer is told and the timer is cancelled.
	n.send("pt.a3", id, &events.Accepted{Placement: pl})
	n.waitDelivery("pt.ref", id, events.TypeReferralAccepted, nil)
	testenv.Await(t, "the placement's timer to be cancelled", func() bool {
		return len(n.read(natsjs.StreamTimers, "timer."+id+"."+pl)) == 0
	})

	// Sealed handover to pt.a3's recipient from the directory.
	caseFile := []byte("Maria Exemplo, +351 900 000 000, call after 18:00 only")
	recipient := n.view.Organisation("pt.a3").AgeRecipient
	envelope, err := seal.Seal(recipient, caseFile)
	if err != nil {
		t.Fatal(err)
	}
	n.send("pt.ref", id, &events.Handover{Placement: pl, Recipient: recipient, Envelope: envelope})
	got := n.waitDelivery("pt.a3", id, events.TypeReferralHandover, nil)
	opened, err := seal.Open(n.keys["pt.a3"].Identity, got.env.Payload.(*events.Handover).Envelope)
	if err != nil || !bytes.Equal(opened, caseFile) {
		t.Fatalf("pt.a3 opens the handover: %q, %v", opened, err)
	}
	for _, other := range []string{"pt.a1", "pt.a2", "pt.ref"} {
		if _, err := seal.Open(n.keys[other].Identity, envelope); !errors.Is(err, seal.ErrNotForYou) {
			t.Errorf("%s opens the envelope: %v", other, err)
		}
	}

	n.send("pt.a3", id, &events.Contacted{Placement: pl})
	n.waitDelivery("pt.ref", id, events.TypeReferralContacted, nil)
	n.send("pt.a3", id, &events.Completed{Placement: pl, Outcome: "supported"})
	n.waitDelivery("pt.ref", id, events.TypeReferralCompleted, nil)
	n.send("pt.ref", id, &events.Feedback{Answers: []events.Answer{{Question: "helpful", Value: 5}}})
	n.waitDelivery("pt.ref", id, events.TypeReferralFeedback, nil)

	st := n.state(id)
	if st.Status != referral.StatusCompleted || st.Placements[0].AcceptedBy != "pt.a3" || st.Feedback != 1 {
		t.Fatalf("final state %s, accepted by %s, feedback %d", st.Status, st.Placements[0].AcceptedBy, st.Feedback)
	}
	log := n.log(id)
	want := []string{"requested", "planned", "offered", "declined", "offered", "expired", "offered",
		"accepted", "handover", "contacted", "completed", "feedback"}
	if got := types(log); !slices.Equal(got, want) {
		t.Fatalf("log:\n got %v\nwant %v", got, want)
	}
	uniqueIDs(t, log)

	// Only pt.a3 received the handover; nobody received a plaintext.
	for _, o := range []string{"pt.ref", "pt.a1", "pt.a2"} {
		if slices.Contains(types(n.deliveries(o, id)), "handover") {
			t.Errorf("%s received the handover", o)
		}
	}
	for _, s := range []string{natsjs.StreamReferrals, natsjs.StreamDelivery, natsjs.StreamTimers, natsjs.StreamDLQ} {
		for _, m := range n.read(s, ">") {
			if bytes.Contains(m.data, caseFile[:12]) {
				t.Errorf("%s holds the case file in clear on %s", s, m.subject)
			}
		}
	}
	// Every delivery is stored once.
	for _, o := range []string{"pt.ref", "pt.a1", "pt.a2", "pt.a3"} {
		var plain []stored
		for _, m := range n.deliveries(o, id) {
			if m.header.Get(natsjs.HeaderReminder) == "" {
				plain = append(plain, m)
			}
		}
		uniqueIDs(t, plain)
	}
	var last uint64
	for _, m := range n.deliveries("pt.ref", id) {
		seq, err := strconv.ParseUint(m.header.Get(natsjs.HeaderSequence), 10, 64)
		if err != nil || seq <= last {
			t.Errorf("pt.ref received %s with log sequence %q after %d", m.typ(), m.header.Get(natsjs.HeaderSequence), last)
		}
		last = seq
	}
	if got := types(n.deliveries("pt.a1", id)); !slices.Equal(got, []string{"offered", "declined"}) {
		t.Errorf("pt.a1 received %v, want its offer and its decline only", got)
	}
	n.consumerIdle(natsjs.StreamInbound, natsjs.ConsumerRouting)
	if dlq := n.read(natsjs.StreamDLQ, ">"); len(dlq) != 0 {
		t.Errorf("DLQ holds %d messages after a clean lifecycle", len(dlq))
	}
}

// Two need groups go to two organisations; one completes, the other's
// candidates all decline: the referral is partially completed.
func TestMultiPlacementPartialCompletion(t *testing.T) {
	t.Parallel()
	n := newNet(t, time.Hour,
		org{ID: "pt.ref", Needs: []string{events.NeedInfoCase}},
		org{ID: "pt.shelter", Needs: []string{events.NeedSafetyShelter}},
		org{ID: "pt.lawyers", Needs: []string{events.NeedJusticeLegalAid}})
	n.startRouter()
	id := events.NewReferralID()
	n.send("pt.ref", id, request(events.NeedSafetyShelter, events.NeedJusticeLegalAid))

	st := n.waitState(id, "two offers", func(st referral.State) bool {
		return len(st.Placements) == 2 && st.Placements[0].Status == referral.PlacementOffered && st.Placements[1].Status == referral.PlacementOffered
	})
	byOrg := map[string]string{}
	for _, p := range st.Placements {
		byOrg[p.Offer.Organisation] = p.ID
	}
	if byOrg["pt.shelter"] == "" || byOrg["pt.lawyers"] == "" {
		t.Fatalf("offers %+v, want one to each organisation", byOrg)
	}
	n.waitDelivery("pt.shelter", id, events.TypeReferralOffered, nil)
	n.waitDelivery("pt.lawyers", id, events.TypeReferralOffered, nil)

	n.send("pt.shelter", id, &events.Accepted{Placement: byOrg["pt.shelter"]})
	n.send("pt.lawyers", id, &events.Declined{Placement: byOrg["pt.lawyers"], Reason: "out_of_scope"})
	n.waitDelivery("pt.ref", id, events.TypeReferralUnmatched, nil)
	n.send("pt.shelter", id, &events.Completed{Placement: byOrg["pt.shelter"], Outcome: "supported"})
	st = n.waitState(id, "closed", func(st referral.State) bool { return st.Status.Closed() })
	if st.Status != referral.StatusPartiallyCompleted {
		t.Fatalf("status %s, want partially_completed", st.Status)
	}
	// The state is closed once the events are appended; their delivery
	// follows.
	n.waitDelivery("pt.shelter", id, events.TypeReferralCompleted, nil)
	// Each organisation saw only its own placement.
	for _, m := range n.deliveries("pt.lawyers", id) {
		if o, ok := m.env.Payload.(*events.Offered); ok && o.Placement != byOrg["pt.lawyers"] {
			t.Errorf("pt.lawyers received the offer of placement %s", o.Placement)
		}
		if m.typ() == events.TypeReferralAccepted || m.typ() == events.TypeReferralCompleted {
			t.Errorf("pt.lawyers received %s of the other placement", m.typ())
		}
	}
	if got := types(n.deliveries("pt.shelter", id)); !slices.Equal(got, []string{"offered", "accepted", "completed"}) {
		t.Errorf("pt.shelter received %v", got)
	}
	uniqueIDs(t, n.log(id))
}

// Forged sources, commands on another organisation's subject, answers to
// offers made to others, and withdrawals of others' referrals are
// rejected to the sender, copied to DLQ, and change nothing.
func TestUnauthorisedCommandsChangeNothing(t *testing.T) {
	t.Parallel()
	n := newNet(t, time.Hour)
	n.startRouter()
	id := events.NewReferralID()
	n.send("pt.ref", id, request(events.NeedSupportEmotional))
	st := n.waitState(id, "offered to pt.a1", offeredTo(0, "pt.a1"))
	pl, _ := offer(t, st, 0)
	n.waitDelivery("pt.a1", id, events.TypeReferralOffered, nil)
	before := n.log(id)

	// pt.a2 publishes, on its own subject, an acceptance claiming to be
	// pt.a1 (forged source).
	forged, err := events.New(events.SourceOf("pt.a1"), id, &events.Accepted{Placement: pl})
	if err != nil {
		t.Fatal(err)
	}
	n.publish("pt.a2", forged)
	// pt.a2 accepts, declines, and withdraws in its own name.
	n.send("pt.a2", id, &events.Accepted{Placement: pl})
	n.send("pt.a2", id, &events.Declined{Placement: pl, Reason: "other"})
	n.send("pt.a2", id, &events.Withdrawn{Reason: "error"})
	// pt.a1 reports contact before accepting (only the accepting
	// organisation may, after acceptance).
	n.send("pt.a1", id, &events.Contacted{Placement: pl})
	// pt.a2 publishes its acceptance on pt.a1's subject: the source is
	// not the subject's organisation (NATS permissions stop this earlier
	// in production); pt.a1, whose subject it was, is told.
	wrong, err := events.New(events.SourceOf("pt.a2"), id, &events.Accepted{Placement: pl})
	if err != nil {
		t.Fatal(err)
	}
	n.publish("pt.a1", wrong)

	testenv.Await(t, "four rejections to pt.a2 and two to pt.a1", func() bool {
		return len(n.rejections("pt.a2", id)) == 4 && len(n.rejections("pt.a1", id)) == 2
	})
	// The forged source is forbidden; pt.a2, no party to the referral, is
	// told of its own commands what it would be told of a referral that
	// does not exist.
	codes := map[string]int{}
	for _, m := range n.rejections("pt.a2", id) {
		p := m.env.Payload.(*events.CommandRejected)
		if len(p.Errors) > 0 {
			codes[p.Errors[0].Code]++
		}
	}
	if codes[referral.CodeForbidden] != 1 || codes[referral.CodeNotFound] != 3 {
		t.Errorf("rejections to pt.a2 by code: %v, want 1 forbidden and 3 not_found", codes)
	}
	n.consumerIdle(natsjs.StreamInbound, natsjs.ConsumerRouting)
	dlq := n.read(natsjs.StreamDLQ, "dlq.*."+id)
	if len(dlq) != 6 {
		t.Fatalf("DLQ holds %d copies, want 6", len(dlq))
	}
	for _, m := range dlq {
		if m.header.Get(natsjs.HeaderReason) == "" || m.header.Get(natsjs.HeaderError) == "" || m.env == nil {
			t.Errorf("DLQ copy %s without reason, error or the original event: %v", m.subject, m.header)
		}
	}
	after := n.log(id)
	if !slices.Equal(types(after), types(before)) || after[len(after)-1].seq != before[len(before)-1].seq {
		t.Fatalf("log changed: %v -> %v", types(before), types(after))
	}
	if got := n.state(id); !offeredTo(0, "pt.a1")(got) {
		t.Fatalf("state changed: %+v", got.Placements)
	}
	// The other organisations received nothing of the referral except
	// their rejections.
	for _, m := range n.deliveries("pt.a2", id) {
		if m.typ() != events.TypeCommandRejected {
			t.Errorf("pt.a2 received %s", m.typ())
		}
	}
}

// A command published twice (two INBOUND messages with the same
// CloudEvents id but no deduplication) or delivered twice produces its
// events once; the stream's deduplication drops an identical publish.
func TestDuplicateCommands(t *testing.T) {
	t.Parallel()
	n := newNet(t, time.Hour)
	n.startRouter()
	id := events.NewReferralID()
	req := n.send("pt.ref", id, request(events.NeedSupportEmotional))
	n.publish("pt.ref", req.Event) // same Nats-Msg-Id: dropped by INBOUND
	st := n.waitState(id, "offered", offeredTo(0, "pt.a1"))
	pl, _ := offer(t, st, 0)

	// Sent twice, bypassing the stream's deduplication.
	decline := n.send("pt.a1", id, &events.Declined{Placement: pl, Reason: "capacity"})
	m, err := events.ToNATS("in.pt.a1", decline.Event)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.nc.PublishMsg(natsMsg(m)); err != nil {
		t.Fatal(err)
	}
	n.waitState(id, "offered to pt.a2", offeredTo(0, "pt.a2"))
	n.consumerIdle(natsjs.StreamInbound, natsjs.ConsumerRouting)
	n.consumerIdle(natsjs.StreamReferrals, natsjs.ConsumerDispatcher)
	want := []string{"requested", "planned", "offered", "declined", "offered"}
	if got := types(n.log(id)); !slices.Equal(got, want) {
		t.Fatalf("log %v, want %v", got, want)
	}
	var last uint64
	for _, m := range n.deliveries("pt.ref", id) {
		seq, err := strconv.ParseUint(m.header.Get(natsjs.HeaderSequence), 10, 64)
		if err != nil || seq <= last {
			t.Errorf("pt.ref received %s with log sequence %q after %d", m.typ(), m.header.Get(natsjs.HeaderSequence), last)
		}
		last = seq
	}
	if got := types(n.deliveries("pt.a1", id)); !slices.Equal(got, []string{"offered", "declined"}) {
		t.Fatalf("pt.a1 received %v", got)
	}
	if len(n.rejections("pt.a1", id)) != 0 {
		t.Fatal("the second decline was rejected instead of ignored")
	}
}

// Undecodable and oversized messages are terminated, copied to DLQ with
// the reason, answered when the sender is known, and never block the
// consumer: a valid command behind them goes through.
func TestPoisonMessagesGoToDLQ(t *testing.T) {
	t.Parallel()
	n := newNet(t, time.Hour)
	n.startRouter()
	poison := []struct {
		name string
		msg  *nats.Msg
	}{
		{"no headers", &nats.Msg{Subject: "in.pt.a1", Data: []byte("hello")}},
		{"bad json", withHeaders("in.pt.a1", map[string]string{"ce-specversion": "1.0", "ce-id": "x1", "ce-source": "/orgs/pt.a1",
			"ce-type": events.TypeReferralAccepted, "ce-subject": events.NewReferralID(), "ce-datacontenttype": "application/json"}, []byte("{nope"))},
		{"unknown type", withHeaders("in.pt.a2", map[string]string{"ce-specversion": "1.0", "ce-id": "x2", "ce-source": "/orgs/pt.a2",
			"ce-type": "invictus.referral.teleported.v1", "ce-datacontenttype": "application/json"}, []byte("{}"))},
		{"oversized", &nats.Msg{Subject: "in.pt.a2", Data: bytes.Repeat([]byte("a"), events.MaxMessageSize+1)}},
		{"subject not an organisation", &nats.Msg{Subject: "in.nowhere", Data: []byte("{}")}},
	}
	for _, p := range poison {
		if err := n.nc.PublishMsg(p.msg); err != nil {
			t.Fatalf("%s: %v", p.name, err)
		}
	}
	unknown := events.NewReferralID()
	n.send("pt.a1", unknown, &events.Accepted{Placement: "p1"})
	id := events.NewReferralID()
	n.send("pt.ref", id, request(events.NeedSupportEmotional))
	n.waitState(id, "offered", offeredTo(0, "pt.a1"))
	n.consumerIdle(natsjs.StreamInbound, natsjs.ConsumerRouting)

	if rej := n.rejections("pt.a1", unknown); len(rej) != 1 || rej[0].env.Payload.(*events.CommandRejected).Errors[0].Code != referral.CodeNotFound {
		t.Errorf("command for an unknown referral: %d rejections %v, want one not_found", len(rej), types(rej))
	}
	if got := n.read(natsjs.StreamDLQ, "dlq.not_found."+unknown); len(got) != 1 {
		t.Errorf("DLQ holds %d copies of the command for an unknown referral", len(got))
	}
	dlq := n.read(natsjs.StreamDLQ, ">")
	if len(dlq) != len(poison)+1 {
		t.Fatalf("DLQ holds %d messages, want %d", len(dlq), len(poison)+1)
	}
	reasons := map[string]int{}
	for _, m := range dlq {
		reasons[m.header.Get(natsjs.HeaderReason)]++
		if !strings.HasPrefix(m.subject, "dlq."+m.header.Get(natsjs.HeaderReason)) {
			t.Errorf("DLQ subject %s does not name its reason", m.subject)
		}
	}
	if reasons["decode"] != 4 || reasons[natsjs.ReasonSubject] != 1 || reasons[referral.CodeNotFound] != 1 {
		t.Errorf("DLQ reasons %v", reasons)
	}
	// The senders were told, on their rejection subject or the referral's.
	testenv.Await(t, "rejections", func() bool {
		return len(n.rejections("pt.a1", "rejected")) == 1 && len(n.rejections("pt.a2", "rejected")) == 2
	})
	// Nothing is left in INBOUND: work queue, every message settled.
	info, err := n.js.Stream(t.Context(), natsjs.StreamInbound)
	if err != nil {
		t.Fatal(err)
	}
	if si, err := info.Info(t.Context()); err != nil || si.State.Msgs != 0 {
		t.Fatalf("INBOUND holds %d messages (%v)", si.State.Msgs, err)
	}
}

// Erasure purges every copy of the referral and keeps only the statistics.
func TestErasure(t *testing.T) {
	t.Parallel()
	n := newNet(t, time.Hour)
	n.startRouter()
	id := events.NewReferralID()
	n.send("pt.ref", id, request(events.NeedSupportEmotional))
	st := n.waitState(id, "offered", offeredTo(0, "pt.a1"))
	pl, _ := offer(t, st, 0)
	n.send("pt.a1", id, &events.Declined{Placement: pl, Reason: "capacity"})
	n.waitState(id, "offered to pt.a2", offeredTo(0, "pt.a2"))
	n.send("pt.a2", id, &events.Accepted{Placement: pl})
	recipient := n.view.Organisation("pt.a2").AgeRecipient
	envelope, err := seal.Seal(recipient, []byte("case notes"))
	if err != nil {
		t.Fatal(err)
	}
	n.send("pt.ref", id, &events.Handover{Placement: pl, Recipient: recipient, Envelope: envelope})
	n.waitDelivery("pt.a2", id, events.TypeReferralHandover, nil)
	n.send("pt.a3", id, &events.Withdrawn{Reason: "error"}) // rejected: a DLQ copy of this referral
	testenv.Await(t, "the DLQ copy", func() bool { return len(n.read(natsjs.StreamDLQ, "dlq.*."+id)) == 1 })
	// Another referral, which must not be touched.
	other := events.NewReferralID()
	n.send("pt.ref", other, request(events.NeedSupportEmotional))
	n.waitState(other, "offered", offeredTo(0, "pt.a1"))

	n.send("pt.ref", id, &events.Erase{Reason: "victim_request"})
	n.waitState(id, "erased", func(st referral.State) bool { return st.Status == referral.StatusErased })
	n.consumerIdle(natsjs.StreamReferrals, natsjs.ConsumerDispatcher)

	log := n.log(id)
	if got := types(log); !slices.Equal(got, []string{"erased"}) {
		t.Fatalf("REFERRALS holds %v of the erased referral", got)
	}
	er := log[0].env.Payload.(*events.Erased)
	if er.Country != "pt" || er.Outcome != "open" || !slices.Equal(er.Needs, []string{events.NeedSupportEmotional}) {
		t.Errorf("erased keeps %+v", er)
	}
	n.consumerIdle(natsjs.StreamInbound, natsjs.ConsumerRouting)
	if in, err := n.js.Stream(t.Context(), natsjs.StreamInbound); err != nil {
		t.Fatal(err)
	} else if si, err := in.Info(t.Context()); err != nil || si.State.Msgs != 0 {
		t.Errorf("INBOUND holds %d commands (%v)", si.State.Msgs, err)
	}
	for _, s := range []string{natsjs.StreamReferrals, natsjs.StreamDelivery, natsjs.StreamTimers, natsjs.StreamDLQ} {
		for _, m := range n.read(s, ">") {
			if !strings.Contains(m.subject, id) && !bytes.Contains(m.data, []byte(id)) && !strings.Contains(headerText(m), id) {
				continue
			}
			if m.typ() != events.TypeReferralErased {
				t.Errorf("%s still holds %s of the erased referral on %s", s, m.typ(), m.subject)
			}
		}
	}
	// Each party was told, once.
	for _, o := range []string{"pt.ref", "pt.a1", "pt.a2"} {
		if got := types(n.deliveries(o, id)); !slices.Equal(got, []string{"erased"}) {
			t.Errorf("%s holds %v", o, got)
		}
	}
	// A command for the erased referral is rejected as for a referral
	// that does not exist: erasure forgets the parties.
	n.send("pt.a2", id, &events.Contacted{Placement: pl})
	testenv.Await(t, "the rejection of a command for the erased referral", func() bool {
		for _, m := range n.rejections("pt.a2", id) {
			if p := m.env.Payload.(*events.CommandRejected); p.Errors[0].Code == referral.CodeNotFound {
				return true
			}
		}
		return false
	})
	// The other referral is intact.
	if got := types(n.log(other)); !slices.Equal(got, []string{"requested", "planned", "offered"}) {
		t.Errorf("other referral's log %v", got)
	}
	if len(n.deliveries("pt.a1", other)) != 1 {
		t.Error("other referral's delivery was purged")
	}
}

func headerText(m stored) string {
	var b strings.Builder
	for k, vs := range m.header {
		b.WriteString(k + ":" + strings.Join(vs, ",") + "\n")
	}
	return b.String()
}

// A rejected command's DLQ copy names the problem's member and code in
// its Invictus-Error header, never a value quoted from the payload.
func TestDLQErrorHeaderDoesNotQuotePayload(t *testing.T) {
	t.Parallel()
	n := newNet(t, time.Hour)
	n.startRouter()
	id := events.NewReferralID()
	ev, err := events.New(events.SourceOf("pt.a1"), id, &events.Declined{Placement: "p1", Reason: "other"})
	if err != nil {
		t.Fatal(err)
	}
	m, err := events.ToNATS("in.pt.a1", ev)
	if err != nil {
		t.Fatal(err)
	}
	msg := natsMsg(m)
	msg.Data = []byte(`{"placement":"p1","reason":"Maria Silva"}`)
	if err := n.nc.PublishMsg(msg); err != nil {
		t.Fatal(err)
	}
	testenv.Await(t, "the DLQ copy", func() bool { return len(n.read(natsjs.StreamDLQ, "dlq.*."+id)) == 1 })
	dlq := n.read(natsjs.StreamDLQ, "dlq.*."+id)[0]
	h := dlq.header.Get(natsjs.HeaderError)
	if !strings.HasPrefix(h, "/data/reason ") {
		t.Errorf("%s = %q, want the member /data/reason and its code", natsjs.HeaderError, h)
	}
	if strings.Contains(h, "Maria") {
		t.Errorf("%s quotes the payload: %q", natsjs.HeaderError, h)
	}
	if !bytes.Contains(dlq.data, []byte("Maria Silva")) {
		t.Errorf("the DLQ copy lost the original payload: %s", dlq.data)
	}
}
