package console_test

import (
	"strings"
	"testing"

	"github.com/invictus-network/invictus/adapters/web/console"
	"github.com/invictus-network/invictus/events"
)

// TestBrowserAdminPages: an organisation administrator invites a person
// and reads the audit log; the invited person creates her account from
// the link; a second sign-in asks for the code; a referral of another
// organisation is refused in words. axe-core checks every page.
func TestBrowserAdminPages(t *testing.T) {
	b := setup(t)
	olga := b.addPerson("olga", console.RoleOrgAdmin, "pt.apav")
	ta := b.tab(t)
	ta.signIn(olga, "en")
	ta.open("/console/en/people")
	ta.axe("people")
	ta.set("#inv-username", "nuno")
	ta.submit("#invite-new button")
	ta.waitFor(`document.querySelector('#invite-url')`)
	ta.axe("people-invited")
	ta.screenshot("people-en")
	link := ta.text("#invite-url")

	tn := b.tab(t)
	tn.open(link)
	tn.axe("invite")
	tn.set("#password", "short")
	tn.set("#password2", "short")
	tn.submit("#invite-form button")
	tn.waitFor(`document.querySelector('.field-error')`)
	tn.axe("invite-errors")
	tn.set("#password", "a long enough password")
	tn.set("#password2", "a long enough password")
	tn.submit("#invite-form button")
	tn.waitFor(`document.querySelector('#signin-form')`)
	nuno := &person{name: "nuno", password: "a long enough password"}
	tn.signIn(nuno, "en")

	// A second sign-in asks for the code of the enrolled factor.
	ta.submit("#signout")
	ta.waitFor(`document.querySelector('#notice')`)
	ta.set("#username", olga.name)
	ta.set("#password", olga.password)
	ta.submit("#signin-form button")
	ta.waitFor(`document.querySelector('#code-form')`)
	ta.axe("code")
	ta.set("#code", b.code(olga.secret))
	ta.submit("#code-form button")
	ta.waitFor(`document.querySelector('#who')`)
	ta.open("/console/en/audit")
	ta.axe("audit")
	if !strings.Contains(ta.text("#audit-list"), "invite") || strings.Contains(ta.text("#audit-list"), "olga") {
		t.Errorf("the audit log: %s", ta.text("#audit-list"))
	}

	// A referral of another organisation: refused in words.
	ta.open("/console/en/referrals/" + events.NewReferralID())
	ta.waitFor(`document.querySelector('#message')`)
	ta.axe("refused")
	if !strings.Contains(ta.text("#message"), "no referral") {
		t.Errorf("refusal: %q", ta.text("#message"))
	}
	tn.open("/console/en/people")
	tn.axe("role-refused")
}

// TestBrowserListing: an organisation administrator sets a service's
// capacity and confirms the organisation's listing in the browser; the
// page says so and shows the new capacity. axe-core checks the page in
// English and Portuguese.
func TestBrowserListing(t *testing.T) {
	b := setupListing(t)
	olga := b.addPerson("olga", console.RoleOrgAdmin, "pt.apav")
	own, _ := servicesOf(t, b, "pt.apav")
	svc := own[0]
	ta := b.tab(t)
	ta.signIn(olga, "en")
	ta.open("/console/en/listing")
	ta.axe("listing")
	sel := `section[id="svc-` + svc + `"]`
	ta.set(sel+` select[name="status"]`, events.CapacityWaitlist)
	ta.submit(sel + ` form button.primary`)
	ta.waitFor(`document.querySelector('.notice')`)
	ta.axe("listing-saved")
	if got := ta.text(sel + ` .capacity`); !strings.Contains(got, "Waiting list") {
		t.Errorf("capacity shown: %q", got)
	}
	if s := b.view.Service(svc); s.Capacity.Status != events.CapacityWaitlist {
		t.Errorf("directory: capacity %s", s.Capacity.Status)
	}
	ta.submit("#confirm-org")
	ta.waitFor(`document.querySelector('.notice')`)
	ta.screenshot("listing-en")
	ta.open("/console/pt/listing")
	ta.axe("listing-pt")
	ta.screenshot("listing-pt")
	if !strings.Contains(ta.text("h1"), "ficha") {
		t.Errorf("Portuguese title: %q", ta.text("h1"))
	}
}
