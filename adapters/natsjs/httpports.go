package natsjs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/internal/tracing"
	"github.com/invictus-network/invictus/internal/wire"
)

// The ports of the HTTP API (adapters/httpapi), implemented on JetStream.
// Their method sets match the interfaces httpapi declares, using only the
// standard library and the domain packages, so neither adapter imports
// the other: cmd/invictus assigns the fields of [HTTPPorts] to
// httpapi.Deps.

// Buckets of the HTTP API.
const (
	// BucketTokens holds the API tokens: their SHA-256 hashes, roles and
	// organisations, never the tokens themselves.
	BucketTokens = wire.BucketTokens
	// BucketWebhooks holds webhook registrations (with their signing
	// secrets), cursors and delivery logs.
	BucketWebhooks = wire.BucketWebhooks
	// BucketKeys holds each organisation's age identity wrapped by its
	// passphrase in the browser: the server cannot open it.
	BucketKeys = wire.BucketKeys
	// KeysMaxBytes bounds the keys bucket: 16 MiB is some 16,000
	// organisations' wrapped identities.
	KeysMaxBytes int64 = 16 << 20
)

// Limits of the HTTP ports.
const (
	// HTTPTimeoutDefault bounds each JetStream request of a port when the
	// context has no earlier deadline.
	HTTPTimeoutDefault = 5 * time.Second
	// readerInactive is how long the server keeps a reader's ephemeral
	// consumer after its client went away without deleting it.
	readerInactive = 30 * time.Second
	// followBuffer is how many deliveries a follower pulls ahead.
	followBuffer = 64
	// rejectedLookback is how far back a wait for the rejection of a
	// command without a referral looks on out.<org>.rejected.
	rejectedLookback = DuplicatesDefault
)

// HTTPBucketConfigs returns the configuration of the tokens, webhooks and
// keys buckets for cfg with defaults applied: one revision per key (a revoked
// token or deleted webhook leaves no readable history).
func HTTPBucketConfigs(cfg StreamsConfig) []jetstream.KeyValueConfig {
	cfg = cfg.WithDefaults()
	return []jetstream.KeyValueConfig{
		{Bucket: BucketTokens, Description: "HTTP API tokens (SHA-256 hashes only).", History: 1, MaxBytes: cfg.TokensMaxBytes, Storage: jetstream.FileStorage, Replicas: cfg.Replicas},
		{Bucket: BucketWebhooks, Description: "Webhook registrations, cursors and delivery logs.", History: 1, MaxBytes: cfg.WebhooksMaxBytes, Storage: jetstream.FileStorage, Replicas: cfg.Replicas},
		{Bucket: BucketKeys, Description: "Organisations' age identities, wrapped by a passphrase (the server cannot open them).", History: 1, MaxBytes: KeysMaxBytes, Storage: jetstream.FileStorage, Replicas: cfg.Replicas},
	}
}

// HTTPPorts are the JetStream implementations of the HTTP API's ports.
type HTTPPorts struct {
	// Tokens is the store of API tokens (bucket [BucketTokens]).
	Tokens *KVStore
	// Webhooks is the store of webhooks (bucket [BucketWebhooks]).
	Webhooks *KVStore
	// Keys is the store of wrapped identities (bucket [BucketKeys]).
	Keys *KVStore
	// Commands publishes commands to INBOUND.
	Commands *InboundSink
	// Outcomes waits for the routing service's decisions.
	Outcomes *CommandOutcomes
	// Timeline reads referral logs from REFERRALS.
	Timeline *ReferralTimeline
	// Inbox reads organisations' deliveries from DELIVERY.
	Inbox *DeliveryInbox
	// Stats reads the DLQ size and the consumers' lag.
	Stats *StreamStats
	// Ready checks that JetStream answers.
	Ready func(context.Context) error
}

// NewHTTPPorts creates (or updates) the HTTP API's buckets and returns its
// ports over nc. The streams must exist ([EnsureStreams]). It returns an
// error naming the bucket JetStream refused, or a config error.
func NewHTTPPorts(ctx context.Context, nc *nats.Conn, cfg StreamsConfig) (*HTTPPorts, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	bus, err := NewBus(nc, BusConfig{})
	if err != nil {
		return nil, err
	}
	js := bus.JetStream()
	var kvs []jetstream.KeyValue
	for _, bc := range HTTPBucketConfigs(cfg) {
		kv, err := js.CreateOrUpdateKeyValue(ctx, bc)
		if err != nil {
			return nil, fmt.Errorf("natsjs: ensure bucket %s: %w", bc.Bucket, err)
		}
		kvs = append(kvs, kv)
	}
	return &HTTPPorts{
		Tokens:   NewKVStore(js, kvs[0]),
		Webhooks: NewKVStore(js, kvs[1]),
		Keys:     NewKVStore(js, kvs[2]),
		Commands: NewInboundSink(js),
		Outcomes: NewCommandOutcomes(js),
		Timeline: NewReferralTimeline(bus),
		Inbox:    NewDeliveryInbox(js),
		Stats:    NewStreamStats(js),
		Ready:    JetStreamCheck(js),
	}, nil
}

// withTimeout bounds ctx by HTTPTimeoutDefault unless it ends earlier.
func httpCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, HTTPTimeoutDefault)
}

// KVStore is a small key-value store (httpapi.Store) on a KV bucket.
// Missing keys are reported with errors wrapping fs.ErrNotExist, existing
// ones (Create) with fs.ErrExist. It is safe for concurrent use.
//
// Reads are direct gets, which any replica of the bucket may answer. A
// replica that has not yet stored a key just written (a token issued a
// moment ago, on a cluster) answers "not found"; so a miss is confirmed
// with the bucket's leader before it is reported (see [KVStore.Get]).
type KVStore struct {
	kv jetstream.KeyValue
	js jetstream.JetStream
}

// NewKVStore returns a store over kv, a bucket of js.
func NewKVStore(js jetstream.JetStream, kv jetstream.KeyValue) *KVStore {
	return &KVStore{kv: kv, js: js}
}

// Get returns the value of key. A key a direct get did not find is read
// again from the bucket's leader, which holds every write it acknowledged;
// only misses pay that second request.
func (s *KVStore) Get(ctx context.Context, key string) ([]byte, error) {
	ctx, cancel := httpCtx(ctx)
	defer cancel()
	e, err := s.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		var found bool
		var value []byte
		value, found, err = s.leaderGet(ctx, key)
		if err == nil && found {
			return value, nil
		}
		if err == nil {
			err = jetstream.ErrKeyNotFound
		}
	}
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return nil, fmt.Errorf("natsjs: %s %s: %w", s.kv.Bucket(), key, fs.ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("natsjs: get %s %s: %w", s.kv.Bucket(), key, err)
	}
	return e.Value(), nil
}

// leaderGet reads the last value of key with the stream API's message get
// (not a direct get), which only the stream's leader answers. found is
// false for a key never written, deleted or purged.
func (s *KVStore) leaderGet(ctx context.Context, key string) (value []byte, found bool, err error) {
	if s.js == nil {
		return nil, false, nil
	}
	bucket := s.kv.Bucket()
	_, m, err := leaderGet(ctx, s.js, "KV_"+bucket, directGetRequest{LastFor: "$KV." + bucket + "." + key})
	if err != nil || m == nil {
		return nil, false, err
	}
	if m.Header.Get("KV-Operation") != "" || m.Header.Get(jetstream.MarkerReasonHeader) != "" {
		return nil, false, nil
	}
	return m.Data, true, nil
}

// apiPrefix is the subject prefix of js's API requests, with its domain.
func apiPrefix(js jetstream.JetStream) string {
	o := js.Options()
	switch {
	case o.Domain != "":
		return "$JS." + o.Domain + ".API."
	case o.APIPrefix != "":
		return strings.TrimSuffix(o.APIPrefix, ".") + "."
	}
	return jetstream.DefaultAPIPrefix
}

// Put sets the value of key.
func (s *KVStore) Put(ctx context.Context, key string, value []byte) error {
	ctx, cancel := httpCtx(ctx)
	defer cancel()
	if _, err := s.kv.Put(ctx, key, value); err != nil {
		return fmt.Errorf("natsjs: put %s %s: %w", s.kv.Bucket(), key, err)
	}
	return nil
}

// Create sets the value of key if it has none.
func (s *KVStore) Create(ctx context.Context, key string, value []byte) error {
	ctx, cancel := httpCtx(ctx)
	defer cancel()
	_, err := s.kv.Create(ctx, key, value)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return fmt.Errorf("natsjs: %s %s: %w", s.kv.Bucket(), key, fs.ErrExist)
	}
	if err != nil {
		return fmt.Errorf("natsjs: create %s %s: %w", s.kv.Bucket(), key, err)
	}
	return nil
}

// Delete removes key and its history.
func (s *KVStore) Delete(ctx context.Context, key string) error {
	ctx, cancel := httpCtx(ctx)
	defer cancel()
	if err := s.kv.Purge(ctx, key); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("natsjs: delete %s %s: %w", s.kv.Bucket(), key, err)
	}
	return nil
}

// Keys returns the keys starting with prefix ("" or ending with a dot).
func (s *KVStore) Keys(ctx context.Context, prefix string) ([]string, error) {
	if prefix != "" && !strings.HasSuffix(prefix, ".") {
		return nil, fmt.Errorf("natsjs: key prefix %q must end with a dot", prefix)
	}
	ctx, cancel := httpCtx(ctx)
	defer cancel()
	var (
		l   jetstream.KeyLister
		err error
	)
	if prefix == "" {
		l, err = s.kv.ListKeys(ctx)
	} else {
		l, err = s.kv.ListKeysFiltered(ctx, prefix+">")
	}
	if err != nil {
		return nil, fmt.Errorf("natsjs: keys of %s: %w", s.kv.Bucket(), err)
	}
	defer func() { _ = l.Stop() }() // the lister stops itself once the keys are read
	var out []string
	for k := range l.Keys() {
		out = append(out, k)
	}
	return out, nil
}

// InboundSink publishes organisations' commands to INBOUND
// (httpapi.CommandSink).
type InboundSink struct {
	js jetstream.JetStream
}

// NewInboundSink returns a sink publishing with js.
func NewInboundSink(js jetstream.JetStream) *InboundSink { return &InboundSink{js: js} }

// Submit publishes msg, which must be on org's INBOUND subject, and
// returns once INBOUND stored it. The Nats-Msg-Id header is set to
// events.MsgID of org's source and the CloudEvents id, so a command sent
// twice is stored once and another organisation's id never shadows it. It returns an error when the subject is not org's or JetStream
// does not acknowledge.
func (s *InboundSink) Submit(ctx context.Context, org string, msg events.Message) error {
	if got, err := events.ParseInboundSubject(msg.Subject); err != nil || got != org {
		return fmt.Errorf("natsjs: %q is not the inbound subject of %s: %w", msg.Subject, org, events.ErrInvalidSubject)
	}
	// Always the organisation's source with the id: what the caller set
	// is not trusted, so one organisation cannot shadow another's ids.
	if err := wire.SetMsgID(org, &msg); err != nil {
		return fmt.Errorf("natsjs: %w", err)
	}
	m := &nats.Msg{Subject: msg.Subject, Header: nats.Header(msg.Header), Data: msg.Data}
	tracing.Inject(ctx, m.Header) // the router's span is the request's child
	ctx, cancel := httpCtx(ctx)
	defer cancel()
	if _, err := s.js.PublishMsg(ctx, m, jetstream.WithExpectStream(StreamInbound)); err != nil {
		return fmt.Errorf("natsjs: submit to %s: %w", msg.Subject, err)
	}
	return nil
}

// ReferralTimeline reads referral logs from REFERRALS (httpapi.Timeline).
type ReferralTimeline struct {
	bus *Bus
}

// NewReferralTimeline returns a timeline reading through bus.
func NewReferralTimeline(bus *Bus) *ReferralTimeline { return &ReferralTimeline{bus: bus} }

// Events returns every event of the referral, in order; none when it
// does not exist. Errors wrap routing.ErrUnavailable or routing.ErrCorrupt.
func (t *ReferralTimeline) Events(ctx context.Context, referralID string) ([]*events.Envelope, error) {
	if !events.IsReferralID(referralID) {
		return nil, nil
	}
	h, err := t.bus.Load(ctx, referralID, 0)
	if err != nil {
		return nil, err
	}
	return h.Events, nil
}

// DeliveryInbox reads organisations' deliveries from DELIVERY
// (httpapi.Inbox). A listing is read with batched direct gets by subject,
// so an organisation that reads over HTTP costs the server no consumer
// (a node has thousands of organisations, and JetStream bounds a stream's
// consumers); following uses an ordered consumer that acknowledges
// nothing and lives only while the request does. Readers never disturb
// each other or the organisations' own durable consumers.
type DeliveryInbox struct {
	js      jetstream.JetStream
	replies replyMux
}

// NewDeliveryInbox returns an inbox reading with js.
func NewDeliveryInbox(js jetstream.JetStream) *DeliveryInbox { return &DeliveryInbox{js: js} }

// inboxBatch is how many deliveries one direct get of a listing asks for.
const inboxBatch = 256

// directGetDelivery is the subject of DELIVERY's direct-get API.
const directGetDelivery = "$JS.API.DIRECT.GET." + StreamDelivery

// directHeaders are the headers a direct get adds to a stored message.
var directHeaders = []string{jetstream.StreamHeader, jetstream.SequenceHeader, jetstream.TimeStampHeaer, jetstream.SubjectHeader, hdrNumPending, "Nats-Last-Sequence"}

// deliverFrom returns the policy and start sequence of a consumer that
// reads what comes after sequence after.
func deliverFrom(after uint64) (jetstream.DeliverPolicy, uint64) {
	if after == 0 {
		return jetstream.DeliverAllPolicy, 0
	}
	return jetstream.DeliverByStartSequencePolicy, after + 1
}

// message converts a JetStream message; seq is its stream sequence.
func message(m jetstream.Msg) (uint64, events.Message, error) {
	md, err := m.Metadata()
	if err != nil {
		return 0, events.Message{}, fmt.Errorf("natsjs: delivery metadata: %w", err)
	}
	return md.Sequence.Stream, events.Message{Subject: m.Subject(), Header: m.Headers(), Data: m.Data()}, nil
}

// Read calls fn for at most limit deliveries of org stored after
// sequence after, in order.
func (in *DeliveryInbox) Read(ctx context.Context, org string, after uint64, limit int, fn func(seq uint64, m events.Message) error) error {
	if !events.IsOrgID(org) {
		return fmt.Errorf("natsjs: %q is not an organisation id", org)
	}
	if limit < 1 {
		return nil
	}
	ctx, cancel := httpCtx(ctx)
	defer cancel()
	nc := in.js.Conn()
	inbox, replies, done, err := in.replies.open(nc, inboxBatch+2)
	if err != nil {
		return fmt.Errorf("natsjs: read deliveries of %s: %w", org, err)
	}
	defer done()
	filter := events.DeliveryFilter(org)
	for read := 0; read < limit; {
		want := min(limit-read, inboxBatch)
		req, _ := json.Marshal(directGetRequest{Seq: after + 1, NextFor: filter, Batch: want})
		if err := nc.PublishRequest(directGetDelivery, inbox, req); err != nil {
			return fmt.Errorf("natsjs: read deliveries of %s: %w", org, err)
		}
		n, more := 0, false
		var chain batchChain
	batch:
		for {
			var m *nats.Msg
			select {
			case m = <-replies:
			case <-ctx.Done():
				return fmt.Errorf("natsjs: read deliveries of %s: %w", org, ctx.Err())
			}
			switch status := m.Header.Get(hdrStatus); status {
			case "":
			case "404": // nothing after
				return nil
			case "204": // end of batch
				if err := chain.check(m); err != nil {
					return fmt.Errorf("natsjs: read deliveries of %s: %w", org, err)
				}
				pending, _ := strconv.ParseUint(m.Header.Get(hdrNumPending), 10, 64)
				more = pending > 0
				break batch
			default:
				return fmt.Errorf("natsjs: read deliveries of %s: direct get status %s %s", org, status, m.Header.Get("Description"))
			}
			seq, err := strconv.ParseUint(m.Header.Get(jetstream.SequenceHeader), 10, 64)
			if err != nil {
				return fmt.Errorf("natsjs: read deliveries of %s: no sequence in direct get reply", org)
			}
			if err := chain.check(m); err != nil {
				return fmt.Errorf("natsjs: read deliveries of %s: %w", org, err)
			}
			chain.last = seq
			subject := m.Header.Get(jetstream.SubjectHeader)
			for _, h := range directHeaders {
				m.Header.Del(h)
			}
			n++
			after = seq
			if err := fn(seq, events.Message{Subject: subject, Header: m.Header, Data: m.Data}); err != nil {
				return err
			}
		}
		read += n
		if !more || n == 0 {
			return nil
		}
	}
	return nil
}

// Follow calls fn for every delivery of org after sequence after, stored
// or to come, until ctx ends (nil) or fn fails (its error). An ordered
// consumer is used, so a lost connection resumes where it stopped.
func (in *DeliveryInbox) Follow(ctx context.Context, org string, after uint64, fn func(seq uint64, m events.Message) error) error {
	if !events.IsOrgID(org) {
		return fmt.Errorf("natsjs: %q is not an organisation id", org)
	}
	policy, start := deliverFrom(after)
	return follow(ctx, in.js, StreamDelivery, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{events.DeliveryFilter(org)}, DeliverPolicy: policy, OptStartSeq: start,
		InactiveThreshold: readerInactive,
	}, func(m jetstream.Msg) (bool, error) {
		seq, em, err := message(m)
		if err != nil {
			return true, err
		}
		return false, fn(seq, em)
	})
}

// follow runs an ordered consumer on stream and calls handle for each
// message until ctx ends (nil), handle says it is done (nil) or fails
// (its error), or the consumer fails.
func follow(ctx context.Context, js jetstream.JetStream, stream string, cfg jetstream.OrderedConsumerConfig, handle func(jetstream.Msg) (bool, error)) error {
	cctx, cancel := httpCtx(ctx)
	c, err := js.OrderedConsumer(cctx, stream, cfg)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("natsjs: follow %s: %w", stream, err)
	}
	it, err := c.Messages(jetstream.PullMaxMessages(followBuffer))
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("natsjs: follow %s: %w", stream, err)
	}
	stopped := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		select {
		case <-ctx.Done():
			it.Stop()
		case <-stopped:
		}
	})
	defer func() {
		close(stopped)
		it.Stop()
		wg.Wait()
	}()
	for {
		m, err := it.Next()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return nil
			}
			return fmt.Errorf("natsjs: follow %s: %w", stream, err)
		}
		done, err := handle(m)
		if err != nil || done {
			return err
		}
	}
}

// Last returns DELIVERY's last sequence: what follows it is new for
// every organisation.
func (in *DeliveryInbox) Last(ctx context.Context, _ string) (uint64, error) {
	ctx, cancel := httpCtx(ctx)
	defer cancel()
	s, err := in.js.Stream(ctx, StreamDelivery)
	if err != nil {
		return 0, fmt.Errorf("natsjs: %s: %w", StreamDelivery, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("natsjs: %s: %w", StreamDelivery, err)
	}
	return info.State.LastSeq, nil
}

// StreamStats reads the figures of /metrics kept in the streams
// (httpapi.StreamStats).
type StreamStats struct {
	js jetstream.JetStream
}

// NewStreamStats returns a reader using js.
func NewStreamStats(js jetstream.JetStream) *StreamStats { return &StreamStats{js: js} }

// Stats returns the number of messages in DLQ and the number of
// messages not yet delivered to each durable consumer of INBOUND,
// REFERRALS, DELIVERY and TIMERS, by "<stream>/<consumer>".
func (s *StreamStats) Stats(ctx context.Context) (uint64, map[string]uint64, error) {
	ctx, cancel := httpCtx(ctx)
	defer cancel()
	dlq, err := s.js.Stream(ctx, StreamDLQ)
	if err != nil {
		return 0, nil, fmt.Errorf("natsjs: %s: %w", StreamDLQ, err)
	}
	info, err := dlq.Info(ctx)
	if err != nil {
		return 0, nil, fmt.Errorf("natsjs: %s: %w", StreamDLQ, err)
	}
	lag := map[string]uint64{}
	for _, name := range []string{StreamInbound, StreamReferrals, StreamDelivery, StreamTimers} {
		st, err := s.js.Stream(ctx, name)
		if err != nil {
			return 0, nil, fmt.Errorf("natsjs: %s: %w", name, err)
		}
		l := st.ListConsumers(ctx)
		for ci := range l.Info() {
			if ci.Config.Durable != "" {
				lag[name+"/"+ci.Name] = ci.NumPending
			}
		}
		if err := l.Err(); err != nil {
			return 0, nil, fmt.Errorf("natsjs: consumers of %s: %w", name, err)
		}
	}
	return info.State.Msgs, lag, nil
}

// JetStreamCheck returns a readiness check that asks JetStream for the
// account's information.
func JetStreamCheck(js jetstream.JetStream) func(context.Context) error {
	return func(ctx context.Context) error {
		ctx, cancel := httpCtx(ctx)
		defer cancel()
		if _, err := js.AccountInfo(ctx); err != nil {
			return fmt.Errorf("natsjs: jetstream: %w", err)
		}
		return nil
	}
}

// Watch calls fn with the value of every key starting with prefix ("" or
// ending with a dot), then caughtUp, then fn for every later change (a
// nil value for a deleted or purged key), until ctx ends (it returns nil)
// or the watch fails (it returns the error). It implements
// httpapi.Watcher.
func (s *KVStore) Watch(ctx context.Context, prefix string, fn func(key string, value []byte), caughtUp func()) error {
	if prefix != "" && !strings.HasSuffix(prefix, ".") {
		return fmt.Errorf("natsjs: key prefix %q must end with a dot", prefix)
	}
	filter := prefix + ">"
	w, err := s.kv.Watch(ctx, filter)
	if err != nil {
		return fmt.Errorf("natsjs: watch %s %s: %w", s.kv.Bucket(), filter, err)
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-w.Updates():
			switch {
			case !ok && ctx.Err() != nil:
				return nil
			case !ok:
				return fmt.Errorf("natsjs: watch %s %s: stopped", s.kv.Bucket(), filter)
			case e == nil:
				caughtUp()
			case e.Operation() == jetstream.KeyValuePut:
				fn(e.Key(), e.Value())
			default:
				fn(e.Key(), nil)
			}
		}
	}
}
