package console_test

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/invictus-network/invictus/adapters/web"
	"github.com/invictus-network/invictus/adapters/web/console"
	"github.com/invictus-network/invictus/directory"
	"github.com/invictus-network/invictus/events"
)

// newOrganisation writes an organisation waiting for approval, with one
// service of emotional support across Portugal in French (a language no
// demo service of Portugal has, so that a public search finds it alone),
// into the directory bucket, and waits until the view has it.
func newOrganisation(t *testing.T, b *bundle, id, name string) directory.Service {
	t.Helper()
	o := &directory.Organisation{ID: id, Name: name, Country: "pt", City: "Lisboa", Type: directory.OrgTypeNGO,
		Languages: []string{"pt", "fr"}, ReferralContact: directory.Contact{Role: "Referral desk", Email: "desk@example.org"}, Pending: true}
	if _, err := b.dir.PutOrganisation(t.Context(), o, 0); err != nil {
		t.Fatal(err)
	}
	sv := directory.Service{
		ID: id + ".desk", Organisation: id, Name: name + " desk", Status: directory.StatusActive,
		Needs: []string{events.NeedSupportEmotional}, Languages: []string{"fr"}, Channels: []string{events.ChannelPhone},
		Area:     directory.ServiceArea{Countries: []string{"pt"}, Regions: []string{"PT"}, Remote: true},
		Hours:    directory.Schedule{Always: true, TimeZone: "Europe/Lisbon"},
		Capacity: directory.Capacity{Status: events.CapacityAccepting},
	}
	if _, err := b.dir.PutService(t.Context(), &sv, 0); err != nil {
		t.Fatal(err)
	}
	b.waitView(func(x *directory.Index) bool { return x.ServiceByID(sv.ID) != nil })
	return sv
}

// waitView polls the directory view until cond holds; the test's own
// timeout (go test -timeout) bounds the wait, not a clock here.
func (b *bundle) waitView(cond func(*directory.Index) bool) {
	b.t.Helper()
	for !cond(b.view.Snapshot()) {
		select {
		case <-b.t.Context().Done():
			b.t.Fatal("the directory view never reached the expected state")
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// TestApprovalOfNewOrganisation: an organisation added to the directory
// waits for approval; until a directory administrator approves it in the
// console its service is no candidate of the matcher and absent from the
// public search, and afterwards it is both. Anybody else is refused with
// an audit line and changes nothing; a rejected organisation leaves the
// directory with its services.
func TestApprovalOfNewOrganisation(t *testing.T) {
	t.Parallel()
	b := setupListing(t)
	sv := newOrganisation(t, b, "pt.novo", "Apoio Novo")
	site, err := web.New(web.Deps{Directory: b.view}, web.Config{})
	if err != nil {
		t.Fatal(err)
	}
	public := newServer(t, site)
	profile := events.SamplePayload(events.TypeReferralRequested).(*events.Requested).Profile
	candidate := func() bool {
		a, err := matcher().Assess(b.view.Snapshot(), profile, sv.ID)
		if err != nil {
			t.Fatal(err)
		}
		return a.Candidate
	}
	found := func() bool {
		resp, err := http.Get(public + "/en/find?country=pt&need=support.emotional&language=fr")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("public search: status %d", resp.StatusCode)
		}
		return strings.Contains(string(body), sv.Name)
	}
	if candidate() || found() {
		t.Fatalf("pending: candidate %v, found in public search %v; want neither", candidate(), found())
	}

	// An organisation administrator is refused, with an audit line, and
	// the organisation stays pending.
	olga := b.addPerson("olga", console.RoleOrgAdmin, "pt.apav")
	co := b.client()
	co.signIn(olga)
	if r := co.get("/console/en/organisations"); r.status != http.StatusForbidden {
		t.Errorf("organisation administrator: status %d, want 403", r.status)
	}
	if r := co.post("/console/en/organisations", url.Values{"action": {"approve"}, "organisation": {"pt.novo"}}); r.status != http.StatusForbidden {
		t.Errorf("organisation administrator approving: status %d, want 403", r.status)
	}
	if o, _, err := b.dir.GetOrganisation(t.Context(), "pt.novo"); err != nil || !o.Pending {
		t.Fatalf("after a refused approval: %v, %v; want still pending", o, err)
	}
	if !strings.Contains(b.logs.String(), `"action":"page_refused","referral":"","detail":"/console/en/organisations"`) {
		t.Error("no audit line for the refused approval")
	}
	// The pending organisation's own administrator sees that it waits.
	nina := b.addPerson("nina", console.RoleOrgAdmin, "pt.novo")
	cn := b.client()
	cn.signIn(nina)
	if r := cn.get("/console/en/listing"); !strings.Contains(r.body, `id="listing-awaiting"`) {
		t.Errorf("listing of a pending organisation: status %d, no notice that it waits", r.status)
	}

	// The directory administrator approves.
	dina := b.addPerson("dina", console.RoleDirectoryAdmin, "")
	cd := b.client()
	cd.signIn(dina)
	r := cd.get("/console/en/organisations")
	if r.status != http.StatusOK || !strings.Contains(r.body, `id="org-pt.novo"`) || !strings.Contains(r.body, "Apoio Novo desk") {
		t.Fatalf("approvals page: status %d, body %s", r.status, excerpt(r.body))
	}
	r = cd.post("/console/en/organisations", url.Values{"action": {"approve"}, "organisation": {"pt.novo"}})
	if r.status != http.StatusOK || !strings.Contains(r.body, "Approved: Apoio Novo is listed now.") || strings.Contains(r.body, `id="org-pt.novo"`) {
		t.Fatalf("approve: status %d, body %s", r.status, excerpt(r.body))
	}
	if !candidate() || !found() {
		t.Errorf("approved: candidate %v, found in public search %v; want both", candidate(), found())
	}
	if !strings.Contains(b.logs.String(), `"action":"organisation_approved","referral":"","detail":"pt.novo"`) {
		t.Error("no audit line for the approval")
	}
	// Approving twice changes nothing and says so.
	if r := cd.post("/console/en/organisations", url.Values{"action": {"approve"}, "organisation": {"pt.novo"}}); r.status != http.StatusConflict {
		t.Errorf("second approval: status %d, want 409", r.status)
	}
	// A listed organisation cannot be rejected from this page.
	if r := cd.post("/console/en/organisations", url.Values{"action": {"reject"}, "organisation": {"pt.apav"}}); r.status != http.StatusConflict {
		t.Errorf("rejecting a listed organisation: status %d, want 409", r.status)
	}
	if b.view.Organisation("pt.apav") == nil {
		t.Fatal("pt.apav left the directory")
	}

	// Rejecting removes the organisation and its services.
	other := newOrganisation(t, b, "pt.outra", "Outra Linha")
	r = cd.post("/console/en/organisations", url.Values{"action": {"reject"}, "organisation": {"pt.outra"}})
	if r.status != http.StatusOK || !strings.Contains(r.body, "Rejected: Outra Linha was removed from the directory.") {
		t.Fatalf("reject: status %d, body %s", r.status, excerpt(r.body))
	}
	if _, _, err := b.dir.GetService(t.Context(), other.ID); !errors.Is(err, directory.ErrNotFound) {
		t.Errorf("the rejected organisation's service: %v, want not found", err)
	}
	if _, _, err := b.dir.GetOrganisation(t.Context(), "pt.outra"); !errors.Is(err, directory.ErrNotFound) {
		t.Errorf("the rejected organisation: %v, want not found", err)
	}
	if r := cd.get("/console/en/organisations"); !strings.Contains(r.body, `id="approvals-none"`) {
		t.Errorf("approvals page after both decisions: %s", excerpt(r.body))
	}
}
