package main

import (
	"context"
	"fmt"
	"log/slog"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/internal/testenv"
)

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
func waitModel(t *testing.T, c *reportsComponent, seq uint64) {
	t.Helper()
	testenv.Await(t, fmt.Sprintf("the model to apply REFERRALS up to %d", seq), func() bool { return c.store.Sequence() >= seq },
		func() string { return fmt.Sprintf("it reached %d", c.store.Sequence()) })
}
