package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"text/tabwriter"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/invictus-network/invictus/adapters/natsjs"
)

// errStoreDamaged is what `invictus check` returns for a damaged store:
// exit code 1, the report already printed.
var errStoreDamaged = errors.New("the store is damaged")

func newCheckCmd(out, errOut io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Verify a node's store: every referral's log folds and the streams agree",
		Long: "Check verifies the JetStream store of a node, as serve does at start: what\n" +
			"JetStream reports lost, whether a consumer had read beyond what a stream still\n" +
			"holds (a damaged block file cut the stream short), that every referral's log\n" +
			"folds, and that DELIVERY and TIMERS name no referral REFERRALS lacks. With\n" +
			"--data it checks the node running on DIR, or opens the store in process when\n" +
			"none runs. It prints what it found and, for damage, how to recover.\n\n" +
			"Exit codes: 0 the store is whole, 1 it is damaged (or could not be read),\n" +
			"2 usage, 3 the node does not answer.",
		Example: "  invictus check --data ./data\n" +
			"  invictus check --data ./data --json",
		Args: cobra.NoArgs,
	}
	f := addStoreFlags(cmd)
	asJSON := cmd.Flags().Bool("json", false, "print the report as JSON")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		var report natsjs.StoreReport
		err := f.run(cmd.Context(), errOut, "invictus check", func(ctx context.Context, nc *nats.Conn, _ *slog.Logger) error {
			js, err := jetstream.New(nc)
			if err != nil {
				return err
			}
			report, err = natsjs.VerifyStore(ctx, js)
			return err
		})
		if err != nil {
			return err
		}
		if *asJSON {
			if err := printJSON(out, report); err != nil {
				return err
			}
		} else if err := writeStoreReport(out, report); err != nil {
			return err
		}
		if report.Err() != nil {
			return fmt.Errorf("%w: %d problems", errStoreDamaged, len(report.Damage))
		}
		return nil
	}
	return cmd
}

// writeStoreReport prints report for people.
func writeStoreReport(w io.Writer, r natsjs.StoreReport) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STREAM\tMESSAGES")
	for _, name := range natsjs.StoreStreams {
		if n, ok := r.Messages[name]; ok {
			fmt.Fprintf(tw, "%s\t%d\n", name, n)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "referral logs folded: %d\n", r.Referrals)
	if len(r.Damage) == 0 {
		_, err := fmt.Fprintln(w, "store: ok")
		return err
	}
	fmt.Fprintf(w, "store: DAMAGED (%d problems)\n", len(r.Damage))
	for _, d := range r.Damage {
		fmt.Fprintf(w, "- %s: %s\n  recover: %s\n", d.Stream, d.Problem, d.Recover)
	}
	return nil
}
