package postgres_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/invictus-network/invictus/adapters/postgres"
	"github.com/invictus-network/invictus/events"
)

// relayBundle is what most relay tests need.
type relayBundle struct {
	pg  *pgEnv
	ns  *natsEnv
	nc  *nats.Conn // of js
	js  jetstream.JetStream
	raw *rawCollector
}

func newRelayBundle(t *testing.T) *relayBundle {
	t.Helper()
	pg := newPG(t)
	pg.migrate()
	ns := newNATS(t)
	subject, _ := events.InboundSubject(testOrg)
	nc := ns.connect("test-js")
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	return &relayBundle{pg: pg, ns: ns, nc: nc, js: js, raw: collectRaw(t, ns.connect("raw"), subject)}
}

// newRelay builds a relay of the bundle's outbox on a connection of its own.
func (b *relayBundle) newRelay(t *testing.T, cfg postgres.RelayConfig) *postgres.Relay {
	t.Helper()
	r, err := postgres.NewRelay(b.pg.pool, b.ns.connect("relay"), cfg)
	if err != nil {
		t.Fatalf("NewRelay: %v", err)
	}
	return r
}

func (b *relayBundle) waitAllRelayed(t *testing.T) {
	t.Helper()
	eventually(t, "outbox rows still pending", func() bool { return b.pg.pending() == 0 })
}

// waitRaw waits until the raw subscriber has read n publishes: a row is
// marked published on its PubAck, which can reach the relay before the
// same message reaches a subscriber on another connection.
func (b *relayBundle) waitRaw(t *testing.T, n int) {
	t.Helper()
	eventually(t, "the raw subscriber did not read every publish", func() bool { return len(b.raw.get()) >= n })
}

// inboundIDs returns the ids stored in INBOUND for the test organisation.
func (b *relayBundle) inboundIDs(t *testing.T) []string {
	t.Helper()
	subject, _ := events.InboundSubject(testOrg)
	return streamIDs(t, b.js, postgres.StreamInbound, subject)
}

func TestRelayPublishesRowsInOrder(t *testing.T) {
	t.Parallel()
	b := newRelayBundle(t)
	before := b.pg.insertRequested(250)
	r := b.newRelay(t, b.pg.relayConfig())
	start(t, r.Run)
	after := b.pg.insertRequested(250)
	want := append(before, after...)
	b.waitAllRelayed(t)

	b.waitRaw(t, len(want))
	assertExactlyOnceInOrder(t, "published", b.raw.get(), want)
	assertExactlyOnceInOrder(t, "INBOUND", b.inboundIDs(t), want)
	if n := b.pg.count(`SELECT count(*) FROM ` + b.pg.q() + `.outbox WHERE published_at IS NULL OR attempts <> 1 OR last_error IS NOT NULL`); n != 0 {
		t.Errorf("%d rows not marked published after one attempt", n)
	}
	if !r.Active() {
		t.Error("the only relay is not active")
	}
	if err := r.Health(); err != nil {
		t.Errorf("Health: %v", err)
	}

	// The message is the row as a CloudEvent of the organisation.
	ctx := testCtx(t)
	stream, err := b.js.Stream(ctx, postgres.StreamInbound)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := stream.GetLastMsgForSubject(ctx, "in.pt.test-org")
	if err != nil {
		t.Fatal(err)
	}
	env, err := events.Decode(events.Message{Subject: raw.Subject, Header: raw.Header, Data: raw.Data})
	if err != nil {
		t.Fatalf("the published message does not decode: %v", err)
	}
	last := want[len(want)-1]
	var createdAt time.Time
	if err := b.pg.pool.QueryRow(ctx, `SELECT created_at FROM `+b.pg.q()+`.outbox WHERE id = $1`, last).Scan(&createdAt); err != nil {
		t.Fatal(err)
	}
	e := env.Event
	if e.ID() != last || e.Source() != "/orgs/"+testOrg || e.Type() != events.TypeReferralRequested ||
		e.Subject() != last || !e.Time().Equal(createdAt) || raw.Header.Get(jetstream.MsgIDHeader) != events.MsgID(e.Source(), last) {
		t.Errorf("published event: id %s source %s type %s subject %s time %s msg-id %s; want the row %s created at %s",
			e.ID(), e.Source(), e.Type(), e.Subject(), e.Time(), raw.Header.Get(jetstream.MsgIDHeader), last, createdAt)
	}
	if _, ok := env.Payload.(*events.Requested); !ok {
		t.Errorf("payload is %T", env.Payload)
	}
}

func TestRelayWakesOnNotify(t *testing.T) {
	t.Parallel()
	b := newRelayBundle(t)
	cfg := b.pg.relayConfig()
	cfg.PollInterval = time.Hour // only a notification can wake it
	r := b.newRelay(t, cfg)
	start(t, r.Run)
	eventually(t, "relay not active", r.Active)
	ids := b.pg.insertRequested(3)
	eventually(t, "row not relayed: the notification did not wake the relay", func() bool { return len(b.raw.get()) == 3 })
	assertExactlyOnceInOrder(t, "published", b.raw.get(), ids)
}

func TestRelayPollsWithoutNotify(t *testing.T) {
	t.Parallel()
	b := newRelayBundle(t)
	if _, err := b.pg.pool.Exec(testCtx(t), `ALTER TABLE `+b.pg.q()+`.outbox DISABLE TRIGGER outbox_notify`); err != nil {
		t.Fatal(err)
	}
	r := b.newRelay(t, b.pg.relayConfig()) // polls every 200 ms
	start(t, r.Run)
	eventually(t, "relay not active", r.Active)
	ids := b.pg.insertRequested(3)
	eventually(t, "rows not relayed by polling", func() bool { return len(b.raw.get()) == 3 })
	assertExactlyOnceInOrder(t, "published", b.raw.get(), ids)
}

func TestRelayRejectedRowsDoNotBlock(t *testing.T) {
	t.Parallel()
	b := newRelayBundle(t)
	bad := events.SamplePayload(events.TypeReferralRequested).(*events.Requested)
	bad.Needs = nil
	ids := b.pg.insert(
		requestedRow(),
		outboxRow{typ: "invictus.referral.bogus.v1", referralID: events.NewReferralID(), payload: map[string]any{"x": 1}},
		outboxRow{typ: events.TypeReferralRequested, payload: bad},
		outboxRow{typ: events.TypeReferralAccepted, referralID: events.NewReferralID(), payload: map[string]any{"placement": "p1", "extra": true}},
		outboxRow{typ: events.TypeReferralAccepted, payload: map[string]any{"placement": "p1"}}, // no referral id
		outboxRow{typ: events.TypeReferralAccepted, referralID: events.NewReferralID(), payload: map[string]any{"placement": "p1"}},
	)
	r := b.newRelay(t, b.pg.relayConfig())
	start(t, r.Run)
	b.waitAllRelayed(t)

	b.waitRaw(t, 2)
	assertExactlyOnceInOrder(t, "published", b.raw.get(), []string{ids[0], ids[5]})
	wantErr := map[string]string{
		ids[1]: "unknown",
		ids[2]: "/data/needs",
		ids[3]: "/data/extra",
		ids[4]: "/subject",
	}
	for id, frag := range wantErr {
		var lastErr *string
		var rejected bool
		if err := b.pg.pool.QueryRow(testCtx(t), `SELECT last_error, rejected_at IS NOT NULL FROM `+b.pg.q()+`.outbox WHERE id = $1`, id).Scan(&lastErr, &rejected); err != nil {
			t.Fatal(err)
		}
		if !rejected || lastErr == nil || !strings.Contains(*lastErr, frag) {
			t.Errorf("row %s: rejected %v, last_error %v; want rejected with an error naming %q", id, rejected, deref(lastErr), frag)
		}
	}
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

func TestRelayBatchNeedsTheHeadOfTheQueue(t *testing.T) {
	t.Parallel()
	b := newRelayBundle(t)
	ids := b.pg.insertRequested(10)
	r := b.newRelay(t, b.pg.relayConfig())
	ctx := testCtx(t)

	// Another transaction (another relay) holds the oldest row.
	tx, err := b.pg.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT 1 FROM `+b.pg.q()+`.outbox WHERE id = $1 FOR UPDATE`, ids[0]); err != nil {
		t.Fatal(err)
	}
	if n, err := postgres.RelayBatch(ctx, r); !errors.Is(err, postgres.ErrNotHead) || n != 0 {
		t.Fatalf("batch without the head row = %d, %v; want 0, ErrNotHead", n, err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}

	// A row in the middle is held: the batch stops before it.
	tx, err = b.pg.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT 1 FROM `+b.pg.q()+`.outbox WHERE id = $1 FOR UPDATE`, ids[4]); err != nil {
		t.Fatal(err)
	}
	if n, err := postgres.RelayBatch(ctx, r); err != nil || n != 4 {
		t.Fatalf("batch with row 5 held = %d, %v; want the 4 rows before it", n, err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := postgres.RelayBatch(ctx, r); err != nil || n != 6 {
		t.Fatalf("batch after the release = %d, %v; want the 6 rows left", n, err)
	}
	b.waitRaw(t, len(ids))
	assertExactlyOnceInOrder(t, "published", b.raw.get(), ids)
}

func TestTwoRelaysOnOneOutbox(t *testing.T) {
	t.Parallel()
	b := newRelayBundle(t)
	cfg := b.pg.relayConfig()
	cfg.BatchSize = 20
	ra, rb := b.newRelay(t, cfg), b.newRelay(t, cfg)
	runA, runB := start(t, ra.Run), start(t, rb.Run)
	eventually(t, "no relay became active", func() bool { return ra.Active() || rb.Active() })

	// Rows arrive while the relays run.
	var want []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 40 {
			want = append(want, b.pg.insertRequested(25)...)
		}
	}()
	eventually(t, "nothing relayed", func() bool { return len(b.raw.get()) >= 300 })
	if ra.Active() && rb.Active() {
		t.Error("both relays are active at once")
	}
	// The active relay stops; the standby takes over.
	first, second := ra, rb
	stop := runA
	if rb.Active() {
		first, second, stop = rb, ra, runB
	}
	if err := stop.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if first.Active() {
		t.Error("a stopped relay reports itself active")
	}
	eventually(t, "the standby did not take over", second.Active)
	<-done
	b.waitAllRelayed(t)

	b.waitRaw(t, len(want))
	assertExactlyOnceInOrder(t, "published", b.raw.get(), want)
	assertExactlyOnceInOrder(t, "INBOUND", b.inboundIDs(t), want)
}

func TestNewRelayNeedsNoReconnectBuffer(t *testing.T) {
	t.Parallel()
	pg := newPG(t)
	ns := newNATS(t)
	nc, err := nats.Connect(ns.url())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := postgres.NewRelay(pg.pool, nc, postgres.RelayConfig{Org: testOrg}); err == nil {
		t.Error("NewRelay accepted a connection with a reconnect buffer")
	}
	if _, err := postgres.NewRelay(pg.pool, ns.connect("ok"), postgres.RelayConfig{Org: "not an org"}); err == nil || !strings.Contains(err.Error(), "Org") {
		t.Errorf("NewRelay with a bad Org = %v, want an error naming Org", err)
	}
}

func TestRelayMetrics(t *testing.T) {
	t.Parallel()
	b := newRelayBundle(t)
	m, err := postgres.NewMetrics(nil, b.pg.schema)
	if err != nil {
		t.Fatal(err)
	}
	cfg := b.pg.relayConfig()
	cfg.Metrics = m
	b.pg.insertRequested(7)
	b.pg.insert(outboxRow{typ: "invictus.nope.v1", referralID: events.NewReferralID(), payload: map[string]any{}})
	r := b.newRelay(t, cfg)
	run := start(t, r.Run)
	b.waitAllRelayed(t)
	// The counters are added just after the rows' commit, which the wait
	// above may see first: poll them too.
	eventually(t, "outbox_relayed_total 7 and outbox_rejected_total 1", func() bool {
		return metricValue(t, m.OutboxRelayed) >= 7 && metricValue(t, m.OutboxRejected) >= 1
	})
	if got := metricValue(t, m.OutboxRelayed); got != 7 {
		t.Errorf("outbox_relayed_total = %v, want 7", got)
	}
	if got := metricValue(t, m.OutboxRejected); got != 1 {
		t.Errorf("outbox_rejected_total = %v, want 1", got)
	}
	if got := metricValue(t, m.RelayLag); got != 7 {
		t.Errorf("relay lag histogram has %v samples, want 7", got)
	}
	eventually(t, "relay_active gauge not 1", func() bool { return metricValue(t, m.RelayActive) == 1 })
	_ = run.stop(t)
	if got := metricValue(t, m.RelayActive); got != 0 {
		t.Errorf("relay_active = %v after stop", got)
	}
}
