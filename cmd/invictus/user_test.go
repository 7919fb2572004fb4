package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/invictus-network/invictus/events"
)

// TestUserCommands adds people to a stopped node's data directory (with
// a password, and by invitation), lists them and disables one.
func TestUserCommands(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("a long enough password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runArgs(t, "user", "add", "ana", "--data", data, "--org", "pt.apav", "--password-file", pw, "--json")
	if code != exitOK {
		t.Fatalf("add: exit %d: %s", code, errOut)
	}
	var ana userJSON
	if err := json.Unmarshal([]byte(out), &ana); err != nil || ana.Username != "ana" || ana.Role != "caseworker" || !events.IsStaffRef(ana.StaffRef) {
		t.Fatalf("add printed %q (%v)", out, err)
	}
	if strings.Contains(out, "password") {
		t.Errorf("add printed a password field: %s", out)
	}

	code, out, errOut = runArgs(t, "user", "add", "olga", "--data", data, "--org", "pt.apav", "--role", "org_admin", "--base-url", "https://node.example/")
	if code != exitOK || !strings.Contains(out, "https://node.example/console/invite/") {
		t.Fatalf("invite: exit %d: %s %s", code, out, errOut)
	}

	code, out, _ = runArgs(t, "user", "list", "--data", data)
	if code != exitOK || !strings.Contains(out, "ana") || !strings.Contains(out, ana.StaffRef) || strings.Contains(out, "olga") {
		t.Fatalf("list: exit %d:\n%s", code, out)
	}

	code, out, _ = runArgs(t, "user", "disable", "ana", "--data", data)
	if code != exitOK || !strings.Contains(out, "disabled ana") {
		t.Fatalf("disable: exit %d: %s", code, out)
	}
	code, out, _ = runArgs(t, "user", "list", "--data", data, "--json")
	var rows []userJSON
	if err := json.Unmarshal([]byte(out), &rows); code != exitOK || err != nil || len(rows) != 1 || !rows[0].Disabled {
		t.Fatalf("list --json: exit %d: %s", code, out)
	}

	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"user", "add", "x", "--data", data, "--org", "pt.apav"}, exitUsage, "a name is"},
		{[]string{"user", "add", "bea", "--data", data, "--role", "boss"}, exitUsage, "--role"},
		{[]string{"user", "add", "bea", "--data", data, "--role", "caseworker"}, exitUsage, "role"},
		{[]string{"user", "add", "ana", "--data", data, "--org", "pt.apav", "--password-file", pw}, exitError, "taken"},
		{[]string{"user", "disable", "nobody", "--data", data}, exitError, "invictus user list"},
	} {
		code, _, errOut := runArgs(t, tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, %q", tc.args, code, errOut)
		}
	}
	code, out, _ = runArgs(t, "user", "--help")
	if code != exitOK || !strings.Contains(out, "argon2id") || !strings.Contains(out, "disable") {
		t.Errorf("help: %s", out)
	}
}
