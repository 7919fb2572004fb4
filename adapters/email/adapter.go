package email

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Deps are the adapter's required dependencies.
type Deps struct {
	// Mailer sends the messages.
	Mailer *Mailer
	// Deliveries gives the e-mail organisations' deliveries.
	Deliveries Deliveries
	// State keeps the node secret, the sender lease and the failures.
	State Store
	// Marks records used links and sent messages; its entries may expire
	// after the longest offer deadline.
	Marks Store
	// Commands publishes the answers given through links.
	Commands CommandSink
	// Notices tells referrers, by a delivery.failed event, of the offers
	// that could not be delivered.
	Notices Notices
	// Outcomes tells a confirmation page what became of an answer.
	Outcomes Outcomes
	// Timeline reads a referral's log (the offer a link is about).
	Timeline Timeline
	// Directory is the current directory.
	Directory Directory
}

// Adapter is the e-mail channel: [Adapter.Run] sends the messages while
// this instance holds the sender lease, and [Adapter.Handler] serves the
// pages of the action links (mount it at [MountPath]).
type Adapter struct {
	deps     Deps
	cfg      Config
	links    *Links
	composer *composer
	metrics  *metrics
	sender   *sender
}

// New returns the adapter. It reads the node secret that signs links
// from deps.State, creating it on first use, so every instance of one
// network signs alike. It returns an error naming a missing dependency
// or an invalid Config field, or the store's error.
func New(ctx context.Context, deps Deps, cfg Config) (*Adapter, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.digestAt, _ = ParseDigestAt(cfg.DigestAt) // valid: Validate checked it
	for name, missing := range map[string]bool{"Mailer": deps.Mailer == nil, "Deliveries": deps.Deliveries == nil,
		"State": deps.State == nil, "Marks": deps.Marks == nil, "Commands": deps.Commands == nil,
		"Notices":  deps.Notices == nil,
		"Outcomes": deps.Outcomes == nil, "Timeline": deps.Timeline == nil, "Directory": deps.Directory == nil} {
		if missing {
			return nil, fmt.Errorf("email: Deps.%s is required", name)
		}
	}
	key, err := nodeSecret(ctx, deps.State)
	if err != nil {
		return nil, err
	}
	links, err := NewLinks(key, cfg.Now)
	if err != nil {
		return nil, err
	}
	c, err := newComposer(cfg, deps.Directory, deps.Timeline, links)
	if err != nil {
		return nil, err
	}
	m := newMetrics()
	if cfg.Registerer != nil {
		if err := m.register(cfg.Registerer); err != nil {
			return nil, err
		}
	}
	a := &Adapter{deps: deps, cfg: cfg, links: links, composer: c, metrics: m}
	a.sender = &sender{a: a, digestSince: map[string]time.Time{}, digestDue: map[string]time.Time{}, digestFails: map[string]int{}}
	return a, nil
}

// nodeSecret returns the link key from st, creating it if missing.
func nodeSecret(ctx context.Context, st Store) ([]byte, error) {
	b, _, err := st.Get(ctx, keySecret)
	if errors.Is(err, fs.ErrNotExist) {
		key := make([]byte, LinkKeySize)
		_, _ = rand.Read(key) // never fails (crypto/rand)
		if _, err = st.Create(ctx, keySecret, key); errors.Is(err, fs.ErrExist) {
			b, _, err = st.Get(ctx, keySecret) // another instance was first
		} else if err == nil {
			b = key
		}
	}
	if err != nil {
		return nil, fmt.Errorf("email: node secret: %w", err)
	}
	if len(b) < LinkKeySize {
		return nil, fmt.Errorf("email: node secret of %d bytes, want %d", len(b), LinkKeySize)
	}
	return b, nil
}

// Run sends messages while this instance holds the sender lease, until
// ctx ends; then it finishes the message in hand, releases the lease and
// returns nil.
func (a *Adapter) Run(ctx context.Context) error {
	defer a.deps.Mailer.Close()
	return a.sender.run(ctx)
}

// Links returns the signer of action links.
func (a *Adapter) Links() *Links { return a.links }

// Handler serves the pages of the action links under [MountPath].
func (a *Adapter) Handler() http.Handler { return newPages(a) }

// metrics are the adapter's Prometheus collectors.
type metrics struct {
	messages    *prometheus.CounterVec
	links       *prometheus.CounterVec
	sendSeconds prometheus.Histogram
	leader      prometheus.Gauge
}

func newMetrics() *metrics {
	return &metrics{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "invictus_email_messages_total",
			Help: "Deliveries handled by the e-mail sender, by result: sent, skipped (nothing to send), retried (temporary failure), failed (given up), notified (the referrer of an offer given up was told by a delivery.failed event), held (kept for a daily digest), already_sent, undecodable, uncomposable."},
			[]string{"result"}),
		links: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "invictus_email_link_answers_total",
			Help: "Confirmations posted from action links, by result: accepted, declined, pending, rejected, invalid, expired, used, closed, unavailable."},
			[]string{"result"}),
		sendSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "invictus_email_send_seconds",
			Help: "Time the SMTP server took to accept one message.", Buckets: prometheus.ExponentialBuckets(0.0005, 4, 9)}),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{Name: "invictus_email_sender_leader",
			Help: "1 while this instance holds the sender lease and sends e-mail."}),
	}
}

func (m *metrics) register(r prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.messages, m.links, m.sendSeconds, m.leader} {
		if err := r.Register(c); err != nil {
			return fmt.Errorf("email: metrics: %w", err)
		}
	}
	return nil
}
