package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/internal/clip"
	"github.com/invictus-network/invictus/internal/wire"
	"github.com/invictus-network/invictus/seal"
)

// Defaults of [InboxConfig].
const (
	// InboxAckWaitDefault is how long a delivery may stay unacknowledged
	// before JetStream delivers it again.
	InboxAckWaitDefault = 30 * time.Second
	// InboxLingerDefault is how long the inbox waits for more deliveries
	// to fill a batch once it has one.
	InboxLingerDefault = 2 * time.Millisecond
	// InboxRetryDelayDefault is how long a delivery that could not be
	// stored (the hook failed, the database is down) waits before it is
	// delivered again.
	InboxRetryDelayDefault = time.Second
)

// InboxConfig configures an [Inbox]. Org is required; the zero value of
// every other field means its default.
type InboxConfig struct {
	// Org is the organisation id (pt.apav) whose deliveries are stored.
	Org string
	// Schema holds the inbox and envelopes tables. Default [SchemaDefault].
	Schema string
	// Stream is the delivery stream. Default [StreamDelivery].
	Stream string
	// Consumer names the durable consumer, filtered to the organisation's
	// delivery subjects. Default "org_<cc>_<slug>": the organisation's own
	// consumer, which the node provisions and the organisation's
	// credentials may pull from (they may not create one). Whatever else
	// reads that consumer (invictus inbox --follow, client.Receive) shares
	// the deliveries with the inbox.
	Consumer string
	// Identity is the organisation's age identity (AGE-SECRET-KEY-1...),
	// to open the case envelopes of referral.handover into the envelopes
	// table. Empty leaves them sealed in the inbox.
	Identity string
	// Hook optionally names a SQL function, "name" or "schema.name",
	// taking the event id (text): it is called in the transaction that
	// inserts each new inbox row, so the partner's own code can map it
	// into the case tables atomically. An unqualified name is looked up in
	// Schema.
	Hook string
	// BatchSize is how many deliveries one transaction stores at most.
	// Default [BatchSizeDefault].
	BatchSize int
	// AckWait of the consumer, when the inbox creates it (a consumer that
	// exists is used as it is). Default [InboxAckWaitDefault].
	AckWait time.Duration
	// Linger is how long to wait for more deliveries once one is there.
	// Default [InboxLingerDefault].
	Linger time.Duration
	// RetryDelay is the delay of a delivery that could not be stored.
	// Default [InboxRetryDelayDefault].
	RetryDelay time.Duration
	// Timeout bounds one batch. Default [TimeoutDefault].
	Timeout time.Duration
	// BackoffMin and BackoffMax bound the waits after failures. Defaults
	// [BackoffMinDefault], [BackoffMaxDefault].
	BackoffMin, BackoffMax time.Duration
	// Logger receives the inbox's logs: event ids, types and error
	// classes, never payloads or envelopes. Default discards.
	Logger *slog.Logger
	// Metrics receive the inbox's counts. Default: unregistered metrics.
	Metrics *Metrics
}

// WithDefaults returns a copy of c with every unset field given its default.
func (c InboxConfig) WithDefaults() InboxConfig {
	def(&c.Schema, SchemaDefault)
	def(&c.Stream, StreamDelivery)
	if c.Consumer == "" && events.IsOrgID(c.Org) {
		c.Consumer = wire.ConsumerName(c.Org)
	}
	def(&c.BatchSize, BatchSizeDefault)
	def(&c.AckWait, InboxAckWaitDefault)
	def(&c.Linger, InboxLingerDefault)
	def(&c.RetryDelay, InboxRetryDelayDefault)
	def(&c.Timeout, TimeoutDefault)
	def(&c.BackoffMin, BackoffMinDefault)
	def(&c.BackoffMax, BackoffMaxDefault)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate reports the first invalid field of c, naming it. Call it on the
// result of [InboxConfig.WithDefaults].
func (c InboxConfig) Validate() error {
	switch {
	case !events.IsOrgID(c.Org):
		return fmt.Errorf("postgres: InboxConfig.Org %q is not an organisation id (<country>.<slug>)", c.Org)
	case c.Consumer == "" || strings.ContainsAny(c.Consumer, ".*> \t/\\"):
		return fmt.Errorf("postgres: InboxConfig.Consumer %q is not a consumer name", c.Consumer)
	case strings.ContainsAny(c.Stream, ".*> \t"):
		return fmt.Errorf("postgres: InboxConfig.Stream %q is not a stream name", c.Stream)
	case c.BatchSize < 1 || c.BatchSize > BatchSizeMax:
		return fmt.Errorf("postgres: InboxConfig.BatchSize %d must be from 1 to %d", c.BatchSize, BatchSizeMax)
	case c.AckWait < time.Second:
		return fmt.Errorf("postgres: InboxConfig.AckWait %s must be at least 1s", c.AckWait)
	case c.Linger < 0 || c.Linger > time.Second:
		return fmt.Errorf("postgres: InboxConfig.Linger %s must be from 0 to 1s", c.Linger)
	case c.RetryDelay <= 0:
		return fmt.Errorf("postgres: InboxConfig.RetryDelay %s must be positive", c.RetryDelay)
	case c.Timeout <= 0:
		return fmt.Errorf("postgres: InboxConfig.Timeout %s must be positive", c.Timeout)
	case c.BackoffMin <= 0 || c.BackoffMax < c.BackoffMin:
		return fmt.Errorf("postgres: InboxConfig.BackoffMin %s and BackoffMax %s must be positive, min <= max", c.BackoffMin, c.BackoffMax)
	}
	if err := ValidateSchema(c.Schema); err != nil {
		return fmt.Errorf("postgres: InboxConfig.Schema: %w", err)
	}
	if c.Identity != "" {
		if _, err := seal.ParseIdentityFile([]byte(c.Identity)); err != nil {
			// The error names the problem, never the key.
			return fmt.Errorf("postgres: InboxConfig.Identity: %w", seal.ErrIdentity)
		}
	}
	if c.Hook != "" {
		if _, err := HookCall(c.Hook, c.Schema); err != nil {
			return fmt.Errorf("postgres: InboxConfig.Hook: %w", err)
		}
	}
	return nil
}

var reIdent = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_$]{0,62}$`)

// HookCall returns the quoted, schema-qualified function name of hook
// ("name" or "schema.name"; an unqualified name is qualified with schema),
// or an error if hook is not one or two SQL identifiers.
func HookCall(hook, schema string) (string, error) {
	parts := strings.Split(hook, ".")
	if len(parts) == 1 {
		parts = []string{schema, parts[0]}
	}
	if len(parts) != 2 {
		return "", fmt.Errorf("hook %q must be a function name or schema.name", hook)
	}
	for _, p := range parts {
		if !reIdent.MatchString(p) {
			return "", fmt.Errorf("hook %q: %q is not an identifier (letters, digits, _ and $, not starting with a digit)", hook, p)
		}
	}
	return pgx.Identifier(parts).Sanitize(), nil
}

// ErrHookMissing reports that the hook function named in the config does
// not exist with a text argument.
var ErrHookMissing = errors.New("postgres: hook function not found")

// Inbox stores an organisation's deliveries in its inbox table: each
// event once (event id primary key, ON CONFLICT DO NOTHING), acknowledged
// to JetStream only after the transaction that stored it commits. A
// delivery redelivered after a lost acknowledgement finds its row and is
// acknowledged again without a second row.
//
// In the same transaction, a referral.handover's envelope is opened with
// the organisation's identity (when configured) into the envelopes table;
// a referral.erased removes every other row of its referral from the
// inbox, envelopes and outbox tables (and later deliveries of that
// referral are not stored); and the hook function (when configured) is
// called with each new event id, so that the partner's code can do the
// same in its case tables. A delivery that cannot be stored (the hook raised an error, the
// database is down) is delivered again after RetryDelay; one that does not
// decode, or that the database can never store, is terminated and
// counted, and never blocks the others.
type Inbox struct {
	db      *pgxpool.Pool
	js      jetstream.JetStream
	nc      *nats.Conn
	cfg     InboxConfig
	log     *slog.Logger
	metrics *Metrics
	q       string
	hook    string // quoted, qualified; "" without a hook
	health  health
}

// NewInbox returns the inbox of cfg.Org, consuming on nc and writing
// through db. It returns an error naming an invalid config field.
func NewInbox(db *pgxpool.Pool, nc *nats.Conn, cfg InboxConfig) (*Inbox, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if db == nil || nc == nil {
		return nil, errors.New("postgres: NewInbox needs a database pool and a NATS connection")
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("postgres: inbox: %w", err)
	}
	if cfg.Identity != "" {
		id, _ := seal.ParseIdentityFile([]byte(cfg.Identity)) // checked by Validate
		cfg.Identity = id
	}
	in := &Inbox{db: db, js: js, nc: nc, cfg: cfg, metrics: cfg.Metrics, q: quoteIdent(cfg.Schema),
		log: cfg.Logger.With(slog.String("component", componentInbox), slog.String("schema", cfg.Schema))}
	if in.metrics == nil {
		in.metrics, _ = NewMetrics(nil, cfg.Schema)
	}
	if cfg.Hook != "" {
		in.hook, _ = HookCall(cfg.Hook, cfg.Schema) // checked by Validate
	}
	return in, nil
}

// Health returns the error of the inbox's last round of work, or nil.
func (in *Inbox) Health() error { return in.health.get() }

// Consumer returns the name of the inbox's durable consumer.
func (in *Inbox) Consumer() string { return in.cfg.Consumer }

// Check verifies what the inbox needs from the database: its tables, and
// the hook function taking text when one is configured. It returns an
// error wrapping ErrHookMissing when the hook does not exist.
func (in *Inbox) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, in.cfg.Timeout)
	defer cancel()
	if _, err := in.db.Exec(ctx, `SELECT 1 FROM `+in.q+`.inbox LIMIT 0`); err != nil {
		return fmt.Errorf("postgres: inbox: table %s.inbox: %w", in.cfg.Schema, err)
	}
	if in.hook == "" {
		return nil
	}
	var found bool
	if err := in.db.QueryRow(ctx, `SELECT to_regprocedure($1) IS NOT NULL`, in.hook+"(text)").Scan(&found); err != nil {
		return fmt.Errorf("postgres: inbox: look up hook %s: %w", in.hook, err)
	}
	if !found {
		return fmt.Errorf("%w: %s(text)", ErrHookMissing, in.hook)
	}
	return nil
}

// Run creates (or updates) the durable consumer and stores deliveries
// until ctx ends, then returns nil. It returns an error at once if Check
// fails for a reason that retrying cannot fix (a missing hook); every
// other failure is retried with a growing delay and reported by Health.
func (in *Inbox) Run(ctx context.Context) error {
	if err := in.Check(ctx); err != nil {
		if errors.Is(err, ErrHookMissing) {
			return err
		}
		in.health.set(err)
	}
	for failures := 0; ctx.Err() == nil; {
		start := time.Now()
		err := in.consume(ctx)
		if ctx.Err() != nil {
			// Stopped, as Run's contract says: what consume returned is the
			// cancellation's doing, not a failure to report.
			return nil //nolint:nilerr // see above: a stop is not an error
		}
		if time.Since(start) > in.cfg.BackoffMax {
			failures = 0
		}
		failures++
		in.health.set(err)
		in.metrics.countError(componentInbox, kindNATS)
		in.log.Warn("inbox consumer failed; restarting", slog.String("error", err.Error()))
		sleep(ctx, backoff(in.cfg.BackoffMin, in.cfg.BackoffMax, failures))
	}
	return nil
}

// consumerConfig is the durable consumer of the organisation's deliveries.
func (in *Inbox) consumerConfig() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       in.cfg.Consumer,
		Description:   "INVICTUS Postgres inbox of " + in.cfg.Org,
		FilterSubject: events.DeliveryFilter(in.cfg.Org),
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       in.cfg.AckWait,
		MaxAckPending: max(4*in.cfg.BatchSize, 1024),
	}
}

// consume runs one consumer session: it returns when ctx ends (nil) or
// the consumer fails.
func (in *Inbox) consume(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, in.cfg.Timeout)
	// The provisioned consumer is used as it is: an organisation's user
	// may pull from it but not create or change it. Only where there is
	// none (a server without provisioning) does the inbox create it.
	cons, err := in.js.Consumer(cctx, in.cfg.Stream, in.cfg.Consumer)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		cons, err = in.js.CreateConsumer(cctx, in.cfg.Stream, in.consumerConfig())
	}
	cancel()
	if err != nil {
		return fmt.Errorf("postgres: inbox: consumer %s on %s: %w", in.cfg.Consumer, in.cfg.Stream, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(2 * in.cfg.BatchSize))
	if err != nil {
		return fmt.Errorf("postgres: inbox: consume %s: %w", in.cfg.Consumer, err)
	}
	defer it.Stop()
	in.health.set(nil)

	// Two stages, so that decoding the next batch overlaps with storing
	// this one; batches are stored and acknowledged in delivery order.
	batches := make(chan []delivery, 1)
	var gatherErr error
	go func() {
		defer close(batches)
		for {
			msgs, err := gather(ctx, it, in.cfg.BatchSize, in.cfg.Linger)
			if len(msgs) > 0 {
				batches <- in.decodeAll(msgs)
			}
			if err != nil {
				gatherErr = err
				return
			}
		}
	}()
	for ds := range batches {
		in.handle(ctx, ds)
	}
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("postgres: inbox: next delivery: %w", gatherErr)
}

// gather returns the next message of it, waiting until ctx ends, and the
// messages that follow it within linger each, up to n in all. A non-nil
// error comes with the messages gathered before it.
func gather(ctx context.Context, it jetstream.MessagesContext, n int, linger time.Duration) ([]jetstream.Msg, error) {
	m, err := it.Next(jetstream.NextContext(ctx))
	if err != nil {
		return nil, err
	}
	batch := []jetstream.Msg{m}
	for len(batch) < n && linger > 0 {
		m, err := it.Next(jetstream.NextMaxWait(linger))
		if errors.Is(err, nats.ErrTimeout) {
			break
		}
		if err != nil {
			return batch, err
		}
		batch = append(batch, m)
	}
	return batch, nil
}

// delivery is one decoded delivery.
type delivery struct {
	msg jetstream.Msg
	env *events.Envelope
	seq uint64
	// span is the delivery's span and traceparent its context, for the
	// row, while traces are exported (see traceInbox).
	span        trace.Span
	traceparent *string
}

// handle stores a batch of decoded deliveries and acknowledges what was
// stored. When the batch transaction fails, each delivery is tried in a
// transaction of its own, so that one failing delivery delays only
// itself.
func (in *Inbox) handle(ctx context.Context, ds []delivery) {
	if len(ds) == 0 {
		return
	}
	traceInbox(ctx, in.cfg.Org, ds)
	err := in.store(ctx, ds)
	if err == nil {
		in.health.set(nil)
		for _, d := range ds {
			endDelivery(d, "stored")
			in.ack(d)
		}
		return
	}
	in.health.set(err)
	// A database that cannot be reached fails every delivery alike: they
	// all come again later. Otherwise one delivery may be the cause (the
	// hook refused it): each is tried alone.
	alone := len(ds) > 1 && !transient(err)
	if alone {
		in.log.Warn("inbox batch failed; storing its deliveries one by one", slog.Int("deliveries", len(ds)), slog.String("error", err.Error()))
	}
	for _, d := range ds {
		if alone {
			err = in.store(ctx, []delivery{d})
		}
		switch {
		case err == nil:
			endDelivery(d, "stored")
			in.ack(d)
		case permanent(err):
			endDelivery(d, "terminated")
			in.metrics.countError(componentInbox, kindDatabase)
			in.log.Error("inbox delivery can never be stored; terminated", slog.String("id", d.env.Event.ID()),
				slog.String("type", d.env.Event.Type()), slog.String("error", err.Error()))
			if terr := d.msg.TermWithReason("the inbox table cannot store this event"); terr != nil {
				in.log.Warn("terminate delivery", slog.String("id", d.env.Event.ID()), slog.String("error", terr.Error()))
			}
		default:
			endDelivery(d, "retried")
			in.log.Warn("inbox delivery not stored; it will be delivered again", slog.String("id", d.env.Event.ID()),
				slog.String("type", d.env.Event.Type()), slog.String("error", err.Error()))
			if nerr := d.msg.NakWithDelay(in.cfg.RetryDelay); nerr != nil {
				in.log.Warn("nak delivery", slog.String("id", d.env.Event.ID()), slog.String("error", nerr.Error()))
			}
		}
	}
}

func (in *Inbox) ack(d delivery) {
	if err := d.msg.Ack(); err != nil {
		// The row is committed: a redelivery finds it and is acknowledged.
		in.metrics.countError(componentInbox, kindNATS)
		in.log.Warn("acknowledge delivery", slog.String("id", d.env.Event.ID()), slog.String("error", err.Error()))
	}
}

// decodeAll decodes msgs, in parallel, and returns the deliveries that
// decode, in order; the others are terminated.
func (in *Inbox) decodeAll(msgs []jetstream.Msg) []delivery {
	decoded := make([]delivery, len(msgs))
	ok := make([]bool, len(msgs))
	parallel(len(msgs), func(i int) { decoded[i], ok[i] = in.decode(msgs[i]) })
	ds := make([]delivery, 0, len(msgs))
	for i, d := range decoded {
		if ok[i] {
			ds = append(ds, d)
		}
	}
	return ds
}

// decode decodes m, or terminates it when it does not decode.
func (in *Inbox) decode(m jetstream.Msg) (delivery, bool) {
	env, err := events.Decode(events.Message{Subject: m.Subject(), Header: m.Headers(), Data: m.Data()})
	if err != nil {
		in.metrics.countError(componentInbox, kindDecode)
		in.log.Error("delivery does not decode; terminated", slog.String("subject", m.Subject()), slog.String("error", clip.To(err.Error(), 500)))
		if terr := m.TermWithReason("does not decode as an INVICTUS event"); terr != nil {
			in.log.Warn("terminate delivery", slog.String("subject", m.Subject()), slog.String("error", terr.Error()))
		}
		return delivery{}, false
	}
	d := delivery{msg: m, env: env}
	if meta, err := m.Metadata(); err == nil {
		d.seq = meta.Sequence.Stream
	}
	return d, true
}

// errRefused marks an inbox row that the database refuses for its data
// (SQLSTATE class 22, such as a NUL character that jsonb cannot hold):
// retrying the same delivery cannot fix it. Errors of the hook never are,
// whatever their SQLSTATE: the partner may fix the function.
var errRefused = errors.New("postgres: inbox: the database refuses the event's data")

func permanent(err error) bool { return errors.Is(err, errRefused) }

func dataException(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && strings.HasPrefix(pe.Code, "22")
}

// store writes ds in one transaction: the inbox rows, then for each new
// row its opened envelope and the hook call.
func (in *Inbox) store(ctx context.Context, ds []delivery) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), in.cfg.Timeout)
	defer cancel()
	n := len(ds)
	var (
		ids, types, sources, subjects, payloads = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		refs, traceparents                      = make([]*string, n), make([]*string, n)
		times                                   = make([]time.Time, n)
		seqs                                    = make([]int64, n)
	)
	for i, d := range ds {
		e := d.env.Event
		ids[i], types[i], sources[i], subjects[i] = e.ID(), e.Type(), e.Source(), e.Subject()
		payloads[i] = string(e.Data())
		if events.IsReferralID(e.Subject()) {
			s := e.Subject()
			refs[i] = &s
		}
		times[i] = e.Time()
		seqs[i] = int64(d.seq)
		traceparents[i] = d.traceparent
	}
	tx, err := in.db.Begin(ctx)
	if err != nil {
		return fmt.Errorf("postgres: inbox: begin: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit
	rows, err := tx.Query(ctx, `INSERT INTO `+in.q+`.inbox (event_id, type, source, subject, referral_id, payload, event_time, stream_seq, traceparent)
		SELECT id, type, source, nullif(subject, ''), referral_id, payload::jsonb, event_time, stream_seq, traceparent
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::timestamptz[], $8::bigint[], $10::text[])
			AS d (id, type, source, subject, referral_id, payload, event_time, stream_seq, traceparent)
		WHERE d.referral_id IS NULL OR NOT EXISTS (
			SELECT 1 FROM `+in.q+`.inbox e WHERE e.referral_id = d.referral_id AND e.type = $9)
		ON CONFLICT (event_id) DO NOTHING
		RETURNING event_id`, ids, types, sources, subjects, refs, payloads, times, seqs, events.TypeReferralErased, traceparents)
	var inserted []string
	if err == nil {
		inserted, err = pgx.CollectRows(rows, pgx.RowTo[string])
	}
	if err != nil {
		if dataException(err) {
			return fmt.Errorf("%w: %w", errRefused, err)
		}
		return fmt.Errorf("postgres: inbox: insert: %w", err)
	}
	isNew := make(map[string]bool, len(inserted))
	for _, id := range inserted {
		isNew[id] = true
	}
	b := &pgx.Batch{}
	opened, erased := 0, 0
	for _, d := range ds {
		id := d.env.Event.ID()
		if !isNew[id] {
			continue
		}
		isNew[id] = false // the same event twice in one batch is handled once
		if h, ok := d.env.Payload.(*events.Handover); ok && in.cfg.Identity != "" {
			plaintext, err := seal.Open(in.cfg.Identity, h.Envelope)
			var errText *string
			if err != nil {
				s := envelopeError(err)
				errText, plaintext = &s, nil
				in.metrics.countError(componentInbox, kindEnvelope)
				in.log.Warn("envelope not opened", slog.String("id", id), slog.String("error", s))
			} else {
				opened++
			}
			b.Queue(`INSERT INTO `+in.q+`.envelopes (event_id, referral_id, placement, recipient, plaintext, error)
				VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (event_id) DO NOTHING`,
				id, d.env.Event.Subject(), h.Placement, h.Recipient, plaintext, errText)
		}
		if _, ok := d.env.Payload.(*events.Erased); ok {
			// Every copy of the referral goes: what was delivered, the
			// opened envelopes, and the commands the organisation sent.
			ref := d.env.Event.Subject()
			b.Queue(`DELETE FROM `+in.q+`.envelopes WHERE referral_id = $1`, ref)
			b.Queue(`DELETE FROM `+in.q+`.inbox WHERE referral_id = $1 AND event_id <> $2`, ref, id)
			b.Queue(`DELETE FROM `+in.q+`.outbox WHERE referral_id = $1`, ref)
			erased++
		}
		if in.hook != "" {
			b.Queue(`SELECT `+in.hook+`($1::text)`, id)
		}
	}
	if b.Len() > 0 {
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			if in.hook != "" {
				in.metrics.countError(componentInbox, kindHook)
			}
			return fmt.Errorf("postgres: inbox: envelopes and hook: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres: inbox: commit: %w", err)
	}
	in.metrics.InboxRows.Add(float64(len(inserted)))
	in.metrics.InboxDuplicates.Add(float64(len(ds) - len(inserted)))
	in.metrics.EnvelopesOpened.Add(float64(opened))
	if erased > 0 {
		in.log.Info("referral erased from the inbox and outbox", slog.Int("referrals", erased))
	}
	return nil
}

// envelopeError names why an envelope could not be opened, without
// anything of its content.
func envelopeError(err error) string {
	switch {
	case errors.Is(err, seal.ErrNotForYou):
		return "sealed to another recipient"
	case errors.Is(err, seal.ErrTooLarge):
		return "case file too large"
	case errors.Is(err, seal.ErrMalformed):
		return "malformed envelope"
	case errors.Is(err, seal.ErrIdentity):
		return "invalid identity"
	}
	return "cannot be opened"
}
