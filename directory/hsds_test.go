package directory

import (
	"bytes"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"
)

// mustJSON encodes v for comparisons that see exactly what would be stored.
func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func roundTrip(t *testing.T, d *Directory) {
	t.Helper()
	d.Sort()
	b, err := ExportHSDS(d)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ImportHSDS(b)
	if err != nil {
		t.Fatal(err)
	}
	if want, have := mustJSON(t, d), mustJSON(t, got); want != have {
		t.Fatalf("round trip differs:\nwant %s\ngot  %s", firstDiff(want, have), firstDiff(have, want))
	}
	again, err := ExportHSDS(got)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, again) {
		t.Fatal("export of the imported directory differs from the first export")
	}
}

// firstDiff returns a window of a around its first difference from b.
func firstDiff(a, b string) string {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	lo, hi := max(0, i-120), min(len(a), i+120)
	return a[lo:hi]
}

func TestHSDSRoundTripFixture(t *testing.T) {
	t.Parallel()
	roundTrip(t, fixture())
}

func TestHSDSRoundTripGenerated(t *testing.T) {
	t.Parallel()
	roundTrip(t, Generate(1500, 42))
}

func TestHSDSRoundTripDemo(t *testing.T) {
	t.Parallel()
	d, err := Demo(1)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, d)
}

func TestHSDSExportIsDeterministic(t *testing.T) {
	t.Parallel()
	d := Generate(200, 3)
	a, err := ExportHSDS(d)
	if err != nil {
		t.Fatal(err)
	}
	// Reversing the input order changes nothing.
	r := &Directory{}
	for i := len(d.Organisations) - 1; i >= 0; i-- {
		r.Organisations = append(r.Organisations, d.Organisations[i])
	}
	for i := len(d.Services) - 1; i >= 0; i-- {
		r.Services = append(r.Services, d.Services[i])
	}
	r.Sort()
	b, err := ExportHSDS(r)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatal("two exports of the same directory differ")
	}
	first, again := HSDSID("organization", "pt.apav"), HSDSID("organization", "pt.apav")
	if first != again || first == HSDSID("service", "pt.apav") {
		t.Fatal("HSDSID is not a stable function of kind and key")
	}
}

// exportFixture exports the fixture to HSDS and returns the JSON and its
// organizations, decoded.
func exportFixture(t *testing.T) ([]byte, []map[string]any) {
	t.Helper()
	b, err := ExportHSDS(fixture())
	if err != nil {
		t.Fatal(err)
	}
	var orgs []map[string]any
	if err := json.Unmarshal(b, &orgs); err != nil {
		t.Fatal(err)
	}
	return b, orgs
}

var reUUID = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// TestHSDSExportShape checks the shape of the export against what HSDS 3.0
// requires (the schema check itself is scripts/check-hsds.sh).
func TestHSDSExportShape(t *testing.T) {
	t.Parallel()
	_, orgs := exportFixture(t)
	if len(orgs) != 1 {
		t.Fatalf("%d organizations", len(orgs))
	}
	o := orgs[0]
	for _, k := range []string{"id", "name", "description"} {
		if _, ok := o[k]; !ok {
			t.Errorf("organization lacks required %s", k)
		}
	}
	// Every "id" anywhere is a UUIDv5, and every object that HSDS requires
	// fields of has them.
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch x := v.(type) {
		case map[string]any:
			if id, ok := x["id"]; ok && !reUUID.MatchString(id.(string)) {
				t.Errorf("%s: id %v is not a UUIDv5", path, id)
			}
			for k, c := range x {
				walk(path+"/"+k, c)
			}
		case []any:
			for _, c := range x {
				walk(path+"[]", c)
			}
		}
	}
	walk("", orgs)
	svcs := o["services"].([]any)
	if len(svcs) != 2 {
		t.Fatalf("%d services", len(svcs))
	}
	office := svcs[1].(map[string]any)
	if office["status"] != "active" || office["name"] != "Office" {
		t.Errorf("service: %v %v", office["status"], office["name"])
	}
	sal := office["service_at_locations"].([]any)[0].(map[string]any)
	loc := o["locations"].([]any)[0].(map[string]any)
	if sal["location_id"] != loc["id"] || loc["location_type"] != "physical" {
		t.Errorf("service_at_location %v does not link location %v", sal["location_id"], loc["id"])
	}
	addr := loc["addresses"].([]any)[0].(map[string]any)
	for _, k := range []string{"address_1", "city", "state_province", "postal_code", "country", "address_type"} {
		if _, ok := addr[k]; !ok {
			t.Errorf("address lacks required %s", k)
		}
	}
	if addr["country"] != "PT" || addr["region"] != "PT11A" {
		t.Errorf("address %v", addr)
	}
	// Taxonomy codes are attributes of the invictus taxonomy.
	var needs []string
	for _, a := range office["attributes"].([]any) {
		am := a.(map[string]any)
		term := am["taxonomy_term"].(map[string]any)
		if term["taxonomy"] != HSDSTaxonomy || am["link_id"] != office["id"] || am["link_entity"] != "service" {
			t.Errorf("attribute %v", am)
		}
		if am["taxonomy_term_id"] != term["id"] {
			t.Errorf("taxonomy_term_id %v != term id %v", am["taxonomy_term_id"], term["id"])
		}
		if code := term["code"].(string); strings.HasPrefix(code, "need:") {
			needs = append(needs, strings.TrimPrefix(code, "need:"))
		}
	}
	if strings.Join(needs, " ") != "info.rights support.emotional" {
		t.Errorf("need attributes: %v", needs)
	}
	// Consecutive days with the same hours share a schedule.
	sch := office["schedules"].([]any)
	if len(sch) != 3 || sch[0].(map[string]any)["byday"] != "MO" || sch[2].(map[string]any)["closes_at"] != "24:00" {
		t.Errorf("schedules %v", sch)
	}
	ident := o["organization_identifiers"].([]any)[0].(map[string]any)
	if ident["identifier"] != "pt.example" || ident["identifier_scheme"] != HSDSIdentifierScheme {
		t.Errorf("identifier %v", ident)
	}
	// No contact carries a person's name: the role is its title.
	c := o["contacts"].([]any)[0].(map[string]any)
	if _, ok := c["name"]; ok || c["title"] != "Referral desk" {
		t.Errorf("contact %v", c)
	}
}

func TestHSDSGroupsWeekdays(t *testing.T) {
	t.Parallel()
	d := fixture()
	var w []OpeningHours
	for _, day := range Days[:5] {
		w = append(w, OpeningHours{Day: day, Opens: "09:00", Closes: "17:00"})
	}
	d.Services[0].Hours.Weekly = w
	s := exportSchedules(&d.Services[0], "x")
	if len(s) != 1 || s[0].Byday != "MO,TU,WE,TH,FR" {
		t.Fatalf("schedules %+v", s)
	}
	roundTrip(t, d)
}

func TestImportHSDSErrors(t *testing.T) {
	t.Parallel()
	good, _ := exportFixture(t)
	edit := func(f func(o map[string]any)) []byte {
		var c []map[string]any
		if err := json.Unmarshal(good, &c); err != nil {
			t.Fatal(err)
		}
		f(c[0])
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	svc := func(o map[string]any, i int) map[string]any { return o["services"].([]any)[i].(map[string]any) }
	cases := []struct {
		name, pointer, code string
		doc                 []byte
	}{
		{"malformed JSON", "", "malformed_json", []byte(`[{"id": `)},
		{"no organisation id", "/0/organization_identifiers", "required", edit(func(o map[string]any) { delete(o, "organization_identifiers") })},
		{"no service id", "/0/services/0/attributes", "required", edit(func(o map[string]any) {
			s := svc(o, 0)
			var keep []any
			for _, a := range s["attributes"].([]any) {
				if a.(map[string]any)["taxonomy_term"].(map[string]any)["code"] != "service_id" {
					keep = append(keep, a)
				}
			}
			s["attributes"] = keep
		})},
		{"unknown attribute kind", "/0/services/1/attributes/1/taxonomy_term/code", "invalid_code", edit(func(o map[string]any) {
			svc(o, 1)["attributes"].([]any)[1].(map[string]any)["taxonomy_term"].(map[string]any)["code"] = "mood:happy"
		})},
		{"bad boolean", "/0/services/0/attributes", "format", edit(func(o map[string]any) {
			for _, a := range svc(o, 0)["attributes"].([]any) {
				if a.(map[string]any)["taxonomy_term"].(map[string]any)["code"] == "remote" {
					a.(map[string]any)["value"] = "maybe"
				}
			}
		})},
		{"dangling location", "/0/services/1/service_at_locations/0/location_id", CodeUnknownReference, edit(func(o map[string]any) {
			delete(o, "locations")
		})},
		{"monthly schedule", "/0/services/1/schedules/0/freq", "enum", edit(func(o map[string]any) {
			svc(o, 1)["schedules"].([]any)[0].(map[string]any)["freq"] = "MONTHLY"
		})},
		// A structurally fine document whose content is invalid fails
		// validation with pointers into the directory.
		{"invalid need code", "/services/1/needs/0", "invalid_code", edit(func(o map[string]any) {
			for _, a := range svc(o, 1)["attributes"].([]any) {
				term := a.(map[string]any)["taxonomy_term"].(map[string]any)
				if term["code"] == "need:info.rights" {
					term["code"] = "need:info.rightz"
				}
			}
		})},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, err := ImportHSDS(c.doc)
			var verr *ValidationError
			if !errors.As(err, &verr) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("ImportHSDS = %v", err)
			}
			for _, p := range verr.Problems {
				if p.Pointer == c.pointer && p.Code == c.code {
					return
				}
			}
			t.Errorf("want %s %s, got %v", c.pointer, c.code, verr.Problems)
		})
	}
}

func TestImportHSDSSingleObjectAndForeignAttributes(t *testing.T) {
	t.Parallel()
	_, orgs := exportFixture(t)
	// Attributes of another taxonomy, HSDS fields the directory does not
	// use and contact names are ignored.
	o := orgs[0]
	o["tax_status"] = "charity"
	o["attributes"] = append(o["attributes"].([]any), map[string]any{
		"id": "8c3a7e9a-0000-5000-8000-000000000000", "taxonomy_term": map[string]any{"id": "x", "name": "x", "description": "x", "taxonomy": "openeligibility", "code": "need:foo"},
	})
	o["contacts"].([]any)[0].(map[string]any)["name"] = "Maria Silva"
	one, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	d, err := ImportHSDS(one)
	if err != nil {
		t.Fatal(err)
	}
	want := fixture()
	want.Sort()
	if mustJSON(t, d) != mustJSON(t, want) {
		t.Fatalf("import differs: %s", firstDiff(mustJSON(t, d), mustJSON(t, want)))
	}
	if strings.Contains(mustJSON(t, d), "Maria") {
		t.Fatal("a contact's personal name was imported")
	}
}

// TestHSDSRoundTripReferralChannel keeps an organisation's e-mail channel
// through HSDS export and import.
func TestHSDSRoundTripReferralChannel(t *testing.T) {
	t.Parallel()
	d := fixture()
	d.Organisations[0].ReferralChannel = ReferralChannelEmail
	roundTrip(t, d)
}
