package directory

import (
	"math"
	"testing"
	"time"
)

// fixture returns a small valid directory: one organisation with a local
// office service and a remote helpline.
func fixture() *Directory {
	free := true
	return &Directory{
		Organisations: []Organisation{{
			ID: "pt.example", Name: "Example (synthetic)", Country: "pt", Type: OrgTypeNGO,
			Website:         "https://example.org",
			Helplines:       []Helpline{{Number: "116 006", Name: "Line", Hours: "24/7", Free: &free}},
			Languages:       []string{"pt", "en"},
			ReferralContact: Contact{Role: "Referral desk", Email: "desk@example.org", Phone: "+351 21 000 0000"},
			Synthetic:       true, Sources: []string{"https://example.org/about"},
			UpdatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Version: ModelVersion,
		}},
		Services: []Service{{
			ID: "pt.example.office", Organisation: "pt.example", Name: "Office", Status: StatusActive,
			Needs: []string{"info.rights", "support.emotional"}, Crimes: []string{"fraud"}, Flags: []string{"child"},
			Eligibility: Eligibility{AgeBands: []string{"adult"}, Genders: []string{"female"}},
			Languages:   []string{"pt"}, Channels: []string{"in_person"}, Accessibility: []string{"easy_read"},
			Area: ServiceArea{Countries: []string{"pt"}, Regions: []string{"PT11"}, RadiusKm: 25},
			Locations: []Location{{
				ID: "porto", Name: "Porto office", Address: "Rua 1", Postcode: "4000-001", City: "Porto",
				Country: "pt", Region: "PT11A", Lat: 41.14961, Lon: -8.61099, Accessibility: []string{"wheelchair"},
			}},
			Hours: Schedule{TimeZone: "Europe/Lisbon", Weekly: []OpeningHours{
				{Day: "mo", Opens: "09:00", Closes: "12:30"}, {Day: "mo", Opens: "13:30", Closes: "17:00"},
				{Day: "sa", Opens: "22:00", Closes: "24:00"},
			}},
			ResponseHours: 48,
			Capacity:      Capacity{Status: "accepting", UpdatedAt: time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC), MaxOpen: 10},
			Contact:       Contact{Role: "Office desk", Email: "office@example.org"},
			Version:       ModelVersion,
		}, {
			ID: "pt.example.line", Organisation: "pt.example", Name: "Helpline", Status: StatusActive,
			Needs: []string{"support.emotional"}, Languages: []string{"pt", "en"}, Channels: []string{"phone"},
			Area:     ServiceArea{Countries: []string{"pt"}, Remote: true},
			Hours:    Schedule{TimeZone: "Europe/Lisbon", Always: true},
			Capacity: Capacity{Status: "full"},
		}},
	}
}

func TestScheduleOpenAt(t *testing.T) {
	t.Parallel()
	s := fixture().Services[0].Hours
	lisbon, err := LoadZone("Europe/Lisbon")
	if err != nil {
		t.Fatal(err)
	}
	// 2026-07-06 is a Monday; Lisbon is UTC+1 in summer.
	cases := []struct {
		at   time.Time
		open bool
	}{
		{time.Date(2026, 7, 6, 9, 0, 0, 0, lisbon), true},
		{time.Date(2026, 7, 6, 8, 59, 0, 0, lisbon), false},
		{time.Date(2026, 7, 6, 12, 30, 0, 0, lisbon), false}, // closes is exclusive
		{time.Date(2026, 7, 6, 13, 45, 0, 0, lisbon), true},
		{time.Date(2026, 7, 6, 8, 30, 0, 0, time.UTC), true}, // 09:30 in Lisbon
		{time.Date(2026, 7, 7, 10, 0, 0, 0, lisbon), false},  // Tuesday: closed
		{time.Date(2026, 7, 11, 23, 59, 0, 0, lisbon), true}, // Saturday until 24:00
		{time.Date(2026, 7, 12, 0, 0, 0, 0, lisbon), false},  // Sunday midnight
		{time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC), true},  // winter: UTC = Lisbon
		{time.Date(2026, 1, 5, 8, 59, 0, 0, time.UTC), false},
	}
	for _, c := range cases {
		if got := s.OpenAt(c.at); got != c.open {
			t.Errorf("OpenAt(%v) = %v, want %v", c.at, got, c.open)
		}
	}
	always := Schedule{TimeZone: "Europe/Lisbon", Always: true}
	if !always.OpenAt(time.Date(2026, 7, 12, 3, 0, 0, 0, time.UTC)) {
		t.Error("a 24/7 schedule is closed")
	}
	bad := Schedule{TimeZone: "Mars/Olympus", Weekly: []OpeningHours{{Day: "mo", Opens: "00:00", Closes: "24:00"}}}
	if bad.OpenAt(time.Date(2026, 7, 6, 12, 0, 0, 0, time.UTC)) {
		t.Error("a schedule with an unknown zone is open")
	}
}

func TestParseClock(t *testing.T) {
	t.Parallel()
	good := map[string]int{"00:00": 0, "09:30": 570, "23:59": 1439, "24:00": 1440}
	for s, want := range good {
		if got, ok := ParseClock(s); !ok || got != want {
			t.Errorf("ParseClock(%q) = %d, %v; want %d", s, got, ok, want)
		}
	}
	for _, s := range []string{"", "9:30", "24:01", "25:00", "12:60", "ab:cd", "12-30", "12:300"} {
		if _, ok := ParseClock(s); ok {
			t.Errorf("ParseClock(%q) accepted", s)
		}
	}
}

func TestServiceCovers(t *testing.T) {
	t.Parallel()
	d := fixture()
	office, line := &d.Services[0], &d.Services[1]
	cases := []struct {
		name             string
		s                *Service
		cc, region       string
		lat, lon         float64
		hasPoint, covers bool
	}{
		{"region prefix", office, "pt", "PT11A", 0, 0, false, true},
		{"same region", office, "pt", "PT11", 0, 0, false, true},
		{"coarser region is not covered", office, "pt", "PT1", 0, 0, false, false},
		{"other region", office, "pt", "PT17", 0, 0, false, false},
		{"other country", office, "es", "ES11", 0, 0, false, false},
		{"within radius", office, "pt", "PT16", 40.95, -8.55, true, true}, // ~22 km south of Porto
		{"outside radius", office, "pt", "PT16", 40.20, -8.41, true, false},
		{"country only", office, "pt", "", 0, 0, false, false},
		{"remote covers the country", line, "pt", "", 0, 0, false, true},
		{"remote not abroad", line, "fr", "", 0, 0, false, false},
	}
	for _, c := range cases {
		if got := c.s.Covers(c.cc, c.region, c.lat, c.lon, c.hasPoint); got != c.covers {
			t.Errorf("%s: Covers = %v, want %v", c.name, got, c.covers)
		}
	}
	national := Service{Area: ServiceArea{Countries: []string{"gr"}, Regions: []string{"EL"}}}
	if !national.Covers("gr", "", 0, 0, false) || !national.Covers("gr", "EL30", 0, 0, false) {
		t.Error("a level-0 NUTS region does not cover its country (EL for gr)")
	}
}

func TestDistanceKm(t *testing.T) {
	t.Parallel()
	// Lisbon to Porto is about 274 km.
	if d := DistanceKm(38.71667, -9.13333, 41.14961, -8.61099); math.Abs(d-274) > 3 {
		t.Errorf("Lisbon-Porto = %.1f km", d)
	}
	if d := DistanceKm(10, 10, 10, 10); d != 0 {
		t.Errorf("zero distance = %v", d)
	}
}

func TestLookupsAndHelpers(t *testing.T) {
	t.Parallel()
	d := fixture()
	if o := d.Organisation("pt.example"); o == nil || o.Name != "Example (synthetic)" {
		t.Errorf("Organisation = %v", o)
	}
	if d.Organisation("pt.nope") != nil || d.Service("pt.example.nope") != nil {
		t.Error("lookup of a missing id returned something")
	}
	if s := d.Service("pt.example.line"); s == nil || !s.Area.Remote {
		t.Errorf("Service = %v", s)
	}
	if got := d.ServicesOf("pt.example"); len(got) != 2 {
		t.Errorf("ServicesOf = %d services", len(got))
	}
	d.Sort()
	if d.Services[0].ID != "pt.example.line" {
		t.Errorf("Sort: first service %s", d.Services[0].ID)
	}
	if OrgIDOf("pt.apav.line") != "pt.apav" || OrgIDOf("pt.apav") != "" {
		t.Error("OrgIDOf")
	}
	e := Eligibility{AgeBands: []string{"child"}, Genders: []string{"female"}}
	if !e.Accepts("child", "female") || e.Accepts("adult", "female") || e.Accepts("child", "male") || !e.Accepts("", "") {
		t.Error("Eligibility.Accepts")
	}
	if (&Service{Status: StatusInactive}).Active() || !(&Service{Status: StatusActive}).Active() {
		t.Error("Active")
	}
	if _, err := LoadZone("Local"); err == nil {
		t.Error("LoadZone accepted Local")
	}
}
