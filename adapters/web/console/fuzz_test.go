package console_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/invictus-network/invictus/adapters/web/console"
)

// FuzzSessionCookie: whatever the session cookie holds, a page answers
// with a redirect to sign in, never an error or a page.
func FuzzSessionCookie(f *testing.F) {
	b := setup(f)
	for _, s := range []string{"", "x", strings.Repeat("a", 43), strings.Repeat("%", 64), "s.abc", "\x00\xff", strings.Repeat("z", 200)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, b.url+"/console/en/", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.AddCookie(&http.Cookie{Name: console.CookieSession, Value: v, Quoted: false})
		c := b.client()
		resp, err := c.hc.Do(req)
		if err != nil {
			return // a value net/http will not send
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther || !strings.Contains(resp.Header.Get("Location"), "/signin") {
			t.Fatalf("cookie %q: status %d to %q", v, resp.StatusCode, resp.Header.Get("Location"))
		}
	})
}

// TestEmergencyBanner: an emergency assessment's plan tells the
// caseworker to call 112.
func TestEmergencyBanner(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a := b.addPerson("ana", console.RoleCaseworker, "pt.apav")
	c := b.client()
	c.signIn(a)
	c.get("/console/en/assess")
	form := validAssessment()
	form.Set("urgency", "emergency")
	r := c.post("/console/en/assess", form)
	if r.status != http.StatusOK || !strings.Contains(r.body, `id="emergency"`) || !strings.Contains(r.body, "call 112") {
		t.Fatalf("status %d, no emergency banner", r.status)
	}
	form.Set("urgency", "soon")
	if r := c.post("/console/en/assess", form); strings.Contains(r.body, `id="emergency"`) {
		t.Error("a banner for a referral that is no emergency")
	}
}

// TestCodeUsedOnce: a second-factor code works once; the next sign-in
// needs the next code.
func TestCodeUsedOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.addPerson("ana", console.RoleCaseworker, "pt.apav")
	c := b.client()
	c.signIn(p) // enrols
	code := b.code(p.secret)
	if _, err := b.srv.Accounts().CheckCode(t.Context(), p.name, "", code); err != nil {
		t.Fatalf("first use: %v", err)
	}
	if _, err := b.srv.Accounts().CheckCode(t.Context(), p.name, "", code); err == nil {
		t.Fatal("the same code worked twice")
	}
	if _, err := b.srv.Accounts().CheckCode(t.Context(), p.name, "", "000000"); err == nil {
		t.Fatal("a wrong code worked")
	}
}
