package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/invictus-network/invictus/adapters/natsjs"
	"github.com/invictus-network/invictus/adapters/web/console"
)

// newUserCmd builds `invictus user add|list|disable`: the people of the
// web console, kept in the accounts bucket of a node (the one running on
// --data, a stopped node's --data opened in process, or the server of
// --nats-url), as `invictus token` keeps the API's tokens.
func newUserCmd(out, errOut io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "user",
		Short: "Add, list and disable the people of the web console",
		Long: "People sign in to the web console (/console/) with a name, a password and, for every\n" +
			"role that sees case data, a code from an authenticator app set up at the first sign-in.\n" +
			"Roles: caseworker and org_admin (of one --org), coordinator (--scope: a country such as\n" +
			"pt, or eu), directory_admin. Passwords are stored as argon2id hashes only. Each person\n" +
			"gets a pseudonymous staff id, the only trace of her in the commands she sends.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newUserAddCmd(out, errOut), newUserListCmd(out, errOut), newUserDisableCmd(out, errOut))
	return cmd
}

// userJSON is a person as `user add --json` and `user list --json` print
// her: never a password or a second-factor secret.
type userJSON struct {
	Username   string    `json:"username"`
	Org        string    `json:"organisation,omitempty"`
	Role       string    `json:"role"`
	Scope      string    `json:"scope,omitempty"`
	StaffRef   string    `json:"staff_ref,omitempty"`
	Enrolled   bool      `json:"second_factor"`
	Disabled   bool      `json:"disabled,omitempty"`
	CreatedAt  time.Time `json:"created_at,omitzero"`
	Invitation string    `json:"invitation,omitempty"`
}

func toUserJSON(u *console.User) userJSON {
	return userJSON{Username: u.Username, Org: u.Org, Role: string(u.Role), Scope: u.Scope, StaffRef: u.StaffRef,
		Enrolled: u.Enrolled(), Disabled: u.Disabled, CreatedAt: u.CreatedAt}
}

func newUserAddCmd(out, errOut io.Writer) *cobra.Command {
	var org, role, scope, passwordFile, baseURL string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "add NAME",
		Short: "Invite a person by a single-use link, or create her account with a password",
		Long: "Without --password-file, add prints an invitation link that works once, for 7 days:\n" +
			"the person opens it, chooses her password and sets up her second factor. With\n" +
			"--password-file (\"-\" reads standard input), the account is created at once; the\n" +
			"second factor is set up at the first sign-in.",
		Example: "  invictus user add ana --org pt.apav --role caseworker --data ./data\n" +
			"  invictus user add olga --org pt.apav --role org_admin --base-url https://invictus.example.org\n" +
			"  printf '%s\\n' \"$PASSWORD\" | invictus user add rui --role coordinator --scope pt --password-file -",
		Args: cobra.ExactArgs(1),
	}
	f := cmd.Flags()
	f.StringVar(&org, "org", "", "the person's organisation (required for caseworker and org_admin)")
	f.StringVar(&role, "role", string(console.RoleCaseworker), "caseworker, org_admin, coordinator or directory_admin")
	f.StringVar(&scope, "scope", "", "a coordinator's country (pt) or eu")
	f.StringVar(&passwordFile, "password-file", "", "read the password from this file (- for standard input) instead of inviting")
	f.StringVar(&baseURL, "base-url", "", "the node's address, printed before the invitation's path (default: the path alone)")
	f.BoolVar(&asJSON, "json", false, "print as JSON")
	sf := addStoreFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		r := console.Role(role)
		if !r.Valid() {
			return usageError{fmt.Errorf("--role %q: want caseworker, org_admin, coordinator or directory_admin", role)}
		}
		password := ""
		if passwordFile != "" {
			var err error
			if password, err = readPassword(cmd.InOrStdin(), passwordFile); err != nil {
				return usageError{fmt.Errorf("--password-file: %w", err)}
			}
		}
		return withAccounts(cmd, sf, errOut, func(ctx context.Context, a *console.Accounts) error {
			if password != "" {
				u, err := a.Add(ctx, args[0], r, org, scope, password)
				if err != nil {
					return userError(err)
				}
				if asJSON {
					return json.NewEncoder(out).Encode(toUserJSON(u))
				}
				_, err = fmt.Fprintf(out, "added %s (%s, staff id %s); the second factor is set up at the first sign-in\n", u.Username, u.Role, u.StaffRef)
				return err
			}
			if _, err := a.Get(ctx, args[0]); err == nil {
				return userError(console.ErrUserExists)
			}
			secret, err := a.CreateInvite(ctx, console.Invite{Org: org, Role: r, Scope: scope, Username: args[0], CreatedBy: "cli"})
			if err != nil {
				return userError(err)
			}
			link := strings.TrimSuffix(baseURL, "/") + console.Prefix + "invite/" + secret
			if asJSON {
				return json.NewEncoder(out).Encode(userJSON{Username: strings.ToLower(args[0]), Org: org, Role: role, Scope: scope, Invitation: link})
			}
			_, err = fmt.Fprintf(out, "invitation for %s (%s): %s\nGive the link to the person only; it works once, for 7 days.\n", strings.ToLower(args[0]), role, link)
			return err
		})
	}
	return cmd
}

// readPassword reads the first line of a file, or of in for "-".
func readPassword(in io.Reader, name string) (string, error) {
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return "", err
		}
		defer f.Close()
		in = f
	}
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("no password in it")
	}
	return line, nil
}

// userError makes the account errors usage errors where the command line
// is at fault.
func userError(err error) error {
	for _, e := range []error{console.ErrBadUsername, console.ErrBadRole, console.ErrWeakPassword} {
		if errors.Is(err, e) {
			return usageError{err}
		}
	}
	return err
}

func newUserListCmd(out, errOut io.Writer) *cobra.Command {
	var org string
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List the people (never a password or a second-factor secret)",
		Example: "  invictus user list --data ./data\n  invictus user list --org pt.apav --json",
		Args:    cobra.NoArgs,
	}
	cmd.Flags().StringVar(&org, "org", "", "only the people of this organisation")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	sf := addStoreFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		return withAccounts(cmd, sf, errOut, func(ctx context.Context, a *console.Accounts) error {
			list, err := a.List(ctx, org)
			if err != nil {
				return err
			}
			if asJSON {
				rows := make([]userJSON, 0, len(list))
				for _, u := range list {
					rows = append(rows, toUserJSON(u))
				}
				return json.NewEncoder(out).Encode(rows)
			}
			tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tORGANISATION\tROLE\tSTAFF ID\tSECOND FACTOR\tSTATE")
			for _, u := range list {
				o := u.Org
				if o == "" {
					o = "-"
					if u.Scope != "" {
						o = "(" + u.Scope + ")"
					}
				}
				state, factor := "active", "no"
				if u.Disabled {
					state = "disabled"
				}
				if u.Enrolled() {
					factor = "yes"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", u.Username, o, u.Role, u.StaffRef, factor, state)
			}
			return tw.Flush()
		})
	}
	return cmd
}

func newUserDisableCmd(out, errOut io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "disable NAME",
		Short:   "Disable a person's account: she can no longer sign in, and her sessions end",
		Example: "  invictus user disable ana --data ./data",
		Args:    cobra.ExactArgs(1),
	}
	sf := addStoreFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return withAccounts(cmd, sf, errOut, func(ctx context.Context, a *console.Accounts) error {
			u, err := a.Disable(ctx, args[0])
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(out, "disabled %s (staff id %s)\n", u.Username, u.StaffRef)
			return err
		})
	}
	return cmd
}

// withAccounts runs fn on the accounts of the node of --data (running, or
// its store opened in process) or of the server --nats-url names, within
// --timeout.
func withAccounts(cmd *cobra.Command, f *storeFlags, errOut io.Writer, fn func(context.Context, *console.Accounts) error) error {
	err := f.run(cmd.Context(), errOut, "invictus user", func(ctx context.Context, nc *nats.Conn, _ *slog.Logger) error {
		stores, err := natsjs.NewConsoleStores(ctx, nc, natsjs.StreamsConfig{})
		if err != nil {
			return err
		}
		return fn(ctx, console.NewAccounts(stores.Accounts, console.AccountsConfig{}))
	})
	if errors.Is(err, console.ErrUserNotFound) {
		return fmt.Errorf("%w (see invictus user list)", err)
	}
	return err
}
