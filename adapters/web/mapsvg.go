package web

import (
	"embed"
	"encoding/json"
	"fmt"
	"html"
	"html/template"
	"math"
	"slices"
	"strings"
)

// geo/europe.geojson: the country outlines of Europe from Natural Earth
// (public domain), simplified by geo/simplify.py; see geo/README.md.
//
//go:embed geo/europe.geojson
var geoFiles embed.FS

// The map's extent and size.
const (
	// mapWidth is the width of the map's SVG view box, in its units.
	mapWidth = 800.0
	// clusterPx is the side of the grid cell in which markers merge.
	clusterPx = 26.0
)

// europeBox is the extent of the whole map: the Azores to the Urals'
// foot, Crete to the North Cape.
var europeBox = bbox{minLon: -31.5, minLat: 32.5, maxLon: 42, maxLat: 71.5}

// bbox is a lon/lat rectangle.
type bbox struct{ minLon, minLat, maxLon, maxLat float64 }

func emptyBox() bbox { return bbox{math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)} }

func (b *bbox) add(lon, lat float64) {
	b.minLon, b.maxLon = min(b.minLon, lon), max(b.maxLon, lon)
	b.minLat, b.maxLat = min(b.minLat, lat), max(b.maxLat, lat)
}

func (b bbox) union(o bbox) bbox {
	return bbox{min(b.minLon, o.minLon), min(b.minLat, o.minLat), max(b.maxLon, o.maxLon), max(b.maxLat, o.maxLat)}
}

func (b bbox) intersects(o bbox) bool {
	return b.minLon <= o.maxLon && o.minLon <= b.maxLon && b.minLat <= o.maxLat && o.minLat <= b.maxLat
}

func (b bbox) contains(lon, lat float64) bool {
	return lon >= b.minLon && lon <= b.maxLon && lat >= b.minLat && lat <= b.maxLat
}

func (b bbox) area() float64 { return (b.maxLon - b.minLon) * (b.maxLat - b.minLat) }

// polygon is one polygon of a country: rings of [lon, lat] points, the
// first the outline, the others holes.
type polygon struct {
	rings [][][2]float64
	box   bbox
}

// country is one country outline.
type country struct {
	code, name string
	polys      []polygon
	// main is the extent of the country's main land: the largest polygon
	// and those near it (Corsica, Sicily), not far islands (the Azores).
	main bbox
}

// geography holds the country outlines.
type geography struct {
	countries []*country
	byCode    map[string]*country
}

func loadGeography() (*geography, error) {
	b, err := geoFiles.ReadFile("geo/europe.geojson")
	if err != nil {
		return nil, fmt.Errorf("web: map outlines: %w", err)
	}
	var fc struct {
		Features []struct {
			ID         string `json:"id"`
			Properties struct {
				Name  string `json:"name"`
				ISOA2 string `json:"iso_a2"`
			} `json:"properties"`
			Geometry struct {
				Type        string           `json:"type"`
				Coordinates [][][][2]float64 `json:"coordinates"`
			} `json:"geometry"`
		} `json:"features"`
	}
	if err := json.Unmarshal(b, &fc); err != nil {
		return nil, fmt.Errorf("web: map outlines: %w", err)
	}
	g := &geography{byCode: map[string]*country{}}
	for _, f := range fc.Features {
		if f.Geometry.Type != "MultiPolygon" {
			return nil, fmt.Errorf("web: map outlines: %s is a %s, not a MultiPolygon", f.ID, f.Geometry.Type)
		}
		c := &country{code: strings.ToLower(f.Properties.ISOA2), name: f.Properties.Name}
		largest := -1
		for _, rings := range f.Geometry.Coordinates {
			p := polygon{rings: rings, box: emptyBox()}
			for _, pt := range rings[0] {
				p.box.add(pt[0], pt[1])
			}
			c.polys = append(c.polys, p)
			if largest < 0 || p.box.area() > c.polys[largest].box.area() {
				largest = len(c.polys) - 1
			}
		}
		if largest < 0 {
			continue
		}
		c.main = c.polys[largest].box
		near := c.main
		near.minLon, near.minLat, near.maxLon, near.maxLat = near.minLon-4, near.minLat-4, near.maxLon+4, near.maxLat+4
		for _, p := range c.polys {
			if near.intersects(p.box) {
				c.main = c.main.union(p.box)
			}
		}
		g.countries = append(g.countries, c)
		g.byCode[c.code] = c
	}
	return g, nil
}

// projection maps lon/lat to the SVG's units: equirectangular, with
// longitudes shrunk by the cosine of the view's middle latitude, so that
// shapes look right at European latitudes.
type projection struct {
	view          bbox
	k, scale, hgt float64
}

func newProjection(view bbox) projection {
	mid := (view.minLat + view.maxLat) / 2
	k := math.Cos(mid * math.Pi / 180)
	scale := mapWidth / ((view.maxLon - view.minLon) * k)
	return projection{view: view, k: k, scale: scale, hgt: (view.maxLat - view.minLat) * scale}
}

func (p projection) xy(lon, lat float64) (float64, float64) {
	return (lon - p.view.minLon) * p.k * p.scale, (p.view.maxLat - lat) * p.scale
}

// viewOf returns the map's extent for a country (padded, and widened to
// a pleasant shape), or the whole of Europe.
func (g *geography) viewOf(cc string) bbox {
	c, ok := g.byCode[cc]
	if !ok {
		return europeBox
	}
	b := c.main
	padLon, padLat := (b.maxLon-b.minLon)*0.08+0.3, (b.maxLat-b.minLat)*0.08+0.3
	return widen(bbox{b.minLon - padLon, b.minLat - padLat, b.maxLon + padLon, b.maxLat + padLat})
}

// mapAspectMin is the smallest width/height of a view: a tall country
// (Portugal, Finland) is widened around its middle so that the map fills
// the page's width and its points keep their size.
const mapAspectMin = 1.25

// widen returns b widened to at least mapAspectMin, as projected.
func widen(b bbox) bbox {
	k := math.Cos((b.minLat + b.maxLat) / 2 * math.Pi / 180)
	w, h := (b.maxLon-b.minLon)*k, b.maxLat-b.minLat
	if w/h >= mapAspectMin {
		return b
	}
	extra := (mapAspectMin*h/k - (b.maxLon - b.minLon)) / 2
	b.minLon, b.maxLon = b.minLon-extra, b.maxLon+extra
	return b
}

// marker is one point of the map: a service's place, or a cluster of them.
type marker struct {
	x, y    float64
	ids     []string // service ids, one per place
	names   []string // the places' cities, for the label
	country map[string]int
	group   int // the number of its group in the text list
}

// mapPoint is one place of one service, in lon/lat.
type mapPoint struct {
	id, city, country string
	lon, lat          float64
}

// drawMap renders the SVG of the view: every country outline (those with
// services are links that zoom to them), and the points, merged where
// they fall in the same clusterPx cell. It returns the SVG and the
// markers, in the order of the text list.
func (g *geography) drawMap(lang, current string, view bbox, points []mapPoint, linked map[string]bool, zoom func(cc string) string, p Printer) (template.HTML, []*marker) {
	pr := newProjection(view)
	cells := map[[2]int]*marker{}
	var markers []*marker
	for _, pt := range points {
		x, y := pr.xy(pt.lon, pt.lat)
		key := [2]int{int(math.Floor(x / clusterPx)), int(math.Floor(y / clusterPx))}
		m := cells[key]
		if m == nil {
			m = &marker{country: map[string]int{}}
			cells[key] = m
			markers = append(markers, m)
		}
		n := float64(len(m.ids))
		m.x, m.y = (m.x*n+x)/(n+1), (m.y*n+y)/(n+1)
		m.ids = append(m.ids, pt.id)
		if !slices.Contains(m.names, pt.city) {
			m.names = append(m.names, pt.city)
		}
		m.country[pt.country]++
	}
	// Text-list order: north to south, west to east.
	slices.SortFunc(markers, func(a, b *marker) int {
		if c := cmpF(a.y, b.y); c != 0 {
			return c
		}
		return cmpF(a.x, b.x)
	})
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="map" viewBox="0 0 %.0f %.0f" xmlns="http://www.w3.org/2000/svg" aria-labelledby="map-title map-desc">`, mapWidth, pr.hgt)
	fmt.Fprintf(&b, `<title id="map-title">%s</title><desc id="map-desc">%s</desc>`, html.EscapeString(p.T("map.svg.title")), html.EscapeString(p.T("map.svg.desc")))
	fmt.Fprintf(&b, `<rect class="sea" width="%.0f" height="%.0f"/>`, mapWidth, pr.hgt)
	for _, c := range g.countries {
		d := c.path(view, pr)
		if d == "" {
			continue
		}
		name := countryName(lang, c.code)
		switch {
		case linked[c.code] && c.code != current:
			fmt.Fprintf(&b, `<a href="%s" aria-label="%s"><path class="land served" d="%s"><title>%s</title></path></a>`,
				html.EscapeString(zoom(c.code)), html.EscapeString(p.T("map.zoom", name)), d, html.EscapeString(name))
		case linked[c.code]:
			fmt.Fprintf(&b, `<path class="land served current" d="%s"><title>%s</title></path>`, d, html.EscapeString(name))
		default:
			fmt.Fprintf(&b, `<path class="land" d="%s"/>`, d)
		}
	}
	for i, m := range markers {
		m.group = i + 1
		label := p.N("map.marker", len(m.ids), strings.Join(m.names, ", "))
		href := fmt.Sprintf("#grp-%d", m.group)
		if current == "" {
			href = zoom(majority(m.country))
		}
		ids := html.EscapeString(strings.Join(m.ids, " "))
		if len(m.ids) == 1 {
			fmt.Fprintf(&b, `<a class="pt" href="%s" data-ids="%s" aria-label="%s"><circle cx="%.1f" cy="%.1f" r="6"/><title>%s</title></a>`,
				html.EscapeString(href), ids, html.EscapeString(label), m.x, m.y, html.EscapeString(label))
			continue
		}
		r := 9 + 3*math.Log10(float64(len(m.ids)))
		fmt.Fprintf(&b, `<a class="pt cluster" href="%s" data-ids="%s" aria-label="%s"><circle cx="%.1f" cy="%.1f" r="%.1f"/><text x="%.1f" y="%.1f">%d</text><title>%s</title></a>`,
			html.EscapeString(href), ids, html.EscapeString(label), m.x, m.y, r, m.x, m.y+4, len(m.ids), html.EscapeString(label))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()), markers //nolint:gosec // built from escaped parts above
}

// majority returns the country with the most points of a cluster (the
// first by code on a tie).
func majority(counts map[string]int) string {
	best, n := "", -1
	for cc, c := range counts {
		if c > n || (c == n && cc < best) {
			best, n = cc, c
		}
	}
	return best
}

func cmpF(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
