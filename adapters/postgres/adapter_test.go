package postgres_test

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/invictus-network/invictus/adapters/postgres"
)

func TestNewAdapterValidatesItsConfig(t *testing.T) {
	t.Parallel()
	pg := newPG(t)
	ns := newNATS(t)
	nc := ns.connect("adapter")
	for _, cfg := range []postgres.Config{
		{},                                    // neither an organisation nor the projection
		{Org: "apav"},                         // not an organisation id
		{Org: testOrg, Schema: "Bad"},         // not a schema name
		{Org: testOrg, Hook: "a.b.c"},         // not a function name
		{Org: testOrg, Identity: "not-a-key"}, // not an age identity
	} {
		if _, err := postgres.New(pg.pool, nc, cfg); err == nil {
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
	reg := prometheus.NewRegistry()
	if _, err := postgres.New(pg.pool, nc, postgres.Config{Projection: true, Registerer: reg}); err != nil {
		t.Fatal(err)
	}
	if _, err := postgres.New(pg.pool, nc, postgres.Config{Projection: true, Registerer: reg}); err == nil ||
		!strings.Contains(err.Error(), "registered already") {
		t.Errorf("a second adapter of the same schema on one registry: %v", err)
	}
}

func TestAdapterHealth(t *testing.T) {
	t.Parallel()
	pg := newPG(t)
	ns := newNATS(t)
	a, err := postgres.New(pg.pool, ns.connect("adapter"), postgres.Config{Org: testOrg, Schema: pg.schema, Projection: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := a.Health(ctx); err == nil {
		t.Error("Health is nil before Run")
	}
	run := start(t, a.Run)
	eventually(t, "adapter not healthy", func() bool { return a.Health(ctx) == nil })
	if a.Relay() == nil || a.Inbox() == nil || a.Projection() == nil {
		t.Fatal("components missing")
	}
	// The schema was migrated at start.
	if n := pg.count(`SELECT count(*) FROM ` + pg.q() + `.schema_migrations`); n == 0 {
		t.Error("Run did not migrate the schema")
	}

	ns.stop()
	eventually(t, "Health does not report NATS down", func() bool {
		err := a.Health(ctx)
		return err != nil && strings.Contains(err.Error(), "NATS")
	})
	ns.start()
	eventually(t, "adapter not healthy after NATS came back", func() bool { return a.Health(ctx) == nil })
	if err := run.stop(t); err != nil {
		t.Errorf("Run: %v", err)
	}
	if err := a.Health(ctx); err == nil {
		t.Error("Health is nil after Run returned")
	}
}
