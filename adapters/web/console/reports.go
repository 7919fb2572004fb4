package console

import (
	"bytes"
	"encoding/csv"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/invictus-network/invictus/adapters/web"
	"github.com/invictus-network/invictus/directory"
	"github.com/invictus-network/invictus/reports"
)

// Reports is the coordinators' read model, the same one GET
// /v1/reports/{name} answers from (a *reports.Store satisfies it).
type Reports interface {
	Report(name string, s reports.Scope, f reports.Filter, now time.Time) (*reports.Table, error)
}

// reportPages are the coordinators' pages and the report each shows.
var reportPages = map[string]string{
	"overview":      "overview",
	"flows":         "flows/countries",
	"organisations": "organisations",
	"gaps":          "gaps",
	"impact":        "times",
}

// Prefixes of catalog keys made from codes: a column, a filter's error,
// a page's title.
const (
	colKey    = "reports.col."
	errKey    = "reports.err."
	pageKey   = "reports."
	reasonKey = "reports.reason."
	surveyKey = "survey.q."
)

// reportTabs are the pages in the order of their tabs.
var reportTabs = []string{"overview", "flows", "organisations", "gaps", "impact"}

// reportExtra is a further table of a page, below its main one, with its
// own CSV at /reports/<page>-<ID>.csv: a report of the read model, or
// ("") the comparison with the reference country.
type reportExtra struct{ ID, Report string }

// reportExtras are the pages' further tables.
var reportExtras = map[string][]reportExtra{
	"gaps":   {{"constraints", "gaps/constraints"}, {"groups", "gaps/groups"}},
	"impact": {{"netherlands", ""}, {"outcomes", "impact/outcomes"}, {"feedback", "impact/feedback"}},
}

// reportFilters are the query parameters the report pages accept: the
// period, the country, the need and the victim group (the API's names).
var reportFilters = []string{"from", "to", "country", "need", "crime", "flag", "age_band", "gender", "language", "channel", "cross_border"}

// reportRoutes registers the coordinators' pages of one language: each
// page as HTML and each of its tables as CSV.
func (s *Server) reportRoutes(p, lang string) {
	for page := range reportPages {
		s.mux.HandleFunc("GET "+p+"/reports/"+page, s.page(lang, signedIn, s.reportPage(page, "", false)))
		s.mux.HandleFunc("GET "+p+"/reports/"+page+".csv", s.page(lang, signedIn, s.reportPage(page, "", true)))
		for _, x := range reportExtras[page] {
			s.mux.HandleFunc("GET "+p+"/reports/"+page+"-"+x.ID+".csv", s.page(lang, signedIn, s.reportPage(page, x.ID, true)))
		}
	}
}

// reportData is what a report page's template gets.
type reportData struct {
	Page   string
	Tabs   []string
	Scope  string // "" for Europe
	From   string
	To     string
	Cntry  string
	Errors []string
	Query  string // the filters, for the CSV link
	// The need and victim-group filters: the chosen value of each, and
	// the choices of each select.
	Sel     map[string]string
	Choices []filterSelect
	More    bool // a victim-group filter is set: the details are open
	// Overview
	Headline []figure
	Trend    [][]string
	TrendCol []string
	// Flows: a matrix of offers, from (rows) to (columns).
	MatrixTo   []string
	MatrixRows []matrixRow
	// Gaps: the map of unmatched needs by region.
	Map template.HTML
	// Overview: the trend picture, beside its table.
	Chart template.HTML
	// Tables of the page: header and rows of cells.
	Head []string
	Rows [][]string
	// Extras are the page's further tables.
	Extras []extraTable
}

// extraTable is a further table of a page.
type extraTable struct {
	ID, Title, Note, CSV string
	// Source is the link that credits the table's reference, if any.
	Source string
	Head   []string
	Rows   [][]string
}

// filterSelect is one select of the need and victim-group filters.
type filterSelect struct {
	Name, Label string
	Choices     []choice
}

type figure struct{ Label, Value string }

type matrixRow struct {
	From  string
	Cells []string
}

// cellText writes a count as shown: the number, "<5" or "suppressed".
func cellText(c *reports.Count) string {
	if c == nil {
		return "0"
	}
	if n, ok := c.Value(); ok {
		return strconv.Itoa(n)
	}
	b, _ := c.MarshalJSON()
	return strings.Trim(string(b), `"`)
}

// statText writes a derived figure; "" when it is withheld.
func statText(v *float64, percent bool) string {
	switch {
	case v == nil:
		return "–"
	case percent:
		return strconv.FormatFloat(*v*100, 'f', 1, 64) + " %"
	}
	return strconv.FormatFloat(*v, 'f', 0, 64)
}

// reportFilter reads the page's filters, naming every problem in the
// person's language.
func reportFilter(q url.Values, rq *request) (reports.Filter, []string) {
	var f reports.Filter
	var errs []string
	for k := range q {
		if !slices.Contains(reportFilters, k) {
			errs = append(errs, rq.p.T("reports.err.unknown")+" "+strconv.Quote(k))
		}
	}
	slices.Sort(errs)
	for _, p := range []struct {
		name string
		to   *time.Time
	}{{"from", &f.From}, {"to", &f.To}} {
		if v := q.Get(p.name); v != "" {
			t, err := time.Parse(time.DateOnly, v)
			if err != nil {
				errs = append(errs, rq.p.T(errKey+p.name))
				continue
			}
			*p.to = t
		}
	}
	f.Country = strings.ToLower(strings.TrimSpace(q.Get("country")))
	f.Need, f.Crime, f.Flag = q.Get("need"), q.Get("crime"), q.Get("flag")
	f.AgeBand, f.Gender, f.Language, f.Channel = q.Get("age_band"), q.Get("gender"), q.Get("language"), q.Get("channel")
	switch v := q.Get("cross_border"); v {
	case "":
	case "true", "false":
		b := v == "true"
		f.CrossBorder = &b
	default:
		errs = append(errs, rq.p.T(errKey+"cross_border"))
	}
	return f, errs
}

// groupFilters are the selects of the need and victim-group filters and
// the taxonomy section of each one's codes.
var groupFilters = []struct{ name, section string }{
	{"need", "needs"}, {"crime", "crimes"}, {"flag", "flags"}, {"age_band", "age_bands"},
	{"gender", "genders"}, {"language", "languages"}, {"channel", "channels"}, {"cross_border", ""},
}

// filterChoices are the need and victim-group selects in the person's
// language.
func (s *Server) filterChoices(rq *request) []filterSelect {
	var out []filterSelect
	for _, g := range groupFilters {
		fs := filterSelect{Name: g.name, Label: rq.p.T(colKey + g.name)}
		switch g.name {
		case "cross_border":
			fs.Choices = []choice{{Value: "true", Label: rq.p.T("reports.yes")}, {Value: "false", Label: rq.p.T("reports.no")}}
		case "language":
			// A two-letter code, typed: there are too many for a select.
		default:
			for _, t := range s.tax.Sections()[g.section] {
				fs.Choices = append(fs.Choices, choice{Value: t.Code, Label: s.tax.Label(g.section, t.Code, rq.lang)})
			}
		}
		out = append(out, fs)
	}
	return out
}

// reportPage serves one coordinator page, or one of its tables as CSV:
// the main one, or the further one extra names.
func (s *Server) reportPage(page, extra string, asCSV bool) handler {
	return func(w http.ResponseWriter, r *http.Request, rq *request) (string, int, error) {
		if rq.user.Role != RoleCoordinator {
			s.auditLine(r.Context(), rq.user, "page_refused", "", r.URL.Path)
			rq.pg.Title = rq.p.T("error.title")
			rq.pg.Data = messageData{Text: rq.p.T("error.role")}
			return "message", http.StatusForbidden, nil
		}
		rq.pg.Section = "reports"
		rq.pg.Title = rq.p.T(pageKey + page + ".title")
		q := r.URL.Query()
		d := &reportData{Page: page, Tabs: reportTabs, From: q.Get("from"), To: q.Get("to"), Cntry: q.Get("country"), Query: q.Encode(),
			Sel: map[string]string{}, Choices: s.filterChoices(rq)}
		for _, g := range groupFilters {
			if v := q.Get(g.name); v != "" {
				d.Sel[g.name] = v
				d.More = d.More || g.name != "need"
			}
		}
		scope := reports.Scope{}
		if rq.user.Scope != "eu" {
			scope.Country = rq.user.Scope
			d.Scope = strings.ToUpper(rq.user.Scope)
		}
		rq.pg.Data = d
		if s.deps.Reports == nil {
			d.Errors = []string{rq.p.T("reports.err.unavailable")}
			return "reports", http.StatusServiceUnavailable, nil
		}
		f, errs := reportFilter(q, rq)
		if len(errs) > 0 {
			d.Errors = errs
			return "reports", http.StatusBadRequest, nil
		}
		now := s.cfg.Now()
		if page == "impact" {
			f.By = "quarter"
		}
		report, tableID := reportPages[page], page
		for _, x := range reportExtras[page] {
			if x.ID == extra {
				report, tableID = x.Report, page+"-"+x.ID
			}
		}
		if report == "" {
			report = reportPages[page] // checks the filter and the scope first
		}
		t, err := s.deps.Reports.Report(report, scope, f, now)
		var fe *reports.FilterError
		switch {
		case errors.As(err, &fe):
			d.Errors = []string{rq.p.T(errKey + fe.Field)}
			return "reports", http.StatusBadRequest, nil
		case errors.Is(err, reports.ErrForbidden):
			s.auditLine(r.Context(), rq.user, "report_refused", "", f.Country)
			d.Errors = []string{rq.p.T("reports.err.scope")}
			return "reports", http.StatusForbidden, nil
		case err != nil:
			return "reports", 0, err
		}
		head, rows := s.tableRows(tableID, t, rq)
		if tableID == "impact-netherlands" {
			if head, rows, err = s.comparison(scope, f, now, rq); err != nil {
				return "reports", 0, err
			}
		}
		if asCSV {
			var buf bytes.Buffer
			cw := csv.NewWriter(&buf)
			_ = cw.Write(head)
			_ = cw.WriteAll(rows)
			h := w.Header()
			h.Set("Content-Type", "text/csv; charset=utf-8")
			h.Set("Content-Disposition", `attachment; filename="invictus-`+tableID+`.csv"`)
			web.WriteBody(w, r, http.StatusOK, buf.Bytes())
			return "", 0, nil
		}
		d.Head, d.Rows = head, rows
		for _, x := range reportExtras[page] {
			id := page + "-" + x.ID
			et := extraTable{ID: id, Title: rq.p.T("reports." + id), Note: rq.p.T("reports." + id + ".note"),
				CSV: Prefix + rq.lang + "/reports/" + id + ".csv"}
			if d.Query != "" {
				et.CSV += "?" + d.Query
			}
			if x.Report == "" {
				et.Source = ReferenceSource
				if et.Head, et.Rows, err = s.comparison(scope, f, now, rq); err != nil {
					return "reports", 0, err
				}
			} else {
				xt, err := s.deps.Reports.Report(x.Report, scope, f, now)
				if err != nil {
					return "reports", 0, err
				}
				et.Head, et.Rows = s.tableRows(id, xt, rq)
			}
			d.Extras = append(d.Extras, et)
		}
		switch page {
		case "overview":
			for _, c := range t.Columns {
				d.Headline = append(d.Headline, figure{rq.p.T(colKey + c), cellText(t.Totals[c])})
			}
			f.By = "month"
			tr, err := s.deps.Reports.Report("overview", scope, f, now)
			if err != nil {
				return "reports", 0, err
			}
			d.Chart = trendChart(tr, rq.p.T("reports.chart.title"), rq.p.T("reports.chart.desc"), func(col string) string { return rq.p.T(colKey + col) })
			d.TrendCol = append([]string{rq.p.T("reports.col.period")}, d.Head...)
			for _, row := range tr.Rows {
				line := []string{row.Key["period"]}
				for _, c := range tr.Columns {
					line = append(line, cellText(row.Counts[c]))
				}
				d.Trend = append(d.Trend, line)
			}
			d.Head, d.Rows = nil, nil
		case "flows":
			d.MatrixTo, d.MatrixRows = matrix(t)
		case "gaps":
			if d.Map, err = gapMap(t, scope.Country, rq); err != nil {
				return "reports", 0, err
			}
		}
		return "reports", http.StatusOK, nil
	}
}

// tableRows is a report as the page's table (and its CSV): columns in
// the person's language, cells as shown.
func (s *Server) tableRows(page string, t *reports.Table, rq *request) ([]string, [][]string) {
	var head []string
	for _, d := range t.Dims {
		head = append(head, rq.p.T(colKey+d))
	}
	for _, c := range t.Columns {
		head = append(head, rq.p.T(colKey+c))
	}
	var stats []string
	switch page {
	case "flows":
		stats = []string{"acceptance_rate"}
	case "organisations":
		stats = []string{"acceptance_rate", "median_minutes_to_accept", "missed_rate"}
	case "impact":
		stats = []string{"contact_rate", "median_minutes_to_first_contact"}
	}
	for _, st := range stats {
		head = append(head, rq.p.T(colKey+st))
	}
	// The gaps beside what the directory offers: the services that
	// offer the need and serve the region (or the whole country
	// remotely). It counts services, not referrals: nothing to suppress.
	offer := page == "gaps"
	if offer {
		head = append(head, rq.p.T(colKey+"services"))
	}
	var snap *directory.Index
	if offer {
		snap = s.deps.Directory.Snapshot()
	}
	rows := [][]string{}
	for _, r := range t.Rows {
		var line []string
		for _, d := range t.Dims {
			line = append(line, s.keyText(page, d, r.Key, rq))
		}
		for _, c := range t.Columns {
			line = append(line, cellText(r.Counts[c]))
		}
		for _, st := range stats {
			line = append(line, statText(r.Stats[st], strings.HasSuffix(st, "_rate")))
		}
		if offer {
			n := len(snap.Candidates(directory.Query{Needs: []string{r.Key["need"]}, Country: r.Key["country"], Region: r.Key["region"]}, nil))
			line = append(line, strconv.Itoa(n))
		}
		rows = append(rows, line)
	}
	return head, rows
}

// groupSections are the taxonomy sections of the victim-group
// dimensions' values.
var groupSections = map[string]string{
	"need": "needs", "crime": "crimes", "flag": "flags", "age_band": "age_bands",
	"gender": "genders", "channel": "channels", "language": "languages",
}

// keyText writes the value of dimension d of a row in the person's
// language.
func (s *Server) keyText(page, d string, key map[string]string, rq *request) string {
	v := key[d]
	switch {
	case page == "flows" || d == "country":
		return strings.ToUpper(v)
	case page == "organisations":
		return s.orgName(v)
	case d == "need":
		return s.tax.Label("needs", v, rq.lang)
	case d == "reason":
		return rq.p.T(reasonKey + v)
	case d == "constraint":
		return s.tax.Label("constraints", v, rq.lang)
	case d == "dimension":
		return rq.p.T(colKey + v)
	case d == "outcome":
		return s.tax.Label("outcomes", v, rq.lang)
	case d == "question" && v == "missing":
		return rq.p.T("survey.missing")
	case d == "question":
		return rq.p.T(surveyKey + v)
	case d == "answer" && key["question"] == "missing":
		return rq.p.T("missing." + v)
	case d == "value":
		if key["dimension"] == "cross_border" {
			if v == "true" {
				return rq.p.T("reports.yes")
			}
			return rq.p.T("reports.no")
		}
		if sec, ok := groupSections[key["dimension"]]; ok {
			return s.tax.Label(sec, v, rq.lang)
		}
	}
	return v
}

// matrix lays the country flows out as offers from (rows) to (columns).
func matrix(t *reports.Table) ([]string, []matrixRow) {
	var froms, tos []string
	cell := map[[2]string]string{}
	for _, r := range t.Rows {
		from, to := r.Key["from"], r.Key["to"]
		if !slices.Contains(froms, from) {
			froms = append(froms, from)
		}
		if !slices.Contains(tos, to) {
			tos = append(tos, to)
		}
		cell[[2]string{from, to}] = cellText(r.Counts["offered"])
	}
	slices.Sort(froms)
	slices.Sort(tos)
	var rows []matrixRow
	for _, f := range froms {
		mr := matrixRow{From: strings.ToUpper(f)}
		for _, to := range tos {
			v, ok := cell[[2]string{f, to}]
			if !ok {
				v = "0"
			}
			mr.Cells = append(mr.Cells, v)
		}
		rows = append(rows, mr)
	}
	for i := range tos {
		tos[i] = strings.ToUpper(tos[i])
	}
	return tos, rows
}

// regionCentres are the centres of the NUTS 2 regions: the mean of their
// cities' places, weighted by population.
var regionCentres = sync.OnceValue(func() map[string][2]float64 {
	sum := map[string][3]float64{}
	for _, c := range directory.Cities() {
		w := float64(max(c.Population, 1))
		v := sum[c.NUTS2]
		sum[c.NUTS2] = [3]float64{v[0] + c.Lon*w, v[1] + c.Lat*w, v[2] + w}
	}
	out := make(map[string][2]float64, len(sum))
	for code, v := range sum {
		out[code] = [2]float64{v[0] / v[2], v[1] / v[2]}
	}
	return out
})

// gapMap draws the unmatched needs of the gaps table by region: a
// circle at each region's centre, its area the sum of the region's
// visible cells; a region with a hidden cell is labelled "at least",
// so the map tells nothing the table does not.
func gapMap(t *reports.Table, cc string, rq *request) (template.HTML, error) {
	type region struct {
		n      int
		hidden bool
	}
	regions := map[string]*region{}
	var order []string
	for _, r := range t.Rows {
		code := r.Key["region"]
		g := regions[code]
		if g == nil {
			g = &region{}
			regions[code] = g
			order = append(order, code)
		}
		if n, ok := r.Counts["referrals"].Value(); ok {
			g.n += n
		} else {
			g.hidden = true
		}
	}
	centres := regionCentres()
	var circles []web.GapCircle
	for _, code := range order {
		at, ok := centres[code]
		if !ok {
			continue
		}
		g := regions[code]
		label := code + ": " + strconv.Itoa(g.n)
		switch {
		case g.hidden && g.n == 0:
			label = code + ": " + reports.Hidden
		case g.hidden:
			label = code + ": " + rq.p.T("reports.map.atleast") + " " + strconv.Itoa(g.n)
		}
		circles = append(circles, web.GapCircle{Lon: at[0], Lat: at[1], N: g.n, Label: label})
	}
	return web.GapMap(cc, rq.p.T("reports.map.title"), rq.p.T("reports.map.desc"), circles)
}
