package email_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	gomail "github.com/wneessen/go-mail"

	"github.com/invictus-network/invictus/adapters/email"
	"github.com/invictus-network/invictus/events"
)

// BenchmarkDeliveryRate measures, against Mailpit in the same run, the
// messages per second of a raw SMTP send loop (one connection, messages
// of the size of an offer) and of the e-mail adapter: offers stored in
// DELIVERY, consumed, composed, sent, marked and acknowledged.
//
//	go test -run '^$' -bench DeliveryRate -benchtime 2000x ./adapters/email/
func BenchmarkDeliveryRate(b *testing.B) {
	bn := setup(b, email.Config{})
	b.Run("raw_smtp", func(b *testing.B) {
		cfg, _ := email.ParseSMTPURL(bn.mp.URL())
		c, err := gomail.NewClient(cfg.Host, gomail.WithPort(cfg.Port), gomail.WithTLSPortPolicy(gomail.NoTLS), gomail.WithPort(cfg.Port))
		if err != nil {
			b.Fatal(err)
		}
		conn, err := c.DialToSMTPClientWithContext(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		defer func() { _ = c.CloseWithSMTPClient(conn) }()
		text := strings.Repeat("A referral offer of a realistic size. ", 30)
		b.ResetTimer()
		start := time.Now()
		for i := range b.N {
			m := gomail.NewMsg()
			_ = m.From("referrals@node.test")
			_ = m.To("raw@raw.test")
			m.Subject(fmt.Sprintf("raw %d", i))
			m.SetMessageIDWithValue(fmt.Sprintf("raw.%d.%d@node.test", start.UnixNano(), i))
			m.SetBodyString(gomail.TypeTextPlain, text)
			m.AddAlternativeString(gomail.TypeTextHTML, "<p>"+text+"</p>")
			if err := c.SendWithSMTPClient(conn, m); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
	})
	b.Run("adapter", func(b *testing.B) {
		in := bn.start(fmt.Sprintf("bench-%d", b.N))
		base := in.metric("invictus_email_messages_total", "sent")
		deadline := time.Now().Add(time.Hour)
		b.ResetTimer()
		start := time.Now()
		for range b.N {
			bn.deliverOffer("pt.a1", deadline)
		}
		for in.metric("invictus_email_messages_total", "sent") < base+float64(b.N) {
			time.Sleep(time.Millisecond)
		}
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
		b.StopTimer()
		in.stop(b)
	})
}

// deliverOffer stores an offer to org in DELIVERY, as the routing
// service would, and returns the referral's id.
func (b *bundle) deliverOffer(org string, deadline time.Time) string {
	b.t.Helper()
	id := events.NewReferralID()
	p := events.SamplePayload(events.TypeReferralOffered).(*events.Offered)
	p.Organisation, p.Service, p.Referrer, p.Deadline = org, org+".support", "pt.ref", deadline
	ev, err := events.New(events.SourceRouting, id, p)
	if err != nil {
		b.t.Fatal(err)
	}
	subject, _ := events.DeliverySubject(org, id)
	m, err := events.ToNATS(subject, ev)
	if err != nil {
		b.t.Fatal(err)
	}
	msg := &nats.Msg{Subject: subject, Header: nats.Header(m.Header), Data: m.Data}
	msg.Header.Set(jetstream.MsgIDHeader, ev.ID()+"."+org)
	if _, err := b.js.PublishMsg(context.Background(), msg); err != nil {
		b.t.Fatal(err)
	}
	return id
}
