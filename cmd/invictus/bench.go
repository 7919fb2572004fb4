package main

import (
	"io"

	"github.com/spf13/cobra"
)

// newBenchCmd is the parent of the benchmark commands, which print figures
// and never fail on a timing.
func newBenchCmd(out, errOut io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure the system: matching against PostgreSQL, and more",
		Long: "The bench commands run a workload and print figures (medians, 99th percentiles,\n" +
			"ratios to a reference). They do not fail because of a timing; they fail when\n" +
			"the workload itself goes wrong.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(
		newBenchMatchCmd(out, errOut),
		newBenchE2ECmd(out, errOut),
		newBenchHTTPCmd(out, errOut),
		newBenchWaitCmd(out, errOut),
		newBenchEmailCmd(out, errOut),
	)
	return cmd
}
