package natsjs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/invictus-network/invictus/internal/wire"
)

// Names of the streams and the bucket of DESIGN.md section 3.
const (
	// StreamInbound holds the commands organisations publish on in.<cc>.<org>;
	// work-queue retention, so a command is gone once processed.
	StreamInbound = wire.StreamInbound
	// StreamReferrals is the event log: every event of one referral on
	// referral.<cc>.<referral id>. Messages cannot be deleted one by one;
	// erasure purges a subject.
	StreamReferrals = wire.StreamReferrals
	// StreamDelivery holds what each organisation must see, on
	// out.<cc>.<org>.<referral id>.
	StreamDelivery = wire.StreamDelivery
	// StreamTimers holds offer deadlines and reminders as scheduled messages
	// on timer.<referral id>.<placement>, which fire to timer.fire.>.
	StreamTimers = wire.StreamTimers
	// StreamDLQ holds messages that could not be decoded or authorised, on
	// dlq.<reason>.
	StreamDLQ = wire.StreamDLQ
	// BucketDirectory is the KV bucket of organisations (org.<cc>.<org>) and
	// services (svc.<cc>.<org>.<svc>).
	BucketDirectory = wire.BucketDirectory
)

// Subject filters of the streams.
const (
	SubjectsInbound   = wire.SubjectsInbound   // filter of [StreamInbound]
	SubjectsReferrals = wire.SubjectsReferrals // filter of [StreamReferrals]
	SubjectsDelivery  = wire.SubjectsDelivery  // filter of [StreamDelivery]
	SubjectsTimers    = wire.SubjectsTimers    // filter of [StreamTimers]
	SubjectsDLQ       = wire.SubjectsDLQ       // filter of [StreamDLQ]
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

// Bounds of the streams and buckets (see [StreamsConfig] and the limits
// table of the README). A stream that reaches its MaxBytes refuses new
// messages (DiscardNew): a publish fails and is retried or reported,
// nothing already accepted is dropped to make room. DLQ drops its oldest
// copies instead, because what it holds is already refused and a flood of
// junk must not stop the rejection of the next command; TIMERS too,
// because JetStream allows nothing else with message schedules (see
// StreamConfigs). Per
// subject bounds count the subject's messages: INBOUND's subject is one
// organisation (its commands not yet processed), DELIVERY's one
// organisation and referral.
const (
	// InboundMaxBytesDefault bounds INBOUND: commands not yet processed.
	InboundMaxBytesDefault int64 = 256 << 20
	// InboundMaxPerOrgDefault bounds the unprocessed commands of one
	// organisation (one INBOUND subject); more are refused to that
	// organisation only.
	InboundMaxPerOrgDefault int64 = 10_000
	// ReferralsMaxBytesDefault bounds the event log.
	ReferralsMaxBytesDefault int64 = 2 << 30
	// DeliveryMaxBytesDefault bounds DELIVERY.
	DeliveryMaxBytesDefault int64 = 1 << 30
	// DeliveryMaxPerSubjectDefault bounds the messages of one organisation
	// about one referral (out.<cc>.<org>.<referral id>), and the
	// rejections kept for one organisation (out.<cc>.<org>.rejected), of
	// which the oldest go first.
	DeliveryMaxPerSubjectDefault int64 = 1_000
	// TimersMaxBytesDefault bounds TIMERS.
	TimersMaxBytesDefault int64 = 256 << 20
	// DLQMaxBytesDefault bounds DLQ; its oldest copies go first.
	DLQMaxBytesDefault int64 = 256 << 20
	// DLQMaxAgeDefault is how long DLQ keeps a copy.
	DLQMaxAgeDefault = 30 * 24 * time.Hour
	// DirectoryMaxBytesDefault bounds the directory bucket.
	DirectoryMaxBytesDefault int64 = 256 << 20
	// TokensMaxBytesDefault bounds the tokens bucket.
	TokensMaxBytesDefault int64 = 16 << 20
	// WebhooksMaxBytesDefault bounds the webhooks bucket (registrations,
	// cursors, delivery logs).
	WebhooksMaxBytesDefault int64 = 256 << 20
	// EmailMaxBytesDefault bounds the e-mail bucket (link key, sender
	// lease, messages given up).
	EmailMaxBytesDefault int64 = 64 << 20
	// EmailMarksMaxBytesDefault bounds the e-mail marks bucket (used
	// links and sent messages, kept EmailMarksMaxAge).
	EmailMarksMaxBytesDefault int64 = 256 << 20
	// MaxConsumersDefault bounds the consumers of INBOUND, TIMERS and DLQ
	// (the routing services' and operators' own).
	MaxConsumersDefault = 64
	// ReferralsMaxConsumersDefault bounds the consumers of REFERRALS: the
	// dispatcher, projections and one short-lived reader per HTTP
	// request waiting for an outcome.
	ReferralsMaxConsumersDefault = 10_000
	// DeliveryMaxConsumersDefault bounds the consumers of DELIVERY: one
	// durable per organisation that reads over NATS (made on its first
	// use, gone when idle), one per e-mail organisation, and short-lived
	// readers. It is set on the stream explicitly, as nats-server would
	// otherwise bound every stream to 1,000.
	DeliveryMaxConsumersDefault = 30_000
	// Unlimited, as a limit of [StreamLimits] or a bucket's MaxBytes,
	// lifts the bound.
	Unlimited = -1
)

// StreamLimits bounds one stream. In every field 0 means the stream's
// default and [Unlimited] (or a negative MaxAge) no bound.
type StreamLimits struct {
	// MaxBytes bounds the stream's stored bytes.
	MaxBytes int64
	// MaxAge is how long a message is kept.
	MaxAge time.Duration
	// MaxMsgsPerSubject bounds the messages of one subject.
	MaxMsgsPerSubject int64
	// MaxConsumers bounds the stream's consumers.
	MaxConsumers int
}

// withDefaults gives every 0 field of l the value of d.
func (l StreamLimits) withDefaults(d StreamLimits) StreamLimits {
	if l.MaxBytes == 0 {
		l.MaxBytes = d.MaxBytes
	}
	if l.MaxAge == 0 {
		l.MaxAge = d.MaxAge
	}
	if l.MaxMsgsPerSubject == 0 {
		l.MaxMsgsPerSubject = d.MaxMsgsPerSubject
	}
	if l.MaxConsumers == 0 {
		l.MaxConsumers = d.MaxConsumers
	}
	return l
}

// validate names the first invalid field of l, as a field of StreamsConfig
// named field.
func (l StreamLimits) validate(field string) error {
	switch {
	case l.MaxBytes < Unlimited || l.MaxBytes == 0:
		return fmt.Errorf("natsjs: StreamsConfig.%s.MaxBytes %d must be positive or Unlimited", field, l.MaxBytes)
	case l.MaxMsgsPerSubject < Unlimited || l.MaxMsgsPerSubject == 0:
		return fmt.Errorf("natsjs: StreamsConfig.%s.MaxMsgsPerSubject %d must be positive or Unlimited", field, l.MaxMsgsPerSubject)
	case l.MaxConsumers < Unlimited || l.MaxConsumers == 0:
		return fmt.Errorf("natsjs: StreamsConfig.%s.MaxConsumers %d must be positive or Unlimited", field, l.MaxConsumers)
	}
	return nil
}

// age is MaxAge as JetStream takes it: 0 for no bound.
func (l StreamLimits) age() time.Duration { return max(l.MaxAge, 0) }

// StreamsConfig configures the streams and the buckets. The zero value of
// every field means its default.
type StreamsConfig struct {
	// Replicas of every stream and the bucket. Default [ReplicasDefault].
	Replicas int
	// Duplicates is the deduplication window of every stream. Default
	// [DuplicatesDefault].
	Duplicates time.Duration
	// DirectoryHistory is how many revisions of each directory key are kept.
	// Default [DirectoryHistoryDefault].
	DirectoryHistory uint8

	// Inbound bounds INBOUND; MaxMsgsPerSubject is per organisation.
	// Defaults [InboundMaxBytesDefault], no age, [InboundMaxPerOrgDefault],
	// [MaxConsumersDefault].
	Inbound StreamLimits
	// Referrals bounds REFERRALS. MaxAge is how long events are kept, by
	// policy: by default until erased; when set it must be at least
	// Duplicates. Defaults [ReferralsMaxBytesDefault], no age, no per
	// subject bound (a referral's events are never dropped),
	// [ReferralsMaxConsumersDefault].
	Referrals StreamLimits
	// Delivery bounds DELIVERY. Defaults [DeliveryMaxBytesDefault], no
	// age, [DeliveryMaxPerSubjectDefault], [DeliveryMaxConsumersDefault].
	Delivery StreamLimits
	// Timers bounds TIMERS. It has no age: a schedule lives until its
	// deadline. Defaults [TimersMaxBytesDefault], no per subject bound,
	// [MaxConsumersDefault].
	Timers StreamLimits
	// DLQ bounds DLQ. Defaults [DLQMaxBytesDefault], [DLQMaxAgeDefault],
	// no per subject bound, [MaxConsumersDefault].
	DLQ StreamLimits
	// DirectoryMaxBytes bounds the directory bucket. Default
	// [DirectoryMaxBytesDefault].
	DirectoryMaxBytes int64
	// TokensMaxBytes bounds the tokens bucket. Default
	// [TokensMaxBytesDefault].
	TokensMaxBytes int64
	// WebhooksMaxBytes bounds the webhooks bucket. Default
	// [WebhooksMaxBytesDefault].
	WebhooksMaxBytes int64
	// EmailMaxBytes bounds the e-mail bucket. Default
	// [EmailMaxBytesDefault].
	EmailMaxBytes int64
	// EmailMarksMaxBytes bounds the e-mail marks bucket. Default
	// [EmailMarksMaxBytesDefault].
	EmailMarksMaxBytes int64

	// Country and CrossBorderFrom make the node a country hub
	// (deploy/nats/hub.conf): DELIVERY then also sources, from the
	// DELIVERY stream of each JetStream domain in CrossBorderFrom (the
	// other countries' hubs, over their leaf node connection), the
	// deliveries to Country's organisations (out.<country>.>), so that
	// what a cross-border referral must show them reaches their hub, and
	// nothing else of the other hub does. Default: none.
	Country         string
	CrossBorderFrom []string
	// DirectoryFrom, on a country hub, is the JetStream domain of the hub
	// that keeps the shared directory: this hub's directory bucket sources
	// every record of that hub's, so an organisation or service added or
	// changed there is routed to here too. Default: none (the directory
	// is this node's own).
	DirectoryFrom string
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
	c.Inbound = c.Inbound.withDefaults(StreamLimits{InboundMaxBytesDefault, -1, InboundMaxPerOrgDefault, MaxConsumersDefault})
	c.Referrals = c.Referrals.withDefaults(StreamLimits{ReferralsMaxBytesDefault, -1, Unlimited, ReferralsMaxConsumersDefault})
	c.Delivery = c.Delivery.withDefaults(StreamLimits{DeliveryMaxBytesDefault, -1, DeliveryMaxPerSubjectDefault, DeliveryMaxConsumersDefault})
	c.Timers = c.Timers.withDefaults(StreamLimits{TimersMaxBytesDefault, -1, Unlimited, MaxConsumersDefault})
	c.DLQ = c.DLQ.withDefaults(StreamLimits{DLQMaxBytesDefault, DLQMaxAgeDefault, Unlimited, MaxConsumersDefault})
	if c.DirectoryMaxBytes == 0 {
		c.DirectoryMaxBytes = DirectoryMaxBytesDefault
	}
	if c.TokensMaxBytes == 0 {
		c.TokensMaxBytes = TokensMaxBytesDefault
	}
	if c.WebhooksMaxBytes == 0 {
		c.WebhooksMaxBytes = WebhooksMaxBytesDefault
	}
	if c.EmailMaxBytes == 0 {
		c.EmailMaxBytes = EmailMaxBytesDefault
	}
	if c.EmailMarksMaxBytes == 0 {
		c.EmailMarksMaxBytes = EmailMarksMaxBytesDefault
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
	if age := c.Referrals.age(); age > 0 && age < c.Duplicates {
		return fmt.Errorf("natsjs: StreamsConfig.Referrals.MaxAge %s must be none or at least Duplicates (%s)", age, c.Duplicates)
	}
	if age := c.DLQ.age(); age > 0 && age < c.Duplicates {
		return fmt.Errorf("natsjs: StreamsConfig.DLQ.MaxAge %s must be none or at least Duplicates (%s)", age, c.Duplicates)
	}
	if c.Timers.age() > 0 || c.Inbound.age() > 0 {
		return errors.New("natsjs: StreamsConfig.Timers.MaxAge and Inbound.MaxAge must be none: a schedule or a command waiting for the routing service must not expire")
	}
	if len(c.CrossBorderFrom) > 0 && !isCountryCode(c.Country) {
		return fmt.Errorf("natsjs: StreamsConfig.Country %q must be a lower-case ISO 3166-1 alpha-2 code with CrossBorderFrom", c.Country)
	}
	for _, d := range c.CrossBorderFrom {
		if d == "" || strings.ContainsAny(d, ". *>\t\n") {
			return fmt.Errorf("natsjs: StreamsConfig.CrossBorderFrom %q must be a JetStream domain name", d)
		}
	}
	if strings.ContainsAny(c.DirectoryFrom, ". *>\t\n") {
		return fmt.Errorf("natsjs: StreamsConfig.DirectoryFrom %q must be a JetStream domain name", c.DirectoryFrom)
	}
	if c.DirectoryHistory < 1 || c.DirectoryHistory > DirectoryHistoryMax {
		return fmt.Errorf("natsjs: StreamsConfig.DirectoryHistory %d must be from 1 to %d", c.DirectoryHistory, DirectoryHistoryMax)
	}
	for _, l := range []struct {
		field  string
		limits StreamLimits
	}{{"Inbound", c.Inbound}, {"Referrals", c.Referrals}, {"Delivery", c.Delivery}, {"Timers", c.Timers}, {"DLQ", c.DLQ}} {
		if err := l.limits.validate(l.field); err != nil {
			return err
		}
	}
	for _, b := range []struct {
		field string
		max   int64
	}{{"DirectoryMaxBytes", c.DirectoryMaxBytes}, {"TokensMaxBytes", c.TokensMaxBytes}, {"WebhooksMaxBytes", c.WebhooksMaxBytes},
		{"EmailMaxBytes", c.EmailMaxBytes}, {"EmailMarksMaxBytes", c.EmailMarksMaxBytes}} {
		if b.max < Unlimited || b.max == 0 {
			return fmt.Errorf("natsjs: StreamsConfig.%s %d must be positive or Unlimited", b.field, b.max)
		}
	}
	return nil
}

// StreamConfigs returns the configuration of the five streams, in the order
// INBOUND, REFERRALS, DELIVERY, TIMERS, DLQ, for cfg with defaults applied;
// on a country hub (CrossBorderFrom) CROSSBORDER comes sixth.
func StreamConfigs(cfg StreamsConfig) []jetstream.StreamConfig {
	cfg = cfg.WithDefaults()
	base := func(name, subjects, description string, l StreamLimits) jetstream.StreamConfig {
		return jetstream.StreamConfig{
			Name:              name,
			Description:       description,
			Subjects:          []string{subjects},
			Retention:         jetstream.LimitsPolicy,
			Storage:           jetstream.FileStorage,
			Replicas:          cfg.Replicas,
			Duplicates:        cfg.Duplicates,
			Discard:           jetstream.DiscardNew,
			MaxBytes:          l.MaxBytes,
			MaxAge:            l.age(),
			MaxMsgsPerSubject: l.MaxMsgsPerSubject,
			MaxConsumers:      l.MaxConsumers,
			MaxMsgs:           Unlimited,
		}
	}

	inbound := base(StreamInbound, SubjectsInbound, "Commands from organisations, one subject per organisation.", cfg.Inbound)
	inbound.Retention = jetstream.WorkQueuePolicy
	// A full organisation subject refuses that organisation's next
	// command instead of dropping its oldest one.
	inbound.DiscardNewPerSubject = cfg.Inbound.MaxMsgsPerSubject > 0

	referrals := base(StreamReferrals, SubjectsReferrals, "The referral event log, one subject per referral.", cfg.Referrals)
	referrals.DenyDelete = true // erasure purges a whole subject; single events are never deleted
	referrals.AllowDirect = true
	// All events of one command are appended in one atomic batch, so a
	// crash never leaves half of them (see Bus.Append).
	referrals.AllowAtomicPublish = true
	// Never drop a referral's oldest events for its newest: refuse them.
	referrals.DiscardNewPerSubject = cfg.Referrals.MaxMsgsPerSubject > 0

	delivery := base(StreamDelivery, SubjectsDelivery, "What each organisation must see, one subject per organisation and referral.", cfg.Delivery)
	// Listings over HTTP read an organisation's deliveries with direct
	// gets by subject, without a consumer each.
	delivery.AllowDirect = true
	for _, d := range cfg.CrossBorderFrom {
		delivery.Sources = append(delivery.Sources, &jetstream.StreamSource{
			Name: StreamDelivery, FilterSubject: "out." + cfg.Country + ".>", Domain: d,
		})
		// The other hubs' organisations' answers to this hub's offers.
		inbound.Sources = append(inbound.Sources, crossBorderSource(cfg.Country, d))
	}

	timers := base(StreamTimers, SubjectsTimers, "Offer deadlines and reminders as scheduled messages.", cfg.Timers)
	timers.AllowMsgSchedules = true
	timers.AllowDirect = true // the router reads a placement's schedule before it writes one
	// JetStream does not allow DiscardNew with message schedules. TIMERS
	// holds one live schedule per open placement, so it stays far below
	// its bound; the storage check (StorageCheck) makes the node not ready
	// well before it would drop a schedule.
	timers.Discard = jetstream.DiscardOld

	dlq := base(StreamDLQ, SubjectsDLQ, "Messages that could not be decoded or authorised, with the reason in headers.", cfg.DLQ)
	dlq.Discard = jetstream.DiscardOld

	out := []jetstream.StreamConfig{inbound, referrals, delivery, timers, dlq}
	if len(cfg.CrossBorderFrom) > 0 {
		out = append(out, crossBorderStream(cfg))
	}
	return out
}

// isCountryCode reports whether s is two lower-case ASCII letters.
func isCountryCode(s string) bool {
	return len(s) == 2 && s[0] >= 'a' && s[0] <= 'z' && s[1] >= 'a' && s[1] <= 'z'
}

// DirectoryBucketConfig returns the configuration of the directory KV bucket
// for cfg with defaults applied.
func DirectoryBucketConfig(cfg StreamsConfig) jetstream.KeyValueConfig {
	cfg = cfg.WithDefaults()
	kc := jetstream.KeyValueConfig{
		Bucket:      BucketDirectory,
		Description: "Organisations and services of the directory.",
		History:     cfg.DirectoryHistory,
		MaxBytes:    cfg.DirectoryMaxBytes,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
	}
	if cfg.DirectoryFrom != "" {
		kc.Sources = []*jetstream.StreamSource{{Name: BucketDirectory, Domain: cfg.DirectoryFrom}}
	}
	return kc
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
