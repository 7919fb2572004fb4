package natsjs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/invictus-network/invictus/events"
)

// Defaults of [ReportFeedConfig].
const (
	ReportCheckpointEveryDefault    = 50_000
	ReportCheckpointIntervalDefault = time.Minute
)

// ErrCheckpointSkipped is what a [ReportFeedConfig].Checkpoint returns
// when it wrote nothing on purpose (another instance writes the
// checkpoint): the events since the last checkpoint stay counted, so the
// next call, and the one when the feed stops, still write them.
var ErrCheckpointSkipped = errors.New("natsjs: checkpoint skipped")

// ReportModel is the read model a [ReportFeed] keeps current (a
// *reports.Store is one): it applies events in log order and says the
// sequence it reached.
type ReportModel interface {
	Apply(seq uint64, env *events.Envelope)
	Sequence() uint64
}

// ReportFeedConfig configures a [ReportFeed]. The zero value of every
// field means its default.
type ReportFeedConfig struct {
	// CheckpointEvery is how many applied events call Checkpoint.
	// Default [ReportCheckpointEveryDefault].
	CheckpointEvery int
	// CheckpointInterval calls Checkpoint after this long with new
	// events. Default [ReportCheckpointIntervalDefault].
	CheckpointInterval time.Duration
	// Checkpoint saves the model (a snapshot with its sequence); it is
	// also called when Run stops. Default: none.
	Checkpoint func(ctx context.Context) error
	// Logger receives sequences and errors, never payloads. Default discards.
	Logger *slog.Logger
}

// ReportFeed keeps a [ReportModel] current from REFERRALS: an ordered
// consumer starting after the model's sequence, so that a model restored
// from a checkpoint replays only what came after it.
type ReportFeed struct {
	js    jetstream.JetStream
	model ReportModel
	cfg   ReportFeedConfig
}

// NewReportFeed returns a feed reading on nc into model.
func NewReportFeed(nc *nats.Conn, model ReportModel, cfg ReportFeedConfig) (*ReportFeed, error) {
	if nc == nil || model == nil {
		return nil, errors.New("natsjs: NewReportFeed needs a connection and a model")
	}
	if cfg.CheckpointEvery <= 0 {
		cfg.CheckpointEvery = ReportCheckpointEveryDefault
	}
	if cfg.CheckpointInterval <= 0 {
		cfg.CheckpointInterval = ReportCheckpointIntervalDefault
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("natsjs: report feed: %w", err)
	}
	return &ReportFeed{js: js, model: model, cfg: cfg}, nil
}

// Run applies REFERRALS to the model until ctx ends, then checkpoints
// once more. A failed consumer is resumed from the model's sequence after
// a pause. Events that do not decode (none should: the routing service
// wrote them) are skipped and logged by sequence.
func (f *ReportFeed) Run(ctx context.Context) error {
	since, last := 0, time.Now()
	checkpoint := func(cctx context.Context) {
		if f.cfg.Checkpoint == nil || since == 0 {
			return
		}
		if err := f.cfg.Checkpoint(cctx); errors.Is(err, ErrCheckpointSkipped) {
			return
		} else if err != nil {
			f.cfg.Logger.Warn("reports: checkpoint failed", slog.String("error", err.Error()))
			return
		}
		since, last = 0, time.Now()
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		checkpoint(cctx)
	}()
	for ctx.Err() == nil {
		cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{SubjectsReferrals}, DeliverPolicy: jetstream.DeliverAllPolicy}
		if s := f.model.Sequence(); s > 0 {
			cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, s+1
		}
		err := follow(ctx, f.js, StreamReferrals, cfg, func(m jetstream.Msg) (bool, error) {
			md, err := m.Metadata()
			if err != nil {
				return false, err
			}
			env, err := events.Decode(events.Message{Subject: m.Subject(), Header: m.Headers(), Data: m.Data()})
			if err != nil {
				f.cfg.Logger.Warn("reports: event skipped", slog.Uint64("seq", md.Sequence.Stream), slog.String("error", err.Error()))
				return false, nil
			}
			f.model.Apply(md.Sequence.Stream, env)
			since++
			if since >= f.cfg.CheckpointEvery || time.Since(last) >= f.cfg.CheckpointInterval {
				checkpoint(ctx)
			}
			return false, nil
		})
		if err != nil && ctx.Err() == nil {
			f.cfg.Logger.Warn("reports: feed failed; resuming", slog.String("error", err.Error()))
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
	return nil
}
