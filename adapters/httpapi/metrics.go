package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/referral"
	"github.com/invictus-network/invictus/routing"
)

// Command outcomes of [Metrics].Commands counted by the API itself: the
// commands it refuses before they reach the routing service. Every other
// command is counted once, by the routing service through
// [Metrics.Command], with routing.OutcomeAccepted, OutcomeDuplicate,
// OutcomeRejected or OutcomeFailed; the API does not count what ?wait=
// sees, so no command is counted twice.
const (
	OutcomeInvalid   = "invalid"   // refused by the API: does not decode
	OutcomeForbidden = "forbidden" // refused by the API: wrong source or type
)

// The metrics are the routing service's observer.
var _ routing.Observer = (*Metrics)(nil)

// Metrics are the Prometheus collectors of /metrics, on a registry of
// their own (never the global one). The API updates Commands (for the
// commands it refuses), the HTTP and webhook collectors, and DLQ and
// ConsumerLag (from [StreamStats] at each scrape). Metrics is also a
// [routing.Observer]: give it to routing.ServiceConfig.Observer and the
// routing service feeds Commands, Referrals, OfferLatency and
// DeadlineExpiries. No label ever holds a referral id or anything about a
// victim.
type Metrics struct {
	// Registry holds every collector below plus the Go and process
	// collectors; register more on it.
	Registry *prometheus.Registry
	// Commands counts commands by type and outcome: the API's Outcome*
	// constants and routing's.
	Commands *prometheus.CounterVec
	// Referrals is the number of referrals by status, from the status
	// changes the routing service of this process made since it started:
	// referrals that existed before are not counted, so after a restart a
	// status may go below zero; with several routing instances, sum them.
	Referrals *prometheus.GaugeVec
	// OfferLatency observes the seconds from a referral's request to each
	// offer: the first offer, and each next one after a decline or an
	// expired deadline.
	OfferLatency prometheus.Histogram
	// DeadlineExpiries counts offers whose deadline passed.
	DeadlineExpiries prometheus.Counter
	// DLQ is the number of messages in the DLQ stream.
	DLQ prometheus.Gauge
	// ConsumerLag is the number of messages not yet delivered to each
	// durable consumer, by stream and consumer.
	ConsumerLag *prometheus.GaugeVec
	// HTTPRequests counts requests by route pattern (or "unmatched", or
	// "shed"), method (a standard method or "other") and status code:
	// labels from a closed set.
	HTTPRequests *prometheus.CounterVec
	// HTTPDuration observes request durations by route pattern.
	HTTPDuration *prometheus.HistogramVec
	// HTTPShed counts the requests admission control answered 503
	// overloaded (Config.MaxInFlight).
	HTTPShed prometheus.Counter
	// WebhookAttempts counts webhook delivery attempts by result
	// (delivered, failed, gave_up).
	WebhookAttempts *prometheus.CounterVec
}

// OfferLatencyBuckets are the buckets of [Metrics].OfferLatency, in
// seconds: milliseconds for a first offer made on the request, up to a
// week for offers made after declines and expired deadlines.
var OfferLatencyBuckets = []float64{0.001, 0.005, 0.025, 0.1, 0.5, 1, 5, 60, 900, 3600, 14400, 86400, 259200, 604800}

// NewMetrics returns the collectors registered on a new registry.
func NewMetrics() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		Commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "invictus", Name: "commands_total",
			Help: "Commands by CloudEvents type and outcome: decided by the routing service (accepted, duplicate, rejected, failed) or refused by the HTTP API (invalid, forbidden).",
		}, []string{"type", "outcome"}),
		Referrals: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "invictus", Name: "referrals",
			Help: "Referrals by status, from the status changes made since this process started (sum over routing instances).",
		}, []string{"status"}),
		OfferLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "invictus", Name: "offer_latency_seconds",
			Help:    "Seconds from a referral's request to each of its offers (the first, and each after a decline or an expired deadline).",
			Buckets: OfferLatencyBuckets,
		}),
		DeadlineExpiries: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "invictus", Name: "deadline_expiries_total",
			Help: "Offers whose deadline passed without an answer.",
		}),
		DLQ: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "invictus", Name: "dlq_messages",
			Help: "Messages in the DLQ stream: commands that could not be decoded or authorised.",
		}),
		ConsumerLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "invictus", Name: "consumer_lag_messages",
			Help: "Messages not yet delivered to each durable consumer.",
		}, []string{"stream", "consumer"}),
		HTTPRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "invictus", Name: "http_requests_total",
			Help: "HTTP requests by route pattern, method and status code.",
		}, []string{"route", "method", "code"}),
		HTTPDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "invictus", Name: "http_request_duration_seconds",
			Help:    "HTTP request durations by route pattern (server-sent event streams excluded).",
			Buckets: prometheus.DefBuckets,
		}, []string{"route"}),
		HTTPShed: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "invictus", Name: "http_shed_total",
			Help: "HTTP requests answered 503 overloaded because the most requests in flight were being handled.",
		}),
		WebhookAttempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "invictus", Name: "webhook_attempts_total",
			Help: "Webhook delivery attempts by result: delivered, failed (will retry), gave_up.",
		}, []string{"result"}),
	}
	m.Registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.Commands, m.Referrals, m.OfferLatency, m.DeadlineExpiries, m.DLQ, m.ConsumerLag,
		m.HTTPRequests, m.HTTPDuration, m.HTTPShed, m.WebhookAttempts,
	)
	return m
}

// statsTimeout bounds the StreamStats read of one scrape.
const statsTimeout = 2 * time.Second

// handler serves the registry, refreshing DLQ and ConsumerLag from stats
// first (when stats is set); a failing read leaves the last values.
func (m *Metrics) handler(stats StreamStats, logf func(ctx context.Context, msg string, err error)) http.Handler {
	h := promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if stats != nil {
			ctx, cancel := context.WithTimeout(r.Context(), statsTimeout)
			dlq, lag, err := stats.Stats(ctx)
			cancel()
			if err != nil {
				logf(r.Context(), "httpapi: stream stats", err)
			} else {
				m.DLQ.Set(float64(dlq))
				m.ConsumerLag.Reset()
				for k, v := range lag {
					stream, consumer := k, ""
					for i := range len(k) {
						if k[i] == '/' {
							stream, consumer = k[:i], k[i+1:]
							break
						}
					}
					m.ConsumerLag.WithLabelValues(stream, consumer).Set(float64(v))
				}
			}
		}
		h.ServeHTTP(w, r)
	})
}

// Command counts a command's outcome; types outside the catalogue are
// counted as "unknown", so that a label never holds what a client made up.
// It implements [routing.Observer].
func (m *Metrics) Command(eventType, outcome string) {
	if _, ok := events.NewPayload(eventType); !ok {
		eventType = "unknown"
	}
	m.Commands.WithLabelValues(eventType, outcome).Inc()
}

// Offered observes an offer's latency from the referral's request. It
// implements [routing.Observer].
func (m *Metrics) Offered(latency time.Duration) { m.OfferLatency.Observe(latency.Seconds()) }

// Expired counts an offer whose deadline passed. It implements
// [routing.Observer].
func (m *Metrics) Expired() { m.DeadlineExpiries.Inc() }

// Transition moves a referral from status from (none for a new referral)
// to status to. It implements [routing.Observer].
func (m *Metrics) Transition(from, to referral.Status) {
	if from != "" {
		m.Referrals.WithLabelValues(string(from)).Dec()
	}
	if to != "" {
		m.Referrals.WithLabelValues(string(to)).Inc()
	}
}
