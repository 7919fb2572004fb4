package email_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"

	"github.com/invictus-network/invictus/adapters/email"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/referral"
	"github.com/invictus-network/invictus/seal"
)

// The canary identity: a name, a phone number and an address no test
// data holds otherwise.
const (
	canaryName    = "Zuzanna Kanarienvogel"
	canaryPhone   = "+351 912 345 678"
	canaryAddress = "Rua do Canario 17"
)

// TestCanaryNeverLeaves writes a canary identity into a sealed case file
// and into every free field a command can carry (the consent's staff
// reference), runs a referral to
// completion with e-mail organisations on both sides (a decline, an
// acceptance through a link, a handover, contact, completion), and
// checks that the canary is in no e-mail, no log line and no metric.
func TestCanaryNeverLeaves(t *testing.T) {
	t.Parallel()
	b := setup(t, email.Config{})
	in := b.start("a")
	id := events.NewReferralID()
	// The staff reference is the one free field of a request: the canary
	// goes in, unless the contract refuses it at the door.
	req := &events.Requested{
		Profile: events.Profile{Needs: needsOffered, Urgency: events.UrgencyUrgent, Location: events.Location{Country: "pt", Region: "PT17"},
			Languages: []string{"pt"}, AgeBand: "adult", Channels: []string{events.ChannelPhone}},
		Consent: events.Consent{Referral: true, ShareData: true, GivenAt: time.Now().Add(-time.Minute).UTC(), Method: "verbal",
			RecordedBy: strings.ReplaceAll(canaryName, " ", ".")},
	}
	if _, err := events.New(events.SourceOf("pt.ref"), id, req); err != nil {
		t.Logf("the staff reference was refused at the door: %v", err)
		req.Consent.RecordedBy = "test-st0001"
	}
	b.send("pt.ref", id, req)

	// pt.a1 declines (reasons are codes: the contract has no free text
	// for a decline).
	d := declined(b, id)
	b.send("pt.a1", id, d)

	// pt.a2 accepts through its e-mail link.
	accept, _ := links(t, b.mail("pt.a2", "Nieuw verwijzingsaanbod"))
	if code, _, body := page(t, http.MethodPost, accept, ""); code != http.StatusOK {
		t.Fatalf("accept: %d\n%s", code, body)
	}
	b.mail("pt.ref", "aceite por Org pt.a2")
	pl := b.state(id).Placements[0].ID

	// The referrer hands the case file over, sealed to pt.a2.
	env, err := seal.Seal(b.keys["pt.a2"].Recipient, []byte("name: "+canaryName+"\nphone: "+canaryPhone+"\naddress: "+canaryAddress+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	b.send("pt.ref", id, &events.Handover{Placement: pl, Recipient: b.keys["pt.a2"].Recipient, Envelope: env})
	b.mail("pt.a2", "Er wacht een dossier op u")
	b.send("pt.a2", id, &events.Contacted{Placement: pl})
	b.mail("pt.ref", "estabeleceu contacto")
	b.send("pt.a2", id, &events.Completed{Placement: pl, Outcome: "supported"})
	b.mail("pt.ref", "concluiu")
	if st := b.state(id); st.Placements[0].Status != referral.PlacementCompleted {
		t.Fatalf("placement %s, want completed", st.Placements[0].Status)
	}
	b.idle("pt.ref")
	b.idle("pt.a2")

	needles := []string{canaryName, strings.ReplaceAll(canaryName, " ", "."), "Kanarienvogel", canaryPhone, "912345678", "912 345 678", canaryAddress, "Canario"}
	ms, err := b.mp.Messages()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		raw, err := b.mp.Raw(m.ID)
		if err != nil {
			t.Fatal(err)
		}
		full, err := b.mp.Message(m.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range needles {
			for where, s := range map[string]string{"source": raw, "text": full.Text, "html": full.HTML} {
				if strings.Contains(s, n) {
					t.Errorf("the canary %q is in the %s of the e-mail %q", n, where, m.Subject)
				}
			}
		}
	}
	var metrics strings.Builder
	mfs, err := in.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(&metrics, mf); err != nil {
			t.Fatal(err)
		}
	}
	logs := b.logs.String()
	for _, n := range needles {
		if strings.Contains(logs, n) {
			t.Errorf("the canary %q is in the logs", n)
		}
		if strings.Contains(metrics.String(), n) {
			t.Errorf("the canary %q is in the metrics", n)
		}
	}
	t.Logf("canary: %d e-mails, %d bytes of logs, %d bytes of metrics checked; %v sent", len(ms), len(logs), metrics.Len(),
		in.metric("invictus_email_messages_total", "sent"))
	if len(ms) < 7 || len(logs) == 0 || metrics.Len() == 0 {
		t.Fatalf("too little to check: %d e-mails, %d bytes of logs, %d of metrics", len(ms), len(logs), metrics.Len())
	}
}
