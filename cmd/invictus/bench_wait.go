package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/invictus-network/invictus/adapters/httpapi"
	"github.com/invictus-network/invictus/events"
)

// Defaults of `invictus bench wait`.
const (
	benchWaitRateDefault     = 500.0
	benchWaitDurationDefault = 10 * time.Second
	benchWaitWaitDefault     = 5 * time.Second
)

type benchWaitOptions struct {
	rate      float64
	duration  time.Duration
	wait      time.Duration
	nodeBin   string
	serveArgs []string
}

func newBenchWaitCmd(out, errOut io.Writer) *cobra.Command {
	var o benchWaitOptions
	cmd := &cobra.Command{
		Use:   "wait",
		Short: "Send commands with ?wait= at a fixed rate and count the decided answers",
		Long: "Bench wait starts a node (`serve --demo` on a temporary data directory, loopback\n" +
			"ports) and, as the raw baseline, a plain net/http handler, each in its own\n" +
			"process. It sends each --rate requests a second for --duration, open loop: to\n" +
			"the node POST /v1/events?wait=--wait with a new referral.requested from the\n" +
			"demo organisations in turn, to the baseline GET /. It prints, per target, the\n" +
			"answers by status, how many of the node's were decided (accepted or rejected by\n" +
			"the routing service) and how many still pending when the wait ended, the p50\n" +
			"and p99 of the 2xx answers, and the peak resident memory and goroutines. It\n" +
			"fails when a target cannot be started, never on a timing.",
		Example: "  invictus bench wait\n" +
			"  invictus bench wait --rate 1000 --duration 20s --wait 2s",
		Args: cobra.NoArgs,
	}
	f := cmd.Flags()
	f.Float64Var(&o.rate, "rate", benchWaitRateDefault, "requests per second sent to each target")
	f.DurationVar(&o.duration, "duration", benchWaitDurationDefault, "how long the load is sent to each target")
	f.DurationVar(&o.wait, "wait", benchWaitWaitDefault, "the ?wait= of each command")
	f.StringVar(&o.nodeBin, "node-bin", "", "invictus binary that runs the node (default: this one)")
	f.StringArrayVar(&o.serveArgs, "serve-arg", nil, "more arguments of the node's serve (repeatable)")
	logs := addLogFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		switch {
		case o.rate <= 0 || o.rate > 100000:
			return usageError{fmt.Errorf("--rate %g: want more than 0 and at most 100000", o.rate)}
		case o.duration <= 0:
			return usageError{fmt.Errorf("--duration %s: must be positive", o.duration)}
		case o.wait <= 0 || o.wait > 30*time.Second:
			return usageError{fmt.Errorf("--wait %s: want more than 0 and at most 30s", o.wait)}
		}
		logger, err := logs.logger(errOut)
		if err != nil {
			return err
		}
		return runBenchWait(cmd.Context(), o, out, logger)
	}
	return cmd
}

func runBenchWait(ctx context.Context, o benchWaitOptions, out io.Writer, logger *slog.Logger) error {
	path := "/v1/events?wait=" + o.wait.String()
	load := benchHTTPOptions{rate: o.rate, duration: o.duration, path: path, nodeBin: o.nodeBin, serveArgs: o.serveArgs, wait: o.wait}
	results, err := runBenchLoad(ctx, "wait", load, logger, func(node *benchTarget) {
		node.newRequest = func(ctx context.Context, i int) (*http.Request, error) {
			org, token := node.orgs[i%len(node.orgs)], node.tokens[i%len(node.tokens)]
			ev, err := events.New(events.SourceOf(org), events.NewReferralID(), benchWaitRequested())
			if err != nil {
				return nil, err
			}
			body, err := json.Marshal(ev)
			if err != nil {
				return nil, err
			}
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, node.base+path, bytes.NewReader(body))
			if err != nil {
				return nil, err
			}
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("Content-Type", "application/cloudevents+json")
			return req, nil
		}
		node.classify = func(body []byte) string {
			var r httpapi.CommandResult
			if json.Unmarshal(body, &r) != nil || r.Status == "" {
				return "unreadable"
			}
			return r.Status
		}
	})
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "target\tsent\t2xx\tdecided\tpending\t429\t503\terrors\tp50 ms\tp99 ms\tRSS before MiB\tRSS peak MiB\tgoroutines peak\t\n")
	for i, r := range results {
		decided := r.ByStatus[httpapi.StatusAccepted] + r.ByStatus[httpapi.StatusRejected]
		if i == 0 { // the baseline decides nothing: every 2xx is its answer
			decided = r.ByStatus["2xx"]
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%.1f\t%.1f\t%.0f\t%.0f\t%d\t\n", r.Target, r.Sent, r.ByStatus["2xx"], decided,
			r.ByStatus[httpapi.StatusPending], r.ByStatus["429"], r.ByStatus["503"], r.Errors, r.P50ms, r.P99ms, r.RSSBeforeMiB, r.RSSPeakMiB, r.GoroutinesMax)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(out, "\n%g requests/s for %s each, open loop, on %d CPUs; the node is sent POST %s (a new referral each).\n", o.rate, o.duration, runtime.NumCPU(), path)
	return json.NewEncoder(out).Encode(results)
}

// benchWaitRequested is a referral asking for emotional support in
// Lisbon.
func benchWaitRequested() *events.Requested {
	return &events.Requested{
		Profile: events.Profile{
			Needs:     []string{events.NeedSupportEmotional},
			Urgency:   "soon",
			Location:  events.Location{Country: "pt", Region: "PT1B"},
			Languages: []string{"pt"},
			AgeBand:   "adult",
			Channels:  []string{events.ChannelInPerson, events.ChannelPhone},
		},
		Consent: events.Consent{
			Referral: true, ShareData: true, GivenAt: time.Now().UTC().Add(-time.Minute), Method: "verbal", RecordedBy: "bench-w41t",
		},
	}
}
