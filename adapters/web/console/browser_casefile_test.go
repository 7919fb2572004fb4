package console_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"filippo.io/age"
	"filippo.io/age/armor"
	"github.com/chromedp/chromedp"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/invictus-network/invictus/adapters/httpapi"
	"github.com/invictus-network/invictus/adapters/web/console"
	"github.com/invictus-network/invictus/directory"
	"github.com/invictus-network/invictus/events"
)

// keyedDirectory is the demo directory with an age identity for every
// organisation, its recipient published as the directory publishes it.
func keyedDirectory(t *testing.T) (*directory.Directory, map[string]*age.X25519Identity) {
	t.Helper()
	d, err := directory.Demo(1)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]*age.X25519Identity{}
	for i := range d.Organisations {
		id, err := age.GenerateX25519Identity()
		if err != nil {
			t.Fatal(err)
		}
		d.Organisations[i].AgeRecipient = id.Recipient().String()
		keys[d.Organisations[i].ID] = id
	}
	return d, keys
}

// wrapIdentity wraps a key file with a passphrase as the opener page does
// (an age file whose only stanza is scrypt), armored. The work factor is
// low to keep the test quick; the opener page uses 2^16.
func wrapIdentity(t *testing.T, id *age.X25519Identity, pass string) string {
	t.Helper()
	r, err := age.NewScryptRecipient(pass)
	if err != nil {
		t.Fatal(err)
	}
	r.SetWorkFactor(12)
	var buf bytes.Buffer
	aw := armor.NewWriter(&buf)
	w, err := age.Encrypt(aw, r)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.WriteString(w, "# public key: "+id.Recipient().String()+"\n"+id.String()+"\n")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := aw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := httpapi.CheckWrappedIdentity(buf.String()); err != nil {
		t.Fatalf("the wrapped identity is not what the API accepts: %v", err)
	}
	return buf.String()
}

// streamsContain reports the streams (KV buckets included) holding s in a
// message's data or headers.
func (b *bundle) streamsContain(s string) []string {
	b.t.Helper()
	ctx := b.t.Context()
	var found []string
	names := b.js.StreamNames(ctx)
	for name := range names.Name() {
		st, err := b.js.Stream(ctx, name)
		if err != nil {
			b.t.Fatal(err)
		}
		info, err := st.Info(ctx)
		if err != nil {
			b.t.Fatal(err)
		}
		for seq := info.State.FirstSeq; seq > 0 && seq <= info.State.LastSeq; seq++ {
			m, err := st.GetMsg(ctx, seq)
			if err != nil {
				continue // deleted
			}
			hdr, _ := json.Marshal(m.Header)
			if bytes.Contains(m.Data, []byte(s)) || bytes.Contains(hdr, []byte(s)) {
				found = append(found, name)
			}
		}
	}
	if err := names.Err(); err != nil && err != jetstream.ErrEndOfData {
		b.t.Fatal(err)
	}
	return found
}

// click presses a button that does not leave the page.
func (s *tab) click(sel string) {
	s.t.Helper()
	s.do(chromedp.Click(sel))
}

// TestBrowserCaseFile: caseworker A seals a case file in her browser to
// the organisation that accepted her referral; caseworker B of that
// organisation is told when it has no key stored, is told a wrong
// passphrase, and with the right one reads the case file in her page. The
// case details never reach the server: not in a request body, not in any
// stream or bucket, not in the logs; nor does the organisation's unwrapped
// identity.
func TestBrowserCaseFile(t *testing.T) {
	dir, keys := keyedDirectory(t)
	b := setupWith(t, dir)
	const canary = "Maria Canary-7f3a9 · +351 900 000 417 · after 18h only"
	const pass = "correct horse battery staple"

	a := b.addPerson("ana", console.RoleCaseworker, "pt.apav")
	ta := b.tab(t)
	ta.signIn(a, "en")
	ta.open("/console/en/assess")
	ta.fillAssessment()
	ta.submit("#preview")
	ta.waitFor(`document.querySelector('#send-form')`)
	ta.check("#confirm")
	ta.submit("#send")
	ta.waitFor(`document.querySelector('#sent-notice')`)
	loc := get(ta, chromedp.Location())
	id := loc[strings.Index(loc, "/referrals/")+len("/referrals/") : strings.Index(loc, "?")]
	offered := b.waitEvent(id, events.TypeReferralOffered).Payload.(*events.Offered).Organisation
	if eval[bool](ta, `!!document.querySelector('#seal-p1')`) {
		t.Errorf("before anyone accepted, the referral page offers to seal the case file")
	}

	bea := b.addPerson("bea", console.RoleCaseworker, offered)
	tb := b.tab(t)
	tb.signIn(bea, "en")
	tb.open("/console/en/referrals/" + id)
	tb.submit("#accept-p1")
	tb.waitFor(`document.querySelector('#done-notice')`)

	// A writes the case details; the page seals them to B's organisation.
	ta.open("/console/en/referrals/" + id)
	ta.waitFor(`document.querySelector('#seal-p1')`)
	if got, want := eval[string](ta, `document.querySelector('#case-file-p1').dataset.recipient`), keys[offered].Recipient().String(); got != want {
		t.Fatalf("data-recipient %q, want the accepting organisation's %q", got, want)
	}
	if eval[bool](ta, `document.querySelector('#case-text-p1').hasAttribute('name')`) {
		t.Fatal("the case details textarea has a name: the browser would post it")
	}
	ta.axe("casefile-seal")
	ta.screenshot("casefile-seal-en")
	ta.set("#case-text-p1", canary)
	ta.submit("#handover-p1")
	ta.waitFor(`document.querySelector('#done-notice')`)
	h := b.waitEvent(id, events.TypeReferralHandover).Payload.(*events.Handover)
	rd, err := age.Decrypt(armor.NewReader(strings.NewReader(h.Envelope)), keys[offered])
	if err != nil {
		t.Fatalf("the handed-over envelope is not sealed to the accepting organisation: %v", err)
	}
	if plain, _ := io.ReadAll(rd); string(plain) != canary {
		t.Fatalf("the envelope holds %q, want the case details", plain)
	}

	// B's organisation has no key stored yet: she is told so, in words.
	tb.open("/console/en/referrals/" + id)
	tb.waitFor(`document.querySelector('#case-file-received-p1 pre[data-envelope]')`)
	unlock := func(p string) string {
		tb.do(chromedp.Evaluate[chromedp.Void](`document.querySelector('#open-status-p1').textContent = ''`))
		tb.set("#passphrase-p1", p)
		tb.click("#open-button-p1")
		tb.waitFor(`(t => t !== '' && t !== document.querySelector('[data-casefile-open]').dataset.msgWorking)(document.querySelector('#open-status-p1').textContent)`)
		return tb.text("#open-status-p1")
	}
	if got := unlock(pass); !strings.Contains(got, "No key is stored for your organisation") || !strings.Contains(got, "/en/open") {
		t.Errorf("with no wrapped key stored, the page says %q", got)
	}
	tb.axe("casefile-nokey")
	tb.screenshot("casefile-nokey-en")

	// Its administrator stored the wrapped key (as PUT /v1/keys/identity
	// does, in the same bucket).
	wrapped := wrapIdentity(t, keys[offered], pass)
	v, _ := json.Marshal(httpapi.WrappedIdentity{WrappedIdentity: wrapped})
	if err := b.ports.Keys.Put(t.Context(), "identity."+offered, v); err != nil {
		t.Fatal(err)
	}
	if got := unlock("not the passphrase"); !strings.Contains(got, "Wrong passphrase") {
		t.Errorf("a wrong passphrase says %q", got)
	}
	if eval[bool](tb, `!!document.querySelector('#case-file-received-p1 pre:not([hidden])')`) {
		t.Error("a case file is shown after a wrong passphrase")
	}
	tb.axe("casefile-badpass")
	unlock(pass)
	tb.waitFor(`!document.querySelector('#case-file-received-p1 pre').hidden`)
	if got := tb.text("#case-file-received-p1 pre"); got != canary {
		t.Errorf("B reads %q, want the case details", got)
	}
	tb.axe("casefile-open")
	tb.screenshot("casefile-open-en")

	// The same in Portuguese: a new page, unlocked again.
	tb.open("/console/pt/referrals/" + id)
	unlock(pass)
	tb.waitFor(`!document.querySelector('#case-file-received-p1 pre').hidden`)
	if got := tb.text("#case-file-received-p1 pre"); got != canary {
		t.Errorf("B reads %q in Portuguese, want the case details", got)
	}
	tb.axe("casefile-open-pt")
	tb.screenshot("casefile-open-pt")
	ta.open("/console/pt/referrals/" + id)
	ta.waitFor(`document.querySelector('#seal-p1')`)
	ta.axe("casefile-seal-pt")
	ta.screenshot("casefile-seal-pt")

	// Nothing the server received or keeps holds the case details or the
	// unwrapped identity; the envelope it keeps is ciphertext.
	for what, secret := range map[string]string{"the case details": canary, "the identity": keys[offered].String()} {
		if strings.Contains(b.bodies.String(), secret) {
			t.Errorf("a request body held %s", what)
		}
		if strings.Contains(b.logs.String(), secret) {
			t.Errorf("the logs held %s", what)
		}
		if found := b.streamsContain(secret); len(found) > 0 {
			t.Errorf("streams %v held %s", found, what)
		}
	}
	if !strings.Contains(b.bodies.String(), "action=handover") {
		t.Error("the recorder saw no handover post: the checks above prove nothing")
	}
	if found := b.streamsContain(h.Envelope[40:80]); len(found) == 0 {
		t.Error("no stream holds the envelope: the stream check proves nothing")
	}
}

// TestCaseFileHTTP: without a published recipient the referrer is told
// why she cannot seal, and a handover without an envelope changes
// nothing; the wrapped identity is given only to a signed-in caseworker,
// and only her own organisation's.
func TestCaseFileHTTP(t *testing.T) {
	t.Parallel()
	b := setup(t) // the demo directory publishes no keys
	o := referOffered(t, b, "bea", console.RoleCaseworker)
	o.accept(t, b)
	id, offered, ca, cb := o.id, o.offered, o.ca, o.ct
	r := ca.get("/console/en/referrals/" + id)
	if !strings.Contains(r.body, `id="no-recipient-p1"`) || strings.Contains(r.body, `id="seal-p1"`) {
		t.Errorf("with no recipient published, the page does not explain why the case file cannot be sealed")
	}
	if !strings.Contains(r.body, "/console/static/seal.js?v=") || !strings.Contains(r.body, "/console/static/casefile.js?v=") {
		t.Errorf("the referral page does not load the sealing scripts")
	}
	before := b.count(id)
	if r := ca.post("/console/en/referrals/"+id, url.Values{"action": {"handover"}, "placement": {"p1"}, "recipient": {"age1x"}}); r.status != http.StatusUnprocessableEntity {
		t.Errorf("a handover without an envelope: status %d", r.status)
	}
	if b.count(id) != before {
		t.Errorf("a handover without an envelope changed the referral")
	}

	anon := b.client().get("/console/keys/identity")
	if anon.status != http.StatusUnauthorized || !strings.Contains(anon.body, `"error"`) {
		t.Errorf("without a session: %d %s", anon.status, anon.body)
	}
	if r := cb.get("/console/keys/identity"); r.status != http.StatusNotFound || !strings.Contains(r.body, `"not_found"`) {
		t.Errorf("with no key stored: %d %s", r.status, r.body)
	}
	for org, v := range map[string]string{offered: "B-WRAPPED", "pt.apav": "A-WRAPPED"} {
		j, _ := json.Marshal(httpapi.WrappedIdentity{WrappedIdentity: v})
		if err := b.ports.Keys.Put(t.Context(), "identity."+org, j); err != nil {
			t.Fatal(err)
		}
	}
	for c, want := range map[*client]string{cb: "B-WRAPPED", ca: "A-WRAPPED"} {
		r := c.get("/console/keys/identity")
		var got httpapi.WrappedIdentity
		if err := json.Unmarshal([]byte(r.body), &got); err != nil || r.status != http.StatusOK || got.WrappedIdentity != want {
			t.Errorf("wrapped identity: %d %s, want %s", r.status, r.body, want)
		}
	}
}
