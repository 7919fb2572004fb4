package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/invictus-network/invictus/events"
)

func newEraseCmd(out, errOut io.Writer) *cobra.Command {
	var reason string
	var yes bool
	cmd := &cobra.Command{
		Use:   "erase REFERRAL",
		Short: "Erase every copy of a referral, on the victim's request",
		Long: "Erase asks the network to purge every copy of REFERRAL: its event log, what\n" +
			"every organisation received about it, and its timers. Only the statistics\n" +
			"remain (country, needs, outcome, dates by day). The referring organisation (or a\n" +
			"coordinator) may erase; it cannot be undone, so erase asks for confirmation\n" +
			"unless --yes is given. The reason is a code: " + strings.Join(eraseReasons, ", ") + ".\n\n" + exitCodesHelp,
		Example: "  invictus erase 0195f0c1-2d4b-7c3a-8e5f-6a7b8c9d0e1f\n" +
			"  invictus erase 0195f0c1-2d4b-7c3a-8e5f-6a7b8c9d0e1f --reason retention --yes --json",
		Args: cobra.ExactArgs(1),
	}
	cmd.Flags().StringVar(&reason, "reason", "victim_request", "reason code: "+strings.Join(eraseReasons, ", "))
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	completeCodes(cmd, "reason", eraseReasons)
	f := addClientFlags(cmd, clientWaitDefault)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ref, err := referralArg(args[0])
		if err != nil {
			return err
		}
		if err := codeFlag("reason", reason, eraseReasons); err != nil {
			return err
		}
		if !yes && !confirm(cmd.InOrStdin(), errOut, fmt.Sprintf("Erase every copy of referral %s? This cannot be undone.", ref)) {
			return errors.New("not erased: not confirmed (use --yes to erase without asking)")
		}
		c, err := f.connect(cmd.Context())
		if err != nil {
			return err
		}
		defer c.Close()
		_, _, err = sendCommand(cmd.Context(), out, f, c, ref, events.TypeReferralErase, func(ctx context.Context) (string, error) {
			return c.Erase(ctx, ref, reason)
		})
		return err
	}
	return cmd
}
