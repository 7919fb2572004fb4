package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"

	"filippo.io/age"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/invictus-network/invictus/adapters/httpapi"
	"github.com/invictus-network/invictus/adapters/natsjs"
	"github.com/invictus-network/invictus/directory"
	"github.com/invictus-network/invictus/seal"
)

// Files of --demo, under the data directory:
//
//	DATA/demo/tokens.json        {"pt.apav": "inv_...", ...}: an HTTP token per organisation (0600)
//	DATA/demo/keys/<org>.age     each organisation's age identity, to open handovers (0600)
//	DATA/keys/<org>.nk           each organisation's NATS nkey seed (the server's key store)
const (
	demoDir        = "demo"
	demoKeysDir    = "keys"
	demoTokensFile = "tokens.json"
	demoKeyExt     = ".age"
	// demoTokenName names the demo tokens in `invictus token list`.
	demoTokenName = "demo"
)

// The two organisations of the README's walkthrough and of the banner: one
// that speaks only HTTP, one that speaks only NATS.
const (
	demoHTTPOrg = "pt.apav"
	demoNATSOrg = "pt.amcv"
)

// demoComponent loads the demo directory into the bucket, with an age key
// pair per organisation whose recipient it publishes. A second start finds
// the directory loaded and the keys on disk, and changes nothing.
type demoComponent struct {
	data   string
	seed   int64
	conn   func() *nats.Conn
	logger *slog.Logger

	dir *directory.Directory // the demo directory, with the recipients
}

func (d *demoComponent) Name() string { return "demo" }

// Start loads the demo directory unless it is loaded already.
func (d *demoComponent) Start(ctx context.Context) error {
	dir, err := directory.Demo(d.seed)
	if err != nil {
		return err
	}
	keysDir := filepath.Join(d.data, demoDir, demoKeysDir)
	if err := os.MkdirAll(keysDir, 0o700); err != nil {
		return &flagError{flag: "data", value: d.data, err: fmt.Errorf("%w: %w", errDataNotWritable, err)}
	}
	for i := range dir.Organisations {
		o := &dir.Organisations[i]
		if o.AgeRecipient, err = demoAgeKey(keysDir, o.ID); err != nil {
			return fmt.Errorf("demo: age key of %s: %w", o.ID, err)
		}
	}
	d.dir = dir

	js, err := jetstream.New(d.conn())
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	store, err := natsjs.NewDirectoryStore(ctx, js, natsjs.DirectoryStoreConfig{Logger: d.logger})
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	current, _, err := store.Load(ctx)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if demoLoaded(current, dir) {
		d.logger.Info("demo directory already loaded", slog.Int("organisations", len(dir.Organisations)))
		return nil
	}
	res, err := store.ImportDirectory(ctx, dir, nil)
	if err != nil {
		return fmt.Errorf("demo: import the directory: %w", err)
	}
	d.logger.Info("demo directory loaded",
		slog.Int("created", res.Created), slog.Int("updated", res.Updated), slog.Int("unchanged", res.Unchanged))
	return nil
}

// Stop does nothing: the demo directory stays.
func (d *demoComponent) Stop(context.Context) error { return nil }

// orgs returns the ids of the demo organisations.
func (d *demoComponent) orgs() []string {
	out := make([]string, 0, len(d.dir.Organisations))
	for _, o := range d.dir.Organisations {
		out = append(out, o.ID)
	}
	return out
}

// demoLoaded reports whether current holds every organisation of demo
// with the same age recipient: then the demo is loaded, and what was
// changed since (capacity, services) is left alone.
func demoLoaded(current, demo *directory.Directory) bool {
	have := make(map[string]string, len(current.Organisations))
	for _, o := range current.Organisations {
		have[o.ID] = o.AgeRecipient
	}
	for _, o := range demo.Organisations {
		if r, ok := have[o.ID]; !ok || r != o.AgeRecipient {
			return false
		}
	}
	return len(current.Services) > 0
}

// demoAgeKey returns the age recipient of org, reading its identity from
// dir/<org>.age or creating that file (mode 0600) with a new key.
func demoAgeKey(dir, org string) (string, error) {
	path := filepath.Join(dir, org+demoKeyExt)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		k, err := seal.GenerateKey()
		if err != nil {
			return "", err
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return "", err
		}
		_, werr := f.Write(k.File())
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return "", werr
		}
		return k.Recipient, nil
	}
	if err != nil {
		return "", err
	}
	identity, err := seal.ParseIdentityFile(b)
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	id, err := age.ParseX25519Identity(identity)
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return id.Recipient().String(), nil
}

// demoTokensComponent gives every demo organisation an HTTP API token
// (role organisation) and writes them to DATA/demo/tokens.json. Tokens of
// an earlier start that still authenticate are kept.
type demoTokensComponent struct {
	data   string
	demo   *demoComponent
	api    *apiComponent
	logger *slog.Logger

	path   string
	tokens map[string]string
}

func (t *demoTokensComponent) Name() string { return "demo tokens" }

// Start creates the tokens that are missing and writes the file.
func (t *demoTokensComponent) Start(ctx context.Context) error {
	t.path = filepath.Join(t.data, demoDir, demoTokensFile)
	old := map[string]string{}
	if b, err := os.ReadFile(t.path); err == nil {
		if err := json.Unmarshal(b, &old); err != nil {
			t.logger.Warn("demo tokens file unreadable; making new tokens", slog.String("file", t.path))
			old = map[string]string{}
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("demo tokens: %w", err)
	}
	tokens := t.api.tokens()
	t.tokens = make(map[string]string, len(old))
	created := 0
	for _, org := range t.demo.orgs() {
		if secret, ok := old[org]; ok {
			tok, err := tokens.Authenticate(ctx, secret)
			if err == nil && tok.Org == org && tok.Role == httpapi.RoleOrganisation {
				t.tokens[org] = secret
				continue
			}
			if err != nil && !errors.Is(err, httpapi.ErrBadToken) {
				return fmt.Errorf("demo tokens: %w", err)
			}
		}
		secret, _, err := tokens.Create(ctx, org, httpapi.RoleOrganisation, demoTokenName)
		if err != nil {
			return fmt.Errorf("demo tokens: %s: %w", org, err)
		}
		t.tokens[org] = secret
		created++
	}
	if created == 0 && len(old) == len(t.tokens) {
		return nil
	}
	b, err := json.MarshalIndent(t.tokens, "", "  ")
	if err != nil {
		return err
	}
	if err := writeBytesAtomic(t.path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("demo tokens: %w", err)
	}
	t.logger.Info("demo tokens written", slog.String("file", t.path), slog.Int("new", created))
	return nil
}

// Stop does nothing: the tokens stay valid.
func (t *demoTokensComponent) Stop(context.Context) error { return nil }

// printDemoBanner tells a newcomer what runs and how to try it; embedded
// says whether the node runs the embedded NATS server, whose keys it
// shows.
func printDemoBanner(w io.Writer, data string, embedded bool, addrs map[string]string, demo *demoComponent, tokens *demoTokensComponent) {
	orgs, svcs := len(demo.dir.Organisations), len(demo.dir.Services)
	tokensFile := filepath.Join(data, demoDir, demoTokensFile)
	var b strings.Builder
	fmt.Fprintf(&b, "\nINVICTUS demo: %d organisations and %d services (real organisations marked illustrative, local offices synthetic).\n\n", orgs, svcs)
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  HTTP API\thttp://%s\t(OpenAPI at /v1/openapi.json)\n", addrs["http"])
	fmt.Fprintf(tw, "  NATS\tnats://%s\t\n", addrs["nats"])
	fmt.Fprintf(tw, "  HTTP tokens\t%s\t(one per organisation)\n", tokensFile)
	if embedded {
		fmt.Fprintf(tw, "  NATS keys\t%s\t(nkey seeds)\n", filepath.Join(data, natsjs.KeysDir, "<org>"+natsjs.SeedFileExt))
	}
	fmt.Fprintf(tw, "  age keys\t%s\t(to open handovers)\n", filepath.Join(data, demoDir, demoKeysDir, "<org>"+demoKeyExt))
	_ = tw.Flush()
	fmt.Fprintf(&b, "\nTry it, as %s over HTTP:\n\n", demoHTTPOrg)
	fmt.Fprintf(&b, "  TOKEN=$(jq -r '.\"%s\"' %s)\n", demoHTTPOrg, tokensFile)
	fmt.Fprintf(&b, "  curl -s -H \"Authorization: Bearer $TOKEN\" http://%s/v1/organizations/%s\n", addrs["http"], demoNATSOrg)
	if slices.Contains(demo.orgs(), demoNATSOrg) && tokens != nil {
		fmt.Fprintf(&b, "\nREADME.md walks a referral from %s (HTTP) to %s (NATS) and back.\n", demoHTTPOrg, demoNATSOrg)
	}
	b.WriteString("\n")
	_, _ = io.WriteString(w, b.String())
}
