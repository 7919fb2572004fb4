package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/invictus-network/invictus/directory"
	"github.com/invictus-network/invictus/events"
)

// exportJSON exports the directory of data as directory JSON.
func exportJSON(t *testing.T, data string) *directory.Directory {
	t.Helper()
	code, out, errOut := cliRun(t, "directory", "export", "--data", data, "--format", "json")
	if code != exitOK {
		t.Fatalf("directory export --data: exit %d\n%s", code, errOut)
	}
	var d directory.Directory
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatalf("export: %v", err)
	}
	return &d
}

// The directory, org and token commands given --data of a running node
// connect to it as the administrator (the node holds the store: opening
// it in process is neither possible nor safe), and open the store in
// process again once the node has stopped, whatever file it left.
func TestStoreCommandsOnRunningNode(t *testing.T) {
	data := t.TempDir()
	p := serveInProcess(t, fakeEnv(nil), "--data", data, "--demo")

	b, err := os.ReadFile(filepath.Join(data, nodeFileName))
	if err != nil {
		t.Fatalf("serve wrote no %s: %v", nodeFileName, err)
	}
	var info nodeInfo
	if err := json.Unmarshal(b, &info); err != nil || info.NATS != p.NATS || info.HTTP != p.HTTP || info.PID != os.Getpid() {
		t.Fatalf("%s = %s (%v); want nats %s, http %s, pid %d", nodeFileName, b, err, p.NATS, p.HTTP, os.Getpid())
	}

	code, out, errOut := cliRun(t, "directory", "stats", "--data", data, "--log-level", "debug")
	if code != exitOK {
		t.Fatalf("directory stats --data: exit %d\n%s", code, errOut)
	}
	if !strings.Contains(errOut, "connected to the running node") {
		t.Errorf("stats did not use the running node:\n%s", errOut)
	}
	for _, want := range []string{"country", "\npt ", "\nfi ", "\n" + events.NeedSupportEmotional + " "} {
		if !strings.Contains(out, want) {
			t.Errorf("stats output lacks %q:\n%s", want, out)
		}
	}

	d := exportJSON(t, data)
	if len(d.Services) == 0 {
		t.Fatal("the demo directory has no services")
	}
	svc := d.Services[0]
	status := events.CapacityFull
	if svc.Capacity.Status == status {
		status = events.CapacityWaitlist
	}
	code, out, errOut = cliRun(t, "org", "set-capacity", "--data", data, svc.ID, status)
	if code != exitOK || !strings.Contains(out, svc.ID+": "+status) {
		t.Fatalf("org set-capacity --data: exit %d\n%s%s", code, out, errOut)
	}
	for _, s := range exportJSON(t, data).Services {
		if s.ID == svc.ID && s.Capacity.Status != status {
			t.Errorf("%s capacity = %q after set-capacity %s", s.ID, s.Capacity.Status, status)
		}
	}

	code, out, errOut = cliRun(t, "token", "create", "--data", data, "--role", "coordinator", "--name", "cli test", "--json")
	if code != exitOK {
		t.Fatalf("token create --data: exit %d\n%s", code, errOut)
	}
	var tok tokenJSON
	if err := json.Unmarshal([]byte(out), &tok); err != nil || !strings.HasPrefix(tok.Token, "inv_") {
		t.Fatalf("token create: %q (%v)", out, err)
	}
	// The running node's HTTP API knows the token at once.
	var page struct {
		TotalItems int `json:"total_items"`
	}
	if st := apiCall(t, "GET", "http://"+p.HTTP+"/v1/organizations?per_page=1", tok.Token, "", nil, &page); st != 200 || page.TotalItems == 0 {
		t.Errorf("GET /v1/organizations with the new token: %d, %+v", st, page)
	}

	// A second node on the same data is refused, naming the first.
	code, _, errOut = cliRun(t, "serve", "--data", data, "--listen", "127.0.0.1:0", "--nats-listen", "127.0.0.1:0")
	if code != exitError || !strings.Contains(errOut, errDataInUse.Error()) || !strings.Contains(errOut, p.NATS) {
		t.Errorf("second serve on the same data: exit %d\n%s", code, errOut)
	}

	if code := p.stop(); code != exitOK {
		t.Fatalf("serve: exit %d\n%s", code, p.errOut)
	}
	if _, err := os.Stat(filepath.Join(data, nodeFileName)); !os.IsNotExist(err) {
		t.Errorf("%s after stop: %v", nodeFileName, err)
	}

	// A node file left by a node that died (nothing answers there) is
	// ignored: the store is free, so it is opened in process.
	if err := writeNodeFile(data, nodeInfo{PID: 1, NATS: freeAddr(t)}); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = cliRun(t, "directory", "stats", "--data", data, "--json", "--log-level", "debug")
	if code != exitOK || !strings.Contains(errOut, "in process") {
		t.Fatalf("stats with a stale node file: exit %d\n%s", code, errOut)
	}
	var st directoryStats
	if err := json.Unmarshal([]byte(out), &st); err != nil || st.Services != len(d.Services) {
		t.Errorf("stats in process: %d services (%v), want %d", st.Services, err, len(d.Services))
	}
}

// A data directory whose lock is held by a process whose node does not
// answer is an error with exit code 3, not a second server on the store.
func TestStoreCommandsOnLockedDataDir(t *testing.T) {
	data := t.TempDir()
	lock, err := lockDataDir(data)
	if err != nil {
		t.Fatalf("lockDataDir: %v", err)
	}
	t.Cleanup(lock.unlock)

	// Locked, and the node file names an address where nothing answers.
	if err := writeNodeFile(data, nodeInfo{PID: 1, NATS: freeAddr(t)}); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := cliRun(t, "directory", "stats", "--data", data, "--timeout", "10s")
	if code != exitUnavailable || !strings.Contains(errOut, errDataInUse.Error()) || !strings.Contains(errOut, "does not answer") {
		t.Errorf("locked with a dead node file: exit %d\n%s", code, errOut)
	}

	// Locked without a node file: a node that is starting is waited for
	// until the command's time runs out.
	if err := removeNodeFile(data); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = cliRun(t, "token", "list", "--data", data, "--timeout", "1s")
	if code != exitUnavailable || !strings.Contains(errOut, "starting or stopping") {
		t.Errorf("locked without a node file: exit %d\n%s", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(data, "nats")); !os.IsNotExist(err) {
		t.Errorf("a store was opened on a locked data directory: %v", err)
	}
}

// Every credentials flag takes an nkey seed file as well as a .creds
// file, and names itself when the file is neither.
func TestNATSCredsOption(t *testing.T) {
	data := t.TempDir()
	keys, err := keyStoreOf(data)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keys.Ensure("pt.apav"); err != nil {
		t.Fatal(err)
	}
	if _, err := natsCredsOption(keys.Path("pt.apav")); err != nil {
		t.Errorf("seed file: %v", err)
	}
	bad := writeFile(t, "bad.nk", []byte("not a key\n"))
	if _, err := natsCredsOption(bad); err == nil || !strings.Contains(err.Error(), errCredsFile.Error()) {
		t.Errorf("bad file: %v", err)
	}
	code, _, errOut := cliRun(t, "directory", "stats", "--nats-url", "nats://127.0.0.1:1", "--nats-creds", bad)
	if code != exitError || !strings.Contains(errOut, "--creds "+bad) {
		t.Errorf("stats --nats-creds bad: exit %d\n%s", code, errOut)
	}
}
