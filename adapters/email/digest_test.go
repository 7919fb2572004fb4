package email_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/invictus-network/invictus/adapters/email"
	"github.com/invictus-network/invictus/adapters/natsjs"
	"github.com/invictus-network/invictus/directory"
)

// testClock is the wall clock moved forward by an offset the test sets.
type testClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	c.offset += d
	c.mu.Unlock()
}

// setChannel gives org the referral channel ch in the directory.
func (b *bundle) setChannel(org, ch string) {
	b.t.Helper()
	d := *b.view.Snapshot().Directory()
	d.Organisations = append([]directory.Organisation(nil), d.Organisations...)
	for i := range d.Organisations {
		if d.Organisations[i].ID == org {
			d.Organisations[i].ReferralChannel = ch
		}
	}
	if err := d.Validate(); err != nil {
		b.t.Fatal(err)
	}
	b.view.Load(&d, b.view.Revision()+1)
}

// setZone gives org's services the time zone zone in the directory.
func (b *bundle) setZone(org, zone string) {
	b.t.Helper()
	d := *b.view.Snapshot().Directory()
	d.Services = append([]directory.Service(nil), d.Services...)
	for i := range d.Services {
		if d.Services[i].Organisation == org {
			d.Services[i].Hours.TimeZone = zone
		}
	}
	if err := d.Validate(); err != nil {
		b.t.Fatal(err)
	}
	b.view.Load(&d, b.view.Revision()+1)
}

// TestDailyDigest: an organisation with referral_channel email_digest
// gets one message a day with everything pending, in its language, at
// Config.DigestAt in its own time zone; an offer whose deadline comes
// before the digest still goes at once. The day passes on an injected
// clock; FlushDigests sends what is pending on demand.
func TestDailyDigest(t *testing.T) {
	t.Parallel()
	clock := &testClock{}
	// The digest is due about 12 hours from now on the clocks of
	// Helsinki (UTC+2 or +3), where pt.a1's services are: read as UTC,
	// the same time of day would come 2 or 3 hours later.
	helsinki, err := time.LoadLocation("Europe/Helsinki")
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().Add(12*time.Hour + time.Minute).In(helsinki).Format("15:04")
	b := setup(t, email.Config{Now: clock.Now, DigestAt: at})
	b.setChannel("pt.a1", directory.ReferralChannelEmailDigest)
	b.setZone("pt.a1", "Europe/Helsinki")
	in := b.start("a")

	urgent := b.deliverOffer("pt.a1", time.Now().Add(30*time.Minute))
	var later []string
	for range 3 {
		later = append(later, b.deliverOffer("pt.a1", time.Now().Add(72*time.Hour)))
	}
	b.idle("pt.a1")
	if got := in.metric("invictus_email_messages_total", "held"); got != 3 {
		t.Fatalf("%v messages held for the digest, want 3", got)
	}
	m := b.mail("pt.a1", "Nouvelle proposition")
	if !strings.Contains(m.Text, urgent) {
		t.Fatalf("the offer sent at once is not the urgent one:\n%s", m.Text)
	}
	if total, _ := b.received(); total != 1 {
		t.Fatalf("%d messages before the digest is due, want 1 (the urgent offer)", total)
	}

	// Half an hour past the digest time in Helsinki (about 12 hours on;
	// not yet that time of day in UTC): one digest with the three offers,
	// in French, each with its two links.
	atDur, err := email.ParseDigestAt(at)
	if err != nil {
		t.Fatal(err)
	}
	clock.advance(time.Until(email.NextDigest(atDur, helsinki, time.Now())) + 30*time.Minute)
	d := b.mail("pt.a1", "Résumé du jour du réseau d'orientation (3)")
	for _, id := range later {
		if !strings.Contains(d.Text, id) || !strings.Contains(d.HTML, id) {
			t.Errorf("the digest lacks referral %s:\n%s", id, d.Text)
		}
	}
	if n := len(reLink.FindAllString(d.Text, -1)); n != 6 {
		t.Errorf("%d links in the digest, want 6:\n%s", n, d.Text)
	}
	if !strings.Contains(d.Text, "Soutien émotionnel") || !strings.HasPrefix(d.MessageID, "digest.") {
		t.Errorf("digest %q:\n%s", d.MessageID, d.Text)
	}

	// Nothing pending: a flush sends nothing; a new item, flushed on
	// demand, makes a digest of one.
	if err := in.a.FlushDigests(context.Background()); err != nil {
		t.Fatal(err)
	}
	if total, _ := b.received(); total != 2 {
		t.Fatalf("%d messages after an empty flush, want 2", total)
	}
	last := b.deliverOffer("pt.a1", time.Now().Add(72*time.Hour))
	b.idle("pt.a1")
	if err := in.a.FlushDigests(context.Background()); err != nil {
		t.Fatal(err)
	}
	one := b.mail("pt.a1", "Résumé du jour du réseau d'orientation (1)")
	if !strings.Contains(one.Text, last) {
		t.Errorf("the second digest lacks %s:\n%s", last, one.Text)
	}
	total, dups := b.received()
	if total != 3 || dups != 0 {
		t.Fatalf("received %d, duplicates %d; want 3, 0", total, dups)
	}
}

// TestDigestRefused: a digest the SMTP server refuses (5xx) is recorded
// as a failure of kind digest, and its items are dropped: never retried.
func TestDigestRefused(t *testing.T) {
	t.Parallel()
	b := setup(t, email.Config{}, "--smtp-allowed-recipients", "^ref@ref\\.test$")
	b.setChannel("pt.a1", directory.ReferralChannelEmailDigest)
	in := b.start("a")
	for range 2 {
		b.deliverOffer("pt.a1", time.Now().Add(72*time.Hour))
	}
	b.idle("pt.a1")
	ctx := context.Background()
	if err := in.a.FlushDigests(ctx); err == nil {
		t.Fatal("a refused digest: no error")
	}
	kv, err := b.js.KeyValue(ctx, natsjs.BucketEmail)
	if err != nil {
		t.Fatal(err)
	}
	fs, err := email.ListFailures(ctx, natsjs.NewRevStore(kv), "pt.a1")
	if err != nil || len(fs) != 1 || fs[0].Kind != email.KindDigest || fs[0].Code < 500 || fs[0].Temporary {
		t.Fatalf("failures: %+v, %v", fs, err)
	}
	if err := in.a.FlushDigests(ctx); err != nil {
		t.Fatalf("after the refusal the digest is still pending: %v", err)
	}
	if got := in.metric("invictus_email_messages_total", "failed"); got != 1 {
		t.Errorf("failed %v, want 1", got)
	}
	if total, _ := b.received(); total != 0 {
		t.Errorf("%d messages received, want 0", total)
	}
}
