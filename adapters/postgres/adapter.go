package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/invictus-network/invictus/events"
)

// HealthTimeout bounds the database ping of [Adapter.Health].
const HealthTimeout = 2 * time.Second

// Config configures an [Adapter]: an organisation's outbox relay and inbox
// (Org set), a coordinator's projection (Projection set), or both.
type Config struct {
	// Schema holds the adapter's tables. Default [SchemaDefault].
	Schema string
	// Org, when set, runs the outbox relay and the inbox of this
	// organisation (pt.apav).
	Org string
	// Identity is the organisation's age identity, to open case
	// envelopes; optional.
	Identity string
	// Hook is the inbox's SQL hook function; optional (see
	// [InboxConfig.Hook]).
	Hook string
	// Projection runs the reporting projection of REFERRALS.
	Projection bool
	// SkipMigrate leaves the schema as it is at start (for databases
	// migrated with `invictus adapter postgres migrate` by another role).
	SkipMigrate bool
	// Registerer registers the adapter's metrics; nil leaves them
	// unregistered.
	Registerer prometheus.Registerer
	// Logger receives the adapter's logs; never victim data. Default
	// discards.
	Logger *slog.Logger
	// RelayTuning, InboxTuning and ProjectionTuning tune the components;
	// their Org, Schema, Identity, Hook, Logger and Metrics fields are set
	// from this Config.
	RelayTuning      RelayConfig
	InboxTuning      InboxConfig
	ProjectionTuning ProjectionConfig
}

// Adapter runs the PostgreSQL adapter's components on one database and one
// NATS connection: migrations at start, then the outbox [Relay] and the
// [Inbox] of an organisation and/or the reporting [Projection].
type Adapter struct {
	db      *pgxpool.Pool
	nc      *nats.Conn
	cfg     Config
	log     *slog.Logger
	metrics *Metrics
	relay   *Relay
	inbox   *Inbox
	proj    *Projection
	ready   atomic.Bool
}

// New returns an adapter for cfg. nc must be connected with
// [ConnectOptions] when cfg.Org is set (the relay needs them). It returns
// an error naming an invalid config field, or the metrics registration's
// error.
func New(db *pgxpool.Pool, nc *nats.Conn, cfg Config) (*Adapter, error) {
	if cfg.Schema == "" {
		cfg.Schema = SchemaDefault
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if err := ValidateSchema(cfg.Schema); err != nil {
		return nil, fmt.Errorf("postgres: Config.Schema: %w", err)
	}
	if cfg.Org == "" && !cfg.Projection {
		return nil, errors.New("postgres: Config needs an Org (outbox and inbox), Projection, or both")
	}
	if cfg.Org != "" && !events.IsOrgID(cfg.Org) {
		return nil, fmt.Errorf("postgres: Config.Org %q is not an organisation id (<country>.<slug>)", cfg.Org)
	}
	if db == nil || nc == nil {
		return nil, errors.New("postgres: New needs a database pool and a NATS connection")
	}
	m, err := NewMetrics(cfg.Registerer, cfg.Schema)
	if err != nil {
		return nil, err
	}
	a := &Adapter{db: db, nc: nc, cfg: cfg, log: cfg.Logger, metrics: m}
	if cfg.Org != "" {
		rc := cfg.RelayTuning
		rc.Org, rc.Schema, rc.Logger, rc.Metrics = cfg.Org, cfg.Schema, cfg.Logger, m
		if a.relay, err = NewRelay(db, nc, rc); err != nil {
			return nil, err
		}
		ic := cfg.InboxTuning
		ic.Org, ic.Schema, ic.Identity, ic.Hook, ic.Logger, ic.Metrics = cfg.Org, cfg.Schema, cfg.Identity, cfg.Hook, cfg.Logger, m
		if a.inbox, err = NewInbox(db, nc, ic); err != nil {
			return nil, err
		}
	}
	if cfg.Projection {
		pc := cfg.ProjectionTuning
		pc.Schema, pc.Logger, pc.Metrics = cfg.Schema, cfg.Logger, m
		if a.proj, err = NewProjection(db, nc, pc); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// Metrics returns the adapter's metrics.
func (a *Adapter) Metrics() *Metrics { return a.metrics }

// Relay returns the outbox relay, or nil without an Org.
func (a *Adapter) Relay() *Relay { return a.relay }

// Inbox returns the inbox, or nil without an Org.
func (a *Adapter) Inbox() *Inbox { return a.inbox }

// Projection returns the projection, or nil unless Config.Projection.
func (a *Adapter) Projection() *Projection { return a.proj }

// Run migrates the schema (unless SkipMigrate), then runs the components
// until ctx ends and returns nil once they have all stopped. It returns
// the migration's error, or the first error a component cannot recover
// from (a missing hook function), after stopping the others.
func (a *Adapter) Run(ctx context.Context) error {
	if !a.cfg.SkipMigrate {
		applied, err := Migrate(ctx, a.db, a.cfg.Schema)
		if err != nil {
			return err
		}
		if len(applied) > 0 {
			a.log.Info("schema migrated", slog.String("schema", a.cfg.Schema), slog.Any("versions", applied))
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		once     sync.Once
		firstErr error
	)
	start := func(run func(context.Context) error) {
		wg.Go(func() {
			if err := run(ctx); err != nil {
				once.Do(func() { firstErr = err })
				cancel()
			}
		})
	}
	if a.relay != nil {
		start(a.relay.Run)
		start(a.inbox.Run)
	}
	if a.proj != nil {
		start(a.proj.Run)
	}
	a.ready.Store(true)
	wg.Wait()
	a.ready.Store(false)
	return firstErr
}

// Health returns nil when the adapter is running and can reach both the
// database and NATS, and its components' last rounds of work succeeded;
// otherwise an error listing what is wrong (errors.Join). It is meant for
// a readiness probe.
func (a *Adapter) Health(ctx context.Context) error {
	var errs []error
	if !a.ready.Load() {
		errs = append(errs, errors.New("postgres: adapter not running"))
	}
	pctx, cancel := context.WithTimeout(ctx, HealthTimeout)
	defer cancel()
	if err := a.db.Ping(pctx); err != nil {
		errs = append(errs, fmt.Errorf("%w: database: %w", ErrUnavailable, err))
	}
	if s := a.nc.Status(); s != nats.CONNECTED {
		errs = append(errs, fmt.Errorf("%w: NATS connection is %s", ErrUnavailable, s))
	}
	if a.relay != nil {
		if err := a.relay.Health(); err != nil {
			errs = append(errs, err)
		}
		if err := a.inbox.Health(); err != nil {
			errs = append(errs, err)
		}
	}
	if a.proj != nil {
		if err := a.proj.Health(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
