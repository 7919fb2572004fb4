package console

import (
	"cmp"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/invictus-network/invictus/directory"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/routing"
)

// choice is one option of a form list.
type choice struct {
	Value, Label, Hint string
	On                 bool
}

// group is a labelled group of options (an optgroup).
type group struct {
	Label   string
	Choices []choice
}

// fieldErrors maps a form field to its error messages.
type fieldErrors map[string][]string

// assessData is what the assessment form shows.
type assessData struct {
	Errors      fieldErrors
	Summary     []summaryItem
	Needs       []choice
	Crimes      []choice
	Flags       []choice
	Urgencies   []choice
	AgeBands    []choice
	Genders     []choice
	Channels    []choice
	Access      []choice
	Methods     []choice
	Languages   []choice
	Countries   []choice
	Residence   []choice
	Regions     []group
	Cities      []group
	Orgs        []group
	Interpreter bool
	Referral    bool
	ShareData   bool
	GivenAt     string
	Hours       string
	StaffRef    string
}

// summaryItem links an error to its field.
type summaryItem struct{ Field, Label, Text string }

// assessForm is the parsed form.
type assessForm struct {
	v   url.Values
	req events.Requested
}

// fieldOf maps a payload pointer (/data/location/country, /data/needs/2)
// to the form field that holds it.
func fieldOf(pointer string) string {
	p := strings.TrimPrefix(strings.TrimPrefix(pointer, "/data"), "/")
	parts := strings.Split(p, "/")
	switch parts[0] {
	case "location":
		if len(parts) > 1 {
			switch parts[1] {
			case "lat", "lon", "municipality":
				return "city"
			case "residence_country":
				return "residence"
			}
			return parts[1]
		}
		return "country"
	case "consent":
		if len(parts) > 1 {
			return "consent_" + parts[1]
		}
		return "consent_referral"
	case "interpreter_ok":
		return "interpreter"
	case "preferred_organisation":
		return "preferred"
	case "response_hours":
		return "hours"
	}
	return parts[0]
}

// fieldKeys are the labels of the fields, in form order: the error
// summary follows it.
var fieldKeys = []string{"needs", "crimes", "flags", "urgency", "country", "region", "city", "residence", "languages",
	"interpreter", "age_band", "gender", "channels", "accessibility", "preferred", "hours",
	"consent_referral", "consent_share_data", "consent_method", "consent_given_at"}

// parseAssessment reads the form into a referral.requested payload and
// returns the errors of every field at once: those of the form's own
// parsing and those of events.ValidatePayload.
func (s *Server) parseAssessment(r *http.Request, u *User, p func(string, ...any) string) (*assessForm, fieldErrors) {
	v := r.PostForm
	f := &assessForm{v: v}
	errs := fieldErrors{}
	add := func(field, msg string) {
		if !slices.Contains(errs[field], msg) {
			errs[field] = append(errs[field], msg)
		}
	}
	q := &f.req
	q.Needs = v["needs"]
	q.Crimes = v["crimes"]
	q.Flags = v["flags"]
	q.Urgency = v.Get("urgency")
	q.Languages = v["languages"]
	q.InterpreterOK = v.Get("interpreter") == "yes"
	q.AgeBand = v.Get("age_band")
	q.Gender = v.Get("gender")
	q.Channels = v["channels"]
	q.Accessibility = v["accessibility"]
	q.Location.Country = v.Get("country")
	q.Location.Region = v.Get("region")
	q.Location.ResidenceCountry = v.Get("residence")
	if id := v.Get("city"); id != "" {
		c, ok := s.city(id)
		switch {
		case !ok:
			add("city", p("error.city"))
		case q.Location.Country != "" && c.Country != q.Location.Country:
			add("city", p("error.city_country"))
		default:
			lat, lon := roundCoord(c.Lat), roundCoord(c.Lon)
			q.Location.Lat, q.Location.Lon = &lat, &lon
			if q.Location.Country == "" {
				q.Location.Country = c.Country
			}
		}
	}
	if pref := v.Get("preferred"); pref != "" {
		if s.deps.Directory.Snapshot().Organisation(pref) == nil {
			add("preferred", p("error.preferred"))
		} else {
			q.PreferredOrganisation = pref
		}
	}
	if h := v.Get("hours"); h != "" {
		n, err := strconv.Atoi(h)
		if err != nil || n < 1 || n > 720 {
			add("hours", p("error.hours"))
		} else {
			q.ResponseHours = n
		}
	}
	q.Consent.Referral = v.Get("consent_referral") == "yes"
	q.Consent.ShareData = v.Get("consent_share_data") == "yes"
	q.Consent.Method = v.Get("consent_method")
	q.Consent.RecordedBy = u.StaffRef
	if g := v.Get("consent_given_at"); g != "" {
		t, err := time.ParseInLocation("2006-01-02T15:04", g, time.UTC)
		if err != nil {
			add("consent_given_at", p("error.given_at"))
		} else {
			q.Consent.GivenAt = t
		}
	}
	var ve *events.ValidationError
	if err := events.ValidatePayload(q); errors.As(err, &ve) {
		for _, pr := range ve.Problems {
			field := fieldOf(pr.Pointer)
			if field == "lat" || field == "lon" {
				field = "city"
			}
			if _, done := errs[field]; done && field == "city" {
				continue
			}
			add(field, p("error."+pr.Code))
		}
	}
	if len(errs) == 0 {
		return f, nil
	}
	return f, errs
}

// roundCoord rounds a coordinate to 0.01 degree, as the contract keeps.
func roundCoord(x float64) float64 {
	v, _ := strconv.ParseFloat(strconv.FormatFloat(x, 'f', 2, 64), 64)
	return v
}

// city returns the city of a form value "<country>:<GeoNames id>".
func (s *Server) city(id string) (directory.City, bool) {
	cc, gid, ok := strings.Cut(id, ":")
	n, err := strconv.Atoi(gid)
	if !ok || err != nil {
		return directory.City{}, false
	}
	for _, c := range s.cities {
		if c.GeoNamesID == n && c.Country == cc {
			return c, true
		}
	}
	return directory.City{}, false
}

// assess serves the assessment form (GET) and checks it (POST): with
// errors it is shown again, every error beside its field; without, the
// plan is previewed.
func (s *Server) assess(w http.ResponseWriter, r *http.Request, rq *request) (string, int, error) {
	rq.pg.Title = rq.p.T("assess.title")
	rq.pg.Section = "assess"
	if r.Method != http.MethodPost {
		v := url.Values{}
		v.Set("consent_given_at", s.cfg.Now().UTC().Format("2006-01-02T15:04"))
		v.Set("urgency", events.UrgencyRoutine)
		v.Set("age_band", "adult")
		rq.pg.Data = s.assessData(v, nil, rq)
		return "assess", http.StatusOK, nil
	}
	f, errs := s.parseAssessment(r, rq.user, rq.p.T)
	if errs != nil || r.PostFormValue("edit") == "1" {
		rq.pg.Data = s.assessData(r.PostForm, errs, rq)
		status := http.StatusOK
		if errs != nil {
			status = http.StatusUnprocessableEntity
			rq.pg.Title = rq.p.T("assess.title_errors", len(errs))
		}
		return "assess", status, nil
	}
	return s.plan(w, r, rq, f, nil)
}

// terms returns a taxonomy section as choices, checked when in on.
func (s *Server) terms(section, lang string, on []string) []choice {
	var out []choice
	for _, t := range s.tax.Sections()[section] {
		out = append(out, choice{Value: t.Code, Label: s.tax.Label(section, t.Code, lang), On: slices.Contains(on, t.Code),
			Hint: strings.Join(t.DirectiveArticles, ", ")})
	}
	return out
}

// assessData fills the form from values v.
func (s *Server) assessData(v url.Values, errs fieldErrors, rq *request) *assessData {
	lang := rq.lang
	d := &assessData{
		Errors: errs, Needs: s.terms("needs", lang, v["needs"]), Crimes: s.terms("crimes", lang, v["crimes"]),
		Flags: s.terms("flags", lang, v["flags"]), Urgencies: s.terms("urgencies", lang, v["urgency"]),
		AgeBands: s.terms("age_bands", lang, v["age_band"]), Genders: s.terms("genders", lang, v["gender"]),
		Channels: s.terms("channels", lang, v["channels"]), Access: s.terms("accessibility", lang, v["accessibility"]),
		Methods:     s.terms("consent_methods", lang, v["consent_method"]),
		Interpreter: v.Get("interpreter") == "yes", Referral: v.Get("consent_referral") == "yes",
		ShareData: v.Get("consent_share_data") == "yes", GivenAt: v.Get("consent_given_at"), Hours: v.Get("hours"),
		StaffRef: rq.user.StaffRef,
	}
	for _, k := range fieldKeys {
		for _, m := range errs[k] {
			d.Summary = append(d.Summary, summaryItem{Field: k, Label: rq.p.T("field." + k), Text: m})
		}
	}
	for _, l := range langChoices() {
		l.On = slices.Contains(v["languages"], l.Value)
		d.Languages = append(d.Languages, l)
	}
	countries := s.countries()
	for _, cc := range countries {
		name := countryName(cc, lang)
		d.Countries = append(d.Countries, choice{Value: cc, Label: name, On: v.Get("country") == cc})
		var regs []choice
		for _, code := range directory.Regions(cc) {
			regs = append(regs, choice{Value: code, Label: code + " – " + s.regionCities(cc, code), On: v.Get("region") == code})
		}
		d.Regions = append(d.Regions, group{Label: name, Choices: regs})
		var cities []choice
		for _, c := range s.cities {
			if c.Country == cc {
				id := cc + ":" + strconv.Itoa(c.GeoNamesID)
				cities = append(cities, choice{Value: id, Label: c.Name, On: v.Get("city") == id})
			}
		}
		slices.SortFunc(cities, func(a, b choice) int { return strings.Compare(a.Label, b.Label) })
		d.Cities = append(d.Cities, group{Label: name, Choices: cities})
	}
	for _, cc := range euCountries {
		d.Residence = append(d.Residence, choice{Value: cc, Label: countryName(cc, lang), On: v.Get("residence") == cc})
	}
	slices.SortFunc(d.Residence, func(a, b choice) int { return strings.Compare(a.Label, b.Label) })
	byCountry := map[string][]choice{}
	for _, o := range s.deps.Directory.Snapshot().Directory().Organisations {
		byCountry[o.Country] = append(byCountry[o.Country], choice{Value: o.ID, Label: o.Name, On: v.Get("preferred") == o.ID})
	}
	for _, cc := range countries {
		if cs := byCountry[cc]; len(cs) > 0 {
			slices.SortFunc(cs, func(a, b choice) int { return strings.Compare(a.Label, b.Label) })
			d.Orgs = append(d.Orgs, group{Label: countryName(cc, lang), Choices: cs})
		}
	}
	return d
}

// countries are the countries of the city list, sorted by code.
func (s *Server) countries() []string {
	var out []string
	for _, c := range s.cities {
		if !slices.Contains(out, c.Country) {
			out = append(out, c.Country)
		}
	}
	slices.Sort(out)
	return out
}

// regionCities names a NUTS-2 region by its two largest cities.
func (s *Server) regionCities(cc, code string) string {
	var in []directory.City
	for _, c := range s.cities {
		if c.Country == cc && c.NUTS2 == code {
			in = append(in, c)
		}
	}
	slices.SortFunc(in, func(a, b directory.City) int { return cmp.Compare(b.Population, a.Population) })
	var names []string
	for i := 0; i < len(in) && i < 2; i++ {
		names = append(names, in[i].Name)
	}
	return strings.Join(names, ", ")
}

// match plans the profile as the routing service would for the
// referrer's organisation: the same matcher and options as the API's
// preview.
func (s *Server) match(org string, q *events.Requested) (*routing.Plan, error) {
	opts := []routing.MatchOption{routing.WithReferrer(org)}
	if q.PreferredOrganisation != "" {
		opts = append(opts, routing.WithPreferredOrganisation(q.PreferredOrganisation))
	}
	return s.deps.Matcher.Match(s.deps.Directory.Snapshot(), q.Profile, opts...)
}
