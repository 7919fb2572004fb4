package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Command outcomes of [Metrics].Commands.
const (
	OutcomeSubmitted = "submitted" // stored in INBOUND
	OutcomeAccepted  = "accepted"  // in the referral's log (seen by ?wait)
	OutcomeRejected  = "rejected"  // command.rejected (seen by ?wait)
	OutcomeInvalid   = "invalid"   // refused by the API: does not decode
	OutcomeForbidden = "forbidden" // refused by the API: wrong source or type
)

// Metrics are the Prometheus collectors of /metrics, on a registry of
// their own (never the global one). The API updates Commands, the HTTP
// and webhook collectors, and DLQ and ConsumerLag (from [StreamStats] at
// each scrape); the other collectors are exposed for the components that
// know their values (the routing service, the reporting projection), which
// update them directly. No label ever holds a referral id or anything
// about a victim.
type Metrics struct {
	// Registry holds every collector below plus the Go and process
	// collectors; register more on it.
	Registry *prometheus.Registry
	// Commands counts commands by type and outcome (the Outcome* constants).
	Commands *prometheus.CounterVec
	// Referrals is the number of referrals by status.
	Referrals *prometheus.GaugeVec
	// OfferLatency observes the seconds from an offer to its answer.
	OfferLatency prometheus.Histogram
	// DeadlineExpiries counts offers whose deadline passed.
	DeadlineExpiries prometheus.Counter
	// DLQ is the number of messages in the DLQ stream.
	DLQ prometheus.Gauge
	// ConsumerLag is the number of messages not yet delivered to each
	// durable consumer, by stream and consumer.
	ConsumerLag *prometheus.GaugeVec
	// HTTPRequests counts requests by route pattern, method and status code.
	HTTPRequests *prometheus.CounterVec
	// HTTPDuration observes request durations by route pattern.
	HTTPDuration *prometheus.HistogramVec
	// WebhookAttempts counts webhook delivery attempts by result
	// (delivered, failed, gave_up).
	WebhookAttempts *prometheus.CounterVec
}

// NewMetrics returns the collectors registered on a new registry.
func NewMetrics() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		Commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "invictus", Name: "commands_total",
			Help: "Commands received, by CloudEvents type and outcome.",
		}, []string{"type", "outcome"}),
		Referrals: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "invictus", Name: "referrals",
			Help: "Referrals by status.",
		}, []string{"status"}),
		OfferLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "invictus", Name: "offer_latency_seconds",
			Help:    "Time from an offer to its answer (accepted or declined).",
			Buckets: []float64{60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400, 172800, 259200, 604800},
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
		WebhookAttempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "invictus", Name: "webhook_attempts_total",
			Help: "Webhook delivery attempts by result: delivered, failed (will retry), gave_up.",
		}, []string{"result"}),
	}
	m.Registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.Commands, m.Referrals, m.OfferLatency, m.DeadlineExpiries, m.DLQ, m.ConsumerLag,
		m.HTTPRequests, m.HTTPDuration, m.WebhookAttempts,
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
