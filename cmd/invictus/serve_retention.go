package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/invictus-network/invictus/adapters/natsjs"
)

// retentionIntervalDefault is how often serve sweeps for closed referrals
// past --retention.
const retentionIntervalDefault = time.Hour

// retentionComponent purges the closed referrals older than age, once at
// start and then every interval. It purges only what the coordinators'
// read model has folded into its checkpoint under data, so the reports
// keep their figures after the events are gone: the checkpoint in the
// cluster, which every instance's reports restore (natsjs.BucketReports). The sweep is idempotent:
// several instances sweeping the same streams purge nothing twice, but
// only the holder of the lease natsjs.LeaseRetention sweeps.
type retentionComponent struct {
	age      time.Duration // 0: off
	interval time.Duration // 0: retentionIntervalDefault
	conn     func() *nats.Conn
	streams  natsjs.StreamsConfig // for the lease and reports buckets
	reg      prometheus.Registerer
	logger   *slog.Logger
	fail     func(error)
	// swept receives each sweep's result (tests); may be nil.
	swept func(natsjs.SweepResult)

	purged prometheus.Counter
	kv     jetstream.KeyValue // the reports checkpoint
	run    *background
}

func (c *retentionComponent) Name() string { return "retention" }

func (c *retentionComponent) Start(ctx context.Context) error {
	if c.age <= 0 {
		return nil
	}
	if c.interval <= 0 {
		c.interval = retentionIntervalDefault
	}
	c.purged = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "invictus_retention_purged_referrals_total",
		Help: "Closed referrals purged after --retention.",
	})
	if c.reg != nil {
		if err := c.reg.Register(c.purged); err != nil {
			return fmt.Errorf("retention: %w", err)
		}
	}
	bus, err := natsjs.NewBus(c.conn(), natsjs.BusConfig{Logger: c.logger})
	if err != nil {
		return fmt.Errorf("retention: %w", err)
	}
	js, err := jetstream.New(c.conn())
	if err != nil {
		return fmt.Errorf("retention: %w", err)
	}
	lease, err := natsjs.EnsureLease(ctx, js, c.streams, natsjs.LeaseConfig{Name: natsjs.LeaseRetention, Logger: c.logger})
	if err != nil {
		return fmt.Errorf("retention: %w", err)
	}
	if c.kv, err = natsjs.EnsureReportsBucket(ctx, js, c.streams); err != nil {
		return fmt.Errorf("retention: %w", err)
	}
	c.run = startBackground("retention", c.fail, func(ctx context.Context) error {
		return lease.Run(ctx, func(ctx context.Context) error {
			return c.loop(ctx, bus)
		})
	})
	return nil
}

// loop sweeps now and every interval until ctx ends.
func (c *retentionComponent) loop(ctx context.Context, bus *natsjs.Bus) error {
	for {
		c.sweep(ctx, bus)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(c.interval):
		}
	}
}

// sweep runs one sweep; a failure is logged and retried at the next.
func (c *retentionComponent) sweep(ctx context.Context, bus *natsjs.Bus) {
	folded, err := c.folded(ctx)
	if err != nil {
		c.logger.Warn("retention: reports checkpoint unreadable; nothing purged", slog.String("error", err.Error()))
		return
	}
	res, err := bus.Sweep(ctx, natsjs.SweepConfig{Age: c.age, Folded: folded})
	c.purged.Add(float64(res.Purged))
	if err != nil {
		if ctx.Err() == nil {
			c.logger.Warn("retention: sweep failed", slog.Int("purged", res.Purged), slog.String("error", err.Error()))
		}
		return
	}
	c.logger.Info("retention: swept", slog.Int("referrals", res.Referrals), slog.Int("purged", res.Purged),
		slog.Int("waiting_for_checkpoint", res.Unfolded))
	if c.swept != nil {
		c.swept(res)
	}
}

// folded returns the REFERRALS sequence of the reports checkpoint in the
// cluster (natsjs.BucketReports), 0 when there is none yet.
func (c *retentionComponent) folded(ctx context.Context) (uint64, error) {
	ck, _, err := natsjs.StatReportsCheckpoint(ctx, c.kv)
	return ck.Seq, err
}

func (c *retentionComponent) Stop(ctx context.Context) error {
	return c.run.stop(ctx)
}
