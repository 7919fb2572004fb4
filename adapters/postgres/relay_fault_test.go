package postgres_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/invictus-network/invictus/adapters/postgres"
	"github.com/invictus-network/invictus/internal/testenv"
)

// The fault tests check the relay's promise: whatever fails, every outbox
// row ends up in INBOUND exactly once, in seq order. Raw publishes may
// repeat a row (a batch published but not committed is published again);
// JetStream drops the copies by Nats-Msg-Id.

// newFaultRelay returns a relay whose database connections (pool and lock
// connection) carry an application_name of their own, so that the test
// can terminate them and nothing else.
func newFaultRelay(t *testing.T, b *relayBundle, app string, cfg postgres.RelayConfig) *postgres.Relay {
	t.Helper()
	r, err := postgres.NewRelay(b.pg.newPool(app, nil), b.ns.connect("relay"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (b *relayBundle) published() int {
	return b.pg.count(`SELECT count(*) FROM ` + b.pg.q() + `.outbox WHERE published_at IS NOT NULL`)
}

func TestRelayExactlyOnceWhenBackendsAreTerminated(t *testing.T) {
	t.Parallel()
	b := newRelayBundle(t)
	ids := b.pg.insertRequested(2000)
	cfg := b.pg.relayConfig()
	cfg.BatchSize = 50
	app := b.pg.appName + "-relay"
	r := newFaultRelay(t, b, app, cfg)
	start(t, r.Run)

	// Terminate every connection of the relay each time it has made some
	// progress, until it is done.
	kills, terminated := 0, 0
	ctx := testCtx(t)
	last := 0
	for b.pg.pending() > 0 && kills < 8 {
		eventually(t, "the relay made no progress after its connections were terminated", func() bool {
			n := b.published()
			return n >= last+150 || n == len(ids)
		})
		last = b.published()
		n, err := b.pg.terminate(ctx, app)
		if err != nil {
			t.Fatalf("pg_terminate_backend: %v", err)
		}
		kills++
		terminated += n
	}
	b.waitAllRelayed(t)
	if kills < 3 || terminated < kills {
		t.Fatalf("only %d rounds (%d backends) terminated mid-relay; the test did not exercise the fault", kills, terminated)
	}
	t.Logf("%d rounds, %d backends terminated; %d raw publishes for %d rows", kills, terminated, len(b.raw.get()), len(ids))
	assertExactlyOnceInOrder(t, "INBOUND", b.inboundIDs(t), ids)
	assertExactlyOnceInOrder(t, "first publishes", orderOfFirst(b.raw.get()), ids)
}

func TestRelayExactlyOnceAcrossNATSRestart(t *testing.T) {
	t.Parallel()
	b := newRelayBundle(t)
	ids := b.pg.insertRequested(1500)
	cfg := b.pg.relayConfig()
	cfg.BatchSize = 50
	cfg.AckTimeout = 500 * time.Millisecond
	cfg.Timeout = 5 * time.Second
	r := b.newRelay(t, cfg)
	start(t, r.Run)

	eventually(t, "nothing relayed before the restart", func() bool { return b.published() >= 300 })
	b.ns.stop()
	// NATS is unavailable: the relay notices, rows keep arriving.
	eventually(t, "the relay did not notice NATS is down", func() bool { return r.Health() != nil })
	ids = append(ids, b.pg.insertRequested(500)...)
	if b.pg.pending() == 0 {
		t.Fatal("everything was relayed before NATS stopped; the test did not exercise the fault")
	}
	b.ns.start()
	b.waitAllRelayed(t)
	eventually(t, "relay unhealthy after NATS came back", func() bool { return r.Health() == nil })
	eventually(t, "the test's connection did not reconnect", b.nc.IsConnected)
	assertExactlyOnceInOrder(t, "INBOUND", b.inboundIDs(t), ids)
}

var errCrash = errors.New("simulated crash between publish and commit")

func TestRelayKilledBetweenPublishAndCommit(t *testing.T) {
	t.Parallel()
	b := newRelayBundle(t)
	ids := b.pg.insertRequested(600)
	cfg := b.pg.relayConfig()
	cfg.BatchSize = 50

	// The first relay dies after the acknowledgements of its third batch,
	// before the commit: those rows stay pending although JetStream has
	// them.
	first := b.newRelay(t, cfg)
	var (
		batches   atomic.Int32
		dead      atomic.Bool
		crashed   = make(chan []string, 1)
		crashOnce sync.Once
	)
	postgres.SetAfterPublish(first, func(_ context.Context, batch []string) error {
		if dead.Load() || batches.Add(1) == 3 {
			dead.Store(true)
			crashOnce.Do(func() { crashed <- batch })
			return errCrash
		}
		return nil
	})
	run := start(t, first.Run)
	lost := testenv.Recv(t, "the relay to reach its third batch", crashed)
	_ = run.stop(t)
	if n := b.pg.count(`SELECT count(*) FROM `+b.pg.q()+`.outbox WHERE published_at IS NULL AND id = ANY($1::uuid[])`, lost); n != len(lost) {
		t.Fatalf("%d of the %d rows published before the crash are marked published", len(lost)-n, len(lost))
	}

	// Another relay takes over and publishes them again.
	second := b.newRelay(t, cfg)
	start(t, second.Run)
	b.waitAllRelayed(t)

	raw := b.raw.get()
	if len(raw) < len(ids)+len(lost) {
		t.Errorf("%d raw publishes for %d rows: the rows of the crashed batch were not published twice", len(raw), len(ids))
	}
	assertExactlyOnceInOrder(t, "first publishes", orderOfFirst(raw), ids)
	assertExactlyOnceInOrder(t, "INBOUND", b.inboundIDs(t), ids)
}
