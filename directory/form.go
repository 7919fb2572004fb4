package directory

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/invictus-network/invictus/events"
)

// Form formats accepted by ImportForm.
const (
	FormCSV  = "csv"
	FormYAML = "yaml"
)

// FormColumns are the columns of the hand-filled form, one row per
// service. Lists (needs, languages, ...) are separated by spaces, commas
// or semicolons. Organisation columns repeat on each row of the
// organisation; a blank cell inherits the value given on another row.
// Only org_id, service_name (or service_slug), needs, languages and
// channels are required; see testdata/form-template.csv.
var FormColumns = []string{
	"org_id", "org_name", "org_type", "country", "website",
	"contact_role", "contact_email", "contact_phone", "age_recipient",
	"service_slug", "service_name", "description", "status",
	"needs", "crimes", "flags", "age_bands", "genders",
	"languages", "interpreter", "channels", "accessibility",
	"location_id", "address", "postcode", "city", "region", "lat", "lon",
	"regions", "radius_km", "remote",
	"hours", "time_zone", "capacity", "max_open", "response_hours",
}

// formRow is one row of the form: cell values by column, and how to name
// the row in errors.
type formRow struct {
	label string // "row 4"
	cells map[string]string
}

// ImportForm reads the simple form a small organisation fills in by hand,
// as CSV (with a header row of FormColumns; lines starting with # are
// comments) or YAML (a list of mappings with the same keys, at the top
// level or under "services"; lists may be YAML sequences). format is
// FormCSV or FormYAML. A city of the embedded list gives its coordinates
// and NUTS region when lat and lon are blank. Hours are "24/7" or
// intervals such as "mo-fr 09:00-17:00; sa 10:00-13:00" (several intervals
// on one day: "mo-fr 09:00-12:30, 13:30-17:00"); time_zone defaults to
// the country's. It returns a valid directory sorted by id, or a
// *ValidationError whose problems name the row and column, e.g.
// `row 4, column needs: "support.emotionl" is not a known need code`.
func ImportForm(r io.Reader, format string) (*Directory, error) {
	var rows []formRow
	var err error
	switch format {
	case FormCSV:
		rows, err = readFormCSV(r)
	case FormYAML, "yml":
		rows, err = readFormYAML(r)
	default:
		return nil, fmt.Errorf("form format %q: %w (use csv or yaml)", format, ErrInvalid)
	}
	if err != nil {
		return nil, err
	}
	return buildForm(rows)
}

func readFormCSV(r io.Reader) ([]formRow, error) {
	cr := csv.NewReader(r)
	cr.Comment = '#'
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if err != nil {
		return nil, &ValidationError{Problems: []Problem{{Pointer: "row 1", Code: events.CodeFormat, Message: "no header row: " + err.Error()}}}
	}
	var p problems
	for i, h := range header {
		header[i] = strings.ToLower(strings.TrimSpace(h))
		if !slices.Contains(FormColumns, header[i]) {
			line, _ := cr.FieldPos(i)
			p.add(fmt.Sprintf("row %d, column %s", line, h), events.CodeUnknownField, "unknown column %q (columns: %s)", h, strings.Join(FormColumns, ", "))
		}
	}
	if err := p.err(); err != nil {
		return nil, err
	}
	var rows []formRow
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		line, _ := cr.FieldPos(0)
		if err != nil {
			return nil, &ValidationError{Problems: []Problem{{Pointer: fmt.Sprintf("row %d", line), Code: events.CodeFormat, Message: err.Error()}}}
		}
		row := formRow{label: fmt.Sprintf("row %d", line), cells: map[string]string{}}
		blank := true
		for i, v := range rec {
			if i >= len(header) {
				if strings.TrimSpace(v) != "" {
					p.add(fmt.Sprintf("row %d, column %d", line, i+1), events.CodeUnknownField, "a value beyond the last column of the header")
				}
				continue
			}
			v = strings.TrimSpace(v)
			row.cells[header[i]] = v
			blank = blank && v == ""
		}
		if !blank {
			rows = append(rows, row)
		}
	}
	return rows, p.err()
}

func readFormYAML(r io.Reader) ([]formRow, error) {
	var doc yaml.Node
	if err := yaml.NewDecoder(r).Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, &ValidationError{Problems: []Problem{{Code: events.CodeMalformedJSON, Message: "YAML: " + err.Error()}}}
	}
	n := &doc
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	if n.Kind == yaml.MappingNode {
		var list *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == "services" {
				list = n.Content[i+1]
			}
		}
		if list == nil {
			return nil, &ValidationError{Problems: []Problem{{Pointer: fmt.Sprintf("line %d", n.Line), Code: events.CodeRequired, Message: "expected a list of services, or a mapping with a services list"}}}
		}
		n = list
	}
	if n.Kind != yaml.SequenceNode {
		return nil, &ValidationError{Problems: []Problem{{Pointer: fmt.Sprintf("line %d", n.Line), Code: events.CodeFormat, Message: "expected a list of services"}}}
	}
	var p problems
	var rows []formRow
	for i, item := range n.Content {
		label := fmt.Sprintf("row %d (line %d)", i+1, item.Line)
		if item.Kind != yaml.MappingNode {
			p.add(label, events.CodeFormat, "each service is a mapping of column: value")
			continue
		}
		row := formRow{label: label, cells: map[string]string{}}
		for j := 0; j+1 < len(item.Content); j += 2 {
			k, v := strings.ToLower(item.Content[j].Value), item.Content[j+1]
			if !slices.Contains(FormColumns, k) {
				p.add(fmt.Sprintf("%s, column %s", label, item.Content[j].Value), events.CodeUnknownField, "unknown column %q", item.Content[j].Value)
				continue
			}
			switch v.Kind {
			case yaml.ScalarNode:
				if v.Tag != "!!null" {
					row.cells[k] = strings.TrimSpace(v.Value)
				}
			case yaml.SequenceNode:
				var vals []string
				for _, x := range v.Content {
					vals = append(vals, x.Value)
				}
				row.cells[k] = strings.Join(vals, ";")
			default:
				p.add(fmt.Sprintf("%s, column %s", label, k), events.CodeFormat, "expected a value or a list")
			}
		}
		rows = append(rows, row)
	}
	return rows, p.err()
}

var reListSep = regexp.MustCompile(`[\s,;]+`)

func splitList(s string) []string {
	var out []string
	for _, f := range reListSep.Split(strings.TrimSpace(s), -1) {
		if f != "" {
			out = append(out, f)
		}
	}
	return out
}

func parseBool(s string) (bool, bool) {
	switch strings.ToLower(s) {
	case "", "no", "n", "false", "0":
		return false, true
	case "yes", "y", "true", "1":
		return true, true
	}
	return false, false
}

// orgColumns are the organisation's columns: every row of one
// organisation must agree on them.
var orgColumns = []string{"org_name", "org_type", "country", "website", "contact_role", "contact_email", "contact_phone", "age_recipient"}

func buildForm(rows []formRow) (*Directory, error) {
	var p problems
	d := &Directory{}
	orgAt := map[string]int{}
	orgCells := map[string]map[string]string{}
	orgRow := map[string]string{}
	svcRow := map[string]string{}
	var labels []string // of d.Services
	for _, row := range rows {
		c := row.cells
		at := func(col string) string { return row.label + ", column " + col }
		orgID := c["org_id"]
		if orgID == "" {
			p.add(at("org_id"), events.CodeRequired, "org_id is required (e.g. pt.my-organisation)")
			continue
		}
		// Organisation columns: merge, flag disagreements.
		if _, ok := orgCells[orgID]; !ok {
			orgCells[orgID] = map[string]string{}
			orgRow[orgID] = row.label
		}
		for _, col := range orgColumns {
			v := c[col]
			if v == "" {
				continue
			}
			if prev, ok := orgCells[orgID][col]; ok && prev != v {
				p.add(at(col), CodeConflict, "%q differs from %q given for organisation %s on %s", v, prev, orgID, orgRow[orgID])
				continue
			}
			orgCells[orgID][col] = v
		}
		if _, ok := orgAt[orgID]; !ok {
			orgAt[orgID] = len(d.Organisations)
			d.Organisations = append(d.Organisations, Organisation{ID: orgID})
		}
		s, bad := formService(&p, row, orgID)
		if prev, dup := svcRow[s.ID]; dup {
			p.add(at("service_slug"), events.CodeDuplicate, "service %s is already given on %s", s.ID, prev)
			continue
		}
		svcRow[s.ID] = row.label
		validateFormService(&p, row.label, &s, bad)
		d.Services = append(d.Services, s)
		labels = append(labels, row.label)
		o := &d.Organisations[orgAt[orgID]]
		for _, l := range s.Languages {
			o.Languages = appendNew(o.Languages, l)
		}
	}
	for i := range d.Organisations {
		o := &d.Organisations[i]
		c := orgCells[o.ID]
		o.Name, o.Type, o.Country, o.Website = c["org_name"], c["org_type"], c["country"], c["website"]
		if o.Country == "" {
			o.Country, _, _ = strings.Cut(o.ID, ".")
		}
		if o.Name == "" {
			o.Name = o.ID
		}
		o.ReferralContact = Contact{Role: c["contact_role"], Email: c["contact_email"], Phone: c["contact_phone"]}
		o.AgeRecipient = c["age_recipient"]
		o.Version = ModelVersion
		var op problems
		validateOrganisation(&op, o)
		for _, pr := range op.list {
			p.add(fmt.Sprintf("%s, column %s", orgRow[o.ID], columnOf(pr.Pointer, orgPointerColumns)), pr.Code, "%s", pr.Message)
		}
	}
	if err := p.err(); err != nil {
		return nil, err
	}
	// What is left are problems between rows (a location id given two
	// different places): name the rows.
	var verr *ValidationError
	if err := d.Validate(); errors.As(err, &verr) {
		for _, pr := range verr.Problems {
			var i int
			var rest string
			if _, e := fmt.Sscanf(pr.Pointer, "/services/%d", &i); e == nil && i < len(labels) {
				rest = strings.TrimPrefix(pr.Pointer, fmt.Sprintf("/services/%d", i))
				p.add(fmt.Sprintf("%s, column %s", labels[i], columnOf(rest, servicePointerColumns)), pr.Code, "%s", pr.Message)
			} else {
				p.add(pr.Pointer, pr.Code, "%s", pr.Message)
			}
		}
		return nil, p.err()
	} else if err != nil {
		return nil, err
	}
	d.Sort()
	return d, nil
}

// formService builds the service of one row; parse errors name the
// column. It returns the columns that had parse errors.
func formService(p *problems, row formRow, orgID string) (Service, map[string]bool) {
	c := row.cells
	bad := map[string]bool{}
	at := func(col string) string { bad[col] = true; return row.label + ", column " + col }
	cc := c["country"]
	if cc == "" {
		cc, _, _ = strings.Cut(orgID, ".")
	}
	slug := c["service_slug"]
	if slug == "" {
		slug = slugify(c["service_name"])
	}
	if slug == "" {
		p.add(at("service_name"), events.CodeRequired, "service_name or service_slug is required")
	}
	name := c["service_name"]
	if name == "" {
		name = slug
	}
	status := c["status"]
	if status == "" {
		status = StatusActive
	}
	s := Service{
		ID: orgID + "." + slug, Organisation: orgID, Name: name, Description: c["description"], Status: status,
		Needs: splitList(c["needs"]), Crimes: splitList(c["crimes"]), Flags: splitList(c["flags"]),
		Eligibility: Eligibility{AgeBands: splitList(c["age_bands"]), Genders: splitList(c["genders"])},
		Languages:   splitList(c["languages"]), Channels: splitList(c["channels"]),
		Accessibility: splitList(c["accessibility"]),
		Area:          ServiceArea{Countries: []string{cc}, Regions: splitList(c["regions"])},
		Capacity:      Capacity{Status: c["capacity"]},
		Version:       ModelVersion,
	}
	if s.Capacity.Status == "" {
		s.Capacity.Status = events.CapacityAccepting
	}
	var ok bool
	if s.InterpreterAvailable, ok = parseBool(c["interpreter"]); !ok {
		p.add(at("interpreter"), events.CodeFormat, "%q is not yes or no", c["interpreter"])
	}
	if s.Area.Remote, ok = parseBool(c["remote"]); !ok {
		p.add(at("remote"), events.CodeFormat, "%q is not yes or no", c["remote"])
	}
	number := func(col string, f *float64) {
		if c[col] == "" {
			return
		}
		v, err := strconv.ParseFloat(strings.ReplaceAll(c[col], ",", "."), 64)
		if err != nil {
			p.add(at(col), events.CodeFormat, "%q is not a number", c[col])
		}
		*f = v
	}
	integer := func(col string, n *int) {
		if c[col] == "" {
			return
		}
		v, err := strconv.Atoi(c[col])
		if err != nil {
			p.add(at(col), events.CodeFormat, "%q is not a whole number", c[col])
		}
		*n = v
	}
	number("radius_km", &s.Area.RadiusKm)
	integer("response_hours", &s.ResponseHours)
	integer("max_open", &s.Capacity.MaxOpen)

	// Location: given by coordinates, or by a city of the embedded list.
	if c["lat"] != "" || c["lon"] != "" || c["city"] != "" || c["address"] != "" {
		l := Location{ID: c["location_id"], Address: c["address"], Postcode: c["postcode"], City: c["city"], Country: cc, Region: c["region"]}
		if l.ID == "" {
			l.ID = slugify(l.City)
		}
		if l.ID == "" {
			l.ID = "main"
		}
		if c["lat"] == "" && c["lon"] == "" {
			if city, found := findCity(cc, l.City); found {
				l.Lat, l.Lon = city.Lat, city.Lon
				if l.Region == "" {
					l.Region = city.NUTS3
				}
			} else {
				p.add(at("lat"), events.CodeRequired, "lat and lon are required: %q is not a city of the embedded list for %s", l.City, cc)
			}
		} else {
			if c["lat"] == "" || c["lon"] == "" {
				p.add(at("lat"), events.CodeRequired, "give both lat and lon")
			}
			number("lat", &l.Lat)
			number("lon", &l.Lon)
		}
		s.Locations = []Location{l}
	}
	tz := c["time_zone"]
	if tz == "" {
		region := c["region"]
		if len(s.Locations) > 0 {
			region = s.Locations[0].Region
		}
		tz = TimeZone(cc, region)
	}
	hours, err := ParseHours(c["hours"], tz)
	if err != nil {
		p.add(at("hours"), events.CodeFormat, "%v", err)
	}
	s.Hours = hours
	return s, bad
}

func findCity(cc, name string) (City, bool) {
	cities, err := loadCities()
	if err != nil || name == "" {
		return City{}, false
	}
	for _, c := range cities {
		if c.Country == cc && strings.EqualFold(c.Name, name) {
			return c, true
		}
	}
	return City{}, false
}

// validateFormService validates s and reports problems by column,
// skipping columns that already had a parse error.
func validateFormService(p *problems, label string, s *Service, bad map[string]bool) {
	var sp problems
	validateService(&sp, s)
	for _, pr := range sp.list {
		col := columnOf(pr.Pointer, servicePointerColumns)
		if !bad[col] {
			p.add(fmt.Sprintf("%s, column %s", label, col), pr.Code, "%s", pr.Message)
		}
	}
}

// Pointer prefixes of validation problems and the form column they come
// from, most specific first.
var servicePointerColumns = [][2]string{
	{"/id", "service_slug"}, {"/organisation", "org_id"}, {"/name", "service_name"},
	{"/description", "description"}, {"/status", "status"}, {"/needs", "needs"}, {"/crimes", "crimes"},
	{"/flags", "flags"}, {"/eligibility/age_bands", "age_bands"}, {"/eligibility/genders", "genders"},
	{"/languages", "languages"}, {"/channels", "channels"}, {"/accessibility", "accessibility"},
	{"/area/countries", "country"}, {"/area/regions", "regions"}, {"/area/radius_km", "radius_km"},
	{"/area/remote", "remote"}, {"/area", "regions"},
	{"/locations/0/id", "location_id"}, {"/locations/0/address", "address"}, {"/locations/0/postcode", "postcode"},
	{"/locations/0/city", "city"}, {"/locations/0/country", "country"}, {"/locations/0/region", "region"},
	{"/locations/0/lat", "lat"}, {"/locations/0/lon", "lon"}, {"/locations", "city"},
	{"/hours/time_zone", "time_zone"}, {"/hours", "hours"}, {"/response_hours", "response_hours"},
	{"/capacity/status", "capacity"}, {"/capacity/max_open", "max_open"},
}

var orgPointerColumns = [][2]string{
	{"/id", "org_id"}, {"/country", "country"}, {"/name", "org_name"}, {"/type", "org_type"},
	{"/website", "website"}, {"/referral_contact/role", "contact_role"}, {"/referral_contact/email", "contact_email"},
	{"/referral_contact/phone", "contact_phone"}, {"/age_recipient", "age_recipient"}, {"/languages", "languages"},
}

func columnOf(ptr string, table [][2]string) string {
	for _, e := range table {
		if ptr == e[0] || strings.HasPrefix(ptr, e[0]+"/") {
			return e[1]
		}
	}
	return strings.TrimPrefix(ptr, "/")
}

var (
	reHoursPart = regexp.MustCompile(`^([a-z]{2}(?:\s*-\s*[a-z]{2})?(?:\s*,\s*[a-z]{2}(?:\s*-\s*[a-z]{2})?)*)\s+(.+)$`)
	reInterval  = regexp.MustCompile(`^(\d{1,2}:\d\d)\s*-\s*(\d{1,2}:\d\d)$`)
)

// ParseHours parses the form's hours notation into a schedule in time
// zone tz: "" (not stated), "24/7", or "; "-separated parts of days and
// intervals: "mo-fr 09:00-17:00; sa 10:00-13:00", "mo,we 09:00-12:30,
// 13:30-17:00". Days are mo tu we th fr sa su; a range runs forward
// (fr-mo is fr sa su mo). It does not check that closes is after opens;
// Validate does.
func ParseHours(s, tz string) (Schedule, error) {
	h := Schedule{TimeZone: tz}
	s = strings.ToLower(strings.TrimSpace(s))
	switch s {
	case "":
		return h, nil
	case "24/7", "24x7":
		h.Always = true
		return h, nil
	}
	for _, part := range strings.Split(s, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		m := reHoursPart.FindStringSubmatch(part)
		if m == nil {
			return h, fmt.Errorf("%q is not days and hours like \"mo-fr 09:00-17:00\"", part)
		}
		days, err := parseDays(m[1])
		if err != nil {
			return h, err
		}
		for _, iv := range strings.Split(m[2], ",") {
			im := reInterval.FindStringSubmatch(strings.TrimSpace(iv))
			if im == nil {
				return h, fmt.Errorf("%q is not an interval like 09:00-17:00", strings.TrimSpace(iv))
			}
			for _, d := range days {
				h.Weekly = append(h.Weekly, OpeningHours{Day: d, Opens: pad(im[1]), Closes: pad(im[2])})
			}
		}
	}
	slices.SortStableFunc(h.Weekly, func(a, b OpeningHours) int {
		return slices.Index(Days, a.Day) - slices.Index(Days, b.Day)
	})
	return h, nil
}

func pad(clock string) string {
	if len(clock) == 4 {
		return "0" + clock
	}
	return clock
}

func parseDays(s string) ([]string, error) {
	var out []string
	for _, item := range strings.Split(s, ",") {
		from, to, isRange := strings.Cut(strings.TrimSpace(item), "-")
		from, to = strings.TrimSpace(from), strings.TrimSpace(to)
		i := slices.Index(Days, from)
		if i < 0 {
			return nil, fmt.Errorf("%q is not a day (mo tu we th fr sa su)", from)
		}
		if !isRange {
			out = appendNew(out, from)
			continue
		}
		j := slices.Index(Days, to)
		if j < 0 {
			return nil, fmt.Errorf("%q is not a day (mo tu we th fr sa su)", to)
		}
		for k := i; ; k = (k + 1) % 7 {
			out = appendNew(out, Days[k])
			if k == j {
				break
			}
		}
	}
	return out, nil
}
