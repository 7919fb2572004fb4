package main

import (
	"context"
	"io"

	"github.com/spf13/cobra"

	"github.com/invictus-network/invictus/events"
)

func newAcceptCmd(out io.Writer) *cobra.Command {
	var placement string
	cmd := &cobra.Command{
		Use:   "accept REFERRAL",
		Short: "Accept a placement offered to your organisation",
		Long: "Accept accepts the placement of REFERRAL that was offered to your organisation\n" +
			"(--org), within its deadline. Without --placement, the one placement currently\n" +
			"offered to you is taken. The referring organisation is told, and can then hand\n" +
			"the sealed case file over.\n\n" + exitCodesHelp,
		Example: "  invictus accept 0195f0c1-2d4b-7c3a-8e5f-6a7b8c9d0e1f --org pt.apav --creds pt.apav.nk\n" +
			"  invictus accept 0195f0c1-2d4b-7c3a-8e5f-6a7b8c9d0e1f --placement p2 --json",
		Args: cobra.ExactArgs(1),
	}
	cmd.Flags().StringVar(&placement, "placement", "", "the placement to accept, such as p1 (default: the one offered to you)")
	f := addClientFlags(cmd, clientWaitDefault)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ref, err := referralArg(args[0])
		if err != nil {
			return err
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
		_, _, err = sendCommand(cmd.Context(), out, f, c, ref, events.TypeReferralAccepted, func(ctx context.Context) (string, error) {
			return c.Accept(ctx, ref, pl)
		})
		return err
	}
	return cmd
}
