package directory_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/invictus-network/invictus/directory"
	"github.com/invictus-network/invictus/events"
)

func ptr(f float64) *float64 { return &f }

// svc returns a minimal active service of org pt.org with the needs.
func svc(slug string, needs ...string) directory.Service {
	return directory.Service{
		ID: "pt.org." + slug, Organisation: "pt.org", Name: slug, Status: directory.StatusActive,
		Needs: needs, Languages: []string{"pt"}, Channels: []string{events.ChannelInPerson},
		Area:     directory.ServiceArea{Countries: []string{"pt"}},
		Capacity: directory.Capacity{Status: events.CapacityAccepting},
	}
}

// handDirectory is a small directory with one service per way of
// covering a victim.
func handDirectory() *directory.Directory {
	national := svc("national", events.NeedInfoRights)
	national.Area.Regions = []string{"PT"}

	lisbon := svc("lisbon", events.NeedSupportEmotional)
	lisbon.Area.Regions = []string{"PT17"}

	porto := svc("porto", events.NeedSupportEmotional, events.NeedJusticeLegalAid)
	porto.Locations = []directory.Location{{ID: "porto", Country: "pt", Lat: 41.15, Lon: -8.61}}
	porto.Area.RadiusKm = 30

	phone := svc("phone", events.NeedSupportEmotional)
	phone.Channels = []string{events.ChannelPhone}
	phone.Area.Remote = true

	inactive := svc("inactive", events.NeedSupportEmotional)
	inactive.Area.Regions = []string{"PT"}
	inactive.Status = directory.StatusInactive

	frRemote := directory.Service{
		ID: "fr.fv.line", Organisation: "fr.fv", Name: "line", Status: directory.StatusActive,
		Needs: []string{events.NeedSupportEmotional}, Languages: []string{"fr"}, Channels: []string{events.ChannelPhone},
		Area:     directory.ServiceArea{Countries: []string{"fr"}, Remote: true},
		Capacity: directory.Capacity{Status: events.CapacityFull},
	}
	// A location-only service (radius 0) near Lisbon: found only by a
	// query radius.
	near := svc("near", events.NeedSupportEmotional)
	near.Area.Regions = []string{"PT11"}
	near.Locations = []directory.Location{{ID: "sintra", Country: "pt", Lat: 38.80, Lon: -9.38}}

	return &directory.Directory{
		Organisations: []directory.Organisation{{ID: "pt.org", Name: "Org", Country: "pt"}, {ID: "fr.fv", Name: "FV", Country: "fr"}},
		Services:      []directory.Service{national, lisbon, porto, phone, inactive, frRemote, near},
	}
}

// ids returns the ids of the services numbered nums, sorted (services are
// numbered by place, not by id), or a note when nums is not strictly
// ascending, as Candidates promises.
func ids(x *directory.Index, nums []int32) []string {
	out := make([]string, 0, len(nums))
	for k, i := range nums {
		if k > 0 && nums[k-1] >= i {
			return []string{"not ascending"}
		}
		out = append(out, x.Service(i).ID)
	}
	slices.Sort(out)
	return out
}

func TestCandidatesEachWayOfCovering(t *testing.T) {
	t.Parallel()
	x := directory.NewIndex(handDirectory(), 7)
	if x.Revision() != 7 || x.Len() != 7 || x.NumOrganisations() != 2 {
		t.Fatalf("Revision %d Len %d orgs %d, want 7 7 2", x.Revision(), x.Len(), x.NumOrganisations())
	}
	emo := []string{events.NeedSupportEmotional}
	tests := []struct {
		name string
		q    directory.Query
		want []string
	}{
		{"region of the area", directory.Query{Needs: emo, Country: "pt", Region: "PT170"},
			[]string{"pt.org.lisbon", "pt.org.phone"}},
		{"other region: remote only", directory.Query{Needs: emo, Country: "pt", Region: "PT150"},
			[]string{"pt.org.phone"}},
		{"country level needs a country-wide region", directory.Query{Needs: []string{events.NeedInfoRights}, Country: "pt"},
			[]string{"pt.org.national"}},
		{"deeper region under a country-wide one", directory.Query{Needs: []string{events.NeedInfoRights}, Country: "pt", Region: "PT11A"},
			[]string{"pt.org.national"}},
		{"radius around a location", directory.Query{Needs: emo, Country: "pt", Region: "PT11A", Lat: ptr(41.3), Lon: ptr(-8.5)},
			[]string{"pt.org.near", "pt.org.phone", "pt.org.porto"}},
		{"outside the radius", directory.Query{Needs: []string{events.NeedJusticeLegalAid}, Country: "pt", Lat: ptr(41.6), Lon: ptr(-8.5)},
			nil},
		{"area radius needs the country", directory.Query{Needs: []string{events.NeedJusticeLegalAid}, Country: "es", Lat: ptr(41.3), Lon: ptr(-8.5)},
			nil},
		{"query radius ignores areas", directory.Query{Needs: emo, Lat: ptr(38.72), Lon: ptr(-9.14), RadiusKm: 25},
			[]string{"pt.org.near"}},
		{"remote in the residence country", directory.Query{Needs: emo, Country: "es", RemoteCountries: []string{"fr"}},
			[]string{"fr.fv.line"}},
		{"region outside the country is ignored", directory.Query{Needs: emo, Country: "pt", Region: "FR101"},
			[]string{"pt.org.phone"}},
		{"a well-formed region that does not exist: the country's services", directory.Query{Needs: []string{events.NeedSupportEmotional, events.NeedJusticeLegalAid, events.NeedInfoRights}, Country: "pt", Region: "PT999"},
			[]string{"pt.org.national", "pt.org.phone"}},
		{"unknown need", directory.Query{Needs: []string{"nope"}, Country: "pt", Region: "PT170"}, nil},
		{"several needs, distinct results", directory.Query{Needs: []string{events.NeedSupportEmotional, events.NeedJusticeLegalAid, events.NeedInfoRights}, Country: "pt", Region: "PT11A", Lat: ptr(41.2), Lon: ptr(-8.6)},
			[]string{"pt.org.national", "pt.org.near", "pt.org.phone", "pt.org.porto"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ids(x, x.Candidates(tt.q, nil))
			if !slices.Equal(got, tt.want) {
				t.Errorf("Candidates = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestIndexLookups(t *testing.T) {
	t.Parallel()
	d := handDirectory()
	x := directory.NewIndex(d, 1)
	i, ok := x.Lookup("pt.org.porto")
	if !ok || x.Service(i).ID != "pt.org.porto" {
		t.Fatalf("Lookup(pt.org.porto) = %d %v", i, ok)
	}
	if _, ok := x.Lookup("pt.org.nope"); ok {
		t.Error("Lookup of an unknown id succeeded")
	}
	if x.Service(-1) != nil || x.Service(int32(x.Len())) != nil {
		t.Error("Service out of range is not nil")
	}
	if got := x.NearestKm(i, 41.15, -8.61); got != 0 {
		t.Errorf("NearestKm at the location = %v, want 0", got)
	}
	if got := x.NearestKm(i, 38.72, -9.14); math.Abs(got-274) > 3 {
		t.Errorf("NearestKm Porto-Lisbon = %.1f, want about 274", got)
	}
	j, _ := x.Lookup("pt.org.phone")
	if !math.IsInf(x.NearestKm(j, 0, 0), 1) {
		t.Error("NearestKm of a service without locations is not +Inf")
	}
	if got := ids(x, x.ByNeed(events.NeedJusticeLegalAid)); !slices.Equal(got, []string{"pt.org.porto"}) {
		t.Errorf("ByNeed(legal aid) = %v", got)
	}
	// The inactive service is numbered but in no posting list.
	if got := len(x.ByNeed(events.NeedSupportEmotional)); got != 5 {
		t.Errorf("ByNeed(emotional) has %d services, want 5 (inactive excluded)", got)
	}
	if got := ids(x, x.ByLanguage("fr")); !slices.Equal(got, []string{"fr.fv.line"}) {
		t.Errorf("ByLanguage(fr) = %v", got)
	}
	if got := ids(x, x.ByChannel(events.ChannelPhone)); !slices.Equal(got, []string{"fr.fv.line", "pt.org.phone"}) {
		t.Errorf("ByChannel(phone) = %v", got)
	}
	k, _ := x.Lookup("fr.fv.line")
	if x.Capacity(k) != events.CapacityFull {
		t.Errorf("Capacity = %q, want full", x.Capacity(k))
	}
	if x.Organisation("fr.fv") == nil || x.Organisation("xx.nope") != nil {
		t.Error("Organisation lookup wrong")
	}
	back := x.Directory()
	d.Sort()
	if len(back.Services) != len(d.Services) || len(back.Organisations) != len(d.Organisations) {
		t.Fatalf("Directory() has %d services %d orgs, want %d %d", len(back.Services), len(back.Organisations), len(d.Services), len(d.Organisations))
	}
	for k := range back.Services {
		if back.Services[k].ID != d.Services[k].ID {
			t.Errorf("Directory().Services[%d] = %s, want %s", k, back.Services[k].ID, d.Services[k].ID)
		}
	}
}

func TestWithIsCopyOnWrite(t *testing.T) {
	t.Parallel()
	x := directory.NewIndex(handDirectory(), 10)
	q := directory.Query{Needs: []string{events.NeedSupportEmotional}, Country: "pt", Region: "PT170"}
	before := ids(x, x.Candidates(q, nil))

	// Lisbon's service moves to Porto's region; a new service covers PT17;
	// the phone line is deleted; a capacity change touches no postings.
	lisbon := *x.ServiceByID("pt.org.lisbon")
	lisbon.Area.Regions = []string{"PT11"}
	added := svc("new", events.NeedSupportEmotional)
	added.Area.Regions = []string{"PT17"}
	full := *x.ServiceByID("pt.org.porto")
	full.Capacity.Status = events.CapacityFull
	y := x.With(
		directory.Change{Key: directory.ServiceKey(lisbon.ID), Revision: 11, Service: &lisbon},
		directory.Change{Key: directory.ServiceKey(added.ID), Revision: 12, Service: &added},
		directory.Change{Key: directory.ServiceKey("pt.org.phone"), Revision: 13, Deleted: true},
		directory.Change{Key: directory.ServiceKey(full.ID), Revision: 14, Service: &full},
		directory.Change{Key: directory.OrgKey("fr.fv"), Revision: 15, Deleted: true},
		directory.Change{Key: "bogus", Revision: 16},
	)
	if got := ids(x, x.Candidates(q, nil)); !slices.Equal(got, before) {
		t.Errorf("parent changed: %v, was %v", got, before)
	}
	if got := ids(y, y.Candidates(q, nil)); !slices.Equal(got, []string{"pt.org.new"}) {
		t.Errorf("child Candidates = %v, want [pt.org.new]", got)
	}
	if y.Revision() != 16 || x.Revision() != 10 {
		t.Errorf("revisions %d %d, want 16 10", y.Revision(), x.Revision())
	}
	if y.Pending() != 3 {
		t.Errorf("Pending = %d, want 3 (the capacity change is applied in place)", y.Pending())
	}
	if y.ServiceByID("pt.org.porto").Capacity.Status != events.CapacityFull || x.ServiceByID("pt.org.porto").Capacity.Status != events.CapacityAccepting {
		t.Error("capacity change not isolated to the child")
	}
	if _, ok := y.Lookup("pt.org.phone"); ok || y.ServiceByID("pt.org.phone") != nil {
		t.Error("deleted service still found")
	}
	if y.Organisation("fr.fv") != nil || x.Organisation("fr.fv") == nil {
		t.Error("organisation deletion not isolated to the child")
	}
	if y.NumServices() != 7 || y.NumOrganisations() != 1 {
		t.Errorf("NumServices %d NumOrganisations %d, want 7 1", y.NumServices(), y.NumOrganisations())
	}
	if got := ids(y, y.ByNeed(events.NeedSupportEmotional)); slices.Contains(got, "pt.org.phone") || !slices.Contains(got, "pt.org.new") {
		t.Errorf("ByNeed after changes = %v", got)
	}
	z := y.Rebuild()
	if z.Pending() != 0 || z.Revision() != 16 {
		t.Errorf("Rebuild: Pending %d Revision %d", z.Pending(), z.Revision())
	}
	if got := ids(z, z.Candidates(q, nil)); !slices.Equal(got, []string{"pt.org.new"}) {
		t.Errorf("rebuilt Candidates = %v", got)
	}
}

func TestWithRebuildsPastThreshold(t *testing.T) {
	t.Parallel()
	x := directory.NewIndex(&directory.Directory{}, 0)
	var changes []directory.Change
	for k := range directory.IndexRebuildMin + 1 {
		s := svc(fmt.Sprintf("s%03d", k), events.NeedInfoRights)
		s.Area.Regions = []string{"PT"}
		changes = append(changes, directory.Change{Key: directory.ServiceKey(s.ID), Revision: uint64(k + 1), Service: &s})
	}
	small := x.With(changes[:directory.IndexRebuildMin]...)
	if small.Pending() != directory.IndexRebuildMin {
		t.Fatalf("Pending = %d, want %d", small.Pending(), directory.IndexRebuildMin)
	}
	big := small.With(changes[directory.IndexRebuildMin])
	if big.Pending() != 0 || big.NumServices() != directory.IndexRebuildMin+1 {
		t.Fatalf("after the threshold: Pending %d NumServices %d", big.Pending(), big.NumServices())
	}
	q := directory.Query{Needs: []string{events.NeedInfoRights}, Country: "pt"}
	if n := len(big.Candidates(q, nil)); n != directory.IndexRebuildMin+1 {
		t.Errorf("Candidates = %d services, want %d", n, directory.IndexRebuildMin+1)
	}
}

// randomDirectory makes n services of random needs, areas and locations in
// a small part of Portugal and Spain, so that queries hit many of them.
func randomDirectory(r *rand.Rand, n int) *directory.Directory {
	d := &directory.Directory{}
	regions := map[string][]string{"pt": {"PT", "PT1", "PT11", "PT11A", "PT11B", "PT17", "PT170"}, "es": {"ES", "ES1", "ES11", "ES111"}}
	for k := range n {
		s := randomService(r, fmt.Sprintf("s%06d", k), regions)
		d.Services = append(d.Services, s)
	}
	return d
}

func randomService(r *rand.Rand, slug string, regions map[string][]string) directory.Service {
	cc := []string{"pt", "es"}[r.IntN(2)]
	s := directory.Service{
		ID: cc + ".org." + slug, Organisation: cc + ".org", Name: slug, Status: directory.StatusActive,
		Languages: []string{"pt"}, Channels: []string{events.ChannelInPerson},
		Area:     directory.ServiceArea{Countries: []string{cc}},
		Capacity: directory.Capacity{Status: events.CapacityStatuses[r.IntN(3)]},
	}
	if r.IntN(20) == 0 {
		s.Status = directory.StatusInactive
	}
	for range 1 + r.IntN(3) {
		if n := events.Needs[r.IntN(6)]; !slices.Contains(s.Needs, n) {
			s.Needs = append(s.Needs, n)
		}
	}
	if r.IntN(3) == 0 {
		s.Area.Countries = []string{"pt", "es"}
	}
	if r.IntN(6) == 0 {
		s.Area.Remote = true
		s.Channels = append(s.Channels, events.ChannelPhone)
	}
	for range r.IntN(3) {
		rc := s.Area.Countries[r.IntN(len(s.Area.Countries))]
		if g := regions[rc][r.IntN(len(regions[rc]))]; !slices.Contains(s.Area.Regions, g) {
			s.Area.Regions = append(s.Area.Regions, g)
		}
	}
	for k := range r.IntN(3) {
		s.Locations = append(s.Locations, directory.Location{
			ID: fmt.Sprintf("l%d", k), Country: cc,
			Lat: 38 + r.Float64()*4, Lon: -9.5 + r.Float64()*4,
		})
	}
	if len(s.Locations) > 0 {
		switch r.IntN(4) {
		case 0:
		case 1:
			s.Area.RadiusKm = 150 + r.Float64()*100 // wide
		default:
			s.Area.RadiusKm = r.Float64() * 60
		}
	}
	return s
}

func randomQuery(r *rand.Rand) directory.Query {
	var q directory.Query
	for range 1 + r.IntN(3) {
		q.Needs = append(q.Needs, events.Needs[r.IntN(7)])
	}
	switch r.IntN(4) {
	case 0:
	case 1:
		q.Country = "pt"
		q.Region = []string{"", "PT11A", "PT11B", "PT170", "PT150", "PT1"}[r.IntN(6)]
	case 2:
		q.Country = "es"
		q.Region = []string{"", "ES111", "ES300"}[r.IntN(3)]
	case 3:
		q.Country = "fr"
	}
	if r.IntN(3) > 0 {
		q.Lat, q.Lon = ptr(37.5+r.Float64()*5), ptr(-10+r.Float64()*5)
	}
	if r.IntN(3) == 0 {
		q.RadiusKm = r.Float64() * 80
	}
	if r.IntN(4) == 0 {
		q.RemoteCountries = []string{[]string{"pt", "es", "fr"}[r.IntN(3)]}
	}
	return q
}

// brute is the reference answer: every service that matches.
func brute(x *directory.Index, q directory.Query) []int32 {
	var out []int32
	for i := range int32(x.Len()) {
		if q.Matches(x.Service(i)) {
			out = append(out, i)
		}
	}
	return out
}

func TestCandidatesEqualBruteForce(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	x := directory.NewIndex(randomDirectory(r, 1500), 1)
	regions := map[string][]string{"pt": {"PT", "PT11", "PT170"}, "es": {"ES", "ES111"}}
	check := func(stage string, x *directory.Index) {
		t.Helper()
		nonEmpty := 0
		var dst []int32
		for range 200 {
			q := randomQuery(r)
			dst = x.Candidates(q, dst[:0])
			want := brute(x, q)
			if !slices.Equal(dst, want) {
				t.Fatalf("%s: query %+v: Candidates has %d services, brute force %d", stage, q, len(dst), len(want))
			}
			if len(want) > 0 {
				nonEmpty++
			}
		}
		if nonEmpty < 50 {
			t.Fatalf("%s: only %d of 200 queries found anything; the test is too weak", stage, nonEmpty)
		}
	}
	check("fresh", x)

	// Changes in the overlay: edits, deletions, additions, capacity.
	rev := uint64(1)
	for round := range 3 {
		var changes []directory.Change
		for range 80 {
			rev++
			i := int32(r.IntN(x.Len()))
			s := x.Service(i)
			switch {
			case s == nil || r.IntN(4) == 0:
				n := randomService(r, fmt.Sprintf("n%d", rev), regions)
				changes = append(changes, directory.Change{Key: directory.ServiceKey(n.ID), Revision: rev, Service: &n})
			case r.IntN(3) == 0:
				changes = append(changes, directory.Change{Key: directory.ServiceKey(s.ID), Revision: rev, Deleted: true})
			default:
				n := randomService(r, "x", regions)
				n.ID, n.Organisation, n.Name = s.ID, s.Organisation, s.Name
				changes = append(changes, directory.Change{Key: directory.ServiceKey(n.ID), Revision: rev, Service: &n})
			}
		}
		x = x.With(changes...)
		if x.Pending() == 0 {
			t.Fatalf("round %d: no overlay; the test does not exercise it", round)
		}
		check(fmt.Sprintf("overlay %d (%d pending)", round, x.Pending()), x)
	}
	check("rebuilt", x.Rebuild())
}

func TestCandidatesDoesNotAllocate(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	x := directory.NewIndex(randomDirectory(r, 2000), 1)
	q := directory.Query{Needs: []string{events.NeedInfoRights, events.NeedSupportEmotional}, Country: "pt", Region: "PT11A", Lat: ptr(41.1), Lon: ptr(-8.6), RemoteCountries: []string{"es"}}
	dst := x.Candidates(q, nil)
	if len(dst) == 0 {
		t.Fatal("the query finds nothing")
	}
	allocs := testing.AllocsPerRun(100, func() { dst = x.Candidates(q, dst[:0]) })
	if allocs > 0 {
		t.Errorf("Candidates allocates %.1f times per call, want 0", allocs)
	}
}

// TestCandidatesAtTheExactRadius puts a location exactly at a service's
// radius (as DistanceKm measures it) and just beyond: the index must agree
// with Service.Covers at the boundary, where its fast chord test cannot
// decide.
func TestCandidatesAtTheExactRadius(t *testing.T) {
	t.Parallel()
	lat, lon := 41.15, -8.61
	vLat, vLon := 41.4, -8.2
	exact := directory.DistanceKm(vLat, vLon, lat, lon)
	for _, tt := range []struct {
		name   string
		radius float64
		want   bool
	}{
		{"at the radius", exact, true},
		{"just short", math.Nextafter(exact, 0), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := svc("edge", events.NeedInfoRights)
			s.Locations = []directory.Location{{ID: "l", Country: "pt", Lat: lat, Lon: lon}}
			s.Area.RadiusKm = tt.radius
			q := directory.Query{Needs: s.Needs, Country: "pt", Lat: ptr(vLat), Lon: ptr(vLon)}
			if got := q.Matches(&s); got != tt.want {
				t.Fatalf("Matches = %v, want %v", got, tt.want)
			}
			x := directory.NewIndex(&directory.Directory{Services: []directory.Service{s}}, 1)
			if got := len(x.Candidates(q, nil)) == 1; got != tt.want {
				t.Errorf("area radius: candidate = %v, want %v", got, tt.want)
			}
			// The same through the query's own radius.
			s.Area.RadiusKm = 0
			s.Area.Regions = []string{"PT11"}
			x = directory.NewIndex(&directory.Directory{Services: []directory.Service{s}}, 1)
			q2 := directory.Query{Needs: s.Needs, Lat: ptr(vLat), Lon: ptr(vLon), RadiusKm: tt.radius}
			if got := len(x.Candidates(q2, nil)) == 1; got != tt.want {
				t.Errorf("query radius: candidate = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestCandidatesLargeRadiiFarNorth checks the grid search where cells
// narrow and caps are wide: services scattered around Finland, queries
// with radii up to 1,500 km, against the brute force.
func TestCandidatesLargeRadiiFarNorth(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(5, 6))
	d := &directory.Directory{}
	for k := range 800 {
		s := svc(fmt.Sprintf("n%04d", k), events.NeedInfoRights)
		s.ID, s.Organisation = fmt.Sprintf("fi.org.n%04d", k), "fi.org"
		s.Area.Countries = []string{"fi"}
		s.Area.RadiusKm = []float64{0, 5, 20, 45, 90, 400}[r.IntN(6)]
		s.Locations = []directory.Location{{ID: "l", Country: "fi", Lat: 52 + r.Float64()*18, Lon: 5 + r.Float64()*40}}
		d.Services = append(d.Services, s)
	}
	x := directory.NewIndex(d, 1)
	found := 0
	for range 300 {
		q := directory.Query{Needs: []string{events.NeedInfoRights}, Lat: ptr(55 + r.Float64()*14), Lon: ptr(8 + r.Float64()*34)}
		if r.IntN(2) == 0 {
			q.Country = "fi"
		}
		if r.IntN(3) > 0 {
			q.RadiusKm = r.Float64() * 1500
		}
		got := x.Candidates(q, nil)
		if want := brute(x, q); !slices.Equal(got, want) {
			t.Fatalf("query %+v at %.2f,%.2f: %d candidates, brute force %d", q, *q.Lat, *q.Lon, len(got), len(want))
		}
		found += len(got)
	}
	if found == 0 {
		t.Fatal("no query found anything")
	}
}

// TestServicesAreNumberedByPlace checks that blocks of 64 consecutive
// service numbers (a word of a candidate bitset) cover small areas, so
// that the matcher can skip far blocks: the median span of a block's
// first locations must be a small fraction of that of blocks in id order.
func TestServicesAreNumberedByPlace(t *testing.T) {
	t.Parallel()
	d := directory.Generate(20000, 4)
	x := directory.NewIndex(d, 1)
	span := func(svcs []*directory.Service) float64 {
		var spans []float64
		for lo := 0; lo+64 <= len(svcs); lo += 64 {
			la0, la1, lo0, lo1 := 90.0, -90.0, 180.0, -180.0
			located := 0
			for _, s := range svcs[lo : lo+64] {
				if len(s.Locations) == 0 || s.Area.Remote {
					continue
				}
				l := s.Locations[0]
				la0, la1, lo0, lo1 = min(la0, l.Lat), max(la1, l.Lat), min(lo0, l.Lon), max(lo1, l.Lon)
				located++
			}
			if located > 1 {
				spans = append(spans, (la1-la0)+(lo1-lo0))
			}
		}
		slices.Sort(spans)
		return spans[len(spans)/2]
	}
	var byNumber, byID []*directory.Service
	for i := range int32(x.Len()) {
		byNumber = append(byNumber, x.Service(i))
	}
	for i := range d.Services {
		byID = append(byID, &d.Services[i])
	}
	placed, ided := span(byNumber), span(byID)
	if placed > ided/4 {
		t.Errorf("median span of a block of 64 numbers: %.2f° by place, %.2f° by id: want at most a quarter", placed, ided)
	}
	// Every service keeps its number: Lookup and Service agree.
	for i := range int32(x.Len()) {
		if j, ok := x.Lookup(x.Service(i).ID); !ok || j != i {
			t.Fatalf("Lookup(%s) = %d %v, want %d", x.Service(i).ID, j, ok, i)
		}
	}
}

// TestNeedsPastSixtyFourSelectAlike numbers 40, then 70, made-up need
// codes before the real ones (as a taxonomy grown past 32 and 64 needs
// would) and checks that every query selects the same services, and
// exactly those Query.Matches accepts. Not parallel: it changes the
// numbering of needs.
func TestNeedsPastSixtyFourSelectAlike(t *testing.T) {
	d := directory.Generate(3000, 9)
	queries := []directory.Query{}
	for _, c := range directory.Cities()[:25] {
		lat, lon := c.Lat, c.Lon
		for k, n := range events.Needs {
			if k%5 != len(queries)%5 {
				continue
			}
			queries = append(queries, directory.Query{Needs: []string{n, events.Needs[(k+7)%len(events.Needs)]}, Country: c.Country, Region: c.NUTS3, Lat: &lat, Lon: &lon, RadiusKm: float64(k % 3 * 20)})
		}
	}
	want := make([][]int32, len(queries))
	base := directory.NewIndex(d, 1)
	for k, q := range queries {
		want[k] = base.Candidates(q, nil)
	}
	for _, pad := range []int{40, 70} {
		func() {
			defer directory.PadNeeds(pad)()
			x := directory.NewIndex(d, 1)
			for k, q := range queries {
				got := x.Candidates(q, nil)
				if !slices.Equal(ids(x, got), ids(base, want[k])) {
					t.Fatalf("pad %d, query %d: %d candidates, want %d", pad, k, len(got), len(want[k]))
				}
				n := 0
				for i := range d.Services {
					if q.Matches(&d.Services[i]) {
						n++
					}
				}
				if n != len(got) {
					t.Fatalf("pad %d, query %d: %d candidates, Query.Matches accepts %d", pad, k, len(got), n)
				}
			}
		}()
	}
}
