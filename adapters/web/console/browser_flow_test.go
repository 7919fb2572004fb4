package console_test

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/invictus-network/invictus/adapters/web/console"
	"github.com/invictus-network/invictus/events"
)

// fillAssessment fills the assessment form as a caseworker would.
func (s *tab) fillAssessment() {
	s.t.Helper()
	for _, sel := range []string{
		`input[name=needs][value="support.emotional"]`, `input[name=urgency][value="soon"]`,
		`input[name=crimes][value="domestic_violence"]`, `input[name=flags][value="close_relationship_offender"]`,
		`input[name=languages][value="pt"]`, `input[name=age_band][value="adult"]`,
		`input[name=channels][value="phone"]`, `input[name=channels][value="in_person"]`,
		`input[name=consent_referral]`, `input[name=consent_share_data]`, `input[name=consent_method][value="verbal"]`,
	} {
		s.check(sel)
	}
	s.set("#country", "pt")
	s.set("#city", lisbonID())
	s.set("#gender", "female")
}

// TestBrowserReferral is the whole loop in two browsers: caseworker A
// signs in (enrolling her second factor), assesses, previews and refers;
// caseworker B of the organisation offered the placement sees the offer
// with its profile in words, accepts, reports contact and the outcome;
// A's open page is told live, and A reads the whole timeline. axe-core
// checks every page on the way.
func TestBrowserReferral(t *testing.T) {
	b := setup(t)
	a := b.addPerson("ana", console.RoleCaseworker, "pt.apav")
	ta := b.tab(t)

	ta.open("/console/en/signin")
	ta.axe("signin")
	ta.screenshot("signin-en")
	ta.set("#username", a.name)
	ta.set("#password", a.password)
	ta.submit("#signin-form button")
	ta.waitFor(`document.querySelector('#totp-secret')`)
	ta.axe("enrol")
	a.secret = strings.ReplaceAll(ta.text("#totp-secret"), " ", "")
	ta.set("#code", b.code(a.secret))
	ta.submit("#enrol-form button")
	ta.waitFor(`document.querySelector('#no-sent')`)
	ta.axe("home-empty")

	// An incomplete assessment: every error at once, beside its field.
	ta.open("/console/en/assess")
	ta.axe("assess")
	ta.screenshot("assess-en")
	ta.do(chromedp.Evaluate[chromedp.Void](`document.querySelector('input[name=urgency][value="routine"]').checked = false`))
	ta.submit("#preview")
	ta.waitFor(`document.querySelector('#error-summary')`)
	n := eval[int](ta, `document.querySelectorAll('#error-summary li').length`)
	if n < 5 {
		t.Errorf("the summary lists %d errors, want the 5 missing fields at least", n)
	}
	for _, f := range []string{"needs", "urgency", "languages", "channels", "consent_referral", "consent_method"} {
		if !eval[bool](ta, `!!document.querySelector('#f-`+f+` .field-error')`) {
			t.Errorf("no error beside %s", f)
		}
	}
	ta.axe("assess-errors")
	ta.screenshot("assess-errors-en")

	ta.fillAssessment()
	ta.submit("#preview")
	ta.waitFor(`document.querySelector('#send-form')`)
	ta.axe("plan")
	ta.screenshot("plan-en")
	first := ta.text(".group .candidate.first .svc")
	if first == "" || strings.Contains(first, "pt.") {
		t.Errorf("the first candidate is not named in words: %q", first)
	}
	if !strings.Contains(ta.text("#groups"), "Why proposed") || !strings.Contains(ta.text("#groups"), "Português") {
		t.Errorf("the plan does not explain its candidates: %s", ta.text("#groups"))
	}
	// Sending asks for confirmation.
	ta.submit("#send")
	ta.waitFor(`document.querySelector('#err-confirm')`)
	ta.check("#confirm")
	ta.submit("#send")
	ta.waitFor(`document.querySelector('#sent-notice')`)
	ta.axe("referral-sent")
	loc := get(ta, chromedp.Location())
	id := loc[strings.Index(loc, "/referrals/")+len("/referrals/") : strings.Index(loc, "?")]
	offered := b.waitEvent(id, events.TypeReferralOffered).Payload.(*events.Offered).Organisation

	// A waits on her list, which is told when something changes.
	ta.open("/console/en/")
	ta.waitFor(`document.body.dataset.liveOpen === '1'`)

	bea := b.addPerson("bea", console.RoleCaseworker, offered)
	tb := b.tab(t)
	tb.signIn(bea, "en")
	tb.waitFor(`document.querySelector('#received tr[data-id="` + id + `"]')`)
	tb.axe("home-offers")
	tb.screenshot("home-en")
	tb.open("/console/en/referrals/" + id)
	tb.axe("offer")
	tb.screenshot("offer-en")
	offer := tb.text("#placements")
	for _, want := range []string{"Emotional support", "Domestic violence", "Português"} {
		if !strings.Contains(offer, want) {
			t.Errorf("the offer does not show %q in words: %s", want, offer)
		}
	}
	if !eval[bool](tb, `/\(.+\)/.test(document.querySelector('[data-deadline]').innerText)`) {
		t.Errorf("the deadline is not counted down: %q", tb.text("[data-deadline]"))
	}
	tb.submit("#accept-p1")
	tb.waitFor(`document.querySelector('#done-notice')`)
	ta.waitFor(`Number(document.body.dataset.updates || 0) > 0 && !document.querySelector('#live-notice').hidden`)
	tb.submit("#contact-p1")
	tb.waitFor(`document.querySelector('#pl-p1').dataset.status === 'in_progress'`)
	tb.set("#outcome-p1", "supported")
	tb.submit("#complete-p1")
	tb.waitFor(`document.querySelector('#pl-p1').dataset.status === 'completed'`)
	tb.axe("offer-completed")

	ta.open("/console/en/referrals/" + id)
	tl := ta.text("#timeline")
	for _, want := range []string{"Referral requested", "Plan made", "Offered", "Accepted", "Contact made", "Completed"} {
		if !strings.Contains(tl, want) {
			t.Errorf("the referrer's timeline lacks %q: %s", want, tl)
		}
	}
	ta.axe("referral-timeline")
	ta.screenshot("referral-en")

	// The same pages in Portuguese.
	ta.open("/console/pt/referrals/" + id)
	ta.axe("referral-pt")
	ta.screenshot("referral-pt")
	ta.open("/console/pt/assess")
	ta.axe("assess-pt")
	ta.screenshot("assess-pt")
	ta.fillAssessment()
	ta.submit("#preview")
	ta.waitFor(`document.querySelector('#send-form')`)
	ta.axe("plan-pt")
	ta.screenshot("plan-pt")
	tb.open("/console/pt/")
	tb.axe("home-pt")
	tb.screenshot("home-pt")
	tb.open("/console/pt/referrals/" + id)
	tb.screenshot("offer-pt")
	tp := b.tab(t)
	tp.open("/console/pt/signin")
	tp.axe("signin-pt")
	tp.screenshot("signin-pt")
}
