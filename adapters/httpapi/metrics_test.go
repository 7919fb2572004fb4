package httpapi_test

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/invictus-network/invictus/adapters/httpapi"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/referral"
	"github.com/invictus-network/invictus/routing"
)

// scrape returns the text exposition of m's registry.
func scrape(t *testing.T, m *httpapi.Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	b, err := io.ReadAll(rec.Result().Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The routing service's observations become the series of /metrics.
func TestMetricsObserveRouting(t *testing.T) {
	t.Parallel()
	m := httpapi.NewMetrics()
	var o routing.Observer = m

	o.Command(events.TypeReferralRequested, routing.OutcomeAccepted)
	o.Command(events.TypeReferralRequested, routing.OutcomeAccepted)
	o.Command(events.TypeReferralAccepted, routing.OutcomeRejected)
	o.Command(events.TypeReferralAccepted, routing.OutcomeDuplicate)
	o.Command("com.example.made-up", routing.OutcomeRejected)
	o.Offered(3 * time.Millisecond)
	o.Offered(2 * time.Hour)
	o.Expired()
	// Two referrals planned, one of them accepted, then completed.
	o.Transition("", referral.StatusPlanned)
	o.Transition("", referral.StatusPlanned)
	o.Transition(referral.StatusPlanned, referral.StatusInProgress)
	o.Transition(referral.StatusInProgress, referral.StatusCompleted)

	got := scrape(t, m)
	for _, want := range []string{
		`invictus_commands_total{outcome="accepted",type="invictus.referral.requested.v1"} 2`,
		`invictus_commands_total{outcome="rejected",type="invictus.referral.accepted.v1"} 1`,
		`invictus_commands_total{outcome="duplicate",type="invictus.referral.accepted.v1"} 1`,
		`invictus_commands_total{outcome="rejected",type="unknown"} 1`,
		`invictus_offer_latency_seconds_bucket{le="0.005"} 1`,
		`invictus_offer_latency_seconds_bucket{le="3600"} 1`,
		`invictus_offer_latency_seconds_bucket{le="14400"} 2`,
		`invictus_offer_latency_seconds_sum 7200.003`,
		`invictus_offer_latency_seconds_count 2`,
		`invictus_deadline_expiries_total 1`,
		`invictus_referrals{status="planned"} 1`,
		`invictus_referrals{status="in_progress"} 0`,
		`invictus_referrals{status="completed"} 1`,
	} {
		if !strings.Contains(got, want+"\n") {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(got, "example") {
		t.Error("/metrics holds a made-up command type")
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", got)
	}
}
