package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/invictus-network/invictus/adapters/httpapi"
	"github.com/invictus-network/invictus/adapters/natsjs"
	"github.com/invictus-network/invictus/referral"
	"github.com/invictus-network/invictus/reports"
)

// reportsSnapshotFile is the read model's checkpoint under --data: the
// model and the REFERRALS sequence it reached.
const reportsSnapshotFile = "reports.snapshot"

// reportsComponent keeps the coordinators' read model from REFERRALS: it
// restores the checkpoint in the data directory (when there is one),
// follows the stream from the sequence after it, and checkpoints as it
// goes and when it stops.
type reportsComponent struct {
	data   string // "" for no checkpoint
	conn   func() *nats.Conn
	logger *slog.Logger
	fail   func(error)
	// every overrides natsjs.ReportCheckpointEveryDefault (tests).
	every int

	store    *reports.Store
	restored uint64 // events the restored snapshot had applied
	run      *background
}

func (c *reportsComponent) Name() string { return "reports" }

func (c *reportsComponent) path() string { return filepath.Join(c.data, reportsSnapshotFile) }

// Start restores the checkpoint, unless it is unreadable or ahead of the
// stream (a new store), in which case the model is built from the start.
func (c *reportsComponent) Start(ctx context.Context) error {
	cfg := reports.Config{Reminder: referral.DefaultDeadlines().Reminder}
	c.store = reports.NewStore(cfg)
	if c.data != "" {
		if raw, err := os.ReadFile(c.path()); err == nil {
			if err := c.store.Restore(bytes.NewReader(raw)); err != nil {
				c.logger.Warn("reports: checkpoint unreadable; building from the stream", slog.String("error", err.Error()))
				c.store = reports.NewStore(cfg)
			}
		} else if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("reports: %w", err)
		}
	}
	if seq := c.store.Sequence(); seq > 0 {
		js, err := jetstream.New(c.conn())
		if err != nil {
			return fmt.Errorf("reports: %w", err)
		}
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
	if c.data != "" {
		feedCfg.Checkpoint = c.checkpoint
	}
	feed, err := natsjs.NewReportFeed(c.conn(), c.store, feedCfg)
	if err != nil {
		return fmt.Errorf("reports: %w", err)
	}
	c.logger.Info("reports: read model", slog.Uint64("from_seq", c.store.Sequence()), slog.Uint64("events", c.restored))
	c.run = startBackground("reports", c.fail, feed.Run)
	return nil
}

// checkpoint writes the snapshot atomically.
func (c *reportsComponent) checkpoint(context.Context) error {
	var buf bytes.Buffer
	if err := c.store.Snapshot(&buf); err != nil {
		return err
	}
	return writeBytesAtomic(c.path(), buf.Bytes(), 0o600)
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
