package web

import (
	"cmp"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/invictus-network/invictus/directory"
	"github.com/invictus-network/invictus/events"
)

// searchForm is a parsed search. Every code in it is valid.
type searchForm struct {
	Country, Region, City          string
	Crime, Need, Language, Channel string
	// Lat and Lon are "near me", rounded to 0.01 degree (about 1 km).
	Lat, Lon string
	Page     int
	// Asked reports whether any field was given: a search to run, not an
	// empty form to show.
	Asked bool
}

// fieldError is what the page says next to a field: the problem and, for
// an unknown value, the valid choices.
type fieldError struct {
	Message string
	Choices []choice
}

// choice is one valid value of a field, with its label.
type choice struct {
	Code, Label string
}

// place is where a search looks: a country, a region, a point.
type place struct {
	country, region string
	lat, lon        float64
	hasPoint        bool
	// name says the place in words: a city, a region, "near you".
	name string
}

// parseSearch reads and checks a search. Unknown values are reported by
// field with the valid choices; the form keeps what the visitor typed.
func (s *Server) parseSearch(v url.Values, p Printer) (searchForm, map[string]*fieldError) {
	f := searchForm{Page: 1}
	errs := map[string]*fieldError{}
	get := func(k string) string {
		val := strings.TrimSpace(v.Get(k))
		if val != "" {
			f.Asked = true
		}
		return val
	}
	f.Country = strings.ToLower(get("country"))
	f.Region = strings.ToUpper(get("region"))
	f.City = get("city")
	f.Crime, f.Need = get("crime"), get("need")
	f.Language, f.Channel = strings.ToLower(get("language")), get("channel")
	f.Lat, f.Lon = get("lat"), get("lon")
	if pg := get("page"); pg != "" {
		n, err := strconv.Atoi(pg)
		if err != nil || n < 1 || n > 100000 {
			errs["page"] = &fieldError{Message: p.T("search.error.page")}
		} else {
			f.Page = n
		}
	}
	if f.Country != "" && !events.IsCountry(f.Country) {
		errs["country"] = &fieldError{Message: p.T("search.error.country", f.Country), Choices: s.countryChoices(p)}
	}
	if f.Region != "" {
		cc := f.Country
		if cc == "" {
			cc = countryOfRegion(f.Region)
		}
		if !s.places.regionOK(cc, f.Region) {
			fe := &fieldError{Message: p.T("search.error.region", f.Region)}
			for _, r := range s.places.regions[cc] {
				fe.Choices = append(fe.Choices, choice{r.Code, regionLabel(r)})
			}
			if len(fe.Choices) == 0 {
				fe.Message = p.T("search.error.region_country", f.Region)
			}
			errs["region"] = fe
		} else if errs["country"] == nil {
			f.Country = cc
		}
	}
	if f.City != "" && errs["country"] == nil {
		if _, ok := s.places.city(f.Country, f.City); !ok {
			fe := &fieldError{Message: p.T("search.error.city", f.City)}
			if f.Country != "" {
				fe.Message = p.T("search.error.city_in", f.City, countryName(p.lang, f.Country))
				for i, c := range s.places.byCountry[f.Country] {
					if i == 40 {
						break
					}
					fe.Choices = append(fe.Choices, choice{c.Name, c.Name})
				}
			}
			errs["city"] = fe
		}
	}
	code := func(field, section, val string, ok func(string) bool) {
		if val != "" && !ok(val) {
			fe := &fieldError{Message: p.T("search.error."+field, val)}
			for _, t := range s.tax.Sections()[section] {
				fe.Choices = append(fe.Choices, choice{t.Code, t.Labels[p.lang]})
			}
			errs[field] = fe
		}
	}
	code("crime", "crimes", f.Crime, events.IsCrime)
	code("need", "needs", f.Need, events.IsNeed)
	code("channel", "channels", f.Channel, func(c string) bool { return slices.Contains(events.Channels, c) })
	if f.Language != "" && s.places.langName[f.Language] == "" {
		fe := &fieldError{Message: p.T("search.error.language", f.Language)}
		for _, l := range s.places.languages {
			fe.Choices = append(fe.Choices, choice{l.Code, l.NativeName})
		}
		errs["language"] = fe
	}
	if f.Lat != "" || f.Lon != "" {
		lat, err1 := strconv.ParseFloat(f.Lat, 64)
		lon, err2 := strconv.ParseFloat(f.Lon, 64)
		if err1 != nil || err2 != nil || math.IsNaN(lat) || math.IsNaN(lon) || lat < -90 || lat > 90 || lon < -180 || lon > 180 {
			errs["near"] = &fieldError{Message: p.T("search.error.near")}
		} else {
			// The point is rounded to 0.01 degree before anything uses it.
			f.Lat, f.Lon = strconv.FormatFloat(math.Round(lat*100)/100, 'f', 2, 64), strconv.FormatFloat(math.Round(lon*100)/100, 'f', 2, 64)
		}
	}
	if f.Asked && len(errs) == 0 && f.Country == "" && f.Region == "" && f.City == "" && f.Lat == "" {
		errs["country"] = &fieldError{Message: p.T("search.error.place"), Choices: s.countryChoices(p)}
	}
	return f, errs
}

// countryChoices are the countries of the directory, by name.
func (s *Server) countryChoices(p Printer) []choice {
	var out []choice
	for _, cc := range s.countries() {
		out = append(out, choice{cc, countryName(p.lang, cc)})
	}
	slices.SortFunc(out, func(a, b choice) int { return strings.Compare(a.Label, b.Label) })
	return out
}

// snapData is what the pages derive from one directory snapshot, once:
// the countries served, and for each country the sorted numbers of the
// services serving it (a posting list the index does not keep).
type snapData struct {
	snap      *directory.Index
	countries []string
	byCountry map[string][]int32
}

// derived returns the snapData of the current snapshot, computing it on
// the first call after the directory changed.
func (s *Server) derived() *snapData {
	snap := s.deps.Directory.Snapshot()
	s.cmu.Lock()
	defer s.cmu.Unlock()
	if s.cache != nil && s.cache.snap == snap {
		return s.cache
	}
	d := &snapData{snap: snap, byCountry: map[string][]int32{}}
	for i := range int32(snap.Len()) {
		if sv := snap.Service(i); snap.Listed(sv) {
			for _, cc := range sv.Area.Countries {
				d.byCountry[cc] = append(d.byCountry[cc], i)
			}
		}
	}
	for cc := range d.byCountry {
		d.countries = append(d.countries, cc)
	}
	slices.Sort(d.countries)
	s.cache = d
	return d
}

// countries returns the sorted countries served by the active services
// of the current directory snapshot.
func (s *Server) countries() []string { return s.derived().countries }

func regionLabel(r region) string {
	if len(r.Cities) == 0 {
		return r.Code
	}
	return r.Code + " – " + strings.Join(r.Cities, ", ")
}

// resolve turns a checked form into the place to search.
func (s *Server) resolve(f searchForm, p Printer) place {
	pl := place{country: f.Country, region: f.Region}
	switch {
	case f.Lat != "":
		lat, _ := strconv.ParseFloat(f.Lat, 64)
		lon, _ := strconv.ParseFloat(f.Lon, 64)
		pl.lat, pl.lon, pl.hasPoint = lat, lon, true
		pl.name = p.T("search.place.near")
		if pl.country == "" {
			// The country of the nearest known city, if it is near.
			if c, km := s.places.nearest(lat, lon); km <= 100 {
				pl.country = c.Country
			}
		}
	case f.City != "":
		c, _ := s.places.city(f.Country, f.City)
		pl.country, pl.lat, pl.lon, pl.hasPoint, pl.name = c.Country, c.Lat, c.Lon, true, c.Name
		if pl.region == "" {
			pl.region = c.NUTS3
		}
	case f.Region != "":
		pl.name = f.Region
		for _, r := range s.places.regions[f.Country] {
			if r.Code == f.Region {
				pl.name = regionLabel(r)
			}
		}
	default:
		pl.name = countryName(p.lang, f.Country)
	}
	return pl
}

// hit is one service found, with its organisation and distance.
type hit struct {
	svc *directory.Service
	org *directory.Organisation
	// km is the distance from the searched point to the nearest place of
	// the service; NaN when there is no point or the service has no place.
	km float64
}

// search returns the services that match the form, in the order shown:
// by distance when there is a point, else by organisation and name.
//
// A point (a city, "near me") asks the directory index for the services
// whose area covers the place or with a place within NearRadiusKm; a
// region or a country takes the services serving that country (from the
// index's shortest posting list of the need, language or channel asked
// for) and keeps, for a region, those whose area covers it or with a
// place in it. Crime, language and channel then filter: a service with no
// crime listed helps victims of any crime.
func (s *Server) search(snap *directory.Index, f searchForm, pl place) []hit {
	needs := events.Needs
	if f.Need != "" {
		needs = []string{f.Need}
	}
	var cands []int32
	if pl.hasPoint {
		lat, lon := pl.lat, pl.lon
		q := directory.Query{Needs: needs, Country: pl.country, Region: pl.region, Lat: &lat, Lon: &lon, RadiusKm: s.cfg.NearRadiusKm}
		cands = snap.Candidates(q, nil)
	} else {
		cands = s.postings(snap, f, pl)
	}
	out := make([]hit, 0, min(len(cands), 1024))
	for _, i := range cands {
		sv := snap.Service(i)
		if !snap.Listed(sv) || !s.keep(sv, f, pl) {
			continue
		}
		h := hit{svc: sv, org: snap.Organisation(sv.Organisation), km: math.NaN()}
		if pl.hasPoint && len(sv.Locations) > 0 {
			h.km = snap.NearestKm(i, pl.lat, pl.lon)
		}
		out = append(out, h)
	}
	slices.SortFunc(out, func(a, b hit) int {
		if pl.hasPoint {
			ak, bk := a.km, b.km
			if math.IsNaN(ak) {
				ak = 0 // serves the whole area from afar: as near as it gets
			}
			if math.IsNaN(bk) {
				bk = 0
			}
			if c := cmp.Compare(ak, bk); c != 0 {
				return c
			}
		}
		if c := strings.Compare(orgName(a), orgName(b)); c != 0 {
			return c
		}
		if c := strings.Compare(a.svc.Name, b.svc.Name); c != 0 {
			return c
		}
		return strings.Compare(a.svc.ID, b.svc.ID)
	})
	return out
}

func orgName(h hit) string {
	if h.org != nil {
		return h.org.Name
	}
	return h.svc.Organisation
}

// postings returns the services to test for a search without a point:
// the intersection of the posting lists the form allows (the country's
// services, and the need, language and channel asked for), shortest
// first; every service number when the form names none of them.
func (s *Server) postings(snap *directory.Index, f searchForm, pl place) []int32 {
	var lists [][]int32
	if pl.country != "" {
		if d := s.derived(); d.snap == snap {
			lists = append(lists, d.byCountry[pl.country])
		}
	}
	if f.Need != "" {
		lists = append(lists, snap.ByNeed(f.Need))
	}
	if f.Language != "" {
		lists = append(lists, snap.ByLanguage(f.Language))
	}
	if f.Channel != "" {
		lists = append(lists, snap.ByChannel(f.Channel))
	}
	if len(lists) == 0 {
		all := make([]int32, snap.Len())
		for i := range all {
			all[i] = int32(i)
		}
		return all
	}
	slices.SortFunc(lists, func(a, b []int32) int { return len(a) - len(b) })
	out := lists[0]
	for _, l := range lists[1:] {
		out = directory.Intersect(out, l)
	}
	return out
}

// keep applies the filters that the candidates do not: the country and
// region (without a point), need, crime, language, channel.
func (s *Server) keep(sv *directory.Service, f searchForm, pl place) bool {
	if f.Need != "" && !slices.Contains(sv.Needs, f.Need) {
		return false
	}
	if f.Crime != "" && len(sv.Crimes) > 0 && !slices.Contains(sv.Crimes, f.Crime) {
		return false
	}
	if f.Language != "" && !slices.Contains(sv.Languages, f.Language) {
		return false
	}
	if f.Channel != "" && !slices.Contains(sv.Channels, f.Channel) {
		return false
	}
	if pl.hasPoint {
		return true
	}
	if pl.country != "" && !slices.Contains(sv.Area.Countries, pl.country) {
		return false
	}
	if pl.region != "" && !sv.Covers(pl.country, pl.region, 0, 0, false) {
		return slices.ContainsFunc(sv.Locations, func(l directory.Location) bool { return strings.HasPrefix(l.Region, pl.region) })
	}
	return true
}

// result is a service as the results list shows it.
type result struct {
	ID, Name, Description string
	Org, OrgID            string
	Website               string
	Needs, Crimes         []string
	Languages             []string
	Interpreter           bool
	Channels              []string
	Accessibility         []string
	Hours                 []string
	Always, OpenNow       bool
	Phone, PhoneTel       string
	Email                 string
	Helplines             []helpline
	Address               string
	Distance              string
	Remote                bool
	Waitlist, Full        bool
	Illustrative          bool
	Synthetic             bool
	// Ask is the address of the page that asks the service to contact
	// the visitor; empty when its organisation publishes no age key.
	Ask string
}

type helpline struct{ Number, Tel, Name string }

// view turns a hit into what the page shows, in the printer's language.
func (s *Server) view(h hit, p Printer, now time.Time) result {
	sv := h.svc
	r := result{ID: sv.ID, Name: sv.Name, Description: sv.Description, OrgID: sv.Organisation, Org: orgName(h),
		Interpreter: sv.InterpreterAvailable, Always: sv.Hours.Always, OpenNow: sv.Hours.OpenAt(now), Remote: sv.Area.Remote,
		Waitlist: sv.Capacity.Status == "waitlist", Full: sv.Capacity.Status == "full"}
	if h.org != nil && h.org.AgeRecipient != "" {
		r.Ask = "/" + p.lang + "/ask?service=" + url.QueryEscape(sv.ID)
	}
	for _, n := range sv.Needs {
		r.Needs = append(r.Needs, s.tax.Label("needs", n, p.lang))
	}
	for _, c := range sv.Crimes {
		r.Crimes = append(r.Crimes, s.tax.Label("crimes", c, p.lang))
	}
	for _, l := range sv.Languages {
		r.Languages = append(r.Languages, s.places.languageName(l))
	}
	for _, c := range sv.Channels {
		r.Channels = append(r.Channels, s.tax.Label("channels", c, p.lang))
	}
	acc := slices.Clone(sv.Accessibility)
	for _, l := range sv.Locations {
		acc = append(acc, l.Accessibility...)
	}
	slices.Sort(acc)
	for _, a := range slices.Compact(acc) {
		r.Accessibility = append(r.Accessibility, s.tax.Label("accessibility", a, p.lang))
	}
	r.Hours = hoursText(sv.Hours, p)
	contact := sv.Contact
	if h.org != nil {
		r.Website = website(h.org.Website)
		r.Illustrative, r.Synthetic = h.org.Illustrative, h.org.Synthetic
		if contact.IsZero() {
			contact = h.org.ReferralContact
		}
		for _, hl := range h.org.Helplines {
			r.Helplines = append(r.Helplines, helpline{Number: hl.Number, Tel: telDigits(hl.Number), Name: hl.Name})
		}
	}
	r.Phone, r.PhoneTel, r.Email = contact.Phone, telDigits(contact.Phone), contact.Email
	if len(sv.Locations) > 0 {
		l := sv.Locations[0]
		r.Address = strings.Join(nonEmpty(l.Address, strings.TrimSpace(l.Postcode+" "+l.City)), ", ")
	}
	if !math.IsNaN(h.km) {
		r.Distance = formatKm(h.km, p)
	}
	return r
}

func nonEmpty(vals ...string) []string {
	var out []string
	for _, v := range vals {
		if v != "" {
			out = append(out, v)
		}
	}
	return out
}

// telDigits returns the number as a tel: link wants it: digits and a
// leading +.
func telDigits(n string) string {
	var b strings.Builder
	for i, r := range n {
		if (r >= '0' && r <= '9') || (r == '+' && i == 0) {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// website returns an organisation's website as an https URL, or "" when
// it is not a plain domain or http(s) URL.
func website(w string) string {
	if w == "" {
		return ""
	}
	if !strings.Contains(w, "://") {
		w = "https://" + w
	}
	u, err := url.Parse(w)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return ""
	}
	return u.String()
}

func formatKm(km float64, p Printer) string {
	if km < 10 {
		return p.T("result.km", fmt.Sprintf("%.1f", km))
	}
	return p.T("result.km", fmt.Sprintf("%.0f", km))
}

// hoursText says the opening hours in words, one line per group of days
// with the same hours: "Mon–Fri 09:00–17:00".
func hoursText(h directory.Schedule, p Printer) []string {
	if h.Always {
		return []string{p.T("hours.always")}
	}
	byDay := make([]string, len(directory.Days))
	for i, d := range directory.Days {
		var parts []string
		for _, o := range h.Weekly {
			if o.Day == d {
				parts = append(parts, o.Opens+"–"+o.Closes)
			}
		}
		byDay[i] = strings.Join(parts, ", ")
	}
	var out []string
	for i := 0; i < len(byDay); {
		j := i
		for j+1 < len(byDay) && byDay[j+1] == byDay[i] {
			j++
		}
		if byDay[i] != "" {
			days := p.T("day." + directory.Days[i])
			if j > i {
				days += "–" + p.T("day."+directory.Days[j])
			}
			out = append(out, days+" "+byDay[i])
		}
		i = j + 1
	}
	if len(out) == 0 {
		return []string{p.T("hours.unknown")}
	}
	if h.TimeZone != "" {
		out = append(out, p.T("hours.zone", h.TimeZone))
	}
	return out
}
