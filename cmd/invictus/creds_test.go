package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

func TestCredsCommand(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	file := filepath.Join(t.TempDir(), "pt.apav.nk")
	code, out, errOut := runArgs(t, "creds", "pt.apav", "--data", data, "-o", file)
	if code != exitOK || !strings.Contains(out, "wrote the credentials of pt.apav") || !strings.Contains(errOut, "created a new key") {
		t.Fatalf("creds: exit %d\n%s%s", code, out, errOut)
	}
	fi, err := os.Stat(file)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file mode %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	// A standard nkey seed file: nats.go (and so the nats CLI's --nkey)
	// reads it.
	if _, err := nats.NkeyOptionFromSeed(file); err != nil {
		t.Errorf("nats.NkeyOptionFromSeed: %v", err)
	}
	b, _ := os.ReadFile(file)
	kp, err := nkeys.ParseDecoratedUserNKey(b)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := kp.PublicKey()
	if stored, err := os.ReadFile(filepath.Join(data, "keys", "pt.apav.nk")); err != nil || string(stored) != string(b) {
		t.Errorf("the key store holds another key: %v", err)
	}

	// Again: the same key, not a new one, and as JSON.
	code, out, errOut = runArgs(t, "creds", "pt.apav", "--data", data, "--json")
	var res credsJSON
	cwJSON(t, out, &res)
	if code != exitOK || res.PublicKey != pub || res.Created || res.InboxPrefix != "_INBOX_pt_apav" || res.Consumer != "org_pt_apav" || !strings.Contains(res.Seed, "SU") {
		t.Errorf("creds --json: exit %d %+v %s", code, res, errOut)
	}
	// To standard output.
	if code, out, _ := runArgs(t, "creds", "pt.apav", "--data", data); code != exitOK || out != string(b) {
		t.Errorf("creds to stdout: exit %d\n%s", code, out)
	}
	// The administrator's key.
	if code, _, _ := runArgs(t, "creds", "admin", "--data", data, "-o", filepath.Join(t.TempDir(), "admin.nk")); code != exitOK {
		t.Errorf("creds admin: exit %d", code)
	}
	for _, bad := range []string{"../etc/passwd", "apav", "pt.*"} {
		if code, _, _ := runArgs(t, "creds", bad, "--data", data); code != exitUsage {
			t.Errorf("creds %q: exit %d, want %d", bad, code, exitUsage)
		}
	}
}
