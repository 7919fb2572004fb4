package postgres_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/invictus-network/invictus/adapters/postgres"
	"github.com/invictus-network/invictus/events"
)

// The benchmarks report rows (or messages) per second as "rows/s", each
// adapter figure beside the raw figure of the machine measured the same
// way in the same run:
//
//	BenchmarkRelay            rows committed in the outbox -> published and acknowledged by JetStream, rows marked
//	BenchmarkRawInsert        plain single-row INSERT transactions into the same outbox table (the case system's rate)
//	BenchmarkRawPublishAsync  JetStream async publishes of the same messages, acknowledged
//	BenchmarkInbox            deliveries in DELIVERY -> rows committed in the inbox table, acknowledged
//	BenchmarkRawConsumeAck    pull-consume and acknowledge the same deliveries, no database
//	BenchmarkRawInsertBatch   multi-row INSERT of the same rows into the inbox table, 256 per transaction
//
// Run them with a fixed count, for example:
//
//	go test -run '^$' -bench . -benchtime 20000x ./adapters/postgres/

func reportRate(b *testing.B, n int, d time.Duration) {
	b.ReportMetric(float64(n)/d.Seconds(), "rows/s")
}

// bulkInsertRequested inserts n referral.requested rows quickly (not the
// case system's way: many rows per statement).
func bulkInsertRequested(b *testing.B, p *pgEnv, n int) {
	b.Helper()
	payload, _ := json.Marshal(events.SamplePayload(events.TypeReferralRequested))
	for done := 0; done < n; {
		k := min(1000, n-done)
		if _, err := p.pool.Exec(testCtx(b), `INSERT INTO `+p.q()+`.outbox (type, payload)
			SELECT $1, $2::jsonb FROM generate_series(1, $3)`, events.TypeReferralRequested, string(payload), k); err != nil {
			b.Fatal(err)
		}
		done += k
	}
}

func BenchmarkRelay(b *testing.B) {
	pg := newPG(b)
	pg.migrate()
	ns := newNATS(b)
	bulkInsertRequested(b, pg, b.N)
	r, err := postgres.NewRelay(pg.pool, ns.connect("relay"), postgres.RelayConfig{Org: testOrg, Schema: pg.schema})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	t0 := time.Now()
	run := start(b, r.Run)
	for pg.pending() > 0 {
		time.Sleep(2 * time.Millisecond)
	}
	d := time.Since(t0)
	b.StopTimer()
	_ = run.stop(b)
	reportRate(b, b.N, d)
}

func BenchmarkRawInsert(b *testing.B) {
	pg := newPG(b)
	pg.migrate()
	payload, _ := json.Marshal(events.SamplePayload(events.TypeReferralRequested))
	ctx := testCtx(b)
	conn, err := pg.pool.Acquire(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Release()
	b.ResetTimer()
	t0 := time.Now()
	for range b.N {
		if _, err := conn.Exec(ctx, `INSERT INTO `+pg.q()+`.outbox (type, payload) VALUES ($1, $2)`,
			events.TypeReferralRequested, payload); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b, b.N, time.Since(t0))
}

// requestedMsg returns the message the relay would publish for a row.
func requestedMsg(b *testing.B) *nats.Msg {
	b.Helper()
	ev, err := events.New(events.SourceOf(testOrg), events.NewReferralID(), events.SamplePayload(events.TypeReferralRequested))
	if err != nil {
		b.Fatal(err)
	}
	m, err := events.ToNATS("in.pt.test-org", ev)
	if err != nil {
		b.Fatal(err)
	}
	return &nats.Msg{Subject: m.Subject, Header: nats.Header(m.Header), Data: m.Data}
}

func BenchmarkRawPublishAsync(b *testing.B) {
	ns := newNATS(b)
	js, err := jetstream.New(ns.connect("raw"), jetstream.WithPublishAsyncMaxPending(postgres.RelayWindowDefault))
	if err != nil {
		b.Fatal(err)
	}
	msg := requestedMsg(b)
	ids := make([]string, b.N)
	for i := range ids {
		ids[i] = events.NewReferralID()
	}
	b.ResetTimer()
	t0 := time.Now()
	for i := range b.N {
		m := &nats.Msg{Subject: msg.Subject, Header: nats.Header{}, Data: msg.Data}
		for k, v := range msg.Header {
			m.Header[k] = v
		}
		if _, err := js.PublishMsgAsync(m, jetstream.WithMsgID(ids[i])); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		b.Fatal("publishes not acknowledged")
	}
	reportRate(b, b.N, time.Since(t0))
}

// publishDeliveries publishes n offers to the test organisation's delivery
// subjects.
func publishDeliveries(b *testing.B, ns *natsEnv, n int) {
	b.Helper()
	js, err := jetstream.New(ns.connect("deliveries"))
	if err != nil {
		b.Fatal(err)
	}
	for range n {
		ev, err := events.New(events.SourceRouting, events.NewReferralID(), events.SamplePayload(events.TypeReferralOffered))
		if err != nil {
			b.Fatal(err)
		}
		subject, _ := events.DeliverySubject(testOrg, ev.Subject())
		m, err := events.ToNATS(subject, ev)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := js.PublishMsgAsync(&nats.Msg{Subject: m.Subject, Header: nats.Header(m.Header), Data: m.Data},
			jetstream.WithMsgID(ev.ID())); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		b.Fatal("deliveries not acknowledged")
	}
}

func BenchmarkInbox(b *testing.B) {
	pg := newPG(b)
	pg.migrate()
	ns := newNATS(b)
	publishDeliveries(b, ns, b.N)
	in, err := postgres.NewInbox(pg.pool, ns.connect("inbox"), postgres.InboxConfig{Org: testOrg, Schema: pg.schema})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	t0 := time.Now()
	run := start(b, in.Run)
	for pg.count(`SELECT count(*) FROM `+pg.q()+`.inbox`) < b.N {
		time.Sleep(2 * time.Millisecond)
	}
	d := time.Since(t0)
	b.StopTimer()
	_ = run.stop(b)
	reportRate(b, b.N, d)
}

func BenchmarkRawConsumeAck(b *testing.B) {
	ns := newNATS(b)
	publishDeliveries(b, ns, b.N)
	js, err := jetstream.New(ns.connect("consume"))
	if err != nil {
		b.Fatal(err)
	}
	ctx := testCtx(b)
	cons, err := js.CreateConsumer(ctx, postgres.StreamDelivery, jetstream.ConsumerConfig{Durable: "raw",
		AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 4 * postgres.BatchSizeDefault})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	t0 := time.Now()
	it, err := cons.Messages(jetstream.PullMaxMessages(2 * postgres.BatchSizeDefault))
	if err != nil {
		b.Fatal(err)
	}
	defer it.Stop()
	for range b.N {
		m, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			b.Fatal(err)
		}
		if err := m.Ack(); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b, b.N, time.Since(t0))
}

func BenchmarkRawInsertBatch(b *testing.B) {
	pg := newPG(b)
	pg.migrate()
	ev, err := events.New(events.SourceRouting, events.NewReferralID(), events.SamplePayload(events.TypeReferralOffered))
	if err != nil {
		b.Fatal(err)
	}
	payload := string(ev.Data())
	ctx := context.Background()
	b.ResetTimer()
	t0 := time.Now()
	for done := 0; done < b.N; {
		k := min(postgres.BatchSizeDefault, b.N-done)
		ids := make([]string, k)
		for i := range ids {
			ids[i] = events.NewReferralID()
		}
		if _, err := pg.pool.Exec(ctx, `INSERT INTO `+pg.q()+`.inbox (event_id, type, source, subject, referral_id, payload, event_time, stream_seq)
			SELECT id, $2, $3, id, id, $4::jsonb, now(), 0 FROM unnest($1::text[]) AS d (id)
			ON CONFLICT (event_id) DO NOTHING`, ids, events.TypeReferralOffered, events.SourceRouting, payload); err != nil {
			b.Fatal(err)
		}
		done += k
	}
	reportRate(b, b.N, time.Since(t0))
}
