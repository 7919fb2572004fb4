package email_test

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/invictus-network/invictus/adapters/email"
	"github.com/invictus-network/invictus/adapters/natsjs"
	"github.com/invictus-network/invictus/directory"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/internal/mailpit"
	"github.com/invictus-network/invictus/internal/testenv"
	"github.com/invictus-network/invictus/internal/testnet"
	"github.com/invictus-network/invictus/referral"
	"github.com/invictus-network/invictus/routing"
	"github.com/invictus-network/invictus/seal"
)

// The ports the JetStream adapter implements.
var (
	_ email.Deliveries  = (*natsjs.EmailDeliveries)(nil)
	_ email.Store       = (*natsjs.RevStore)(nil)
	_ email.CommandSink = (*natsjs.InboundSink)(nil)
	_ email.Notices     = (*natsjs.DeliveryNotices)(nil)
	_ email.Outcomes    = (*natsjs.CommandOutcomes)(nil)
	_ email.Timeline    = (*natsjs.ReferralTimeline)(nil)
	_ email.Directory   = (*directory.View)(nil)
)

// testOrg is an organisation of the test directory: it receives by
// e-mail at <slug>@<slug>.test, in lang, and has one service for needs.
type testOrg struct {
	id    string
	lang  string
	needs []string
}

// The referrer writes Portuguese, the first candidate French, the
// second Dutch; the candidates tie and are offered in id order.
var (
	needsOffered = []string{events.NeedSupportEmotional}
	testOrgs     = []testOrg{
		{"pt.ref", "pt", []string{events.NeedInfoCase}},
		{"pt.a1", "fr", needsOffered},
		{"pt.a2", "nl", needsOffered},
	}
)

func addressOf(org string) string {
	slug := org[strings.IndexByte(org, '.')+1:]
	return slug + "@" + slug + ".test"
}

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer = testenv.SyncBuffer

// bundle is a network for one test: an embedded NATS server with the
// streams, a routing service, Mailpit, and e-mail adapters serving their
// pages over HTTP.
type bundle struct {
	t    testing.TB
	srv  *natsjs.Server
	nc   *nats.Conn
	js   jetstream.JetStream
	bus  *natsjs.Bus
	view *directory.View
	mp   *mailpit.Server
	keys map[string]seal.Key
	logs *syncBuffer
	log  *slog.Logger
	cfg  email.Config
	// smtpURL and roots, when set, replace Mailpit's plain URL and the
	// system's roots (the TLS tests).
	smtpURL string
	roots   *x509.CertPool
}

// instance is one running e-mail adapter.
type instance struct {
	a      *email.Adapter
	reg    *prometheus.Registry
	web    *httptest.Server
	cancel context.CancelFunc
	done   chan error
}

func setup(t testing.TB, cfg email.Config, mailpitArgs ...string) *bundle {
	t.Helper()
	mp := mailpit.Start(t, mailpitArgs...)
	b := &bundle{t: t, mp: mp, view: directory.NewView(), keys: map[string]seal.Key{}, logs: &syncBuffer{}, cfg: cfg}
	b.log = slog.New(slog.NewTextHandler(b.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	b.srv, b.nc, b.js = testnet.Plain(t, "")
	b.view.Load(b.directory(), 1)
	b.bus = testnet.RunRouter(t, b.srv, b.view, natsjs.NodeConfig{
		Bus:     natsjs.BusConfig{Logger: b.log},
		Service: routing.ServiceConfig{Logger: b.log, Deadlines: referral.Deadlines{Urgent: time.Hour}},
		Router:  natsjs.RouterConfig{Logger: b.log},
	}).Bus
	return b
}

func (b *bundle) directory() *directory.Directory {
	b.t.Helper()
	d := &directory.Directory{}
	for _, o := range testOrgs {
		k, err := seal.GenerateKey()
		if err != nil {
			b.t.Fatal(err)
		}
		b.keys[o.id] = k
		d.Organisations = append(d.Organisations, directory.Organisation{
			ID: o.id, Name: "Org " + o.id, Country: "pt", Languages: []string{o.lang},
			ReferralContact: directory.Contact{Role: "Referral desk", Email: addressOf(o.id)},
			ReferralChannel: directory.ReferralChannelEmail, AgeRecipient: k.Recipient, Synthetic: true,
		})
		d.Services = append(d.Services, directory.Service{
			ID: o.id + ".support", Organisation: o.id, Name: "Support", Status: directory.StatusActive,
			Needs: o.needs, Languages: []string{"pt"}, Channels: []string{events.ChannelPhone},
			Area:     directory.ServiceArea{Countries: []string{"pt"}, Remote: true},
			Hours:    directory.Schedule{TimeZone: "Europe/Lisbon", Always: true},
			Capacity: directory.Capacity{Status: "accepting"},
		})
	}
	d.Sort()
	if err := d.Validate(); err != nil {
		b.t.Fatal(err)
	}
	return d
}

// start starts an e-mail adapter named holder.
func (b *bundle) start(holder string) *instance {
	b.t.Helper()
	ctx := testenv.Context(b.t)
	state, marks, err := natsjs.EnsureEmailBuckets(ctx, b.js, natsjs.StreamsConfig{})
	if err != nil {
		b.t.Fatal(err)
	}
	u := b.smtpURL
	if u == "" {
		u = b.mp.URL()
	}
	smtpCfg, err := email.ParseSMTPURL(u)
	if err != nil {
		b.t.Fatal(err)
	}
	smtpCfg.RootCAs = b.roots
	mailer, err := email.NewMailer(smtpCfg)
	if err != nil {
		b.t.Fatal(err)
	}
	in := &instance{reg: prometheus.NewRegistry(), done: make(chan error, 1)}
	h := http.NotFoundHandler()
	var hmu sync.Mutex
	in.web = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hmu.Lock()
		hh := h
		hmu.Unlock()
		hh.ServeHTTP(w, r)
	}))
	b.t.Cleanup(in.web.Close)
	cfg := b.cfg
	cfg.From, cfg.PublicURL, cfg.Holder = "INVICTUS <referrals@node.test>", in.web.URL, holder
	cfg.Registerer, cfg.Logger = in.reg, b.log.With(slog.String("holder", holder))
	if cfg.LeaseTTL == 0 {
		// Long enough that a renewal slowed by a loaded machine still
		// leaves a third of it (a send starts only then).
		cfg.LeaseTTL = 3 * time.Second
	}
	if cfg.Backoff == 0 {
		cfg.Backoff, cfg.BackoffMax = 50*time.Millisecond, 400*time.Millisecond
	}
	in.a, err = email.New(ctx, email.Deps{
		Mailer: mailer, Deliveries: natsjs.NewEmailDeliveries(b.js, b.log), State: state, Marks: marks,
		Commands: natsjs.NewInboundSink(b.js), Outcomes: natsjs.NewCommandOutcomes(b.js), Notices: natsjs.NewDeliveryNotices(b.js),
		Timeline: natsjs.NewReferralTimeline(b.bus), Directory: b.view,
	}, cfg)
	if err != nil {
		b.t.Fatal(err)
	}
	hmu.Lock()
	h = in.a.Handler()
	hmu.Unlock()
	rctx, rcancel := context.WithCancel(context.Background())
	in.cancel = rcancel
	go func() { in.done <- in.a.Run(rctx) }()
	b.t.Cleanup(func() { in.stop(b.t) })
	return in
}

// stop stops the adapter and waits for it.
func (in *instance) stop(t testing.TB) {
	if in.cancel == nil {
		return
	}
	in.cancel()
	in.cancel = nil
	if err := testenv.Recv(t, "the e-mail adapter to stop", in.done); err != nil {
		t.Errorf("email Run: %v", err)
	}
}

// metric returns the value of a counter or gauge of the instance with
// the label result (or no label when result is "").
func (in *instance) metric(name, result string) float64 {
	mfs, _ := in.reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			ok := result == ""
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == result {
					ok = true
				}
			}
			if !ok {
				continue
			}
			if m.Counter != nil {
				return m.Counter.GetValue()
			}
			return m.Gauge.GetValue()
		}
	}
	return 0
}

// refer sends a referral.requested from pt.ref for needs and returns
// its id.
func (b *bundle) refer(needs ...string) string {
	b.t.Helper()
	id := events.NewReferralID()
	b.send("pt.ref", id, &events.Requested{
		Profile: events.Profile{Needs: needs, Urgency: events.UrgencyUrgent, Location: events.Location{Country: "pt", Region: "PT17"},
			Languages: []string{"pt"}, AgeBand: "adult", Channels: []string{events.ChannelPhone}},
		Consent: events.Consent{Referral: true, ShareData: true, GivenAt: time.Now().Add(-time.Minute).UTC(), Method: "verbal", RecordedBy: "test-st0001"},
	})
	return id
}

// send publishes a command of org.
func (b *bundle) send(org, referralID string, p events.Payload) string {
	b.t.Helper()
	ev, err := events.New(events.SourceOf(org), referralID, p)
	if err != nil {
		b.t.Fatalf("build %s: %v", p.EventType(), err)
	}
	subject, _ := events.InboundSubject(org)
	m, err := events.ToNATS(subject, ev)
	if err != nil {
		b.t.Fatal(err)
	}
	if err := natsjs.NewInboundSink(b.js).Submit(context.Background(), org, m); err != nil {
		b.t.Fatal(err)
	}
	return ev.ID()
}

// state folds the referral's log.
func (b *bundle) state(id string) referral.State {
	b.t.Helper()
	evs, err := natsjs.NewReferralTimeline(b.bus).Events(context.Background(), id)
	if err != nil {
		b.t.Fatal(err)
	}
	st, err := referral.Fold(evs)
	if err != nil {
		b.t.Fatal(err)
	}
	return st
}

// waitFor polls cond until it holds: the test binary's timeout, not a
// clock, bounds the wait (see testenv.Await).
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	testenv.Await(t, what, cond)
}

// mail waits for the message to org whose subject contains subject and
// returns it.
func (b *bundle) mail(org, subject string) mailpit.Message {
	b.t.Helper()
	var found mailpit.Message
	waitFor(b.t, fmt.Sprintf("a message to %s about %q", org, subject), func() bool {
		ms, err := b.mp.Messages()
		if err != nil {
			return false
		}
		for _, m := range ms {
			if strings.Contains(m.Subject, subject) && slices.ContainsFunc(m.To, func(a mailpit.Address) bool { return a.Address == addressOf(org) }) {
				found, err = b.mp.Message(m.ID)
				return err == nil
			}
		}
		return false
	})
	return found
}

var reLink = regexp.MustCompile(`https?://[^\s"<>]+/mail/link/[A-Za-z0-9_.-]+`)

// links returns the action links of a message's text, accept first.
func links(t testing.TB, m mailpit.Message) (accept, decline string) {
	t.Helper()
	ls := reLink.FindAllString(m.Text, -1)
	if len(ls) != 2 {
		t.Fatalf("want 2 links in the message, found %d:\n%s", len(ls), m.Text)
	}
	return ls[0], ls[1]
}

// page fetches a link page with method and form.
func page(t testing.TB, method, link, form string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, link, strings.NewReader(form))
	if err != nil {
		t.Fatal(err)
	}
	if form != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(body)
}
