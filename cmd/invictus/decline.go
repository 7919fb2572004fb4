package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/invictus-network/invictus/events"
)

func newDeclineCmd(out io.Writer) *cobra.Command {
	var placement, reason, text string
	cmd := &cobra.Command{
		Use:   "decline REFERRAL --reason CODE",
		Short: "Decline a placement offered to your organisation, with a coded reason",
		Long: "Decline declines the placement of REFERRAL offered to your organisation with a\n" +
			"reason code (" + strings.Join(events.DeclineReasons, ", ") + ").\n" +
			"Routing payloads carry codes only, never free text. The routing\n" +
			"service then offers the placement to the next candidate. Without --placement,\n" +
			"the one placement currently offered to you is taken.\n\n" + exitCodesHelp,
		Example: "  invictus decline 0195f0c1-2d4b-7c3a-8e5f-6a7b8c9d0e1f --reason capacity\n" +
			"  invictus decline 0195f0c1-2d4b-7c3a-8e5f-6a7b8c9d0e1f --placement p1 --reason out_of_area",
		Args: cobra.ExactArgs(1),
	}
	cmd.Flags().StringVar(&placement, "placement", "", "the placement to decline, such as p1 (default: the one offered to you)")
	cmd.Flags().StringVar(&reason, "reason", "", "reason code: "+strings.Join(events.DeclineReasons, ", "))
	// --text is gone: it is kept hidden only to refuse it with a clear error.
	cmd.Flags().StringVar(&text, "text", "", "removed: routing payloads carry no free text")
	_ = cmd.Flags().MarkHidden("text")
	completeCodes(cmd, "reason", events.DeclineReasons)
	f := addClientFlags(cmd, clientWaitDefault)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ref, err := referralArg(args[0])
		if err != nil {
			return err
		}
		if err := codeFlag("reason", reason, events.DeclineReasons); err != nil {
			return err
		}
		if cmd.Flags().Changed("text") {
			return usageError{fmt.Errorf("--text is not accepted: a decline carries a reason code only, since free text could identify the victim; choose the closest --reason (%s)", strings.Join(events.DeclineReasons, ", "))}
		}
		c, err := f.connect(cmd.Context())
		if err != nil {
			return err
		}
		defer c.Close()
		pl, _, err := resolvePlacement(cmd.Context(), c, ref, placement, c.Org(), "offered")
		if err != nil {
			return err
		}
		_, _, err = sendCommand(cmd.Context(), out, f, c, ref, events.TypeReferralDeclined, func(ctx context.Context) (string, error) {
			return c.Decline(ctx, ref, pl, reason)
		})
		return err
	}
	return cmd
}
