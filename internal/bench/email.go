package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	gomail "github.com/wneessen/go-mail"

	"github.com/invictus-network/invictus/adapters/email"
	"github.com/invictus-network/invictus/adapters/natsjs"
	"github.com/invictus-network/invictus/directory"
	"github.com/invictus-network/invictus/events"
)

// EmailMessagesDefault is how many messages each side of the e-mail
// bench sends.
const EmailMessagesDefault = 500

// EmailConfig configures [Email].
type EmailConfig struct {
	// SMTPURL is the server both sides send to (a test server such as
	// Mailpit: it receives 2 × Messages messages). Required.
	SMTPURL string
	// Messages each side sends. Default [EmailMessagesDefault].
	Messages int
	// Wait bounds the adapter's run. Default [WaitDefault].
	Wait time.Duration
	// Logger receives the adapter's logs. Default discards.
	Logger *slog.Logger
}

// EmailResult is what [Email] measured, in one run.
type EmailResult struct {
	Messages int
	// RawPerS and RawCPUms: a raw SMTP send loop (one connection, go-mail
	// messages of an offer's size): messages per second and CPU
	// milliseconds of this process per message.
	RawPerS, RawCPUms float64
	// AdapterPerS and AdapterCPUms: the e-mail adapter, offers stored in
	// DELIVERY, consumed, composed, sent, marked and acknowledged.
	AdapterPerS, AdapterCPUms float64
	// Load is the load average during the run.
	Load string
}

// Email measures the e-mail adapter's delivery rate against a raw SMTP
// send loop to the same server, in the same run, on an embedded NATS
// server in a temporary directory.
func Email(ctx context.Context, cfg EmailConfig) (EmailResult, error) {
	if cfg.Messages == 0 {
		cfg.Messages = EmailMessagesDefault
	}
	if cfg.Wait == 0 {
		cfg.Wait = WaitDefault
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	res := EmailResult{Messages: cfg.Messages}
	if cfg.Messages < 1 || cfg.Messages > 1_000_000 {
		return res, fmt.Errorf("bench: %d messages: want 1 to 1000000", cfg.Messages)
	}
	smtpCfg, err := email.ParseSMTPURL(cfg.SMTPURL)
	if err != nil {
		return res, err
	}
	if res.RawPerS, res.RawCPUms, err = rawSMTP(ctx, smtpCfg, cfg.Messages); err != nil {
		return res, fmt.Errorf("bench: raw SMTP loop: %w", err)
	}
	if res.AdapterPerS, res.AdapterCPUms, err = adapterRun(ctx, cfg, smtpCfg); err != nil {
		return res, fmt.Errorf("bench: e-mail adapter: %w", err)
	}
	res.Load = loadAverage()
	return res, nil
}

// benchText is the body of a raw message: about an offer's size.
var benchText = strings.Repeat("A referral offer of a realistic size. ", 30)

func rawSMTP(ctx context.Context, sc email.SMTPConfig, n int) (perS, cpuMs float64, err error) {
	m, err := email.NewMailer(sc)
	if err != nil {
		return 0, 0, err
	}
	defer m.Close()
	stamp := time.Now().UnixNano()
	cpu0, start := processCPU(), time.Now()
	for i := range n {
		msg := gomail.NewMsg()
		_ = msg.From("referrals@bench.invalid")
		_ = msg.To("raw@bench.invalid")
		msg.Subject(fmt.Sprintf("raw %d", i))
		msg.SetMessageIDWithValue(fmt.Sprintf("raw.%d.%d@bench.invalid", stamp, i))
		msg.SetBodyString(gomail.TypeTextPlain, benchText)
		msg.AddAlternativeString(gomail.TypeTextHTML, "<p>"+benchText+"</p>")
		if err := m.Send(ctx, msg); err != nil {
			return 0, 0, err
		}
	}
	el := time.Since(start)
	return float64(n) / el.Seconds(), float64((processCPU() - cpu0).Milliseconds()) / float64(n), nil
}

func adapterRun(ctx context.Context, cfg EmailConfig, sc email.SMTPConfig) (perS, cpuMs float64, err error) {
	dir, err := os.MkdirTemp("", "invictus-bench-email-")
	if err != nil {
		return 0, 0, err
	}
	defer os.RemoveAll(dir)
	srv, err := natsjs.StartServer(ctx, natsjs.ServerConfig{StoreDir: dir, DontListen: true}, nil)
	if err != nil {
		return 0, 0, err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		err = errors.Join(err, srv.Shutdown(sctx))
	}()
	nc, err := srv.Connect(ctx, nats.Name("bench-email"))
	if err != nil {
		return 0, 0, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return 0, 0, err
	}
	if err := natsjs.EnsureStreams(ctx, js, natsjs.StreamsConfig{}); err != nil {
		return 0, 0, err
	}
	state, marks, err := natsjs.EnsureEmailBuckets(ctx, js, natsjs.StreamsConfig{})
	if err != nil {
		return 0, 0, err
	}
	bus, err := natsjs.NewBus(nc, natsjs.BusConfig{Logger: cfg.Logger})
	if err != nil {
		return 0, 0, err
	}
	view := directory.NewView()
	d := &directory.Directory{}
	for _, id := range []string{"pt.bench-ref", "pt.bench-mail"} {
		d.Organisations = append(d.Organisations, directory.Organisation{ID: id, Name: id, Country: "pt", Languages: []string{"pt"},
			ReferralContact: directory.Contact{Role: "Referral desk", Email: strings.TrimPrefix(id, "pt.") + "@bench.invalid"},
			ReferralChannel: directory.ReferralChannelEmail, Synthetic: true})
		d.Services = append(d.Services, directory.Service{ID: id + ".support", Organisation: id, Name: "Support", Status: directory.StatusActive,
			Needs: []string{events.NeedSupportEmotional}, Languages: []string{"pt"}, Channels: []string{events.ChannelPhone},
			Area: directory.ServiceArea{Countries: []string{"pt"}, Remote: true}, Hours: directory.Schedule{TimeZone: "Europe/Lisbon", Always: true},
			Capacity: directory.Capacity{Status: "accepting"}})
	}
	d.Sort()
	if err := d.Validate(); err != nil {
		return 0, 0, err
	}
	view.Load(d, 1)
	mailer, err := email.NewMailer(sc)
	if err != nil {
		return 0, 0, err
	}
	reg := prometheus.NewRegistry()
	a, err := email.New(ctx, email.Deps{
		Mailer: mailer, Deliveries: natsjs.NewEmailDeliveries(js, cfg.Logger), State: state, Marks: marks,
		Commands: natsjs.NewInboundSink(js), Outcomes: natsjs.NewCommandOutcomes(js), Notices: natsjs.NewDeliveryNotices(js),
		Timeline: natsjs.NewReferralTimeline(bus), Directory: view,
	}, email.Config{From: "INVICTUS <referrals@bench.invalid>", PublicURL: "https://bench.invalid", Registerer: reg, Logger: cfg.Logger})
	if err != nil {
		return 0, 0, err
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(rctx) }()
	defer func() {
		cancel()
		err = errors.Join(err, <-done)
	}()
	deadline := time.Now().Add(24 * time.Hour)
	cpu0, start := processCPU(), time.Now()
	for range cfg.Messages {
		if err := publishOffer(ctx, js, "pt.bench-mail", "pt.bench-ref", deadline); err != nil {
			return 0, 0, err
		}
	}
	wctx, wcancel := context.WithTimeout(ctx, cfg.Wait)
	defer wcancel()
	for sent(reg) < float64(cfg.Messages) {
		select {
		case <-wctx.Done():
			return 0, 0, fmt.Errorf("%v of %d sent within %s", sent(reg), cfg.Messages, cfg.Wait)
		case <-time.After(5 * time.Millisecond):
		}
	}
	el := time.Since(start)
	return float64(cfg.Messages) / el.Seconds(), float64((processCPU() - cpu0).Milliseconds()) / float64(cfg.Messages), nil
}

// publishOffer stores an offer to org in DELIVERY, as the routing
// service does.
func publishOffer(ctx context.Context, js jetstream.JetStream, org, referrer string, deadline time.Time) error {
	id := events.NewReferralID()
	p := events.SamplePayload(events.TypeReferralOffered).(*events.Offered)
	p.Organisation, p.Service, p.Referrer, p.Deadline = org, org+".support", referrer, deadline
	ev, err := events.New(events.SourceRouting, id, p)
	if err != nil {
		return err
	}
	subject, _ := events.DeliverySubject(org, id)
	m, err := events.ToNATS(subject, ev)
	if err != nil {
		return err
	}
	msg := &nats.Msg{Subject: subject, Header: nats.Header(m.Header), Data: m.Data}
	msg.Header.Set(jetstream.MsgIDHeader, ev.ID()+"."+org)
	_, err = js.PublishMsg(ctx, msg)
	return err
}

// sent reads invictus_email_messages_total{result="sent"} from reg.
func sent(reg *prometheus.Registry) float64 {
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != "invictus_email_messages_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == "sent" {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
