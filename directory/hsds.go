package directory

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// HSDSTaxonomy is the name of the taxonomy ("vocabulary") of every HSDS
// attribute this package writes: taxonomy_term.taxonomy is "invictus".
//
// A code-valued field is an attribute whose taxonomy_term.code is
// "<kind>:<code>" (need:info.rights, crime:domestic_violence, flag:child,
// channel:phone, accessibility:wheelchair, age_band:child, gender:female,
// capacity_status:accepting, language:pt on organisations). A scalar
// field is an attribute whose taxonomy_term.code is the field name and
// whose value holds the value (service_id, time_zone, response_hours,
// radius_km, remote, open_24_7, interpreter_available,
// capacity_updated_at, capacity_max_open, version on services; country,
// city, type, age_recipient, referral_channel, illustrative, synthetic, source, updated_at,
// version on organisations; helpline_hours and helpline_free on phones).
const HSDSTaxonomy = "invictus"

// HSDSIdentifierScheme is the organization_identifiers scheme that carries
// an organisation's id (identifier_type "organisation_id").
const HSDSIdentifierScheme = "invictus"

// hsdsNamespace is the UUIDv5 namespace of HSDS object ids derived from
// directory ids, so exports are deterministic.
var hsdsNamespace = uuid.NewSHA1(uuid.NameSpaceURL, []byte("https://github.com/invictus-network/invictus/hsds"))

// HSDSID returns the stable HSDS UUID (v5) of a directory object: kind is
// organization, service, location, ... and key its directory id.
func HSDSID(kind, key string) string {
	return uuid.NewSHA1(hsdsNamespace, []byte(kind+":"+key)).String()
}

// The subset of HSDS 3.0 objects the directory reads and writes. Fields
// that HSDS requires are written even when empty.
type (
	hsdsOrganization struct {
		// InvictusID is the organisation's own id ("pt.apav"), first so
		// that a person or a script sees it before the HSDS UUID; it is
		// also an organization_identifiers entry, as HSDS says.
		InvictusID    string           `json:"invictus_id,omitempty"`
		ID            string           `json:"id"`
		Name          string           `json:"name"`
		AlternateName string           `json:"alternate_name,omitempty"`
		Description   string           `json:"description"`
		Website       string           `json:"website,omitempty"`
		Identifiers   []hsdsIdentifier `json:"organization_identifiers,omitempty"`
		Contacts      []hsdsContact    `json:"contacts,omitempty"`
		Phones        []hsdsPhone      `json:"phones,omitempty"`
		Locations     []hsdsLocation   `json:"locations,omitempty"`
		Attributes    []hsdsAttribute  `json:"attributes,omitempty"`
		Services      []hsdsService    `json:"services,omitempty"`
	}
	hsdsIdentifier struct {
		ID             string `json:"id"`
		OrganizationID string `json:"organization_id,omitempty"`
		Scheme         string `json:"identifier_scheme,omitempty"`
		Type           string `json:"identifier_type"`
		Identifier     string `json:"identifier"`
	}
	hsdsService struct {
		// InvictusID is the service's own id ("pt.apav.support").
		InvictusID             string             `json:"invictus_id,omitempty"`
		ID                     string             `json:"id"`
		OrganizationID         string             `json:"organization_id,omitempty"`
		Name                   string             `json:"name"`
		Description            string             `json:"description,omitempty"`
		Status                 string             `json:"status"`
		InterpretationServices string             `json:"interpretation_services,omitempty"`
		EligibilityDescription string             `json:"eligibility_description,omitempty"`
		LastModified           string             `json:"last_modified,omitempty"`
		Schedules              []hsdsSchedule     `json:"schedules,omitempty"`
		ServiceAreas           []hsdsServiceArea  `json:"service_areas,omitempty"`
		ServiceAtLocations     []hsdsServiceAtLoc `json:"service_at_locations,omitempty"`
		Languages              []hsdsLanguage     `json:"languages,omitempty"`
		Contacts               []hsdsContact      `json:"contacts,omitempty"`
		Attributes             []hsdsAttribute    `json:"attributes,omitempty"`
	}
	hsdsLocation struct {
		ID             string          `json:"id"`
		LocationType   string          `json:"location_type"`
		OrganizationID string          `json:"organization_id,omitempty"`
		Name           string          `json:"name,omitempty"`
		ExternalID     string          `json:"external_identifier,omitempty"`
		ExternalIDType string          `json:"external_identifier_type,omitempty"`
		Latitude       *float64        `json:"latitude,omitempty"`
		Longitude      *float64        `json:"longitude,omitempty"`
		Addresses      []hsdsAddress   `json:"addresses,omitempty"`
		Attributes     []hsdsAttribute `json:"attributes,omitempty"`
	}
	hsdsAddress struct {
		ID            string `json:"id"`
		LocationID    string `json:"location_id,omitempty"`
		Address1      string `json:"address_1"`
		City          string `json:"city"`
		Region        string `json:"region,omitempty"`
		StateProvince string `json:"state_province"`
		PostalCode    string `json:"postal_code"`
		Country       string `json:"country"`
		AddressType   string `json:"address_type"`
	}
	hsdsServiceAtLoc struct {
		ID         string        `json:"id"`
		ServiceID  string        `json:"service_id,omitempty"`
		LocationID string        `json:"location_id,omitempty"`
		Location   *hsdsLocation `json:"location,omitempty"`
	}
	hsdsLanguage struct {
		ID        string `json:"id"`
		ServiceID string `json:"service_id,omitempty"`
		Name      string `json:"name,omitempty"`
		Code      string `json:"code,omitempty"`
	}
	hsdsServiceArea struct {
		ID          string `json:"id"`
		ServiceID   string `json:"service_id,omitempty"`
		Name        string `json:"name,omitempty"`
		Description string `json:"description,omitempty"`
		Extent      string `json:"extent,omitempty"`
		ExtentType  string `json:"extent_type,omitempty"`
		URI         string `json:"uri,omitempty"`
	}
	hsdsSchedule struct {
		ID          string `json:"id"`
		ServiceID   string `json:"service_id,omitempty"`
		Freq        string `json:"freq,omitempty"`
		Wkst        string `json:"wkst,omitempty"`
		Byday       string `json:"byday,omitempty"`
		OpensAt     string `json:"opens_at,omitempty"`
		ClosesAt    string `json:"closes_at,omitempty"`
		Description string `json:"description,omitempty"`
	}
	hsdsContact struct {
		ID             string      `json:"id"`
		OrganizationID string      `json:"organization_id,omitempty"`
		ServiceID      string      `json:"service_id,omitempty"`
		Title          string      `json:"title,omitempty"`
		Email          string      `json:"email,omitempty"`
		Phones         []hsdsPhone `json:"phones,omitempty"`
	}
	hsdsPhone struct {
		ID             string          `json:"id"`
		OrganizationID string          `json:"organization_id,omitempty"`
		ContactID      string          `json:"contact_id,omitempty"`
		Number         string          `json:"number"`
		Type           string          `json:"type,omitempty"`
		Description    string          `json:"description,omitempty"`
		Attributes     []hsdsAttribute `json:"attributes,omitempty"`
	}
	hsdsAttribute struct {
		ID             string    `json:"id"`
		LinkID         string    `json:"link_id,omitempty"`
		TaxonomyTermID string    `json:"taxonomy_term_id,omitempty"`
		LinkType       string    `json:"link_type,omitempty"`
		LinkEntity     string    `json:"link_entity,omitempty"`
		Value          string    `json:"value,omitempty"`
		TaxonomyTerm   *hsdsTerm `json:"taxonomy_term,omitempty"`
	}
	hsdsTerm struct {
		ID          string `json:"id"`
		Code        string `json:"code,omitempty"`
		Name        string `json:"name"`
		Description string `json:"description"`
		Taxonomy    string `json:"taxonomy,omitempty"`
	}
)

// attrs builds the attributes of one HSDS object.
type attrs struct {
	link, entity string
	list         []hsdsAttribute
}

// code adds "<kind>:<code>" terms.
func (a *attrs) code(kind string, codes ...string) {
	for _, c := range codes {
		a.add(kind, kind+":"+c, "", c, "invictus "+kind+" code")
	}
}

// value adds a field term with a value; empty values are skipped.
func (a *attrs) value(field, v string) {
	if v == "" {
		return
	}
	a.add(field, field, v, field, "invictus directory field")
}

func (a *attrs) flag(field string, b bool) {
	if b {
		a.value(field, "true")
	}
}

func (a *attrs) add(kind, termCode, value, name, desc string) {
	termID := HSDSID("taxonomy_term", HSDSTaxonomy+"/"+termCode)
	a.list = append(a.list, hsdsAttribute{
		ID:     HSDSID("attribute", fmt.Sprintf("%s/%d", a.link, len(a.list))),
		LinkID: a.link, LinkType: kind, LinkEntity: a.entity,
		TaxonomyTermID: termID, Value: value,
		TaxonomyTerm: &hsdsTerm{ID: termID, Code: termCode, Name: name, Description: desc, Taxonomy: HSDSTaxonomy},
	})
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format(time.RFC3339Nano)
}

func itoaPos(n int) string {
	if n == 0 {
		return ""
	}
	return strconv.Itoa(n)
}

// ExportHSDS returns the directory as a compact HSDS 3.0 JSON array of
// organization objects (the compiled organization schema) with their
// services, locations (linked through service_at_location), languages,
// service areas, schedules, contacts, phones and attributes. Object ids
// are UUIDv5 derived from directory ids (see HSDSID), so the same
// directory always gives the same bytes. Fields HSDS lacks travel as
// attributes of the HSDSTaxonomy. Organisations and their services are
// written in id order. The directory is not modified; it should be valid
// (ExportHSDS does not validate it).
func ExportHSDS(d *Directory) ([]byte, error) {
	orgs := slices.Clone(d.Organisations)
	slices.SortFunc(orgs, func(a, b Organisation) int { return strings.Compare(a.ID, b.ID) })
	byOrg := map[string][]*Service{}
	for i := range d.Services {
		s := &d.Services[i]
		byOrg[s.Organisation] = append(byOrg[s.Organisation], s)
	}
	for _, list := range byOrg {
		slices.SortFunc(list, func(a, b *Service) int { return strings.Compare(a.ID, b.ID) })
	}
	out := make([]hsdsOrganization, 0, len(orgs))
	for i := range orgs {
		out = append(out, exportOrganisation(&orgs[i], byOrg[orgs[i].ID]))
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(out); err != nil {
		return nil, fmt.Errorf("export HSDS: %w", err)
	}
	return buf.Bytes(), nil
}

func exportOrganisation(o *Organisation, svcs []*Service) hsdsOrganization {
	oid := HSDSID("organization", o.ID)
	h := hsdsOrganization{
		InvictusID: o.ID, ID: oid, Name: o.Name, AlternateName: o.AlternateName, Description: o.Description, Website: o.Website,
		Identifiers: []hsdsIdentifier{{
			ID: HSDSID("organization_identifier", o.ID), OrganizationID: oid,
			Scheme: HSDSIdentifierScheme, Type: "organisation_id", Identifier: o.ID,
		}},
	}
	if !o.ReferralContact.IsZero() {
		c := exportContact(o.ReferralContact, "organization/"+o.ID)
		c.OrganizationID = oid
		h.Contacts = []hsdsContact{c}
	}
	for i, hl := range o.Helplines {
		pid := HSDSID("phone", fmt.Sprintf("%s/%d", o.ID, i))
		a := attrs{link: pid, entity: "phone"}
		a.value("helpline_hours", hl.Hours)
		if hl.Free != nil {
			a.value("helpline_free", strconv.FormatBool(*hl.Free))
		}
		h.Phones = append(h.Phones, hsdsPhone{
			ID: pid, OrganizationID: oid, Number: hl.Number, Type: "voice", Description: hl.Name, Attributes: a.list,
		})
	}
	a := attrs{link: oid, entity: "organization"}
	a.value("country", o.Country)
	a.value("city", o.City)
	a.value("type", o.Type)
	a.code("language", o.Languages...)
	a.value("age_recipient", o.AgeRecipient)
	a.value("referral_channel", o.ReferralChannel)
	a.flag("illustrative", o.Illustrative)
	a.flag("synthetic", o.Synthetic)
	for _, s := range o.Sources {
		a.value("source", s)
	}
	a.value("updated_at", formatTime(o.UpdatedAt))
	a.value("version", itoaPos(o.Version))
	h.Attributes = a.list

	seen := map[string]bool{}
	for _, s := range svcs {
		for i := range s.Locations {
			l := &s.Locations[i]
			if !seen[l.ID] {
				seen[l.ID] = true
				h.Locations = append(h.Locations, exportLocation(o.ID, oid, l))
			}
		}
		h.Services = append(h.Services, exportService(s, oid))
	}
	return h
}

func exportContact(c Contact, key string) hsdsContact {
	cid := HSDSID("contact", key)
	hc := hsdsContact{ID: cid, Title: c.Role, Email: c.Email}
	if c.Phone != "" {
		hc.Phones = []hsdsPhone{{ID: HSDSID("phone", "contact/"+key), ContactID: cid, Number: c.Phone, Type: "voice"}}
	}
	return hc
}

func exportLocation(orgID, oid string, l *Location) hsdsLocation {
	lid := HSDSID("location", orgID+"/"+l.ID)
	lat, lon := l.Lat, l.Lon
	h := hsdsLocation{
		ID: lid, LocationType: "physical", OrganizationID: oid, Name: l.Name,
		ExternalID: l.ID, ExternalIDType: HSDSTaxonomy, Latitude: &lat, Longitude: &lon,
		Addresses: []hsdsAddress{{
			ID: HSDSID("address", orgID+"/"+l.ID), LocationID: lid, Address1: l.Address, City: l.City,
			Region: l.Region, PostalCode: l.Postcode, Country: strings.ToUpper(l.Country), AddressType: "physical",
		}},
	}
	a := attrs{link: lid, entity: "location"}
	a.code("accessibility", l.Accessibility...)
	h.Attributes = a.list
	return h
}

func exportService(s *Service, oid string) hsdsService {
	sid := HSDSID("service", s.ID)
	h := hsdsService{
		InvictusID: s.ID, ID: sid, OrganizationID: oid, Name: s.Name, Description: s.Description, Status: s.Status,
		LastModified: formatTime(s.UpdatedAt),
	}
	if h.Status == "" {
		h.Status = StatusActive
	}
	if s.InterpreterAvailable {
		h.InterpretationServices = "An interpreter can be arranged."
	}
	var elig []string
	if len(s.Eligibility.AgeBands) > 0 {
		elig = append(elig, "age bands: "+strings.Join(s.Eligibility.AgeBands, ", "))
	}
	if len(s.Eligibility.Genders) > 0 {
		elig = append(elig, "genders: "+strings.Join(s.Eligibility.Genders, ", "))
	}
	h.EligibilityDescription = strings.Join(elig, "; ")
	for _, l := range s.Languages {
		h.Languages = append(h.Languages, hsdsLanguage{ID: HSDSID("language", s.ID+"/"+l), ServiceID: sid, Code: l})
	}
	for _, cc := range s.Area.Countries {
		h.ServiceAreas = append(h.ServiceAreas, hsdsServiceArea{
			ID: HSDSID("service_area", s.ID+"/"+cc), ServiceID: sid, Name: strings.ToUpper(cc),
			Description: "country (ISO 3166-1 alpha-2)", Extent: cc, ExtentType: "text",
		})
	}
	for _, r := range s.Area.Regions {
		h.ServiceAreas = append(h.ServiceAreas, hsdsServiceArea{
			ID: HSDSID("service_area", s.ID+"/"+r), ServiceID: sid, Name: r,
			Description: "NUTS 2021 region", Extent: r, ExtentType: "text", URI: "http://data.europa.eu/nuts/code/" + r,
		})
	}
	for i := range s.Locations {
		l := &s.Locations[i]
		h.ServiceAtLocations = append(h.ServiceAtLocations, hsdsServiceAtLoc{
			ID: HSDSID("service_at_location", s.ID+"/"+l.ID), ServiceID: sid,
			LocationID: HSDSID("location", s.Organisation+"/"+l.ID),
		})
	}
	h.Schedules = exportSchedules(s, sid)
	if !s.Contact.IsZero() {
		c := exportContact(s.Contact, "service/"+s.ID)
		c.ServiceID = sid
		h.Contacts = []hsdsContact{c}
	}
	a := attrs{link: sid, entity: "service"}
	a.value("service_id", s.ID)
	a.code("need", s.Needs...)
	a.code("crime", s.Crimes...)
	a.code("flag", s.Flags...)
	a.code("age_band", s.Eligibility.AgeBands...)
	a.code("gender", s.Eligibility.Genders...)
	a.code("channel", s.Channels...)
	a.code("accessibility", s.Accessibility...)
	a.flag("interpreter_available", s.InterpreterAvailable)
	a.flag("remote", s.Area.Remote)
	if s.Area.RadiusKm != 0 {
		a.value("radius_km", strconv.FormatFloat(s.Area.RadiusKm, 'g', -1, 64))
	}
	a.value("time_zone", s.Hours.TimeZone)
	a.flag("open_24_7", s.Hours.Always)
	a.value("response_hours", itoaPos(s.ResponseHours))
	a.code("capacity_status", s.Capacity.Status)
	a.value("capacity_updated_at", formatTime(s.Capacity.UpdatedAt))
	a.value("capacity_max_open", itoaPos(s.Capacity.MaxOpen))
	a.value("version", itoaPos(s.Version))
	h.Attributes = a.list
	return h
}

// exportSchedules writes one weekly schedule per run of consecutive
// intervals with the same hours (byday lists their days in order).
func exportSchedules(s *Service, sid string) []hsdsSchedule {
	if s.Hours.Always {
		return []hsdsSchedule{{
			ID: HSDSID("schedule", s.ID+"/always"), ServiceID: sid, Freq: "WEEKLY", Wkst: "MO",
			Byday: "MO,TU,WE,TH,FR,SA,SU", OpensAt: "00:00", ClosesAt: "24:00",
			Description: "Open 24 hours a day, 7 days a week.",
		}}
	}
	var out []hsdsSchedule
	w := s.Hours.Weekly
	for i := 0; i < len(w); {
		j := i + 1
		for j < len(w) && w[j].Opens == w[i].Opens && w[j].Closes == w[i].Closes {
			j++
		}
		var days []string
		for _, x := range w[i:j] {
			days = append(days, strings.ToUpper(x.Day))
		}
		out = append(out, hsdsSchedule{
			ID: HSDSID("schedule", fmt.Sprintf("%s/%d", s.ID, i)), ServiceID: sid, Freq: "WEEKLY", Wkst: "MO",
			Byday: strings.Join(days, ","), OpensAt: w[i].Opens, ClosesAt: w[i].Closes,
		})
		i = j
	}
	return out
}

// readAttrs collects the HSDSTaxonomy attributes of one object: codes by
// kind and values by field. Attributes of other taxonomies are ignored.
type readAttrs struct {
	codes  map[string][]string
	values map[string][]string
}

var knownCodeKinds = []string{"need", "crime", "flag", "age_band", "gender", "channel", "accessibility", "capacity_status", "language"}

func readAttributes(p *problems, at string, list []hsdsAttribute) readAttrs {
	r := readAttrs{codes: map[string][]string{}, values: map[string][]string{}}
	for i, a := range list {
		t := a.TaxonomyTerm
		if t == nil || t.Taxonomy != HSDSTaxonomy {
			continue
		}
		if kind, code, ok := strings.Cut(t.Code, ":"); ok {
			if !slices.Contains(knownCodeKinds, kind) {
				p.add(fmt.Sprintf("%s/attributes/%d/taxonomy_term/code", at, i), "invalid_code", "%q is not a known invictus attribute kind", kind)
				continue
			}
			r.codes[kind] = append(r.codes[kind], code)
			continue
		}
		r.values[t.Code] = append(r.values[t.Code], a.Value)
	}
	return r
}

func (r readAttrs) one(field string) string {
	if v := r.values[field]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func (r readAttrs) bool(p *problems, at, field string) bool {
	v := r.one(field)
	if v == "" {
		return false
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		p.add(at, "format", "attribute %s: %q is not true or false", field, v)
	}
	return b
}

func (r readAttrs) int(p *problems, at, field string) int {
	v := r.one(field)
	if v == "" {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		p.add(at, "format", "attribute %s: %q is not an integer", field, v)
	}
	return n
}

func (r readAttrs) time(p *problems, at, field string) time.Time {
	v := r.one(field)
	if v == "" {
		return time.Time{}
	}
	return parseTime(p, at, field, v)
}

func parseTime(p *problems, at, field, v string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		p.add(at, "format", "%s: %q is not an RFC 3339 time", field, v)
	}
	return t
}

// reCountryExtent tells a country service area (extent "pt") from a NUTS
// region (extent "PT" or "PT11", upper case).
var reCountryExtent = regexp.MustCompile(`^[a-z]{2}$`)

// ImportHSDS reads an HSDS 3.0 JSON array of organization objects (or one
// organization object) as written by ExportHSDS: organisations are found
// by their organization_identifiers of HSDSIdentifierScheme and services
// by their service_id attribute; attributes of other taxonomies and HSDS
// fields the directory has no place for are ignored, and contact names
// (people) are never read. It returns the directory sorted by id, or a
// *ValidationError: structural problems point into the HSDS document
// (/0/services/2/attributes/5); problems of the resulting directory point
// into the directory (/services/7/needs/0).
func ImportHSDS(b []byte) (*Directory, error) {
	var orgs []hsdsOrganization
	trimmed := bytes.TrimSpace(b)
	if len(trimmed) > 0 && trimmed[0] == '{' {
		var one hsdsOrganization
		if err := json.Unmarshal(trimmed, &one); err != nil {
			return nil, &ValidationError{Problems: []Problem{{Code: "malformed_json", Message: err.Error()}}}
		}
		orgs = []hsdsOrganization{one}
	} else if err := json.Unmarshal(trimmed, &orgs); err != nil {
		return nil, &ValidationError{Problems: []Problem{{Code: "malformed_json", Message: err.Error()}}}
	}
	var p problems
	d := &Directory{}
	for i := range orgs {
		o, svcs := importOrganisation(&p, "/"+strconv.Itoa(i), &orgs[i])
		d.Organisations = append(d.Organisations, o)
		d.Services = append(d.Services, svcs...)
	}
	if err := p.err(); err != nil {
		return nil, err
	}
	d.Sort()
	if err := d.Validate(); err != nil {
		return nil, err
	}
	return d, nil
}

func importOrganisation(p *problems, at string, h *hsdsOrganization) (Organisation, []Service) {
	o := Organisation{Name: h.Name, AlternateName: h.AlternateName, Description: h.Description, Website: h.Website}
	for _, id := range h.Identifiers {
		if id.Scheme == HSDSIdentifierScheme {
			o.ID = id.Identifier
		}
	}
	if o.ID == "" {
		p.add(at+"/organization_identifiers", "required", "no organisation id: an organization_identifiers entry with identifier_scheme %q is required", HSDSIdentifierScheme)
	}
	if len(h.Contacts) > 0 {
		o.ReferralContact = importContact(h.Contacts[0])
	}
	for i, ph := range h.Phones {
		a := readAttributes(p, fmt.Sprintf("%s/phones/%d", at, i), ph.Attributes)
		hl := Helpline{Number: ph.Number, Name: ph.Description, Hours: a.one("helpline_hours")}
		if v := a.one("helpline_free"); v != "" {
			free := a.bool(p, fmt.Sprintf("%s/phones/%d/attributes", at, i), "helpline_free")
			hl.Free = &free
		}
		o.Helplines = append(o.Helplines, hl)
	}
	a := readAttributes(p, at, h.Attributes)
	o.Country = a.one("country")
	o.City = a.one("city")
	o.Type = a.one("type")
	o.Languages = a.codes["language"]
	o.AgeRecipient = a.one("age_recipient")
	o.ReferralChannel = a.one("referral_channel")
	o.Illustrative = a.bool(p, at+"/attributes", "illustrative")
	o.Synthetic = a.bool(p, at+"/attributes", "synthetic")
	o.Sources = a.values["source"]
	o.UpdatedAt = a.time(p, at+"/attributes", "updated_at")
	o.Version = a.int(p, at+"/attributes", "version")

	locs := map[string]Location{}
	for i := range h.Locations {
		l := importLocation(p, fmt.Sprintf("%s/locations/%d", at, i), &h.Locations[i])
		locs[h.Locations[i].ID] = l
	}
	var svcs []Service
	for i := range h.Services {
		svcs = append(svcs, importService(p, fmt.Sprintf("%s/services/%d", at, i), &h.Services[i], o.ID, locs))
	}
	return o, svcs
}

func importContact(c hsdsContact) Contact {
	out := Contact{Role: c.Title, Email: c.Email}
	if len(c.Phones) > 0 {
		out.Phone = c.Phones[0].Number
	}
	return out
}

func importLocation(p *problems, at string, h *hsdsLocation) Location {
	l := Location{ID: h.ExternalID, Name: h.Name}
	if h.ExternalIDType != HSDSTaxonomy || h.ExternalID == "" {
		p.add(at+"/external_identifier", "required", "a location needs an external_identifier of type %q", HSDSTaxonomy)
	}
	if h.Latitude == nil || h.Longitude == nil {
		p.add(at+"/latitude", "required", "latitude and longitude are required")
	} else {
		l.Lat, l.Lon = *h.Latitude, *h.Longitude
	}
	if len(h.Addresses) > 0 {
		ad := h.Addresses[0]
		l.Address, l.City, l.Region, l.Postcode, l.Country = ad.Address1, ad.City, ad.Region, ad.PostalCode, strings.ToLower(ad.Country)
	}
	a := readAttributes(p, at, h.Attributes)
	l.Accessibility = a.codes["accessibility"]
	return l
}

func importService(p *problems, at string, h *hsdsService, orgID string, locs map[string]Location) Service {
	a := readAttributes(p, at, h.Attributes)
	s := Service{
		ID: a.one("service_id"), Organisation: orgID, Name: h.Name, Description: h.Description,
		Needs: a.codes["need"], Crimes: a.codes["crime"], Flags: a.codes["flag"],
		Eligibility:          Eligibility{AgeBands: a.codes["age_band"], Genders: a.codes["gender"]},
		Channels:             a.codes["channel"],
		Accessibility:        a.codes["accessibility"],
		InterpreterAvailable: a.bool(p, at+"/attributes", "interpreter_available"),
		ResponseHours:        a.int(p, at+"/attributes", "response_hours"),
		Version:              a.int(p, at+"/attributes", "version"),
	}
	if s.ID == "" {
		p.add(at+"/attributes", "required", "no service id: an attribute with taxonomy_term.code service_id is required")
	}
	switch h.Status {
	case StatusActive:
		s.Status = StatusActive
	default: // inactive, defunct, temporarily closed
		s.Status = StatusInactive
	}
	if h.LastModified != "" {
		s.UpdatedAt = parseTime(p, at+"/last_modified", "last_modified", h.LastModified)
	}
	for _, l := range h.Languages {
		s.Languages = append(s.Languages, l.Code)
	}
	for _, sa := range h.ServiceAreas {
		switch {
		case reCountryExtent.MatchString(sa.Extent):
			s.Area.Countries = append(s.Area.Countries, strings.ToLower(sa.Extent))
		case sa.Extent != "":
			s.Area.Regions = append(s.Area.Regions, sa.Extent)
		}
	}
	s.Area.Remote = a.bool(p, at+"/attributes", "remote")
	if v := a.one("radius_km"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			p.add(at+"/attributes", "format", "attribute radius_km: %q is not a number", v)
		}
		s.Area.RadiusKm = f
	}
	for i, sal := range h.ServiceAtLocations {
		if l, ok := locs[sal.LocationID]; ok {
			s.Locations = append(s.Locations, l)
		} else if sal.Location != nil {
			s.Locations = append(s.Locations, importLocation(p, fmt.Sprintf("%s/service_at_locations/%d/location", at, i), sal.Location))
		} else {
			p.add(fmt.Sprintf("%s/service_at_locations/%d/location_id", at, i), CodeUnknownReference, "location %q is not among the organization's locations", sal.LocationID)
		}
	}
	s.Hours = Schedule{TimeZone: a.one("time_zone"), Always: a.bool(p, at+"/attributes", "open_24_7")}
	if !s.Hours.Always {
		for i, sc := range h.Schedules {
			sat := fmt.Sprintf("%s/schedules/%d", at, i)
			if sc.Freq != "" && sc.Freq != "WEEKLY" {
				p.add(sat+"/freq", "enum", "only WEEKLY schedules can be read, not %q", sc.Freq)
				continue
			}
			for _, day := range strings.Split(sc.Byday, ",") {
				s.Hours.Weekly = append(s.Hours.Weekly, OpeningHours{Day: strings.ToLower(strings.TrimSpace(day)), Opens: clock(sc.OpensAt), Closes: clock(sc.ClosesAt)})
			}
		}
	}
	s.Capacity = Capacity{
		UpdatedAt: a.time(p, at+"/attributes", "capacity_updated_at"),
		MaxOpen:   a.int(p, at+"/attributes", "capacity_max_open"),
	}
	if cs := a.codes["capacity_status"]; len(cs) > 0 {
		s.Capacity.Status = cs[0]
	}
	if len(h.Contacts) > 0 {
		s.Contact = importContact(h.Contacts[0])
	}
	return s
}

// clock trims seconds from an HSDS time ("09:00:00" -> "09:00").
func clock(s string) string {
	if len(s) == 8 && s[5] == ':' {
		return s[:5]
	}
	return s
}
