package routing_test

import (
	"slices"
	"testing"

	"github.com/invictus-network/invictus/directory"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/routing"
)

// italian is a service with one location, serving Italy (and more).
func italian(id, country, region string, lat, lon float64, countries ...string) directory.Service {
	s := baseService(id)
	s.Name = "Service"
	s.Languages = []string{"it"}
	s.Area = directory.ServiceArea{Countries: append([]string{"it"}, countries...), Regions: []string{"IT"}}
	s.Locations = []directory.Location{{ID: "office", Country: country, Region: region, Lat: lat, Lon: lon}}
	return s
}

func victimAt(region string, lat, lon float64) events.Profile {
	p := baseProfile()
	p.Languages = []string{"it"}
	p.Location = events.Location{Country: "it", Region: region, Lat: ptr(lat), Lon: ptr(lon)}
	return p
}

func ranking(t *testing.T, p events.Profile, svcs ...directory.Service) []routing.Candidate {
	t.Helper()
	plan, err := routing.NewMatcher(routing.Config{}).Match(index(svcs...), p)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Groups) != 1 {
		t.Fatalf("plan %+v: want one group", plan.Groups)
	}
	return plan.Groups[0].Candidates
}

// A victim in Messina, Sicily: an office 13 km away across the Strait in
// Reggio Calabria is farther, for her, than one 27 km away on the island.
func TestDistanceAcrossWater(t *testing.T) {
	t.Parallel()
	p := victimAt("ITG13", 38.1938, 15.5540)
	reggio := italian("it.reggio.svc", "it", "ITF65", 38.1105, 15.6613)
	milazzo := italian("it.milazzo.svc", "it", "ITG13", 38.2217, 15.2413)
	got := ranking(t, p, reggio, milazzo)
	if got[0].Service != milazzo.ID {
		t.Errorf("first %s (%v), want the office on the island", got[0].Service, got[0].Reasons)
	}
	if r := got[1].Reasons; !slices.Contains(r, "across the sea") || !slices.Contains(r, "13 km") {
		t.Errorf("Reggio's reasons %q: want its real distance and the sea", r)
	}
	// Without the victim's region the sea is not known: the nearer wins.
	p.Location.Region = ""
	if got := ranking(t, p, reggio, milazzo); got[0].Service != reggio.ID {
		t.Errorf("without a region, first %s, want the nearest", got[0].Service)
	}
	// A NUTS 2024 region of the mainland is the mainland.
	p = victimAt("ITF65", 38.1105, 15.6613)
	if got := ranking(t, p, reggio, milazzo); got[0].Service != reggio.ID || slices.Contains(got[0].Reasons, "across the sea") {
		t.Errorf("a victim in Reggio: first %s %q", got[0].Service, got[0].Reasons)
	}
}

// A victim in Gorizia: an office 2.6 km away in Nova Gorica, Slovenia,
// counts as 5.2 km, behind one 4 km away in Italy.
func TestDistanceAcrossABorder(t *testing.T) {
	t.Parallel()
	p := victimAt("ITH43", 45.9409, 13.6217)
	nova := italian("si.nova.svc", "si", "SI044", 45.9560, 13.6480, "si")
	north := italian("it.north.svc", "it", "ITH43", 45.9409+0.036, 13.6217)
	got := ranking(t, p, nova, north)
	if got[0].Service != north.ID {
		t.Errorf("first %s (%v), want the office in Italy", got[0].Service, got[0].Reasons)
	}
	if r := got[1].Reasons; !slices.Contains(r, "across a border") {
		t.Errorf("Nova Gorica's reasons %q: want the border", r)
	}
	// Farther in Italy, the office across the border wins.
	north.Locations[0].Lat += 0.03
	if got := ranking(t, p, nova, north); got[0].Service != nova.ID {
		t.Errorf("first %s, want the office across the border, now nearer even doubled", got[0].Service)
	}
}
