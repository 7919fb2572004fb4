package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/internal/clip"
	"github.com/invictus-network/invictus/internal/tracing"
	"github.com/invictus-network/invictus/internal/wire"
)

// Stream names of the wire contract (DESIGN.md section 3) that the adapter
// uses.
const (
	StreamInbound   = wire.StreamInbound
	StreamReferrals = wire.StreamReferrals
	StreamDelivery  = wire.StreamDelivery
)

// Defaults and limits of [RelayConfig].
const (
	// RelayWindowDefault is how many publishes the relay keeps waiting for
	// their acknowledgement at once: a whole default batch.
	RelayWindowDefault = BatchSizeDefault
	// RelayPollDefault is how often the active relay looks at the outbox
	// when no notification wakes it.
	RelayPollDefault = time.Second
	// RelayLockRetryDefault is how often a standby relay tries to take
	// the outbox's lock, and how often the active one checks that its
	// lock connection is alive while busy.
	RelayLockRetryDefault = 2 * time.Second
	// RelayAckTimeoutDefault bounds the wait for one acknowledgement.
	RelayAckTimeoutDefault = 5 * time.Second
	// MaxErrorText bounds what is stored in outbox.last_error.
	MaxErrorText = 2000
)

// RelayConfig configures a [Relay]. Org is required; the zero value of
// every other field means its default.
type RelayConfig struct {
	// Org is the organisation id (pt.apav) whose commands the outbox
	// holds; they are published on its INBOUND subject with its source.
	Org string
	// Schema holds the outbox table. Default [SchemaDefault].
	Schema string
	// Stream is the stream the acknowledgements must come from. Default
	// [StreamInbound].
	Stream string
	// BatchSize is how many rows one transaction relays at most. Default
	// [BatchSizeDefault].
	BatchSize int
	// Window is how many publishes may await their acknowledgement at
	// once; 1 publishes one row at a time. Default [RelayWindowDefault].
	Window int
	// PollInterval is the fallback wake-up when no notification comes.
	// Default [RelayPollDefault].
	PollInterval time.Duration
	// LockRetry is how often a standby relay tries the lock. Default
	// [RelayLockRetryDefault].
	LockRetry time.Duration
	// AckTimeout bounds the wait for one acknowledgement. Default
	// [RelayAckTimeoutDefault].
	AckTimeout time.Duration
	// Timeout bounds one batch. Default [TimeoutDefault].
	Timeout time.Duration
	// BackoffMin and BackoffMax bound the waits after failures. Defaults
	// [BackoffMinDefault], [BackoffMaxDefault].
	BackoffMin, BackoffMax time.Duration
	// Logger receives the relay's logs: row ids, counts and error
	// classes, never payloads. Default discards.
	Logger *slog.Logger
	// Metrics receive the relay's counts. Default: unregistered metrics.
	Metrics *Metrics
}

// WithDefaults returns a copy of c with every unset field given its default.
func (c RelayConfig) WithDefaults() RelayConfig {
	def(&c.Schema, SchemaDefault)
	def(&c.Stream, StreamInbound)
	def(&c.BatchSize, BatchSizeDefault)
	def(&c.Window, RelayWindowDefault)
	def(&c.PollInterval, RelayPollDefault)
	def(&c.LockRetry, RelayLockRetryDefault)
	def(&c.AckTimeout, RelayAckTimeoutDefault)
	def(&c.Timeout, TimeoutDefault)
	def(&c.BackoffMin, BackoffMinDefault)
	def(&c.BackoffMax, BackoffMaxDefault)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate reports the first invalid field of c, naming it. Call it on the
// result of [RelayConfig.WithDefaults].
func (c RelayConfig) Validate() error {
	switch {
	case !events.IsOrgID(c.Org):
		return fmt.Errorf("postgres: RelayConfig.Org %q is not an organisation id (<country>.<slug>)", c.Org)
	case c.BatchSize < 1 || c.BatchSize > BatchSizeMax:
		return fmt.Errorf("postgres: RelayConfig.BatchSize %d must be from 1 to %d", c.BatchSize, BatchSizeMax)
	case c.Window < 1 || c.Window > BatchSizeMax:
		return fmt.Errorf("postgres: RelayConfig.Window %d must be from 1 to %d", c.Window, BatchSizeMax)
	case c.PollInterval <= 0:
		return fmt.Errorf("postgres: RelayConfig.PollInterval %s must be positive", c.PollInterval)
	case c.LockRetry <= 0:
		return fmt.Errorf("postgres: RelayConfig.LockRetry %s must be positive", c.LockRetry)
	case c.AckTimeout <= 0:
		return fmt.Errorf("postgres: RelayConfig.AckTimeout %s must be positive", c.AckTimeout)
	case c.Timeout < c.AckTimeout:
		return fmt.Errorf("postgres: RelayConfig.Timeout %s must be at least AckTimeout (%s)", c.Timeout, c.AckTimeout)
	case c.BackoffMin <= 0 || c.BackoffMax < c.BackoffMin:
		return fmt.Errorf("postgres: RelayConfig.BackoffMin %s and BackoffMax %s must be positive, min <= max", c.BackoffMin, c.BackoffMax)
	case strings.ContainsAny(c.Stream, ".*> \t"):
		return fmt.Errorf("postgres: RelayConfig.Stream %q is not a stream name", c.Stream)
	}
	return ValidateSchema(c.Schema)
}

// ConnectOptions returns the NATS connection options the relay needs: no
// reconnect buffer, so that a publish made while the connection is down
// fails at once instead of being replayed after the reconnect behind
// later rows, and unlimited reconnects. Callers may add their own.
func ConnectOptions() []nats.Option {
	return []nats.Option{
		nats.ReconnectBufSize(-1),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
	}
}

// Relay publishes the rows of an organisation's outbox table to its
// INBOUND subject, in seq order, each once as seen by JetStream.
//
// Any number of relays may run on one outbox (in several processes, for
// availability): the one holding the outbox's session advisory lock, taken
// with pg_try_advisory_lock on a dedicated connection, is active; the
// others stand by and take over when its connection ends. The lock
// connection also LISTENs for the outbox's notifications; a poll every
// PollInterval covers lost ones.
//
// Each batch locks the oldest pending rows (FOR UPDATE SKIP LOCKED), checks
// that it holds the head of the queue (so that even two relays that both
// believe they are active never publish out of order), publishes them with
// Nats-Msg-Id = events.MsgID(source, id) and waits for JetStream's acknowledgements, then marks
// them published in the same transaction. A relay that dies between
// publish and commit leaves the rows pending: they are published again
// and JetStream drops the copies (its duplicate window). Rows the contract
// rejects get rejected_at and last_error and never block the rows behind
// them; a failed publish counts an attempt, records the error, and is
// retried with a growing delay.
type Relay struct {
	db      *pgxpool.Pool
	js      jetstream.JetStream
	nc      *nats.Conn
	cfg     RelayConfig
	log     *slog.Logger
	metrics *Metrics
	q       string // quoted schema
	subject string
	source  string
	lockKey string

	active atomic.Bool
	health health
	// careful is set after a failed publish: the next batch publishes one
	// row at a time until one succeeds. Only Run's goroutine uses it.
	careful bool

	// afterPublish, when set (tests), runs after the acknowledgements and
	// before the commit; an error aborts the batch as a crash would.
	afterPublish func(ctx context.Context, ids []string) error
}

// NewRelay returns a relay of the outbox in cfg.Schema, reading through db
// and publishing on nc. nc must have been connected with
// nats.ReconnectBufSize(-1) (see [ConnectOptions]): a reconnect buffer
// would replay publishes after a reconnect out of order. It returns an
// error naming an invalid config field or option.
func NewRelay(db *pgxpool.Pool, nc *nats.Conn, cfg RelayConfig) (*Relay, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if db == nil || nc == nil {
		return nil, errors.New("postgres: NewRelay needs a database pool and a NATS connection")
	}
	if nc.Opts.ReconnectBufSize >= 0 {
		return nil, errors.New("postgres: NewRelay needs a NATS connection made with nats.ReconnectBufSize(-1) (see ConnectOptions)")
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(cfg.AckTimeout),
		jetstream.WithPublishAsyncMaxPending(cfg.Window))
	if err != nil {
		return nil, fmt.Errorf("postgres: relay: %w", err)
	}
	subject, err := events.InboundSubject(cfg.Org)
	if err != nil {
		return nil, fmt.Errorf("postgres: RelayConfig.Org: %w", err)
	}
	m := cfg.Metrics
	if m == nil {
		m, _ = NewMetrics(nil, cfg.Schema)
	}
	return &Relay{
		db: db, js: js, nc: nc, cfg: cfg, metrics: m,
		log:     cfg.Logger.With(slog.String("component", componentRelay), slog.String("schema", cfg.Schema)),
		q:       quoteIdent(cfg.Schema),
		subject: subject,
		source:  events.SourceOf(cfg.Org),
		lockKey: "invictus.outbox." + cfg.Schema,
	}, nil
}

// Active reports whether this relay holds the outbox's lock.
func (r *Relay) Active() bool { return r.active.Load() }

// Health returns the error of the relay's last round of work, or nil.
func (r *Relay) Health() error { return r.health.get() }

// Run relays until ctx ends, then returns nil. It stands by while another
// relay holds the lock, reconnects after losing its lock connection, and
// retries every failure with a growing delay; the batch in progress when
// ctx ends is finished (within Timeout), not abandoned.
func (r *Relay) Run(ctx context.Context) error {
	for failures := 0; ctx.Err() == nil; {
		start := time.Now()
		err := r.session(ctx)
		if ctx.Err() != nil || err == nil {
			continue
		}
		if time.Since(start) > r.cfg.BackoffMax {
			failures = 0 // the connection lasted: start the delays over
		}
		failures++
		r.health.set(err)
		r.metrics.countError(componentRelay, kindDatabase)
		r.log.Warn("relay lock connection lost; reconnecting", slog.String("error", err.Error()))
		sleep(ctx, backoff(r.cfg.BackoffMin, r.cfg.BackoffMax, failures))
	}
	return nil
}

// session opens the lock connection, stands by until it holds the lock,
// then leads until the connection fails or ctx ends.
func (r *Relay) session(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	conn, err := pgx.ConnectConfig(cctx, r.db.Config().ConnConfig.Copy())
	cancel()
	if err != nil {
		return fmt.Errorf("postgres: relay: connect: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		conn.Close(cctx) //nolint:errcheck // closing releases the lock; the connection may be dead already
	}()
	for {
		var ok bool
		qctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
		err := conn.QueryRow(qctx, `SELECT pg_try_advisory_lock(hashtextextended($1, 0))`, r.lockKey).Scan(&ok)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("postgres: relay: try lock: %w", err)
		}
		if ok {
			break
		}
		r.health.set(nil) // standing by is healthy
		if !sleep(ctx, r.cfg.LockRetry) {
			return nil
		}
	}
	if _, err := conn.Exec(ctx, `LISTEN `+quoteIdent(outboxChannel(r.cfg.Schema))); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("postgres: relay: listen: %w", err)
	}
	r.active.Store(true)
	r.metrics.RelayActive.Set(1)
	r.log.Info("relay active")
	defer func() {
		r.active.Store(false)
		r.metrics.RelayActive.Set(0)
	}()
	return r.lead(ctx, conn)
}

// lead relays batches while conn (holding the lock) lives and ctx lasts.
func (r *Relay) lead(ctx context.Context, conn *pgx.Conn) error {
	checked := time.Now()
	failures := 0
	for ctx.Err() == nil {
		n, err := r.relayBatch(ctx)
		switch {
		case errors.Is(err, errNotHead):
			// Another relay holds the head rows: wait for it as if idle.
			r.health.set(nil)
			failures = 0
		case err != nil:
			failures++
			r.health.set(err)
			r.log.Warn("relay batch failed", slog.Int("failures", failures), slog.String("error", err.Error()))
			if !sleep(ctx, backoff(r.cfg.BackoffMin, r.cfg.BackoffMax, failures)) {
				return nil
			}
		default:
			failures = 0
			r.health.set(nil)
		}
		idle := err == nil && n < r.cfg.BatchSize || errors.Is(err, errNotHead)
		if idle {
			r.observePending(ctx)
			wctx, cancel := context.WithTimeout(ctx, r.cfg.PollInterval)
			_, werr := conn.WaitForNotification(wctx)
			cancel()
			if werr != nil && wctx.Err() == nil {
				return fmt.Errorf("postgres: relay: wait for notification: %w", werr)
			}
			checked = time.Now()
			continue
		}
		if time.Since(checked) >= r.cfg.LockRetry {
			pctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
			perr := conn.Ping(pctx)
			cancel()
			if perr != nil && ctx.Err() == nil {
				return fmt.Errorf("postgres: relay: lock connection: %w", perr)
			}
			checked = time.Now()
		}
	}
	return nil
}

// observePending sets the oldest-pending gauge.
func (r *Relay) observePending(ctx context.Context) {
	qctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	var age float64
	err := r.db.QueryRow(qctx, `SELECT coalesce(extract(epoch FROM clock_timestamp() - min(created_at)), 0)::float8
		FROM (SELECT created_at FROM `+r.q+`.outbox WHERE published_at IS NULL AND rejected_at IS NULL ORDER BY seq LIMIT 1) o`).Scan(&age)
	if err == nil {
		r.metrics.OutboxOldestPending.Set(age)
	}
}

// errNotHead reports a batch that did not start at the oldest pending row:
// another relay is publishing the rows before it.
var errNotHead = errors.New("postgres: relay: the oldest pending rows are locked by another relay")

// outboxRow is one pending row.
type outboxRow struct {
	seq        int64
	id         string
	typ        string
	referralID *string
	payload    []byte
	createdAt  time.Time
	// traceparent is the row's optional W3C trace context (see
	// traceOutbox).
	traceparent *string
}

// relayBatch relays one batch and returns how many rows it took (relayed
// or rejected). The batch is finished even if ctx ends, within Timeout.
func (r *Relay) relayBatch(ctx context.Context) (int, error) {
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.Timeout)
	defer cancel()
	tx, err := r.db.Begin(bctx)
	if err != nil {
		r.metrics.countError(componentRelay, kindDatabase)
		return 0, fmt.Errorf("postgres: relay: begin: %w", err)
	}
	defer tx.Rollback(bctx) //nolint:errcheck // a no-op after Commit

	rows, err := r.lockBatch(bctx, tx)
	if err != nil || len(rows) == 0 {
		if err != nil && !errors.Is(err, errNotHead) {
			r.metrics.countError(componentRelay, kindDatabase)
		}
		return 0, err
	}

	res := r.publish(bctx, rows)
	marks := &pgx.Batch{}
	for _, rj := range res.rejected {
		marks.Queue(`UPDATE `+r.q+`.outbox SET rejected_at = clock_timestamp(), attempts = attempts + 1, last_error = $2 WHERE id = $1`,
			rj.row.id, clip.To(rj.err.Error(), MaxErrorText))
		r.log.Warn("outbox row rejected by the contract", slog.String("id", rj.row.id), slog.String("type", clip.To(rj.row.typ, 128)))
	}
	if len(res.acked) > 0 {
		ids := make([]string, len(res.acked))
		for i, row := range res.acked {
			ids[i] = row.id
		}
		if r.afterPublish != nil {
			if err := r.afterPublish(bctx, ids); err != nil {
				return 0, err
			}
		}
		marks.Queue(`UPDATE `+r.q+`.outbox SET published_at = clock_timestamp(), attempts = attempts + 1, last_error = NULL WHERE id = ANY($1::uuid[])`, ids)
	}
	if res.err != nil {
		marks.Queue(`UPDATE `+r.q+`.outbox SET attempts = attempts + 1, last_error = $2 WHERE id = $1`,
			res.failed.id, clip.To(res.err.Error(), MaxErrorText))
	}
	if marks.Len() > 0 {
		if err := tx.SendBatch(bctx, marks).Close(); err != nil {
			r.metrics.countError(componentRelay, kindDatabase)
			return 0, fmt.Errorf("postgres: relay: mark rows: %w", err)
		}
	}
	if err := tx.Commit(bctx); err != nil {
		r.metrics.countError(componentRelay, kindDatabase)
		return 0, fmt.Errorf("postgres: relay: commit: %w", err)
	}
	r.metrics.OutboxRelayed.Add(float64(len(res.acked)))
	if n := len(res.rejected); n > 0 {
		r.metrics.OutboxRejected.Add(float64(n))
		r.metrics.Errors.WithLabelValues(componentRelay, kindRejected).Add(float64(n))
	}
	if res.err != nil {
		r.metrics.countError(componentRelay, kindPublish)
		return len(res.rejected) + len(res.acked), fmt.Errorf("postgres: relay: publish row %s: %w", res.failed.id, res.err)
	}
	return len(rows), nil
}

// lockBatch locks up to BatchSize pending rows from the head of the queue,
// in seq order, cut at the first pending row it could not lock. It returns
// errNotHead when the oldest pending row is locked by someone else.
func (r *Relay) lockBatch(ctx context.Context, tx pgx.Tx) ([]outboxRow, error) {
	rs, err := tx.Query(ctx, `SELECT seq, id::text, type, referral_id, payload, created_at, traceparent
		FROM `+r.q+`.outbox
		WHERE published_at IS NULL AND rejected_at IS NULL
		ORDER BY seq
		LIMIT $1
		FOR UPDATE SKIP LOCKED`, r.cfg.BatchSize)
	if err != nil {
		return nil, fmt.Errorf("postgres: relay: lock rows: %w", err)
	}
	rows, err := pgx.CollectRows(rs, func(rr pgx.CollectableRow) (outboxRow, error) {
		var row outboxRow
		err := rr.Scan(&row.seq, &row.id, &row.typ, &row.referralID, &row.payload, &row.createdAt, &row.traceparent)
		return row, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: relay: lock rows: %w", err)
	}
	if len(rows) == 0 {
		return nil, nil
	}
	// The pending rows up to the last one locked, locked or not: the
	// batch must be exactly their prefix.
	rs, err = tx.Query(ctx, `SELECT seq FROM `+r.q+`.outbox
		WHERE published_at IS NULL AND rejected_at IS NULL AND seq <= $1
		ORDER BY seq`, rows[len(rows)-1].seq)
	if err != nil {
		return nil, fmt.Errorf("postgres: relay: check head: %w", err)
	}
	seqs, err := pgx.CollectRows(rs, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("postgres: relay: check head: %w", err)
	}
	n := 0
	for n < len(rows) && n < len(seqs) && rows[n].seq == seqs[n] {
		n++
	}
	if n == 0 {
		return nil, errNotHead
	}
	return rows[:n], nil
}

// message builds the NATS message of row, or returns why the contract
// rejects it.
func (r *Relay) message(row outboxRow) (*nats.Msg, error) {
	e := event.New(event.CloudEventsVersionV1)
	e.SetID(row.id)
	e.SetSource(r.source)
	e.SetType(row.typ)
	if row.referralID != nil {
		e.SetSubject(*row.referralID)
	}
	e.SetTime(row.createdAt)
	e.SetDataSchema(events.SchemaURI(row.typ))
	if err := e.SetData(events.ContentTypeJSON, row.payload); err != nil {
		return nil, fmt.Errorf("events: data: %w", err)
	}
	m, err := wire.Command(r.subject, e)
	if err != nil {
		return nil, err
	}
	if _, err := events.Decode(m); err != nil {
		return nil, err
	}
	return &nats.Msg{Subject: m.Subject, Header: nats.Header(m.Header), Data: m.Data}, nil
}

// rejection is a row the contract rejects, and why.
type rejection struct {
	row outboxRow
	err error
}

// publishResult is what publish did with a batch.
type publishResult struct {
	// acked are the rows acknowledged: the longest prefix of the rows
	// published (rejected rows aside) whose publishes all succeeded.
	acked []outboxRow
	// rejected are the rows the contract rejects, among those examined.
	rejected []rejection
	// failed is the row after the acknowledged prefix, when err is set.
	failed outboxRow
	// err is why failed was not published or acknowledged.
	err error
}

// publish builds the message of each row, then publishes them in order,
// keeping up to Window acknowledgements pending (one while careful). (All
// messages are built first: publishing them in one burst lets the
// connection coalesce its writes, which is faster than interleaving.)
// When a publish fails it stops sending, waits for the publishes still
// pending (so that none is in flight when the rows are tried again), and
// reports the first row that is not acknowledged.
func (r *Relay) publish(ctx context.Context, rows []outboxRow) publishResult {
	var res publishResult
	built := make([]*nats.Msg, len(rows))
	errs := make([]error, len(rows))
	parallel(len(rows), func(i int) { built[i], errs[i] = r.message(rows[i]) })
	msgs := make([]*nats.Msg, 0, len(rows))
	sent := make([]outboxRow, 0, len(rows))
	traced := tracing.Enabled()
	for i, row := range rows {
		if errs[i] != nil {
			res.rejected = append(res.rejected, rejection{row: row, err: errs[i]})
			if traced {
				traceRejected(ctx, r.cfg.Org, row)
			}
			continue
		}
		msgs = append(msgs, built[i])
		sent = append(sent, row)
	}
	window := r.cfg.Window
	if r.careful {
		window = 1
	}
	var (
		spans   []trace.Span // of the messages sent, while traced
		futures = make([]jetstream.PubAckFuture, 0, len(msgs))
		next    int    // the next future to wait for
		prefix  = true // sent[:next] all succeeded
		stopped bool
	)
	waitNext := func() {
		var err error
		select {
		case <-futures[next].Ok():
			r.metrics.RelayLag.Observe(time.Since(sent[next].createdAt).Seconds())
		case err = <-futures[next].Err():
		case <-ctx.Done():
			err = ctx.Err()
		}
		if err != nil {
			stopped = true
			if prefix {
				prefix = false
				res.failed, res.err = sent[next], err
			}
		}
		if traced {
			outcome := "published"
			if err != nil {
				outcome = "retried"
			}
			endSpan(spans[next], outcome)
		}
		next++
		if prefix {
			res.acked = sent[:next]
		}
	}
	for i, msg := range msgs {
		for !stopped && len(futures)-next >= window {
			waitNext()
		}
		if stopped {
			break
		}
		var span trace.Span
		if traced {
			span = traceOutbox(ctx, r.cfg.Org, sent[i], msg.Header)
		}
		f, err := r.js.PublishMsgAsync(msg, // its Nats-Msg-Id is set by wire.Command
			jetstream.WithExpectStream(r.cfg.Stream), jetstream.WithRetryAttempts(0))
		if traced && err == nil {
			spans = append(spans, span)
		} else if traced {
			endSpan(span, "retried")
		}
		if err != nil {
			stopped = true
			for next < len(futures) {
				waitNext()
			}
			if prefix {
				res.failed, res.err = sent[i], err
			}
			break
		}
		futures = append(futures, f)
	}
	for next < len(futures) {
		waitNext()
	}
	if stopped {
		r.careful = true
	} else if len(res.acked) > 0 {
		r.careful = false
	}
	return res
}
