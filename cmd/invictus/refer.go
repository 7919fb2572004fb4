package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/invictus-network/invictus/adapters/natsjs"
	"github.com/invictus-network/invictus/client"
	"github.com/invictus-network/invictus/directory"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/routing"
	"github.com/invictus-network/invictus/schemas"
)

// referJSON is `invictus refer --json`.
type referJSON struct {
	commandResult
	// Preview is the plan previewed before sending (absent with --yes).
	Preview *events.Planned `json:"preview,omitempty"`
}

func newReferCmd(out, errOut io.Writer) *cobra.Command {
	var yes bool
	var referralID string
	cmd := &cobra.Command{
		Use:   "refer PROFILE",
		Short: "Send a referral: a needs profile with the victim's consent",
		Long: "Refer reads a referral (the JSON or YAML of a referral.requested payload: the\n" +
			"needs profile, which identifies nobody, and the victim's consent; \"-\" reads\n" +
			"standard input), shows the plan the routing service would make against the\n" +
			"network's current directory, asks for confirmation, and sends it. Then it waits\n" +
			"(--wait) for the routing service's plan: which organisation each placement was\n" +
			"offered to. With --yes it sends without preview or question. Names and contact\n" +
			"details never go in the profile: hand them over with 'invictus handover' once a\n" +
			"placement is accepted. Follow the referral with 'invictus status'.\n\n" + exitCodesHelp,
		Example: "  invictus refer requested.yaml --org pt.apav --creds pt.apav.nk\n" +
			"  invictus refer requested.json --yes --json | jq -r .referral\n" +
			"  cat requested.json | invictus refer - --yes --wait 10s",
		Args: cobra.ExactArgs(1),
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "send without showing the plan and asking")
	cmd.Flags().StringVar(&referralID, "referral", "", "use this referral id (a UUID) instead of a new one, e.g. to resend")
	f := addClientFlags(cmd, clientWaitDefault)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if referralID == "" {
			referralID = events.NewReferralID()
		} else if _, err := referralArg(referralID); err != nil {
			return err
		}
		req, err := readProfile(args[0], cmd.InOrStdin(), true)
		if err != nil {
			return err
		}
		if req.Consent.GivenAt.IsZero() {
			return fmt.Errorf("profile %s has no consent record: refer sends a referral.requested payload, with \"consent\" (the victim's consent to be referred)", args[0])
		}
		if err := events.ValidatePayload(req); err != nil {
			return fmt.Errorf("profile %s: %w", args[0], err)
		}
		ctx := cmd.Context()
		c, err := f.connect(ctx)
		if err != nil {
			return err
		}
		defer c.Close()

		var preview *events.Planned
		if !yes {
			plan, snap, err := previewPlan(ctx, c, req)
			if err != nil {
				return err
			}
			tax, err := schemas.LoadTaxonomy()
			if err != nil {
				return err
			}
			p := plan.Event()
			preview = &p
			w := out
			if f.asJSON {
				w = errOut // stdout stays one JSON document
			}
			if err := writePlanTable(w, plan, snap, tax, "en"); err != nil {
				return err
			}
			if len(plan.Groups) == 0 {
				fmt.Fprintln(w, "\nNo service can be offered this referral now; if you send it, its needs are recorded as unmet.")
			}
			if !confirm(cmd.InOrStdin(), errOut, "\nSend this referral to the network?") {
				return errors.New("not sent: not confirmed (use --yes to send without asking)")
			}
		}
		var res *commandResult
		var answer *events.Envelope
		res, answer, err = sendCommand(ctx, io.Discard, f, c, referralID, events.TypeReferralRequested, func(ctx context.Context) (string, error) {
			return c.Refer(ctx, referralID, *req)
		})
		if res == nil {
			return err
		}
		if f.asJSON {
			if jerr := printJSON(out, referJSON{commandResult: *res, Preview: preview}); jerr != nil {
				return jerr
			}
			return err
		}
		fmt.Fprintf(out, "Referral %s sent (command %s).\n", referralID, res.Command)
		switch res.Outcome {
		case "rejected":
			fmt.Fprintln(out, "REJECTED:")
			for _, p := range res.Errors {
				fmt.Fprintf(out, "  %s %s: %s\n", p.Pointer, p.Code, p.Message)
			}
		case "recorded":
			writeOffered(out, answer)
		default:
			if f.wait > 0 {
				fmt.Fprintf(out, "No plan within %s yet: see 'invictus status %s'.\n", f.wait, referralID)
			}
		}
		return err
	}
	return cmd
}

// previewPlan matches the profile against the network's directory, read
// from its bucket with the organisation's own connection.
func previewPlan(ctx context.Context, c *client.Client, req *events.Requested) (*routing.Plan, *directory.Index, error) {
	store, err := natsjs.NewDirectoryStore(ctx, c.JetStream(), natsjs.DirectoryStoreConfig{})
	if err != nil {
		return nil, nil, fmt.Errorf("%w: read the directory: %w", errUnavailable, err)
	}
	d, rev, err := store.Load(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: read the directory: %w", errUnavailable, err)
	}
	opts := []routing.MatchOption{routing.WithReferrer(c.Org())}
	if req.PreferredOrganisation != "" {
		opts = append(opts, routing.WithPreferredOrganisation(req.PreferredOrganisation))
	}
	snap := directory.NewIndex(d, rev)
	plan, err := routing.NewMatcher(routing.Config{}).Match(snap, req.Profile, opts...)
	return plan, snap, err
}

// writeOffered prints what the routing service's plan offered.
func writeOffered(w io.Writer, answer *events.Envelope) {
	plan, ok := answer.Payload.(*events.Planned)
	if !ok {
		fmt.Fprintf(w, "The routing service answered %s.\n", shortType(answer.Event.Type()))
		return
	}
	if len(plan.Groups) == 0 {
		fmt.Fprintln(w, "Planned: no service can take it; its needs are recorded as unmet.")
	}
	for _, g := range plan.Groups {
		fmt.Fprintf(w, "Placement %s (%s): offered to %s (%s).\n", g.Placement, strings.Join(g.Needs, ", "), g.Candidates[0].Organisation, g.Candidates[0].Service)
	}
	for _, u := range plan.Unmatched {
		fmt.Fprintf(w, "Not covered: %s (%s).\n", u.Need, u.Reason)
	}
}
