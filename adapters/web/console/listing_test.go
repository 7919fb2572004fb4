package console_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/invictus-network/invictus/adapters/web/console"
	"github.com/invictus-network/invictus/events"
)

// servicesOf returns the ids of org's services in the view, and one
// service of another organisation.
func servicesOf(t *testing.T, b *bundle, org string) (own []string, other string) {
	t.Helper()
	for _, sv := range b.view.Snapshot().Directory().Services {
		switch {
		case sv.Organisation == org:
			own = append(own, sv.ID)
		case other == "":
			other = sv.ID
		}
	}
	if len(own) == 0 || other == "" {
		t.Fatalf("the demo directory has no service of %s or of another organisation", org)
	}
	return own, other
}

// TestListingCapacityOwnService: an organisation administrator sets a
// service's capacity on the listing page; the routing service applies it
// to the directory, and the page shows it with its new date.
func TestListingCapacityOwnService(t *testing.T) {
	t.Parallel()
	b := setupListing(t)
	_, c := b.signedIn("olga", console.RoleOrgAdmin, "pt.apav")
	own, _ := servicesOf(t, b, "pt.apav")
	svc := own[0]
	before := b.view.Service(svc)
	r := c.get("/console/en/listing")
	if r.status != http.StatusOK || !strings.Contains(r.body, "Last confirmed") || !strings.Contains(r.body, `id="svc-`+svc+`"`) {
		t.Fatalf("listing page: status %d", r.status)
	}
	status := events.CapacityFull
	if before.Capacity.Status == status {
		status = events.CapacityWaitlist
	}
	r = c.post("/console/en/listing", url.Values{"action": {"capacity"}, "service": {svc}, "status": {status}})
	if r.status != http.StatusOK || !strings.Contains(r.body, "Saved.") {
		t.Fatalf("set capacity: status %d, body %s", r.status, excerpt(r.body))
	}
	after := b.view.Service(svc)
	if after.Capacity.Status != status || !after.Capacity.UpdatedAt.After(before.Capacity.UpdatedAt) {
		t.Errorf("capacity %s at %v, want %s after %v", after.Capacity.Status, after.Capacity.UpdatedAt, status, before.Capacity.UpdatedAt)
	}
	if _, rev, err := b.dir.GetService(t.Context(), svc); err != nil || rev == 0 {
		t.Errorf("bucket: %v", err)
	}
	// Confirming the organisation stamps its last-confirmed date.
	org0 := b.view.Organisation("pt.apav").UpdatedAt
	r = c.post("/console/en/listing", url.Values{"action": {"confirm_org"}})
	if r.status != http.StatusOK || !b.view.Organisation("pt.apav").UpdatedAt.After(org0) {
		t.Errorf("confirm organisation: status %d, updated %v (was %v)", r.status, b.view.Organisation("pt.apav").UpdatedAt, org0)
	}
	// A caseworker does not see the page.
	_, ca := b.signedIn("ana", console.RoleCaseworker, "pt.apav")
	if r := ca.get("/console/en/listing"); r.status != http.StatusForbidden {
		t.Errorf("caseworker: status %d, want 403", r.status)
	}
}

// TestListingOtherOrganisationRefused: an administrator cannot set the
// capacity of, or confirm, another organisation's service; nothing
// changes in the directory and an audit line says so.
func TestListingOtherOrganisationRefused(t *testing.T) {
	t.Parallel()
	b := setupListing(t)
	_, c := b.signedIn("olga", console.RoleOrgAdmin, "pt.apav")
	_, other := servicesOf(t, b, "pt.apav")
	_, rev0, err := b.dir.GetService(t.Context(), other)
	if err != nil {
		t.Fatal(err)
	}
	for _, form := range []url.Values{
		{"action": {"capacity"}, "service": {other}, "status": {events.CapacityFull}},
		{"action": {"confirm_service"}, "service": {other}},
		{"action": {"capacity"}, "service": {"pt.nobody.svc"}, "status": {events.CapacityFull}},
	} {
		r := c.post("/console/en/listing", form)
		if r.status != http.StatusForbidden || !strings.Contains(r.body, "only your own organisation") {
			t.Errorf("%v: status %d", form, r.status)
		}
	}
	if _, rev, err := b.dir.GetService(t.Context(), other); err != nil || rev != rev0 {
		t.Errorf("%s changed: revision %d -> %d (%v)", other, rev0, rev, err)
	}
	if !strings.Contains(b.logs.String(), "listing_refused") {
		t.Errorf("no audit line for the refusal")
	}
	// A bad status is an error next to its field, nothing sent.
	own, _ := servicesOf(t, b, "pt.apav")
	r := c.post("/console/en/listing", url.Values{"action": {"capacity"}, "service": {own[0]}, "status": {"closed"}})
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, `id="err-status-`+own[0]+`"`) {
		t.Errorf("bad status: %d", r.status)
	}
}

func excerpt(s string) string {
	if len(s) > 400 {
		return s[:400]
	}
	return s
}

// TestPlanReasonsInLanguage: the plan words the matcher's reasons in the
// caseworker's language (routing.Reason.Words with the taxonomy).
func TestPlanReasonsInLanguage(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, c := b.signedIn("ana", console.RoleCaseworker, "pt.apav")
	for lang, covers := range map[string]string{"en": "Covers ", "pt": "Cobre ", "fr": "Couvre ", "fi": "Kattaa: "} {
		c.get("/console/" + lang + "/assess")
		r := c.post("/console/"+lang+"/assess", validAssessment())
		if r.status != http.StatusOK || !strings.Contains(r.body, covers) {
			t.Errorf("%s: status %d, no %q in the plan", lang, r.status, covers)
		}
	}
}
