package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/invictus-network/invictus/adapters/httpapi"
)

// simulateAttrs are the only attributes a simulate log line may carry:
// ids and codes, nothing about a victim.
var simulateAttrs = []string{
	"time", "level", "msg", "referral", "referrer", "urgency", "needs", "placement", "org",
	"attempt", "reason", "outcome", "problems", "type", "error",
}

// logAttr matches one key=value of a text log line.
var logAttr = regexp.MustCompile(`(?:^| )([a-z_]+)=("(?:[^"\\]|\\.)*"|\S*)`)

// logLines returns the attributes of the text log lines whose msg starts
// with prefix.
func logLines(logs, prefix string) []map[string]string {
	var out []map[string]string
	for _, line := range strings.Split(logs, "\n") {
		attrs := map[string]string{}
		for _, m := range logAttr.FindAllStringSubmatch(line, -1) {
			attrs[m[1]] = strings.Trim(m[2], `"`)
		}
		if strings.HasPrefix(attrs["msg"], prefix) {
			out = append(out, attrs)
		}
	}
	return out
}

func TestServeSimulate(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	p := serveInProcess(t, fakeEnv(nil), "--data", data, "--demo", "--simulate", "--simulate-rate", "300")

	// Within seconds a referral goes the whole way.
	var done map[string]string
	waitFor(t, "a simulated referral to be completed", func() bool {
		lines := logLines(p.errOut.String(), "simulate: completed")
		if len(lines) == 0 {
			return false
		}
		done = lines[0]
		return true
	})

	// The referrer's timeline, read over HTTP, agrees.
	var referrer string
	for _, l := range logLines(p.errOut.String(), "simulate: referral requested") {
		if l["referral"] == done["referral"] {
			referrer = l["referrer"]
		}
	}
	b, err := os.ReadFile(filepath.Join(data, demoDir, demoTokensFile))
	if err != nil {
		t.Fatal(err)
	}
	var tokens map[string]string
	if err := json.Unmarshal(b, &tokens); err != nil {
		t.Fatal(err)
	}
	// The simulator logs the command it sent; the routing service may
	// append its event a moment later, so poll the timeline.
	var view httpapi.ReferralView
	waitFor(t, "the timeline to show the completion", func() bool {
		code, v := getReferral(t, p.HTTP, tokens[referrer], done["referral"])
		if code != http.StatusOK {
			t.Fatalf("GET the referral %s as its referrer %q: %d", done["referral"], referrer, code)
		}
		view = v
		for _, pl := range v.Placements {
			if pl.Placement == done["placement"] && pl.Status == "completed" {
				return true
			}
		}
		return false
	})
	found := false
	for _, pl := range view.Placements {
		if pl.Placement == done["placement"] {
			found = true
			if pl.Status != "completed" || pl.Organisation != done["org"] || pl.Outcome != done["outcome"] {
				t.Errorf("placement %+v, the log says %v", pl, done)
			}
		}
	}
	if !found {
		t.Errorf("no placement %s in %+v", done["placement"], view)
	}

	// One line per change, with ids and codes only.
	kinds := map[string]bool{}
	for _, l := range logLines(p.errOut.String(), "simulate: ") {
		kinds[l["msg"]] = true
		for k := range l {
			if !slices.Contains(simulateAttrs, k) {
				t.Errorf("a simulate log line carries %q: %v", k, l)
			}
		}
	}
	for _, want := range []string{"simulate: referral requested", "simulate: offered", "simulate: accepted", "simulate: contacted", "simulate: completed"} {
		if !kinds[want] {
			t.Errorf("no %q line", want)
		}
	}
	if code := p.stop(); code != exitOK {
		t.Errorf("exit %d\n%s", code, p.errOut)
	}
}

func TestServeSimulateNeedsDemo(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"serve", "--simulate"},
		{"serve", "--demo", "--simulate", "--simulate-rate", "0"},
		{"serve", "--nats-creds", "x.creds"},
	} {
		code, _, errOut := runArgs(t, args...)
		if code != exitUsage {
			t.Errorf("%v: exit %d, want %d:\n%s", args, code, exitUsage, errOut)
		}
	}
}
