package main

import (
	"context"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/invictus-network/invictus/events"
)

func newWithdrawCmd(out io.Writer) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "withdraw REFERRAL --reason CODE",
		Short: "Withdraw a referral your organisation sent",
		Long: "Withdraw cancels REFERRAL, which your organisation sent, with a reason code\n" +
			"(" + strings.Join(events.WithdrawReasons, ", ") + "). Open offers are\n" +
			"cancelled and every organisation holding one is told.\n\n" + exitCodesHelp,
		Example: "  invictus withdraw 0195f0c1-2d4b-7c3a-8e5f-6a7b8c9d0e1f --reason needs_met\n" +
			"  invictus withdraw 0195f0c1-2d4b-7c3a-8e5f-6a7b8c9d0e1f --reason victim_request --json",
		Args: cobra.ExactArgs(1),
	}
	cmd.Flags().StringVar(&reason, "reason", "", "reason code: "+strings.Join(events.WithdrawReasons, ", "))
	completeCodes(cmd, "reason", events.WithdrawReasons)
	f := addClientFlags(cmd, clientWaitDefault)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ref, err := referralArg(args[0])
		if err != nil {
			return err
		}
		if err := codeFlag("reason", reason, events.WithdrawReasons); err != nil {
			return err
		}
		c, err := f.connect(cmd.Context())
		if err != nil {
			return err
		}
		defer c.Close()
		_, _, err = sendCommand(cmd.Context(), out, f, c, ref, events.TypeReferralWithdrawn, func(ctx context.Context) (string, error) {
			return c.Withdraw(ctx, ref, reason)
		})
		return err
	}
	return cmd
}
