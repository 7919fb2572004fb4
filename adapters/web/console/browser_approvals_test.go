package console_test

import (
	"strings"
	"testing"

	"github.com/invictus-network/invictus/adapters/web/console"
)

// TestBrowserApprovals: a directory administrator signs in with her
// second factor, reads the organisations waiting for approval and
// approves one in the browser; the page says so, the directory lists it.
// axe-core checks the page in English and Portuguese.
func TestBrowserApprovals(t *testing.T) {
	b := setupListing(t)
	newOrganisation(t, b, "pt.novo", "Apoio Novo")
	newOrganisation(t, b, "pt.outra", "Outra Linha")
	dina := b.addPerson("dina", console.RoleDirectoryAdmin, "")
	ta := b.tab(t)
	ta.signIn(dina, "en")
	ta.open("/console/en/organisations")
	ta.axe("approvals")
	ta.screenshot("approvals-en")
	ta.submit(`button[id="approve-pt.novo"]`)
	ta.waitFor(`document.querySelector('#approvals-done')`)
	ta.axe("approvals-approved")
	if got := ta.text("#approvals-done"); !strings.Contains(got, "Apoio Novo") {
		t.Errorf("notice: %q", got)
	}
	if o := b.view.Organisation("pt.novo"); o == nil || o.Pending {
		t.Errorf("pt.novo after approval: %+v", o)
	}
	ta.open("/console/pt/organisations")
	ta.axe("approvals-pt")
	ta.screenshot("approvals-pt")
	zeroAxe(t, "approvals", "approvals-approved", "approvals-pt")
	if !strings.Contains(ta.text("h1"), "aprovação") {
		t.Errorf("Portuguese title: %q", ta.text("h1"))
	}
}
