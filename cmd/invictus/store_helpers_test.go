package main

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/invictus-network/invictus/adapters/natsjs"
	"github.com/invictus-network/invictus/events"
)

// testStore starts an embedded server on data's store (no listener, no
// authentication) with the streams, and connects to it in process; the
// connection and the server end at cleanup.
func testStore(ctx context.Context, t *testing.T, data string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	srv, err := natsjs.StartServer(ctx, natsjs.ServerConfig{StoreDir: filepath.Join(data, "nats"), DontListen: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer scancel()
		if err := srv.Shutdown(sctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	nc, err := srv.Connect(ctx, nats.Name(t.Name()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := natsjs.EnsureStreams(ctx, js, natsjs.StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// storeEvent stores pt.apav's event p about referral id on subject, as
// the routing service would have.
func storeEvent(ctx context.Context, t *testing.T, js jetstream.JetStream, subject, id string, p events.Payload) {
	t.Helper()
	e, err := events.New(events.SourceOf("pt.apav"), id, p)
	if err != nil {
		t.Fatal(err)
	}
	m, err := events.ToNATS(subject, e)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: m.Subject, Header: m.Header, Data: m.Data}); err != nil {
		t.Fatal(err)
	}
}

// startTestReports starts the reports on nc, checkpointing under dir
// (none when empty) every events.
func startTestReports(ctx context.Context, t *testing.T, nc *nats.Conn, dir string, every int) *reportsComponent {
	t.Helper()
	c := &reportsComponent{data: dir, conn: func() *nats.Conn { return nc }, logger: slog.New(slog.DiscardHandler),
		fail: func(err error) { t.Errorf("reports failed: %v", err) }, every: every}
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return c
}

// waitModel waits until c's model has applied REFERRALS up to seq.
func waitModel(ctx context.Context, t *testing.T, c *reportsComponent, seq uint64) {
	t.Helper()
	for c.store.Sequence() < seq {
		if ctx.Err() != nil {
			t.Fatalf("the model reached %d, not %d", c.store.Sequence(), seq)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
