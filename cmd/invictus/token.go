package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/invictus-network/invictus/adapters/httpapi"
	"github.com/invictus-network/invictus/adapters/natsjs"
)

// newTokenCmd builds `invictus token create|list|revoke`: the HTTP API's
// tokens, kept (as SHA-256 hashes) in the tokens bucket of a node: the one
// running on --data, a stopped node's --data opened in process, or the
// server of --nats-url.
func newTokenCmd(out, errOut io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Create, list and revoke HTTP API tokens",
		Long: "Tokens authenticate HTTP API calls (Authorization: Bearer inv_...). Each belongs to\n" +
			"one organisation and has one role: organisation, coordinator or directory_admin.\n" +
			"Only the token's SHA-256 is stored: a token is shown once, when it is created.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newTokenCreateCmd(out, errOut), newTokenListCmd(out, errOut), newTokenRevokeCmd(out, errOut))
	return cmd
}

// tokenJSON is a token as `token create --json` and `token list --json`
// print it.
type tokenJSON struct {
	Token     string     `json:"token,omitempty"`
	ID        string     `json:"id"`
	Org       string     `json:"organisation,omitempty"`
	Role      string     `json:"role"`
	Name      string     `json:"name,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// parseExpires reads --expires: a duration from now (720h, 90d) or an
// RFC 3339 time.
func parseExpires(v string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	if days, ok := strings.CutSuffix(v, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n > 0 {
			return now.AddDate(0, 0, n), nil
		}
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return time.Time{}, fmt.Errorf("want a positive duration (720h, 90d) or an RFC 3339 time")
	}
	return now.Add(d), nil
}

func newTokenCreateCmd(out, errOut io.Writer) *cobra.Command {
	var org, role, name, expires string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create a token and print it (shown only this once)",
		Example: "  invictus token create --org pt.apav --role organisation --name \"case system\"\n" +
			"  invictus token create --org pt.apav --name \"pilot\" --expires 90d\n" +
			"  invictus token create --role coordinator --name \"national dashboard\" --json",
		Args: cobra.NoArgs,
	}
	f := cmd.Flags()
	f.StringVar(&org, "org", "", "the organisation the token acts for (required for --role organisation)")
	f.StringVar(&role, "role", string(httpapi.RoleOrganisation), "organisation, coordinator or directory_admin")
	f.StringVar(&name, "name", "", "what the token is for, for people")
	f.StringVar(&expires, "expires", "", "when the token stops being accepted: a duration from now (720h, 90d) or an RFC 3339 time; default never")
	f.BoolVar(&asJSON, "json", false, "print as JSON")
	sf := addStoreFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if !httpapi.Role(role).Valid() {
			return usageError{fmt.Errorf("--role %q: want organisation, coordinator or directory_admin", role)}
		}
		var opts []httpapi.TokenOption
		if expires != "" {
			at, err := parseExpires(expires, time.Now())
			if err != nil {
				return usageError{fmt.Errorf("--expires %q: %w", expires, err)}
			}
			opts = append(opts, httpapi.WithExpiry(at))
		}
		return withTokens(cmd, sf, errOut, func(ctx context.Context, tokens *httpapi.Tokens) error {
			secret, tok, err := tokens.Create(ctx, org, httpapi.Role(role), name, opts...)
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(out).Encode(tokenJSON{Token: secret, ID: tok.ID, Org: tok.Org, Role: string(tok.Role), Name: tok.Name, CreatedAt: tok.CreatedAt, ExpiresAt: tok.ExpiresAt})
			}
			tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
			fmt.Fprintf(tw, "token\t%s\nid\t%s\norganisation\t%s\nrole\t%s\n", secret, tok.ID, tok.Org, tok.Role)
			if tok.ExpiresAt != nil {
				fmt.Fprintf(tw, "expires\t%s\n", tok.ExpiresAt.Format(time.RFC3339))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			_, err = fmt.Fprintln(out, "Keep the token now: it is not stored and cannot be shown again.")
			return err
		})
	}
	return cmd
}

func newTokenListCmd(out, errOut io.Writer) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List the tokens (their ids, never the tokens)",
		Example: "  invictus token list --nats-url nats://127.0.0.1:4223",
		Args:    cobra.NoArgs,
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	sf := addStoreFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		return withTokens(cmd, sf, errOut, func(ctx context.Context, tokens *httpapi.Tokens) error {
			list, err := tokens.List(ctx)
			if err != nil {
				return err
			}
			if asJSON {
				rows := make([]tokenJSON, 0, len(list))
				for _, t := range list {
					rows = append(rows, tokenJSON{ID: t.ID, Org: t.Org, Role: string(t.Role), Name: t.Name, CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt})
				}
				return json.NewEncoder(out).Encode(rows)
			}
			tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tORGANISATION\tROLE\tCREATED\tEXPIRES\tNAME")
			now := time.Now()
			for _, t := range list {
				org := t.Org
				if org == "" {
					org = "-"
				}
				exp := "never"
				if t.ExpiresAt != nil {
					exp = t.ExpiresAt.Format(time.RFC3339)
					if t.Expired(now) {
						exp += " (expired)"
					}
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, org, t.Role, t.CreatedAt.Format(time.RFC3339), exp, t.Name)
			}
			return tw.Flush()
		})
	}
	return cmd
}

func newTokenRevokeCmd(out, errOut io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "revoke ID",
		Short:   "Revoke a token: it is refused from now on",
		Example: "  invictus token revoke 3f9a0c1b2d4e5f60",
		Args:    cobra.ExactArgs(1),
	}
	sf := addStoreFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return withTokens(cmd, sf, errOut, func(ctx context.Context, tokens *httpapi.Tokens) error {
			if err := tokens.Revoke(ctx, args[0]); err != nil {
				return err
			}
			_, err := fmt.Fprintf(out, "revoked %s\n", args[0])
			return err
		})
	}
	return cmd
}

// withTokens runs fn on the tokens of the node of --data (running, or its
// store opened in process) or of the server --nats-url names, within
// --timeout.
func withTokens(cmd *cobra.Command, f *storeFlags, errOut io.Writer, fn func(context.Context, *httpapi.Tokens) error) error {
	err := f.run(cmd.Context(), errOut, "invictus token", func(ctx context.Context, nc *nats.Conn, _ *slog.Logger) error {
		js, err := jetstream.New(nc)
		if err != nil {
			return fmt.Errorf("jetstream: %w", err)
		}
		// A server's bucket is used as it is; a fresh data directory gets one.
		kv, err := js.KeyValue(ctx, natsjs.BucketTokens)
		if errors.Is(err, jetstream.ErrBucketNotFound) {
			kv, err = js.CreateKeyValue(ctx, natsjs.HTTPBucketConfigs(natsjs.StreamsConfig{})[0])
		}
		if err != nil {
			return fmt.Errorf("tokens bucket: %w", err)
		}
		return fn(ctx, httpapi.NewTokens(natsjs.NewKVStore(js, kv)))
	})
	if errors.Is(err, httpapi.ErrTokenNotFound) {
		return fmt.Errorf("%w (see invictus token list)", err)
	}
	return err
}
