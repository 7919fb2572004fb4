package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/invictus-network/invictus/client"
)

// statusJSON is `invictus status --json`.
type statusJSON struct {
	Referral   string                 `json:"referral"`
	Status     string                 `json:"status"`
	Placements []client.PlacementView `json:"placements"`
	Events     []deliveryJSON         `json:"events"`
}

func newStatusCmd(out io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "status REFERRAL",
		Short: "Show the timeline of a referral as your organisation sees it",
		Long: "Status reads everything your organisation received about REFERRAL and prints\n" +
			"its status, each placement (status, organisation, service, deadline, outcome)\n" +
			"and the timeline of events. The referring organisation sees every placement;\n" +
			"an organisation that was offered a placement sees that placement only.\n\n" + exitCodesHelp,
		Example: "  invictus status 0195f0c1-2d4b-7c3a-8e5f-6a7b8c9d0e1f --org pt.apav --creds pt.apav.nk\n" +
			"  invictus status 0195f0c1-2d4b-7c3a-8e5f-6a7b8c9d0e1f --json | jq .placements",
		Args: cobra.ExactArgs(1),
	}
	f := addClientFlags(cmd, 0)
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
		tl, err := c.Timeline(cmd.Context(), ref)
		if err != nil {
			return err
		}
		if f.asJSON {
			j := statusJSON{Referral: tl.Referral, Status: tl.Status, Placements: tl.Placements, Events: make([]deliveryJSON, 0, len(tl.Deliveries))}
			if j.Placements == nil {
				j.Placements = []client.PlacementView{}
			}
			for _, d := range tl.Deliveries {
				j.Events = append(j.Events, toDeliveryJSON(d))
			}
			return printJSON(out, j)
		}
		return writeTimeline(out, tl)
	}
	return cmd
}

// writeTimeline prints a timeline for a person.
func writeTimeline(w io.Writer, tl *client.Timeline) error {
	fmt.Fprintf(w, "Referral %s: %s\n", tl.Referral, strings.ReplaceAll(tl.Status, "_", " "))
	if len(tl.Placements) > 0 {
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "PLACEMENT\tSTATUS\tORGANISATION\tSERVICE\tNEEDS\tDEADLINE\tOUTCOME")
		for _, p := range tl.Placements {
			deadline := ""
			if !p.Deadline.IsZero() && p.Status == "offered" {
				deadline = p.Deadline.Local().Format("2006-01-02 15:04")
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.ID, p.Status, dash(p.Organisation), dash(p.Service),
				dash(strings.Join(p.Needs, ", ")), dash(deadline), dash(p.Outcome))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	fmt.Fprintln(w)
	t := newDeliveryTable(w)
	for _, d := range tl.Deliveries {
		t.row(d, false)
	}
	return t.flush()
}

// dash returns s, or "-" when it is empty.
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
