package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/internal/clip"
)

// ProjectionLingerDefault is how long the projection waits for more events
// to fill a batch once it has one.
const ProjectionLingerDefault = 5 * time.Millisecond

// ProjectionConfig configures a [Projection]. The zero value of every
// field means its default.
type ProjectionConfig struct {
	// Schema holds the projection's tables and views. Default
	// [SchemaDefault].
	Schema string
	// Stream is the referral event log. Default [StreamReferrals].
	Stream string
	// BatchSize is how many events one transaction applies at most.
	// Default [BatchSizeDefault].
	BatchSize int
	// Linger is how long to wait for more events once one is there.
	// Default [ProjectionLingerDefault].
	Linger time.Duration
	// Timeout bounds one batch. Default [TimeoutDefault].
	Timeout time.Duration
	// BackoffMin and BackoffMax bound the waits after failures. Defaults
	// [BackoffMinDefault], [BackoffMaxDefault].
	BackoffMin, BackoffMax time.Duration
	// Logger receives the projection's logs: sequences, event ids and
	// error classes. Default discards.
	Logger *slog.Logger
	// Metrics receive the projection's counts. Default: unregistered
	// metrics.
	Metrics *Metrics
}

// WithDefaults returns a copy of c with every unset field given its default.
func (c ProjectionConfig) WithDefaults() ProjectionConfig {
	def(&c.Schema, SchemaDefault)
	def(&c.Stream, StreamReferrals)
	def(&c.BatchSize, BatchSizeDefault)
	def(&c.Linger, ProjectionLingerDefault)
	def(&c.Timeout, TimeoutDefault)
	def(&c.BackoffMin, BackoffMinDefault)
	def(&c.BackoffMax, BackoffMaxDefault)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate reports the first invalid field of c, naming it. Call it on the
// result of [ProjectionConfig.WithDefaults].
func (c ProjectionConfig) Validate() error {
	switch {
	case strings.ContainsAny(c.Stream, ".*> \t") || c.Stream == "":
		return fmt.Errorf("postgres: ProjectionConfig.Stream %q is not a stream name", c.Stream)
	case c.BatchSize < 1 || c.BatchSize > BatchSizeMax:
		return fmt.Errorf("postgres: ProjectionConfig.BatchSize %d must be from 1 to %d", c.BatchSize, BatchSizeMax)
	case c.Linger < 0 || c.Linger > time.Second:
		return fmt.Errorf("postgres: ProjectionConfig.Linger %s must be from 0 to 1s", c.Linger)
	case c.Timeout <= 0:
		return fmt.Errorf("postgres: ProjectionConfig.Timeout %s must be positive", c.Timeout)
	case c.BackoffMin <= 0 || c.BackoffMax < c.BackoffMin:
		return fmt.Errorf("postgres: ProjectionConfig.BackoffMin %s and BackoffMax %s must be positive, min <= max", c.BackoffMin, c.BackoffMax)
	}
	if err := ValidateSchema(c.Schema); err != nil {
		return fmt.Errorf("postgres: ProjectionConfig.Schema: %w", err)
	}
	return nil
}

// Projection maintains the reporting tables of a coordinator's database
// from the REFERRALS event log: referrals (with their needs and crime
// types), placements, offers, transitions and unmatched needs, and the
// coordinator views over them.
//
// It reads the log with an ordered consumer starting after the sequence
// stored in projection_checkpoint, and applies each batch of events and the
// new checkpoint in one transaction, so a restarted projection resumes
// exactly where the last commit left it: every event is applied once. The
// checkpoint is updated only if it still holds the sequence the batch
// started from, so two projections on one database never apply an event
// twice either.
//
// referral.erased removes every row of the referral and keeps, in
// erasures, only what the event carries (country, region, needs, outcome,
// days requested and erased), without the referral id.
type Projection struct {
	db      *pgxpool.Pool
	js      jetstream.JetStream
	cfg     ProjectionConfig
	log     *slog.Logger
	metrics *Metrics
	q       string
	health  health
}

// NewProjection returns a projection reading on nc and writing through
// db. It returns an error naming an invalid config field.
func NewProjection(db *pgxpool.Pool, nc *nats.Conn, cfg ProjectionConfig) (*Projection, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if db == nil || nc == nil {
		return nil, errors.New("postgres: NewProjection needs a database pool and a NATS connection")
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("postgres: projection: %w", err)
	}
	p := &Projection{db: db, js: js, cfg: cfg, metrics: cfg.Metrics, q: quoteIdent(cfg.Schema),
		log: cfg.Logger.With(slog.String("component", componentProjection), slog.String("schema", cfg.Schema))}
	if p.metrics == nil {
		p.metrics, _ = NewMetrics(nil, cfg.Schema)
	}
	return p, nil
}

// Health returns the error of the projection's last round of work, or nil.
func (p *Projection) Health() error { return p.health.get() }

// Checkpoint returns the last stream sequence the projection committed (0
// before the first).
func (p *Projection) Checkpoint(ctx context.Context) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	var seq int64
	err := p.db.QueryRow(ctx, `SELECT coalesce(max(last_seq), 0) FROM `+p.q+`.projection_checkpoint WHERE stream = $1`, p.cfg.Stream).Scan(&seq)
	if err != nil {
		return 0, fmt.Errorf("postgres: projection: read checkpoint: %w", err)
	}
	return uint64(seq), nil
}

// Run applies the log until ctx ends, then returns nil. Every failure is
// retried from the last checkpoint with a growing delay and reported by
// Health.
func (p *Projection) Run(ctx context.Context) error {
	for failures := 0; ctx.Err() == nil; {
		start := time.Now()
		err := p.session(ctx)
		if ctx.Err() != nil {
			// Stopped, as Run's contract says: what session returned is the
			// cancellation's doing, not a failure to report.
			return nil //nolint:nilerr // see above: a stop is not an error
		}
		if time.Since(start) > p.cfg.BackoffMax {
			failures = 0
		}
		failures++
		p.health.set(err)
		p.log.Warn("projection failed; resuming from the checkpoint", slog.String("error", err.Error()))
		sleep(ctx, backoff(p.cfg.BackoffMin, p.cfg.BackoffMax, failures))
	}
	return nil
}

// errCheckpointMoved reports that another projection committed first.
var errCheckpointMoved = errors.New("postgres: projection: the checkpoint moved (another projection on this schema?)")

// session reads from the checkpoint and applies batches until ctx ends
// (nil) or something fails.
func (p *Projection) session(ctx context.Context) error {
	last, err := p.Checkpoint(ctx)
	if err != nil {
		p.metrics.countError(componentProjection, kindDatabase)
		return err
	}
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{"referral.>"}, DeliverPolicy: jetstream.DeliverAllPolicy}
	if last > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, last+1
	}
	cctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	cons, err := p.js.OrderedConsumer(cctx, p.cfg.Stream, cfg)
	cancel()
	if err != nil {
		p.metrics.countError(componentProjection, kindNATS)
		return fmt.Errorf("postgres: projection: consumer on %s: %w", p.cfg.Stream, err)
	}
	it, err := cons.Messages()
	if err != nil {
		p.metrics.countError(componentProjection, kindNATS)
		return fmt.Errorf("postgres: projection: consume %s: %w", p.cfg.Stream, err)
	}
	defer it.Stop()
	p.health.set(nil)
	p.metrics.ProjectionSequence.Set(float64(last))
	for {
		batch, err := gather(ctx, it, p.cfg.BatchSize, p.cfg.Linger)
		if len(batch) > 0 {
			next, aerr := p.apply(ctx, last, batch)
			if aerr != nil {
				return aerr
			}
			last = next
			p.health.set(nil)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			p.metrics.countError(componentProjection, kindNATS)
			return fmt.Errorf("postgres: projection: next event: %w", err)
		}
	}
}

// apply applies msgs (following sequence last) in one transaction with the
// new checkpoint, and returns the new checkpoint.
func (p *Projection) apply(ctx context.Context, last uint64, msgs []jetstream.Msg) (uint64, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.Timeout)
	defer cancel()
	b := &pgx.Batch{}
	next, applied := last, 0
	for _, m := range msgs {
		meta, err := m.Metadata()
		if err != nil {
			return last, fmt.Errorf("postgres: projection: message metadata: %w", err)
		}
		seq := meta.Sequence.Stream
		if seq <= next {
			continue // delivered again after a consumer reset
		}
		next = seq
		env, err := events.Decode(events.Message{Subject: m.Subject(), Header: m.Headers(), Data: m.Data()})
		if err != nil {
			p.metrics.countError(componentProjection, kindDecode)
			p.log.Error("event does not decode; skipped", slog.Uint64("seq", seq), slog.String("error", clip.To(err.Error(), 500)))
			continue
		}
		_, referralID, err := events.ParseReferralSubject(m.Subject())
		if err != nil || env.Event.Subject() != referralID {
			p.metrics.countError(componentProjection, kindDecode)
			p.log.Error("event is not on its referral's subject; skipped", slog.Uint64("seq", seq), slog.String("id", env.Event.ID()))
			continue
		}
		p.queue(b, seq, env)
		applied++
	}
	if next == last {
		return last, nil
	}
	tx, err := p.db.Begin(ctx)
	if err != nil {
		p.metrics.countError(componentProjection, kindDatabase)
		return last, fmt.Errorf("postgres: projection: begin: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit
	var stored int64
	err = tx.QueryRow(ctx, `INSERT INTO `+p.q+`.projection_checkpoint AS c (stream, last_seq) VALUES ($1, 0)
		ON CONFLICT (stream) DO UPDATE SET stream = c.stream
		RETURNING last_seq`, p.cfg.Stream).Scan(&stored)
	if err != nil {
		p.metrics.countError(componentProjection, kindDatabase)
		return last, fmt.Errorf("postgres: projection: lock checkpoint: %w", err)
	}
	if uint64(stored) != last {
		return last, fmt.Errorf("%w: expected %d, found %d", errCheckpointMoved, last, stored)
	}
	b.Queue(`UPDATE `+p.q+`.projection_checkpoint SET last_seq = $2, updated_at = now() WHERE stream = $1`, p.cfg.Stream, int64(next))
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		p.metrics.countError(componentProjection, kindDatabase)
		return last, fmt.Errorf("postgres: projection: apply events %d to %d: %w", last+1, next, err)
	}
	if err := tx.Commit(ctx); err != nil {
		p.metrics.countError(componentProjection, kindDatabase)
		return last, fmt.Errorf("postgres: projection: commit: %w", err)
	}
	p.metrics.ProjectionEvents.Add(float64(applied))
	p.metrics.ProjectionSequence.Set(float64(next))
	return next, nil
}

// isoWeek returns the ISO 8601 week of t in UTC, as 2025-W11.
func isoWeek(t time.Time) string {
	y, w := t.UTC().ISOWeek()
	return fmt.Sprintf("%04d-W%02d", y, w)
}

// countryOf returns the country of an organisation id (pt of pt.apav).
func countryOf(org string) string {
	cc, _, _ := strings.Cut(org, ".")
	return cc
}

// actorOf names who wrote an event: the organisation id, or "routing".
func actorOf(source string) string {
	if org, ok := events.OrgOfSource(source); ok {
		return org
	}
	return strings.TrimPrefix(source, "/invictus/")
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// queue queues the statements that apply env (stream sequence seq) to b.
// Every statement is idempotent, and none depends on a value read back in
// Go, so a whole batch goes to the server in one round trip.
func (p *Projection) queue(b *pgx.Batch, seq uint64, env *events.Envelope) {
	q := p.q
	e := env.Event
	id, at, week := e.Subject(), e.Time().UTC(), isoWeek(e.Time())
	placement := ""
	transition := func() {
		b.Queue(`INSERT INTO `+q+`.transitions (stream_seq, event_id, referral_id, placement, type, actor, occurred_at, iso_week)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (stream_seq) DO NOTHING`,
			int64(seq), e.ID(), id, nullable(placement), e.Type(), actorOf(e.Source()), at, week)
	}
	derive := func() {
		b.Queue(`UPDATE `+q+`.referrals r SET
				status = CASE
					WHEN p.all_closed AND NOT p.any_completed THEN 'failed'
					WHEN p.all_closed AND p.all_completed AND r.plan_gaps = 0 THEN 'completed'
					WHEN p.all_closed THEN 'partially_completed'
					WHEN p.any_accepted THEN 'in_progress'
					ELSE 'planned' END,
				closed_at = CASE WHEN p.all_closed THEN $2::timestamptz END,
				updated_at = $2
			FROM (SELECT coalesce(bool_and(status IN ('completed', 'failed', 'cancelled')), true) AS all_closed,
			             coalesce(bool_or(status = 'completed'), false) AS any_completed,
			             coalesce(bool_and(status = 'completed'), true) AS all_completed,
			             coalesce(bool_or(accepted_by IS NOT NULL), false) AS any_accepted
			      FROM `+q+`.placements WHERE referral_id = $1) p
			WHERE r.referral_id = $1 AND r.status IN ('planned', 'in_progress')`, id, at)
	}
	placementStatus := func(status string) {
		b.Queue(`UPDATE `+q+`.placements SET status = $3, updated_at = $4 WHERE referral_id = $1 AND placement = $2`,
			id, placement, status, at)
	}
	answer := func(status string, reason *string) {
		b.Queue(`UPDATE `+q+`.offers SET status = $3, answered_at = $4, decline_reason = $5
			WHERE referral_id = $1 AND placement = $2 AND status = 'open'`, id, placement, status, at, reason)
	}

	switch v := env.Payload.(type) {
	case *events.Requested:
		referrer, _ := events.OrgOfSource(e.Source())
		b.Queue(`INSERT INTO `+q+`.referrals (referral_id, referrer, referrer_country, country, region, residence_country,
				urgency, age_band, preferred_organisation, status, requested_at, iso_week, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'requested', $10, $11, $10)
			ON CONFLICT (referral_id) DO NOTHING`,
			id, referrer, countryOf(referrer), v.Location.Country, nullable(v.Location.Region), nullable(v.Location.ResidenceCountry),
			v.Urgency, v.AgeBand, nullable(v.PreferredOrganisation), at, week)
		b.Queue(`INSERT INTO `+q+`.referral_needs (referral_id, need) SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING`, id, v.Needs)
		b.Queue(`INSERT INTO `+q+`.referral_crimes (referral_id, crime) SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING`, id, nonNilStrings(v.Crimes))
		b.Queue(`UPDATE `+q+`.referrals SET gender = $2, flags = $3, languages = $4, channels = $5, cross_border = $6
			WHERE referral_id = $1`, id, nullable(v.Gender), nonNilStrings(v.Flags), nonNilStrings(v.Languages), nonNilStrings(v.Channels),
			v.Location.ResidenceCountry != "" && v.Location.ResidenceCountry != v.Location.Country)
	case *events.Planned:
		b.Queue(`UPDATE `+q+`.referrals SET status = 'planned', planned_at = $2, plan_gaps = $3, updated_at = $2
			WHERE referral_id = $1 AND status = 'requested'`, id, at, len(v.Unmatched))
		for _, g := range v.Groups {
			b.Queue(`INSERT INTO `+q+`.placements (referral_id, placement, needs, status, planned_at, updated_at)
				VALUES ($1, $2, $3, 'planned', $4, $4) ON CONFLICT DO NOTHING`, id, g.Placement, g.Needs, at)
		}
		for _, u := range v.Unmatched {
			if u.Reason != "excluded" {
				continue
			}
			for c, n := range v.ExcludedBy(u) {
				if n > 0 {
					b.Queue(`INSERT INTO `+q+`.unmatched_constraints (referral_id, need, excluded_by, services, occurred_at)
						VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`, id, u.Need, c, n, at)
				}
			}
		}
		derive()
	case *events.Offered:
		placement = v.Placement
		b.Queue(`INSERT INTO `+q+`.offers (referral_id, placement, attempt, organisation, organisation_country, service,
				referrer, referrer_country, offered_at, deadline, iso_week)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING`,
			id, v.Placement, v.Attempt, v.Organisation, countryOf(v.Organisation), v.Service,
			v.Referrer, countryOf(v.Referrer), at, v.Deadline.UTC(), week)
		b.Queue(`UPDATE `+q+`.placements SET status = 'offered', attempts = $3, organisation = $4, service = $5, updated_at = $6
			WHERE referral_id = $1 AND placement = $2`, id, v.Placement, v.Attempt, v.Organisation, v.Service, at)
	case *events.Accepted:
		placement = v.Placement
		org, _ := events.OrgOfSource(e.Source())
		answer("accepted", nil)
		b.Queue(`UPDATE `+q+`.placements SET status = 'accepted', accepted_by = $3, accepted_at = $4, updated_at = $4
			WHERE referral_id = $1 AND placement = $2`, id, placement, org, at)
		derive()
	case *events.Declined:
		placement = v.Placement
		answer("declined", &v.Reason)
		placementStatus("declined")
	case *events.Expired:
		placement = v.Placement
		answer("expired", nil)
		placementStatus("expired")
	case *events.Unmatched:
		placement = v.Placement
		if placement != "" {
			b.Queue(`UPDATE `+q+`.placements SET status = 'failed', unmatched_reason = $3, closed_at = $4, updated_at = $4
				WHERE referral_id = $1 AND placement = $2`, id, placement, v.Reason, at)
		}
		b.Queue(`INSERT INTO `+q+`.unmatched_needs (referral_id, placement, need, reason, country, region, residence_country,
				urgency, age_band, occurred_at, iso_week)
			SELECT $1, $2, unnest($3::text[]), $4, $5, $6, $7, $8, $9, $10, $11 ON CONFLICT DO NOTHING`,
			id, placement, v.Needs, v.Reason, v.Profile.Location.Country, nullable(v.Profile.Location.Region),
			nullable(v.Profile.Location.ResidenceCountry), v.Profile.Urgency, v.Profile.AgeBand, at, week)
		derive()
	case *events.Handover:
		placement = v.Placement
	case *events.Contacted:
		placement = v.Placement
		b.Queue(`UPDATE `+q+`.placements SET status = 'in_progress', contacted_at = coalesce(contacted_at, $3), updated_at = $3
			WHERE referral_id = $1 AND placement = $2`, id, placement, at)
	case *events.OnHold:
		placement = v.Placement
		placementStatus("on_hold")
	case *events.Completed:
		placement = v.Placement
		b.Queue(`UPDATE `+q+`.placements SET status = 'completed', outcome = $3, closed_at = $4, updated_at = $4
			WHERE referral_id = $1 AND placement = $2`, id, placement, v.Outcome, at)
		derive()
	case *events.Withdrawn:
		b.Queue(`UPDATE `+q+`.placements SET status = 'cancelled', closed_at = $2, updated_at = $2
			WHERE referral_id = $1 AND status NOT IN ('completed', 'failed', 'cancelled')`, id, at)
		b.Queue(`UPDATE `+q+`.offers SET status = 'cancelled', answered_at = $2 WHERE referral_id = $1 AND status = 'open'`, id, at)
		b.Queue(`UPDATE `+q+`.referrals SET status = 'cancelled', closed_at = $2, updated_at = $2, withdrawn_reason = $3
			WHERE referral_id = $1`, id, at, v.Reason)
	case *events.Feedback:
		placement = v.Placement
		for _, a := range v.Answers {
			b.Queue(`INSERT INTO `+q+`.feedback_answers (event_id, referral_id, placement, question, value, occurred_at)
				VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`, e.ID(), id, placement, a.Question, a.Value, at)
		}
		for _, c := range v.Missing {
			b.Queue(`INSERT INTO `+q+`.feedback_missing (event_id, referral_id, code, occurred_at)
				VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`, e.ID(), id, c, at)
		}
	case *events.Erased:
		for _, t := range []string{"referrals", "referral_needs", "referral_crimes", "placements", "offers", "transitions", "unmatched_needs", "unmatched_constraints", "feedback_answers", "feedback_missing"} {
			b.Queue(`DELETE FROM `+q+`.`+t+` WHERE referral_id = $1`, id)
		}
		requested, _ := time.Parse(time.DateOnly, v.RequestedOn)
		b.Queue(`INSERT INTO `+q+`.erasures (event_id, country, region, needs, outcome, requested_on, erased_on, iso_week)
			VALUES ($1, $2, $3, $4, $5, $6::date, $7::date, $8) ON CONFLICT DO NOTHING`,
			e.ID(), v.Country, nullable(v.Region), v.Needs, v.Outcome, v.RequestedOn, v.ErasedOn, isoWeek(requested))
		return
	default:
		// Not a referral event (command.rejected or a directory event on a
		// referral subject would be a routing bug): nothing to project.
		return
	}
	transition()
}
