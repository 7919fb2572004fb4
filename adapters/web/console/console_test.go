package console_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/invictus-network/invictus/adapters/web/console"
	"github.com/invictus-network/invictus/events"
)

// refer signs a caseworker of the referrer in, sends the valid
// assessment and returns the referral's id once it is offered, with the
// organisation it was offered to.
func refer(t *testing.T, b *bundle, c *client) (id, offeredTo string) {
	t.Helper()
	c.get("/console/en/assess")
	r := c.post("/console/en/assess", validAssessment())
	if r.status != http.StatusOK || !strings.Contains(r.body, `id="send-form"`) {
		t.Fatalf("preview: status %d", r.status)
	}
	form := validAssessment()
	form.Set("confirm", "yes")
	r = c.post("/console/en/send", form)
	if r.status != http.StatusSeeOther || !strings.Contains(r.location, "/referrals/") {
		t.Fatalf("send: status %d to %q: %s", r.status, r.location, r.body)
	}
	id = strings.TrimSuffix(strings.TrimPrefix(r.location, "/console/en/referrals/"), "?sent=1")
	ev := b.waitEvent(id, events.TypeReferralOffered)
	return id, ev.Payload.(*events.Offered).Organisation
}

// TestSignInWrongPassword: a wrong password is refused with a message
// that does not say which part was wrong, and sets no session.
func TestSignInWrongPassword(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.addPerson("ana", console.RoleCaseworker, "pt.apav")
	c := b.client()
	c.get("/console/en/signin")
	for _, tc := range []struct{ name, pw string }{{p.name, "wrong password!"}, {"nobody", "whatever it is"}} {
		r := c.post("/console/en/signin", url.Values{"username": {tc.name}, "password": {tc.pw}})
		if r.status != http.StatusUnauthorized || !strings.Contains(r.body, "The name or password is wrong") {
			t.Errorf("%s: status %d", tc.name, r.status)
		}
	}
	if r := c.get("/console/en/"); r.status != http.StatusSeeOther || !strings.Contains(r.location, "/signin") {
		t.Errorf("home without a session: status %d to %q", r.status, r.location)
	}
}

// TestSignInLockOut: five wrong passwords lock the account, even for the
// right password, until the lock ends.
func TestSignInLockOut(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.addPerson("ana", console.RoleCaseworker, "pt.apav")
	c := b.client()
	c.get("/console/en/signin")
	for range console.LockAfterDefault {
		c.post("/console/en/signin", url.Values{"username": {p.name}, "password": {"wrong password!"}})
	}
	r := c.post("/console/en/signin", url.Values{"username": {p.name}, "password": {p.password}})
	if r.status != http.StatusForbidden || !strings.Contains(r.body, "locked") {
		t.Fatalf("locked account: status %d", r.status)
	}
	b.advance(console.LockForDefault + time.Second)
	c.signIn(p)
}

// TestSignInRateLimit: one address trying too fast is slowed down.
func TestSignInRateLimit(t *testing.T) {
	t.Parallel()
	b := setup(t)
	srv, err := console.New(console.Deps{Accounts: b.stores.Accounts, Sessions: b.stores.Sessions, Audit: b.stores.Audit,
		Commands: b.ports.Commands, Outcomes: b.ports.Outcomes, Timeline: b.ports.Timeline, Inbox: b.ports.Inbox,
		Directory: dirView(), Matcher: matcher()}, console.Config{SignInRate: 2})
	if err != nil {
		t.Fatal(err)
	}
	b.srv = srv
	ts := newServer(t, srv)
	b.url = ts
	c := b.client()
	c.get("/console/en/signin")
	var last page
	for range 3 {
		last = c.post("/console/en/signin", url.Values{"username": {"x-person"}, "password": {"wrong password!"}})
	}
	if last.status != http.StatusTooManyRequests {
		t.Fatalf("third attempt: status %d", last.status)
	}
}

// TestSessionExpires: a session nobody used for longer than the idle
// limit ends; the person is sent to sign in again.
func TestSessionExpires(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, c := b.signedIn("ana", console.RoleCaseworker, "pt.apav")
	if r := c.get("/console/en/"); r.status != http.StatusOK {
		t.Fatalf("home: status %d", r.status)
	}
	b.advance(console.SessionIdleDefault + time.Minute)
	r := c.get("/console/en/")
	if r.status != http.StatusSeeOther || !strings.Contains(r.location, "/signin?expired=1") {
		t.Fatalf("expired session: status %d to %q", r.status, r.location)
	}
	if r := c.get(r.location); !strings.Contains(r.body, "Your session has ended") {
		t.Errorf("the sign-in page does not say the session ended")
	}
}

// TestSignOutEverywhere ends the person's other sessions too.
func TestSignOutEverywhere(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.addPerson("ana", console.RoleCaseworker, "pt.apav")
	c1, c2 := b.client(), b.client()
	c1.signIn(p)
	c2.signIn(p)
	r := c1.post("/console/en/signout", url.Values{"everywhere": {"yes"}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("sign out: status %d", r.status)
	}
	if r := c2.get("/console/en/"); r.status != http.StatusSeeOther {
		t.Errorf("the other session still works: status %d", r.status)
	}
}

// TestCSRFMissing: a post without the form's token is refused and
// changes nothing; with another session's token too.
func TestCSRFMissing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	o := referOffered(t, b, "bea", console.RoleCaseworker)
	id, c, cb := o.id, o.ca, o.ct
	before := b.count(id)
	form := url.Values{"action": {"accept"}, "placement": {"p1"}, "csrf": {""}}
	r := cb.do(http.MethodPost, "/console/en/referrals/"+id, form)
	if r.status != http.StatusForbidden || !strings.Contains(r.body, "did not come from this console") {
		t.Fatalf("no token: status %d", r.status)
	}
	form.Set("csrf", c.csrf) // ana's token
	if r := cb.do(http.MethodPost, "/console/en/referrals/"+id, form); r.status != http.StatusForbidden {
		t.Fatalf("another session's token: status %d", r.status)
	}
	if r := c.do(http.MethodPost, "/console/en/send", validAssessment()); r.status != http.StatusForbidden {
		t.Fatalf("send without a token: status %d", r.status)
	}
	if got := b.count(id); got != before {
		t.Errorf("the referral changed: %d events, was %d", got, before)
	}
	if !strings.Contains(b.logs.String(), `"action":"csrf_refused"`) {
		t.Errorf("no audit line for the refusal")
	}
}

// TestOtherOrganisationRefused: a caseworker of an organisation that is
// no party to a referral can neither open it nor accept its offer; an
// organisation it was not offered to cannot accept it either. Nothing
// changes, and the refusal leaves an audit line.
func TestOtherOrganisationRefused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, c := b.signedIn("ana", console.RoleCaseworker, "pt.apav")
	id, offered := refer(t, b, c)
	other := "pt.quebrar-o-silencio"
	if other == offered {
		other = "pt.amcv"
	}
	_, ce := b.signedIn("eve", console.RoleCaseworker, other)
	before := b.count(id)
	if r := ce.get("/console/en/referrals/" + id); r.status != http.StatusNotFound || !strings.Contains(r.body, "no referral with this number") {
		t.Fatalf("open: status %d", r.status)
	}
	if r := ce.post("/console/en/referrals/"+id, url.Values{"action": {"accept"}, "placement": {"p1"}}); r.status != http.StatusNotFound {
		t.Fatalf("accept: status %d", r.status)
	}
	// The referrer itself cannot accept the offer made to another.
	if r := c.post("/console/en/referrals/"+id, url.Values{"action": {"accept"}, "placement": {"p1"}}); r.status != http.StatusForbidden {
		t.Fatalf("referrer accepts: status %d", r.status)
	}
	if got := b.count(id); got != before {
		t.Errorf("the referral changed: %d events, was %d", got, before)
	}
	for _, want := range []string{`"action":"open_refused"`, `"action":"action_refused"`} {
		if !strings.Contains(b.logs.String(), want) {
			t.Errorf("no audit line %s", want)
		}
	}
	if strings.Contains(b.logs.String(), `"eve"`) || strings.Contains(b.logs.String(), `"ana"`) {
		t.Errorf("a person's name is in the log")
	}
}

// TestAssessmentErrors: an invalid form shows every error at once beside
// its field, and sends nothing.
func TestAssessmentErrors(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, c := b.signedIn("ana", console.RoleCaseworker, "pt.apav")
	c.get("/console/en/assess")
	bad := url.Values{"urgency": {"whenever"}, "country": {"pt"}, "city": {"fr:2988507"}, "hours": {"9999"},
		"consent_given_at": {"yesterday"}, "languages": {"xx"}, "region": {"FR10"}, "preferred": {"pt.nobody"}}
	r := c.post("/console/en/assess", bad)
	if r.status != http.StatusUnprocessableEntity {
		t.Fatalf("status %d", r.status)
	}
	for _, field := range []string{"needs", "urgency", "city", "hours", "consent_given_at", "languages", "channels",
		"consent_referral", "consent_method", "preferred", "age_band"} {
		if !strings.Contains(r.body, `id="err-`+field+`"`) {
			t.Errorf("no error beside %s", field)
		}
	}
	if !strings.Contains(r.body, `id="error-summary"`) {
		t.Error("no error summary")
	}
	// Sending the same form directly is refused the same way.
	if r := c.post("/console/en/send", bad); r.status != http.StatusUnprocessableEntity {
		t.Errorf("send: status %d", r.status)
	}
	// A complete form without the confirmation is not sent.
	if r := c.post("/console/en/send", validAssessment()); r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, `id="err-confirm"`) {
		t.Errorf("send without confirmation: status %d", r.status)
	}
	if r := c.get("/console/en/"); !strings.Contains(r.body, `id="no-sent"`) {
		t.Error("a referral was sent")
	}
}

// TestRoles: a caseworker cannot open the people page; a directory
// administrator cannot assess.
func TestRoles(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, c := b.signedIn("ana", console.RoleCaseworker, "pt.apav")
	if r := c.get("/console/en/people"); r.status != http.StatusForbidden {
		t.Errorf("people: status %d", r.status)
	}
	d := b.addPerson("dina", console.RoleDirectoryAdmin, "")
	cd := b.client()
	cd.signIn(d) // with a second factor: she approves the organisations that receive case data
	if r := cd.get("/console/en/assess"); r.status != http.StatusForbidden {
		t.Errorf("assess as directory admin: status %d", r.status)
	}
}

// TestInvitation: an organisation administrator invites a person; the
// link creates the account once.
func TestInvitation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, c := b.signedIn("olga", console.RoleOrgAdmin, "pt.apav")
	c.get("/console/en/people")
	r := c.post("/console/en/people", url.Values{"action": {"invite"}, "role": {"caseworker"}, "username": {"nuno"}})
	i := strings.Index(r.body, `id="invite-url">`)
	if r.status != http.StatusOK || i < 0 {
		t.Fatalf("invite: status %d", r.status)
	}
	rest := r.body[i+len(`id="invite-url">`):]
	link := rest[:strings.IndexByte(rest, '<')]
	n := b.client()
	n.get(link)
	if r := n.post(link, url.Values{"password": {"short"}, "password2": {"short"}}); r.status != http.StatusUnprocessableEntity {
		t.Fatalf("weak password: status %d", r.status)
	}
	if r := n.post(link, url.Values{"password": {"a long enough password"}, "password2": {"a long enough password"}}); r.status != http.StatusSeeOther {
		t.Fatalf("redeem: status %d", r.status)
	}
	if r := n.get(link); r.status != http.StatusNotFound {
		t.Fatalf("second use: status %d", r.status)
	}
	n.signIn(&person{name: "nuno", password: "a long enough password"})
	// The administrator disables the account: its session ends.
	c.get("/console/en/people")
	c.post("/console/en/people", url.Values{"action": {"disable"}, "username": {"nuno"}})
	if r := n.get("/console/en/"); r.status != http.StatusSeeOther {
		t.Errorf("disabled account still signed in: status %d", r.status)
	}
}

// TestReferralLifecycleHTTP: the whole loop without a browser: refer,
// accept, contact, hold, complete, feedback; both sides see it.
func TestReferralLifecycleHTTP(t *testing.T) {
	t.Parallel()
	b := setup(t)
	o := referOffered(t, b, "bea", console.RoleCaseworker)
	id, ca, cb := o.id, o.ca, o.ct
	if r := cb.get("/console/en/"); !strings.Contains(r.body, id) {
		t.Fatalf("the offer is not in the recipient's list")
	}
	r := cb.get("/console/en/referrals/" + id)
	if !strings.Contains(r.body, "Emotional support") || !strings.Contains(r.body, `data-deadline=`) {
		t.Fatalf("the offer does not show the profile in words and the deadline")
	}
	steps := []struct {
		form url.Values
		typ  string
	}{
		{url.Values{"action": {"decline"}, "placement": {"p1"}, "reason": {"no such reason"}}, ""},
		{url.Values{"action": {"accept"}, "placement": {"p1"}}, events.TypeReferralAccepted},
		{url.Values{"action": {"hold"}, "placement": {"p1"}}, events.TypeReferralOnHold},
		{url.Values{"action": {"contact"}, "placement": {"p1"}}, events.TypeReferralContacted},
		{url.Values{"action": {"complete"}, "placement": {"p1"}, "outcome": {"supported"}}, events.TypeReferralCompleted},
		{url.Values{"action": {"feedback"}, "placement": {"p1"}, "q_helpful": {"5"}, "q_informed": {"4"}, "missing": {"follow_up"}}, events.TypeReferralFeedback},
	}
	for _, s := range steps {
		before := b.count(id)
		cb.get("/console/en/referrals/" + id)
		r := cb.post("/console/en/referrals/"+id, s.form)
		if s.typ == "" {
			if r.status != http.StatusUnprocessableEntity || b.count(id) != before {
				t.Fatalf("%s: status %d", s.form.Get("action"), r.status)
			}
			continue
		}
		if r.status != http.StatusSeeOther {
			t.Fatalf("%s: status %d: %s", s.form.Get("action"), r.status, r.body)
		}
		b.waitEvent(id, s.typ)
	}
	r = ca.get("/console/en/referrals/" + id)
	for _, want := range []string{"Accepted", "Contact made", "On hold", "Completed", "Supported", "Feedback received"} {
		if !strings.Contains(r.body, want) {
			t.Errorf("the referrer's timeline lacks %q", want)
		}
	}
	// The consent records the referrer's staff id, never the name.
	req := b.waitEvent(id, events.TypeReferralRequested).Payload.(*events.Requested)
	u, err := b.srv.Accounts().Get(t.Context(), "ana")
	if err != nil {
		t.Fatal(err)
	}
	if req.Consent.RecordedBy != u.StaffRef || !events.IsStaffRef(u.StaffRef) {
		t.Errorf("recorded_by %q, staff ref %q", req.Consent.RecordedBy, u.StaffRef)
	}
}
