package directory

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
)

func importFile(t *testing.T, path, format string) *Directory {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d, err := ImportForm(f, format)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestImportFormTemplates(t *testing.T) {
	t.Parallel()
	c := importFile(t, "testdata/form-template.csv", FormCSV)
	y := importFile(t, "testdata/form-template.yaml", FormYAML)
	if mustJSON(t, c) != mustJSON(t, y) {
		t.Fatalf("CSV and YAML templates differ:\n%s\n%s", mustJSON(t, c), mustJSON(t, y))
	}
	if len(c.Organisations) != 1 || len(c.Services) != 3 {
		t.Fatalf("%d organisations, %d services", len(c.Organisations), len(c.Services))
	}
	o := c.Organisations[0]
	if o.ID != "pt.example-porto" || o.Country != "pt" || o.ReferralContact.Role != "Referral desk" ||
		o.ReferralContact.Email != "referrals@example-porto.pt.example" {
		t.Errorf("organisation %+v", o)
	}
	if !slices.Equal(o.Languages, []string{"pt", "en", "uk"}) {
		t.Errorf("organisation languages %v", o.Languages)
	}
	general := c.Service("pt.example-porto.general")
	if general == nil {
		t.Fatal("no general service")
	}
	// Porto from the embedded cities gives coordinates and NUTS 3.
	if l := general.Locations[0]; l.ID != "porto" || l.Lat != 41.14961 || l.Region != "PT11A" {
		t.Errorf("location %+v", l)
	}
	if general.Hours.TimeZone != "Europe/Lisbon" || len(general.Hours.Weekly) != 6 || general.Hours.Weekly[5].Day != "sa" {
		t.Errorf("hours %+v", general.Hours)
	}
	if !general.InterpreterAvailable || general.ResponseHours != 48 || general.Capacity.Status != "accepting" {
		t.Errorf("general %+v", general)
	}
	legal := c.Service("pt.example-porto.legal")
	if !slices.Equal(legal.Crimes, []string{"domestic_violence", "fraud"}) || legal.Area.RadiusKm != 30 ||
		!slices.Equal(legal.Eligibility.AgeBands, []string{"adult", "older"}) || legal.Capacity.Status != "waitlist" {
		t.Errorf("legal %+v", legal)
	}
	if len(legal.Hours.Weekly) != 4 || legal.Hours.Weekly[1] != (OpeningHours{Day: "mo", Opens: "13:30", Closes: "17:00"}) {
		t.Errorf("legal hours %+v", legal.Hours.Weekly)
	}
	line := c.Service("pt.example-porto.line")
	if !line.Hours.Always || !line.Area.Remote || len(line.Locations) != 0 {
		t.Errorf("line %+v", line)
	}
}

const formHeader = "org_id,org_name,service_slug,service_name,needs,languages,channels,city,lat,lon,regions,remote,hours,time_zone,capacity,response_hours,contact_role,contact_email,age_recipient\n"

const formGoodRow = "pt.small,Small,general,General,info.rights,pt,in_person,Porto,,,PT11,no,mo-fr 09:00-17:00,,accepting,24,Desk,desk@small.example,\n"

func TestImportFormErrorsNameRowAndColumn(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, body, want string
	}{
		{"unknown need", formGoodRow + formGoodRow + "pt.small,,other,Other,info.rights support.emotionl,pt,in_person,Porto,,,PT11,no,,,accepting,,,,\n",
			`row 4, column needs: "support.emotionl" is not a known need code`},
		{"bad hours", strings.Replace(formGoodRow, "mo-fr 09:00-17:00", "weekdays 9-5", 1),
			`row 2, column hours: "weekdays 9-5" is not days and hours`},
		{"closes before opens", strings.Replace(formGoodRow, "mo-fr 09:00-17:00", "mo 17:00-09:00", 1),
			`row 2, column hours: closes 09:00 is not after opens 17:00`},
		{"bad time zone", strings.Replace(formGoodRow, "17:00,,", "17:00,Europe/Porto,", 1),
			`row 2, column time_zone: "Europe/Porto" is not a known IANA time zone`},
		{"unknown city without coordinates", strings.Replace(formGoodRow, "Porto", "Atlantis", 1),
			`row 2, column lat: lat and lon are required: "Atlantis" is not a city`},
		{"latitude out of range", strings.Replace(formGoodRow, "Porto,,", "Porto,95,-8", 1),
			`row 2, column lat: latitude 95 is outside -90..90`},
		{"not a number", strings.Replace(formGoodRow, "Porto,,", "Porto,41.1,west", 1),
			`row 2, column lon: "west" is not a number`},
		{"region of another country", strings.Replace(formGoodRow, "PT11", "ES11", 1),
			`row 2, column regions: region "ES11" is not in the area's countries`},
		{"bad yes/no", strings.Replace(formGoodRow, ",no,", ",perhaps,", 1),
			`row 2, column remote: "perhaps" is not yes or no`},
		{"bad capacity", strings.Replace(formGoodRow, "accepting", "open", 1),
			`row 2, column capacity: "open" is not one of`},
		{"bad org id", strings.Replace(formGoodRow, "pt.small", "small", 1),
			`row 2, column org_id: "small" is not an organisation id`},
		{"missing org id", strings.Replace(formGoodRow, "pt.small", "", 1),
			`row 2, column org_id: org_id is required`},
		{"duplicate service", formGoodRow + formGoodRow,
			`row 3, column service_slug: service pt.small.general is already given on row 2`},
		{"org columns disagree", formGoodRow + strings.Replace(strings.Replace(formGoodRow, "general", "other", 1), "Small", "Big", 1),
			`row 3, column org_name: "Big" differs from "Small"`},
		{"bad age recipient", strings.Replace(formGoodRow, "small.example,", "small.example,age1xyz", 1),
			`row 2, column age_recipient: not an age X25519 public key`},
		{"bad contact email", strings.Replace(formGoodRow, "desk@small.example", "desk at small", 1),
			`row 2, column contact_email: "desk at small" is not a bare e-mail address`},
		{"location conflict between rows", strings.Replace(formGoodRow, "Porto,,", "Porto,41.1,-8.6", 1) + strings.Replace(formGoodRow, "general", "other", 1),
			`row 3, column location_id: location "porto" differs`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, err := ImportForm(strings.NewReader(formHeader+c.body), FormCSV)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("ImportForm = %v", err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not contain %q", err, c.want)
			}
		})
	}
}

func TestImportFormStructureErrors(t *testing.T) {
	t.Parallel()
	cases := []struct{ name, format, body, want string }{
		{"unknown column", FormCSV, "org_id,needz\npt.a,info.rights\n", `row 1, column needz: unknown column "needz"`},
		{"extra cell", FormCSV, "org_id\npt.a,extra\n", "row 2, column 2: a value beyond the last column"},
		{"unknown format", "xlsx", "", "form format"},
		{"yaml unknown key", FormYAML, "- org_id: pt.a\n  neds: [info.rights]\n", `row 1 (line 1), column neds: unknown column`},
		{"yaml not a list", FormYAML, "org_id: pt.a\n", "expected a list of services"},
		{"yaml bad code", FormYAML, "services:\n  - org_id: pt.a\n    service_name: A\n    needs: [info.rights, nope]\n    languages: [pt]\n    channels: [phone]\n    remote: yes\n",
			`row 1 (line 2), column needs: "nope" is not a known need code`},
		{"yaml malformed", FormYAML, "- [unclosed\n", "YAML"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, err := ImportForm(strings.NewReader(c.body), c.format)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("ImportForm = %v, want an ErrInvalid containing %q", err, c.want)
			}
		})
	}
}

func TestParseHours(t *testing.T) {
	t.Parallel()
	h, err := ParseHours("fr-mo 22:00-24:00; we 8:00-9:30", "Europe/Rome")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range h.Weekly {
		got = append(got, w.Day+" "+w.Opens+"-"+w.Closes)
	}
	want := []string{"mo 22:00-24:00", "we 08:00-09:30", "fr 22:00-24:00", "sa 22:00-24:00", "su 22:00-24:00"}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if h, err := ParseHours("24/7", "Europe/Rome"); err != nil || !h.Always {
		t.Errorf("24/7: %+v %v", h, err)
	}
	if h, err := ParseHours("", "Europe/Rome"); err != nil || h.Always || len(h.Weekly) != 0 {
		t.Errorf("empty: %+v %v", h, err)
	}
	for _, bad := range []string{"xx 09:00-10:00", "mo", "mo 9-17", "mo-xx 09:00-10:00"} {
		if _, err := ParseHours(bad, "Europe/Rome"); err == nil {
			t.Errorf("ParseHours(%q) accepted", bad)
		}
	}
}
