package email_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/invictus-network/invictus/adapters/email"
	"github.com/invictus-network/invictus/adapters/natsjs"
	"github.com/invictus-network/invictus/events"
)

// idle waits until the e-mail consumer of org has nothing pending or in
// hand.
func (b *bundle) idle(org string) {
	b.t.Helper()
	waitFor(b.t, "the e-mail consumer of "+org+" to be idle", func() bool {
		c, err := b.js.Consumer(context.Background(), natsjs.StreamDelivery, natsjs.EmailConsumerName(org))
		if err != nil {
			return false
		}
		info, err := c.Info(context.Background())
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0
	})
}

// received counts the messages Mailpit holds and the duplicates among
// them (same Message-ID).
func (b *bundle) received() (total, dups int) {
	b.t.Helper()
	ms, err := b.mp.Messages()
	if err != nil {
		b.t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, m := range ms {
		if seen[m.MessageID] {
			dups++
		}
		seen[m.MessageID] = true
	}
	return len(ms), dups
}

// outage returns how many failed attempts to send each waiting message
// the SMTP outage of TestSMTPOutageEveryMessageOnce lasts
// (INVICTUS_EMAIL_OUTAGE_RETRIES, default 4; the metric counts them as
// result="retried") and whether it runs with the production backoff
// (INVICTUS_EMAIL_OUTAGE_REAL=1) rather than the tests' short one. The
// outage is measured in the sender's progress, not in wall time: with the
// production backoff (2 s, doubling) a message's sixth attempt comes 62 s
// after its first.
func outage(t *testing.T) (retries int, real bool) {
	retries = 4
	if v := os.Getenv("INVICTUS_EMAIL_OUTAGE_RETRIES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 50 {
			t.Fatalf("INVICTUS_EMAIL_OUTAGE_RETRIES=%q: want 1 to 50", v)
		}
		retries = n
	}
	return retries, os.Getenv("INVICTUS_EMAIL_OUTAGE_REAL") == "1"
}

// TestSMTPOutageEveryMessageOnce: with the SMTP server stopped, messages
// wait and are retried; once it is back every message arrives, once.
// The outage lasts until the sender has failed INVICTUS_EMAIL_OUTAGE_RETRIES
// times per waiting message (see outage); INVICTUS_EMAIL_OUTAGE_REAL=1
// uses the production backoff, so that 6 keep the server down for a
// minute:
//
//	INVICTUS_EMAIL_OUTAGE_REAL=1 INVICTUS_EMAIL_OUTAGE_RETRIES=6 go test -run SMTPOutage ./adapters/email/
func TestSMTPOutageEveryMessageOnce(t *testing.T) {
	t.Parallel()
	const n = 12
	retries, real := outage(t)
	cfg := email.Config{Attempts: retries + 20}
	if real {
		cfg.Backoff, cfg.BackoffMax = email.BackoffDefault, email.BackoffMaxDefault
	}
	b := setup(t, cfg)
	in := b.start("a")
	b.refer(needsOffered...)
	b.mail("pt.a1", "Nouvelle proposition")
	b.mp.Stop()
	down := time.Now()
	for range n - 1 {
		b.refer(needsOffered...)
	}
	waitFor(t, "retries while the SMTP server is down", func() bool {
		return in.metric("invictus_email_messages_total", "retried") >= float64(retries*(n-1))
	})
	b.mp.Restart()
	t.Logf("SMTP server down for %s (%d failed attempts per message, %d messages)", time.Since(down).Round(time.Millisecond), retries, n-1)
	waitFor(t, fmt.Sprintf("%d messages", n), func() bool { total, _ := b.received(); return total >= n })
	b.idle("pt.a1")
	total, dups := b.received()
	sent := in.metric("invictus_email_messages_total", "sent")
	t.Logf("SMTP outage: sent %v, received %d, duplicates %d, retries %v", sent, total, dups, in.metric("invictus_email_messages_total", "retried"))
	if total != n || dups != 0 || sent != n {
		t.Fatalf("sent %v, received %d, duplicates %d; want %d, %d, 0", sent, total, dups, n, n)
	}
}

// TestTwoInstancesOneSender: of two adapters only the lease holder
// sends; when it stops, the other takes over, and every message arrives
// once.
func TestTwoInstancesOneSender(t *testing.T) {
	t.Parallel()
	const n = 8
	b := setup(t, email.Config{})
	x, y := b.start("x"), b.start("y")
	leader := func() *instance {
		switch {
		case x.metric("invictus_email_sender_leader", "") == 1 && y.metric("invictus_email_sender_leader", "") == 0:
			return x
		case y.metric("invictus_email_sender_leader", "") == 1 && x.metric("invictus_email_sender_leader", "") == 0:
			return y
		}
		return nil
	}
	waitFor(t, "one leader", func() bool { return leader() != nil })
	first := leader()
	second := x
	if first == x {
		second = y
	}
	for range n {
		b.refer(needsOffered...)
	}
	waitFor(t, "the first half", func() bool { total, _ := b.received(); return total >= n })
	b.idle("pt.a1")
	first.stop(t)
	waitFor(t, "the takeover", func() bool { return second.metric("invictus_email_sender_leader", "") == 1 })
	for range n {
		b.refer(needsOffered...)
	}
	waitFor(t, "the second half", func() bool { total, _ := b.received(); return total >= 2*n })
	b.idle("pt.a1")
	total, dups := b.received()
	s1, s2 := first.metric("invictus_email_messages_total", "sent"), second.metric("invictus_email_messages_total", "sent")
	t.Logf("two instances: first sent %v, second sent %v, received %d, duplicates %d", s1, s2, total, dups)
	if total != 2*n || dups != 0 || s1 != n || s2 != n {
		t.Fatalf("first sent %v, second %v, received %d, duplicates %d; want %d, %d, %d, 0", s1, s2, total, dups, n, n, 2*n)
	}
}

// TestLeaseTakeoverAfterCrash: a holder that stops without releasing
// (its lease left to expire) is replaced once the lease has expired.
func TestLeaseTakeoverAfterCrash(t *testing.T) {
	t.Parallel()
	b := setup(t, email.Config{LeaseTTL: 600 * time.Millisecond})
	ctx := context.Background()
	state, _, err := natsjs.EnsureEmailBuckets(ctx, b.js, natsjs.StreamsConfig{})
	if err != nil {
		t.Fatal(err)
	}
	// A lease held by an instance that has gone away.
	v := fmt.Appendf(nil, `{"holder":"gone","expires":%q}`, time.Now().Add(900*time.Millisecond).Format(time.RFC3339Nano))
	if _, err := state.Create(ctx, "lease.sender", v); err != nil {
		t.Fatal(err)
	}
	in := b.start("next")
	b.refer(needsOffered...)
	b.mail("pt.a1", "Nouvelle proposition")
	if in.metric("invictus_email_sender_leader", "") != 1 {
		t.Fatal("the new instance sent without the lease")
	}
}

// TestPermanentFailureRecordedNotRetried: a recipient the server
// refuses (5xx) is recorded and counted once, never retried, and the
// messages after it still go.
func TestPermanentFailureRecordedNotRetried(t *testing.T) {
	t.Parallel()
	// Mailpit refuses every recipient but the referrer's.
	b := setup(t, email.Config{}, "--smtp-allowed-recipients", "^ref@ref\\.test$")
	in := b.start("a")
	id := b.refer(needsOffered...)
	waitFor(t, "the failure", func() bool { return in.metric("invictus_email_messages_total", "failed") == 1 })
	b.idle("pt.a1")
	if got := in.metric("invictus_email_messages_total", "retried"); got != 0 {
		t.Errorf("a permanent failure was retried %v times", got)
	}
	c, err := b.js.Consumer(context.Background(), natsjs.StreamDelivery, natsjs.EmailConsumerName("pt.a1"))
	if err != nil {
		t.Fatal(err)
	}
	info, _ := c.Info(context.Background())
	if info.NumRedelivered != 0 || info.NumAckPending != 0 {
		t.Errorf("consumer after the failure: %+v", info)
	}
	kv, err := b.js.KeyValue(context.Background(), natsjs.BucketEmail)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := kv.ListKeysFiltered(context.Background(), "failure.pt.a1.>")
	if err != nil {
		t.Fatal(err)
	}
	var n int
	for range keys.Keys() {
		n++
	}
	if n != 1 {
		t.Fatalf("%d failures recorded, want 1", n)
	}
	fs, err := email.ListFailures(context.Background(), natsjs.NewRevStore(kv), "pt.a1")
	if err != nil || len(fs) != 1 || fs[0].Kind != email.KindOffer || fs[0].Referral != id || fs[0].Code < 500 || fs[0].Temporary {
		t.Fatalf("failures of pt.a1: %+v, %v", fs, err)
	}
	if fs[0].Placement == "" || fs[0].Referrer != "pt.ref" {
		t.Errorf("the failure does not name the placement and the referrer: %+v", fs[0])
	}
	// The referrer is told by one delivery.failed event on its delivery
	// subject of the referral...
	notices := natsjs.NewDeliveryNotices(b.js)
	var got []*events.Envelope
	waitFor(t, "the delivery.failed event", func() bool {
		got, err = notices.Notices(context.Background(), "pt.ref", id, events.TypeDeliveryFailed)
		return err == nil && len(got) > 0
	})
	p, _ := got[0].Payload.(*events.DeliveryFailed)
	if len(got) != 1 || p == nil || p.Organisation != "pt.a1" || p.Placement != fs[0].Placement || p.Message != email.KindOffer ||
		p.Reason != events.DeliveryRefused || p.SMTPCode != fs[0].Code || p.Event != fs[0].EventID || got[0].Event.Source() != events.SourceEmail {
		t.Fatalf("delivery.failed events: %d, first %+v", len(got), p)
	}
	if got := in.metric("invictus_email_messages_total", "notified"); got != 1 {
		t.Errorf("notified %v, want 1", got)
	}
	// ... and, since it receives by e-mail, by an e-mail in Portuguese.
	notice := b.mail("pt.ref", "O seu encaminhamento não pôde ser entregue a Org pt.a1")
	if !strings.Contains(notice.Text, id) || !strings.Contains(notice.Text, "Apoio emocional") {
		t.Errorf("the notice lacks the referral or its needs:\n%s", notice.Text)
	}
	// Telling it again (an adapter that crashed after the event) adds
	// nothing: the event's id comes from the failure.
	if err := notices.Notify(context.Background(), "pt.ref", deliveryMessage(t, got[0], "pt.ref")); err != nil {
		t.Fatal(err)
	}
	if again, err := notices.Notices(context.Background(), "pt.ref", id, events.TypeDeliveryFailed); err != nil || len(again) != 1 {
		t.Errorf("after telling again: %d events, %v; want 1", len(again), err)
	}
	// The referrer still hears when the offer is declined.
	b.send("pt.a1", id, declined(b, id))
	b.mail("pt.ref", "recusado")
}

// deliveryMessage is env on org's delivery subject of its referral.
func deliveryMessage(t *testing.T, env *events.Envelope, org string) events.Message {
	t.Helper()
	subject, err := events.DeliverySubject(org, env.Event.Subject())
	if err != nil {
		t.Fatal(err)
	}
	m, err := events.ToNATS(subject, env.Event)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// declined is pt.a1's decline of the first placement of id.
func declined(b *bundle, id string) *events.Declined {
	b.t.Helper()
	var pl string
	waitFor(b.t, "the offer", func() bool {
		st := b.state(id)
		if len(st.Placements) == 0 {
			return false
		}
		pl = st.Placements[0].ID
		return st.Placements[0].Offer.Organisation == "pt.a1"
	})
	return &events.Declined{Placement: pl, Reason: "out_of_area"}
}
