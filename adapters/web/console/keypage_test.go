package console_test

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"filippo.io/age"
	"filippo.io/age/armor"

	"github.com/invictus-network/invictus/adapters/web/console"
)

// TestKeyPageRefusesWhatTheNodeCouldOpen: the key page stores only a
// passphrase-wrapped identity: a plain key, a form posted without the
// browser's wrapping, or a file sealed to a recipient are refused beside
// the field and store nothing; a wrapped one is stored and audited; a
// caseworker cannot open the page.
func TestKeyPageRefusesWhatTheNodeCouldOpen(t *testing.T) {
	t.Parallel()
	b := setup(t)
	olga := b.addPerson("olga", console.RoleOrgAdmin, "pt.apav")
	c := b.client()
	c.signIn(olga)
	if r := c.get("/console/en/key"); r.status != http.StatusOK || !strings.Contains(r.body, `id="key-form"`) || !strings.Contains(r.body, "none yet") {
		t.Fatalf("key page: status %d, body %s", r.status, excerpt(r.body))
	}
	if strings.Contains(c.get("/console/en/key").body, `name="identity"`) {
		t.Fatal("the key field has a name: the browser would post the key")
	}
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	other, _ := age.GenerateX25519Identity()
	for name, wrapped := range map[string]string{
		"no wrapping (no script)": "",
		"a plain identity":        id.String(),
		"sealed to a recipient":   sealTo(t, other.Recipient(), id.String()),
	} {
		r := c.post("/console/en/key", url.Values{"wrapped": {wrapped}})
		if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, `id="err-key-identity"`) {
			t.Errorf("%s: status %d", name, r.status)
		}
		if _, err := b.ports.Keys.Get(t.Context(), "identity.pt.apav"); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("%s: something was stored (%v)", name, err)
		}
	}
	r := c.post("/console/en/key", url.Values{"wrapped": {wrapIdentity(t, id, "correct horse battery staple")}})
	if r.status != http.StatusOK || !strings.Contains(r.body, `id="key-done"`) {
		t.Fatalf("a wrapped identity: status %d, body %s", r.status, excerpt(r.body))
	}
	if _, err := b.ports.Keys.Get(t.Context(), "identity.pt.apav"); err != nil {
		t.Errorf("nothing stored: %v", err)
	}
	if !strings.Contains(b.logs.String(), `"action":"key_stored"`) {
		t.Error("no audit line for the stored key")
	}
	if strings.Contains(b.logs.String(), id.String()) {
		t.Error("the logs hold the identity")
	}
	ana := b.addPerson("ana", console.RoleCaseworker, "pt.apav")
	ca := b.client()
	ca.signIn(ana)
	if r := ca.get("/console/en/key"); r.status != http.StatusForbidden {
		t.Errorf("caseworker: status %d, want 403", r.status)
	}
}

// sealTo seals text to r, armored, as a browser seals a case file.
func sealTo(t *testing.T, r age.Recipient, text string) string {
	t.Helper()
	var buf bytes.Buffer
	aw := armor.NewWriter(&buf)
	w, err := age.Encrypt(aw, r)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.WriteString(w, text)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := aw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}
