package directory

import (
	"errors"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/invictus-network/invictus/events"
)

func TestFixtureIsValid(t *testing.T) {
	t.Parallel()
	if err := fixture().Validate(); err != nil {
		t.Fatal(err)
	}
}

// TestValidateBadInput breaks a valid directory one way at a time and
// checks that exactly the expected problem is reported.
func TestValidateBadInput(t *testing.T) {
	t.Parallel()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		mutate  func(d *Directory)
		pointer string
		code    string
	}{
		// organisations
		{"org id missing", func(d *Directory) { d.Organisations[0].ID = "" }, "/organisations/0/id", events.CodeRequired},
		{"org id malformed", func(d *Directory) { d.Organisations[0].ID = "pt_example" }, "/organisations/0/id", events.CodeFormat},
		{"org country unknown", func(d *Directory) { d.Organisations[0].Country = "zz" }, "/organisations/0/country", events.CodeInvalidCode},
		{"org country differs from id", func(d *Directory) { d.Organisations[0].Country = "es" }, "/organisations/0/country", CodeIDMismatch},
		{"org name missing", func(d *Directory) { d.Organisations[0].Name = "" }, "/organisations/0/name", events.CodeRequired},
		{"org name control chars", func(d *Directory) { d.Organisations[0].Name = "a\x00b" }, "/organisations/0/name", events.CodeFormat},
		{"org type", func(d *Directory) { d.Organisations[0].Type = "NGO!" }, "/organisations/0/type", events.CodeFormat},
		{"website", func(d *Directory) { d.Organisations[0].Website = "example.org" }, "/organisations/0/website", events.CodeFormat},
		{"helpline number", func(d *Directory) { d.Organisations[0].Helplines[0].Number = "call us" }, "/organisations/0/helplines/0/number", events.CodeFormat},
		{"org language unknown", func(d *Directory) { d.Organisations[0].Languages[1] = "xx" }, "/organisations/0/languages/1", events.CodeInvalidCode},
		{"org language twice", func(d *Directory) { d.Organisations[0].Languages[1] = "pt" }, "/organisations/0/languages/1", events.CodeDuplicate},
		{"contact email", func(d *Directory) { d.Organisations[0].ReferralContact.Email = "Desk <desk@example.org>" }, "/organisations/0/referral_contact/email", events.CodeFormat},
		{"contact without role", func(d *Directory) { d.Organisations[0].ReferralContact.Role = "" }, "/organisations/0/referral_contact/role", events.CodeRequired},
		{"contact phone", func(d *Directory) { d.Organisations[0].ReferralContact.Phone = "phone me" }, "/organisations/0/referral_contact/phone", events.CodeFormat},
		{"e-mail channel without address", func(d *Directory) {
			d.Organisations[0].ReferralChannel, d.Organisations[0].ReferralContact.Email = ReferralChannelEmail, ""
		}, "/organisations/0/referral_contact/email", CodeNoEmailAddress},
		{"e-mail digest without address", func(d *Directory) {
			d.Organisations[0].ReferralChannel, d.Organisations[0].ReferralContact.Email = ReferralChannelEmailDigest, ""
		}, "/organisations/0/referral_contact/email", CodeNoEmailAddress},
		{"unknown referral channel", func(d *Directory) { d.Organisations[0].ReferralChannel = "fax" }, "/organisations/0/referral_channel", events.CodeEnum},
		{"age recipient garbage", func(d *Directory) { d.Organisations[0].AgeRecipient = "age1notakey" }, "/organisations/0/age_recipient", CodeAgeRecipient},
		{"age identity instead of recipient", func(d *Directory) { d.Organisations[0].AgeRecipient = id.String() }, "/organisations/0/age_recipient", CodeAgeRecipient},
		{"illustrative and synthetic", func(d *Directory) { d.Organisations[0].Illustrative = true }, "/organisations/0/synthetic", events.CodeEnum},
		{"source not a URL", func(d *Directory) { d.Organisations[0].Sources[0] = "a book" }, "/organisations/0/sources/0", events.CodeFormat},
		{"newer version", func(d *Directory) { d.Organisations[0].Version = ModelVersion + 1 }, "/organisations/0/version", CodeVersion},
		{"duplicate org", func(d *Directory) { d.Organisations = append(d.Organisations, d.Organisations[0]) }, "/organisations/1/id", events.CodeDuplicate},
		// services: ids and links
		{"service id malformed", func(d *Directory) { d.Services[0].ID = "pt.example" }, "/services/0/id", events.CodeFormat},
		{"service id not under its org", func(d *Directory) { d.Services[0].ID = "pt.other.office" }, "/services/0/id", CodeIDMismatch},
		{"service of unknown org", func(d *Directory) {
			d.Services[0].ID, d.Services[0].Organisation = "pt.ghost.office", "pt.ghost"
		}, "/services/0/organisation", CodeUnknownReference},
		{"duplicate service", func(d *Directory) { d.Services[1].ID = d.Services[0].ID }, "/services/1/id", events.CodeDuplicate},
		{"status", func(d *Directory) { d.Services[0].Status = "open" }, "/services/0/status", events.CodeEnum},
		{"status missing", func(d *Directory) { d.Services[0].Status = "" }, "/services/0/status", events.CodeRequired},
		// codes
		{"no needs", func(d *Directory) { d.Services[0].Needs = nil }, "/services/0/needs", events.CodeRequired},
		{"unknown need", func(d *Directory) { d.Services[0].Needs[1] = "support.emotionl" }, "/services/0/needs/1", events.CodeInvalidCode},
		{"need twice", func(d *Directory) { d.Services[0].Needs[1] = "info.rights" }, "/services/0/needs/1", events.CodeDuplicate},
		{"unknown crime", func(d *Directory) { d.Services[0].Crimes[0] = "jaywalking" }, "/services/0/crimes/0", events.CodeInvalidCode},
		{"unknown flag", func(d *Directory) { d.Services[0].Flags[0] = "vip" }, "/services/0/flags/0", events.CodeInvalidCode},
		{"unknown age band", func(d *Directory) { d.Services[0].Eligibility.AgeBands[0] = "baby" }, "/services/0/eligibility/age_bands/0", events.CodeInvalidCode},
		{"unknown gender", func(d *Directory) { d.Services[0].Eligibility.Genders[0] = "f" }, "/services/0/eligibility/genders/0", events.CodeInvalidCode},
		{"no languages", func(d *Directory) { d.Services[0].Languages = nil }, "/services/0/languages", events.CodeRequired},
		{"unknown language", func(d *Directory) { d.Services[0].Languages[0] = "por" }, "/services/0/languages/0", events.CodeInvalidCode},
		{"unknown channel", func(d *Directory) { d.Services[0].Channels[0] = "fax" }, "/services/0/channels/0", events.CodeInvalidCode},
		{"unknown accessibility", func(d *Directory) { d.Services[0].Accessibility[0] = "lift" }, "/services/0/accessibility/0", events.CodeInvalidCode},
		{"too many needs", func(d *Directory) { d.Services[0].Needs = make([]string, MaxListLen+1) }, "/services/0/needs", events.CodeTooLong},
		// area
		{"no countries", func(d *Directory) { d.Services[0].Area.Countries = nil }, "/services/0/area/countries", events.CodeRequired},
		{"region malformed", func(d *Directory) { d.Services[0].Area.Regions[0] = "pt11" }, "/services/0/area/regions/0", events.CodeFormat},
		{"region of another country", func(d *Directory) { d.Services[0].Area.Regions[0] = "ES11" }, "/services/0/area/regions/0", events.CodeRegionCountry},
		{"negative radius", func(d *Directory) { d.Services[0].Area.RadiusKm = -1 }, "/services/0/area/radius_km", events.CodeOutOfRange},
		{"radius without location", func(d *Directory) {
			d.Services[1].Area = ServiceArea{Countries: []string{"pt"}, RadiusKm: 10}
		}, "/services/1/area/radius_km", CodeEmptyArea},
		{"remote without remote channel", func(d *Directory) { d.Services[1].Channels = []string{"in_person"} }, "/services/1/area/remote", CodeRemoteChannel},
		{"area covers nothing", func(d *Directory) { d.Services[1].Area.Remote = false }, "/services/1/area", CodeEmptyArea},
		// locations and coordinates
		{"latitude out of range", func(d *Directory) { d.Services[0].Locations[0].Lat = 91 }, "/services/0/locations/0/lat", events.CodeOutOfRange},
		{"longitude out of range", func(d *Directory) { d.Services[0].Locations[0].Lon = -180.5 }, "/services/0/locations/0/lon", events.CodeOutOfRange},
		{"null island", func(d *Directory) { d.Services[0].Locations[0].Lat, d.Services[0].Locations[0].Lon = 0, 0 }, "/services/0/locations/0/lat", CodeZeroCoordinates},
		{"location id missing", func(d *Directory) { d.Services[0].Locations[0].ID = "" }, "/services/0/locations/0/id", events.CodeRequired},
		{"location id malformed", func(d *Directory) { d.Services[0].Locations[0].ID = "Porto Office" }, "/services/0/locations/0/id", events.CodeFormat},
		{"location region of another country", func(d *Directory) { d.Services[0].Locations[0].Region = "FR101" }, "/services/0/locations/0/region", events.CodeRegionCountry},
		{"location outside the area's countries", func(d *Directory) {
			l := &d.Services[0].Locations[0]
			l.Country, l.Region = "es", ""
		}, "/services/0/locations/0/country", events.CodeRegionCountry},
		{"duplicate location in a service", func(d *Directory) {
			d.Services[0].Locations = append(d.Services[0].Locations, d.Services[0].Locations[0])
		}, "/services/0/locations/1/id", events.CodeDuplicate},
		{"one location id, two places", func(d *Directory) {
			l := d.Services[0].Locations[0]
			l.Lat += 0.1
			d.Services[1].Locations = []Location{l}
		}, "/services/1/locations/0/id", CodeConflict},
		// hours
		{"time zone missing", func(d *Directory) { d.Services[0].Hours.TimeZone = "" }, "/services/0/hours/time_zone", events.CodeRequired},
		{"time zone unknown", func(d *Directory) { d.Services[0].Hours.TimeZone = "Europe/Porto" }, "/services/0/hours/time_zone", CodeTimeZone},
		{"bad day", func(d *Directory) { d.Services[0].Hours.Weekly[0].Day = "monday" }, "/services/0/hours/weekly/0/day", events.CodeEnum},
		{"bad opens", func(d *Directory) { d.Services[0].Hours.Weekly[0].Opens = "9:00" }, "/services/0/hours/weekly/0/opens", events.CodeFormat},
		{"opens at 24:00", func(d *Directory) { d.Services[0].Hours.Weekly[2].Opens = "24:00" }, "/services/0/hours/weekly/2/opens", events.CodeFormat},
		{"bad closes", func(d *Directory) { d.Services[0].Hours.Weekly[0].Closes = "25:00" }, "/services/0/hours/weekly/0/closes", events.CodeFormat},
		{"closes before opens", func(d *Directory) { d.Services[0].Hours.Weekly[0].Closes = "08:00" }, "/services/0/hours/weekly/0/closes", CodeHoursOrder},
		{"always with weekly hours", func(d *Directory) { d.Services[0].Hours.Always = true }, "/services/0/hours/weekly", events.CodeEnum},
		// promises and capacity
		{"response hours", func(d *Directory) { d.Services[0].ResponseHours = 10000 }, "/services/0/response_hours", events.CodeOutOfRange},
		{"capacity missing", func(d *Directory) { d.Services[0].Capacity.Status = "" }, "/services/0/capacity/status", events.CodeRequired},
		{"capacity unknown", func(d *Directory) { d.Services[0].Capacity.Status = "open" }, "/services/0/capacity/status", events.CodeEnum},
		{"capacity negative", func(d *Directory) { d.Services[0].Capacity.MaxOpen = -1 }, "/services/0/capacity/max_open", events.CodeOutOfRange},
		{"service contact email", func(d *Directory) { d.Services[0].Contact.Email = "nope" }, "/services/0/contact/email", events.CodeFormat},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			d := fixture()
			c.mutate(d)
			err := d.Validate()
			var verr *ValidationError
			if !errors.As(err, &verr) {
				t.Fatalf("Validate = %v, want a *ValidationError", err)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Error("errors.Is(err, ErrInvalid) is false")
			}
			found := false
			for _, p := range verr.Problems {
				if p.Pointer == c.pointer && p.Code == c.code {
					found = true
				}
				if p.Message == "" {
					t.Errorf("problem %v has no message", p)
				}
			}
			if !found {
				t.Errorf("want %s %s, got %v", c.pointer, c.code, verr.Problems)
			}
			if !strings.Contains(err.Error(), c.pointer) {
				t.Errorf("Error() does not name %s: %s", c.pointer, err)
			}
		})
	}
}

func TestValidateListsEveryProblem(t *testing.T) {
	t.Parallel()
	d := fixture()
	d.Services[0].Needs[0] = "bogus"
	d.Services[0].Hours.Weekly[1].Closes = "12:00"
	d.Services[1].Capacity.Status = ""
	var verr *ValidationError
	if err := d.Validate(); !errors.As(err, &verr) || len(verr.Problems) != 3 {
		t.Fatalf("want 3 problems, got %v", err)
	}
}

func TestValidateAcceptsAgeRecipient(t *testing.T) {
	t.Parallel()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	d := fixture()
	d.Organisations[0].AgeRecipient = id.Recipient().String()
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestValidateSingleRecords(t *testing.T) {
	t.Parallel()
	d := fixture()
	if err := ValidateOrganisation(&d.Organisations[0]); err != nil {
		t.Fatal(err)
	}
	if err := ValidateService(&d.Services[0]); err != nil {
		t.Fatal(err)
	}
	s := d.Services[0]
	s.Hours.Weekly = []OpeningHours{{Day: "mo", Opens: "17:00", Closes: "09:00"}}
	var verr *ValidationError
	if err := ValidateService(&s); !errors.As(err, &verr) || verr.Problems[0].Pointer != "/hours/weekly/0/closes" {
		t.Fatalf("ValidateService = %v", err)
	}
	// A service alone is not checked against organisations.
	s = d.Services[0]
	s.ID, s.Organisation = "fr.nobody.x", "fr.nobody"
	s.Area.Countries, s.Area.Regions, s.Locations = []string{"fr"}, []string{"FR10"}, nil
	s.Area.RadiusKm = 0
	if err := ValidateService(&s); err != nil {
		t.Fatal(err)
	}
}
