package directory_test

import (
	"slices"
	"testing"

	"github.com/invictus-network/invictus/directory"
	"github.com/invictus-network/invictus/events"
)

// pendingDirectory is handDirectory with a third organisation, pt.new,
// whose one service would be the first candidate of every Lisbon query,
// and which waits for a directory administrator's approval.
func pendingDirectory() *directory.Directory {
	d := handDirectory()
	d.Organisations = append(d.Organisations, directory.Organisation{ID: "pt.new", Name: "New", Country: "pt", Pending: true})
	s := svc("x", events.NeedSupportEmotional)
	s.ID, s.Organisation = "pt.new.desk", "pt.new"
	s.Area.Regions = []string{"PT"}
	d.Services = append(d.Services, s)
	return d
}

// candidateIDs returns the ids of the services the index proposes for
// emotional support in Lisbon, by Candidates and by ByNeed.
func candidateIDs(x *directory.Index) (cands, byNeed []string) {
	lat, lon := 38.72, -9.14
	q := directory.Query{Needs: []string{events.NeedSupportEmotional}, Country: "pt", Region: "PT170", Lat: &lat, Lon: &lon, RadiusKm: 50}
	for _, i := range x.Candidates(q, nil) {
		cands = append(cands, x.Service(i).ID)
	}
	for _, i := range x.ByNeed(events.NeedSupportEmotional) {
		byNeed = append(byNeed, x.Service(i).ID)
	}
	return cands, byNeed
}

// TestPendingOrganisationIsNeverACandidate: the services of an
// organisation waiting for approval are in the index (the console shows
// them to the directory administrator) but never candidates; approving it
// makes them candidates at once, in the overlay and after a rebuild, and
// putting it back to pending hides them again.
func TestPendingOrganisationIsNeverACandidate(t *testing.T) {
	t.Parallel()
	x := directory.NewIndex(pendingDirectory(), 1)
	const id = "pt.new.desk"
	listed := func(x *directory.Index) bool {
		cands, byNeed := candidateIDs(x)
		c, b := slices.Contains(cands, id), slices.Contains(byNeed, id)
		if c != b || c != x.Listed(x.ServiceByID(id)) {
			t.Fatalf("Candidates %v, ByNeed %v and Listed %v disagree", c, b, x.Listed(x.ServiceByID(id)))
		}
		return c
	}
	if x.ServiceByID(id) == nil {
		t.Fatal("the pending organisation's service is not in the index")
	}
	if listed(x) {
		t.Error("built: the pending organisation's service is a candidate")
	}
	if p := x.PendingOrganisations(); len(p) != 1 || p[0].ID != "pt.new" {
		t.Errorf("PendingOrganisations = %v, want pt.new", p)
	}
	if s := x.ServicesOf("pt.new"); len(s) != 1 || s[0].ID != id {
		t.Errorf("ServicesOf(pt.new) = %v", s)
	}

	approved := &directory.Organisation{ID: "pt.new", Name: "New", Country: "pt"}
	y := x.With(directory.Change{Key: directory.OrgKey("pt.new"), Revision: 2, Org: approved})
	if !listed(y) {
		t.Error("approved: the service is not a candidate")
	}
	if len(y.PendingOrganisations()) != 0 {
		t.Errorf("approved: still pending: %v", y.PendingOrganisations())
	}
	if listed(x) {
		t.Error("With changed the snapshot it was called on")
	}
	if !listed(y.Rebuild()) {
		t.Error("approved, rebuilt: the service is not a candidate")
	}

	again := &directory.Organisation{ID: "pt.new", Name: "New", Country: "pt", Pending: true}
	z := y.Rebuild().With(directory.Change{Key: directory.OrgKey("pt.new"), Revision: 3, Org: again})
	if listed(z) {
		t.Error("pending again: the service is a candidate")
	}
	// A service added to a pending organisation is not a candidate either.
	s := svc("y", events.NeedSupportEmotional)
	s.ID, s.Organisation, s.Area.Regions = "pt.new.other", "pt.new", []string{"PT"}
	w := x.With(directory.Change{Key: directory.ServiceKey(s.ID), Revision: 4, Service: &s})
	if cands, _ := candidateIDs(w); slices.Contains(cands, s.ID) {
		t.Error("a service added to the pending organisation is a candidate")
	}
	// The other organisations' services are unaffected throughout.
	for _, snap := range []*directory.Index{x, y, z, w} {
		if cands, _ := candidateIDs(snap); !slices.Contains(cands, "pt.org.lisbon") {
			t.Errorf("revision %d: pt.org.lisbon is no longer a candidate: %v", snap.Revision(), cands)
		}
	}
}
