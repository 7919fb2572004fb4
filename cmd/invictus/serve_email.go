package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/mail"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"

	"github.com/invictus-network/invictus/adapters/email"
	"github.com/invictus-network/invictus/adapters/natsjs"
	"github.com/invictus-network/invictus/directory"
)

// emailCheckTimeout bounds the check, at start, that the SMTP server
// answers.
const emailCheckTimeout = 15 * time.Second

// errSMTPUnreachable: the server of --smtp-url did not answer at start.
var errSMTPUnreachable = errors.New("SMTP server unreachable or refused the connection")

// emailSettings are the settings of the e-mail channel, shared by serve
// and `adapter email`.
type emailSettings struct {
	smtpURL   string
	from      string
	publicURL string
	digestAt  string
	// replicas of the e-mail buckets: serve's --nats-replicas.
	replicas int
	// maxBytes and marksMaxBytes bound the e-mail buckets.
	maxBytes, marksMaxBytes sizeValue
}

// addFlags registers the e-mail flags on fs; --smtp-url is a secret (it
// may hold a password).
func (s *emailSettings) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&s.smtpURL, "smtp-url", "", "send e-mail to organisations without a system through this server: smtp://user:pass@host:port (STARTTLS; ?tls=none for a local relay) or smtps://... (implicit TLS)")
	fs.StringVar(&s.from, "mail-from", "", `sender address of the e-mails, e.g. "INVICTUS <referrals@node.example>" (with --smtp-url)`)
	fs.StringVar(&s.publicURL, "public-url", "", "public base URL of this node, for the links in e-mails, e.g. https://node.example (with --smtp-url)")
	fs.StringVar(&s.digestAt, "digest-at", email.DigestAtDefault, "time of day HH:MM (24-hour clock) of the daily digest of organisations with referral_channel email_digest, "+
		"on each organisation's own clock: the time zone of the opening hours of its first service (by id) in the directory, or UTC when it has none")
	s.maxBytes, s.marksMaxBytes = sizeValue(natsjs.EmailMaxBytesDefault), sizeValue(natsjs.EmailMarksMaxBytesDefault)
	fs.Var(&s.maxBytes, "email-max-bytes", `bound on the e-mail bucket: link key, sender lease, messages given up (bytes, or with KiB, MiB, GiB, TiB; "unlimited" for none)`)
	fs.Var(&s.marksMaxBytes, "email-marks-max-bytes", `bound on the e-mail marks bucket: used links, sent messages (bytes, or with KiB, MiB, GiB, TiB; "unlimited" for none)`)
	markSecret(fs, "smtp-url")
}

// buckets returns the bounds of the e-mail buckets.
func (s emailSettings) buckets() natsjs.StreamsConfig {
	return natsjs.StreamsConfig{Replicas: s.replicas, EmailMaxBytes: int64(s.maxBytes), EmailMarksMaxBytes: int64(s.marksMaxBytes)}
}

// enabled reports whether the e-mail channel is configured.
func (s emailSettings) enabled() bool { return s.smtpURL != "" }

// check reports a missing or malformed setting as a usageError naming it.
func (s emailSettings) check() error {
	if s.maxBytes == 0 || s.marksMaxBytes == 0 {
		return usageError{errors.New("--email-max-bytes and --email-marks-max-bytes: want a size, or unlimited")}
	}
	if _, err := email.ParseDigestAt(s.digestAt); err != nil {
		return usageError{&flagError{flag: "digest-at", value: s.digestAt, err: errors.New("not a time of day HH:MM on a 24-hour clock, from 00:00 to 23:59 (e.g. 07:00)")}}
	}
	if !s.enabled() {
		if s.from != "" || s.publicURL != "" {
			return usageError{errors.New("--mail-from and --public-url are for the e-mail channel: give --smtp-url too")}
		}
		return nil
	}
	if _, err := email.ParseSMTPURL(s.smtpURL); err != nil {
		return usageError{&flagError{flag: "smtp-url", value: redacted, err: err}}
	}
	if s.from == "" {
		return usageError{errors.New("--mail-from is required with --smtp-url")}
	}
	if s.publicURL == "" {
		return usageError{errors.New("--public-url is required with --smtp-url: e-mails link to it")}
	}
	if _, err := mail.ParseAddress(s.from); err != nil {
		return usageError{&flagError{flag: "mail-from", value: s.from, err: errors.New("not an e-mail address")}}
	}
	if err := (email.Config{From: s.from, PublicURL: s.publicURL}).WithDefaults().Validate(); err != nil {
		return usageError{&flagError{flag: "public-url", value: s.publicURL, err: errors.New("not an absolute http(s) URL without user, query or fragment")}}
	}
	return nil
}

// startEmail checks the SMTP server, ensures the e-mail buckets and
// builds the adapter over nc. Errors name the setting to change.
func startEmail(ctx context.Context, nc *nats.Conn, view *directory.View, s emailSettings, reg prometheus.Registerer, logger *slog.Logger) (*email.Adapter, error) {
	smtpCfg, err := email.ParseSMTPURL(s.smtpURL)
	if err != nil {
		return nil, &flagError{flag: "smtp-url", value: redacted, err: err}
	}
	mailer, err := email.NewMailer(smtpCfg)
	if err != nil {
		return nil, &flagError{flag: "smtp-url", value: smtpCfg.String(), err: err}
	}
	cctx, cancel := context.WithTimeout(ctx, emailCheckTimeout)
	err = mailer.Check(cctx)
	cancel()
	if err != nil {
		return nil, &flagError{flag: "smtp-url", value: smtpCfg.String(), err: fmt.Errorf("%w: %w", errSMTPUnreachable, err)}
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("email: %w", err)
	}
	state, marks, err := natsjs.EnsureEmailBuckets(ctx, js, s.buckets())
	if err != nil {
		return nil, fmt.Errorf("email: %w", err)
	}
	bus, err := natsjs.NewBus(nc, natsjs.BusConfig{Logger: logger})
	if err != nil {
		return nil, fmt.Errorf("email: %w", err)
	}
	return email.New(ctx, email.Deps{
		Mailer: mailer, Deliveries: natsjs.NewEmailDeliveries(js, logger), State: state, Marks: marks,
		Commands: natsjs.NewInboundSink(js), Outcomes: natsjs.NewCommandOutcomes(js), Notices: natsjs.NewDeliveryNotices(js),
		Timeline: natsjs.NewReferralTimeline(bus), Directory: view,
	}, email.Config{From: s.from, PublicURL: s.publicURL, DigestAt: s.digestAt, Registerer: reg, Logger: logger})
}

// emailComponent runs the e-mail channel inside serve: the sender (while
// this node holds the lease) and the pages of the action links, which
// the HTTP API mounts at /mail/.
type emailComponent struct {
	settings emailSettings
	conn     func() *nats.Conn
	view     *directory.View
	reg      prometheus.Registerer
	logger   *slog.Logger
	fail     func(error)

	handler atomic.Pointer[http.Handler]
	bg      *background
}

func (e *emailComponent) Name() string { return "email" }

// Start checks the SMTP server and starts sending.
func (e *emailComponent) Start(ctx context.Context) error {
	a, err := startEmail(ctx, e.conn(), e.view, e.settings, e.reg, e.logger)
	if err != nil {
		return err
	}
	h := a.Handler()
	e.handler.Store(&h)
	e.bg = startBackground("email", e.fail, a.Run)
	return nil
}

// Stop stops sending and releases the lease.
func (e *emailComponent) Stop(ctx context.Context) error { return e.bg.stop(ctx) }

// ServeHTTP serves the link pages once started.
func (e *emailComponent) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := e.handler.Load()
	if h == nil {
		http.Error(w, "e-mail links are not available yet", http.StatusServiceUnavailable)
		return
	}
	(*h).ServeHTTP(w, r)
}
