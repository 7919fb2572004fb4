package main

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/invictus-network/invictus/adapters/natsjs"
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

// startTestReports starts the reports on nc, restoring and (holding the
// lease) writing the cluster's checkpoint every events when shared, with
// no checkpoint otherwise.
func startTestReports(ctx context.Context, t *testing.T, nc *nats.Conn, shared bool, every int) *reportsComponent {
	t.Helper()
	c := &reportsComponent{ephemeral: !shared, conn: func() *nats.Conn { return nc }, logger: slog.New(slog.DiscardHandler),
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

// waitLease waits until c holds the reports lease.
func waitLease(t *testing.T, c *reportsComponent) {
	t.Helper()
	testenv.Await(t, "the reports lease", c.lease.Held)
}

// checkpointWrites records every write of the cluster's reports
// checkpoint from now on, as a watcher of the bucket sees them.
type checkpointWrites struct {
	mu     sync.Mutex
	writes []natsjs.ReportsCheckpoint
}

func watchCheckpoints(t *testing.T, js jetstream.JetStream) *checkpointWrites {
	t.Helper()
	kv, err := natsjs.EnsureReportsBucket(t.Context(), js, natsjs.StreamsConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w, err := kv.Watch(ctx, natsjs.ReportsHeadKey, jetstream.UpdatesOnly())
	if err != nil {
		t.Fatal(err)
	}
	cw := &checkpointWrites{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for e := range w.Updates() {
			if e == nil || e.Operation() != jetstream.KeyValuePut {
				continue
			}
			ck, err := natsjs.ReportsCheckpointOf(e.Value())
			if err != nil {
				t.Errorf("a checkpoint head unreadable: %v", err)
				continue
			}
			cw.mu.Lock()
			cw.writes = append(cw.writes, ck)
			cw.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = w.Stop()
		cancel()
		<-done
	})
	return cw
}

// all returns the writes so far.
func (cw *checkpointWrites) all() []natsjs.ReportsCheckpoint {
	cw.mu.Lock()
	defer cw.mu.Unlock()
	return slices.Clone(cw.writes)
}

// last returns the last write, or none.
func (cw *checkpointWrites) last() natsjs.ReportsCheckpoint {
	all := cw.all()
	if len(all) == 0 {
		return natsjs.ReportsCheckpoint{}
	}
	return all[len(all)-1]
}

// holders returns the holders that wrote, in order, each run of writes by
// one holder once; it fails the test if a sequence went back.
func (cw *checkpointWrites) holders(t *testing.T) []string {
	t.Helper()
	var out []string
	var seq uint64
	for _, w := range cw.all() {
		if w.Seq < seq {
			t.Errorf("the checkpoint went back from %d to %d (written by %s)", seq, w.Seq, w.Holder)
		}
		seq = w.Seq
		if len(out) == 0 || out[len(out)-1] != w.Holder {
			out = append(out, w.Holder)
		}
	}
	return out
}
