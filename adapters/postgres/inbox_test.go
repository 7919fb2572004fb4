package postgres_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/invictus-network/invictus/adapters/postgres"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/seal"
)

// inboxBundle is what the inbox tests need.
type inboxBundle struct {
	pg *pgEnv
	ns *natsEnv
	nc *nats.Conn
	js jetstream.JetStream
}

func newInboxBundle(t *testing.T) *inboxBundle {
	t.Helper()
	pg := newPG(t)
	pg.migrate()
	ns := newNATS(t)
	nc := ns.connect("test-js")
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	return &inboxBundle{pg: pg, ns: ns, nc: nc, js: js}
}

func (b *inboxBundle) inboxConfig() postgres.InboxConfig {
	return postgres.InboxConfig{Org: testOrg, Schema: b.pg.schema, AckWait: 2 * time.Second,
		RetryDelay: 50 * time.Millisecond, BackoffMin: 10 * time.Millisecond, BackoffMax: 200 * time.Millisecond}
}

func (b *inboxBundle) newInbox(t *testing.T, cfg postgres.InboxConfig) *postgres.Inbox {
	t.Helper()
	in, err := postgres.NewInbox(b.pg.pool, b.ns.connect("inbox"), cfg)
	if err != nil {
		t.Fatalf("NewInbox: %v", err)
	}
	return in
}

// deliver publishes ev to org's delivery subject of its referral with
// msgID as Nats-Msg-Id.
func (b *inboxBundle) deliver(t *testing.T, org string, ev event.Event, msgID string) {
	t.Helper()
	subject, err := events.DeliverySubject(org, ev.Subject())
	if err != nil {
		t.Fatal(err)
	}
	m, err := events.ToNATS(subject, ev)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.js.PublishMsg(testCtx(t), &nats.Msg{Subject: m.Subject, Header: nats.Header(m.Header), Data: m.Data},
		jetstream.WithMsgID(msgID)); err != nil {
		t.Fatalf("publish delivery: %v", err)
	}
}

// offer returns a referral.offered event of the routing service.
func offer(t *testing.T) event.Event {
	t.Helper()
	return must(events.New(events.SourceRouting, events.NewReferralID(), events.SamplePayload(events.TypeReferralOffered)))(t)
}

// consumerState returns the inbox consumer's pending and unacknowledged
// counts and how many deliveries it made; -1, -1, 0 before the consumer
// exists.
func (b *inboxBundle) consumerState(t *testing.T, name string) (pending, ackPending int, delivered uint64) {
	t.Helper()
	ctx := testCtx(t)
	c, err := b.js.Consumer(ctx, postgres.StreamDelivery, name)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return -1, -1, 0
	}
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return int(info.NumPending), info.NumAckPending, info.Delivered.Consumer
}

func (b *inboxBundle) inboxRows() int {
	return b.pg.count(`SELECT count(*) FROM ` + b.pg.q() + `.inbox`)
}

func TestInboxStoresEachDeliveryOnce(t *testing.T) {
	t.Parallel()
	b := newInboxBundle(t)
	m, _ := postgres.NewMetrics(nil, b.pg.schema)
	cfg := b.inboxConfig()
	cfg.Metrics = m
	in := b.newInbox(t, cfg)

	var evs []event.Event
	for range 40 {
		ev := offer(t)
		evs = append(evs, ev)
		b.deliver(t, testOrg, ev, ev.ID())
	}
	// The same events delivered twice (the stream keeps both copies), and
	// another organisation's delivery.
	for _, ev := range evs[:5] {
		b.deliver(t, testOrg, ev, ev.ID()+"-again")
	}
	b.deliver(t, "pt.someone-else", offer(t), events.NewReferralID())

	start(t, in.Run)
	eventually(t, "deliveries not stored and acknowledged", func() bool {
		pending, ackPending, _ := b.consumerState(t, in.Consumer())
		return b.inboxRows() == 40 && pending == 0 && ackPending == 0
	})
	if got := metricValue(t, m.InboxRows); got != 40 {
		t.Errorf("inbox_rows_total = %v, want 40", got)
	}
	if got := metricValue(t, m.InboxDuplicates); got != 5 {
		t.Errorf("inbox_duplicates_total = %v, want 5", got)
	}

	// Each row is the event as delivered, in delivery order.
	rows, err := b.pg.pool.Query(testCtx(t), `SELECT event_id, type, source, referral_id, subject, payload, event_time
		FROM `+b.pg.q()+`.inbox ORDER BY stream_seq`)
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		ID, Type, Source, Referral, Subject string
		Payload                             json.RawMessage
		Time                                time.Time
	}
	got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[row])
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range got {
		ev := evs[i]
		var want, have any
		_ = json.Unmarshal(ev.Data(), &want)
		_ = json.Unmarshal(r.Payload, &have)
		wb, _ := json.Marshal(want)
		hb, _ := json.Marshal(have)
		if r.ID != ev.ID() || r.Type != ev.Type() || r.Source != ev.Source() || r.Referral != ev.Subject() ||
			r.Subject != ev.Subject() || !r.Time.Equal(ev.Time().Truncate(time.Microsecond)) || !bytes.Equal(wb, hb) {
			t.Fatalf("row %d = %s %s %s %s %s %s %s, want event %s", i, r.ID, r.Type, r.Source, r.Referral, r.Subject, r.Time, r.Payload, ev)
		}
	}
}

func TestInboxAcknowledgesOnlyAfterCommit(t *testing.T) {
	t.Parallel()
	b := newInboxBundle(t)
	in := b.newInbox(t, b.inboxConfig())
	start(t, in.Run)
	eventually(t, "consumer not created", func() bool {
		_, err := b.js.Consumer(testCtx(t), postgres.StreamDelivery, in.Consumer())
		return err == nil
	})

	// The partner's DBA holds a lock that blocks inserts into the inbox.
	ctx := testCtx(t)
	tx, err := b.pg.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck
	if _, err := tx.Exec(ctx, `LOCK TABLE `+b.pg.q()+`.inbox IN SHARE MODE`); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		ev := offer(t)
		b.deliver(t, testOrg, ev, ev.ID())
	}
	eventually(t, "deliveries not received by the inbox", func() bool {
		_, ackPending, _ := b.consumerState(t, in.Consumer())
		return ackPending == 3
	})
	// While the insert waits for the lock nothing is acknowledged.
	if _, ackPending, _ := b.consumerState(t, in.Consumer()); ackPending != 3 || b.inboxRows() != 0 {
		t.Fatalf("acknowledged before the rows were committed: ack pending %d, rows %d", ackPending, b.inboxRows())
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, "deliveries not stored and acknowledged after the lock went", func() bool {
		pending, ackPending, _ := b.consumerState(t, in.Consumer())
		return b.inboxRows() == 3 && pending == 0 && ackPending == 0
	})
}

func TestInboxHookRunsInTheSameTransaction(t *testing.T) {
	t.Parallel()
	b := newInboxBundle(t)
	ctx := testCtx(t)
	partner := b.pg.schema + "_partner"
	pq := pgx.Identifier{partner}.Sanitize()
	for _, sql := range []string{
		`CREATE SCHEMA ` + pq,
		`CREATE TABLE ` + pq + `.cases (event_id text PRIMARY KEY, kind text NOT NULL)`,
		`CREATE TABLE ` + pq + `.control (fail boolean NOT NULL)`,
		`INSERT INTO ` + pq + `.control VALUES (true)`,
		`CREATE FUNCTION ` + pq + `.map_inbox(id text) RETURNS void LANGUAGE plpgsql AS $$
		BEGIN
			IF (SELECT fail FROM ` + pq + `.control) THEN
				RAISE EXCEPTION 'partner mapping failed';
			END IF;
			INSERT INTO ` + pq + `.cases SELECT event_id, type FROM ` + b.pg.q() + `.inbox WHERE event_id = id;
		END $$`,
	} {
		if _, err := b.pg.pool.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	t.Cleanup(func() { _, _ = b.pg.pool.Exec(testCtx(t), `DROP SCHEMA `+pq+` CASCADE`) })

	cfg := b.inboxConfig()
	cfg.Hook = partner + ".map_inbox"
	in := b.newInbox(t, cfg)
	start(t, in.Run)
	var evs []event.Event
	for range 3 {
		ev := offer(t)
		evs = append(evs, ev)
		b.deliver(t, testOrg, ev, ev.ID())
	}
	// The hook fails: nothing is stored, nothing acknowledged, the
	// deliveries come again.
	eventually(t, "deliveries not retried", func() bool {
		_, _, delivered := b.consumerState(t, in.Consumer())
		return delivered >= 6
	})
	cases := func() int { return b.pg.count(`SELECT count(*) FROM ` + pq + `.cases`) }
	if n, c := b.inboxRows(), cases(); n != 0 || c != 0 {
		t.Fatalf("with a failing hook: %d inbox rows, %d cases; want none (one transaction)", n, c)
	}
	if in.Health() == nil {
		t.Error("Health is nil while the hook fails")
	}
	if _, err := b.pg.pool.Exec(ctx, `UPDATE `+pq+`.control SET fail = false`); err != nil {
		t.Fatal(err)
	}
	eventually(t, "deliveries not stored once the hook works", func() bool {
		pending, ackPending, _ := b.consumerState(t, in.Consumer())
		return b.inboxRows() == 3 && cases() == 3 && pending == 0 && ackPending == 0
	})
	// A duplicate delivery does not call the hook again.
	b.deliver(t, testOrg, evs[0], evs[0].ID()+"-again")
	eventually(t, "duplicate not acknowledged", func() bool {
		pending, ackPending, _ := b.consumerState(t, in.Consumer())
		return pending == 0 && ackPending == 0
	})
	if n, c := b.inboxRows(), cases(); n != 3 || c != 3 {
		t.Errorf("after a duplicate: %d rows, %d cases; want 3 and 3", n, c)
	}
	if err := in.Health(); err != nil {
		t.Errorf("Health: %v", err)
	}
}

func TestInboxMissingHookFailsFast(t *testing.T) {
	t.Parallel()
	b := newInboxBundle(t)
	cfg := b.inboxConfig()
	cfg.Hook = "no_such_function"
	in := b.newInbox(t, cfg)
	if err := in.Run(testCtx(t)); !errors.Is(err, postgres.ErrHookMissing) {
		t.Errorf("Run with a missing hook = %v, want ErrHookMissing", err)
	}
	for _, bad := range []string{"a.b.c", "1fn", `x"; DROP TABLE y; --`, "a b"} {
		cfg.Hook = bad
		if _, err := postgres.NewInbox(b.pg.pool, b.ns.connect("x"), cfg); err == nil {
			t.Errorf("NewInbox accepted the hook %q", bad)
		}
	}
	if got, err := postgres.HookCall("Map_Inbox", "s"); err != nil || got != `"s"."Map_Inbox"` {
		t.Errorf(`HookCall("Map_Inbox", "s") = %s, %v`, got, err)
	}
}

func TestInboxOpensEnvelopes(t *testing.T) {
	t.Parallel()
	b := newInboxBundle(t)
	mine := must(seal.GenerateKey())(t)
	other := must(seal.GenerateKey())(t)
	cfg := b.inboxConfig()
	cfg.Identity = string(mine.File())
	in := b.newInbox(t, cfg)

	caseFile := []byte(`{"case":"synthetic test case file, no real person"}`)
	handover := func(k seal.Key) event.Event {
		env := must(seal.Seal(k.Recipient, caseFile))(t)
		return must(events.New(events.SourceOf("pt.referrer"), events.NewReferralID(),
			&events.Handover{Placement: "p1", Recipient: k.Recipient, Envelope: env}))(t)
	}
	forMe, forOther := handover(mine), handover(other)
	b.deliver(t, testOrg, forMe, forMe.ID())
	b.deliver(t, testOrg, forOther, forOther.ID())
	plain := offer(t)
	b.deliver(t, testOrg, plain, plain.ID())
	start(t, in.Run)
	eventually(t, "deliveries not stored", func() bool { return b.inboxRows() == 3 })

	var (
		plaintext []byte
		errText   *string
		placement string
	)
	q := `SELECT plaintext, error, placement FROM ` + b.pg.q() + `.envelopes WHERE event_id = $1`
	if err := b.pg.pool.QueryRow(testCtx(t), q, forMe.ID()).Scan(&plaintext, &errText, &placement); err != nil {
		t.Fatalf("envelope sealed to the organisation: %v", err)
	}
	if !bytes.Equal(plaintext, caseFile) || errText != nil || placement != "p1" {
		t.Errorf("opened envelope = %q, error %v, placement %s", plaintext, deref(errText), placement)
	}
	if err := b.pg.pool.QueryRow(testCtx(t), q, forOther.ID()).Scan(&plaintext, &errText, &placement); err != nil {
		t.Fatalf("envelope sealed to someone else: %v", err)
	}
	if plaintext != nil || errText == nil || *errText != "sealed to another recipient" {
		t.Errorf("envelope sealed to someone else: plaintext %q, error %v", plaintext, deref(errText))
	}
	if n := b.pg.count(`SELECT count(*) FROM ` + b.pg.q() + `.envelopes`); n != 2 {
		t.Errorf("%d envelopes rows, want 2 (none for the offer)", n)
	}
	// The sealed envelope stays sealed in the inbox row.
	if n := b.pg.count(`SELECT count(*) FROM `+b.pg.q()+`.inbox WHERE event_id = $1 AND payload->>'envelope' LIKE '-----BEGIN AGE ENCRYPTED FILE-----%'`, forMe.ID()); n != 1 {
		t.Error("the inbox row does not keep the sealed envelope")
	}
}

func TestInboxWithoutKeyLeavesEnvelopesSealed(t *testing.T) {
	t.Parallel()
	b := newInboxBundle(t)
	in := b.newInbox(t, b.inboxConfig())
	k := must(seal.GenerateKey())(t)
	ev := must(events.New(events.SourceOf("pt.referrer"), events.NewReferralID(),
		&events.Handover{Placement: "p1", Recipient: k.Recipient, Envelope: must(seal.Seal(k.Recipient, []byte("x")))(t)}))(t)
	b.deliver(t, testOrg, ev, ev.ID())
	start(t, in.Run)
	eventually(t, "delivery not stored", func() bool { return b.inboxRows() == 1 })
	if n := b.pg.count(`SELECT count(*) FROM ` + b.pg.q() + `.envelopes`); n != 0 {
		t.Errorf("%d envelopes opened without a key", n)
	}
	cfg := b.inboxConfig()
	cfg.Identity = "AGE-SECRET-KEY-1NOTAKEY"
	if _, err := postgres.NewInbox(b.pg.pool, b.ns.connect("x"), cfg); !errors.Is(err, seal.ErrIdentity) {
		t.Errorf("NewInbox with a bad identity = %v, want seal.ErrIdentity", err)
	}
}

func TestInboxTerminatesWhatDoesNotDecode(t *testing.T) {
	t.Parallel()
	b := newInboxBundle(t)
	in := b.newInbox(t, b.inboxConfig())
	subject := must(events.DeliverySubject(testOrg, events.NewReferralID()))(t)
	if _, err := b.js.Publish(testCtx(t), subject, []byte("not an event")); err != nil {
		t.Fatal(err)
	}
	ev := offer(t)
	b.deliver(t, testOrg, ev, ev.ID())
	start(t, in.Run)
	eventually(t, "the valid delivery is not stored, or the invalid one still pending", func() bool {
		pending, ackPending, _ := b.consumerState(t, in.Consumer())
		return b.inboxRows() == 1 && pending == 0 && ackPending == 0
	})
}

func TestInboxErasesTheReferral(t *testing.T) {
	t.Parallel()
	b := newInboxBundle(t)
	key := must(seal.GenerateKey())(t)
	cfg := b.inboxConfig()
	cfg.Identity = key.Identity
	in := b.newInbox(t, cfg)

	ref, other := events.NewReferralID(), events.NewReferralID()
	accepted := outboxRow{typ: events.TypeReferralAccepted, referralID: ref, payload: map[string]any{"placement": "p1"}}
	b.pg.insert(accepted, accepted, outboxRow{typ: events.TypeReferralAccepted, referralID: other, payload: map[string]any{"placement": "p1"}})

	offered := must(events.New(events.SourceRouting, ref, events.SamplePayload(events.TypeReferralOffered)))(t)
	handover := must(events.New(events.SourceOf("pt.referrer"), ref, &events.Handover{Placement: "p1", Recipient: key.Recipient,
		Envelope: must(seal.Seal(key.Recipient, []byte("synthetic case file")))(t)}))(t)
	erased := must(events.New(events.SourceRouting, ref, events.SamplePayload(events.TypeReferralErased)))(t)
	otherOffer := must(events.New(events.SourceRouting, other, events.SamplePayload(events.TypeReferralOffered)))(t)
	b.deliver(t, testOrg, offered, offered.ID())
	b.deliver(t, testOrg, handover, handover.ID())
	b.deliver(t, testOrg, otherOffer, otherOffer.ID())
	start(t, in.Run)
	eventually(t, "deliveries before the erasure not stored", func() bool {
		return b.pg.count(`SELECT count(*) FROM `+b.pg.q()+`.envelopes WHERE referral_id = $1`, ref) == 1 && b.inboxRows() == 3
	})
	b.deliver(t, testOrg, erased, erased.ID())
	// A copy of an older delivery that comes after the erasure.
	b.deliver(t, testOrg, offered, offered.ID()+"-late")
	eventually(t, "deliveries not acknowledged", func() bool {
		pending, ackPending, _ := b.consumerState(t, in.Consumer())
		return pending == 0 && ackPending == 0
	})
	ids := func(sql string, args ...any) []string {
		rows, err := b.pg.pool.Query(testCtx(t), sql, args...)
		if err != nil {
			t.Fatal(err)
		}
		return must(pgx.CollectRows(rows, pgx.RowTo[string]))(t)
	}
	if got := ids(`SELECT event_id FROM `+b.pg.q()+`.inbox WHERE referral_id = $1`, ref); len(got) != 1 || got[0] != erased.ID() {
		t.Errorf("inbox rows of the erased referral: %v, want only the erased event", got)
	}
	if n := b.pg.count(`SELECT count(*) FROM `+b.pg.q()+`.envelopes WHERE referral_id = $1`, ref); n != 0 {
		t.Errorf("%d opened envelopes of the erased referral left", n)
	}
	if got := ids(`SELECT coalesce(referral_id, '') FROM ` + b.pg.q() + `.outbox`); len(got) != 1 || got[0] != other {
		t.Errorf("outbox rows left: referrals %v, want only the other referral's", got)
	}
	if got := ids(`SELECT event_id FROM `+b.pg.q()+`.inbox WHERE referral_id = $1`, other); len(got) != 1 {
		t.Errorf("the other referral's delivery was touched: %v", got)
	}
}

func TestInboxSurvivesNATSRestart(t *testing.T) {
	t.Parallel()
	b := newInboxBundle(t)
	in := b.newInbox(t, b.inboxConfig())
	start(t, in.Run)
	for range 50 {
		ev := offer(t)
		b.deliver(t, testOrg, ev, ev.ID())
	}
	eventually(t, "deliveries before the restart not stored", func() bool { return b.inboxRows() == 50 })
	b.ns.stop()
	eventually(t, "the test's connection did not notice the server stopped", func() bool { return !b.nc.IsConnected() })
	b.ns.start()
	eventually(t, "the test's connection did not reconnect", b.nc.IsConnected)
	for range 50 {
		ev := offer(t)
		b.deliver(t, testOrg, ev, ev.ID())
	}
	eventually(t, "deliveries after the restart not stored and acknowledged", func() bool {
		pending, ackPending, _ := b.consumerState(t, in.Consumer())
		return b.inboxRows() == 100 && pending == 0 && ackPending == 0
	})
}
