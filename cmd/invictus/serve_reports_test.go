package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/invictus-network/invictus/adapters/natsjs"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/reports"
)

// TestReportsResumeFromCheckpoint builds the read model from REFERRALS,
// stops it (which checkpoints), and starts it again on the same data
// directory: it replays only the events that came after the checkpoint.
func TestReportsResumeFromCheckpoint(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	data := t.TempDir()
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
	nc, err := srv.Connect(ctx, nats.Name("reports-test"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := natsjs.EnsureStreams(ctx, js, natsjs.StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	publish := func(n int) {
		for range n {
			p := events.SamplePayload(events.TypeReferralRequested).(*events.Requested)
			p.Consent.GivenAt = time.Now().UTC().Add(-time.Minute)
			id := events.NewReferralID()
			e, err := events.New(events.SourceOf("pt.apav"), id, p)
			if err != nil {
				t.Fatal(err)
			}
			subj, err := events.ReferralSubject("pt", id)
			if err != nil {
				t.Fatal(err)
			}
			m, err := events.ToNATS(subj, e)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: m.Subject, Header: m.Header, Data: m.Data}); err != nil {
				t.Fatal(err)
			}
		}
	}
	start := func() *reportsComponent {
		c := &reportsComponent{data: data, conn: func() *nats.Conn { return nc }, logger: slog.New(slog.DiscardHandler),
			fail: func(err error) { t.Errorf("reports failed: %v", err) }, every: 4}
		if err := c.Start(ctx); err != nil {
			t.Fatal(err)
		}
		return c
	}
	waitSeq := func(c *reportsComponent, seq uint64) {
		t.Helper()
		for c.store.Sequence() < seq {
			if ctx.Err() != nil {
				t.Fatalf("the model reached %d, not %d", c.store.Sequence(), seq)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	requested := func(c *reportsComponent) any {
		tb, err := c.store.Report("overview", reports.Scope{}, reports.Filter{}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		n, _ := tb.Totals["requested"].Value()
		return n
	}

	publish(30)
	first := start()
	waitSeq(first, 30)
	if err := first.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if first.Replayed() != 30 {
		t.Fatalf("first build applied %d events, want 30", first.Replayed())
	}
	if _, err := os.Stat(filepath.Join(data, reportsSnapshotFile)); err != nil {
		t.Fatalf("no checkpoint: %v", err)
	}

	publish(7)
	second := start()
	t.Cleanup(func() { _ = second.Stop(context.Background()) })
	waitSeq(second, 37)
	if got := second.Replayed(); got != 7 {
		t.Fatalf("the restarted model replayed %d events, want the 7 after the checkpoint", got)
	}
	if got := requested(second); got != 37 {
		t.Fatalf("requested = %v, want 37", got)
	}
	t.Logf("first start applied %d events; the restart replayed %d", first.Replayed(), second.Replayed())
}
