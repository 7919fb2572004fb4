package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/invictus-network/invictus/adapters/natsjs"
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
	publish := func(n int) { t.Helper(); publishRequested(ctx, t, js, n) }
	start := func() *reportsComponent { return startTestReports(ctx, t, nc, true, 4) }
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
	waitLease(t, first)
	if err := first.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if first.Replayed() != 30 {
		t.Fatalf("first build applied %d events, want 30", first.Replayed())
	}
	if ck, ok, err := natsjs.StatReportsCheckpoint(ctx, first.kv); err != nil || !ok || ck.Seq != 30 {
		t.Fatalf("the cluster's checkpoint: %+v, %v, %v; want one at 30", ck, ok, err)
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

// publishRequested stores n new referrals' first events in REFERRALS.
func publishRequested(ctx context.Context, t *testing.T, js jetstream.JetStream, n int) {
	t.Helper()
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

// overview returns the totals of c's overview report.
func overview(t *testing.T, s *reports.Store) map[string]any {
	t.Helper()
	tb, err := s.Report("overview", reports.Scope{}, reports.Filter{}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]any{}
	for k, v := range tb.Totals {
		out[k], _ = v.Value()
	}
	return out
}

// TestReportsCheckpointOneWriter keeps two read models on one server, as
// two serve instances do. Only the holder of the reports lease writes the
// cluster's checkpoint; when it stops (and releases the lease) the other
// takes over and carries the checkpoint on from where it was; a write
// behind the stored checkpoint is refused; and a model restored from the
// checkpoint gives the figures of one built from the whole stream.
func TestReportsCheckpointOneWriter(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	_, nc, js := testnet.Plain(t, filepath.Join(t.TempDir(), "nats"))
	writes := watchCheckpoints(t, js)
	start := func(holder string) *reportsComponent {
		t.Helper()
		c := &reportsComponent{conn: func() *nats.Conn { return nc }, logger: slog.New(slog.DiscardHandler),
			fail: func(err error) { t.Errorf("reports %s failed: %v", holder, err) }, every: 1,
			holder: holder, leaseTTL: 600 * time.Millisecond}
		if err := c.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Stop(context.Background()) })
		return c
	}
	lastSeq := func() uint64 {
		t.Helper()
		s, err := js.Stream(ctx, natsjs.StreamReferrals)
		if err != nil {
			t.Fatal(err)
		}
		return s.CachedInfo().State.LastSeq
	}
	reached := func(holder string, seq uint64) func() bool {
		return func() bool { w := writes.last(); return w.Holder == holder && w.Seq == seq }
	}

	a := start("instance-a")
	waitLease(t, a)
	b := start("instance-b")
	publishRequested(ctx, t, js, 20)
	waitModel(t, b, lastSeq())
	testenv.Await(t, "a's checkpoint at the last event", reached("instance-a", lastSeq()))
	if b.lease.Held() {
		t.Fatal("both instances hold the reports lease")
	}

	// a stops and releases the lease: b takes over and checkpoints the
	// events that come next.
	if err := a.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	waitLease(t, b)
	publishRequested(ctx, t, js, 10)
	testenv.Await(t, "b's checkpoint at the last event", reached("instance-b", lastSeq()),
		func() string { return fmt.Sprintf("writes %+v", writes.all()) })
	if got := writes.holders(t); !slices.Equal(got, []string{"instance-a", "instance-b"}) {
		t.Fatalf("the checkpoint was written by %v, want instance-a's then instance-b's", got)
	}

	// A write behind the stored checkpoint changes nothing.
	err := natsjs.PutReportsCheckpoint(ctx, b.kv, natsjs.ReportsCheckpoint{Seq: 5, Holder: "instance-a"}, []byte("stale"))
	if !errors.Is(err, natsjs.ErrCheckpointBehind) {
		t.Fatalf("a write behind the checkpoint: %v, want ErrCheckpointBehind", err)
	}
	if ck, _, _ := natsjs.StatReportsCheckpoint(ctx, b.kv); ck.Seq != lastSeq() || ck.Holder != "instance-b" {
		t.Fatalf("after the refused write the checkpoint is %+v", ck)
	}

	// A third instance restores b's checkpoint: it replays nothing, and
	// its figures are those of a model built from the whole stream.
	c := start("instance-c")
	waitModel(t, c, lastSeq())
	fresh := startTestReports(ctx, t, nc, false, 1)
	t.Cleanup(func() { _ = fresh.Stop(context.Background()) })
	waitModel(t, fresh, lastSeq())
	if c.Replayed() != 0 {
		t.Errorf("the instance started after the checkpoint replayed %d events, want 0", c.Replayed())
	}
	got, want := overview(t, c.store), overview(t, fresh.store)
	if !maps.Equal(got, want) || want["requested"] != 30 {
		t.Fatalf("figures from the checkpoint %v, from the stream %v (want 30 requested)", got, want)
	}
	t.Logf("checkpoint writes %d (holders %v); figures %v", len(writes.all()), writes.holders(t), got)
}
