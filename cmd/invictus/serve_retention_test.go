package main

import (
	"context"
	"log/slog"
	"maps"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/invictus-network/invictus/adapters/natsjs"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/internal/testenv"
	"github.com/invictus-network/invictus/internal/testnet"
	"github.com/invictus-network/invictus/reports"
)

// TestRetentionPurgesClosedReferrals: closed referrals past the retention
// age are gone from REFERRALS and DELIVERY once the reports checkpoint has
// folded them; open ones and one closed after the checkpoint stay; the
// store checks whole; and the reports, restarted from the checkpoint,
// give the same figures as a model built before the purge.
func TestRetentionPurgesClosedReferrals(t *testing.T) {
	t.Parallel()
	ctx := testenv.Context(t)
	data := t.TempDir()
	_, nc, js := testnet.Plain(t, filepath.Join(data, "nats"))
	publish := func(subject, id string, p events.Payload) { t.Helper(); storeEvent(ctx, t, js, subject, id, p) }
	// referral stores a referral (withdrawn when closed) and a delivery of it.
	referral := func(closed bool) string {
		id := events.NewReferralID()
		subj, err := events.ReferralSubject("pt", id)
		if err != nil {
			t.Fatal(err)
		}
		req := events.SamplePayload(events.TypeReferralRequested).(*events.Requested)
		req.Consent.GivenAt = time.Now().UTC().Add(-time.Minute)
		publish(subj, id, req)
		out, err := events.DeliverySubject("pt.apav", id)
		if err != nil {
			t.Fatal(err)
		}
		publish(out, id, req)
		if closed {
			publish(subj, id, events.SamplePayload(events.TypeReferralWithdrawn))
		}
		return id
	}
	var closedIDs, openIDs []string
	for range 5 {
		closedIDs = append(closedIDs, referral(true))
	}
	for range 3 {
		openIDs = append(openIDs, referral(false))
	}

	startReports := func(shared bool) *reportsComponent { return startTestReports(ctx, t, nc, shared, 1) }
	waitSeq := func(c *reportsComponent, seq uint64) { t.Helper(); waitModel(t, c, seq) }
	lastSeq := func() uint64 {
		s, err := js.Stream(ctx, natsjs.StreamReferrals)
		if err != nil {
			t.Fatal(err)
		}
		return s.CachedInfo().State.LastSeq
	}
	figures := func(c *reportsComponent) map[string]any {
		t.Helper()
		tb, err := c.store.Report("overview", reports.Scope{}, reports.Filter{}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]any{}
		for k, v := range tb.Totals {
			out[k], _ = v.Value()
		}
		return out
	}

	// The checkpoint folds these; one more closed referral comes after it.
	ckpt := startReports(true)
	waitSeq(ckpt, lastSeq())
	waitLease(t, ckpt)
	if err := ckpt.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	late := referral(true)
	fresh := startReports(false)
	waitSeq(fresh, lastSeq())
	before := figures(fresh)
	if err := fresh.Stop(ctx); err != nil {
		t.Fatal(err)
	}

	reg := prometheus.NewRegistry()
	swept := make(chan natsjs.SweepResult, 1)
	ret := &retentionComponent{age: time.Nanosecond, interval: time.Hour, conn: func() *nats.Conn { return nc },
		reg: reg, logger: slog.New(slog.DiscardHandler), fail: func(err error) { t.Errorf("retention failed: %v", err) },
		swept: func(r natsjs.SweepResult) { swept <- r }}
	if err := ret.Start(ctx); err != nil {
		t.Fatal(err)
	}
	var res natsjs.SweepResult
	select {
	case res = <-swept:
	case <-ctx.Done():
		t.Fatal("no sweep")
	}
	if err := ret.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if res.Purged != len(closedIDs) || res.Unfolded != 1 || res.Referrals != 9 {
		t.Fatalf("sweep = %+v, want 5 purged of 9, 1 waiting for the checkpoint", res)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var metric float64
	for _, mf := range mfs {
		if mf.GetName() == "invictus_retention_purged_referrals_total" {
			metric = mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	if metric != 5 {
		t.Fatalf("invictus_retention_purged_referrals_total = %v, want 5", metric)
	}

	subjects := func(stream, filter string) map[string]uint64 {
		t.Helper()
		s, err := js.Stream(ctx, stream)
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(ctx, jetstream.WithSubjectFilter(filter))
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Subjects
	}
	has := func(subjects map[string]uint64, id string) bool {
		for subj := range maps.Keys(subjects) {
			if strings.HasSuffix(subj, "."+id) {
				return true
			}
		}
		return false
	}
	refs, outs := subjects(natsjs.StreamReferrals, "referral.>"), subjects(natsjs.StreamDelivery, "out.>")
	for _, id := range closedIDs {
		if has(refs, id) || has(outs, id) {
			t.Errorf("closed referral %s still stored", id)
		}
	}
	for _, id := range append(openIDs, late) {
		if !has(refs, id) || !has(outs, id) {
			t.Errorf("referral %s purged; it is open or not yet in the checkpoint", id)
		}
	}
	rep, err := natsjs.VerifyStore(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Damage) > 0 || rep.Referrals != 4 {
		t.Fatalf("check after the purge: %d referrals, damage %+v", rep.Referrals, rep.Damage)
	}

	again := startReports(true)
	t.Cleanup(func() { _ = again.Stop(context.Background()) })
	waitSeq(again, lastSeq())
	after := figures(again)
	if !maps.Equal(before, after) {
		t.Fatalf("reports after the purge = %v, before = %v", after, before)
	}
	if before["requested"] != 9 {
		t.Fatalf("requested = %v, want 9", before["requested"])
	}
	t.Logf("purged %d of %d referrals (%d waiting for the checkpoint); reports %v before and after", res.Purged, res.Referrals, res.Unfolded, after)
}
