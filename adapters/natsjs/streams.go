package natsjs

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Names of the streams and the bucket of DESIGN.md section 3.
const (
	// StreamInbound holds the commands organisations publish on in.<cc>.<org>;
	// work-queue retention, so a command is gone once processed.
	StreamInbound = "INBOUND"
	// StreamReferrals is the event log: every event of one referral on
	// referral.<cc>.<referral id>. Messages cannot be deleted one by one;
	// erasure purges a subject.
	StreamReferrals = "REFERRALS"
	// StreamDelivery holds what each organisation must see, on
	// out.<cc>.<org>.<referral id>.
	StreamDelivery = "DELIVERY"
	// StreamTimers holds offer deadlines and reminders as scheduled messages
	// on timer.<referral id>.<placement>, which fire to timer.fire.>.
	StreamTimers = "TIMERS"
	// StreamDLQ holds messages that could not be decoded or authorised, on
	// dlq.<reason>.
	StreamDLQ = "DLQ"
	// BucketDirectory is the KV bucket of organisations (org.<cc>.<org>) and
	// services (svc.<cc>.<org>.<svc>).
	BucketDirectory = "directory"
)

// Subject filters of the streams.
const (
	SubjectsInbound   = "in.>"       // filter of [StreamInbound]
	SubjectsReferrals = "referral.>" // filter of [StreamReferrals]
	SubjectsDelivery  = "out.>"      // filter of [StreamDelivery]
	SubjectsTimers    = "timer.>"    // filter of [StreamTimers]
	SubjectsDLQ       = "dlq.>"      // filter of [StreamDLQ]
)

// Defaults and limits of [StreamsConfig].
const (
	// ReplicasDefault suits a single server; use 3 on a cluster.
	ReplicasDefault = 1
	// ReplicasMax is JetStream's limit on replicas.
	ReplicasMax = 5
	// DuplicatesDefault is the window in which a second publish with the same
	// Nats-Msg-Id (the source and CloudEvents id, events.MsgID) is dropped.
	DuplicatesDefault = 2 * time.Minute
	// DirectoryHistoryDefault is how many revisions of each directory key
	// the bucket keeps.
	DirectoryHistoryDefault = 16
	// DirectoryHistoryMax is JetStream's limit on KV history.
	DirectoryHistoryMax = 64
)

// StreamsConfig configures the streams and the bucket. The zero value of
// every field means its default.
type StreamsConfig struct {
	// Replicas of every stream and the bucket. Default [ReplicasDefault].
	Replicas int
	// Duplicates is the deduplication window of every stream. Default
	// [DuplicatesDefault].
	Duplicates time.Duration
	// ReferralsMaxAge is how long REFERRALS keeps events, by policy; 0 keeps
	// them until erased. When set it must be at least Duplicates.
	ReferralsMaxAge time.Duration
	// DirectoryHistory is how many revisions of each directory key are kept.
	// Default [DirectoryHistoryDefault].
	DirectoryHistory uint8
}

// WithDefaults returns a copy of c with every unset field given its default.
func (c StreamsConfig) WithDefaults() StreamsConfig {
	if c.Replicas == 0 {
		c.Replicas = ReplicasDefault
	}
	if c.Duplicates == 0 {
		c.Duplicates = DuplicatesDefault
	}
	if c.DirectoryHistory == 0 {
		c.DirectoryHistory = DirectoryHistoryDefault
	}
	return c
}

// Validate reports the first invalid field of c, naming it. Call it on the
// result of [StreamsConfig.WithDefaults].
func (c StreamsConfig) Validate() error {
	if c.Replicas < 1 || c.Replicas > ReplicasMax {
		return fmt.Errorf("natsjs: StreamsConfig.Replicas %d must be from 1 to %d", c.Replicas, ReplicasMax)
	}
	if c.Duplicates <= 0 {
		return fmt.Errorf("natsjs: StreamsConfig.Duplicates %s must be positive", c.Duplicates)
	}
	if c.ReferralsMaxAge < 0 || (c.ReferralsMaxAge > 0 && c.ReferralsMaxAge < c.Duplicates) {
		return fmt.Errorf("natsjs: StreamsConfig.ReferralsMaxAge %s must be 0 (unlimited) or at least Duplicates (%s)",
			c.ReferralsMaxAge, c.Duplicates)
	}
	if c.DirectoryHistory < 1 || c.DirectoryHistory > DirectoryHistoryMax {
		return fmt.Errorf("natsjs: StreamsConfig.DirectoryHistory %d must be from 1 to %d", c.DirectoryHistory, DirectoryHistoryMax)
	}
	return nil
}

// StreamConfigs returns the configuration of the five streams, in the order
// INBOUND, REFERRALS, DELIVERY, TIMERS, DLQ, for cfg with defaults applied.
func StreamConfigs(cfg StreamsConfig) []jetstream.StreamConfig {
	cfg = cfg.WithDefaults()
	base := func(name, subjects, description string) jetstream.StreamConfig {
		return jetstream.StreamConfig{
			Name:        name,
			Description: description,
			Subjects:    []string{subjects},
			Retention:   jetstream.LimitsPolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    cfg.Replicas,
			Duplicates:  cfg.Duplicates,
			Discard:     jetstream.DiscardOld,
		}
	}

	inbound := base(StreamInbound, SubjectsInbound, "Commands from organisations, one subject per organisation.")
	inbound.Retention = jetstream.WorkQueuePolicy

	referrals := base(StreamReferrals, SubjectsReferrals, "The referral event log, one subject per referral.")
	referrals.MaxAge = cfg.ReferralsMaxAge
	referrals.DenyDelete = true // erasure purges a whole subject; single events are never deleted
	referrals.AllowDirect = true
	// All events of one command are appended in one atomic batch, so a
	// crash never leaves half of them (see Bus.Append).
	referrals.AllowAtomicPublish = true

	delivery := base(StreamDelivery, SubjectsDelivery, "What each organisation must see, one subject per organisation and referral.")

	timers := base(StreamTimers, SubjectsTimers, "Offer deadlines and reminders as scheduled messages.")
	timers.AllowMsgSchedules = true
	timers.AllowDirect = true // the router reads a placement's schedule before it writes one

	dlq := base(StreamDLQ, SubjectsDLQ, "Messages that could not be decoded or authorised, with the reason in headers.")

	return []jetstream.StreamConfig{inbound, referrals, delivery, timers, dlq}
}

// DirectoryBucketConfig returns the configuration of the directory KV bucket
// for cfg with defaults applied.
func DirectoryBucketConfig(cfg StreamsConfig) jetstream.KeyValueConfig {
	cfg = cfg.WithDefaults()
	return jetstream.KeyValueConfig{
		Bucket:      BucketDirectory,
		Description: "Organisations and services of the directory.",
		History:     cfg.DirectoryHistory,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
	}
}

// EnsureStreams creates the five streams and the directory bucket, or
// updates them to cfg when they exist, so running it again changes nothing.
// It returns an error naming the stream or bucket JetStream refused (for
// example a retention change, which JetStream does not allow) wrapping the
// client's error, or a config error naming the invalid field.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, cfg StreamsConfig) error {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	for _, sc := range StreamConfigs(cfg) {
		if _, err := js.CreateOrUpdateStream(ctx, sc); err != nil {
			return fmt.Errorf("natsjs: ensure stream %s: %w", sc.Name, err)
		}
	}
	if _, err := js.CreateOrUpdateKeyValue(ctx, DirectoryBucketConfig(cfg)); err != nil {
		return fmt.Errorf("natsjs: ensure bucket %s: %w", BucketDirectory, err)
	}
	return nil
}
