package postgres

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the adapter's Prometheus metrics. Every metric carries the
// constant label schema, so that several adapters can share a registry.
// They count rows and events, never their content. The components make
// their own unregistered Metrics when their config has none.
type Metrics struct {
	// OutboxRelayed counts outbox rows published and acknowledged.
	OutboxRelayed prometheus.Counter
	// OutboxRejected counts outbox rows set aside because the contract
	// rejects them.
	OutboxRejected prometheus.Counter
	// RelayLag observes, per relayed row, the seconds from its created_at
	// to JetStream's acknowledgement.
	RelayLag prometheus.Histogram
	// OutboxOldestPending is the age in seconds of the oldest row waiting
	// to be relayed (0 when none), as the active relay last saw it.
	OutboxOldestPending prometheus.Gauge
	// RelayActive is 1 while this process holds the outbox's relay lock.
	RelayActive prometheus.Gauge
	// InboxRows counts deliveries written to the inbox table.
	InboxRows prometheus.Counter
	// InboxDuplicates counts deliveries already in the inbox (redelivered
	// or delivered twice), acknowledged without a new row.
	InboxDuplicates prometheus.Counter
	// EnvelopesOpened counts sealed envelopes opened into the envelopes
	// table.
	EnvelopesOpened prometheus.Counter
	// ProjectionEvents counts REFERRALS events applied by the projection.
	ProjectionEvents prometheus.Counter
	// ProjectionSequence is the last REFERRALS sequence the projection
	// committed.
	ProjectionSequence prometheus.Gauge
	// Errors counts failures by component (relay, inbox, projection) and
	// kind (database, nats, publish, rejected, decode, envelope, hook).
	Errors *prometheus.CounterVec
}

// NewMetrics returns the metrics of the adapter working in schema,
// registered with reg (nil leaves them unregistered). It returns an error
// if reg refuses one, for example because an adapter of the same schema
// registered it already.
func NewMetrics(reg prometheus.Registerer, schema string) (*Metrics, error) {
	cl := prometheus.Labels{"schema": schema}
	const ns, sub = "invictus", "postgres"
	m := &Metrics{
		OutboxRelayed: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, ConstLabels: cl,
			Name: "outbox_relayed_total", Help: "Outbox rows published to JetStream and acknowledged."}),
		OutboxRejected: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, ConstLabels: cl,
			Name: "outbox_rejected_total", Help: "Outbox rows set aside because the event contract rejects them."}),
		RelayLag: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, ConstLabels: cl,
			Name: "outbox_relay_lag_seconds", Help: "Seconds from an outbox row's created_at to JetStream's acknowledgement.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10)}),
		OutboxOldestPending: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, ConstLabels: cl,
			Name: "outbox_oldest_pending_seconds", Help: "Age of the oldest outbox row waiting to be relayed (0 when none)."}),
		RelayActive: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, ConstLabels: cl,
			Name: "relay_active", Help: "1 while this process is the outbox's active relay."}),
		InboxRows: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, ConstLabels: cl,
			Name: "inbox_rows_total", Help: "Deliveries written to the inbox table."}),
		InboxDuplicates: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, ConstLabels: cl,
			Name: "inbox_duplicates_total", Help: "Deliveries already in the inbox table, acknowledged without a new row."}),
		EnvelopesOpened: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, ConstLabels: cl,
			Name: "envelopes_opened_total", Help: "Sealed case envelopes opened into the envelopes table."}),
		ProjectionEvents: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, ConstLabels: cl,
			Name: "projection_events_total", Help: "REFERRALS events applied by the reporting projection."}),
		ProjectionSequence: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, ConstLabels: cl,
			Name: "projection_sequence", Help: "Last REFERRALS stream sequence committed by the projection."}),
		Errors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, ConstLabels: cl,
			Name: "errors_total", Help: "Failures of the adapter by component and kind."}, []string{"component", "kind"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.OutboxRelayed, m.OutboxRejected, m.RelayLag, m.OutboxOldestPending,
		m.RelayActive, m.InboxRows, m.InboxDuplicates, m.EnvelopesOpened, m.ProjectionEvents, m.ProjectionSequence, m.Errors} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, fmt.Errorf("postgres: metrics of schema %s are registered already: %w", schema, err)
			}
			return nil, fmt.Errorf("postgres: register metrics: %w", err)
		}
	}
	return m, nil
}

// Components and error kinds of Metrics.Errors.
const (
	componentRelay      = "relay"
	componentInbox      = "inbox"
	componentProjection = "projection"

	kindDatabase = "database"
	kindNATS     = "nats"
	kindPublish  = "publish"
	kindRejected = "rejected"
	kindDecode   = "decode"
	kindEnvelope = "envelope"
	kindHook     = "hook"
)

func (m *Metrics) countError(component, kind string) {
	m.Errors.WithLabelValues(component, kind).Inc()
}
