package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/invictus-network/invictus/adapters/natsjs"
	"github.com/invictus-network/invictus/client"
	"github.com/invictus-network/invictus/directory"
	"github.com/invictus-network/invictus/internal/testenv"
	"github.com/invictus-network/invictus/seal"
)

// demoRevision returns the directory revision of the "directory loaded"
// log line.
func demoRevision(t *testing.T, logs string) string {
	t.Helper()
	m := regexp.MustCompile(`msg="directory loaded" organisations=\d+ services=\d+ revision=(\d+)`).FindStringSubmatch(logs)
	if m == nil {
		t.Fatalf("no directory loaded line:\n%s", logs)
	}
	return m[1]
}

// fileMode fails the test unless path has mode perm.
func fileMode(t *testing.T, path string, perm os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != perm {
		t.Errorf("%s has mode %v, want %v", path, fi.Mode().Perm(), perm)
	}
}

func TestServeDemo(t *testing.T) {
	t.Parallel()
	demo, err := directory.Demo(serveDemoSeedDefault)
	if err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	p := serveInProcess(t, fakeEnv(nil), "--data", data, "--demo")

	// The banner says what runs and where the credentials are.
	tokensFile := filepath.Join(data, demoDir, demoTokensFile)
	banner := p.out.String()
	for _, want := range []string{
		"INVICTUS demo: 143 organisations and 385 services", "http://" + p.HTTP, "nats://" + p.NATS, tokensFile,
		"TOKEN=$(jq -r '.\"pt.apav\"' " + tokensFile + ")",
	} {
		if !strings.Contains(banner, want) {
			t.Errorf("the banner has no %q:\n%s", want, banner)
		}
	}
	if len(demo.Organisations) != 143 || len(demo.Services) != 385 {
		t.Logf("the demo has %d organisations and %d services now: update the banner check", len(demo.Organisations), len(demo.Services))
	}

	// One token per organisation, in a file only its owner reads.
	fileMode(t, tokensFile, 0o600)
	tokensJSON, err := os.ReadFile(tokensFile)
	if err != nil {
		t.Fatal(err)
	}
	var tokens map[string]string
	if err := json.Unmarshal(tokensJSON, &tokens); err != nil {
		t.Fatal(err)
	}
	if len(tokens) != len(demo.Organisations) {
		t.Errorf("%d tokens for %d organisations", len(tokens), len(demo.Organisations))
	}

	// Each organisation's age recipient is in the directory, its identity
	// in DATA/demo/keys, and they match.
	keyFile := filepath.Join(data, demoDir, demoKeysDir, demoNATSOrg+demoKeyExt)
	fileMode(t, keyFile, 0o600)
	b, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	identity, err := seal.ParseIdentityFile(b)
	if err != nil {
		t.Fatal(err)
	}
	id, err := age.ParseX25519Identity(identity)
	if err != nil {
		t.Fatal(err)
	}
	var org struct {
		Attributes []struct {
			LinkType string `json:"link_type"`
			Value    string `json:"value"`
		} `json:"attributes"`
	}
	if code := apiCall(t, http.MethodGet, "http://"+p.HTTP+"/v1/organizations/"+demoNATSOrg, tokens[demoHTTPOrg], "", nil, &org); code != http.StatusOK {
		t.Fatalf("GET the organisation with the demo token of %s: %d", demoHTTPOrg, code)
	}
	var published string
	for _, a := range org.Attributes {
		if a.LinkType == "age_recipient" {
			published = a.Value
		}
	}
	if published != id.Recipient().String() {
		t.Errorf("published recipient %q, the key file's is %q", published, id.Recipient())
	}

	// Each organisation may connect over NATS with its own key, and has its
	// delivery consumer.
	ctx := testenv.Context(t)
	seed := filepath.Join(data, natsjs.KeysDir, demoNATSOrg+natsjs.SeedFileExt)
	fileMode(t, seed, 0o600)
	c, err := client.Connect(ctx, "nats://"+p.NATS, demoNATSOrg, client.WithNKeySeed(seed))
	if err != nil {
		t.Fatal(err)
	}
	if r, err := c.Recipient(ctx, demoNATSOrg); err != nil || r != published {
		t.Errorf("Recipient over NATS = %q, %v", r, err)
	}
	if _, err := c.JetStream().Consumer(ctx, natsjs.StreamDelivery, natsjs.OrgConsumerName(demoNATSOrg)); err != nil {
		t.Errorf("the consumer of %s: %v", demoNATSOrg, err)
	}
	if _, err := c.Inbox(ctx, 10); err != nil {
		t.Errorf("Inbox: %v", err)
	}
	c.Close()
	firstLogs := p.errOut.String()
	if code := p.stop(); code != exitOK {
		t.Fatalf("exit %d\n%s", code, p.errOut)
	}

	// A second start changes nothing: no record, no token, no key.
	again := serveInProcess(t, fakeEnv(nil), "--data", data, "--demo")
	logs := again.errOut.String()
	if !strings.Contains(logs, `msg="demo directory already loaded"`) || strings.Contains(logs, "demo tokens written") {
		t.Errorf("second start:\n%s", logs)
	}
	if r1, r2 := demoRevision(t, firstLogs), demoRevision(t, logs); r1 != r2 {
		t.Errorf("directory revision %s, then %s after a second start", r1, r2)
	}
	if b2, _ := os.ReadFile(tokensFile); string(b2) != string(tokensJSON) {
		t.Error("the tokens changed at the second start")
	}
	if b2, _ := os.ReadFile(keyFile); string(b2) != string(b) {
		t.Error("the age key changed at the second start")
	}
	if code := apiCall(t, http.MethodGet, "http://"+again.HTTP+"/v1/organizations/"+demoNATSOrg, tokens[demoHTTPOrg], "", nil, nil); code != http.StatusOK {
		t.Errorf("the token of the first start: %d", code)
	}
	if code := again.stop(); code != exitOK {
		t.Errorf("exit %d\n%s", code, again.errOut)
	}
}

// TestServeProvisionsNewOrganisations adds organisations to the directory
// of a running node: they get a NATS user and a delivery consumer without
// a restart.
func TestServeProvisionsNewOrganisations(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	p := serveInProcess(t, fakeEnv(nil), "--data", data)
	nc := connectAdmin(t, p.NATS, data)
	orgA, orgB := "pt.new-a", "pt.new-b"
	tokens := provisionTestOrgs(t, nc, testOrgsDirectory(t, orgA, orgB), false)

	ctx := testenv.Context(t)
	seed := filepath.Join(data, natsjs.KeysDir, orgB+natsjs.SeedFileExt)
	var c *client.Client
	waitFor(t, orgB+" to connect with its new key", func() bool {
		if _, err := os.Stat(seed); err != nil {
			return false
		}
		// A short bound on each try, which is then made again.
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		var err error
		c, err = client.Connect(ctx, "nats://"+p.NATS, orgB, client.WithNKeySeed(seed))
		if err != nil {
			return false
		}
		if _, err := c.JetStream().Consumer(ctx, natsjs.StreamDelivery, natsjs.OrgConsumerName(orgB)); err != nil {
			c.Close()
			return false
		}
		return true
	})
	defer c.Close()

	// The routing service sees them too: a referral from A reaches B.
	ref := referralFlow(t, p.HTTP, orgA, tokens[orgA], orgB, tokens[orgB])
	tl, err := c.Timeline(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if pl, ok := tl.Placement("p1"); !ok || pl.Status != "accepted" {
		t.Errorf("%s's timeline: %+v", orgB, tl)
	}
	if code := p.stop(); code != exitOK {
		t.Errorf("exit %d\n%s", code, p.errOut)
	}
}
