package main

import (
	"context"
	"errors"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/invictus-network/invictus/events"
)

func newCompleteCmd(out io.Writer) *cobra.Command {
	var placement, outcome string
	var contacted bool
	cmd := &cobra.Command{
		Use:   "complete REFERRAL --outcome CODE",
		Short: "Report the outcome of a placement your organisation accepted",
		Long: "Complete closes the placement of REFERRAL that your organisation accepted, with\n" +
			"an outcome code (" + strings.Join(events.Outcomes, ", ") + ").\n" +
			"With --contacted it only reports that the victim was contacted, and the\n" +
			"placement stays in progress. Without --placement, the one placement your\n" +
			"organisation holds is taken.\n\n" + exitCodesHelp,
		Example: "  invictus complete 0195f0c1-2d4b-7c3a-8e5f-6a7b8c9d0e1f --outcome supported\n" +
			"  invictus complete 0195f0c1-2d4b-7c3a-8e5f-6a7b8c9d0e1f --contacted\n" +
			"  invictus complete 0195f0c1-2d4b-7c3a-8e5f-6a7b8c9d0e1f --placement p2 --outcome unable_to_contact --json",
		Args: cobra.ExactArgs(1),
	}
	cmd.Flags().StringVar(&placement, "placement", "", "the placement, such as p1 (default: the one your organisation holds)")
	cmd.Flags().StringVar(&outcome, "outcome", "", "outcome code: "+strings.Join(events.Outcomes, ", "))
	cmd.Flags().BoolVar(&contacted, "contacted", false, "only report that the victim was contacted")
	completeCodes(cmd, "outcome", events.Outcomes)
	f := addClientFlags(cmd, clientWaitDefault)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ref, err := referralArg(args[0])
		if err != nil {
			return err
		}
		if contacted && outcome != "" {
			return usageError{errors.New("--contacted and --outcome: choose one")}
		}
		if !contacted {
			if err := codeFlag("outcome", outcome, events.Outcomes); err != nil {
				return err
			}
		}
		c, err := f.connect(cmd.Context())
		if err != nil {
			return err
		}
		defer c.Close()
		pl, _, err := resolvePlacement(cmd.Context(), c, ref, placement, "", "accepted", "in_progress", "on_hold")
		if err != nil {
			return err
		}
		if contacted {
			_, _, err = sendCommand(cmd.Context(), out, f, c, ref, events.TypeReferralContacted, func(ctx context.Context) (string, error) {
				return c.Contacted(ctx, ref, pl)
			})
			return err
		}
		_, _, err = sendCommand(cmd.Context(), out, f, c, ref, events.TypeReferralCompleted, func(ctx context.Context) (string, error) {
			return c.Complete(ctx, ref, pl, outcome)
		})
		return err
	}
	return cmd
}
