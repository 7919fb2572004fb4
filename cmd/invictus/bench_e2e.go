package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/invictus-network/invictus/adapters/natsjs"
	"github.com/invictus-network/invictus/internal/bench"
	"github.com/invictus-network/invictus/internal/tracing"
	"github.com/invictus-network/invictus/routing"
)

type benchE2EOptions struct {
	referrals   int
	rate        float64
	msgSize     int
	rawMessages int
	burst       int
	services    int
	orgs        int
	open        int
	seed        int64
	natsURL     string
	creds       string
	replicas    int
	workers     int
	cpuProfile  string
	heapProfile string
	settle      time.Duration
	memoryLimit sizeValue
	wait        time.Duration
	otlp        string
}

func newBenchE2ECmd(out, errOut io.Writer) *cobra.Command {
	var o benchE2EOptions
	cmd := &cobra.Command{
		Use:   "e2e",
		Short: "Measure the routing service end to end: raw JetStream hop, routing hop, request-to-offer latency",
		Long: "Bench e2e runs against an embedded NATS server on a temporary store (or, with\n" +
			"--nats-url, an external server that has no INVICTUS streams yet: the bench\n" +
			"creates them and deletes them at the end). It measures:\n\n" +
			"  1. the raw JetStream hop on that server: a pull consumer takes each message\n" +
			"     (--msg-size bytes), publishes it to a second stream awaiting the\n" +
			"     acknowledgement, and acknowledges it (raw_hop_per_s);\n" +
			"  2. with a generated directory in the directory bucket, one routing service\n" +
			"     and simulated organisations (each consuming its own DELIVERY consumer and\n" +
			"     accepting every offer at once): --referrals referrals offered at --rate\n" +
			"     through request, offer and accept, timed from the submission to each\n" +
			"     offer's arrival at the offered organisation (p50_ms, p95_ms, p99_ms) and\n" +
			"     the rate sustained (referrals_per_s);\n" +
			"  3. --burst referral.requested commands published at once, far faster than\n" +
			"     the router handles them: the rate at which their offers come out\n" +
			"     (routing_hop_per_s), and its ratio to the raw hop (hop_ratio) and to\n" +
			"     the raw hop run with as many messages in hand as the router has workers\n" +
			"     (raw_hop_concurrent_per_s, hop_ratio_like_for_like; raw_hop_cpu_ms_per_msg\n" +
			"     is its CPU per message).\n\n" +
			"cpu_ms_per_referral is the CPU time of the whole process (server, router and\n" +
			"simulated organisations) per referral of the latency run: other load on the\n" +
			"machine inflates latencies much more than it does this figure. The server's\n" +
			"share grows with the number of organisations (--services): each one's durable\n" +
			"consumer has its state written to a file up to ten times a second.\n\n" +
			"--orgs N grows the directory to N organisations (copies of generated ones under\n" +
			"new ids) and has them all read through one shared DELIVERY consumer, as the\n" +
			"HTTP and e-mail adapters read; --open N leaves N referrals offered and never\n" +
			"answered before the latency run. msgs_in_per_referral and\n" +
			"msgs_out_per_referral are the embedded server's own counts (varz) over the\n" +
			"latency run; rss_before_mib, rss_open_mib and rss_after_mib the process's\n" +
			"resident memory before the open referrals, once they are offered, and after\n" +
			"the runs; heap_live_mib the live heap after the runs. The bench runs under\n" +
			"serve's soft memory limit (--memory-limit, memory_limit_mib) unless told\n" +
			"otherwise. REFERRALS and DELIVERY get no byte bound, so that a million open\n" +
			"referrals fit.\n\n" +
			"It prints one JSON line. Progress goes to standard error. It fails when the\n" +
			"workload goes wrong (errors > 0), never because of a timing.",
		Example: "  invictus bench e2e\n" +
			"  invictus bench e2e --referrals 5000 --rate 1000 --cpuprofile e2e.pprof\n" +
			"  invictus bench e2e --nats-url nats://127.0.0.1:4222 --referrals 500\n" +
			"  invictus bench e2e --nats-url nats://nats-1:4222,nats://nats-2:4222 --creds admin.nk --nats-replicas 3",
		Args: cobra.NoArgs,
	}
	f := cmd.Flags()
	f.IntVar(&o.referrals, "referrals", bench.ReferralsDefault, "referrals driven through request, offer and accept")
	f.Float64Var(&o.rate, "rate", bench.RateDefault, "offered load, referrals per second")
	f.IntVar(&o.msgSize, "msg-size", bench.MsgSizeDefault, "data size of the raw hop's messages, bytes")
	f.IntVar(&o.rawMessages, "raw-messages", bench.RawMessagesDefault, "messages moved by the raw hop")
	f.IntVar(&o.burst, "burst", bench.BurstDefault, "referral.requested commands published at once for the saturation run (0 skips it)")
	f.IntVar(&o.services, "services", bench.ServicesDefault, "services in the generated directory")
	f.IntVar(&o.orgs, "orgs", 0, "grow the directory to this many organisations, all reading through one shared consumer (0: as generated, a consumer each)")
	f.IntVar(&o.open, "open", 0, "referrals left offered and unanswered before the latency run")
	f.Int64Var(&o.seed, "seed", 1, "seed of the directory, the profiles and the referrers")
	f.StringVar(&o.natsURL, "nats-url", "", "external NATS server (default: an embedded one on a temporary store)")
	addCredsFlag(f, &o.creds, "credentials file for --nats-url")
	f.IntVar(&o.replicas, "nats-replicas", natsjs.ReplicasDefault, "replicas of the streams the bench creates (3 on a cluster: R3); more than 1 needs --nats-url")
	f.IntVar(&o.workers, "workers", natsjs.WorkersDefault, "router workers per consumer")
	f.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the routing runs to this file")
	f.StringVar(&o.heapProfile, "memprofile", "", "write a heap profile, taken after the runs (and --settle) with the --open referrals still open, to this file")
	o.memoryLimit = memoryLimitDefault
	f.Var(&o.memoryLimit, "memory-limit", `the Go runtime's soft memory limit during the bench, as serve's --memory-limit (bytes, or with KiB, MiB, GiB; "unlimited" for none); when left at the default, GOMEMLIMIT in the environment stands`)
	f.DurationVar(&o.settle, "settle", 0, "after the runs, wait this long (more than the 2-minute duplicate window to see a node at rest) and measure the memory again: rss_settled_mib, heap_live_settled_mib")
	f.DurationVar(&o.wait, "wait", bench.WaitDefault, "how long each run may take once its load is offered")
	f.StringVar(&o.otlp, "otlp-endpoint", "", "export the router's OpenTelemetry traces over OTLP/HTTP to this receiver's base URL, as serve --otlp-endpoint does, to measure what tracing costs")
	logs := addLogFlags(cmd)

	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		logger, err := logs.logger(errOut)
		if err != nil {
			return err
		}
		cfg, err := o.config()
		if err != nil {
			return err
		}
		cfg.Logger = logger
		if o.memoryLimit >= 0 && o.memoryLimit < memoryLimitMin {
			return usageError{fmt.Errorf("--memory-limit %d: want at least %d MiB, or unlimited", int64(o.memoryLimit), memoryLimitMin>>20)}
		}
		_, goMemLimit := os.LookupEnv("GOMEMLIMIT")
		limit, restore := applyMemoryLimit(int64(o.memoryLimit), !cmd.Flags().Changed("memory-limit"), goMemLimit)
		cfg.MemoryLimit = limit
		defer restore()
		stopTracing, err := startBenchTracing(cmd.Context(), o.otlp, errOut)
		if err != nil {
			return err
		}
		defer stopTracing()
		if o.cpuProfile != "" {
			pf, err := os.Create(o.cpuProfile)
			if err != nil {
				return &flagError{flag: "cpuprofile", value: o.cpuProfile, err: err}
			}
			defer pf.Close()
			cfg.CPUProfile = pf
		}
		if o.heapProfile != "" {
			hf, err := os.Create(o.heapProfile)
			if err != nil {
				return &flagError{flag: "memprofile", value: o.heapProfile, err: err}
			}
			defer hf.Close()
			cfg.HeapProfile = hf
		}
		return runBenchE2E(cmd.Context(), cfg, out)
	}
	return cmd
}

// config checks the flags and turns them into the bench's config.
func (o benchE2EOptions) config() (bench.E2EConfig, error) {
	for _, v := range []struct {
		name string
		n    int
	}{{"referrals", o.referrals}, {"msg-size", o.msgSize}, {"raw-messages", o.rawMessages}, {"services", o.services}, {"workers", o.workers}} {
		if v.n < 1 {
			return bench.E2EConfig{}, usageError{fmt.Errorf("--%s %d: must be at least 1", v.name, v.n)}
		}
	}
	if o.rate <= 0 {
		return bench.E2EConfig{}, usageError{fmt.Errorf("--rate %g: must be positive", o.rate)}
	}
	if o.burst < 0 {
		return bench.E2EConfig{}, usageError{fmt.Errorf("--burst %d: must not be negative", o.burst)}
	}
	if o.creds != "" && o.natsURL == "" {
		return bench.E2EConfig{}, usageError{errors.New("--creds needs --nats-url")}
	}
	if o.settle < 0 {
		return bench.E2EConfig{}, usageError{fmt.Errorf("--settle %s: must be 0 or positive", o.settle)}
	}
	if o.wait <= 0 {
		return bench.E2EConfig{}, usageError{fmt.Errorf("--wait %s: must be positive", o.wait)}
	}
	if o.replicas < 1 || o.replicas > natsjs.ReplicasMax {
		return bench.E2EConfig{}, usageError{fmt.Errorf("--nats-replicas %d: must be from 1 to %d", o.replicas, natsjs.ReplicasMax)}
	}
	if o.replicas > 1 && o.natsURL == "" {
		return bench.E2EConfig{}, usageError{fmt.Errorf("--nats-replicas %d needs --nats-url: the embedded server is one node", o.replicas)}
	}
	burst := o.burst
	if burst == 0 {
		burst = -1 // E2EConfig's zero means the default
	}
	cfg := bench.E2EConfig{
		Referrals: o.referrals, Rate: o.rate, MsgSize: o.msgSize, RawMessages: o.rawMessages, Burst: burst,
		Services: o.services, Orgs: o.orgs, Open: o.open, Seed: o.seed, URL: o.natsURL, Wait: o.wait, Settle: o.settle,
		Router: natsjs.RouterConfig{Workers: o.workers}, Replicas: o.replicas,
		// Spans cost nothing until --otlp-endpoint installs an exporter.
		Service: routing.ServiceConfig{Tracer: tracing.Steps{}},
	}
	if o.creds != "" {
		// A .creds file or an nkey seed (deploy/README.md's admin.nk).
		opt, err := natsCredsOption(o.creds)
		if err != nil {
			return bench.E2EConfig{}, &flagError{flag: "creds", value: o.creds, err: err}
		}
		cfg.NATSOptions = append(cfg.NATSOptions, opt)
	}
	if err := cfg.WithDefaults().Validate(); err != nil {
		return bench.E2EConfig{}, usageError{err}
	}
	return cfg, nil
}

// runBenchE2E runs the bench and prints its one JSON line to out. It
// returns an error when the bench could not run or counted errors.
func runBenchE2E(ctx context.Context, cfg bench.E2EConfig, out io.Writer) error {
	res, err := bench.E2E(ctx, cfg)
	if err != nil {
		return fmt.Errorf("bench e2e: %w", err)
	}
	line, err := json.Marshal(res)
	if err != nil {
		return fmt.Errorf("bench e2e: %w", err)
	}
	if _, err := fmt.Fprintf(out, "%s\n", line); err != nil {
		return err
	}
	if res.Errors > 0 {
		return fmt.Errorf("bench e2e: %d errors; the first: %s", res.Errors, res.FirstError)
	}
	return nil
}
