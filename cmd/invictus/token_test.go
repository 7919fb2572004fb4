package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/invictus-network/invictus/adapters/httpapi"
	"github.com/invictus-network/invictus/adapters/natsjs"
	"github.com/invictus-network/invictus/internal/testenv"
)

// authenticate checks secret against the tokens stored under data, as the
// HTTP API would.
func authenticate(t *testing.T, data, secret string) error {
	t.Helper()
	ctx := testenv.Context(t)
	srv, err := natsjs.StartServer(ctx, natsjs.ServerConfig{StoreDir: filepath.Join(data, "nats"), DontListen: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := srv.Shutdown(context.WithoutCancel(ctx)); err != nil {
			t.Error(err)
		}
	}()
	nc, err := srv.Connect(ctx, nats.Name("test"))
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, natsjs.BucketTokens)
	if err != nil {
		t.Fatal(err)
	}
	_, err = httpapi.NewTokens(natsjs.NewKVStore(js, kv)).Authenticate(ctx, secret)
	return err
}

func TestTokenCommands(t *testing.T) {
	t.Parallel()
	data := t.TempDir()

	code, out, errOut := runArgs(t, "token", "create", "--data", data, "--org", "pt.apav", "--name", "case system", "--json")
	if code != exitOK {
		t.Fatalf("create: exit %d: %s", code, errOut)
	}
	var created tokenJSON
	if err := json.Unmarshal([]byte(out), &created); err != nil || !strings.HasPrefix(created.Token, httpapi.TokenPrefix) ||
		created.Org != "pt.apav" || created.Role != "organisation" || len(created.ID) != httpapi.TokenIDLen {
		t.Fatalf("create printed %q (%v)", out, err)
	}
	if err := authenticate(t, data, created.Token); err != nil {
		t.Fatalf("the created token does not authenticate: %v", err)
	}

	code, out, _ = runArgs(t, "token", "create", "--data", data, "--role", "coordinator")
	if code != exitOK || !strings.Contains(out, "inv_") || !strings.Contains(out, "shown again") {
		t.Fatalf("create (table): exit %d: %s", code, out)
	}

	code, out, _ = runArgs(t, "token", "list", "--data", data)
	if code != exitOK || !strings.Contains(out, created.ID) || !strings.Contains(out, "coordinator") || strings.Contains(out, "inv_") {
		t.Fatalf("list: exit %d:\n%s", code, out)
	}

	code, out, _ = runArgs(t, "token", "revoke", "--data", data, created.ID)
	if code != exitOK || !strings.Contains(out, "revoked "+created.ID) {
		t.Fatalf("revoke: exit %d: %s", code, out)
	}
	if err := authenticate(t, data, created.Token); err == nil {
		t.Fatal("a revoked token authenticates")
	}
	code, _, errOut = runArgs(t, "token", "revoke", "--data", data, created.ID)
	if code != exitError || !strings.Contains(errOut, "no such token") {
		t.Fatalf("revoke again: exit %d: %s", code, errOut)
	}

	for _, args := range [][]string{
		{"token", "create", "--data", data, "--role", "admin"},
		{"token", "revoke", "--data", data},
	} {
		if code, _, _ := runArgs(t, args...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d", args, code, exitUsage)
		}
	}
	if code, _, errOut := runArgs(t, "token", "create", "--data", data); code != exitError || !strings.Contains(errOut, "organisation id") {
		t.Fatalf("organisation token without --org: exit %d: %s", code, errOut)
	}
}

// `token create --expires` makes a token that carries its expiry, shown
// by list; bad values are usage errors.
func TestTokenCreateExpires(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	code, out, errOut := runArgs(t, "token", "create", "--data", data, "--org", "pt.apav", "--expires", "90d", "--json")
	if code != exitOK {
		t.Fatalf("create: exit %d: %s", code, errOut)
	}
	var created tokenJSON
	if err := json.Unmarshal([]byte(out), &created); err != nil || created.ExpiresAt == nil {
		t.Fatalf("create printed %q (%v)", out, err)
	}
	if d := time.Until(*created.ExpiresAt); d < 89*24*time.Hour || d > 91*24*time.Hour {
		t.Fatalf("expires in %s; want 90 days", d)
	}
	if err := authenticate(t, data, created.Token); err != nil {
		t.Fatalf("the token does not authenticate before its expiry: %v", err)
	}
	code, out, _ = runArgs(t, "token", "list", "--data", data)
	if code != exitOK || !strings.Contains(out, "EXPIRES") || !strings.Contains(out, created.ExpiresAt.Format(time.RFC3339)) {
		t.Fatalf("list: exit %d:\n%s", code, out)
	}
	for _, v := range []string{"soon", "-1h", "0d", "2000-01-01T00:00:00Z"} {
		code, _, errOut := runArgs(t, "token", "create", "--data", data, "--org", "pt.apav", "--expires", v)
		if code == exitOK {
			t.Errorf("--expires %s: accepted", v)
		} else if !strings.Contains(errOut, "expir") {
			t.Errorf("--expires %s: %s", v, errOut)
		}
	}
}
