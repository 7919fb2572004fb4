package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"os"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/invictus-network/invictus/adapters/natsjs"
	"github.com/invictus-network/invictus/directory"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/internal/clip"
	"github.com/invictus-network/invictus/internal/wire"
	"github.com/invictus-network/invictus/routing"
)

// Defaults and limits of [E2EConfig].
const (
	// ReferralsDefault is how many referrals the latency run drives.
	ReferralsDefault = 2000
	// RateDefault is the offered load of the latency run, referrals
	// per second.
	RateDefault = 1000
	// MsgSizeDefault is the data size of the raw hop's messages, about
	// that of a referral.requested command.
	MsgSizeDefault = 1024
	// RawMessagesDefault is how many messages the raw hop moves.
	RawMessagesDefault = 10000
	// BurstDefault is how many referral.requested commands the
	// saturation run publishes at once.
	BurstDefault = 2000
	// ServicesDefault is the size of the generated directory: about
	// 17 organisations, each with its own durable DELIVERY consumer. Every
	// consumer that acknowledges something has its state written to a file
	// up to ten times a second, so the server's CPU per referral grows
	// with the number of organisations receiving them.
	ServicesDefault = 40
	// WaitDefault bounds each run once its load has been offered.
	WaitDefault = 2 * time.Minute
	// benchRawStreamIn and benchRawStreamOut are the raw hop's streams,
	// deleted afterwards.
	benchRawStreamIn  = "BENCH_RAW_IN"
	benchRawStreamOut = "BENCH_RAW_OUT"
)

// E2EConfig configures [E2E]. The zero value of every field means
// its default.
type E2EConfig struct {
	// Referrals driven through request, offer and accept at Rate. Default
	// [ReferralsDefault].
	Referrals int
	// Rate is the offered load, referrals per second. Default
	// [RateDefault].
	Rate float64
	// MsgSize is the data size of the raw hop's messages, in bytes.
	// Default [MsgSizeDefault].
	MsgSize int
	// RawMessages is how many messages the raw hop moves. Default
	// [RawMessagesDefault].
	RawMessages int
	// Burst is how many referral.requested commands the saturation run
	// publishes as fast as JetStream takes them, far faster than the
	// router handles them; negative skips the run. Default
	// [BurstDefault].
	Burst int
	// Services is the size of the generated directory
	// (directory.Generate). Default [ServicesDefault].
	Services int
	// Orgs, when set, grows the generated directory to this many
	// organisations, copying generated organisations with their services
	// under new ids, and has every organisation read through one shared
	// consumer on DELIVERY (as the HTTP and e-mail adapters read from the
	// stream) instead of a durable consumer each. 0 keeps the generated
	// organisations, each with its own durable consumer.
	Orgs int
	// Open is how many referrals are left open (offered, never answered)
	// before the latency run, so that it runs beside them.
	Open int
	// Seed of the directory, the profiles and the referrers. Default 1.
	Seed int64
	// URL of an external NATS server with JetStream; empty runs an
	// embedded server on a temporary store. The external server must not
	// hold the INVICTUS streams or the directory bucket: the bench creates
	// them and deletes them at the end.
	URL string
	// NATSOptions are added to the connections to an external server
	// (credentials, TLS).
	NATSOptions []nats.Option
	// Replicas of the streams the bench creates, the INVICTUS ones and the
	// raw hop's: 3 on a cluster measures R3. More than 1 needs URL.
	// Default 1.
	Replicas int
	// Router, Bus and Service configure the routing service under test.
	Router  natsjs.RouterConfig
	Bus     natsjs.BusConfig
	Service routing.ServiceConfig
	// Wait bounds each run once its load has been offered. Default
	// [WaitDefault].
	Wait time.Duration
	// Settle, when set, is how long the bench waits after the runs, the
	// open referrals still open, before it measures the memory again
	// (E2EResult.RSSSettledMiB): past the 2-minute duplicate window and
	// with no backlog, what a node holding them at rest keeps.
	Settle time.Duration
	// CPUProfile, when set, receives a CPU profile of the routing runs
	// (saturation and latency, not the raw hop).
	CPUProfile io.Writer
	// HeapProfile, when set, receives a heap profile taken after the
	// runs, while the open referrals are still open: what holds memory.
	HeapProfile io.Writer
	// MemoryLimit is the Go runtime's soft memory limit the caller set for
	// the run (runtime/debug.SetMemoryLimit), reported as it is; 0 or
	// math.MaxInt64 for none.
	MemoryLimit int64
	// Logger receives progress. Default discards.
	Logger *slog.Logger
}

// WithDefaults returns a copy of c with every unset field given its default.
func (c E2EConfig) WithDefaults() E2EConfig {
	if c.Referrals == 0 {
		c.Referrals = ReferralsDefault
	}
	if c.Rate == 0 {
		c.Rate = RateDefault
	}
	if c.MsgSize == 0 {
		c.MsgSize = MsgSizeDefault
	}
	if c.RawMessages == 0 {
		c.RawMessages = RawMessagesDefault
	}
	if c.Burst == 0 {
		c.Burst = BurstDefault
	}
	if c.Services == 0 {
		c.Services = ServicesDefault
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.Wait == 0 {
		c.Wait = WaitDefault
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate reports the first invalid field of c, naming it. Call it on the
// result of [E2EConfig.WithDefaults].
func (c E2EConfig) Validate() error {
	switch {
	case c.Referrals < 1 || c.Referrals > 1_000_000:
		return fmt.Errorf("natsjs: E2EConfig.Referrals %d must be from 1 to 1000000", c.Referrals)
	case c.Rate <= 0 || c.Rate > 1_000_000:
		return fmt.Errorf("natsjs: E2EConfig.Rate %g must be above 0 and at most 1000000", c.Rate)
	case c.MsgSize < 1 || c.MsgSize > events.MaxMessageSize:
		return fmt.Errorf("natsjs: E2EConfig.MsgSize %d must be from 1 to %d", c.MsgSize, events.MaxMessageSize)
	case c.RawMessages < 1 || c.RawMessages > 10_000_000:
		return fmt.Errorf("natsjs: E2EConfig.RawMessages %d must be from 1 to 10000000", c.RawMessages)
	case c.Burst > 1_000_000:
		return fmt.Errorf("natsjs: E2EConfig.Burst %d must be at most 1000000", c.Burst)
	case c.Services < 10 || c.Services > 1_000_000:
		return fmt.Errorf("natsjs: E2EConfig.Services %d must be from 10 to 1000000", c.Services)
	case c.Wait <= 0:
		return fmt.Errorf("natsjs: E2EConfig.Wait %s must be positive", c.Wait)
	case c.Settle < 0:
		return fmt.Errorf("natsjs: E2EConfig.Settle %s must not be negative", c.Settle)
	case c.Orgs < 0 || c.Orgs > 100_000:
		return fmt.Errorf("natsjs: E2EConfig.Orgs %d must be from 0 to 100000", c.Orgs)
	case c.Open < 0 || c.Open > 1_000_000:
		return fmt.Errorf("natsjs: E2EConfig.Open %d must be from 0 to 1000000", c.Open)
	case c.Replicas < 0 || c.Replicas > natsjs.ReplicasMax:
		return fmt.Errorf("natsjs: E2EConfig.Replicas %d must be from 1 to %d", c.Replicas, natsjs.ReplicasMax)
	case c.Replicas > 1 && c.URL == "":
		return fmt.Errorf("natsjs: E2EConfig.Replicas %d needs a cluster (URL); the embedded server is one node", c.Replicas)
	}
	return nil
}

// E2EResult is what [E2E] measured. Latencies are in milliseconds,
// rates per second. Its JSON form is the one line `invictus bench e2e`
// prints.
type E2EResult struct {
	// GoVersion, GOMAXPROCS and CPUs describe the process that measured.
	GoVersion  string `json:"go_version"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	CPUs       int    `json:"cpus"`
	// Server is "embedded" or the external server's host.
	Server string `json:"server"`
	// Replicas of the streams measured, as the server reports REFERRALS's
	// configuration; ReplicasCurrent counts its leader and the replicas
	// the server lists (0 for a server without clustering).
	Replicas        int `json:"replicas"`
	ReplicasCurrent int `json:"replicas_listed,omitempty"`
	// LoadAverageStart and LoadAverageEnd are the system's 1, 5 and 15
	// minute load averages when the bench started and ended (Linux): the
	// machine may be shared.
	LoadAverageStart string `json:"load_average_start,omitempty"`
	LoadAverageEnd   string `json:"load_average_end,omitempty"`
	// Services and Organisations are the sizes of the generated directory.
	Services      int `json:"services"`
	Organisations int `json:"organisations"`

	// MsgSize is the raw hop's data size; CommandSize the mean size of a
	// referral.requested command (data and headers).
	MsgSize     int `json:"msg_size"`
	CommandSize int `json:"command_size"`
	// RawHopPerS is the raw JetStream hop: a consumer pulls a message,
	// publishes it to another stream awaiting the acknowledgement, and
	// acknowledges it, one message after the other.
	RawHopPerS float64 `json:"raw_hop_per_s"`
	// RawHopConcurrentPerS is the same hop with Workers messages in hand
	// at once, as the router's workers take commands: the like-for-like
	// baseline of the routing hop (HopRatioLikeForLike), and
	// RawHopCPUMsPerMsg the process's CPU per message of it.
	Workers              int     `json:"workers"`
	RawHopConcurrentPerS float64 `json:"raw_hop_concurrent_per_s"`
	RawHopCPUMsPerMsg    float64 `json:"raw_hop_cpu_ms_per_msg,omitempty"`
	HopRatioLikeForLike  float64 `json:"hop_ratio_like_for_like"`

	// Burst commands went through the saturated router at RoutingHopPerS
	// (referral.requested commands per second, from the first publish to
	// the last offer received); HopRatio is RoutingHopPerS / RawHopPerS.
	Burst          int     `json:"burst"`
	RoutingHopPerS float64 `json:"routing_hop_per_s"`
	HopRatio       float64 `json:"hop_ratio"`

	// Referrals were offered at OfferedRate; ReferralsPerS is the rate
	// sustained from the first submission to the last acceptance.
	Referrals     int     `json:"referrals"`
	OfferedRate   float64 `json:"offered_rate_per_s"`
	ReferralsPerS float64 `json:"referrals_per_s"`
	// Offers counted in the latency run; P50, P95, P99 and Max are the
	// latencies from the submission of a referral to each of its offers
	// received by the offered organisation's consumer.
	Offers int     `json:"offers"`
	P50Ms  float64 `json:"p50_ms"`
	P95Ms  float64 `json:"p95_ms"`
	P99Ms  float64 `json:"p99_ms"`
	MaxMs  float64 `json:"max_ms"`
	// CPUMsPerReferral is the CPU time the whole process (server, router
	// and simulated organisations) spent per referral of the latency run,
	// where Linux tells it: a figure that other load on the machine does
	// not inflate the way it does latencies.
	CPUMsPerReferral float64 `json:"cpu_ms_per_referral,omitempty"`
	// MsgsInPerReferral and MsgsOutPerReferral are the messages the
	// embedded server received and sent (its own statistics, varz) per
	// referral of the latency run: request, plan, offer and accept.
	MsgsInPerReferral  float64 `json:"msgs_in_per_referral,omitempty"`
	MsgsOutPerReferral float64 `json:"msgs_out_per_referral,omitempty"`
	// Open referrals were left offered before the latency run.
	Open int `json:"open"`
	// RSSBeforeMiB and RSSAfterMiB are the process's resident memory
	// before the latency run (and the open referrals) and after it, where
	// Linux tells it.
	RSSBeforeMiB float64 `json:"rss_before_mib,omitempty"`
	RSSAfterMiB  float64 `json:"rss_after_mib,omitempty"`
	// RSSOpenMiB is the resident memory once the open referrals are
	// offered, before the latency run.
	RSSOpenMiB float64 `json:"rss_open_mib,omitempty"`
	// HeapLiveMiB is the live heap after the runs (after a collection),
	// the open referrals still open: the part of the resident memory
	// that is not garbage yet to be collected or the runtime's own.
	HeapLiveMiB float64 `json:"heap_live_mib"`
	// MemoryLimitMiB is the Go runtime's soft memory limit during the
	// runs (GOMEMLIMIT or --memory-limit); 0 when there is none.
	MemoryLimitMiB float64 `json:"memory_limit_mib,omitempty"`
	// RSSSettledMiB and HeapLiveSettledMiB are the resident memory and
	// the live heap E2EConfig.Settle after the runs.
	RSSSettledMiB      float64 `json:"rss_settled_mib,omitempty"`
	HeapLiveSettledMiB float64 `json:"heap_live_settled_mib,omitempty"`

	// Errors counts rejections, failed publishes and referrals that did
	// not finish in time; FirstError describes the first.
	Errors     int    `json:"errors"`
	FirstError string `json:"first_error,omitempty"`
}

// E2E measures the routing service end to end on one server: the raw
// JetStream hop, then, with a generated directory in the directory bucket,
// one router and simulated organisations (one durable DELIVERY consumer
// each; an offered organisation accepts at once), the router's rate on a
// backlog of referral.requested commands, and the latency from the
// submission of a referral to its offers at the offered load. It returns
// an error when the bench cannot run; what goes wrong inside a run is
// counted in E2EResult.Errors.
func E2E(ctx context.Context, cfg E2EConfig) (E2EResult, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return E2EResult{}, err
	}
	res := E2EResult{
		GoVersion: runtime.Version(), GOMAXPROCS: runtime.GOMAXPROCS(0), CPUs: runtime.NumCPU(),
		LoadAverageStart: loadAverage(), MsgSize: cfg.MsgSize, Services: cfg.Services,
		Referrals: cfg.Referrals, OfferedRate: cfg.Rate, Burst: max(cfg.Burst, 0), Open: cfg.Open,
	}
	env, err := benchConnect(ctx, cfg)
	if err != nil {
		return res, err
	}
	res.Server = env.server
	defer env.close()

	cfg.Logger.InfoContext(ctx, "bench: raw hop", slog.Int("messages", cfg.RawMessages), slog.Int("size", cfg.MsgSize))
	if res.RawHopPerS, _, err = rawHop(ctx, env, cfg, 1); err != nil {
		return res, err
	}
	res.Workers = cfg.Router.Workers
	if res.Workers == 0 {
		res.Workers = natsjs.WorkersDefault
	}
	cfg.Logger.InfoContext(ctx, "bench: raw hop, concurrent", slog.Int("workers", res.Workers))
	if res.RawHopConcurrentPerS, res.RawHopCPUMsPerMsg, err = rawHop(ctx, env, cfg, res.Workers); err != nil {
		return res, err
	}
	b, err := newBench(ctx, env, cfg)
	if err != nil {
		return res, err
	}
	defer b.stop()
	res.Organisations = len(b.orgs)
	// The replicas the server gave REFERRALS, not the ones asked for.
	if s, err := env.admin.Stream(ctx, natsjs.StreamReferrals); err == nil {
		res.Replicas = s.CachedInfo().Config.Replicas
		if ci := s.CachedInfo().Cluster; ci != nil {
			res.ReplicasCurrent = 1 + len(ci.Replicas)
		}
	}
	if cfg.CPUProfile != nil {
		if err := pprof.StartCPUProfile(cfg.CPUProfile); err != nil {
			return res, fmt.Errorf("natsjs: bench: cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	stop := b.startRouter(ctx)
	defer stop()
	res.RSSBeforeMiB = processRSSMiB()
	if err := b.openRun(ctx); err != nil {
		return res, err
	}
	res.RSSOpenMiB = processRSSMiB()
	if err := b.latencyRun(ctx, &res); err != nil {
		return res, err
	}
	if cfg.Burst > 0 {
		if err := b.burstRun(ctx, &res); err != nil {
			return res, err
		}
	}
	b.mu.Lock()
	res.Errors, res.FirstError = b.errs, b.firstErr
	b.mu.Unlock()
	res.RSSAfterMiB = processRSSMiB()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	res.HeapLiveMiB = float64(ms.HeapAlloc) / (1 << 20)
	if cfg.MemoryLimit > 0 && cfg.MemoryLimit != math.MaxInt64 {
		res.MemoryLimitMiB = float64(cfg.MemoryLimit) / (1 << 20)
	}
	if cfg.Settle > 0 {
		cfg.Logger.InfoContext(ctx, "bench: settling", slog.Duration("for", cfg.Settle))
		select {
		case <-time.After(cfg.Settle):
		case <-ctx.Done():
			return res, ctx.Err()
		}
		res.RSSSettledMiB = processRSSMiB()
		runtime.GC()
		runtime.ReadMemStats(&ms)
		res.HeapLiveSettledMiB = float64(ms.HeapAlloc) / (1 << 20)
	}
	if cfg.HeapProfile != nil {
		if err := pprof.Lookup("heap").WriteTo(cfg.HeapProfile, 0); err != nil {
			return res, fmt.Errorf("natsjs: bench: heap profile: %w", err)
		}
	}
	res.LoadAverageEnd = loadAverage()
	return res, nil
}

// loadAverage returns the 1, 5 and 15 minute load averages, where Linux
// tells them.
func loadAverage() string {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(raw))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// processCPU returns the CPU time (user and system) the process has used,
// read from /proc/self/stat, or 0 where there is none.
func processCPU() time.Duration {
	raw, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0
	}
	// The fields after the command name: state is the 3rd field of the
	// line, utime the 14th and stime the 15th, in clock ticks (100 a
	// second on Linux).
	_, rest, ok := strings.Cut(string(raw), ") ")
	f := strings.Fields(rest)
	if !ok || len(f) < 13 {
		return 0
	}
	utime, err1 := strconv.ParseUint(f[11], 10, 64)
	stime, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// heapLiveMiB returns the live heap as the last collection marked it, in
// MiB.
func heapLiveMiB() float64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return float64(s[0].Value.Uint64()) / (1 << 20)
}

// processRSSMiB returns the process's resident memory in MiB, read from
// /proc/self/status, or 0 where there is none.
func processRSSMiB() float64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(raw)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

// serverMsgs returns the messages the embedded server has received and
// sent, or zeros for an external server.
func (e *benchEnv) serverMsgs() (in, out int64) {
	if e.srv == nil {
		return 0, 0
	}
	return e.srv.Msgs()
}

// benchEnv is the server the bench runs on and its connections.
type benchEnv struct {
	server   string
	srv      *natsjs.Server // nil for an external server
	storeDir string         // removed at close when the bench created it
	conns    []*nats.Conn
	admin    jetstream.JetStream
	created  []string // streams to delete at close (external server)
	bucket   bool     // delete the directory bucket at close
}

// benchConnect starts the embedded server, or checks that the external
// one holds no INVICTUS streams.
func benchConnect(ctx context.Context, cfg E2EConfig) (*benchEnv, error) {
	env := &benchEnv{server: "embedded"}
	if cfg.URL == "" {
		dir, err := os.MkdirTemp("", "invictus-bench-")
		if err != nil {
			return nil, fmt.Errorf("natsjs: bench: %w", err)
		}
		env.storeDir = dir
		if env.srv, err = natsjs.StartServer(ctx, natsjs.ServerConfig{StoreDir: dir, DontListen: true, ServerName: "invictus-bench"}, nil); err != nil {
			_ = os.RemoveAll(dir)
			return nil, err
		}
	} else {
		env.server = serverHost(cfg.URL)
	}
	nc, err := env.connect(ctx, cfg, "bench-admin")
	if err != nil {
		env.close()
		return nil, err
	}
	if env.admin, err = jetstream.New(nc, jetstream.WithDefaultTimeout(10*time.Second)); err != nil {
		env.close()
		return nil, fmt.Errorf("natsjs: bench: %w", err)
	}
	if env.srv == nil {
		names := []string{natsjs.StreamInbound, natsjs.StreamReferrals, natsjs.StreamDelivery, natsjs.StreamTimers, natsjs.StreamDLQ, "KV_" + natsjs.BucketDirectory, benchRawStreamIn, benchRawStreamOut}
		for _, name := range names {
			_, err := env.admin.Stream(ctx, name)
			switch {
			case err == nil:
				env.close()
				return nil, fmt.Errorf("natsjs: bench: the server at %s already has stream %s: the bench needs a server without the INVICTUS streams", env.server, name)
			case !errors.Is(err, jetstream.ErrStreamNotFound):
				env.close()
				return nil, fmt.Errorf("natsjs: bench: look up stream %s: %w", name, err)
			}
		}
		env.created = names[:5]
		env.bucket = true
	}
	return env, nil
}

// serverHost returns the host:port of a NATS URL list, without
// credentials.
func serverHost(url string) string {
	first, _, _ := strings.Cut(url, ",")
	first = strings.TrimPrefix(strings.TrimPrefix(first, "nats://"), "tls://")
	if _, host, ok := strings.Cut(first, "@"); ok {
		return host
	}
	return first
}

// connect opens one more connection: in process, or to the URL.
func (e *benchEnv) connect(ctx context.Context, cfg E2EConfig, name string) (*nats.Conn, error) {
	var nc *nats.Conn
	var err error
	if e.srv != nil {
		nc, err = e.srv.Connect(ctx, nats.Name(name), nats.MaxReconnects(0))
	} else {
		nc, err = nats.Connect(cfg.URL, append([]nats.Option{nats.Name(name), nats.Timeout(10 * time.Second)}, cfg.NATSOptions...)...)
	}
	if err != nil {
		return nil, fmt.Errorf("natsjs: bench: connect: %w", err)
	}
	e.conns = append(e.conns, nc)
	return nc, nil
}

// close deletes what the bench created on an external server, closes the
// connections and stops the embedded server.
func (e *benchEnv) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if e.admin != nil {
		for _, name := range e.created {
			_ = e.admin.DeleteStream(ctx, name)
		}
		if e.bucket {
			_ = e.admin.DeleteKeyValue(ctx, natsjs.BucketDirectory)
		}
	}
	for i := len(e.conns) - 1; i >= 0; i-- {
		e.conns[i].Close()
	}
	if e.srv != nil {
		_ = e.srv.Shutdown(ctx)
	}
	if e.storeDir != "" {
		_ = os.RemoveAll(e.storeDir)
	}
}

// rawHop measures the raw JetStream hop: RawMessages messages of MsgSize
// bytes are stored in one stream, then a pull consumer (the router's pull
// settings) takes each, publishes it to a second stream awaiting the
// acknowledgement, and acknowledges it, workers messages at a time (1:
// one after the other; the router's workers: like for like). It returns
// messages per second and the process's CPU per message, in ms.
func rawHop(ctx context.Context, env *benchEnv, cfg E2EConfig, workers int) (perS, cpuMs float64, err error) {
	nc, err := env.connect(ctx, cfg, "bench-raw")
	if err != nil {
		return 0, 0, err
	}
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(10*time.Second), jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		return 0, 0, fmt.Errorf("natsjs: bench: %w", err)
	}
	for _, s := range []struct{ name, subject string }{{benchRawStreamIn, "bench.raw.in"}, {benchRawStreamOut, "bench.raw.out"}} {
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: s.name, Subjects: []string{s.subject}, Storage: jetstream.FileStorage,
			Replicas: max(cfg.Replicas, 1)}); err != nil {
			return 0, 0, fmt.Errorf("natsjs: bench: create stream %s: %w", s.name, err)
		}
		defer func() {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			_ = js.DeleteStream(dctx, s.name)
		}()
	}
	data := make([]byte, cfg.MsgSize)
	_, _ = rand.Read(data)
	for i := range cfg.RawMessages {
		if _, err := js.PublishAsync("bench.raw.in", data); err != nil {
			return 0, 0, fmt.Errorf("natsjs: bench: raw publish: %w", err)
		}
		if i%2048 == 2047 {
			if err := waitAsync(ctx, js); err != nil {
				return 0, 0, err
			}
		}
	}
	if err := waitAsync(ctx, js); err != nil {
		return 0, 0, err
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, benchRawStreamIn, jetstream.ConsumerConfig{
		Durable: "bench-raw-" + strconv.Itoa(workers), AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: natsjs.MaxAckPendingDefault,
	})
	if err != nil {
		return 0, 0, fmt.Errorf("natsjs: bench: raw consumer: %w", err)
	}
	// workers take the messages as the router's workers do: each
	// publishes awaiting the acknowledgement, then acknowledges.
	work := make(chan jetstream.Msg, workers)
	done := make(chan struct{})
	var once sync.Once
	var mu sync.Mutex
	var failed error
	var n atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for m := range work {
				pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				_, err := js.PublishMsg(pctx, &nats.Msg{Subject: "bench.raw.out", Data: m.Data()})
				cancel()
				if err != nil {
					mu.Lock()
					failed = err
					mu.Unlock()
					once.Do(func() { close(done) })
					continue
				}
				_ = m.Ack()
				if n.Add(1) == int64(cfg.RawMessages) {
					once.Do(func() { close(done) })
				}
			}
		})
	}
	cpu0 := processCPU()
	start := time.Now()
	cc, err := cons.Consume(func(m jetstream.Msg) {
		select {
		case work <- m:
		case <-done:
		}
	}, jetstream.PullMaxMessages(min(natsjs.MaxAckPendingDefault, 512)))
	if err != nil {
		close(work)
		wg.Wait()
		return 0, 0, fmt.Errorf("natsjs: bench: raw consume: %w", err)
	}
	defer func() { cc.Stop(); <-cc.Closed(); close(work); wg.Wait() }()
	select {
	case <-done:
	case <-time.After(cfg.Wait):
		return 0, 0, fmt.Errorf("natsjs: bench: the raw hop did not finish in %s", cfg.Wait)
	case <-ctx.Done():
		return 0, 0, ctx.Err()
	}
	elapsed := time.Since(start)
	cpu := processCPU() - cpu0
	mu.Lock()
	defer mu.Unlock()
	if failed != nil {
		return 0, 0, fmt.Errorf("natsjs: bench: raw hop publish: %w", failed)
	}
	return float64(cfg.RawMessages) / elapsed.Seconds(), float64(cpu.Microseconds()) / 1000 / float64(cfg.RawMessages), nil
}

// waitAsync waits for js's pending asynchronous publishes.
func waitAsync(ctx context.Context, js jetstream.JetStream) error {
	select {
	case <-js.PublishAsyncComplete():
		return nil
	case <-time.After(time.Minute):
		return errors.New("natsjs: bench: asynchronous publishes not acknowledged in a minute")
	case <-ctx.Done():
		return ctx.Err()
	}
}

// bench is the routing side of the bench: the router, the simulated
// organisations and what they saw.
type bench struct {
	cfg    E2EConfig
	env    *benchEnv
	view   *directory.View
	orgs   []string
	byCC   map[string][]string // organisations by country
	router *natsjs.Router
	submit jetstream.JetStream // the referrers' publisher
	answer jetstream.JetStream // the offered organisations' publisher

	runCtx  context.Context // the followers' and consumers' lifetime
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	consume []jetstream.ConsumeContext

	mu       sync.Mutex
	refs     map[string]*benchRef
	lat      []time.Duration
	errs     int
	firstErr string
}

// benchRef is one referral of a run.
type benchRef struct {
	id       string
	referrer string
	expected int  // placements the plan makes
	accept   bool // the offered organisations accept
	timed    bool // the offers' latencies count
	sent     time.Time
	offered  map[string]bool // placements offered, as the offered organisations saw
	accepted map[string]bool // placements accepted, as the referrer saw
	run      *benchRun
	done     bool
}

// benchRun counts the referrals of one run still unfinished.
type benchRun struct {
	left int
	done chan struct{}
	last time.Time
}

// newBench loads a generated directory into the bucket, creates every
// organisation's consumer and starts consuming, and builds the router.
func newBench(ctx context.Context, env *benchEnv, cfg E2EConfig) (_ *bench, err error) {
	b := &bench{cfg: cfg, env: env, view: directory.NewView(), byCC: map[string][]string{}, refs: map[string]*benchRef{}}
	b.runCtx, b.cancel = context.WithCancel(context.WithoutCancel(ctx))
	defer func() {
		if err != nil {
			b.stop()
		}
	}()
	// REFERRALS and DELIVERY get no byte bound: a million open referrals
	// outgrow the defaults, and what is measured here is memory, not disk.
	unbound := natsjs.StreamLimits{MaxBytes: natsjs.Unlimited}
	if err := natsjs.EnsureStreams(ctx, env.admin, natsjs.StreamsConfig{Replicas: cfg.Replicas, Referrals: unbound, Delivery: unbound}); err != nil {
		return nil, err
	}
	d := directory.Generate(cfg.Services, cfg.Seed)
	if cfg.Orgs > 0 {
		if d, err = growDirectory(d, cfg.Orgs); err != nil {
			return nil, err
		}
	}
	store, err := natsjs.NewDirectoryStore(ctx, env.admin, natsjs.DirectoryStoreConfig{})
	if err != nil {
		return nil, err
	}
	cfg.Logger.InfoContext(ctx, "bench: loading the directory", slog.Int("services", len(d.Services)), slog.Int("organisations", len(d.Organisations)))
	imp, err := store.ImportDirectory(ctx, d, nil)
	if err != nil {
		return nil, err
	}
	follower := natsjs.NewDirectoryFollower(store.KeyValue(), b.view, cfg.Logger)
	b.wg.Go(func() { _ = follower.Run(b.runCtx) })
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := b.view.WaitRevision(wctx, imp.Revision); err != nil {
		return nil, fmt.Errorf("natsjs: bench: directory not followed: %w", err)
	}
	for _, o := range d.Organisations {
		b.orgs = append(b.orgs, o.ID)
		b.byCC[o.Country] = append(b.byCC[o.Country], o.ID)
	}
	if err := b.startOrganisations(ctx); err != nil {
		return nil, err
	}
	rnc, err := env.connect(ctx, cfg, "bench-routing")
	if err != nil {
		return nil, err
	}
	if cfg.Bus.Logger == nil {
		cfg.Bus.Logger = cfg.Logger
	}
	if cfg.Service.Logger == nil {
		cfg.Service.Logger = cfg.Logger
	}
	if cfg.Router.Logger == nil {
		cfg.Router.Logger = cfg.Logger
	}
	node, err := natsjs.NewNode(rnc, b.view, natsjs.NodeConfig{Bus: cfg.Bus, Service: cfg.Service, Router: cfg.Router})
	if err != nil {
		return nil, err
	}
	b.router = node.Router
	return b, nil
}

// startOrganisations creates the organisations' consumers and consumes
// them on one connection; the referrers publish on another.
func (b *bench) startOrganisations(ctx context.Context) error {
	onc, err := b.env.connect(ctx, b.cfg, "bench-organisations")
	if err != nil {
		return err
	}
	snc, err := b.env.connect(ctx, b.cfg, "bench-referrers")
	if err != nil {
		return err
	}
	pubErr := func(_ jetstream.JetStream, m *nats.Msg, err error) {
		b.fail(fmt.Sprintf("publish on %s: %v", m.Subject, err))
	}
	opts := []jetstream.JetStreamOpt{jetstream.WithDefaultTimeout(10 * time.Second), jetstream.WithPublishAsyncMaxPending(16384), jetstream.WithPublishAsyncErrHandler(pubErr)}
	if b.answer, err = jetstream.New(onc, opts...); err != nil {
		return fmt.Errorf("natsjs: bench: %w", err)
	}
	if b.submit, err = jetstream.New(snc, opts...); err != nil {
		return fmt.Errorf("natsjs: bench: %w", err)
	}
	if b.cfg.Orgs > 0 {
		return b.startSharedReader(ctx)
	}
	for _, org := range b.orgs {
		if err := natsjs.EnsureOrgConsumer(ctx, b.env.admin, org); err != nil {
			return err
		}
		cons, err := b.answer.Consumer(ctx, natsjs.StreamDelivery, natsjs.OrgConsumerName(org))
		if err != nil {
			return fmt.Errorf("natsjs: bench: consumer of %s: %w", org, err)
		}
		cc, err := cons.Consume(func(m jetstream.Msg) { b.onDelivery(org, m) })
		if err != nil {
			return fmt.Errorf("natsjs: bench: consume as %s: %w", org, err)
		}
		b.consume = append(b.consume, cc)
	}
	return nil
}

// benchSharedReader names the one consumer through which every
// organisation reads with BenchConfig.Orgs.
const benchSharedReader = "bench_organisations"

// startSharedReader has every organisation read through one consumer on
// out.>, handing each delivery to the organisation of its subject.
func (b *bench) startSharedReader(ctx context.Context) error {
	cons, err := b.env.admin.CreateOrUpdateConsumer(ctx, natsjs.StreamDelivery, jetstream.ConsumerConfig{
		Durable: benchSharedReader, FilterSubject: natsjs.SubjectsDelivery, AckPolicy: jetstream.AckExplicitPolicy,
		MaxAckPending: 16384, InactiveThreshold: time.Hour,
	})
	if err != nil {
		return fmt.Errorf("natsjs: bench: shared reader: %w", err)
	}
	cons, err = b.answer.Consumer(ctx, natsjs.StreamDelivery, cons.CachedInfo().Name)
	if err != nil {
		return fmt.Errorf("natsjs: bench: shared reader: %w", err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		// out.<cc>.<slug>.<rest>
		t := strings.SplitN(m.Subject(), ".", 4)
		if len(t) < 4 {
			_ = m.Ack()
			return
		}
		b.onDelivery(t[1]+"."+t[2], m)
	}, jetstream.PullMaxMessages(1024))
	if err != nil {
		return fmt.Errorf("natsjs: bench: shared reader: %w", err)
	}
	b.consume = append(b.consume, cc)
	return nil
}

// growDirectory returns d with copies of its organisations (and their
// services) under new ids until it has n organisations.
func growDirectory(d *directory.Directory, n int) (*directory.Directory, error) {
	byOrg := map[string][]directory.Service{}
	for _, s := range d.Services {
		byOrg[s.Organisation] = append(byOrg[s.Organisation], s)
	}
	base := slices.Clone(d.Organisations)
	for i := 0; len(d.Organisations) < n; i++ {
		o := base[i%len(base)]
		cc, slug, _ := strings.Cut(o.ID, ".")
		c := o
		c.ID = fmt.Sprintf("%s.x%d-%s", cc, i, slug)
		if len(c.ID) > 60 {
			c.ID = fmt.Sprintf("%s.x%d", cc, i)
		}
		c.Name = fmt.Sprintf("%s (copy %d)", o.Name, i)
		d.Organisations = append(d.Organisations, c)
		for _, s := range byOrg[o.ID] {
			s.ID = c.ID + strings.TrimPrefix(s.ID, o.ID)
			s.Organisation = c.ID
			d.Services = append(d.Services, s)
		}
	}
	d.Sort()
	if err := d.Validate(); err != nil {
		return nil, fmt.Errorf("natsjs: bench: grown directory: %w", err)
	}
	return d, nil
}

// openChunk is how many open referrals are prepared at once, and
// openAhead how many may be submitted and not yet offered: the bench
// holds neither a million encoded commands nor a backlog that INBOUND's
// byte bound would refuse.
const (
	openChunk = 4096
	openAhead = 16384
)

// openRun leaves Open referrals offered and unanswered, so that the
// latency run runs beside them. They are prepared and submitted a chunk
// at a time, with at most openAhead submitted and not yet offered.
func (b *bench) openRun(ctx context.Context) error {
	if b.cfg.Open == 0 {
		return nil
	}
	run := &benchRun{left: b.cfg.Open, done: make(chan struct{})}
	b.cfg.Logger.InfoContext(ctx, "bench: open referrals", slog.Int("referrals", b.cfg.Open))
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for sent, chunk := 0, int64(0); sent < b.cfg.Open; chunk++ {
		for {
			b.mu.Lock()
			ahead := sent - (b.cfg.Open - run.left)
			b.mu.Unlock()
			if ahead+openChunk <= openAhead {
				break
			}
			select {
			case <-tick.C:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		n := min(openChunk, b.cfg.Open-sent)
		b.mu.Lock()
		cmds, err := b.prepare(n, false, false, run, b.cfg.Seed+3+chunk*1_000_003)
		b.mu.Unlock()
		if err != nil {
			return err
		}
		for i, c := range cmds {
			if _, err := b.submit.PublishMsgAsync(c.msg); err != nil {
				b.fail("submit: " + err.Error())
			}
			if i%1024 == 1023 || i == len(cmds)-1 {
				select {
				case <-b.submit.PublishAsyncComplete():
				case <-ctx.Done():
					return ctx.Err()
				}
			}
		}
		sent += n
		if chunk%12 == 11 {
			b.mu.Lock()
			offered := b.cfg.Open - run.left
			b.mu.Unlock()
			b.cfg.Logger.InfoContext(ctx, "bench: open referrals", slog.Int("submitted", sent), slog.Int("offered", offered),
				slog.Float64("rss_mib", processRSSMiB()), slog.Float64("heap_live_mib", heapLiveMiB()))
		}
	}
	b.wait(ctx, run, "open referrals")
	return nil
}

// stop stops the organisations and the directory follower.
func (b *bench) stop() {
	for _, cc := range b.consume {
		cc.Stop()
	}
	for _, cc := range b.consume {
		select {
		case <-cc.Closed():
		case <-time.After(5 * time.Second):
		}
	}
	b.consume = nil
	b.cancel()
	b.wg.Wait()
}

// fail counts an error of a run.
func (b *bench) fail(what string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.errs++
	if b.firstErr == "" {
		b.firstErr = clip.Line(what, 300)
	}
}

// offerFields are what an organisation reads of an offer.
type offerFields struct {
	Placement    string `json:"placement"`
	Organisation string `json:"organisation"`
}

// readOfferFields reads the placement and organisation of an offer or
// an acceptance. The routing service writes them as plain top-level
// strings, so they are found without decoding the whole payload (the
// offer carries the needs profile); anything else is decoded.
func readOfferFields(data []byte) (offerFields, error) {
	field := func(name string) (string, bool) {
		key := `"` + name + `":"`
		i := bytes.Index(data, []byte(key))
		if i < 0 {
			return "", false
		}
		rest := data[i+len(key):]
		j := bytes.IndexByte(rest, '"')
		if j < 0 || bytes.IndexByte(rest[:j], '\\') >= 0 {
			return "", false
		}
		return string(rest[:j]), true
	}
	var f offerFields
	var ok bool
	if f.Placement, ok = field("placement"); ok && bytes.Count(data, []byte(`"placement":`)) == 1 {
		f.Organisation, _ = field("organisation")
		return f, nil
	}
	err := json.Unmarshal(data, &f)
	return f, err
}

// onDelivery is a simulated organisation's handler: an offer to it is
// timed and accepted at once; an acceptance seen by the referrer
// finishes the placement; a rejection is an error. Organisations read the
// headers and the few fields they need, not the whole event, so that the
// bench spends its CPU on the router.
func (b *bench) onDelivery(org string, m jetstream.Msg) {
	now := time.Now()
	defer func() { _ = m.Ack() }()
	typ := wire.HeaderValue(m.Headers(), "ce-type")
	_, id, err := events.ParseDeliverySubject(m.Subject())
	if err != nil {
		if typ == events.TypeCommandRejected {
			b.fail(fmt.Sprintf("%s got command.rejected: %s", org, clip.Line(string(m.Data()), 200)))
		}
		return
	}
	switch typ {
	case events.TypeReferralOffered:
		f, err := readOfferFields(m.Data())
		if err != nil {
			b.fail(fmt.Sprintf("offer of %s: %v", id, err))
			return
		}
		if f.Organisation != org {
			return // the referrer's copy
		}
		b.mu.Lock()
		r := b.refs[id]
		first := r != nil && !r.offered[f.Placement]
		if first {
			r.offered[f.Placement] = true
			if r.timed {
				b.lat = append(b.lat, now.Sub(r.sent))
			}
			if r.accept {
			} else if len(r.offered) == r.expected {
				b.finish(r, now)
			}
		}
		accept := first && r.accept
		b.mu.Unlock()
		if accept {
			b.send(b.answer, org, id, &events.Accepted{Placement: f.Placement})
		}
	case events.TypeReferralAccepted:
		f, err := readOfferFields(m.Data())
		if err != nil {
			b.fail(fmt.Sprintf("acceptance of %s: %v", id, err))
			return
		}
		b.mu.Lock()
		defer b.mu.Unlock()
		if r := b.refs[id]; r != nil && r.referrer == org && !r.accepted[f.Placement] {
			r.accepted[f.Placement] = true
			if len(r.accepted) == r.expected {
				b.finish(r, now)
			}
		}
	case events.TypeCommandRejected:
		b.fail(fmt.Sprintf("%s got command.rejected about %s: %s", org, id, clip.Line(string(m.Data()), 200)))
	}
}

// finish marks r done; b.mu is held.
func (b *bench) finish(r *benchRef, now time.Time) {
	if r.done {
		return
	}
	r.done = true
	r.run.last = now
	delete(b.refs, r.id) // what comes of it later is not counted
	if r.run.left--; r.run.left == 0 {
		close(r.run.done)
	}
}

// send publishes a command of org about referral id asynchronously.
func (b *bench) send(js jetstream.JetStream, org, id string, p events.Payload) {
	m, err := commandMsg(org, id, p)
	if err == nil {
		_, err = js.PublishMsgAsync(m)
	}
	if err != nil {
		b.fail(fmt.Sprintf("%s %s: %v", org, p.EventType(), err))
	}
}

// commandMsg encodes a command of org on its INBOUND subject, with its id
// as Nats-Msg-Id (wire.NewCommand).
func commandMsg(org, id string, p events.Payload) (*nats.Msg, error) {
	_, m, err := wire.NewCommand(org, id, p)
	if err != nil {
		return nil, err
	}
	return &nats.Msg{Subject: m.Subject, Header: nats.Header(m.Header), Data: m.Data}, nil
}

// prepared is a referral.requested command ready to publish.
type prepared struct {
	id  string
	msg *nats.Msg
}

// prepare registers n referrals of run and encodes their commands:
// sample profiles that the matcher plans with at least one placement
// (emergencies left out: their plans depend on the hour), each sent by an
// organisation of the victim's country.
func (b *bench) prepare(n int, accept, timed bool, run *benchRun, seed int64) ([]prepared, error) {
	m := routing.NewMatcher(routing.Config{})
	snap := b.view.Snapshot()
	rng := mrand.New(mrand.NewPCG(uint64(seed), 0x62656e6368))
	var out []prepared
	given := time.Now().Add(-time.Minute).UTC().Truncate(time.Second)
	for round := int64(0); len(out) < n; round++ {
		if round == 8 {
			return nil, fmt.Errorf("natsjs: bench: only %d of %d sample profiles have a plan in a directory of %d services", len(out), n, b.cfg.Services)
		}
		for _, p := range routing.SampleProfiles(2*n, seed*7919+round) {
			if len(out) == n {
				break
			}
			referrers := b.byCC[p.Location.Country]
			if p.Urgency == events.UrgencyEmergency || len(referrers) == 0 {
				continue
			}
			// The router never plans the referrer's own services.
			referrer := referrers[rng.IntN(len(referrers))]
			plan, err := m.Match(snap, p, routing.WithReferrer(referrer))
			if err != nil || len(plan.Groups) == 0 {
				continue
			}
			req := &events.Requested{Profile: p, Consent: events.Consent{Referral: true, ShareData: true, GivenAt: given, Method: "verbal", RecordedBy: "bench-b001"}}
			id := events.NewReferralID()
			msg, err := commandMsg(referrer, id, req)
			if err != nil {
				return nil, fmt.Errorf("natsjs: bench: encode a request: %w", err)
			}
			out = append(out, prepared{id: id, msg: msg})
			b.refs[id] = &benchRef{id: id, referrer: referrer, expected: len(plan.Groups), accept: accept, timed: timed, run: run,
				offered: map[string]bool{}, accepted: map[string]bool{}}
		}
	}
	return out, nil
}

// startRouter runs the router until the returned stop is called.
func (b *bench) startRouter(ctx context.Context) (stop func()) {
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() { done <- b.router.Run(rctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			b.fail("router: " + err.Error())
		}
	}
}

// benchWarmUp is how many referrals go through the router, untimed,
// before the latency run.
const benchWarmUp = 50

// latencyRun drives Referrals referrals at Rate through request, offer
// and accept, with the router running, after a few untimed ones.
func (b *bench) latencyRun(ctx context.Context, res *E2EResult) error {
	warm := &benchRun{left: benchWarmUp, done: make(chan struct{})}
	run := &benchRun{left: b.cfg.Referrals, done: make(chan struct{})}
	b.mu.Lock()
	warmCmds, err := b.prepare(benchWarmUp, true, false, warm, b.cfg.Seed+2)
	var cmds []prepared
	if err == nil {
		cmds, err = b.prepare(b.cfg.Referrals, true, true, run, b.cfg.Seed)
	}
	b.mu.Unlock()
	if err != nil {
		return err
	}
	size := 0
	for _, c := range cmds {
		size += len(c.msg.Data)
		for k, vs := range c.msg.Header {
			for _, v := range vs {
				size += len(k) + len(v) + 4
			}
		}
	}
	res.CommandSize = size / len(cmds)
	for _, c := range warmCmds {
		if _, err := b.submit.PublishMsgAsync(c.msg); err != nil {
			b.fail("submit: " + err.Error())
		}
	}
	b.wait(ctx, warm, "warm-up")
	b.cfg.Logger.InfoContext(ctx, "bench: latency run", slog.Int("referrals", len(cmds)), slog.Float64("rate", b.cfg.Rate))
	interval := time.Duration(float64(time.Second) / b.cfg.Rate)
	cpu0 := processCPU()
	in0, out0 := b.env.serverMsgs()
	start := time.Now()
	for i, c := range cmds {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		b.mu.Lock()
		b.refs[c.id].sent = time.Now()
		b.mu.Unlock()
		if _, err := b.submit.PublishMsgAsync(c.msg); err != nil {
			b.fail("submit: " + err.Error())
		}
		if i%256 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
	}
	b.wait(ctx, run, "latency run")
	if in1, out1 := b.env.serverMsgs(); in1 > 0 {
		res.MsgsInPerReferral = float64(in1-in0) / float64(b.cfg.Referrals)
		res.MsgsOutPerReferral = float64(out1-out0) / float64(b.cfg.Referrals)
	}
	if cpu0 > 0 {
		res.CPUMsPerReferral = float64((processCPU() - cpu0).Microseconds()) / 1000 / float64(b.cfg.Referrals)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !run.last.IsZero() {
		res.ReferralsPerS = float64(b.cfg.Referrals-run.left) / run.last.Sub(start).Seconds()
	}
	lat := b.lat
	res.Offers = len(lat)
	if len(lat) > 0 {
		slices.Sort(lat)
		q := func(p float64) float64 {
			i := max(int(float64(len(lat))*p+0.999999)-1, 0)
			return float64(lat[min(i, len(lat)-1)].Microseconds()) / 1000
		}
		res.P50Ms, res.P95Ms, res.P99Ms, res.MaxMs = q(0.50), q(0.95), q(0.99), float64(lat[len(lat)-1].Microseconds())/1000
	}
	return nil
}

// burstRun publishes Burst referral.requested commands as fast as
// JetStream takes them, far faster than the router handles them, and
// measures the rate at which the offers come out, from the first publish
// to the last offer; nobody accepts.
func (b *bench) burstRun(ctx context.Context, res *E2EResult) error {
	run := &benchRun{left: b.cfg.Burst, done: make(chan struct{})}
	b.mu.Lock()
	cmds, err := b.prepare(b.cfg.Burst, false, false, run, b.cfg.Seed+1)
	b.mu.Unlock()
	if err != nil {
		return err
	}
	b.cfg.Logger.InfoContext(ctx, "bench: saturation run", slog.Int("commands", len(cmds)))
	start := time.Now()
	for _, c := range cmds {
		if _, err := b.submit.PublishMsgAsync(c.msg); err != nil {
			b.fail("submit: " + err.Error())
		}
	}
	b.wait(ctx, run, "saturation run")
	b.mu.Lock()
	defer b.mu.Unlock()
	if !run.last.IsZero() {
		res.RoutingHopPerS = float64(b.cfg.Burst-run.left) / run.last.Sub(start).Seconds()
	}
	if res.RawHopPerS > 0 {
		res.HopRatio = res.RoutingHopPerS / res.RawHopPerS
	}
	if res.RawHopConcurrentPerS > 0 {
		res.HopRatioLikeForLike = res.RoutingHopPerS / res.RawHopConcurrentPerS
	}
	return nil
}

// wait waits until every referral of run is done, Wait passes or ctx
// ends; unfinished referrals are errors.
func (b *bench) wait(ctx context.Context, run *benchRun, what string) {
	select {
	case <-run.done:
		return
	case <-time.After(b.cfg.Wait):
	case <-ctx.Done():
	}
	b.mu.Lock()
	left := run.left
	b.mu.Unlock()
	for range left {
		b.fail(fmt.Sprintf("%s: %d referrals unfinished after %s", what, left, b.cfg.Wait))
	}
}
