package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/internal/testenv"
	"github.com/invictus-network/invictus/internal/testnet"
)

// cwNet is a network for the caseworker commands (testnet): its keys
// are in a data directory, as `serve` keeps them.
type cwNet struct {
	*testnet.Network
	t *testing.T
}

// cwOrgs: the referrer pt.ref, and pt.a1 then pt.a2 offering emotional
// support (ranked in that order: ties break on id).
var cwOrgs = []testenv.Org{
	{ID: "pt.ref", Needs: []string{events.NeedInfoCase}},
	{ID: "pt.a1", Needs: []string{events.NeedSupportEmotional}},
	{ID: "pt.a2", Needs: []string{events.NeedSupportEmotional}},
}

func startCWNet(t *testing.T) *cwNet {
	t.Helper()
	return &cwNet{Network: testnet.Start(t, cwOrgs), t: t}
}

// creds writes org's seed file with `invictus creds` and returns its path.
func (n *cwNet) creds(org string) string {
	n.t.Helper()
	file := filepath.Join(n.t.TempDir(), org+".nk")
	if code, out, errOut := runArgs(n.t, "creds", org, "--data", n.Data, "-o", file); code != exitOK {
		n.t.Fatalf("creds %s: exit %d\n%s%s", org, code, out, errOut)
	}
	return file
}

// ageKey writes org's age identity file and returns its path.
func (n *cwNet) ageKey(org string) string {
	n.t.Helper()
	file := filepath.Join(n.t.TempDir(), org+".agekey")
	if err := os.WriteFile(file, n.Age[org].File(), 0o600); err != nil {
		n.t.Fatal(err)
	}
	return file
}

// as returns a runner of commands as org.
func (n *cwNet) as(org string) func(stdin string, args ...string) (int, string, string) {
	creds := n.creds(org)
	return func(stdin string, args ...string) (int, string, string) {
		n.t.Helper()
		var out, errOut syncBuffer
		args = append(args, "--nats-url", n.URL, "--org", org, "--creds", creds)
		code := runIn(n.t.Context(), args, strings.NewReader(stdin), &out, &errOut)
		return code, out.String(), errOut.String()
	}
}

// cwJSON decodes out into v, failing the test.
func cwJSON(t *testing.T, out string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
}

// profileYAML is a referral.requested payload, as a caseworker's system
// would write it.
const profileYAML = `# a needs profile with consent: no name, no contact details
needs: [support.emotional]
urgency: urgent
location: {country: pt, region: PT17}
languages: [pt]
age_band: adult
channels: [phone]
consent:
  referral: true
  share_data: true
  given_at: "2026-01-10T09:00:00Z"
  method: verbal
  recorded_by: staff-s001
`

func TestCaseworkerExitCodes(t *testing.T) {
	t.Parallel()
	n := startCWNet(t)
	ref := n.as("pt.ref")
	id := events.NewReferralID()
	usage := [][]string{
		{"accept"},
		{"accept", "not-a-uuid"},
		{"decline", id},
		{"decline", id, "--reason", "bored"},
		{"withdraw", id, "--reason", "x"},
		{"complete", id},
		{"complete", id, "--outcome", "supported", "--contacted"},
		{"accept", id, "--placement", "P 1"},
		{"inbox", "--limit", "-1"},
		{"inbox", "--type", "nonsense"},
		{"handover", id},
		{"refer", "profile.json", "--referral", "nope"},
		{"hold", id, "--until", "soon"},
		{"feedback", id},
		{"feedback", id, "--helpful", "7"},
		{"feedback", id, "--helpful", "3", "--missing", "hugs"},
	}
	for _, args := range usage {
		if code, _, errOut := ref("", args...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d (usage)\n%s", args, code, exitUsage, errOut)
		}
	}
	// Free text is gone from declines: --text is refused, before anything
	// is sent, with a reason that says why.
	if code, _, errOut := ref("", "decline", id, "--reason", "other", "--text", "Maria Silva moved"); code != exitUsage || !strings.Contains(errOut, "reason code only") {
		t.Errorf("decline --text: exit %d, want %d\n%s", code, exitUsage, errOut)
	}
	// --org missing.
	if code, _, errOut := runArgs(t, "inbox", "--nats-url", n.URL); code != exitUsage || !strings.Contains(errOut, "--org is required") {
		t.Errorf("inbox without --org: exit %d\n%s", code, errOut)
	}
	// Nothing listening: unavailable.
	if code, _, errOut := runArgs(t, "inbox", "--nats-url", "nats://127.0.0.1:1", "--org", "pt.ref"); code != exitUnavailable {
		t.Errorf("inbox against a closed port: exit %d, want %d\n%s", code, exitUnavailable, errOut)
	}
	// Another organisation's key: refused, with a clear message.
	other := n.creds("pt.a1")
	code, _, errOut := runArgs(t, "inbox", "--nats-url", n.URL, "--org", "pt.ref", "--creds", other, "--timeout", "1s")
	if code != exitError || !strings.Contains(errOut, "not authorised") {
		t.Errorf("inbox as pt.ref with pt.a1's key: exit %d\n%s", code, errOut)
	}
	// No credentials.
	code, _, errOut = runArgs(t, "status", id, "--nats-url", n.URL, "--org", "pt.ref")
	if code != exitUsage || !strings.Contains(errOut, "no credentials given") || strings.Contains(errOut, "wrong key") {
		t.Errorf("status without credentials: exit %d\n%s", code, errOut)
	}
	// An unknown referral.
	if code, _, errOut := ref("", "status", id); code != exitError || !strings.Contains(errOut, "nothing was delivered") {
		t.Errorf("status of an unknown referral: exit %d\n%s", code, errOut)
	}
	// A command the routing service rejects: exit 1, the problem shown.
	code, out, _ := ref("", "withdraw", id, "--reason", "error")
	if code != exitError || !strings.Contains(out, "REJECTED") || !strings.Contains(out, "not_found") {
		t.Errorf("withdraw of an unknown referral: exit %d\n%s", code, out)
	}
	code, out, _ = ref("", "withdraw", id, "--reason", "error", "--json")
	var res commandResult
	cwJSON(t, out, &res)
	if code != exitError || res.Outcome != "rejected" || len(res.Errors) == 0 {
		t.Errorf("withdraw --json of an unknown referral: exit %d %+v", code, res)
	}
}

func TestExitCodesHelp(t *testing.T) {
	t.Parallel()
	code, out, _ := runArgs(t, "help", "exit-codes")
	if code != exitOK || !strings.Contains(out, "3  unavailable") {
		t.Errorf("help exit-codes: exit %d\n%s", code, out)
	}
	for _, c := range []string{"refer", "inbox", "accept", "decline", "handover", "open", "status", "withdraw", "complete", "hold", "feedback", "erase", "creds", "completion"} {
		code, out, _ := runArgs(t, c, "--help")
		if code != exitOK || !strings.Contains(out, "Examples:") || !strings.Contains(out, "invictus "+c) {
			t.Errorf("%s --help: exit %d, no example\n%s", c, code, out)
		}
		if c != "completion" && !strings.Contains(out, "--json") {
			t.Errorf("%s has no --json", c)
		}
	}
}
