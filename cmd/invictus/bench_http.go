package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// Defaults of `invictus bench http`.
const (
	benchHTTPRateDefault     = 2000.0
	benchHTTPDurationDefault = 10 * time.Second
	benchHTTPPathDefault     = "/v1/inbox?limit=10"
	// benchHTTPRequestTimeout bounds one request of the load.
	benchHTTPRequestTimeout = 10 * time.Second
	// benchHTTPSample is how often RSS and goroutines are sampled.
	benchHTTPSample = 200 * time.Millisecond
	// benchHTTPStartTimeout bounds the start of the node and the baseline.
	benchHTTPStartTimeout = 90 * time.Second
)

type benchHTTPOptions struct {
	rate      float64
	duration  time.Duration
	path      string
	nodeBin   string
	serveArgs []string
	rawServer bool
	addrFile  string
	// wait is how long the node may hold a request on purpose (bench
	// wait's ?wait=); a request gets that long on top of the usual bound.
	wait time.Duration
}

func newBenchHTTPCmd(out, errOut io.Writer) *cobra.Command {
	var o benchHTTPOptions
	cmd := &cobra.Command{
		Use:   "http",
		Short: "Drive the HTTP API at a fixed rate and report what admission control keeps bounded",
		Long: "Bench http starts a node (`serve --demo` on a temporary data directory, loopback\n" +
			"ports) and, as the raw baseline, a plain net/http handler, each in its own\n" +
			"process. It sends each --rate requests a second for --duration, open loop (a\n" +
			"request is sent on time whether or not the earlier ones were answered), GET\n" +
			"--path with the demo organisations' tokens in turn to the node, GET / to the\n" +
			"baseline. It prints, per target, the answers by status, the p50 and p99 of the\n" +
			"served (2xx) answers, and the peak resident memory and goroutines of the\n" +
			"target's process. It fails when a target cannot be started, never on a timing.",
		Example: "  invictus bench http\n" +
			"  invictus bench http --rate 5000 --duration 20s --path /v1/organizations\n" +
			"  invictus bench http --node-bin ./invictus-old   # the same load on another build",
		Args: cobra.NoArgs,
	}
	f := cmd.Flags()
	f.Float64Var(&o.rate, "rate", benchHTTPRateDefault, "requests per second sent to each target")
	f.DurationVar(&o.duration, "duration", benchHTTPDurationDefault, "how long the load is sent to each target")
	f.StringVar(&o.path, "path", benchHTTPPathDefault, "path (and query) the node is sent, with an organisation token")
	f.StringVar(&o.nodeBin, "node-bin", "", "invictus binary that runs the node (default: this one)")
	f.StringArrayVar(&o.serveArgs, "serve-arg", nil, "more arguments of the node's serve (repeatable)")
	f.BoolVar(&o.rawServer, "raw-server", false, "run the baseline handler (the bench runs itself so)")
	f.StringVar(&o.addrFile, "addr-file", "", "with --raw-server: write the address here")
	_ = f.MarkHidden("raw-server")
	_ = f.MarkHidden("addr-file")
	logs := addLogFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if o.rawServer {
			return runRawServer(cmd.Context(), o.addrFile)
		}
		switch {
		case o.rate <= 0 || o.rate > 100000:
			return usageError{fmt.Errorf("--rate %g: want more than 0 and at most 100000", o.rate)}
		case o.duration <= 0:
			return usageError{fmt.Errorf("--duration %s: must be positive", o.duration)}
		case !strings.HasPrefix(o.path, "/"):
			return usageError{fmt.Errorf("--path %q: must start with /", o.path)}
		}
		logger, err := logs.logger(errOut)
		if err != nil {
			return err
		}
		return runBenchHTTP(cmd.Context(), o, out, logger)
	}
	return cmd
}

// benchTarget is a process the load is sent to.
type benchTarget struct {
	name   string
	cmd    *exec.Cmd
	base   string   // http://host:port
	path   string   // request path
	tokens []string // bearer tokens, used in turn; none for the baseline
	orgs   []string // the organisation of each token
	// goroutines reads the process's goroutines over HTTP, with client.
	goroutines func(ctx context.Context, client *http.Client) (int, error)
	// newRequest, when set, makes the i-th request instead of a GET of
	// path with the tokens in turn.
	newRequest func(ctx context.Context, i int) (*http.Request, error)
	// classify, when set, names what a 2xx answer's body says; the names
	// are counted in ByStatus beside "2xx".
	classify func(body []byte) string
	exited   chan struct{}
	stderr   *syncWriter
}

// benchHTTPResult is one target's figures.
type benchHTTPResult struct {
	Target        string         `json:"target"`
	Sent          int            `json:"sent"`
	ByStatus      map[string]int `json:"by_status"`
	Errors        int            `json:"errors"`
	Shed          int            `json:"shed_503"`
	P50ms         float64        `json:"p50_ms_served"`
	P99ms         float64        `json:"p99_ms_served"`
	RSSBeforeMiB  float64        `json:"rss_before_mib"`
	RSSPeakMiB    float64        `json:"rss_peak_mib"`
	GoroutinesMax int            `json:"goroutines_peak"` // -1: no sample answered
	FirstError    string         `json:"first_error,omitempty"`
}

func runBenchHTTP(ctx context.Context, o benchHTTPOptions, out io.Writer, logger *slog.Logger) error {
	results, err := runBenchLoad(ctx, "http", o, logger, nil)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "target\tsent\t2xx\t429\t503\tother\terrors\tp50 ms\tp99 ms\tRSS before MiB\tRSS peak MiB\tgoroutines peak\t\n")
	for _, r := range results {
		other := r.Sent - r.Errors - r.ByStatus["2xx"] - r.ByStatus["429"] - r.ByStatus["503"]
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%.1f\t%.1f\t%.0f\t%.0f\t%d\t\n", r.Target, r.Sent, r.ByStatus["2xx"], r.ByStatus["429"], r.ByStatus["503"],
			other, r.Errors, r.P50ms, r.P99ms, r.RSSBeforeMiB, r.RSSPeakMiB, r.GoroutinesMax)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(out, "\n%g requests/s for %s each, open loop, on %d CPUs; the node serves GET %s.\n", o.rate, o.duration, runtime.NumCPU(), o.path)
	return json.NewEncoder(out).Encode(results)
}

// runBenchLoad is the harness of the HTTP benches (kind names the bench):
// it starts, in a temporary directory, the raw baseline (this binary's
// plain net/http handler) and the node (`serve --demo` of o.nodeBin, this
// binary when empty, with o.serveArgs, sent o.path), lets setup adapt the
// node's target, then sends each o.rate requests a second for o.duration,
// open loop, and returns their figures, the baseline's first.
func runBenchLoad(ctx context.Context, kind string, o benchHTTPOptions, logger *slog.Logger, setup func(node *benchTarget)) ([]benchHTTPResult, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	nodeBin := o.nodeBin
	if nodeBin == "" {
		nodeBin = self
	}
	dir, err := os.MkdirTemp("", "invictus-bench-"+kind+"-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)

	raw, err := startRawTarget(ctx, self, dir)
	if err != nil {
		return nil, err
	}
	defer raw.stop()
	node, err := startNodeTarget(ctx, nodeBin, dir, o, logger)
	if err != nil {
		return nil, err
	}
	defer node.stop()
	if setup != nil {
		setup(node)
	}

	var results []benchHTTPResult
	for _, t := range []*benchTarget{raw, node} {
		logger.Info("bench "+kind+": load", slog.String("target", t.name), slog.Float64("rate", o.rate), slog.Duration("duration", o.duration))
		r, err := drive(ctx, t, o.rate, o.duration, benchHTTPRequestTimeout+o.wait)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", t.name, err)
		}
		results = append(results, r)
	}
	return results, nil
}

// startRawTarget runs this binary's baseline handler.
func startRawTarget(ctx context.Context, self, dir string) (*benchTarget, error) {
	addrFile := filepath.Join(dir, "raw.json")
	t := &benchTarget{name: "net/http baseline", path: "/", exited: make(chan struct{}), stderr: &syncWriter{}}
	t.cmd = exec.CommandContext(ctx, self, "bench", "http", "--raw-server", "--addr-file", addrFile)
	var addrs map[string]string
	if err := t.start(ctx, addrFile, &addrs); err != nil {
		return nil, err
	}
	t.base = "http://" + addrs["http"]
	t.goroutines = func(ctx context.Context, client *http.Client) (int, error) {
		b, err := benchGet(ctx, client, t.base+"/goroutines")
		if err != nil {
			return 0, err
		}
		return strconv.Atoi(strings.TrimSpace(string(b)))
	}
	return t, nil
}

// startNodeTarget runs `serve --demo` on loopback and reads the demo
// tokens.
func startNodeTarget(ctx context.Context, bin, dir string, o benchHTTPOptions, logger *slog.Logger) (*benchTarget, error) {
	data := filepath.Join(dir, "node")
	addrFile := filepath.Join(dir, "node.json")
	args := append([]string{"serve", "--demo", "--data", data, "--listen", "127.0.0.1:0", "--nats-listen", "127.0.0.1:0",
		"--addr-file", addrFile, "--log-level", "error"}, o.serveArgs...)
	t := &benchTarget{name: "invictus node", path: o.path, exited: make(chan struct{}), stderr: &syncWriter{}}
	t.cmd = exec.CommandContext(ctx, bin, args...)
	var addrs map[string]string
	if err := t.start(ctx, addrFile, &addrs); err != nil {
		return nil, err
	}
	t.base = "http://" + addrs["http"]
	b, err := os.ReadFile(filepath.Join(data, demoDir, demoTokensFile))
	if err != nil {
		t.stop()
		return nil, fmt.Errorf("demo tokens: %w", err)
	}
	var tokens map[string]string
	if err := json.Unmarshal(b, &tokens); err != nil {
		t.stop()
		return nil, fmt.Errorf("demo tokens: %w", err)
	}
	for _, org := range slices.Sorted(func(yield func(string) bool) {
		for k := range tokens {
			if !yield(k) {
				return
			}
		}
	}) {
		t.tokens = append(t.tokens, tokens[org])
		t.orgs = append(t.orgs, org)
	}
	logger.Info("bench http: node ready", slog.String("http", addrs["http"]), slog.Int("tokens", len(t.tokens)))
	t.goroutines = func(ctx context.Context, client *http.Client) (int, error) {
		b, err := benchGet(ctx, client, t.base+"/metrics")
		if err != nil {
			return 0, err
		}
		for line := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(line, "go_goroutines "); ok {
				f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
				return int(f), err
			}
		}
		return 0, errors.New("no go_goroutines in /metrics")
	}
	return t, nil
}

// start runs t's command and waits for its address file.
func (t *benchTarget) start(ctx context.Context, addrFile string, addrs *map[string]string) error {
	t.cmd.Stdout = io.Discard
	t.cmd.Stderr = t.stderr
	if err := t.cmd.Start(); err != nil {
		return fmt.Errorf("%s: %w", t.name, err)
	}
	go func() { _ = t.cmd.Wait(); close(t.exited) }()
	deadline := time.Now().Add(benchHTTPStartTimeout)
	for {
		if b, err := os.ReadFile(addrFile); err == nil && json.Unmarshal(b, addrs) == nil {
			return nil
		}
		select {
		case <-t.exited:
			return fmt.Errorf("%s ended before it was ready: %s", t.name, t.stderr)
		case <-ctx.Done():
			t.stop()
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.stop()
			return fmt.Errorf("%s not ready after %s: %s", t.name, benchHTTPStartTimeout, t.stderr)
		}
	}
}

// stop ends the process with SIGTERM, then SIGKILL.
func (t *benchTarget) stop() {
	select {
	case <-t.exited:
		return
	default:
	}
	_ = t.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-t.exited:
	case <-time.After(30 * time.Second):
		_ = t.cmd.Process.Kill()
		<-t.exited
	}
}

// drive sends the load to t and samples its process meanwhile.
func drive(ctx context.Context, t *benchTarget, rate float64, duration, timeout time.Duration) (benchHTTPResult, error) {
	res := benchHTTPResult{Target: t.name, ByStatus: map[string]int{}}
	rss, err := processRSS(t.cmd.Process.Pid)
	if err != nil {
		return res, err
	}
	res.RSSBeforeMiB = rss
	tr := &http.Transport{MaxIdleConns: 4096, MaxIdleConnsPerHost: 4096, IdleConnTimeout: 30 * time.Second}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: timeout}

	var (
		mu        sync.Mutex
		latencies []time.Duration
		wg        sync.WaitGroup
		sent      atomic.Int64
	)
	record := func(status int, d time.Duration, err error) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err != nil:
			res.Errors++
			if res.FirstError == "" {
				res.FirstError = err.Error()
			}
		case status >= 200 && status < 300:
			res.ByStatus["2xx"]++
			latencies = append(latencies, d)
		default:
			res.ByStatus[strconv.Itoa(status)]++
		}
	}
	// Sampling.
	sctx, stopSampling := context.WithCancel(ctx)
	var sampler sync.WaitGroup
	var peakRSS atomic.Uint64
	peakG := atomic.Int64{}
	peakG.Store(-1)
	// The sampler keeps one connection of its own, opened before the
	// load, so that it is not queued behind the load's connections.
	probe := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1, IdleConnTimeout: time.Minute}}
	defer probe.CloseIdleConnections()
	sample := func() {
		if r, err := processRSS(t.cmd.Process.Pid); err == nil && uint64(r*1024) > peakRSS.Load() {
			peakRSS.Store(uint64(r * 1024))
		}
		gctx, cancel := context.WithTimeout(sctx, time.Second)
		defer cancel()
		if g, err := t.goroutines(gctx, probe); err == nil && int64(g) > peakG.Load() {
			peakG.Store(int64(g))
		}
	}
	sample() // opens the sampler's connection before the load
	sampler.Go(func() {
		tick := time.NewTicker(benchHTTPSample)
		defer tick.Stop()
		for {
			sample()
			select {
			case <-sctx.Done():
				return
			case <-tick.C:
			}
		}
	})

	// Open loop: every 10 ms, the requests due by then.
	start := time.Now()
	step := 10 * time.Millisecond
	tick := time.NewTicker(step)
	var due float64
	i := 0
	for time.Since(start) < duration {
		select {
		case <-ctx.Done():
			tick.Stop()
			stopSampling()
			sampler.Wait()
			return res, ctx.Err()
		case <-tick.C:
		}
		due = rate * time.Since(start).Seconds()
		for float64(sent.Load()) < due {
			sent.Add(1)
			token := ""
			if len(t.tokens) > 0 {
				token = t.tokens[i%len(t.tokens)]
			}
			i++
			n := i - 1
			wg.Go(func() {
				var req *http.Request
				var err error
				if t.newRequest != nil {
					req, err = t.newRequest(ctx, n)
				} else {
					req, err = http.NewRequestWithContext(ctx, http.MethodGet, t.base+t.path, nil)
				}
				if err != nil {
					record(0, 0, err)
					return
				}
				if token != "" && t.newRequest == nil {
					req.Header.Set("Authorization", "Bearer "+token)
				}
				begin := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					record(0, 0, err)
					return
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				record(resp.StatusCode, time.Since(begin), nil)
				if t.classify != nil && resp.StatusCode >= 200 && resp.StatusCode < 300 {
					mu.Lock()
					res.ByStatus[t.classify(body)]++
					mu.Unlock()
				}
			})
		}
	}
	tick.Stop()
	wg.Wait()
	sample()
	stopSampling()
	sampler.Wait()
	res.Sent = int(sent.Load())
	res.Shed = res.ByStatus["503"]
	res.RSSPeakMiB = float64(peakRSS.Load()) / 1024
	res.GoroutinesMax = int(peakG.Load())
	slices.Sort(latencies)
	res.P50ms = quantileMS(latencies, 0.50)
	res.P99ms = quantileMS(latencies, 0.99)
	return res, nil
}

func quantileMS(sorted []time.Duration, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q * float64(len(sorted)-1))
	return float64(sorted[i].Microseconds()) / 1000
}

// processRSS returns the resident memory of process pid in MiB (Linux:
// /proc/PID/status); elsewhere an error.
func processRSS(pid int) (float64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("resident memory: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			return kb / 1024, err
		}
	}
	return 0, errors.New("resident memory: no VmRSS")
}

func benchGet(ctx context.Context, client *http.Client, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(io.LimitReader(resp.Body, 4<<20))
}

// runRawServer serves the baseline, a plain net/http handler with no
// limits, on a loopback port until ctx ends.
func runRawServer(ctx context.Context, addrFile string) error {
	if addrFile == "" {
		return usageError{errors.New("--raw-server needs --addr-file")}
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	body := []byte(`{"deliveries":[],"next_after":0}` + "\n")
	mux.HandleFunc("GET /", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
	mux.HandleFunc("GET /goroutines", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, runtime.NumGoroutine())
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { // ctx ends on SIGTERM (main)
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := writeFileAtomic(addrFile, map[string]string{"http": ln.Addr().String()}); err != nil {
		return err
	}
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// syncWriter is a buffer safe for concurrent writes (a child's stderr).
type syncWriter struct {
	mu sync.Mutex
	b  strings.Builder
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.b.Len() > 64<<10 {
		return len(p), nil
	}
	return w.b.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}
