package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/invictus-network/invictus/adapters/email"
	"github.com/invictus-network/invictus/adapters/natsjs"
	"github.com/invictus-network/invictus/directory"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/internal/tracing"
)

// adapterEmailListenDefault is where `adapter email` serves its pages.
const adapterEmailListenDefault = "127.0.0.1:8081"

func newAdapterEmailCmd(errOut io.Writer) *cobra.Command {
	var (
		s       emailSettings
		natsURL string
		creds   string
		listen  string
		traces  tracingFlags
	)
	cmd := &cobra.Command{
		Use:   "email",
		Short: "Send e-mail to organisations without a system and serve their answer links",
		Long: "The e-mail adapter does what `invictus serve --smtp-url` does, as a process of\n" +
			"its own: it e-mails each organisation whose directory entry has\n" +
			"referral_channel email (offers, reminders, expiries, withdrawals, handovers\n" +
			"waiting, and the answers to its referrals), and serves the pages of the\n" +
			"signed accept and decline links under /mail/ on --listen, with /metrics and\n" +
			"/healthz. Only one instance sends at a time (a lease in the KV store), so\n" +
			"several may run. It needs NATS credentials that may create consumers and\n" +
			"buckets (DATA/keys/admin.nk of the node). With --otlp-endpoint (or\n" +
			"OTEL_EXPORTER_OTLP_ENDPOINT) it exports the span of each e-mail, in the\n" +
			"referral's trace, and of each answer link used, as service\n" +
			"invictus-adapter-email. It stops cleanly on SIGINT or SIGTERM.",
		Example: "  invictus adapter email --nats-url nats://127.0.0.1:4222 --nats-creds data/keys/admin.nk \\\n" +
			"    --smtp-url smtps://invictus:secret@mail.example:465 --mail-from referrals@node.example \\\n" +
			"    --public-url https://node.example --listen :8081",
		Args: cobra.NoArgs,
	}
	f := cmd.Flags()
	s.addFlags(f)
	f.StringVar(&natsURL, "nats-url", adapterNATSURLDefault, "NATS server URL(s), comma-separated")
	f.StringVar(&creds, "nats-creds", "", "NATS credentials: an nkey seed file (such as DATA/keys/admin.nk) or a .creds file")
	tlsFlags := addNATSTLSFlags(f)
	f.StringVar(&listen, "listen", adapterEmailListenDefault, "HTTP address of the link pages (/mail/...), /metrics and /healthz")
	traces.addFlags(f)
	lf := addLogFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		logger, err := lf.logger(errOut)
		if err != nil {
			return err
		}
		if !s.enabled() {
			return usageError{errors.New("--smtp-url is required")}
		}
		if err := s.check(); err != nil {
			return err
		}
		traces.readEnv(nil)
		if err := traces.validate(); err != nil {
			return err
		}
		tlsOpts, err := tlsFlags.options()
		if err != nil {
			return err
		}
		return runAdapterEmail(cmd.Context(), s, natsURL, creds, listen, traces, logger, tlsOpts...)
	}
	cmd.AddCommand(newAdapterEmailFailuresCmd())
	return cmd
}

func newAdapterEmailFailuresCmd() *cobra.Command {
	var natsURL, creds, org string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "failures",
		Short: "List the e-mails given up (refused by the SMTP server, or failing too long)",
		Long: "Lists the messages the e-mail channel gave up, oldest first, from KV\n" +
			"`email` (failure.<org>.*): the organisation, the kind of message, the event,\n" +
			"the referral, the SMTP reply code (5xx: refused for good) and the attempts.\n" +
			"A refused offer was also told to its referrer by a delivery.failed event\n" +
			"(`invictus inbox`, the console's timeline; by e-mail too when the referrer\n" +
			"receives by e-mail). The console's failures page shows an organisation's\n" +
			"administrator her own. With --org, one\n" +
			"organisation's failures only (what its administrator needs); without, all of\n" +
			"them (the directory's administrator). It needs NATS credentials that may read\n" +
			"the bucket (DATA/keys/admin.nk of the node).",
		Example: "  invictus adapter email failures --nats-url nats://127.0.0.1:4222 --nats-creds data/keys/admin.nk --org pt.apav",
		Args:    cobra.NoArgs,
	}
	f := cmd.Flags()
	f.StringVar(&natsURL, "nats-url", adapterNATSURLDefault, "NATS server URL(s), comma-separated")
	f.StringVar(&creds, "nats-creds", "", "NATS credentials: an nkey seed file (such as DATA/keys/admin.nk) or a .creds file")
	f.StringVar(&org, "org", "", "only this organisation's failures (an id such as pt.apav)")
	f.BoolVar(&asJSON, "json", false, "print JSON lines rather than a table")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if org != "" && !events.IsOrgID(org) {
			return &flagError{flag: "org", value: org, err: errors.New("not an organisation id (<country>.<slug>)")}
		}
		nc, js, err := connectEmailAdapter(natsURL, creds, nats.Name("invictus-adapter-email-failures"))
		if err != nil {
			return err
		}
		defer nc.Close()
		ctx, cancel := context.WithTimeout(cmd.Context(), adapterConnectTimeout)
		defer cancel()
		kv, err := js.KeyValue(ctx, natsjs.BucketEmail)
		if errors.Is(err, jetstream.ErrBucketNotFound) {
			return errors.New("no e-mail channel has run on this node (no KV bucket email)")
		}
		if err != nil {
			return fmt.Errorf("KV email: %w", err)
		}
		fs, err := email.ListFailures(ctx, natsjs.NewRevStore(kv), org)
		if err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		if asJSON {
			enc := json.NewEncoder(out)
			for _, f := range fs {
				if err := enc.Encode(f); err != nil {
					return err
				}
			}
			return nil
		}
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "AT\tORGANISATION\tKIND\tREFERRAL\tEVENT\tSMTP\tATTEMPTS")
		for _, f := range fs {
			code := "-"
			if f.Code != 0 {
				code = strconv.Itoa(f.Code)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\n", f.At.Format(time.RFC3339), f.Org, f.Kind, f.Referral, f.EventID, code, f.Attempts)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(out, "%d failures\n", len(fs))
		return nil
	}
	return cmd
}

// adapterEmailService is the service.name of the spans of `adapter
// email`, which tells them from the node's in a trace.
const adapterEmailService = "invictus-adapter-email"

func runAdapterEmail(ctx context.Context, s emailSettings, natsURL, creds, listen string, traces tracingFlags, logger *slog.Logger, tlsOpts ...nats.Option) error {
	stopTracing, err := startAdapterTracing(ctx, traces, adapterEmailService, logger)
	if err != nil {
		return err
	}
	defer stopTracing() // last, so that the spans of the sends and the links are flushed
	ln, err := listenHTTP(ctx, "listen", listen)
	if err != nil {
		return err
	}
	defer ln.Close()
	nc, js, err := connectEmailAdapter(natsURL, creds, append([]nats.Option{nats.Name("invictus-adapter-email"), nats.MaxReconnects(-1)}, tlsOpts...)...)
	if err != nil {
		return err
	}
	defer nc.Close()
	cctx, cancel := context.WithTimeout(ctx, adapterConnectTimeout)
	defer cancel()
	kv, err := js.KeyValue(cctx, natsjs.BucketDirectory)
	if err != nil {
		return &flagError{flag: "nats-url", value: redactURLs(natsURL), err: fmt.Errorf("directory bucket: %w", err)}
	}
	view := directory.NewView()
	follower := natsjs.NewDirectoryFollower(kv, view, logger)
	fctx, fcancel := context.WithCancel(ctx)
	fdone := make(chan error, 1)
	go func() { fdone <- follower.Run(fctx) }()
	defer func() {
		fcancel()
		if err := <-fdone; err != nil {
			logger.Warn("directory follower", slog.String("error", err.Error()))
		}
	}()
	select {
	case <-follower.Ready():
	case err := <-fdone:
		return fmt.Errorf("directory: %w", err)
	case <-cctx.Done():
		return fmt.Errorf("directory: not loaded: %w", cctx.Err())
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a, err := startEmail(cctx, nc, view, s, reg, logger)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle(email.MountPath, a.Handler())
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		if nc.Status() != nats.CONNECTED {
			http.Error(w, "NATS "+nc.Status().String(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	failed := make(chan error, 1)
	hs := &http.Server{Handler: tracing.Handler(mux), ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	srv := serveHTTP(ln, hs, func(err error) {
		select {
		case failed <- err:
		default:
		}
	})
	logger.Info("email adapter running", slog.String("http", ln.Addr().String()))
	rctx, rcancel := context.WithCancel(ctx)
	rdone := make(chan error, 1)
	go func() { rdone <- a.Run(rctx) }()
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-failed:
	case runErr = <-rdone:
		rdone <- runErr
	}
	rcancel()
	runErr = errors.Join(runErr, <-rdone)
	sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), adapterShutdownTimeout)
	defer scancel()
	runErr = errors.Join(runErr, srv.shutdown(sctx))
	logger.Info("email adapter stopped")
	return runErr
}

// connectEmailAdapter connects to the NATS server at natsURL with the
// credentials file creds (none when empty) and opts, within
// adapterConnectTimeout; errors name the flag to mend.
func connectEmailAdapter(natsURL, creds string, opts ...nats.Option) (*nats.Conn, jetstream.JetStream, error) {
	opts = append(opts, nats.Timeout(adapterConnectTimeout))
	if creds != "" {
		opt, err := natsCredsOption(creds)
		if err != nil {
			return nil, nil, &flagError{flag: "nats-creds", value: creds, err: err}
		}
		opts = append(opts, opt)
	}
	nc, err := nats.Connect(natsURL, opts...)
	if err != nil {
		return nil, nil, &flagError{flag: "nats-url", value: redactURLs(natsURL), err: err}
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}
