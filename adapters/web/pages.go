package web

import (
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// funcs returns the template functions of one language: t and tn
// translate, label gives a taxonomy label, static a versioned file
// address.
func (s *Server) funcs(lang string) template.FuncMap {
	p := s.cat.Printer(lang)
	return template.FuncMap{
		"t":      p.T,
		"tn":     p.N,
		"label":  func(section, code string) string { return s.tax.Label(section, code, lang) },
		"static": s.staticURL,
		"add":    func(a, b int) int { return a + b },
		"join":   strings.Join,
		"has":    func(xs []string, x string) bool { return slices.Contains(xs, x) },
		// form passes the search form its page, action and button text.
		"form": func(pg *pageData, action, submit string) any {
			return struct {
				Data           any
				Action, Submit string
			}{pg.Data, action, submit}
		},
		// fe passes a field's error to the "fielderror" template.
		"fe": func(field string, e *fieldError) any {
			return struct {
				Field string
				E     *fieldError
			}{field, e}
		},
	}
}

// home serves /<lang>/: the search form, the helplines and the ways in.
func (s *Server) home(_ http.ResponseWriter, _ *http.Request, rq *request) (string, int, error) {
	rq.pg.Title = rq.p.T("home.title")
	rq.pg.Section = "home"
	rq.pg.Data = s.formData(searchForm{}, nil, rq.p)
	return "home", http.StatusOK, nil
}

// PrintMax bounds the services of the printable list.
const PrintMax = 500

// findData is what the find page shows.
type findData struct {
	Form      searchForm
	Errors    map[string]*fieldError
	Summary   []errorItem
	Countries []choice
	Regions   []regionGroup
	Cities    []string
	Crimes    []choice
	Needs     []choice
	Channels  []choice
	Languages []choice
	// Searched is true when the form asked for something and had no error.
	Searched bool
	Place    string
	Total    int
	Results  []result
	Page     int
	Pages    int
	Start    int
	// Hidden is the search as hidden fields, for the next page and the map.
	Hidden []kv
}

type errorItem struct{ Field, Message string }

type regionGroup struct {
	Label   string
	Options []choice
}

type kv struct{ Name, Value string }

// formData fills the choices of the search form.
func (s *Server) formData(f searchForm, errs map[string]*fieldError, p Printer) *findData {
	d := &findData{Form: f, Errors: errs, Countries: s.countryChoices(p)}
	for _, c := range d.Countries {
		g := regionGroup{Label: c.Label}
		for _, r := range s.places.regions[c.Code] {
			g.Options = append(g.Options, choice{r.Code, regionLabel(r)})
		}
		if len(g.Options) > 0 {
			d.Regions = append(d.Regions, g)
		}
		for _, city := range s.places.byCountry[c.Code] {
			d.Cities = append(d.Cities, city.Name)
		}
	}
	slices.Sort(d.Cities)
	d.Cities = slices.Compact(d.Cities)
	terms := func(section string) []choice {
		var out []choice
		for _, t := range s.tax.Sections()[section] {
			out = append(out, choice{t.Code, s.tax.Label(section, t.Code, p.lang)})
		}
		return out
	}
	d.Crimes, d.Needs, d.Channels = terms("crimes"), terms("needs"), terms("channels")
	for _, l := range s.places.languages {
		d.Languages = append(d.Languages, choice{l.Code, l.NativeName})
	}
	for _, field := range []string{"country", "region", "city", "near", "crime", "need", "language", "channel", "page"} {
		if e := errs[field]; e != nil {
			d.Summary = append(d.Summary, errorItem{Field: field, Message: e.Message})
		}
	}
	for _, kvp := range [][2]string{{"country", f.Country}, {"region", f.Region}, {"city", f.City}, {"crime", f.Crime},
		{"need", f.Need}, {"language", f.Language}, {"channel", f.Channel}, {"lat", f.Lat}, {"lon", f.Lon}} {
		if kvp[1] != "" {
			d.Hidden = append(d.Hidden, kv{kvp[0], kvp[1]})
		}
	}
	return d
}

// find serves /<lang>/find: the form, and the results when it asks
// something. The form posts, so that a search stays out of the address
// bar, the history and any log; a GET with the same fields works too.
func (s *Server) find(_ http.ResponseWriter, r *http.Request, rq *request) (string, int, error) {
	f, errs := s.parseSearch(r.Form, rq.p)
	d := s.formData(f, errs, rq.p)
	rq.pg.Section = "find"
	rq.pg.Title = rq.p.T("find.title")
	rq.pg.Data = d
	if !f.Asked {
		return "find", http.StatusOK, nil
	}
	rq.pg.Robots = "noindex"
	if len(errs) > 0 {
		rq.pg.Title = rq.p.T("find.title.errors")
		return "find", http.StatusBadRequest, nil
	}
	pl := s.resolve(f, rq.p)
	snap := s.deps.Directory.Snapshot()
	hits := s.search(snap, f, pl)
	d.Searched, d.Place, d.Total = true, pl.name, len(hits)
	d.Pages = max(1, (len(hits)+s.cfg.PerPage-1)/s.cfg.PerPage)
	d.Page = min(f.Page, d.Pages)
	d.Start = (d.Page-1)*s.cfg.PerPage + 1
	now := s.cfg.Now()
	if r.Form.Get("print") == "1" {
		// The printable list: every result (up to PrintMax), no layout.
		for _, h := range hits[:min(len(hits), PrintMax)] {
			d.Results = append(d.Results, s.view(h, rq.p, now))
		}
		return "print", http.StatusOK, nil
	}
	for _, h := range hits[min((d.Page-1)*s.cfg.PerPage, len(hits)):min(d.Page*s.cfg.PerPage, len(hits))] {
		d.Results = append(d.Results, s.view(h, rq.p, now))
	}
	// The title stays "Find support": a browser keeps titles in its
	// history, and the place or the kind of help looked for must not be
	// read there.
	return "find", http.StatusOK, nil
}

// mapData is what the map page shows.
type mapData struct {
	*findData
	Country     string
	CountryName string
	SVG         template.HTML
	Zooms       []zoomLink
	Groups      []mapGroup
	Remote      []mapItem
	Outside     []mapItem
	Located     int
	EuropeURL   string
}

type zoomLink struct {
	Name, URL string
	Count     int
	Current   bool
}

// mapGroup is one marker of the map in the text list: its places and
// services.
type mapGroup struct {
	N      int
	Label  string
	Zoom   string
	Count  int
	Items  []mapItem
	Hidden int
}

type mapItem struct{ ID, Name, Org, City string }

// mapPage serves /<lang>/map: the directory's services on a map drawn
// here (no tiles, no third party), with the same filters as the search,
// and the same in a list.
func (s *Server) mapPage(_ http.ResponseWriter, r *http.Request, rq *request) (string, int, error) {
	f, errs := s.parseSearch(r.Form, rq.p)
	if e := errs["country"]; e != nil && f.Country == "" {
		delete(errs, "country") // the map needs no place: it shows Europe
	}
	d := &mapData{findData: s.formData(f, errs, rq.p), Country: f.Country}
	rq.pg.Section = "map"
	rq.pg.Title = rq.p.T("map.title")
	rq.pg.Data = d
	d.EuropeURL = "/" + rq.lang + "/map"
	if len(errs) > 0 {
		rq.pg.Title = rq.p.T("find.title.errors")
		return "map", http.StatusBadRequest, nil
	}
	snap := s.deps.Directory.Snapshot()
	var hits []hit
	if f.Country != "" || f.Region != "" || f.City != "" || f.Lat != "" {
		hits = s.search(snap, f, s.resolve(f, rq.p))
	} else {
		hits = s.search(snap, f, place{})
	}
	d.Total = len(hits)
	if f.Country != "" {
		d.CountryName = countryName(rq.lang, f.Country)
		rq.pg.Title = rq.p.T("map.title.country", d.CountryName)
	}
	// Zoom links keep the filters only when they are in the address
	// already (a GET); a posted search is not put into links.
	zoom := func(cc string) string {
		q := url.Values{}
		if r.Method == http.MethodGet {
			q = r.URL.Query()
			q.Del("page")
			q.Del("region")
			q.Del("city")
			q.Del("lat")
			q.Del("lon")
		}
		q.Set("country", cc)
		return "/" + rq.lang + "/map?" + q.Encode()
	}
	view := s.geo.viewOf(f.Country)
	var points []mapPoint
	counts := map[string]int{}
	for _, h := range hits {
		for _, cc := range h.svc.Area.Countries {
			counts[cc]++
		}
		it := mapItem{ID: h.svc.ID, Name: h.svc.Name, Org: orgName(h)}
		if len(h.svc.Locations) == 0 {
			d.Remote = append(d.Remote, it)
			continue
		}
		in := false
		for _, l := range h.svc.Locations {
			if view.contains(l.Lon, l.Lat) {
				points = append(points, mapPoint{id: h.svc.ID, city: l.City, country: l.Country, lon: l.Lon, lat: l.Lat})
				in = true
			}
		}
		if !in {
			it.City = h.svc.Locations[0].City
			d.Outside = append(d.Outside, it)
		}
	}
	linked := map[string]bool{}
	for _, cc := range s.countries() {
		linked[cc] = true
		d.Zooms = append(d.Zooms, zoomLink{Name: countryName(rq.lang, cc), URL: zoom(cc), Current: cc == f.Country, Count: counts[cc]})
	}
	slices.SortFunc(d.Zooms, func(a, b zoomLink) int { return strings.Compare(a.Name, b.Name) })
	svg, markers := s.geo.drawMap(rq.lang, f.Country, view, points, linked, zoom, rq.p)
	d.SVG = svg
	d.Located = len(points)
	byID := map[string]hit{}
	for _, h := range hits {
		byID[h.svc.ID] = h
	}
	for _, m := range markers {
		g := mapGroup{N: m.group, Label: strings.Join(m.names, ", "), Count: len(m.ids)}
		if f.Country == "" {
			g.Zoom = zoom(majority(m.country))
		} else {
			for _, id := range m.ids {
				h := byID[id]
				g.Items = append(g.Items, mapItem{ID: id, Name: h.svc.Name, Org: orgName(h)})
			}
		}
		d.Groups = append(d.Groups, g)
	}
	return "map", http.StatusOK, nil
}

// rightsIndex serves /<lang>/rights: the list of rights.
func (s *Server) rightsIndex(_ http.ResponseWriter, _ *http.Request, rq *request) (string, int, error) {
	doc := s.rights[rq.lang]
	rq.pg.Section = "rights"
	rq.pg.Title = rq.p.T("rights.title")
	rq.pg.Draft = rq.pg.Draft || doc.Draft()
	rq.pg.Data = doc
	return "rights", http.StatusOK, nil
}

// right serves /<lang>/rights/<slug>: one right in plain words, citing
// its article.
func (s *Server) right(_ http.ResponseWriter, r *http.Request, rq *request) (string, int, error) {
	doc := s.rights[rq.lang]
	rt := doc.find(r.PathValue("slug"))
	if rt == nil {
		return s.notFound(nil, r, rq)
	}
	rq.pg.Section = "rights"
	rq.pg.Title = rt.Title
	rq.pg.Draft = rq.pg.Draft || doc.Draft()
	rq.pg.Data = struct {
		Right *right
		All   []*right
	}{rt, doc.Rights}
	return "right", http.StatusOK, nil
}

// safety serves /<lang>/safety: browsing safely.
func (s *Server) safety(_ http.ResponseWriter, _ *http.Request, rq *request) (string, int, error) {
	rq.pg.Section = "safety"
	rq.pg.Title = rq.p.T("safety.title")
	return "safety", http.StatusOK, nil
}

// notFound is the page of an unknown address, in the visitor's language.
func (s *Server) notFound(_ http.ResponseWriter, _ *http.Request, rq *request) (string, int, error) {
	rq.pg.Title = rq.p.T("notfound.title")
	rq.pg.Robots = "noindex"
	return "notfound", http.StatusNotFound, nil
}
