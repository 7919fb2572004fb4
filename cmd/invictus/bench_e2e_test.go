package main

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/invictus-network/invictus/adapters/natsjs"
	"github.com/invictus-network/invictus/internal/bench"
	"github.com/invictus-network/invictus/internal/testenv"
)

// benchE2ELine runs `bench e2e` with args and returns its one JSON line,
// decoded, failing the test unless it exits 0 and prints exactly one line.
func benchE2ELine(t *testing.T, args ...string) bench.E2EResult {
	t.Helper()
	// The memory limit is the process's, which parallel tests share.
	if !slices.Contains(args, "--memory-limit") {
		args = append(args, "--memory-limit", "unlimited")
	}
	code, out, errOut := cliRun(t, append([]string{"bench", "e2e", "--log-level", "warn"}, args...)...)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 1 {
		t.Fatalf("want one line, got %d:\n%s", len(lines), out)
	}
	var fields map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &fields); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	for _, k := range []string{"go_version", "gomaxprocs", "referrals", "referrals_per_s", "p50_ms", "p95_ms", "p99_ms",
		"raw_hop_per_s", "routing_hop_per_s", "hop_ratio", "errors", "load_average_start"} {
		if _, ok := fields[k]; !ok && (k != "load_average_start" || runtime.GOOS == "linux") {
			t.Errorf("the line lacks %q: %s", k, lines[0])
		}
	}
	var res bench.E2EResult
	if err := json.Unmarshal([]byte(lines[0]), &res); err != nil {
		t.Fatal(err)
	}
	return res
}

// checkSane checks the figures of a run of n referrals and burst commands
// for consistency, not for speed.
func checkSane(t *testing.T, res bench.E2EResult, n, burst int) {
	t.Helper()
	switch {
	case res.GoVersion != runtime.Version() || res.GOMAXPROCS != runtime.GOMAXPROCS(0) || res.CPUs < 1:
		t.Errorf("runtime figures %q %d %d", res.GoVersion, res.GOMAXPROCS, res.CPUs)
	case res.Referrals != n || res.Offers < n || res.Errors != 0 || res.FirstError != "":
		t.Errorf("referrals %d, offers %d, errors %d (%s); want %d referrals, an offer each at least, no error",
			res.Referrals, res.Offers, res.Errors, res.FirstError, n)
	case !(res.P50Ms > 0 && res.P50Ms <= res.P95Ms && res.P95Ms <= res.P99Ms && res.P99Ms <= res.MaxMs):
		t.Errorf("latencies p50 %g p95 %g p99 %g max %g are not ordered", res.P50Ms, res.P95Ms, res.P99Ms, res.MaxMs)
	case res.ReferralsPerS <= 0 || res.ReferralsPerS > 1.5*res.OfferedRate:
		t.Errorf("referrals/s %g at an offered %g/s", res.ReferralsPerS, res.OfferedRate)
	case res.RawHopPerS <= 0 || res.CommandSize < 200 || res.MsgSize < 1:
		t.Errorf("raw hop %g/s, command size %d, message size %d", res.RawHopPerS, res.CommandSize, res.MsgSize)
	case res.Burst != burst:
		t.Errorf("burst %d, want %d", res.Burst, burst)
	case burst > 0 && (res.RoutingHopPerS <= 0 || math.Abs(res.HopRatio-res.RoutingHopPerS/res.RawHopPerS) > 1e-9):
		t.Errorf("routing hop %g/s, ratio %g to the raw %g/s", res.RoutingHopPerS, res.HopRatio, res.RawHopPerS)
	case res.Organisations < 2 || res.Services < 10:
		t.Errorf("%d organisations, %d services", res.Organisations, res.Services)
	}
}

// Not parallel: it points TMPDIR at a directory of its own to see that
// the embedded server's store is removed.
func TestBenchE2EEmbedded(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	profile := filepath.Join(t.TempDir(), "cpu.pprof")
	res := benchE2ELine(t, "--referrals", "50", "--burst", "40", "--rate", "500", "--raw-messages", "300",
		"--msg-size", "512", "--services", "40", "--cpuprofile", profile)
	checkSane(t, res, 50, 40)
	if res.Server != "embedded" || res.MsgSize != 512 || res.OfferedRate != 500 {
		t.Errorf("server %q, message size %d, rate %g", res.Server, res.MsgSize, res.OfferedRate)
	}
	if res.Workers < 1 || res.RawHopConcurrentPerS <= 0 || math.Abs(res.HopRatioLikeForLike-res.RoutingHopPerS/res.RawHopConcurrentPerS) > 1e-9 {
		t.Errorf("like for like: %d workers, raw hop %g/s, ratio %g", res.Workers, res.RawHopConcurrentPerS, res.HopRatioLikeForLike)
	}
	if fi, err := os.Stat(profile); err != nil || fi.Size() == 0 {
		t.Errorf("CPU profile: %v", err)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("the bench left %s behind in TMPDIR", left[0].Name())
	}
}

func TestBenchE2EExternalServer(t *testing.T) {
	t.Parallel()
	url := cliServer(t)
	res := benchE2ELine(t, "--nats-url", url, "--referrals", "30", "--burst", "0", "--rate", "300", "--raw-messages", "200", "--services", "30")
	checkSane(t, res, 30, 0)
	if res.RoutingHopPerS != 0 || res.HopRatio != 0 || !strings.HasPrefix(url, "nats://"+res.Server) {
		t.Errorf("without a burst: routing hop %g, ratio %g; server %q of %s", res.RoutingHopPerS, res.HopRatio, res.Server, url)
	}

	// The bench deleted what it created.
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	ctx := testenv.Context(t)
	for _, name := range []string{natsjs.StreamInbound, natsjs.StreamReferrals, natsjs.StreamDelivery, natsjs.StreamTimers, natsjs.StreamDLQ, "KV_" + natsjs.BucketDirectory, "BENCH_RAW_IN"} {
		if _, err := js.Stream(ctx, name); !errors.Is(err, jetstream.ErrStreamNotFound) {
			t.Errorf("stream %s after the bench: %v", name, err)
		}
	}

	// A server that holds a network's streams is refused, and left alone.
	if err := natsjs.EnsureStreams(ctx, js, natsjs.StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := cliRun(t, "bench", "e2e", "--nats-url", url, "--referrals", "5", "--log-level", "warn")
	if code != exitError || !strings.Contains(errOut, "already has stream") {
		t.Errorf("exit %d, stderr %q; want a refusal naming the stream", code, errOut)
	}
	if _, err := js.Stream(ctx, natsjs.StreamInbound); err != nil {
		t.Errorf("the refused bench touched INBOUND: %v", err)
	}
}

func TestBenchE2EUsage(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--referrals", "0"}, "--referrals"},
		{[]string{"--rate", "0"}, "--rate"},
		{[]string{"--msg-size", "0"}, "--msg-size"},
		{[]string{"--burst", "-1"}, "--burst"},
		{[]string{"--nats-creds", "x.creds"}, "--creds needs --nats-url"},
		{[]string{"--wait", "0s"}, "--wait"},
		{[]string{"--settle", "-1s"}, "--settle"},
		{[]string{"--memory-limit", "1MiB"}, "--memory-limit 1048576: want at least 64 MiB"},
		{[]string{"extra"}, "unknown command"},
	} {
		code, _, errOut := cliRun(t, append([]string{"bench", "e2e"}, tt.args...)...)
		if code != exitUsage || !strings.Contains(errOut, tt.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d mentioning %q", tt.args, code, errOut, exitUsage, tt.want)
		}
	}
	code, out, _ := cliRun(t, "bench", "e2e", "--help")
	if code != exitOK || !strings.Contains(out, "raw JetStream hop") || !strings.Contains(out, "--nats-url") {
		t.Errorf("bench e2e --help: exit %d\n%s", code, out)
	}
}

// TestBenchE2EOrgsAndOpen: --orgs grows the directory, every organisation
// reading through one shared consumer, --open leaves referrals open
// before the latency run, and the line has the server's message counts
// and the process's memory.
func TestBenchE2EOrgsAndOpen(t *testing.T) {
	t.Parallel()
	heap := filepath.Join(t.TempDir(), "heap.pprof")
	res := benchE2ELine(t, "--referrals", "30", "--burst", "0", "--rate", "300", "--raw-messages", "200", "--services", "40",
		"--orgs", "60", "--open", "10", "--memprofile", heap, "--memory-limit", "4GiB", "--settle", "1ms")
	if fi, err := os.Stat(heap); err != nil || fi.Size() == 0 {
		t.Errorf("heap profile: %v", err)
	}
	checkSane(t, res, 30, 0)
	if res.Organisations != 60 || res.Open != 10 {
		t.Errorf("%d organisations, %d open; want 60 and 10", res.Organisations, res.Open)
	}
	if res.MsgsInPerReferral < 1 || res.MsgsOutPerReferral < 1 {
		t.Errorf("messages per referral in %g, out %g: the server's counts are missing", res.MsgsInPerReferral, res.MsgsOutPerReferral)
	}
	if runtime.GOOS == "linux" && (res.RSSBeforeMiB <= 0 || res.RSSOpenMiB <= 0 || res.RSSAfterMiB <= 0) {
		t.Errorf("RSS before %g, open %g, after %g MiB", res.RSSBeforeMiB, res.RSSOpenMiB, res.RSSAfterMiB)
	}
	if runtime.GOOS == "linux" && res.RSSSettledMiB <= 0 {
		t.Errorf("no RSS after --settle")
	}
	if res.HeapLiveMiB <= 0 || res.HeapLiveSettledMiB <= 0 || res.MemoryLimitMiB != 4096 {
		t.Errorf("live heap %g (settled %g) MiB under a limit of %g MiB; want some under 4096", res.HeapLiveMiB, res.HeapLiveSettledMiB, res.MemoryLimitMiB)
	}
}

// TestBenchE2ECluster runs the bench on the 3-node cluster of
// deploy/nats/cluster.conf with R3 streams, as deploy/README.md shows,
// with the seed file of the cluster's invictus user, and beside it on one
// server of deploy/nats/single.conf with R1 (same keys, same machine):
// the line reports the replicas the server gave.
func TestBenchE2ECluster(t *testing.T) {
	c := startCluster(t)
	creds := c.keys.Path(natsjs.UserAdmin)
	args := []string{"--referrals", "40", "--burst", "40", "--rate", "200", "--raw-messages", "300", "--services", "30", "--creds", creds}
	r3 := benchE2ELine(t, append([]string{"--nats-url", c.url, "--nats-replicas", "3"}, args...)...)
	checkSane(t, r3, 40, 40)
	if r3.Replicas != 3 || r3.ReplicasCurrent != 3 {
		t.Errorf("R3 run: REFERRALS had %d replicas, %d listed; want 3", r3.Replicas, r3.ReplicasCurrent)
	}
	single := startSingle(t)
	r1 := benchE2ELine(t, append([]string{"--nats-url", single.ClientURL(), "--nats-replicas", "1"}, args...)...)
	checkSane(t, r1, 40, 40)
	if r1.Replicas != 1 {
		t.Errorf("R1 run: REFERRALS had %d replicas; want 1", r1.Replicas)
	}
	t.Logf("routing hop R3 %.0f/s (raw %.0f/s, ratio %.2f), R1 %.0f/s (raw %.0f/s, ratio %.2f); R3/R1 %.2f",
		r3.RoutingHopPerS, r3.RawHopPerS, r3.HopRatio, r1.RoutingHopPerS, r1.RawHopPerS, r1.HopRatio, r3.RoutingHopPerS/r1.RoutingHopPerS)
	code, _, errOut := cliRun(t, "bench", "e2e", "--nats-replicas", "3")
	if code != exitUsage || !strings.Contains(errOut, "--nats-replicas 3 needs --nats-url") {
		t.Errorf("--nats-replicas 3 without a cluster: exit %d, %q", code, errOut)
	}
}
