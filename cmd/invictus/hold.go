package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/invictus-network/invictus/events"
)

func newHoldCmd(out io.Writer) *cobra.Command {
	var placement, until string
	cmd := &cobra.Command{
		Use:   "hold REFERRAL",
		Short: "Put a placement your organisation accepted on hold (waiting list)",
		Long: "Hold reports that the placement of REFERRAL your organisation accepted is on its\n" +
			"waiting list, optionally until a date. The referrer is told. Report contact with\n" +
			"'invictus complete --contacted' when the victim is reached. Without --placement,\n" +
			"the one placement your organisation holds is taken.\n\n" + exitCodesHelp,
		Example: "  invictus hold 0195f0c1-2d4b-7c3a-8e5f-6a7b8c9d0e1f\n" +
			"  invictus hold 0195f0c1-2d4b-7c3a-8e5f-6a7b8c9d0e1f --until 2027-01-15 --json",
		Args: cobra.ExactArgs(1),
	}
	cmd.Flags().StringVar(&placement, "placement", "", "the placement, such as p1 (default: the one your organisation holds)")
	cmd.Flags().StringVar(&until, "until", "", "the end of the hold: a date (2027-01-15) or an RFC 3339 time")
	f := addClientFlags(cmd, clientWaitDefault)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ref, err := referralArg(args[0])
		if err != nil {
			return err
		}
		var end *time.Time
		if until != "" {
			t, err := time.Parse(time.DateOnly, until)
			if err != nil {
				if t, err = time.Parse(time.RFC3339, until); err != nil {
					return usageError{fmt.Errorf("--until %q: want a date such as 2027-01-15 or an RFC 3339 time", until)}
				}
			}
			end = &t
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
		_, _, err = sendCommand(cmd.Context(), out, f, c, ref, events.TypeReferralOnHold, func(ctx context.Context) (string, error) {
			return c.OnHold(ctx, ref, pl, end)
		})
		return err
	}
	return cmd
}

// feedbackQuestions are the questions `invictus feedback` asks by flag.
var feedbackQuestions = []string{"informed", "respectful", "helpful", "recommend", "timely", "safe"}

func newFeedbackCmd(out io.Writer) *cobra.Command {
	var placement string
	var missing []string
	answers := map[string]*int{}
	cmd := &cobra.Command{
		Use:   "feedback REFERRAL --helpful 1-5 ...",
		Short: "Send the victim's anonymous feedback on a referral",
		Long: "Feedback sends the victim's answers to the experience survey, each on a scale of\n" +
			"1 (not at all) to 5 (fully), and what was missing, as codes (" + strings.Join(events.FeedbackMissing, ", ") + ").\n" +
			"Never free text. The referrer sends it about the referral (or, with --placement,\n" +
			"a placement); the accepting organisation about its placement.\n\n" + exitCodesHelp,
		Example: "  invictus feedback 0195f0c1-2d4b-7c3a-8e5f-6a7b8c9d0e1f --helpful 5 --informed 4\n" +
			"  invictus feedback 0195f0c1-2d4b-7c3a-8e5f-6a7b8c9d0e1f --placement p1 --recommend 5 --missing follow_up --json",
		Args: cobra.ExactArgs(1),
	}
	cmd.Flags().StringVar(&placement, "placement", "", "the placement the feedback is about, such as p1 (default: the referral as a whole)")
	cmd.Flags().StringSliceVar(&missing, "missing", nil, "what was missing: "+strings.Join(events.FeedbackMissing, ", "))
	for _, q := range feedbackQuestions {
		answers[q] = cmd.Flags().Int(q, 0, "answer to '"+q+"', 1 to 5")
	}
	completeCodes(cmd, "missing", events.FeedbackMissing)
	f := addClientFlags(cmd, clientWaitDefault)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ref, err := referralArg(args[0])
		if err != nil {
			return err
		}
		fb := events.Feedback{Placement: placement, Missing: missing}
		for _, q := range feedbackQuestions {
			v := *answers[q]
			if v == 0 {
				continue
			}
			if v < 1 || v > 5 {
				return usageError{fmt.Errorf("--%s %s: want 1 to 5", q, strconv.Itoa(v))}
			}
			fb.Answers = append(fb.Answers, events.Answer{Question: q, Value: v})
		}
		if len(fb.Answers) == 0 {
			return usageError{fmt.Errorf("give at least one answer: --%s", strings.Join(feedbackQuestions, ", --"))}
		}
		for _, m := range missing {
			if err := codeFlag("missing", m, events.FeedbackMissing); err != nil {
				return err
			}
		}
		if placement != "" && !events.IsPlacementID(placement) {
			return usageError{fmt.Errorf("--placement %q is not a placement id (such as p1)", placement)}
		}
		c, err := f.connect(cmd.Context())
		if err != nil {
			return err
		}
		defer c.Close()
		_, _, err = sendCommand(cmd.Context(), out, f, c, ref, events.TypeReferralFeedback, func(ctx context.Context) (string, error) {
			return c.Feedback(ctx, ref, fb)
		})
		return err
	}
	return cmd
}
