package console

import (
	"fmt"
	"html"
	"html/template"
	"slices"
	"strings"
	"time"

	"github.com/invictus-network/invictus/reports"
)

// The impact page (issue 12, item 3): time to help, the outcomes of the
// victims' needs and their own answers, by country and quarter, and each
// country's indicators beside those of the Netherlands, whose national
// service, Slachtofferhulp Nederland, guides the project.

// ReferenceCountry is the country every country's indicators are set
// beside on the impact page.
const ReferenceCountry = "nl"

// ReferenceSource is where the project's data says what the reference
// country's national service is (/work/shared/data's
// organisations_sources.md, entry nl-slachtofferhulp).
const ReferenceSource = "https://www.strafrechtketen.nl/partners/slachtofferhulp-nederland"

// indicators are one country's figures on the comparison: rates from 0
// to 1 and a median in minutes; nil when a count they come from is
// hidden or too small.
type indicators struct {
	Contact, Minutes, Supported, Helpful *float64
}

// indicatorNames are the comparison's columns, in order.
var indicatorNames = []string{"contact_rate", "median_minutes_to_first_contact", "supported_rate", "helpful_rate"}

func (in indicators) values() []*float64 {
	return []*float64{in.Contact, in.Minutes, in.Supported, in.Helpful}
}

// countryIndicators computes each country's indicators from tables the
// read model has already suppressed: a share is given only when every
// count it adds up is shown, so it reveals nothing the tables hide.
func countryIndicators(times, outcomes, feedback *reports.Table) map[string]*indicators {
	out := map[string]*indicators{}
	get := func(cc string) *indicators {
		if out[cc] == nil {
			out[cc] = &indicators{}
		}
		return out[cc]
	}
	for _, r := range times.Rows {
		in := get(r.Key["country"])
		in.Contact, in.Minutes = r.Stats["contact_rate"], r.Stats["median_minutes_to_first_contact"]
	}
	share := func(t *reports.Table, col string, keep func(r reports.Row) bool, yes func(r reports.Row) bool, set func(in *indicators, v *float64)) {
		type acc struct {
			yes, all int
			hidden   bool
		}
		by := map[string]*acc{}
		for _, r := range t.Rows {
			if !keep(r) {
				continue
			}
			cc := r.Key["country"]
			a := by[cc]
			if a == nil {
				a = &acc{}
				by[cc] = a
			}
			n, ok := r.Counts[col].Value()
			if !ok {
				a.hidden = true
				continue
			}
			a.all += n
			if yes(r) {
				a.yes += n
			}
		}
		for cc, a := range by {
			if a.hidden || a.all < reports.MinCell {
				set(get(cc), nil)
				continue
			}
			v := float64(a.yes) / float64(a.all)
			set(get(cc), &v)
		}
	}
	share(outcomes, "needs", func(reports.Row) bool { return true },
		func(r reports.Row) bool { return r.Key["outcome"] == "supported" },
		func(in *indicators, v *float64) { in.Supported = v })
	share(feedback, "referrals", func(r reports.Row) bool { return r.Key["question"] == "helpful" },
		func(r reports.Row) bool { return r.Key["answer"] == "4" || r.Key["answer"] == "5" },
		func(in *indicators, v *float64) { in.Helpful = v })
	return out
}

// impactTables computes the three tables of the indicators for scope and
// filter f, without a period.
func (s *Server) impactTables(scope reports.Scope, f reports.Filter, now time.Time) (map[string]*indicators, error) {
	f.By = ""
	var ts [3]*reports.Table
	for i, name := range []string{"times", "impact/outcomes", "impact/feedback"} {
		t, err := s.deps.Reports.Report(name, scope, f, now)
		if err != nil {
			return nil, err
		}
		ts[i] = t
	}
	return countryIndicators(ts[0], ts[1], ts[2]), nil
}

// comparison is the table of each country's indicators beside the
// reference country's: the reference first, then each country of scope
// with its indicator and the difference. The reference's indicators
// come from the whole network (rates and a median, never counts), the
// other countries' from what scope may see.
func (s *Server) comparison(scope reports.Scope, f reports.Filter, now time.Time, rq *request) ([]string, [][]string, error) {
	mine, err := s.impactTables(scope, f, now)
	if err != nil {
		return nil, nil, err
	}
	f.Country = ""
	all, err := s.impactTables(reports.Scope{}, f, now)
	if err != nil {
		return nil, nil, err
	}
	ref := all[ReferenceCountry]
	if ref == nil {
		ref = &indicators{}
	}
	head := []string{rq.p.T(colKey + "country")}
	for _, n := range indicatorNames {
		head = append(head, rq.p.T(colKey+n), rq.p.T("reports.impact.diff"))
	}
	line := func(cc string, in *indicators) []string {
		row := []string{strings.ToUpper(cc)}
		for i, v := range in.values() {
			r := ref.values()[i]
			minutes := indicatorNames[i] == "median_minutes_to_first_contact"
			row = append(row, statText(v, !minutes))
			switch {
			case cc == ReferenceCountry:
				row = append(row, "")
			case v == nil || r == nil:
				row = append(row, "–")
			case minutes:
				row = append(row, fmt.Sprintf("%+.0f", *v-*r))
			default:
				row = append(row, fmt.Sprintf("%+.1f", (*v-*r)*100)+" pp")
			}
		}
		return row
	}
	rows := [][]string{line(ReferenceCountry, ref)}
	var ccs []string
	for cc := range mine {
		if cc != ReferenceCountry && (scope.Country == "" || cc == scope.Country) {
			ccs = append(ccs, cc)
		}
	}
	slices.Sort(ccs)
	for _, cc := range ccs {
		rows = append(rows, line(cc, mine[cc]))
	}
	return head, rows, nil
}

// trendSeries are the overview's columns the trend picture draws, with
// the dash pattern that tells them apart without colour.
var trendSeries = []struct{ col, dash string }{
	{"requested", ""}, {"accepted", "6 3"}, {"contacted", "2 3"}, {"unmatched", "10 3 2 3"},
}

// trendChart draws the overview's months as an SVG line chart: one line
// per column, a point for each shown count; a hidden count ("<5",
// suppressed) breaks the line, so the picture tells nothing the table
// beside it (its text alternative) does not.
func trendChart(t *reports.Table, title, desc string, label func(col string) string) template.HTML {
	const w, h, left, right, top, bottom = 640.0, 260.0, 48.0, 150.0, 16.0, 40.0
	if len(t.Rows) == 0 {
		return ""
	}
	maxN := 1
	for _, r := range t.Rows {
		for _, sr := range trendSeries {
			if n, ok := r.Counts[sr.col].Value(); ok {
				maxN = max(maxN, n)
			}
		}
	}
	step := (w - left - right) / float64(max(len(t.Rows)-1, 1))
	x := func(i int) float64 { return left + float64(i)*step }
	y := func(n int) float64 { return top + (h-top-bottom)*(1-float64(n)/float64(maxN)) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="trend-chart" viewBox="0 0 %.0f %.0f" xmlns="http://www.w3.org/2000/svg" role="img" aria-labelledby="trend-title trend-desc">`, w, h)
	fmt.Fprintf(&b, `<title id="trend-title">%s</title><desc id="trend-desc">%s</desc>`, html.EscapeString(title), html.EscapeString(desc))
	// Axes, with the top count and the first and last periods.
	fmt.Fprintf(&b, `<path class="axis" d="M%.0f %.0fV%.0fH%.0f"/>`, left, top, h-bottom, w-right)
	fmt.Fprintf(&b, `<text class="tick" x="%.0f" y="%.0f" text-anchor="end">%d</text>`, left-6, top+4, maxN)
	fmt.Fprintf(&b, `<text class="tick" x="%.0f" y="%.0f" text-anchor="end">0</text>`, left-6, h-bottom+4)
	for i, r := range t.Rows {
		if i == 0 || i == len(t.Rows)-1 || len(t.Rows) <= 8 {
			fmt.Fprintf(&b, `<text class="tick" x="%.1f" y="%.0f" text-anchor="middle">%s</text>`, x(i), h-bottom+18, html.EscapeString(r.Key["period"]))
		}
	}
	for k, sr := range trendSeries {
		var d strings.Builder
		pen := false
		for i, r := range t.Rows {
			n, ok := r.Counts[sr.col].Value()
			if !ok {
				pen = false
				continue
			}
			cmd := 'L'
			if !pen {
				cmd = 'M'
			}
			fmt.Fprintf(&d, "%c%.1f %.1f", cmd, x(i), y(n))
			pen = true
		}
		dash := ""
		if sr.dash != "" {
			dash = ` stroke-dasharray="` + sr.dash + `"`
		}
		fmt.Fprintf(&b, `<path class="series s%d" d="%s"%s/>`, k, d.String(), dash)
		for i, r := range t.Rows {
			if n, ok := r.Counts[sr.col].Value(); ok {
				fmt.Fprintf(&b, `<circle class="dot s%d" cx="%.1f" cy="%.1f" r="2.5"><title>%s %s: %d</title></circle>`,
					k, x(i), y(n), html.EscapeString(r.Key["period"]), html.EscapeString(label(sr.col)), n)
			}
		}
		ly := top + 8 + float64(k)*22
		fmt.Fprintf(&b, `<path class="series s%d" d="M%.0f %.0fh28"%s/><text class="legend" x="%.0f" y="%.0f">%s</text>`,
			k, w-right+12, ly, dash, w-right+46, ly+4, html.EscapeString(label(sr.col)))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) //nolint:gosec // built from escaped parts above
}
