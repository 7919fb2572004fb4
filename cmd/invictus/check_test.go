package main

import (
	"crypto/rand"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/invictus-network/invictus/adapters/natsjs"
)

// TestStoreDamage writes a store with referrals (the demo's simulated
// traffic), checks it whole with `invictus check` against the running
// node and against the stopped store, writes 4 KiB of noise into a
// REFERRALS block file, then: `invictus check` exits 1 with the damage
// and how to recover, and serve starts not ready, /readyz naming the
// damage and the routing service not running on it.
func TestStoreDamage(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	p := serveInProcess(t, fakeEnv(nil), "--data", data, "--demo", "--simulate", "--simulate-rate", "6000")
	nc := connectAdmin(t, p.NATS, data)
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	msgs := func(stream string) uint64 {
		s, err := js.Stream(t.Context(), stream)
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Msgs
	}
	waitFor(t, "1,000 referral events", func() bool {
		return msgs(natsjs.StreamReferrals) >= 1000 && msgs(natsjs.StreamDelivery) >= 1000
	})
	code, out, errOut := runArgs(t, "check", "--data", data)
	if code != exitOK || !strings.Contains(out, "store: ok") {
		t.Fatalf("check of the running node: exit %d\n%s%s", code, out, errOut)
	}
	if code := p.stop(); code != exitOK {
		t.Fatalf("serve exit %d\n%s", code, p.errOut)
	}
	code, out, errOut = runArgs(t, "check", "--data", data)
	if code != exitOK || !strings.Contains(out, "store: ok") {
		t.Fatalf("check of the stopped store: exit %d\n%s%s", code, out, errOut)
	}
	t.Logf("whole store:\n%s", out)

	blocks, err := filepath.Glob(filepath.Join(data, "nats", "jetstream", "*", "streams", natsjs.StreamReferrals, "msgs", "*.blk"))
	if err != nil || len(blocks) == 0 {
		t.Fatalf("REFERRALS block files: %v %v", blocks, err)
	}
	f, err := os.OpenFile(blocks[0], os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte(rand.Text() + strings.Repeat(rand.Text(), 160))[:4096], st.Size()/2); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	code, out, errOut = runArgs(t, "check", "--data", data)
	t.Logf("damaged store: exit %d\n%s%s", code, out, errOut)
	if code != exitError || !strings.Contains(out, "store: DAMAGED") || !strings.Contains(out, "REFERRALS") ||
		!strings.Contains(out, "restore the data directory from a backup") {
		t.Errorf("check of the damaged store: exit %d, want 1 with the damage and how to recover", code)
	}

	p = serveInProcess(t, fakeEnv(nil), "--data", data)
	code, rep := getJSON(t, "http://"+p.HTTP+"/readyz")
	t.Logf("/readyz: %d %+v", code, rep)
	if code != http.StatusServiceUnavailable || !strings.Contains(rep.Checks["store"], "REFERRALS") ||
		!strings.Contains(rep.Checks["store"], "backup") || !strings.Contains(rep.Checks["routing"], "damaged") {
		t.Errorf("/readyz on the damaged store: %d %+v", code, rep)
	}
	if code := p.stop(); code != exitOK {
		t.Errorf("serve exit %d\n%s", code, p.errOut)
	}
}
