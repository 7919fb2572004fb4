// Command invictus is the one binary of the INVICTUS referral network.
//
// It parses flags and wires the packages together; nothing else. The
// subcommands are listed in [newRootCmd]: `invictus serve` runs the node
// (embedded NATS with JetStream, HTTP), `invictus version` says which build
// it is. Run `invictus help` for the rest.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

// Exit codes of the binary.
const (
	exitOK    = 0
	exitError = 1 // the command failed
	exitUsage = 2 // bad command line: unknown command or flag, bad flag value
	// exitUnavailable: the network or a service could not be reached or
	// did not answer in time; trying again later may work. See
	// exitCodesHelp (`invictus help exit-codes`).
	exitUnavailable = 3
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes the command line args and returns the process exit code.
// Errors are printed to errOut, once.
func run(ctx context.Context, args []string, out, errOut io.Writer) int {
	return runIn(ctx, args, nil, out, errOut)
}

// runIn is run with in as standard input (nil: os.Stdin), for the
// commands that read it (refer and erase confirm, "-" files).
func runIn(ctx context.Context, args []string, in io.Reader, out, errOut io.Writer) int {
	root := newRootCmd(out, errOut)
	if in != nil {
		root.SetIn(in)
	}
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	code := exitError
	var ue usageError
	switch {
	case errors.As(err, &ue):
		code = exitUsage
	case isUnavailable(err):
		code = exitUnavailable
	}
	if wantsJSON(cmd) {
		writeJSONError(errOut, err, code)
		return code
	}
	fmt.Fprintf(errOut, "invictus: %v\n", err)
	if code == exitUsage {
		fmt.Fprintf(errOut, "Run 'invictus help' for usage.\n")
	}
	return code
}

// newRootCmd builds the command tree. Commands write their results to out
// and their logs and errors to errOut.
func newRootCmd(out, errOut io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "invictus",
		Short: "INVICTUS: a referral network for victim-support organisations",
		Long: "INVICTUS connects victim-support organisations: a referral is matched to the\n" +
			"services that meet a victim's needs and followed until it is closed.",
		SilenceErrors: true, // run prints the error once
		SilenceUsage:  true, // a failing command is not a usage problem
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return cmd.Help()
		},
	}
	root.Version = readBuildInfo().Version
	root.SetVersionTemplate("invictus {{.Version}}\n")
	root.SetOut(out)
	root.SetErr(errOut)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return usageError{err}
	})

	// The subcommands. Add yours here, one line each.
	root.AddCommand(
		newServeCmd(out, errOut),
		newVersionCmd(out),
		newDirectoryCmd(out, errOut),
		newOrgCmd(out, errOut),
		newMatchCmd(out, errOut),
		newBenchCmd(out, errOut),
		newTokenCmd(out, errOut),
		newUserCmd(out, errOut),
		newAdapterCmd(out, errOut),
		newConfigCmd(out, errOut),
		newReferCmd(out, errOut),
		newInboxCmd(out),
		newAcceptCmd(out),
		newDeclineCmd(out),
		newHandoverCmd(out),
		newOpenCmd(out),
		newStatusCmd(out),
		newWithdrawCmd(out),
		newCompleteCmd(out),
		newHoldCmd(out),
		newFeedbackCmd(out),
		newEraseCmd(out, errOut),
		newCredsCmd(out, errOut),
		newCheckCmd(out, errOut),
		newCompletionCmd(out),
		newExitCodesTopic(),
		newOpenAPICmd(out),
		newTaxonomyCmd(out),
		newProfileCmd(out),
		newProbeCmd(out),
		newBackupCmd(out, errOut),
		newRestoreCmd(out, errOut),
	)

	// Unknown subcommands and stray arguments are usage errors too.
	wrapArgs(root)
	return root
}

// usageError marks an error in the command line itself.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// wrapArgs makes the argument validation of c and its subcommands return a
// usageError.
func wrapArgs(c *cobra.Command) {
	for _, sub := range c.Commands() {
		wrapArgs(sub)
	}
	c.SuggestionsMinimumDistance = 2
	check := c.Args
	if check == nil {
		return
	}
	c.Args = func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			if cmd.HasAvailableSubCommands() && len(args) > 0 {
				if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
					err = fmt.Errorf("%w; did you mean %s?", err, strings.Join(quoteAll(s), " or "))
				}
			}
			return usageError{err}
		}
		return nil
	}
}

// flagError is an error caused by the value of one flag, such as a taken
// port; its message starts with the flag and its value.
type flagError struct {
	flag  string // without the dashes
	value string
	err   error
}

func (e *flagError) Error() string { return fmt.Sprintf("--%s %s: %v", e.flag, e.value, e.err) }
func (e *flagError) Unwrap() error { return e.err }

// logFlags are the logging flags a command can register with addLogFlags.
type logFlags struct {
	level  string
	format string
}

// addLogFlags registers --log-level and --log-format on cmd.
func addLogFlags(cmd *cobra.Command) *logFlags {
	f := &logFlags{}
	cmd.Flags().StringVar(&f.level, "log-level", "info", "log level: debug, info, warn or error")
	cmd.Flags().StringVar(&f.format, "log-format", "text", "log format: text or json")
	return f
}

// logger returns a logger writing to w as the flags say, or a usageError
// naming the bad flag.
func (f *logFlags) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.level)); err != nil {
		return nil, usageError{fmt.Errorf("--log-level %q: want debug, info, warn or error", f.level)}
	}
	opts := &slog.HandlerOptions{Level: level}
	switch strings.ToLower(f.format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, usageError{fmt.Errorf("--log-format %q: want text or json", f.format)}
	}
}

func quoteAll(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = fmt.Sprintf("%q", v)
	}
	return out
}
