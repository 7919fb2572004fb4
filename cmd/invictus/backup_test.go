package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/invictus-network/invictus/adapters/natsjs"
)

// storeState reads every stream's state of the store in data, opened in
// process.
func storeState(t *testing.T, data string) map[string]jetstream.StreamState {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	dc, err := connectData(ctx, data, "", "test", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer dc.close()
	js, err := jetstream.New(dc.nc, jetstream.WithDefaultTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]jetstream.StreamState{}
	l := js.ListStreams(ctx)
	for s := range l.Info() {
		out[s.Config.Name] = s.State
	}
	if err := l.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestBackupRestore backs up a node's store after a referral, restores it
// into a new data directory, and finds the same streams with the same
// messages and sequences; the restored store passes the store check, and
// a second restore changes nothing.
func TestBackupRestore(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	p := serveInProcess(t, fakeEnv(nil), "--data", data)
	nc := connectAdmin(t, p.NATS, data)
	ref, recv := "pt.bk-ref", "pt.bk-recv"
	tokens := provisionTestOrgs(t, nc, testOrgsDirectory(t, ref, recv), false)
	id := referralFlow(t, p.HTTP, ref, tokens[ref], recv, tokens[recv])
	nc.Close()
	if code := p.stop(); code != 0 {
		t.Fatalf("serve exit %d\n%s", code, p.errOut)
	}

	dir := filepath.Join(t.TempDir(), "backup")
	code, stdout, stderr := runArgs(t, "backup", dir, "--data", data)
	if code != 0 {
		t.Fatalf("backup: exit %d\n%s", code, stderr)
	}
	t.Logf("backup:\n%s", stdout)
	if !strings.Contains(stdout, natsjs.StreamReferrals) || !strings.Contains(stdout, "streams backed up to") {
		t.Errorf("backup output:\n%s", stdout)
	}

	restored := t.TempDir()
	code, stdout, stderr = runArgs(t, "restore", dir, "--data", restored)
	if code != 0 {
		t.Fatalf("restore: exit %d\n%s", code, stderr)
	}
	t.Logf("restore:\n%s", stdout)

	want, got := storeState(t, data), storeState(t, restored)
	if len(want) < 6 {
		t.Fatalf("the original store has only %d streams", len(want))
	}
	for name, w := range want {
		g, ok := got[name]
		switch {
		case !ok:
			t.Errorf("stream %s not restored", name)
		case g.Msgs != w.Msgs || g.LastSeq != w.LastSeq || g.Bytes != w.Bytes || g.Consumers != w.Consumers ||
			(w.Msgs > 0 && g.FirstSeq != w.FirstSeq): // an empty stream's first sequence is 0 or 1
			t.Errorf("stream %s restored as %+v, was %+v", name, g, w)
		}
	}
	if want[natsjs.StreamReferrals].Msgs == 0 {
		t.Error("nothing in REFERRALS to back up")
	}

	// The restored store is whole: the referral's log folds.
	code, stdout, stderr = runArgs(t, "check", "--data", restored)
	if code != 0 || !strings.Contains(stdout, "referral logs folded: 1") {
		t.Errorf("check of the restored store: exit %d\n%s%s", code, stdout, stderr)
	}
	// And serve runs on it, with the referral where it was.
	if err := os.CopyFS(filepath.Join(restored, natsjs.KeysDir), os.DirFS(filepath.Join(data, natsjs.KeysDir))); err != nil {
		t.Fatal(err)
	}
	p2 := serveInProcess(t, fakeEnv(nil), "--data", restored)
	if code, view := getReferral(t, p2.HTTP, tokens[ref], id); code != 200 || view.Status != "in_progress" {
		t.Errorf("the referral on the restored node: %d %+v", code, view)
	}
	if code := p2.stop(); code != 0 {
		t.Fatalf("serve on the restored store: exit %d\n%s", code, p2.errOut)
	}

	// Restoring again over it: refused, naming the stream, nothing changed.
	before := storeState(t, restored)
	code, _, stderr = runArgs(t, "restore", dir, "--data", restored)
	if code != exitError || !strings.Contains(stderr, "exists already") || !strings.Contains(stderr, "nothing was restored") {
		t.Errorf("restore over a store: exit %d\n%s", code, stderr)
	}
	after := storeState(t, restored)
	for name, b := range before {
		if a := after[name]; a.LastSeq != b.LastSeq || a.Msgs != b.Msgs {
			t.Errorf("stream %s changed by a refused restore: %+v -> %+v", name, b, a)
		}
	}
}
