package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/invictus-network/invictus/adapters/natsjs"
	"github.com/invictus-network/invictus/directory"
	"github.com/invictus-network/invictus/events"
)

func newOrgCmd(out, errOut io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "org",
		Short: "Add or update one organisation with its services, or set a service's capacity",
		Long: "The org commands change one organisation of the stored directory. Every write\n" +
			"is a compare-and-set on the record's revision: when someone else changed the\n" +
			"record in between, the command fails with a conflict and writes nothing more.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(
		newOrgAddCmd(out, errOut),
		newOrgUpdateCmd(out, errOut),
		newOrgSetCapacityCmd(out, errOut),
		newOrgDecideCmd(out, errOut, "approve"),
		newOrgDecideCmd(out, errOut, "reject"),
	)
	return cmd
}

// readOneOrganisation reads FILE and checks that it holds exactly one
// organisation; services of other organisations are refused by Validate.
func readOneOrganisation(name, format string, stdin io.Reader, errOut io.Writer) (*directory.Directory, error) {
	d, err := readDirectoryFile(name, format, stdin)
	if err != nil {
		return nil, printProblems(errOut, name, err)
	}
	if len(d.Organisations) != 1 {
		return nil, fmt.Errorf("%s holds %d organisations; org add and org update take exactly one (use directory import for more)", name, len(d.Organisations))
	}
	return d, nil
}

func newOrgAddCmd(out, errOut io.Writer) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "add FILE",
		Short: "Add a new organisation and its services from a file",
		Long: "Add reads one organisation and its services from FILE (the CSV/YAML form, HSDS\n" +
			"JSON or directory JSON; '-' for stdin) and creates them. It fails if the\n" +
			"organisation or one of the services already exists: use org update then.\n" +
			"The organisation waits for a directory administrator's approval (the console's\n" +
			"New organisations page, or invictus org approve): until then none of its\n" +
			"services is proposed or shown in public search. --approved lists it at once.",
		Example: "  invictus org add apav.csv\n" +
			"  invictus org add --data ./data --format yaml apav.yaml\n" +
			"  invictus org add --approved apav.csv",
		Args: cobra.ExactArgs(1),
	}
	var approved bool
	cmd.Flags().BoolVar(&approved, "approved", false, "list the organisation at once instead of waiting for a directory administrator's approval")
	cmd.Flags().StringVar(&format, "format", "", "file format: hsds, json, csv or yaml (default: by extension and content)")
	sf := addStoreFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		d, err := readOneOrganisation(args[0], format, cmd.InOrStdin(), errOut)
		if err != nil {
			return err
		}
		org := &d.Organisations[0]
		org.Pending = !approved
		return sf.withStore(cmd, errOut, func(ctx context.Context, s *natsjs.DirectoryStore) error {
			rev, err := s.PutOrganisation(ctx, org, 0)
			if errors.Is(err, directory.ErrConflict) {
				return fmt.Errorf("organisation %s already exists; use org update: %w", org.ID, err)
			}
			if err != nil {
				return err
			}
			for i := range d.Services {
				sv := &d.Services[i]
				r, err := s.PutService(ctx, sv, 0)
				if errors.Is(err, directory.ErrConflict) {
					return fmt.Errorf("service %s already exists; use org update: %w", sv.ID, err)
				}
				if err != nil {
					return err
				}
				rev = max(rev, r)
			}
			_, err = fmt.Fprintf(out, "added %s with %d services (revision %d)\n", org.ID, len(d.Services), rev)
			if err == nil && org.Pending {
				_, err = fmt.Fprintf(out, "%s waits for a directory administrator's approval: the console's New organisations page, or invictus org approve %s\n", org.ID, org.ID)
			}
			return err
		})
	}
	return cmd
}

func newOrgUpdateCmd(out, errOut io.Writer) *cobra.Command {
	var format string
	var expect uint64
	var prune bool
	cmd := &cobra.Command{
		Use:   "update FILE",
		Short: "Update an existing organisation and its services from a file",
		Long: "Update reads one organisation and its services from FILE and writes them over\n" +
			"the stored ones with compare-and-set: each record is read, then replaced only if\n" +
			"nobody changed it in between. Services in FILE that are not stored yet are\n" +
			"added; stored services missing from FILE are kept, or deleted with --prune.\n" +
			"--expect-revision makes the update fail unless the organisation is still at the\n" +
			"revision you read earlier (see directory export --format json).",
		Example: "  invictus org update apav.csv\n" +
			"  invictus org update --prune --expect-revision 42 apav.json",
		Args: cobra.ExactArgs(1),
	}
	cmd.Flags().StringVar(&format, "format", "", "file format: hsds, json, csv or yaml (default: by extension and content)")
	cmd.Flags().Uint64Var(&expect, "expect-revision", 0, "fail unless the organisation is at this revision (0: the one read now)")
	cmd.Flags().BoolVar(&prune, "prune", false, "delete the organisation's stored services that FILE does not list")
	sf := addStoreFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		d, err := readOneOrganisation(args[0], format, cmd.InOrStdin(), errOut)
		if err != nil {
			return err
		}
		org := &d.Organisations[0]
		return sf.withStore(cmd, errOut, func(ctx context.Context, s *natsjs.DirectoryStore) error {
			was, cur, err := s.GetOrganisation(ctx, org.ID)
			if errors.Is(err, directory.ErrNotFound) {
				return fmt.Errorf("organisation %s does not exist; use org add: %w", org.ID, err)
			}
			if err != nil {
				return err
			}
			if expect != 0 && expect != cur {
				return fmt.Errorf("organisation %s is at revision %d, not %d: %w", org.ID, cur, expect, directory.ErrConflict)
			}
			org.Pending = was.Pending // only an approval lists it
			rev, err := s.PutOrganisation(ctx, org, cur)
			if err != nil {
				return err
			}
			stored, err := s.ServiceRevisions(ctx, org.ID)
			if err != nil {
				return err
			}
			added, updated, deleted := 0, 0, 0
			for i := range d.Services {
				sv := &d.Services[i]
				r, err := s.PutService(ctx, sv, stored[sv.ID])
				if err != nil {
					return err
				}
				if stored[sv.ID] == 0 {
					added++
				} else {
					updated++
				}
				rev = max(rev, r)
			}
			if prune {
				ids := make([]string, 0, len(stored))
				for id := range stored {
					ids = append(ids, id)
				}
				slices.Sort(ids)
				for _, id := range ids {
					if slices.ContainsFunc(d.Services, func(sv directory.Service) bool { return sv.ID == id }) {
						continue
					}
					if err := s.DeleteService(ctx, id, stored[id]); err != nil {
						return err
					}
					deleted++
				}
			}
			_, err = fmt.Fprintf(out, "updated %s: %d services updated, %d added, %d deleted (revision %d)\n",
				org.ID, updated, added, deleted, rev)
			return err
		})
	}
	return cmd
}

func newOrgSetCapacityCmd(out, errOut io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "set-capacity SERVICE accepting|waitlist|full",
		Short: "Set the capacity status of a service",
		Long: "Set-capacity records whether a service is accepting referrals, has a waiting\n" +
			"list, or is full (the matcher never offers a full service), with the time.\n" +
			"A concurrent change of the service is retried a bounded number of times.",
		Example: "  invictus org set-capacity --data \"$DATA\" pt.apav.support full\n" +
			"  invictus org set-capacity --nats-url nats://hub:4222 fi.riku.helsinki accepting",
		Args: cobra.ExactArgs(2),
	}
	sf := addStoreFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		id, status := args[0], args[1]
		if !events.IsServiceID(id) {
			return usageError{fmt.Errorf("%q is not a service id (<country>.<org>.<service>)", id)}
		}
		if !slices.Contains(events.CapacityStatuses, status) {
			return usageError{fmt.Errorf("capacity %q: want %s", status, strings.Join(events.CapacityStatuses, ", "))}
		}
		return sf.withStore(cmd, errOut, func(ctx context.Context, s *natsjs.DirectoryStore) error {
			rev, err := s.SetCapacity(ctx, id, status)
			if errors.Is(err, directory.ErrNotFound) {
				return notFoundService(ctx, s, id)
			}
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(out, "%s: %s (revision %d)\n", id, status, rev)
			return err
		})
	}
	return cmd
}

// notFoundService is the error of a service id that the directory lacks:
// it names the services the organisation has, if any.
func notFoundService(ctx context.Context, s *natsjs.DirectoryStore, id string) error {
	org := id[:strings.LastIndexByte(id, '.')]
	d, _, err := s.Load(ctx)
	if err != nil || d.Organisation(org) == nil {
		return fmt.Errorf("no service %s in the directory: organisation %s is not there either ('invictus directory export' lists what is): %w", id, org, directory.ErrNotFound)
	}
	var ids []string
	for _, sv := range d.ServicesOf(org) {
		ids = append(ids, sv.ID)
	}
	if len(ids) == 0 {
		return fmt.Errorf("no service %s in the directory: %s has no services: %w", id, org, directory.ErrNotFound)
	}
	return fmt.Errorf("no service %s in the directory; the services of %s are %s: %w", id, org, strings.Join(ids, ", "), directory.ErrNotFound)
}

// newOrgDecideCmd is org approve or org reject: a directory
// administrator's decision about an organisation waiting for approval, as
// the console's New organisations page makes it.
func newOrgDecideCmd(out, errOut io.Writer, verb string) *cobra.Command {
	short := map[string]string{
		"approve": "List an organisation that waits for approval: its services become candidates",
		"reject":  "Remove an organisation that waits for approval, and its services",
	}[verb]
	cmd := &cobra.Command{
		Use:   verb + " ORG",
		Short: short,
		Long: short + ".\n" +
			"Only an organisation added with org add (without --approved) waits for approval;\n" +
			"any other is refused and nothing changes.",
		Example: "  invictus org " + verb + " --data ./data pt.novo",
		Args:    cobra.ExactArgs(1),
	}
	sf := addStoreFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		id := args[0]
		if !events.IsOrgID(id) {
			return usageError{fmt.Errorf("%q is not an organisation id (cc.name)", id)}
		}
		return sf.withStore(cmd, errOut, func(ctx context.Context, s *natsjs.DirectoryStore) error {
			var err error
			if verb == "approve" {
				var rev uint64
				if rev, err = s.ApproveOrganisation(ctx, id); err == nil {
					_, err = fmt.Fprintf(out, "approved %s (revision %d): its services are listed now\n", id, rev)
				}
			} else if err = s.RejectOrganisation(ctx, id); err == nil {
				_, err = fmt.Fprintf(out, "rejected %s: it and its services were removed from the directory\n", id)
			}
			if errors.Is(err, natsjs.ErrNotPending) {
				return fmt.Errorf("%s is not waiting for approval; nothing changed: %w", id, err)
			}
			return err
		})
	}
	return cmd
}
