package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/invictus-network/invictus/adapters/httpapi"
	"github.com/invictus-network/invictus/adapters/natsjs"
	"github.com/invictus-network/invictus/referral"
	"github.com/invictus-network/invictus/reports"
)

// reportsSnapshotFile is where the read model's checkpoint was kept under
// --data before it moved to the cluster (natsjs.BucketReports): it is
// read once, when the cluster has no checkpoint yet, and never written.
const reportsSnapshotFile = "reports.snapshot"

// reportsComponent keeps the coordinators' read model from REFERRALS: it
// restores the cluster's checkpoint (natsjs.BucketReports), follows the
// stream from the sequence after it, and, while this instance holds the
// lease natsjs.LeaseReports, checkpoints as it goes and when it stops.
// Every instance keeps its own model for its API; one writes the
// checkpoint that all restore and the retention sweep relies on.
type reportsComponent struct {
	data      string // for the checkpoint of older versions; may be ""
	ephemeral bool   // neither restores nor writes a checkpoint (tests)
	conn      func() *nats.Conn
	streams   natsjs.StreamsConfig // for the bucket and the lease
	logger    *slog.Logger
	fail      func(error)
	// every overrides natsjs.ReportCheckpointEveryDefault.
	every int
	// holder and leaseTTL override the lease's defaults (tests).
	holder   string
	leaseTTL time.Duration

	store    *reports.Store
	kv       jetstream.KeyValue
	lease    *natsjs.Lease
	restored uint64 // events the restored snapshot had applied
	ahead    uint64 // the stored checkpoint's sequence, when found ahead
	run      *background
}

func (c *reportsComponent) Name() string { return "reports" }

func (c *reportsComponent) path() string { return filepath.Join(c.data, reportsSnapshotFile) }

// Start restores the checkpoint, unless it is unreadable or ahead of the
// stream (a new store), in which case the model is built from the start.
func (c *reportsComponent) Start(ctx context.Context) error {
	cfg := reports.Config{Reminder: referral.DefaultDeadlines().Reminder}
	c.store = reports.NewStore(cfg)
	js, err := jetstream.New(c.conn())
	if err != nil {
		return fmt.Errorf("reports: %w", err)
	}
	if !c.ephemeral {
		if c.kv, err = natsjs.EnsureReportsBucket(ctx, js, c.streams); err != nil {
			return fmt.Errorf("reports: %w", err)
		}
		if c.lease, err = natsjs.EnsureLease(ctx, js, c.streams, natsjs.LeaseConfig{Name: natsjs.LeaseReports,
			Holder: c.holder, TTL: c.leaseTTL, Logger: c.logger}); err != nil {
			return fmt.Errorf("reports: %w", err)
		}
		raw, err := c.readCheckpoint(ctx)
		if err != nil {
			return err
		}
		if raw != nil {
			if err := c.store.Restore(bytes.NewReader(raw)); err != nil {
				c.logger.Warn("reports: checkpoint unreadable; building from the stream", slog.String("error", err.Error()))
				c.store = reports.NewStore(cfg)
			}
		}
	}
	if seq := c.store.Sequence(); seq > 0 {
		s, err := js.Stream(ctx, natsjs.StreamReferrals)
		if err != nil {
			return fmt.Errorf("reports: %w", err)
		}
		if s.CachedInfo().State.LastSeq < seq {
			c.logger.Warn("reports: checkpoint ahead of the stream; building from the stream", slog.Uint64("checkpoint", seq))
			c.store = reports.NewStore(cfg)
		}
	}
	c.restored = c.store.Events()
	feedCfg := natsjs.ReportFeedConfig{Logger: c.logger, CheckpointEvery: c.every}
	if !c.ephemeral {
		feedCfg.Checkpoint = c.checkpoint
	}
	feed, err := natsjs.NewReportFeed(c.conn(), c.store, feedCfg)
	if err != nil {
		return fmt.Errorf("reports: %w", err)
	}
	c.logger.Info("reports: read model", slog.Uint64("from_seq", c.store.Sequence()), slog.Uint64("events", c.restored))
	c.run = startBackground("reports", c.fail, func(ctx context.Context) error {
		if c.lease == nil {
			return feed.Run(ctx)
		}
		// The lease outlives the feed, whose last checkpoint, as it
		// stops, is written while the lease is still held; then it is
		// released, and another instance takes over at once.
		lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		leased := make(chan error, 1)
		go func() {
			leased <- c.lease.Run(lctx, func(ctx context.Context) error { <-ctx.Done(); return nil })
		}()
		err := feed.Run(ctx)
		cancel()
		return errors.Join(err, <-leased)
	})
	return nil
}

// readCheckpoint returns the cluster's checkpoint, or else the one an
// older version left under --data, or else nil.
func (c *reportsComponent) readCheckpoint(ctx context.Context) ([]byte, error) {
	_, raw, ok, err := natsjs.ReadReportsCheckpoint(ctx, c.kv)
	if err != nil || ok {
		return raw, err
	}
	if c.data == "" {
		return nil, nil
	}
	raw, err = os.ReadFile(c.path())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reports: %w", err)
	}
	c.logger.Info("reports: checkpoint of an older version read from the data directory")
	return raw, nil
}

// checkpoint stores the snapshot in the cluster when this instance holds
// the lease and has reached the stored checkpoint. It is called by the
// feed, which alone applies events, so the sequence read first is the
// snapshot's.
func (c *reportsComponent) checkpoint(ctx context.Context) error {
	seq := c.store.Sequence()
	if !c.lease.Held() || seq < c.ahead {
		return natsjs.ErrCheckpointSkipped
	}
	var buf bytes.Buffer
	if err := c.store.Snapshot(&buf); err != nil {
		return err
	}
	err := natsjs.PutReportsCheckpoint(ctx, c.kv, natsjs.ReportsCheckpoint{Seq: seq, Holder: c.lease.Holder()}, buf.Bytes())
	if behind := (*natsjs.CheckpointBehindError)(nil); errors.As(err, &behind) {
		// Taken over from an instance further on: write once caught up.
		c.ahead = behind.Stored
		c.logger.Info("reports: checkpoint left until the model catches up", slog.Uint64("stored", behind.Stored), slog.Uint64("model", seq))
		return natsjs.ErrCheckpointSkipped
	}
	return err
}

// Replayed returns how many events the model applied since it started.
func (c *reportsComponent) Replayed() uint64 { return c.store.Events() - c.restored }

// Stop stops the feed, which checkpoints one last time.
func (c *reportsComponent) Stop(ctx context.Context) error {
	if c.run == nil {
		return nil
	}
	return c.run.stop(ctx)
}

// source returns the store for the API, or nil when the component is off.
func (c *reportsComponent) source() httpapi.Reports {
	if c == nil || c.store == nil {
		return nil
	}
	return c.store
}
