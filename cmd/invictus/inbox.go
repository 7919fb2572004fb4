package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/invictus-network/invictus/client"
	"github.com/invictus-network/invictus/events"
)

// inboxLimitDefault is how many deliveries inbox lists by default.
const inboxLimitDefault = 50

func newInboxCmd(out io.Writer) *cobra.Command {
	var limit int
	var follow bool
	var types []string
	cmd := &cobra.Command{
		Use:   "inbox",
		Short: "List what your organisation received: offers, answers, plans, handovers",
		Long: "Inbox lists the latest deliveries to your organisation, oldest first: offers\n" +
			"(with their deadline), answers to your referrals, plans, sealed handovers\n" +
			"(open them with 'invictus open'), rejections of your commands. With --follow it\n" +
			"then keeps printing new deliveries as they arrive, until interrupted.\n" +
			"Inbox only reads: it acknowledges nothing, so it never takes a delivery away\n" +
			"from your case system's consumer. --type keeps some types only (offered,\n" +
			"accepted, declined, planned, handover, command.rejected...). With --json,\n" +
			"the list is a JSON array, and --follow prints one JSON object per line.\n\n" + exitCodesHelp,
		Example: "  invictus inbox --org pt.apav --creds pt.apav.nk\n" +
			"  invictus inbox --type offered --limit 10\n" +
			"  invictus inbox --follow --json | jq -c '{referral, type}'",
		Args: cobra.NoArgs,
	}
	cmd.Flags().IntVar(&limit, "limit", inboxLimitDefault, "list at most this many deliveries (0: all)")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new deliveries until interrupted")
	cmd.Flags().StringSliceVar(&types, "type", nil, "only these types (offered, planned, handover, command.rejected, ...)")
	_ = cmd.RegisterFlagCompletionFunc("type", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		out := make([]string, 0, len(events.Types()))
		for _, t := range events.Types() {
			out = append(out, shortType(t))
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	})
	f := addClientFlags(cmd, 0)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if limit < 0 {
			return usageError{fmt.Errorf("--limit %d: must not be negative", limit)}
		}
		for i, t := range types {
			types[i] = strings.TrimSpace(t)
			if !slices.ContainsFunc(events.Types(), func(full string) bool { return full == types[i] || shortType(full) == types[i] }) {
				return usageError{fmt.Errorf("--type %q is not an event type", t)}
			}
		}
		keep := func(d client.Delivery) bool {
			if len(types) == 0 {
				return true
			}
			if d.Envelope == nil {
				return false
			}
			typ := d.Envelope.Event.Type()
			return slices.Contains(types, typ) || slices.Contains(types, shortType(typ))
		}
		ctx := cmd.Context()
		c, err := f.connect(ctx)
		if err != nil {
			return err
		}
		defer c.Close()
		all, err := c.Inbox(ctx, 0)
		if err != nil {
			return err
		}
		var list []client.Delivery
		for _, d := range all {
			if keep(d) {
				list = append(list, d)
			}
		}
		if limit > 0 && len(list) > limit {
			list = list[len(list)-limit:]
		}
		var last uint64
		if len(all) > 0 {
			last = all[len(all)-1].Sequence
		}
		table := newDeliveryTable(out)
		switch {
		case f.asJSON && !follow:
			rows := make([]deliveryJSON, 0, len(list))
			for _, d := range list {
				rows = append(rows, toDeliveryJSON(d))
			}
			return printJSON(out, rows)
		case f.asJSON:
			enc := json.NewEncoder(out)
			for _, d := range list {
				if err := enc.Encode(toDeliveryJSON(d)); err != nil {
					return err
				}
			}
		default:
			for _, d := range list {
				table.row(d, true)
			}
			if err := table.flush(); err != nil {
				return err
			}
			if len(list) == 0 && !follow {
				fmt.Fprintln(out, "Nothing delivered to "+c.Org()+".")
			}
		}
		if !follow {
			return nil
		}
		err = c.Follow(ctx, last, func(d client.Delivery) error {
			if !keep(d) {
				return nil
			}
			if f.asJSON {
				return json.NewEncoder(out).Encode(toDeliveryJSON(d))
			}
			table.row(d, true)
			return table.flush()
		})
		if err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
		return nil
	}
	return cmd
}
