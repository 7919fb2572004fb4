package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/internal/testenv"
)

// A referral from pt.ref through pt.a1 (declines) to pt.a2 (accepts,
// receives the sealed case file, completes), driven only by the CLI.
func TestCaseworkerLifecycle(t *testing.T) {
	t.Parallel()
	n := startCWNet(t)
	ref, a1, a2 := n.as("pt.ref"), n.as("pt.a1"), n.as("pt.a2")
	dir := t.TempDir()
	profile := filepath.Join(dir, "requested.yaml")
	if err := os.WriteFile(profile, []byte(profileYAML), 0o600); err != nil {
		t.Fatal(err)
	}

	// The preview shows the plan; answering no sends nothing.
	code, out, errOut := ref("n\n", "refer", profile)
	if code != exitError || !strings.Contains(out, "pt.a1.support") || !strings.Contains(errOut, "not sent") {
		t.Fatalf("refer answered no: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, _ := ref("", "inbox"); code != exitOK || !strings.Contains(out, "Nothing delivered") {
		t.Fatalf("after a refused referral the referrer's inbox: exit %d\n%s", code, out)
	}

	// Answering yes sends it and prints what was offered.
	code, out, errOut = ref("y\n", "refer", profile)
	if code != exitOK || !strings.Contains(out, "Placement p1 (support.emotional): offered to pt.a1") {
		t.Fatalf("refer: exit %d\n%s%s", code, out, errOut)
	}
	id := strings.Fields(strings.TrimPrefix(out[strings.Index(out, "Referral "):], "Referral "))[0]
	if !events.IsReferralID(id) {
		t.Fatalf("refer printed no referral id:\n%s", out)
	}

	// pt.a1 sees the offer in its inbox, as a table and as JSON.
	testenv.Await(t, "the offer in pt.a1's inbox", func() bool {
		_, out, _ := a1("", "inbox", "--type", "offered")
		return strings.Contains(out, id) && strings.Contains(out, "pt.a1.support")
	})
	code, out, _ = a1("", "inbox", "--json")
	var rows []deliveryJSON
	cwJSON(t, out, &rows)
	if code != exitOK || len(rows) != 1 || rows[0].Type != events.TypeReferralOffered || rows[0].Referral != id {
		t.Fatalf("inbox --json: exit %d %+v", code, rows)
	}

	// pt.a1 declines; pt.a2 is offered the placement.
	if code, out, errOut := a1("", "decline", id, "--reason", "capacity"); code != exitOK || !strings.Contains(out, "Decline of referral "+id+" recorded") {
		t.Fatalf("decline: exit %d\n%s%s", code, out, errOut)
	}
	// Having declined, pt.a1 may not accept: the routing service says no.
	code, out, _ = a1("", "accept", id, "--placement", "p1")
	if code != exitError || !strings.Contains(out, "REJECTED") {
		t.Fatalf("accept after decline: exit %d\n%s", code, out)
	}
	testenv.Await(t, "the offer to pt.a2", func() bool {
		_, out, _ := a2("", "status", id)
		return strings.Contains(out, "offered")
	})
	if code, out, errOut := a2("", "accept", id, "--json"); code != exitOK || !strings.Contains(out, `"outcome": "recorded"`) {
		t.Fatalf("accept: exit %d\n%s%s", code, out, errOut)
	}

	// The referrer's timeline shows the acceptance by pt.a2.
	code, out, _ = ref("", "status", id, "--json")
	var st statusJSON
	cwJSON(t, out, &st)
	if code != exitOK || st.Status != "in_progress" || len(st.Placements) != 1 || st.Placements[0].Status != "accepted" || st.Placements[0].Organisation != "pt.a2" {
		t.Fatalf("status --json: exit %d %+v", code, st)
	}

	// Sealed handover to pt.a2's recipient from the directory.
	caseFile := filepath.Join(dir, "case.json")
	secret := `{"name":"Maria Exemplo","phone":"+351 900 000 000"}`
	if err := os.WriteFile(caseFile, []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = ref("", "handover", id, "--file", caseFile)
	if code != exitOK || !strings.Contains(out, fmt.Sprintf("Sealed %d bytes to pt.a2", len(secret))) {
		t.Fatalf("handover: exit %d\n%s%s", code, out, errOut)
	}
	var opened string
	testenv.Await(t, "pt.a2 to open the handover", func() bool {
		code, out, _ := a2("", "open", id, "--key", n.ageKey("pt.a2"))
		opened = out
		return code == exitOK
	})
	if opened != secret {
		t.Fatalf("open printed %q, want the case file", opened)
	}
	code, out, _ = a2("", "open", id, "--key", n.ageKey("pt.a2"), "--json")
	var cases []openedJSON
	cwJSON(t, out, &cases)
	if code != exitOK || len(cases) != 1 || cases[0].Placement != "p1" || !strings.Contains(string(mustJSON(t, cases[0].Case)), "Maria") {
		t.Fatalf("open --json: exit %d %s", code, out)
	}
	// pt.a1 received no handover, and pt.a1's key does not open pt.a2's.
	if code, _, errOut := a1("", "open", id, "--key", n.ageKey("pt.a1")); code != exitError || !strings.Contains(errOut, "no handover") {
		t.Errorf("pt.a1 opens: exit %d %s", code, errOut)
	}
	_, inbox, _ := a2("", "inbox", "--type", "handover", "--json")
	var hs []deliveryJSON
	cwJSON(t, inbox, &hs)
	if len(hs) != 1 {
		t.Fatalf("pt.a2 has %d handovers", len(hs))
	}
	envelope := filepath.Join(dir, "handover.json")
	if err := os.WriteFile(envelope, mustJSON(t, hs[0].Data), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := a1("", "open", envelope, "--key", n.ageKey("pt.a1")); code != exitError || !strings.Contains(errOut, "not sealed to this identity") {
		t.Errorf("open with another organisation's key: exit %d %s", code, errOut)
	}
	out2 := filepath.Join(dir, "opened.json")
	if code, _, errOut := a2("", "open", envelope, "--key", n.ageKey("pt.a2"), "-o", out2); code != exitOK {
		t.Errorf("open FILE -o: exit %d %s", code, errOut)
	} else if b, err := os.ReadFile(out2); err != nil || string(b) != secret {
		t.Errorf("open FILE -o wrote %q, %v", b, err)
	}

	// Hold, contact, completion; the referrer sees the referral completed.
	if code, out, errOut := a2("", "hold", id, "--until", "2027-01-15"); code != exitOK || !strings.Contains(out, "recorded") {
		t.Fatalf("hold: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := a2("", "complete", id, "--contacted"); code != exitOK || !strings.Contains(out, "recorded") {
		t.Fatalf("complete --contacted: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := a2("", "complete", id, "--outcome", "supported"); code != exitOK || !strings.Contains(out, "recorded") {
		t.Fatalf("complete: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = ref("", "status", id)
	if code != exitOK || !strings.Contains(out, "Referral "+id+": completed") || !strings.Contains(out, "supported") {
		t.Fatalf("status: exit %d\n%s", code, out)
	}
	// The victim's feedback, from the accepting organisation and from the
	// referrer; another organisation's is rejected.
	if code, out, errOut := a2("", "feedback", id, "--placement", "p1", "--helpful", "5", "--missing", "follow_up"); code != exitOK || !strings.Contains(out, "recorded") {
		t.Fatalf("feedback: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := ref("", "feedback", id, "--recommend", "4", "--json"); code != exitOK || !strings.Contains(out, `"outcome": "recorded"`) {
		t.Fatalf("feedback --json: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, _ := a1("", "feedback", id, "--placement", "p1", "--helpful", "1"); code != exitError || !strings.Contains(out, "REJECTED") {
		t.Errorf("feedback of another organisation: exit %d\n%s", code, out)
	}
	// A closed referral cannot be withdrawn.
	if code, out, _ := ref("", "withdraw", id, "--reason", "needs_met"); code != exitError || !strings.Contains(out, "REJECTED") {
		t.Errorf("withdraw of a completed referral: exit %d\n%s", code, out)
	}

	// Erasure, confirmed on the prompt.
	if code, _, errOut := ref("no\n", "erase", id); code != exitError || !strings.Contains(errOut, "not erased") {
		t.Fatalf("erase answered no: exit %d %s", code, errOut)
	}
	code, out, errOut = ref("yes\n", "erase", id, "--json")
	var res commandResult
	cwJSON(t, out, &res)
	if code != exitOK || res.Outcome != "recorded" || res.Answer != events.TypeReferralErased {
		t.Fatalf("erase: exit %d %+v %s", code, res, errOut)
	}
	code, out, _ = a2("", "status", id, "--json")
	cwJSON(t, out, &st)
	if code != exitOK || st.Status != "erased" || len(st.Events) != 1 {
		t.Fatalf("after erasure pt.a2 still holds: %s", out)
	}
}

func TestReferYesJSON(t *testing.T) {
	t.Parallel()
	n := startCWNet(t)
	ref := n.as("pt.ref")
	code, out, errOut := ref(profileYAML, "refer", "-", "--yes", "--json")
	var res referJSON
	cwJSON(t, out, &res)
	if code != exitOK || res.Outcome != "recorded" || res.Answer != events.TypeReferralPlanned || res.Preview != nil {
		t.Fatalf("refer --yes --json: exit %d %s %s", code, out, errOut)
	}
	if !events.IsReferralID(res.Referral) {
		t.Errorf("referral %q", res.Referral)
	}
	// Resending the same command id is stored once: --referral with the
	// same id makes a new command, which the routing service rejects as a
	// duplicate request.
	code, out, _ = ref(profileYAML, "refer", "-", "--yes", "--referral", res.Referral)
	if code != exitError || !strings.Contains(out, "REJECTED") {
		t.Errorf("a second referral with the same id: exit %d\n%s", code, out)
	}

	// Without consent, nothing is sent.
	noConsent := strings.Split(profileYAML, "\nconsent:")[0]
	if code, _, errOut := ref(noConsent, "refer", "-", "--yes"); code != exitError || !strings.Contains(errOut, "/consent/referral consent_required") {
		t.Errorf("refer without consent: exit %d %s", code, errOut)
	}
}

func TestInboxFollow(t *testing.T) {
	t.Parallel()
	n := startCWNet(t)
	creds := n.creds("pt.a1")
	ref := n.as("pt.ref")
	ctx, cancel := context.WithCancel(t.Context())
	var out, errOut syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- runIn(ctx, []string{"inbox", "--follow", "--json", "--nats-url", n.URL, "--org", "pt.a1", "--creds", creds}, strings.NewReader(""), &out, &errOut)
	}()
	if code, o, e := ref(profileYAML, "refer", "-", "--yes", "--wait", "0"); code != exitOK {
		t.Fatalf("refer: exit %d %s %s", code, o, e)
	}
	var row deliveryJSON
	testenv.Await(t, "the followed offer", func() bool {
		line, _, _ := strings.Cut(out.String(), "\n")
		return json.Unmarshal([]byte(line), &row) == nil && row.Type == events.TypeReferralOffered
	})
	cancel()
	if code := testenv.Recv(t, "inbox --follow to stop", done, errOut.String); code != exitOK {
		t.Errorf("inbox --follow ended with exit %d: %s", code, errOut.String())
	}
}

// mustJSON marshals v.
func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
