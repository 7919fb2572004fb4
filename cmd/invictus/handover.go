package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/seal"
)

func newHandoverCmd(out io.Writer) *cobra.Command {
	var placement, file, recipient string
	cmd := &cobra.Command{
		Use:   "handover REFERRAL --file CASE",
		Short: "Seal the case file locally and hand it over to the accepting organisation",
		Long: "Handover reads the case file (names, contact details, safe-contact instructions,\n" +
			"notes: whatever the accepting organisation needs; \"-\" reads standard input),\n" +
			"seals it on this machine with age to the accepting organisation's public\n" +
			"recipient from the directory, and sends only the sealed envelope. Nobody else,\n" +
			"the network included, can read it. The placement must have been accepted;\n" +
			"without --placement, the one accepted placement of the referral is taken.\n" +
			fmt.Sprintf("The case file may hold at most %d KiB.\n\n", seal.MaxPlaintext/1024) + exitCodesHelp,
		Example: "  invictus handover 0195f0c1-2d4b-7c3a-8e5f-6a7b8c9d0e1f --file case.json\n" +
			"  invictus handover 0195f0c1-2d4b-7c3a-8e5f-6a7b8c9d0e1f --placement p2 --file - < case.json",
		Args: cobra.ExactArgs(1),
	}
	cmd.Flags().StringVar(&placement, "placement", "", "the accepted placement, such as p1 (default: the one accepted placement)")
	cmd.Flags().StringVar(&file, "file", "", "the case file to seal; \"-\" for standard input")
	cmd.Flags().StringVar(&recipient, "recipient", "", "seal to this age recipient instead of the directory's (age1...)")
	f := addClientFlags(cmd, handoverWaitDefault)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ref, err := referralArg(args[0])
		if err != nil {
			return err
		}
		if file == "" {
			return usageError{fmt.Errorf("--file is required: the case file to seal")}
		}
		var caseFile []byte
		if file == "-" {
			caseFile, err = io.ReadAll(io.LimitReader(cmd.InOrStdin(), seal.MaxPlaintext+1))
		} else {
			caseFile, err = os.ReadFile(file)
		}
		if err != nil {
			return &flagError{flag: "file", value: file, err: err}
		}
		if len(caseFile) > seal.MaxPlaintext {
			return &flagError{flag: "file", value: file, err: fmt.Errorf("%w: the limit is %d bytes", seal.ErrTooLarge, seal.MaxPlaintext)}
		}
		c, err := f.connect(cmd.Context())
		if err != nil {
			return err
		}
		defer c.Close()
		ctx := cmd.Context()
		tl, err := c.Timeline(ctx, ref)
		if err != nil {
			return err
		}
		accepted := placementsWith(tl, "", "accepted", "in_progress", "on_hold")
		if placement == "" {
			switch len(accepted) {
			case 0:
				return fmt.Errorf("no placement of referral %s has been accepted yet: nothing to hand over", ref)
			case 1:
				placement = accepted[0]
			default:
				return usageError{fmt.Errorf("placements %v of referral %s are accepted: choose one with --placement", accepted, ref)}
			}
		}
		p, ok := tl.Placement(placement)
		if !ok || p.Organisation == "" {
			return fmt.Errorf("placement %s of referral %s has not been accepted by anyone you were told of", placement, ref)
		}
		if recipient == "" {
			if recipient, err = c.Recipient(ctx, p.Organisation); err != nil {
				return err
			}
		}
		res, _, err := sendCommand(ctx, out, f, c, ref, events.TypeReferralHandover, func(ctx context.Context) (string, error) {
			return c.Handover(ctx, ref, placement, recipient, caseFile)
		})
		if err == nil && !f.asJSON && res.Outcome != "rejected" {
			fmt.Fprintf(out, "Sealed %d bytes to %s (%s) for placement %s.\n", len(caseFile), p.Organisation, recipient, placement)
		}
		return err
	}
	return cmd
}
