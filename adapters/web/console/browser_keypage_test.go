package console_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/invictus-network/invictus/adapters/web/console"
	"github.com/invictus-network/invictus/events"
)

// TestBrowserKeyPage: the administrator of the organisation that accepted
// a referral stores its key on the console's key page (the browser wraps
// it with the passphrase), then opens the case file sealed to it. A key
// that does not match the directory's recipient is refused in the page
// before anything is sent. The unwrapped key reaches the server in no
// request body and no log line. axe-core finds nothing on the page in
// English and Portuguese.
func TestBrowserKeyPage(t *testing.T) {
	dir, keys := keyedDirectory(t)
	b := setupWith(t, dir)
	const canary = "Rita Canary-91c2 · +351 900 000 733"
	const pass = "correct horse battery staple"

	// A referral, accepted, with a case file sealed to the accepting
	// organisation (sealed in Go here: TestBrowserCaseFile seals in the
	// browser).
	o := referOffered(t, b, "olga", console.RoleOrgAdmin)
	o.accept(t, b)
	id, offered, ca, olga := o.id, o.offered, o.ca, o.to
	recipient := keys[offered].Recipient()
	ca.get("/console/en/referrals/" + id)
	if r := ca.post("/console/en/referrals/"+id, url.Values{"action": {"handover"}, "placement": {"p1"},
		"recipient": {recipient.String()}, "envelope": {sealTo(t, recipient, canary)}}); r.status != http.StatusSeeOther {
		t.Fatalf("handover: %d %s", r.status, excerpt(r.body))
	}
	b.waitEvent(id, events.TypeReferralHandover)

	to := b.tab(t)
	to.signIn(olga, "en")
	to.open("/console/en/key")
	to.axe("key")
	to.screenshot("key-en")
	if eval[bool](to, `document.querySelector('#key-identity').hasAttribute('name') || document.querySelector('#key-pass').hasAttribute('name')`) {
		t.Fatal("the key or passphrase field has a name: the browser would post it")
	}
	// Another organisation's key: refused in the page, nothing posted.
	to.set("#key-identity", keys["pt.apav"].String())
	to.set("#key-pass", pass)
	to.set("#key-pass2", pass)
	to.click("#key-save")
	to.waitFor(`document.querySelector('#key-status').className === 'field-error'`)
	if got := to.text("#key-status"); !strings.Contains(got, "does not match") {
		t.Errorf("a key of another organisation: %q", got)
	}
	if strings.Contains(b.bodies.String(), "wrapped=") {
		t.Fatal("the mismatching key was posted")
	}
	to.axe("key-mismatch")
	to.set("#key-identity", "# created: 2025-01-01\n# public key: "+recipient.String()+"\n"+keys[offered].String()+"\n")
	to.submit("#key-save")
	to.waitFor(`document.querySelector('#key-done')`)
	to.axe("key-stored")
	var si struct {
		WrappedIdentity string `json:"wrapped_identity"`
	}
	v, err := b.ports.Keys.Get(t.Context(), "identity."+offered)
	if err != nil || json.Unmarshal(v, &si) != nil || events.CheckWrappedIdentity(si.WrappedIdentity) != nil {
		t.Fatalf("stored: %v %q", err, v)
	}
	to.open("/console/pt/key")
	to.axe("key-pt")
	to.screenshot("key-pt")
	zeroAxe(t, "key", "key-mismatch", "key-stored", "key-pt")

	// She opens the case file with the passphrase.
	to.open("/console/en/referrals/" + id)
	to.waitFor(`document.querySelector('#case-file-received-p1 pre[data-envelope]')`)
	to.set("#passphrase-p1", pass)
	to.click("#open-button-p1")
	to.waitFor(`!document.querySelector('#case-file-received-p1 pre').hidden`)
	if got := to.text("#case-file-received-p1 pre"); got != canary {
		t.Errorf("the case file reads %q, want the case details", got)
	}
	for what, secret := range map[string]string{"the identity": keys[offered].String(), "the passphrase": pass, "the case details": canary} {
		if strings.Contains(b.bodies.String(), secret) || strings.Contains(b.logs.String(), secret) {
			t.Errorf("a request body or the logs held %s", what)
		}
	}
	if !strings.Contains(b.bodies.String(), "wrapped=") {
		t.Error("the recorder saw no key post: the check above proves nothing")
	}
}
