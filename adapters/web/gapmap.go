package web

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"strconv"
	"strings"
	"sync"
)

// GapCircle is one circle of a [GapMap]: a figure at a place, in lon/lat.
type GapCircle struct {
	Lon, Lat float64
	// N is the figure the circle's area shows; 0 draws the smallest
	// circle (a count too small to show).
	N int
	// Label names the place and the figure as shown ("<5" included).
	Label string
}

var gapGeography = sync.OnceValues(loadGeography)

// GapMap draws an SVG of the country outlines of the public pages' map
// with a circle per place, its area proportional to N: the whole of
// Europe, or the country cc when it has an outline. title and desc are
// the SVG's accessible name and description.
func GapMap(cc, title, desc string, circles []GapCircle) (template.HTML, error) {
	g, err := gapGeography()
	if err != nil {
		return "", err
	}
	view := europeBox
	if _, ok := g.byCode[cc]; ok {
		view = g.viewOf(cc)
	}
	pr := newProjection(view)
	top := 1
	for _, c := range circles {
		top = max(top, c.N)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="map gapmap" viewBox="0 0 %.0f %.0f" xmlns="http://www.w3.org/2000/svg" role="img" aria-labelledby="gap-title gap-desc">`, mapWidth, pr.hgt)
	fmt.Fprintf(&b, `<title id="gap-title">%s</title><desc id="gap-desc">%s</desc>`, html.EscapeString(title), html.EscapeString(desc))
	fmt.Fprintf(&b, `<rect class="sea" width="%.0f" height="%.0f"/>`, mapWidth, pr.hgt)
	for _, c := range g.countries {
		if d := c.path(view, pr); d != "" {
			fmt.Fprintf(&b, `<path class="land" d="%s"/>`, d)
		}
	}
	for _, c := range circles {
		x, y := pr.xy(c.Lon, c.Lat)
		r := 6 + 24*math.Sqrt(float64(c.N)/float64(top))
		class := "gap"
		if c.N == 0 {
			class = "gap small"
		}
		fmt.Fprintf(&b, `<circle class="%s" cx="%.1f" cy="%.1f" r="%.1f"><title>%s</title></circle>`, class, x, y, r, html.EscapeString(c.Label))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()), nil //nolint:gosec // built from escaped parts above
}

// path is the SVG path of the country's polygons that fall in view.
func (c *country) path(view bbox, pr projection) string {
	var d strings.Builder
	for _, poly := range c.polys {
		if !poly.box.intersects(view) {
			continue
		}
		for _, ring := range poly.rings {
			for i, pt := range ring {
				x, y := pr.xy(pt[0], pt[1])
				if i == 0 {
					d.WriteByte('M')
				} else {
					d.WriteByte('L')
				}
				d.WriteString(strconv.FormatFloat(x, 'f', 1, 64))
				d.WriteByte(' ')
				d.WriteString(strconv.FormatFloat(y, 'f', 1, 64))
			}
			d.WriteByte('Z')
		}
	}
	return d.String()
}
