package directory

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/invictus-network/invictus/events"
)

func demo(t *testing.T, seed int64) *Directory {
	t.Helper()
	d, err := Demo(seed)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestDemoIsDeterministic(t *testing.T) {
	t.Parallel()
	a, b := demo(t, 7), demo(t, 7)
	if mustJSON(t, a) != mustJSON(t, b) {
		t.Fatal("two demos from one seed differ")
	}
	if mustJSON(t, a) == mustJSON(t, demo(t, 8)) {
		t.Fatal("the seed changes nothing")
	}
}

func TestDemoContent(t *testing.T) {
	t.Parallel()
	d := demo(t, 1)
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	raw, err := data.ReadFile("data/organisations.json")
	if err != nil {
		t.Fatal(err)
	}
	var src []sourceOrg
	if err := json.Unmarshal(raw, &src); err != nil {
		t.Fatal(err)
	}
	real, synthetic := 0, 0
	for _, o := range d.Organisations {
		if o.AgeRecipient != "" {
			t.Errorf("%s: the demo ships an age recipient", o.ID)
		}
		switch {
		case o.Illustrative:
			real++
			if !o.ReferralContact.IsZero() {
				t.Errorf("%s: a contact was invented for a real organisation", o.ID)
			}
			for _, h := range o.Helplines {
				if !strings.Contains(string(raw), `"number": "`+h.Number+`"`) {
					t.Errorf("%s: helpline %q is not in the data", o.ID, h.Number)
				}
			}
			if len(o.Sources) == 0 {
				t.Errorf("%s: no sources", o.ID)
			}
		case o.Synthetic:
			synthetic++
			if !strings.HasSuffix(o.Name, "(synthetic)") {
				t.Errorf("%s: synthetic name %q", o.ID, o.Name)
			}
			if len(o.Helplines) > 0 || o.ReferralContact.Phone != "" || !strings.HasSuffix(o.ReferralContact.Email, ".example") {
				t.Errorf("%s: synthetic contact details that could reach someone: %+v %+v", o.ID, o.Helplines, o.ReferralContact)
			}
		default:
			t.Errorf("%s is neither illustrative nor synthetic", o.ID)
		}
	}
	if real != len(src) {
		t.Errorf("%d real organisations, the data has %d", real, len(src))
	}
	if synthetic < 76 {
		t.Errorf("%d synthetic organisations, want one per NUTS-2 region at least", synthetic)
	}
	apav := d.Organisation("pt.apav")
	if apav == nil || apav.Website != "https://apav.pt" || apav.AlternateName != "APAV" || apav.Helplines[0].Number != "116 006" {
		t.Fatalf("pt.apav = %+v", apav)
	}
	line := d.Service("pt.apav.line-116006")
	if line == nil || !line.Area.Remote || !slices.Contains(line.Needs, events.NeedSupportEmotional) ||
		len(line.Hours.Weekly) != 5 || line.Hours.Weekly[0].Opens != "08:00" {
		t.Errorf("APAV helpline %+v", line)
	}
	if s := d.Service("fr.fnsf-3919.line-3919"); s == nil || !s.Hours.Always || !slices.Contains(s.Channels, "chat") {
		t.Errorf("3919 %+v", s)
	}
	if s := d.Service("pt.sos-crianca-116111.line-116111"); s == nil || !slices.Equal(s.Eligibility.AgeBands, []string{"child", "youth"}) {
		t.Errorf("116 111 %+v", s)
	}
	if s := d.Service("it.rete-dafne.support"); s == nil || !slices.Equal(s.Area.Regions, []string{"ITC1"}) {
		t.Errorf("Rete Dafne is regional: %+v", s)
	}
	// Azores offices keep Azores time.
	if s := d.Service("pt.local-ponta-delgada.general"); s == nil || s.Hours.TimeZone != "Atlantic/Azores" {
		t.Errorf("Ponta Delgada %+v", s)
	}
	always := 0
	for _, s := range d.Services {
		if s.Hours.Always {
			always++
		}
	}
	if always < 76 {
		t.Errorf("%d services open 24/7", always)
	}
}

// TestDemoCoverage checks that every NUTS-2 region of the seven countries
// has, for each common need, an active local service that covers it in
// person (not only a national helpline).
func TestDemoCoverage(t *testing.T) {
	t.Parallel()
	d := demo(t, 1)
	regions := 0
	for _, cc := range DemoCountries {
		rs := Regions(cc)
		regions += len(rs)
		for _, r := range rs {
			for _, need := range CommonNeeds {
				ok := slices.ContainsFunc(d.Services, func(s Service) bool {
					return s.Active() && slices.Contains(s.Needs, need) && slices.Contains(s.Channels, events.ChannelInPerson) &&
						d.Organisation(s.Organisation).Synthetic && s.Covers(cc, r, 0, 0, false)
				})
				if !ok {
					t.Errorf("%s %s: no local service for %s", cc, r, need)
				}
			}
		}
	}
	if regions != 76 {
		t.Errorf("%d NUTS-2 regions in the embedded cities, want 76", regions)
	}
	// Languages: national, English and migrant languages of the country.
	porto := d.Service("pt.local-porto.general")
	if porto == nil || porto.Languages[0] != "pt" || !slices.Contains(porto.Languages, "en") {
		t.Fatalf("Porto %+v", porto)
	}
	if s := d.Service("it.local-bolzano.general"); s == nil || !slices.Contains(s.Languages, "de") {
		t.Errorf("South Tyrol office without German: %+v", s)
	}
}

func TestDemoData(t *testing.T) {
	t.Parallel()
	cities := Cities()
	if len(cities) != 406 {
		t.Errorf("%d cities", len(cities))
	}
	if c := cities[0]; c.Name != "Sofia" || c.Country != "bg" || c.NUTS3 != "BG411" || c.Population < 1e6 {
		t.Errorf("first city %+v", c)
	}
	if len(Languages()) != 56 {
		t.Errorf("%d languages", len(Languages()))
	}
	if got := Regions("pt"); !slices.Equal(got, []string{"PT11", "PT15", "PT16", "PT17", "PT18", "PT20", "PT30"}) {
		t.Errorf("PT regions %v", got)
	}
	if slugify("Villeneuve-d'Ascq") != "villeneuve-dascq" || slugify("Veliko Tŭrnovo") != "veliko-turnovo" || slugify("'s-Hertogenbosch") != "s-hertogenbosch" {
		t.Error("slugify")
	}
}

// Every need code of the taxonomy is offered by an active service in every
// demo country: a need the demo cannot meet anywhere would be reported as
// a gap in every walkthrough.
func TestDemoOffersEveryNeedInEveryCountry(t *testing.T) {
	t.Parallel()
	d, err := Demo(1)
	if err != nil {
		t.Fatal(err)
	}
	for _, cc := range DemoCountries {
		for _, n := range events.Needs {
			if !slices.ContainsFunc(d.Services, func(s Service) bool {
				return s.Active() && slices.Contains(s.Area.Countries, cc) && slices.Contains(s.Needs, n)
			}) {
				t.Errorf("%s: no active service offers %s", cc, n)
			}
		}
	}
	// The real organisations for victims of all crimes assist across
	// borders (illustrative).
	if s := d.Service("pt.apav.line-116006"); s == nil || !slices.Contains(s.Needs, events.NeedCrossborderAssistance) {
		t.Errorf("APAV's helpline: %v", s)
	}
}
