package console_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/invictus-network/invictus/adapters/web/console"
)

// TestListingEditContent: an organisation administrator edits her
// service's hours, languages, channels, age bands and desk; invalid input
// is shown next to each field, all at once, and sends nothing; a valid
// form reaches the directory through the routing service. Another
// organisation's service is refused with an audit line and unchanged.
func TestListingEditContent(t *testing.T) {
	t.Parallel()
	b := setupListing(t)
	olga := b.addPerson("olga", console.RoleOrgAdmin, "pt.apav")
	c := b.client()
	c.signIn(olga)
	own, other := servicesOf(t, b, "pt.apav")
	svc := own[0]
	path := "/console/en/listing/edit?service=" + url.QueryEscape(svc)
	r := c.get(path)
	if r.status != http.StatusOK || !strings.Contains(r.body, `id="hours"`) || !strings.Contains(r.body, `name="channels"`) {
		t.Fatalf("edit page: status %d, body %s", r.status, excerpt(r.body))
	}
	_, rev0, err := b.dir.GetService(t.Context(), svc)
	if err != nil {
		t.Fatal(err)
	}
	r = c.post(path, url.Values{"service": {svc}, "hours": {"someday 9-5"}, "languages": {"pt, xx"}})
	if r.status != http.StatusUnprocessableEntity {
		t.Fatalf("invalid form: status %d", r.status)
	}
	for _, id := range []string{`id="err-hours"`, `id="err-languages"`, `id="err-channels"`} {
		if !strings.Contains(r.body, id) {
			t.Errorf("invalid form: no %s", id)
		}
	}
	// Closing before opening: the directory's own rule, next to the hours.
	r = c.post(path, url.Values{"service": {svc}, "hours": {"mo 17:00-09:00"}, "languages": {"pt"}, "channels": {"phone"}})
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, `id="err-hours"`) {
		t.Errorf("hours closing before opening: status %d", r.status)
	}
	if _, rev, _ := b.dir.GetService(t.Context(), svc); rev != rev0 {
		t.Fatalf("invalid forms changed the service: revision %d -> %d", rev0, rev)
	}

	r = c.post(path, url.Values{"service": {svc}, "hours": {"mo-fr 09:00-13:00; sa 10:00-12:00"}, "languages": {"pt, uk"},
		"channels": {"phone", "in_person"}, "age_bands": {"adult"}, "role": {"Linha de encaminhamento"}, "email": {"desk@example.org"}})
	if r.status != http.StatusOK || !strings.Contains(r.body, "Saved.") {
		t.Fatalf("valid form: status %d, body %s", r.status, excerpt(r.body))
	}
	sv := b.view.Service(svc)
	if !slices.Equal(sv.Languages, []string{"pt", "uk"}) || len(sv.Hours.Weekly) != 6 || sv.Hours.Always ||
		!slices.Equal(sv.Eligibility.AgeBands, []string{"adult"}) || sv.Contact.Role != "Linha de encaminhamento" {
		t.Errorf("the directory has: languages %v, hours %+v, ages %v, contact %+v", sv.Languages, sv.Hours, sv.Eligibility.AgeBands, sv.Contact)
	}
	// The form shows what is stored now.
	if r := c.get(path); !strings.Contains(r.body, `value="mo 09:00-13:00; tu 09:00-13:00; we 09:00-13:00; th 09:00-13:00; fr 09:00-13:00; sa 10:00-12:00"`) {
		t.Errorf("edit page after saving: %s", excerpt(r.body))
	}

	// Another organisation's service: refused, audited, unchanged.
	_, orev0, _ := b.dir.GetService(t.Context(), other)
	otherPath := "/console/en/listing/edit?service=" + url.QueryEscape(other)
	if r := c.get(otherPath); r.status != http.StatusForbidden {
		t.Errorf("another organisation's service: status %d", r.status)
	}
	if r := c.post(otherPath, url.Values{"service": {other}, "hours": {"24/7"}, "languages": {"pt"}, "channels": {"phone"}}); r.status != http.StatusForbidden {
		t.Errorf("editing another organisation's service: status %d", r.status)
	}
	if _, rev, _ := b.dir.GetService(t.Context(), other); rev != orev0 {
		t.Errorf("another organisation's service changed: revision %d -> %d", orev0, rev)
	}
	if !strings.Contains(b.logs.String(), `"action":"listing_refused","referral":"","detail":"`+other+`"`) {
		t.Error("no audit line for the refused edit")
	}
}
