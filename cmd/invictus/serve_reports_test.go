package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/internal/testenv"
	"github.com/invictus-network/invictus/internal/testnet"
	"github.com/invictus-network/invictus/reports"
)

// TestReportsResumeFromCheckpoint builds the read model from REFERRALS,
// stops it (which checkpoints), and starts it again on the same data
// directory: it replays only the events that came after the checkpoint.
func TestReportsResumeFromCheckpoint(t *testing.T) {
	t.Parallel()
	ctx := testenv.Context(t)
	data := t.TempDir()
	_, nc, js := testnet.Plain(t, filepath.Join(data, "nats"))
	publish := func(n int) {
		for range n {
			p := events.SamplePayload(events.TypeReferralRequested).(*events.Requested)
			p.Consent.GivenAt = time.Now().UTC().Add(-time.Minute)
			id := events.NewReferralID()
			subj, err := events.ReferralSubject("pt", id)
			if err != nil {
				t.Fatal(err)
			}
			storeEvent(ctx, t, js, subj, id, p)
		}
	}
	start := func() *reportsComponent { return startTestReports(ctx, t, nc, data, 4) }
	waitSeq := func(c *reportsComponent, seq uint64) { t.Helper(); waitModel(t, c, seq) }
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
