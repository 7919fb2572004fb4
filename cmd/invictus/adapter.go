package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/invictus-network/invictus/adapters/natsjs"
	"github.com/invictus-network/invictus/adapters/postgres"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/seal"
)

// Defaults of `invictus adapter postgres`.
const (
	adapterNATSURLDefault = "nats://" + natsjs.ListenDefault
	// adapterConnectTimeout bounds the first connections to NATS and
	// PostgreSQL.
	adapterConnectTimeout = 30 * time.Second
	// adapterShutdownTimeout bounds the stop of the metrics server.
	adapterShutdownTimeout = 10 * time.Second
)

// adapterOptions are the flags of `invictus adapter postgres`.
type adapterOptions struct {
	db            string
	schema        string
	org           string
	creds         string
	key           string
	natsURL       string
	hook          string
	projection    bool
	skipMigrate   bool
	metricsListen string
	tls           *natsTLSFlags
	traces        tracingFlags
}

func newAdapterCmd(out, errOut io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "adapter",
		Short: "Run an adapter that connects other systems to the network",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newAdapterPostgresCmd(out, errOut))
	cmd.AddCommand(newAdapterEmailCmd(errOut))
	return cmd
}

func newAdapterPostgresCmd(out, errOut io.Writer) *cobra.Command {
	var o adapterOptions
	cmd := &cobra.Command{
		Use:   "postgres",
		Short: "Connect a case database (outbox and inbox) or a coordinator's database (projection)",
		Long: "The PostgreSQL adapter works in one schema (--schema) of the database --db,\n" +
			"which it migrates at start. With --org it relays the organisation's outbox\n" +
			"table to the network and writes its deliveries to the inbox table, opening\n" +
			"sealed case envelopes with --key; with --projection it maintains the\n" +
			"reporting tables and views of REFERRALS for a coordinator. With\n" +
			"--otlp-endpoint (or OTEL_EXPORTER_OTLP_ENDPOINT) it exports a span of each\n" +
			"command relayed (the child of the outbox row's traceparent, if any) and of\n" +
			"each delivery stored (in the referral's trace, its traceparent in the inbox\n" +
			"row), as service invictus-adapter-postgres. It stops cleanly on SIGINT or\n" +
			"SIGTERM.",
		Example: "  invictus adapter postgres --db postgres://invictus@db/cases --org pt.apav --creds apav.creds --key apav.key\n" +
			"  invictus adapter postgres --db postgres://invictus@db/reporting --projection\n" +
			"  invictus adapter postgres migrate --db postgres://owner@db/cases --schema invictus",
		Args: cobra.NoArgs,
	}
	f := cmd.PersistentFlags()
	f.StringVar(&o.db, "db", "", "PostgreSQL URL (required), e.g. postgres://user@host:5432/db")
	f.StringVar(&o.schema, "schema", postgres.SchemaDefault, "schema of the adapter's tables")
	lf := addLogFlags(cmd)
	cf := cmd.Flags()
	cf.StringVar(&o.org, "org", "", "organisation id (<country>.<slug>) whose outbox and inbox to run")
	cf.StringVar(&o.creds, "creds", "", "NATS credentials of the organisation: its nkey seed file from 'invictus creds', or a NATS .creds file")
	cf.StringVar(&o.key, "key", "", "age key file of the organisation, to open case envelopes")
	cf.StringVar(&o.natsURL, "nats-url", adapterNATSURLDefault, "NATS server URL(s), comma-separated")
	o.tls = addNATSTLSFlags(cf)
	cf.StringVar(&o.hook, "hook", "", "SQL function (name or schema.name) called with each new inbox event id")
	cf.BoolVar(&o.projection, "projection", false, "maintain the reporting projection of REFERRALS (coordinators)")
	cf.BoolVar(&o.skipMigrate, "skip-migrate", false, "do not migrate the schema at start")
	cf.StringVar(&o.metricsListen, "metrics-listen", "", "serve /metrics and /healthz on this host:port")
	o.traces.addFlags(cf)

	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		logger, err := lf.logger(errOut)
		if err != nil {
			return err
		}
		o.traces.readEnv(nil)
		if err := o.check(); err != nil {
			return err
		}
		return runAdapterPostgres(cmd.Context(), o, logger)
	}
	cmd.AddCommand(newAdapterMigrateCmd(out, &o))
	return cmd
}

// check reports a flag error as a usageError naming the flag.
func (o adapterOptions) check() error {
	if o.db == "" {
		return usageError{errors.New("--db is required")}
	}
	if err := postgres.ValidateSchema(o.schema); err != nil {
		return usageError{&flagError{flag: "schema", value: o.schema, err: err}}
	}
	if o.org == "" && !o.projection {
		return usageError{errors.New("give --org (outbox and inbox), --projection, or both")}
	}
	if o.org != "" && !events.IsOrgID(o.org) {
		return usageError{&flagError{flag: "org", value: o.org, err: errors.New("not an organisation id (<country>.<slug>)")}}
	}
	if o.org == "" && (o.key != "" || o.hook != "") {
		return usageError{errors.New("--key and --hook need --org")}
	}
	return o.traces.validate()
}

func newAdapterMigrateCmd(out io.Writer, o *adapterOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Create or update the adapter's schema, then exit",
		Long: "Migrate applies the embedded migrations that --schema lacks, in one\n" +
			"transaction, and prints the versions it applied. Objects are created only\n" +
			"in that schema.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.db == "" {
				return usageError{errors.New("--db is required")}
			}
			if err := postgres.ValidateSchema(o.schema); err != nil {
				return usageError{&flagError{flag: "schema", value: o.schema, err: err}}
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), adapterConnectTimeout)
			defer cancel()
			pool, err := openPool(ctx, o.db)
			if err != nil {
				return err
			}
			defer pool.Close()
			applied, err := postgres.Migrate(ctx, pool, o.schema)
			if err != nil {
				return err
			}
			if len(applied) == 0 {
				fmt.Fprintf(out, "schema %s is up to date\n", o.schema)
				return nil
			}
			for _, v := range applied {
				fmt.Fprintf(out, "schema %s: applied migration %d\n", o.schema, v)
			}
			return nil
		},
	}
}

// openPool opens a pool on url and checks that the database answers.
func openPool(ctx context.Context, url string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// The parse error may quote the URL, password included.
		return nil, usageError{errors.New("--db: not a valid PostgreSQL URL or connection string")}
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = "invictus-adapter-postgres"
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("--db: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("--db: the database does not answer: %w", err)
	}
	return pool, nil
}

// adapterPostgresService is the service.name of the spans of `adapter
// postgres`.
const adapterPostgresService = "invictus-adapter-postgres"

func runAdapterPostgres(ctx context.Context, o adapterOptions, logger *slog.Logger) error {
	stopTracing, err := startAdapterTracing(ctx, o.traces, adapterPostgresService, logger)
	if err != nil {
		return err
	}
	defer stopTracing() // last, so that the relay's and the inbox's spans are flushed
	var identity string
	if o.key != "" {
		b, err := os.ReadFile(o.key)
		if err != nil {
			return &flagError{flag: "key", value: o.key, err: err}
		}
		if identity, err = seal.ParseIdentityFile(b); err != nil {
			return &flagError{flag: "key", value: o.key, err: err}
		}
	}
	cctx, cancel := context.WithTimeout(ctx, adapterConnectTimeout)
	defer cancel()
	pool, err := openPool(cctx, o.db)
	if err != nil {
		return err
	}
	defer pool.Close()

	nopts := append(postgres.ConnectOptions(), nats.Name("invictus-adapter-postgres"), nats.Timeout(adapterConnectTimeout),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				logger.Warn("NATS disconnected", slog.String("error", err.Error()))
			}
		}),
		nats.ReconnectHandler(func(*nats.Conn) { logger.Info("NATS reconnected") }))
	if o.creds != "" {
		opt, err := natsCredsOption(o.creds)
		if err != nil {
			return &flagError{flag: "creds", value: o.creds, err: err}
		}
		nopts = append(nopts, opt)
	}
	tlsOpts, err := o.tls.options()
	if err != nil {
		return err
	}
	nopts = append(nopts, tlsOpts...)
	if prefix := natsjs.OrgInboxPrefix(o.org); prefix != "" {
		// An organisation's user may subscribe only under its own inbox
		// prefix on the embedded server (and as natsjs.OrgPermissions says).
		nopts = append(nopts, nats.CustomInboxPrefix(prefix))
	}
	nc, err := nats.Connect(o.natsURL, nopts...)
	if err != nil {
		return &flagError{flag: "nats-url", value: o.natsURL, err: err}
	}
	defer nc.Close()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a, err := postgres.New(pool, nc, postgres.Config{
		Schema: o.schema, Org: o.org, Identity: identity, Hook: o.hook, Projection: o.projection,
		SkipMigrate: o.skipMigrate, Registerer: reg, Logger: logger,
	})
	if err != nil {
		return usageError{err}
	}

	if o.metricsListen != "" {
		stop, err := serveAdapterMetrics(ctx, o.metricsListen, reg, a, logger)
		if err != nil {
			return err
		}
		defer stop()
	}
	logger.Info("postgres adapter running", slog.String("schema", o.schema), slog.String("org", o.org),
		slog.Bool("projection", o.projection), slog.Bool("envelopes", identity != ""))
	err = a.Run(ctx)
	logger.Info("postgres adapter stopped")
	return err
}

// serveAdapterMetrics serves /metrics and /healthz on addr until the
// returned function is called.
func serveAdapterMetrics(ctx context.Context, addr string, reg *prometheus.Registry, a *postgres.Adapter, logger *slog.Logger) (func(), error) {
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, &flagError{flag: "metrics-listen", value: addr, err: err}
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if err := a.Health(r.Context()); err != nil {
			http.Error(w, strings.ReplaceAll(err.Error(), "\n", "; "), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("metrics server", slog.String("error", err.Error()))
		}
	}()
	logger.Info("metrics and health", slog.String("addr", ln.Addr().String()))
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), adapterShutdownTimeout)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}
