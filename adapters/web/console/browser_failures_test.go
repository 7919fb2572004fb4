package console_test

import (
	"strings"
	"testing"
	"time"

	"github.com/invictus-network/invictus/adapters/web/console"
	"github.com/invictus-network/invictus/events"
)

// TestBrowserFailures: an organisation administrator reads the e-mails
// to her organisation that were given up, and, as a referrer, the
// timeline of a referral whose offer did not reach the offered
// organisation; axe-core checks both pages in English and Portuguese.
func TestBrowserFailures(t *testing.T) {
	b := setup(t)
	fl := &failureList{byOrg: map[string][]console.DeliveryFailure{"pt.apav": {
		{At: time.Now().Add(-time.Hour), Kind: "offer", Referral: events.NewReferralID(), Placement: "p1", Code: 550, Attempts: 1},
		{At: time.Now(), Kind: "digest", Attempts: 16, Temporary: true},
	}}}
	withChannels(b, fl)
	olga := b.addPerson("olga", console.RoleOrgAdmin, "pt.apav")
	c := b.client()
	c.signIn(olga)
	id, offered := refer(t, b, c)
	notifyFailed(t, b, "pt.apav", id, "p1", offered)

	ta := b.tab(t)
	ta.signIn(olga, "en")
	for _, lang := range []string{"en", "pt"} {
		ta.open("/console/" + lang + "/failures")
		ta.waitFor(`document.querySelector('#failures-list')`)
		ta.axe("failures-" + lang)
		ta.screenshot("failures-" + lang)
		if got := ta.text("#failures-list"); !strings.Contains(got, "SMTP 550") || !strings.Contains(got, "p1") {
			t.Errorf("%s: the list: %q", lang, got)
		}
		ta.open("/console/" + lang + "/referrals/" + id)
		ta.waitFor(`document.querySelector('#who')`)
		ta.axe("referral-undelivered-" + lang)
		want := map[string]string{"en": "Offer not delivered", "pt": "Oferta não entregue"}[lang]
		if got := ta.text("main"); !strings.Contains(got, want) {
			t.Errorf("%s: the timeline lacks %q", lang, want)
		}
	}
}
