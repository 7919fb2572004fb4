package natsjs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/internal/clip"
	"github.com/invictus-network/invictus/internal/wire"
)

// The ports of the e-mail adapter (adapters/email), implemented on
// JetStream with the standard library and domain types only, so neither
// adapter imports the other.

// Buckets and consumers of the e-mail adapter.
const (
	// BucketEmail holds the e-mail adapter's state: the node secret that
	// signs action links, the sender lease, and the messages given up.
	BucketEmail = wire.BucketEmail
	// BucketEmailMarks holds used action links and sent messages; entries
	// expire after EmailMarksMaxAge, longer than any offer deadline.
	BucketEmailMarks = wire.BucketEmailMarks
	// EmailMarksMaxAge is how long a mark is kept.
	EmailMarksMaxAge = 32 * 24 * time.Hour
	// EmailAckWait is how long an e-mail delivery may be in hand (one SMTP
	// transaction and its bookkeeping) before it is delivered again.
	EmailAckWait = 2 * time.Minute
	// emailConsumerPrefix starts the name of an e-mail organisation's
	// durable consumer.
	emailConsumerPrefix = wire.EmailConsumerPrefix
	// emailPull is how many deliveries an e-mail consumer pulls ahead.
	emailPull = 32
)

// EmailBucketConfigs returns the configuration of the e-mail buckets for
// cfg with defaults applied: bounded by EmailMaxBytes and
// EmailMarksMaxBytes; a full bucket refuses the write.
func EmailBucketConfigs(cfg StreamsConfig) []jetstream.KeyValueConfig {
	cfg = cfg.WithDefaults()
	return []jetstream.KeyValueConfig{
		{Bucket: BucketEmail, Description: "E-mail adapter: link key, sender lease, failures.", History: 1, MaxBytes: cfg.EmailMaxBytes, Storage: jetstream.FileStorage, Replicas: cfg.Replicas},
		{Bucket: BucketEmailMarks, Description: "E-mail adapter: used links and sent messages.", History: 1, MaxBytes: cfg.EmailMarksMaxBytes, Storage: jetstream.FileStorage, Replicas: cfg.Replicas, TTL: EmailMarksMaxAge},
	}
}

// EnsureEmailBuckets creates (or updates) the e-mail buckets and returns
// their stores: state, then marks.
func EnsureEmailBuckets(ctx context.Context, js jetstream.JetStream, cfg StreamsConfig) (state, marks *RevStore, err error) {
	var out []*RevStore
	for _, bc := range EmailBucketConfigs(cfg) {
		kv, err := js.CreateOrUpdateKeyValue(ctx, bc)
		if err != nil {
			return nil, nil, fmt.Errorf("natsjs: ensure bucket %s: %w", bc.Bucket, err)
		}
		out = append(out, NewRevStore(kv))
	}
	return out[0], out[1], nil
}

// RevStore is a key-value store with revisions on a KV bucket
// (email.Store): fs.ErrNotExist for a missing key, fs.ErrExist for a key
// that exists (Create) or changed (Update).
type RevStore struct {
	kv jetstream.KeyValue
}

// NewRevStore returns a store over kv.
func NewRevStore(kv jetstream.KeyValue) *RevStore { return &RevStore{kv: kv} }

// Get returns the value and revision of key.
func (s *RevStore) Get(ctx context.Context, key string) ([]byte, uint64, error) {
	ctx, cancel := httpCtx(ctx)
	defer cancel()
	e, err := s.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return nil, 0, fmt.Errorf("natsjs: %s %s: %w", s.kv.Bucket(), key, fs.ErrNotExist)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("natsjs: get %s %s: %w", s.kv.Bucket(), key, err)
	}
	return e.Value(), e.Revision(), nil
}

// Create sets key if it has no value.
func (s *RevStore) Create(ctx context.Context, key string, value []byte) (uint64, error) {
	ctx, cancel := httpCtx(ctx)
	defer cancel()
	rev, err := s.kv.Create(ctx, key, value)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return 0, fmt.Errorf("natsjs: %s %s: %w", s.kv.Bucket(), key, fs.ErrExist)
	}
	if err != nil {
		return 0, fmt.Errorf("natsjs: create %s %s: %w", s.kv.Bucket(), key, err)
	}
	return rev, nil
}

// Update sets key if its revision is still revision.
func (s *RevStore) Update(ctx context.Context, key string, value []byte, revision uint64) (uint64, error) {
	ctx, cancel := httpCtx(ctx)
	defer cancel()
	rev, err := s.kv.Update(ctx, key, value, revision)
	var apiErr *jetstream.APIError
	if errors.Is(err, jetstream.ErrKeyExists) || (errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence) {
		return 0, fmt.Errorf("natsjs: %s %s changed: %w", s.kv.Bucket(), key, fs.ErrExist)
	}
	if err != nil {
		return 0, fmt.Errorf("natsjs: update %s %s: %w", s.kv.Bucket(), key, err)
	}
	return rev, nil
}

// Keys returns the keys that start with prefix, a whole number of
// dot-separated tokens followed by a dot ("" for every key).
func (s *RevStore) Keys(ctx context.Context, prefix string) ([]string, error) {
	ctx, cancel := httpCtx(ctx)
	defer cancel()
	filter := ">"
	if prefix != "" {
		if !strings.HasSuffix(prefix, ".") {
			return nil, fmt.Errorf("natsjs: keys of %s: prefix %q must end with a dot", s.kv.Bucket(), prefix)
		}
		filter = prefix + ">"
	}
	l, err := s.kv.ListKeysFiltered(ctx, filter)
	if err != nil {
		return nil, fmt.Errorf("natsjs: keys of %s: %w", s.kv.Bucket(), err)
	}
	var out []string
	seen := map[string]bool{}
	for k := range l.Keys() {
		if !seen[k] { // a key written during the listing may come twice
			seen[k] = true
			out = append(out, k)
		}
	}
	_ = l.Stop() // the listing is over: nothing is left to stop
	slices.Sort(out)
	return out, nil
}

// Delete removes key and its history.
func (s *RevStore) Delete(ctx context.Context, key string) error {
	ctx, cancel := httpCtx(ctx)
	defer cancel()
	if err := s.kv.Purge(ctx, key); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("natsjs: delete %s %s: %w", s.kv.Bucket(), key, err)
	}
	return nil
}

// EmailConsumerName returns the name of the e-mail adapter's durable
// consumer of organisation org: email_<cc>_<slug>, "" for an invalid id.
// It is apart from the organisation's own consumer ([OrgConsumerName]),
// so the e-mail channel never takes deliveries from the organisation's
// other clients.
func EmailConsumerName(org string) string {
	cc, slug, err := orgTokens(org)
	if err != nil {
		return ""
	}
	return emailConsumerPrefix + cc + "_" + slug
}

// EmailDeliveries consumes e-mail organisations' deliveries with one
// durable consumer each (email.Deliveries).
type EmailDeliveries struct {
	js  jetstream.JetStream
	log *slog.Logger
}

// NewEmailDeliveries returns a consumer source over js; log may be nil.
func NewEmailDeliveries(js jetstream.JetStream, log *slog.Logger) *EmailDeliveries {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &EmailDeliveries{js: js, log: log}
}

// Consume runs org's e-mail consumer (created from since when missing)
// and calls handle for each delivery until ctx ends (nil) or the
// consumer fails. handle's answer is applied: a positive delay is a
// NakWithDelay, an error a Term with the error as reason, otherwise a
// double (confirmed) Ack.
func (d *EmailDeliveries) Consume(ctx context.Context, org string, since time.Time,
	handle func(ctx context.Context, m events.Message, delivered uint64) (time.Duration, error)) error {
	name := EmailConsumerName(org)
	if name == "" {
		return fmt.Errorf("natsjs: %q is not an organisation id", org)
	}
	cctx, cancel := httpCtx(ctx)
	c, err := d.js.Consumer(cctx, StreamDelivery, name)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		cfg := jetstream.ConsumerConfig{
			Durable: name, Description: "E-mail deliveries of " + org + ".",
			FilterSubject: events.DeliveryFilter(org), DeliverPolicy: jetstream.DeliverAllPolicy,
			AckPolicy: jetstream.AckExplicitPolicy, AckWait: EmailAckWait, MaxAckPending: OrgMaxAckPendingDefault, MaxDeliver: -1,
		}
		if !since.IsZero() {
			cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &since
		}
		c, err = d.js.CreateConsumer(cctx, StreamDelivery, cfg)
	}
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("natsjs: e-mail consumer of %s: %w", org, err)
	}
	it, err := c.Messages(jetstream.PullMaxMessages(emailPull))
	if err != nil {
		return fmt.Errorf("natsjs: e-mail consumer of %s: %w", org, err)
	}
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	defer it.Stop()
	for {
		m, err := it.Next()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return nil
			}
			return fmt.Errorf("natsjs: e-mail consumer of %s: %w", org, err)
		}
		md, err := m.Metadata()
		if err != nil {
			_ = m.Term()
			continue
		}
		retry, herr := handle(ctx, events.Message{Subject: m.Subject(), Header: m.Headers(), Data: m.Data()}, md.NumDelivered)
		actx, acancel := httpCtx(context.WithoutCancel(ctx))
		switch {
		case herr != nil:
			err = m.TermWithReason(clip.Line(herr.Error(), 200))
		case retry > 0:
			err = m.NakWithDelay(retry)
		default:
			err = m.DoubleAck(actx)
		}
		acancel()
		if err != nil {
			d.log.Warn("natsjs: e-mail delivery not acknowledged; it comes again", slog.String("organisation", org), slog.Any("error", err))
		}
	}
}

// DeliveryNotices publishes a channel's own events, such as
// delivery.failed, to an organisation's delivery subject
// (email.Notices), and reads them back for the web console
// (console.Notices). They are not in the referral's log.
type DeliveryNotices struct {
	js jetstream.JetStream
}

// NewDeliveryNotices returns notices over js.
func NewDeliveryNotices(js jetstream.JetStream) *DeliveryNotices { return &DeliveryNotices{js: js} }

// Notify publishes msg, an event for org on its delivery subject of the
// referral msg.Subject names (out.<cc>.<org>.<referral id>), once: when
// the subject holds an event with the same ce-id and ce-source already it
// publishes nothing. Nats-Msg-Id is <source>/<id>.<org>, as the routing
// service's copies have, so two publications within the duplicate window
// are one.
func (n *DeliveryNotices) Notify(ctx context.Context, org string, msg events.Message) error {
	if got, _, err := events.ParseDeliverySubject(msg.Subject); err != nil || got != org {
		return fmt.Errorf("natsjs: %q is not a delivery subject of %s: %w", msg.Subject, org, events.ErrInvalidSubject)
	}
	id, src := wire.HeaderValue(msg.Header, "ce-id"), wire.HeaderValue(msg.Header, "ce-source")
	if id == "" || src == "" {
		return fmt.Errorf("natsjs: notice to %s without ce-id or ce-source", org)
	}
	ctx, cancel := httpCtx(ctx)
	defer cancel()
	found := false
	err := n.scan(ctx, msg.Subject, func(m *jetstream.RawStreamMsg) bool {
		found = wire.HeaderValue(m.Header, "ce-id") == id && wire.HeaderValue(m.Header, "ce-source") == src
		return found
	})
	if err != nil || found {
		return err
	}
	m := &nats.Msg{Subject: msg.Subject, Header: nats.Header{}, Data: msg.Data}
	for k, v := range msg.Header {
		m.Header[k] = slices.Clone(v)
	}
	m.Header.Set(jetstream.MsgIDHeader, events.MsgID(src, id)+"."+org)
	if _, err := n.js.PublishMsg(ctx, m, jetstream.WithExpectStream(StreamDelivery)); err != nil {
		return fmt.Errorf("natsjs: notify %s: %w", msg.Subject, err)
	}
	return nil
}

// Notices returns the events of the given types on org's delivery
// subject of referralID, oldest first; those that do not decode are
// skipped.
func (n *DeliveryNotices) Notices(ctx context.Context, org, referralID string, types ...string) ([]*events.Envelope, error) {
	subject, err := events.DeliverySubject(org, referralID)
	if err != nil {
		return nil, fmt.Errorf("natsjs: %w", err)
	}
	ctx, cancel := httpCtx(ctx)
	defer cancel()
	var out []*events.Envelope
	err = n.scan(ctx, subject, func(m *jetstream.RawStreamMsg) bool {
		if !slices.Contains(types, wire.HeaderValue(m.Header, "ce-type")) {
			return false
		}
		if env, err := events.Decode(events.Message{Subject: m.Subject, Header: m.Header, Data: m.Data}); err == nil {
			out = append(out, env)
		}
		return false
	})
	return out, err
}

// scan calls fn for each message of DELIVERY on subject, in order, until
// fn returns true or there is no more.
func (n *DeliveryNotices) scan(ctx context.Context, subject string, fn func(*jetstream.RawStreamMsg) bool) error {
	s, err := n.js.Stream(ctx, StreamDelivery)
	if err != nil {
		return fmt.Errorf("natsjs: read %s: %w", subject, err)
	}
	for seq := uint64(1); ; {
		m, err := s.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("natsjs: read %s: %w", subject, err)
		}
		if fn(m) {
			return nil
		}
		seq = m.Sequence + 1
	}
}
