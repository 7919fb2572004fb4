package console_test

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/invictus-network/invictus/adapters/natsjs"
	"github.com/invictus-network/invictus/adapters/web/console"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/routing"
)

// The natsjs notices satisfy the console's port.
var _ console.Notices = (*natsjs.DeliveryNotices)(nil)

// failureList is the console's Failures port over a list kept per
// organisation, as the e-mail channel's bucket keeps them
// (failure.<org>.*); serve's port over the real bucket is tested with
// Mailpit in cmd/invictus (TestAdapterEmailFailures).
type failureList struct {
	mu    sync.Mutex
	byOrg map[string][]console.DeliveryFailure
	asked []string
}

func (l *failureList) Failures(_ context.Context, org string) ([]console.DeliveryFailure, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.asked = append(l.asked, org)
	if org == "" {
		var all []console.DeliveryFailure
		for _, fs := range l.byOrg {
			all = append(all, fs...)
		}
		return all, nil
	}
	return append([]console.DeliveryFailure(nil), l.byOrg[org]...), nil
}

// noChannel is the Failures of a node where no e-mail channel ran.
type noChannel struct{}

func (noChannel) Failures(context.Context, string) ([]console.DeliveryFailure, error) {
	return nil, console.ErrNoChannel
}

// withChannels gives b's console the e-mail channel's ports: failures
// and the notices on delivery subjects. Call it before any request.
func withChannels(b *bundle, f console.Failures) {
	b.t.Helper()
	srv, err := console.New(console.Deps{
		Accounts: b.stores.Accounts, Sessions: b.stores.Sessions, Audit: b.stores.Audit,
		Commands: b.ports.Commands, Outcomes: b.ports.Outcomes, Timeline: b.ports.Timeline, Inbox: b.ports.Inbox,
		Directory: b.view, Matcher: routing.NewMatcher(routing.Config{}), Keys: b.ports.Keys,
		Failures: f, Notices: natsjs.NewDeliveryNotices(b.js),
	}, console.Config{Now: b.now, Logger: slog.New(slog.NewJSONHandler(b.logs, nil)), SignInRate: 1000})
	if err != nil {
		b.t.Fatal(err)
	}
	b.srv = srv
}

// notifyFailed puts on the referrer's delivery subject of id the
// delivery.failed the e-mail channel sends when the offer of placement
// to offered was refused.
func notifyFailed(t *testing.T, b *bundle, referrer, id, placement, offered string) {
	t.Helper()
	ev, err := events.New(events.SourceEmail, id, &events.DeliveryFailed{Placement: placement, Organisation: offered,
		Channel: "email", Message: "offer", Event: events.NewReferralID(), Reason: events.DeliveryRefused, SMTPCode: 550, Attempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	subject, _ := events.DeliverySubject(referrer, id)
	m, err := events.ToNATS(subject, ev)
	if err != nil {
		t.Fatal(err)
	}
	if err := natsjs.NewDeliveryNotices(b.js).Notify(t.Context(), referrer, m); err != nil {
		t.Fatal(err)
	}
}

// TestFailuresPage: an organisation's administrator sees the e-mails to
// her own organisation that were given up (when, which message, which
// referral and placement, the SMTP answer), and nothing of another's;
// other roles are refused; a node without the e-mail channel says so.
func TestFailuresPage(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := events.NewReferralID()
	at := time.Date(2026, 12, 7, 9, 30, 0, 0, time.UTC)
	fl := &failureList{byOrg: map[string][]console.DeliveryFailure{
		"pt.apav": {
			{At: at, Org: "pt.apav", Kind: "offer", Referral: id, Placement: "p1", Code: 550, Attempts: 1},
			{At: at.Add(time.Hour), Org: "pt.apav", Kind: "digest", Code: 0, Attempts: 16, Temporary: true},
		},
		"pt.other": {{At: at, Org: "pt.other", Kind: "reminder", Referral: events.NewReferralID(), Placement: "p2", Code: 552, Attempts: 1}},
	}}
	withChannels(b, fl)
	olga := b.addPerson("olga", console.RoleOrgAdmin, "pt.apav")
	c := b.client()
	c.signIn(olga)
	r := c.get("/console/en/failures")
	if r.status != http.StatusOK || !strings.Contains(r.body, `id="failures-list"`) {
		t.Fatalf("failures page: %d\n%s", r.status, r.body)
	}
	for _, want := range []string{id, ">p1<", "SMTP 550", "Offer", "Refused", "Daily digest", "Kept failing", ">16<", "2026-12-07"} {
		if !strings.Contains(r.body, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	if strings.Index(r.body, "Daily digest") > strings.Index(r.body, "SMTP 550") {
		t.Errorf("the newest failure is not first")
	}
	if r := c.get("/console/pt/failures"); r.status != http.StatusOK || !strings.Contains(r.body, "Recusado") || !strings.Contains(r.body, "Resumo diário") {
		t.Errorf("in Portuguese: %d", r.status)
	}

	// Another organisation's administrator: nothing of pt.apav's.
	other := b.addPerson("otto", console.RoleOrgAdmin, "pt.amcv")
	co := b.client()
	co.signIn(other)
	r = co.get("/console/en/failures")
	if r.status != http.StatusOK || !strings.Contains(r.body, `id="failures-none"`) || strings.Contains(r.body, id) || strings.Contains(r.body, "SMTP 550") {
		t.Errorf("another organisation's page: %d\n%s", r.status, r.body)
	}
	fl.mu.Lock()
	asked := strings.Join(fl.asked, " ")
	fl.mu.Unlock()
	if asked != "pt.apav pt.apav pt.amcv" {
		t.Errorf("the console asked for the failures of %q, want only each administrator's own", asked)
	}

	// The directory's administrator sees every organisation's, with the
	// organisation.
	dora := b.addPerson("dora", console.RoleDirectoryAdmin, "")
	cd := b.client()
	cd.signIn(dora)
	r = cd.get("/console/en/failures")
	for _, want := range []string{id, "SMTP 550", "SMTP 552", "<code>pt.other</code>", "<code>pt.apav</code>", "Reminder"} {
		if !strings.Contains(r.body, want) {
			t.Errorf("the directory administrator's page lacks %q (status %d)", want, r.status)
		}
	}

	// A caseworker is refused.
	ana := b.addPerson("ana", console.RoleCaseworker, "pt.apav")
	ca := b.client()
	ca.signIn(ana)
	if r := ca.get("/console/en/failures"); r.status != http.StatusForbidden || strings.Contains(r.body, id) {
		t.Errorf("a caseworker: %d", r.status)
	}

	// Without the e-mail channel the page says so.
	b2 := setup(t)
	withChannels(b2, noChannel{})
	o2 := b2.addPerson("olga", console.RoleOrgAdmin, "pt.apav")
	c2 := b2.client()
	c2.signIn(o2)
	if r := c2.get("/console/en/failures"); r.status != http.StatusOK || !strings.Contains(r.body, `id="failures-off"`) {
		t.Errorf("without the e-mail channel: %d", r.status)
	}
}

// TestTimelineDeliveryFailed: the referrer's timeline shows the
// delivery.failed on its delivery subject, once, in its place; the
// offered organisation's page does not.
func TestTimelineDeliveryFailed(t *testing.T) {
	t.Parallel()
	b := setup(t)
	withChannels(b, &failureList{})
	ana := b.addPerson("ana", console.RoleCaseworker, "pt.apav")
	c := b.client()
	c.signIn(ana)
	id, offered := refer(t, b, c)
	if r := c.get("/console/en/referrals/" + id); strings.Contains(r.body, "Offer not delivered") {
		t.Fatalf("the timeline shows a failure before any")
	}
	notifyFailed(t, b, "pt.apav", id, "p1", offered)
	r := c.get("/console/en/referrals/" + id)
	if r.status != http.StatusOK || strings.Count(r.body, "Offer not delivered") != 1 || !strings.Contains(r.body, "SMTP 550") {
		t.Errorf("referrer's timeline: %d\n%s", r.status, r.body)
	}
	if r := c.get("/console/pt/referrals/" + id); !strings.Contains(r.body, "Oferta não entregue") || !strings.Contains(r.body, "não o recebeu por e-mail") {
		t.Errorf("in Portuguese: %d", r.status)
	}
	bea := b.addPerson("bea", console.RoleCaseworker, offered)
	cb := b.client()
	cb.signIn(bea)
	if r := cb.get("/console/en/referrals/" + id); r.status != http.StatusOK || strings.Contains(r.body, "Offer not delivered") {
		t.Errorf("the offered organisation's page: %d", r.status)
	}
}
