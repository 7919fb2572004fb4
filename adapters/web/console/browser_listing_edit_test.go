package console_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/invictus-network/invictus/adapters/web"
	"github.com/invictus-network/invictus/adapters/web/console"
)

// zeroAxe fails the test unless axe-core found no violation at all (of
// any impact) on the pages checked under these names.
func zeroAxe(t *testing.T, names ...string) {
	t.Helper()
	for _, name := range names {
		if n, ok := axeResults.Load(name); !ok || n.(int) != 0 {
			t.Errorf("axe on %s: %v violations, want 0", name, n)
		}
	}
}

// TestBrowserListingEdit: an organisation administrator edits a service's
// hours and languages in the browser; the public search then finds the
// service in the new language. axe-core finds nothing
// on the edit page, in English (before and after saving) and Portuguese.
func TestBrowserListingEdit(t *testing.T) {
	b := setupListing(t)
	olga := b.addPerson("olga", console.RoleOrgAdmin, "pt.apav")
	own, _ := servicesOf(t, b, "pt.apav")
	svc := b.view.Service(own[0])
	site, err := web.New(web.Deps{Directory: b.view}, web.Config{})
	if err != nil {
		t.Fatal(err)
	}
	public := newServer(t, site)
	ta := b.tab(t)
	ta.signIn(olga, "en")
	ta.open("/console/en/listing")
	ta.submit(`a[id="edit-` + svc.ID + `"]`)
	ta.waitFor(`document.querySelector('#edit-form')`)
	ta.axe("listing-edit")
	ta.screenshot("listing-edit-en")
	ta.set("#hours", "mo-fr 08:00-20:00")
	ta.set("#languages", "pt, uk")
	ta.submit("#save-details")
	ta.waitFor(`document.querySelector('#edit-done')`)
	ta.axe("listing-edit-saved")
	if got := ta.text("#edit-done"); !strings.Contains(got, "Saved") {
		t.Errorf("notice: %q", got)
	}
	ta.open("/console/pt/listing/edit?service=" + url.QueryEscape(svc.ID))
	ta.axe("listing-edit-pt")
	ta.screenshot("listing-edit-pt")
	zeroAxe(t, "listing-edit", "listing-edit-saved", "listing-edit-pt")

	// The public search finds the service in Ukrainian now.
	ta.do(chromedp.Navigate(public + "/en/find?country=pt&need=" + url.QueryEscape(svc.Needs[0]) + "&language=uk"))
	ta.waitFor(`document.querySelector('#results-heading')`)
	body := ta.text("main")
	if !strings.Contains(body, svc.Name) {
		t.Errorf("public search in Ukrainian does not list %q: %s", svc.Name, body)
	}
}
