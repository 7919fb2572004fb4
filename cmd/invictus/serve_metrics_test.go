package main

import (
	"fmt"
	"github.com/invictus-network/invictus/internal/testenv"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// metricValue returns the value of the series (name and labels, as the
// text exposition writes them) in exposition, and whether it is there.
func metricValue(exposition, series string) (float64, bool) {
	for line := range strings.Lines(exposition) {
		rest, ok := strings.CutPrefix(line, series+" ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
		return v, err == nil
	}
	return 0, false
}

// TestServeMetrics drives a referral through serve and finds the routing
// service's work on /metrics: the commands by type and outcome, the offer
// latency, the referrals by status.
func TestServeMetrics(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	p := serveInProcess(t, fakeEnv(nil), "--data", data)
	nc := connectAdmin(t, p.NATS, data)
	orgA, orgB := "pt.metrics-a", "pt.metrics-b"
	tokens := provisionTestOrgs(t, nc, testOrgsDirectory(t, orgA, orgB), false)
	referralFlow(t, p.HTTP, orgA, tokens[orgA], orgB, tokens[orgB])

	wants := map[string]float64{
		`invictus_commands_total{outcome="accepted",type="invictus.referral.requested.v1"}`: 1,
		`invictus_commands_total{outcome="accepted",type="invictus.referral.accepted.v1"}`:  1,
		`invictus_offer_latency_seconds_count`:                                              1,
		`invictus_referrals{status="in_progress"}`:                                          1,
	}
	var exposition string
	lacking := func() (out []string) {
		resp, err := http.Get("http://" + p.HTTP + "/metrics")
		if err != nil {
			t.Fatalf("GET /metrics: %v", err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /metrics: %d %v", resp.StatusCode, err)
		}
		exposition = string(b)
		for series, least := range wants {
			if v, ok := metricValue(exposition, series); !ok || v < least {
				out = append(out, series)
			}
		}
		return out
	}
	// The routing service counts a command just after appending its
	// events, so the count may follow what the API showed by a moment.
	testenv.Await(t, "/metrics to count the commands", func() bool { return len(lacking()) == 0 }, func() string {
		return fmt.Sprintf("/metrics lacks %v:\n%s", lacking(), exposition)
	})
	if strings.Contains(exposition, `outcome="submitted"`) {
		t.Error("/metrics counts the HTTP submissions as well as the routing service's outcomes")
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", exposition)
	}
	if code := p.stop(); code != exitOK {
		t.Errorf("exit %d\n%s", code, p.errOut)
	}
}
