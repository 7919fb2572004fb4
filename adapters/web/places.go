package web

import (
	"cmp"
	"slices"
	"strings"
	"unicode"

	"golang.org/x/text/language"
	"golang.org/x/text/language/display"
	"golang.org/x/text/unicode/norm"

	"github.com/invictus-network/invictus/directory"
	"github.com/invictus-network/invictus/events"
)

// places is the embedded reference data of the search form: the cities
// (GeoNames) and NUTS regions of package directory, and the languages.
type places struct {
	cities    []directory.City
	byCountry map[string][]directory.City // largest first
	regions   map[string][]region         // by country
	languages []directory.Language
	langName  map[string]string // native names
}

// region is a NUTS-2 region with its largest cities, which name it on the
// form ("PT11 – Porto, Braga").
type region struct {
	Code   string
	Cities []string
}

func newPlaces() *places {
	p := &places{cities: directory.Cities(), byCountry: map[string][]directory.City{}, regions: map[string][]region{},
		languages: directory.Languages(), langName: map[string]string{}}
	for _, c := range p.cities {
		p.byCountry[c.Country] = append(p.byCountry[c.Country], c)
	}
	for cc, list := range p.byCountry {
		slices.SortStableFunc(list, func(a, b directory.City) int { return cmp.Compare(b.Population, a.Population) })
		for _, code := range directory.Regions(cc) {
			r := region{Code: code}
			for _, c := range list {
				if c.NUTS2 == code && len(r.Cities) < 2 {
					r.Cities = append(r.Cities, c.Name)
				}
			}
			p.regions[cc] = append(p.regions[cc], r)
		}
	}
	for _, l := range p.languages {
		p.langName[l.Code] = l.NativeName
	}
	return p
}

// fold lower-cases s and strips its accents, so that "Lodz" finds "Łódź"
// and "porto" finds "Porto".
func fold(s string) string {
	var b strings.Builder
	for _, r := range norm.NFD.String(strings.TrimSpace(s)) {
		if unicode.Is(unicode.Mn, r) {
			continue
		}
		switch r {
		case 'ł', 'Ł':
			r = 'l'
		case 'ø', 'Ø':
			r = 'o'
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}

// city returns the city of the name in country cc (any country when cc
// is empty), the largest when several share the name.
func (p *places) city(cc, name string) (directory.City, bool) {
	f := fold(name)
	best, found := directory.City{}, false
	for _, c := range p.cities {
		if (cc == "" || c.Country == cc) && fold(c.Name) == f && (!found || c.Population > best.Population) {
			best, found = c, true
		}
	}
	return best, found
}

// nearest returns the city nearest to a point and its distance in km.
func (p *places) nearest(lat, lon float64) (directory.City, float64) {
	var best directory.City
	bestKm := -1.0
	for _, c := range p.cities {
		if d := directory.DistanceKm(lat, lon, c.Lat, c.Lon); bestKm < 0 || d < bestKm {
			best, bestKm = c, d
		}
	}
	return best, bestKm
}

// regionOK reports whether code is a NUTS-2 region of cc known to the form.
func (p *places) regionOK(cc, code string) bool {
	return slices.ContainsFunc(p.regions[cc], func(r region) bool { return r.Code == code })
}

// countryOfRegion returns the country whose NUTS prefix starts code.
func countryOfRegion(code string) string {
	for _, cc := range events.Countries {
		if strings.HasPrefix(code, events.NUTSCountry(cc)) {
			return cc
		}
	}
	return ""
}

// countryName returns the name of a country (ISO 3166-1 alpha-2, lower
// case) in the language, from CLDR; the code itself when unknown.
func countryName(lang, cc string) string {
	reg, err := language.ParseRegion(strings.ToUpper(cc))
	if err != nil {
		return cc
	}
	if n := display.Regions(language.Make(lang)).Name(reg); n != "" {
		return n
	}
	return cc
}

// languageName returns the name of a language (ISO 639-1) in its own
// language ("Português"), from the embedded list or CLDR.
func (p *places) languageName(code string) string {
	if n := p.langName[code]; n != "" {
		return n
	}
	if n := display.Self.Name(language.Make(code)); n != "" {
		return n
	}
	return code
}
