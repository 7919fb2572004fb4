package main

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/invictus-network/invictus/adapters/natsjs"
)

// TestServeReadyFollowsStorage runs serve with a 64 KiB REFERRALS: once
// it is full /readyz answers 503 naming it, /metrics shows its usage
// against the bound, and /readyz answers 200 again by itself when
// referrals are erased.
func TestServeReadyFollowsStorage(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	p := serveInProcess(t, fakeEnv(nil), "--data", data, "--referrals-max-bytes", "64KiB", "--inbound-max-per-org", "50")
	nc := connectAdmin(t, p.NATS, data)
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if code, rep := getJSON(t, "http://"+p.HTTP+"/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz at start: %d %+v", code, rep)
	}
	ctx := t.Context()
	for i := 0; ; i++ {
		if i == 1000 {
			t.Fatal("1000 × 1 KiB appended to a 64 KiB REFERRALS")
		}
		if _, err := js.Publish(ctx, "referral.pt.r"+strconv.Itoa(i%8), make([]byte, 1024)); err != nil {
			break
		}
	}
	code, rep := getJSON(t, "http://"+p.HTTP+"/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(rep.Checks["storage"], "stream REFERRALS is full") {
		t.Errorf("/readyz with REFERRALS full: %d %+v", code, rep)
	}

	resp, err := http.Get("http://" + p.HTTP + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	exposition := string(b)
	for series, want := range map[string]float64{
		`invictus_stream_max_bytes{stream="REFERRALS"}`:          64 << 10,
		`invictus_stream_max_msgs_per_subject{stream="INBOUND"}`: 50,
		`invictus_stream_max_bytes{stream="DLQ"}`:                float64(natsjs.DLQMaxBytesDefault),
		`invictus_stream_max_bytes{stream="KV_tokens"}`:          float64(natsjs.TokensMaxBytesDefault),
		`invictus_store_disk_min_free_bytes`:                     float64(natsjs.MinFreeDefault),
	} {
		if v, ok := metricValue(exposition, series); !ok || v != want {
			t.Errorf("/metrics %s = %v (present %v), want %v", series, v, ok, want)
		}
	}
	if v, ok := metricValue(exposition, `invictus_stream_bytes{stream="REFERRALS"}`); !ok || v < 0.9*(64<<10) {
		t.Errorf("/metrics REFERRALS bytes = %v (present %v), want near 64 KiB", v, ok)
	}

	s, err := js.Stream(ctx, natsjs.StreamReferrals)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{"r0", "r1", "r2", "r3"} {
		if err := s.Purge(ctx, jetstream.WithPurgeSubject("referral.pt."+r)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "/readyz to answer 200 once space returned", func() bool {
		code, _ := getJSON(t, "http://"+p.HTTP+"/readyz")
		return code == http.StatusOK
	})
	if code := p.stop(); code != exitOK {
		t.Errorf("exit %d\n%s", code, p.errOut)
	}
}
