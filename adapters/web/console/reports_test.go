package console_test

import (
	"encoding/csv"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/invictus-network/invictus/adapters/web/console"
	"github.com/invictus-network/invictus/directory"
	"github.com/invictus-network/invictus/reports"
	"github.com/invictus-network/invictus/reports/reportstest"
	"github.com/invictus-network/invictus/routing"
	"github.com/invictus-network/invictus/schemas"
)

// The read model serve keeps satisfies the console's port.
var _ console.Reports = (*reports.Store)(nil)

// setupReports is setup with the console given a read model fed n
// generated referrals (2026-01-05 onwards, five countries).
func setupReports(t testing.TB, n int) (*bundle, *reports.Store) {
	t.Helper()
	b := setup(t)
	store := reports.NewStore(reports.Config{})
	for i, env := range reportstest.Generate(12, n).Envelopes {
		store.Apply(uint64(i+1), env)
	}
	srv, err := console.New(console.Deps{
		Accounts: b.stores.Accounts, Sessions: b.stores.Sessions, Audit: b.stores.Audit,
		Commands: b.ports.Commands, Outcomes: b.ports.Outcomes, Timeline: b.ports.Timeline, Inbox: b.ports.Inbox,
		Directory: dirView(), Matcher: routing.NewMatcher(routing.Config{}), Reports: store,
	}, console.Config{Now: b.now, Logger: slog.New(slog.NewJSONHandler(b.logs, nil)), SignInRate: 1000})
	if err != nil {
		t.Fatal(err)
	}
	b.srv = srv
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	b.url = hs.URL
	return b, store
}

// addCoordinator creates a coordinator account of scope (a country or eu).
func (b *bundle) addCoordinator(name, scope string) *person {
	b.t.Helper()
	p := &person{name: name, password: "correct horse " + name}
	if _, err := b.srv.Accounts().Add(b.t.Context(), name, console.RoleCoordinator, "", scope, p.password); err != nil {
		b.t.Fatal(err)
	}
	return p
}

// readCSV parses a CSV download.
func readCSV(t *testing.T, p page) [][]string {
	t.Helper()
	if p.status != http.StatusOK {
		t.Fatalf("CSV: status %d: %.300s", p.status, p.body)
	}
	recs, err := csv.NewReader(strings.NewReader(p.body)).ReadAll()
	if err != nil {
		t.Fatalf("CSV: %v", err)
	}
	return recs
}

// shown writes a count as the pages must show it.
func shown(c *reports.Count) string {
	if n, ok := c.Value(); ok {
		return itoa(n)
	}
	b, _ := c.MarshalJSON()
	return strings.Trim(string(b), `"`)
}

func TestReportPagesScope(t *testing.T) {
	b, store := setupReports(t, 300)
	pt := b.client()
	pt.signIn(b.addCoordinator("paula", "pt"))
	eu := b.client()
	eu.signIn(b.addCoordinator("elena", "eu"))
	now := time.Now()

	// The overview shows the headline of the national scope: the same
	// numbers as the read model gives the API for that scope, not Europe's.
	want, err := store.Report("overview", reports.Scope{Country: "pt"}, reports.Filter{}, now)
	if err != nil {
		t.Fatal(err)
	}
	all, err := store.Report("overview", reports.Scope{}, reports.Filter{}, now)
	if err != nil {
		t.Fatal(err)
	}
	ptReq, euReq := shown(want.Totals["requested"]), shown(all.Totals["requested"])
	if ptReq == euReq {
		t.Fatalf("test traffic: pt and Europe both requested %s", ptReq)
	}
	r := pt.get("/console/en/reports/overview")
	if r.status != http.StatusOK || !strings.Contains(r.body, `<span class="figure">`+ptReq+`</span>`) || strings.Contains(r.body, `<span class="figure">`+euReq+`</span>`) {
		t.Fatalf("national overview: status %d, want requested %s (not %s): %.2000s", r.status, ptReq, euReq, r.body)
	}
	if r := eu.get("/console/en/reports/overview"); !strings.Contains(r.body, `<span class="figure">`+euReq+`</span>`) {
		t.Fatalf("European overview without %s", euReq)
	}

	// Another country by URL: refused, nothing shown, on every page and CSV.
	for _, path := range []string{"overview", "flows", "organisations", "gaps", "overview.csv", "flows.csv", "organisations.csv", "gaps.csv",
		"gaps-constraints.csv", "gaps-groups.csv"} {
		r := pt.get("/console/en/reports/" + path + "?country=es")
		if r.status != http.StatusForbidden || !strings.Contains(r.body, "only the figures of your own country") ||
			strings.Contains(r.body, `id="headline"`) || strings.Contains(r.body, "<table") || strings.Contains(r.body, "<svg") || strings.Contains(r.body, "offered") {
			t.Errorf("%s?country=es as pt: status %d: %.1500s", path, r.status, r.body)
		}
	}
	// The European coordinator may filter on any country.
	if r := eu.get("/console/en/reports/flows?country=es"); r.status != http.StatusOK || !strings.Contains(r.body, `id="matrix"`) {
		t.Errorf("flows?country=es as eu: status %d", r.status)
	}

	// The national flows CSV is the read model's national table, cell
	// by cell, and every row touches Portugal or a Portuguese referrer.
	flows, err := store.Report("flows/countries", reports.Scope{Country: "pt"}, reports.Filter{}, now)
	if err != nil {
		t.Fatal(err)
	}
	recs := readCSV(t, pt.get("/console/en/reports/flows.csv"))
	if len(recs) != len(flows.Rows)+1 || !slices.Equal(recs[0][:3], []string{"From", "To", "Offered"}) {
		t.Fatalf("flows CSV: %d records for %d rows, header %v", len(recs), len(flows.Rows), recs[0])
	}
	euFlows := readCSV(t, eu.get("/console/en/reports/flows.csv"))
	if len(euFlows) <= len(recs) {
		t.Errorf("European flows have %d lines, national %d", len(euFlows), len(recs))
	}
	for i, row := range flows.Rows {
		got := recs[i+1]
		wantLine := []string{strings.ToUpper(row.Key["from"]), strings.ToUpper(row.Key["to"]),
			shown(row.Counts["offered"]), shown(row.Counts["accepted"]), shown(row.Counts["declined"]), shown(row.Counts["expired"])}
		if !slices.Equal(got[:6], wantLine) {
			t.Errorf("flows CSV line %d: %v, want %v", i+1, got, wantLine)
		}
	}
}

func TestReportPagesSuppressionAndCSV(t *testing.T) {
	b, store := setupReports(t, 300)
	eu := b.client()
	eu.signIn(b.addCoordinator("elena", "eu"))
	// A week is small enough for cells under 5: shown as "<5" in the page
	// and the CSV alike, never as the number.
	q := "?from=2026-01-05&to=2026-01-12"
	f := reports.Filter{From: time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 1, 12, 0, 0, 0, 0, time.UTC)}
	tab, err := store.Report("organisations", reports.Scope{}, f, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	small := 0
	for _, r := range tab.Rows {
		for _, c := range r.Counts {
			if shown(c) == reports.Hidden {
				small++
			}
		}
	}
	if small == 0 {
		t.Fatal("test traffic: no small cell in a week")
	}
	recs := readCSV(t, eu.get("/console/en/reports/organisations.csv"+q))
	inCSV := 0
	for _, rec := range recs[1:] {
		for _, v := range rec {
			if v == reports.Hidden {
				inCSV++
			}
		}
	}
	if inCSV != small {
		t.Errorf("CSV has %d cells \"<5\", the read model %d", inCSV, small)
	}
	if !slices.Contains(recs[0], "Median minutes to accept") || !slices.Contains(recs[0], "Acceptance rate") {
		t.Errorf("organisations CSV header %v", recs[0])
	}
	page := eu.get("/console/en/reports/organisations" + q)
	if got := strings.Count(page.body, "<td>&lt;5</td>"); got != small {
		t.Errorf("page shows %d cells <5, want %d", got, small)
	}
	if r := eu.get("/console/en/reports/flows.csv" + q); !strings.HasPrefix(http.DetectContentType([]byte(r.body)), "text/plain") || !strings.Contains(r.body, "From,To,Offered") {
		t.Errorf("flows CSV: %.200s", r.body)
	}
}

func TestReportPagesBadFilters(t *testing.T) {
	b, _ := setupReports(t, 50)
	eu := b.client()
	eu.signIn(b.addCoordinator("elena", "eu"))
	future := time.Now().AddDate(0, 1, 0).Format(time.DateOnly)
	for _, c := range []struct{ query, says string }{
		{"?region=PT17", `Unknown filter: &#34;region&#34;`},
		{"?from=2026-02-01&to=2026-01-01", "after the start date"},
		{"?from=" + future, "not in the future"},
		{"?to=" + future, "tomorrow at the latest"},
		{"?from=yesterday", "not in the future"},
		{"?country=xx", "two-letter code of a country"},
	} {
		for _, path := range []string{"overview", "organisations.csv"} {
			r := eu.get("/console/en/reports/" + path + c.query)
			if r.status != http.StatusBadRequest || !strings.Contains(r.body, c.says) || strings.Contains(r.body, "<table") || strings.Contains(r.body, `id="headline"`) {
				t.Errorf("%s%s: status %d, want 400 saying %q: %.1500s", path, c.query, r.status, c.says, r.body)
			}
		}
	}
	// People of an organisation do not see the coordinators' pages.
	cw := b.client()
	cw.signIn(b.addPerson("carla", console.RoleCaseworker, "pt.apav"))
	if r := cw.get("/console/en/reports/overview"); r.status != http.StatusForbidden || strings.Contains(r.body, `id="headline"`) {
		t.Errorf("caseworker on overview: status %d", r.status)
	}
	if r := cw.get("/console/en/reports/flows.csv"); r.status != http.StatusForbidden || strings.Contains(r.body, "From,To") {
		t.Errorf("caseworker on flows.csv: status %d", r.status)
	}
}

// Every catalog key the report pages make from a code is in every
// language.
func TestReportCatalogKeys(t *testing.T) {
	var keys []string
	for _, c := range []string{"period", "from", "to", "organisation", "requested", "offered", "accepted", "contacted", "unmatched",
		"declined", "expired", "reminded", "acceptance_rate", "median_minutes_to_accept", "missed_rate",
		"country", "region", "need", "reason", "referrals", "services", "constraint", "dimension", "value",
		"crime", "flag", "age_band", "gender", "language", "channel", "cross_border",
		"contact_rate", "median_minutes_to_first_contact", "supported_rate", "helpful_rate", "outcome", "question", "answer", "needs"} {
		keys = append(keys, "reports.col."+c)
	}
	for _, f := range []string{"from", "to", "country", "unknown", "scope", "unavailable",
		"need", "crime", "flag", "age_band", "gender", "language", "channel", "cross_border"} {
		keys = append(keys, "reports.err."+f)
	}
	for _, p := range []string{"overview", "flows", "organisations", "gaps", "impact"} {
		keys = append(keys, "reports."+p+".title")
	}
	for _, x := range []string{"gaps-constraints", "gaps-groups", "impact-netherlands", "impact-outcomes", "impact-feedback"} {
		keys = append(keys, "reports."+x, "reports."+x+".note")
	}
	for _, r := range []string{"no_service", "excluded", "all_declined", "expired"} {
		keys = append(keys, "reports.reason."+r)
	}
	for _, lang := range []string{"en", "bg", "hr", "fi", "fr", "it", "nl", "pt"} {
		m := readCatalog(t, lang)
		for _, k := range keys {
			if _, ok := m[k]; !ok {
				t.Errorf("%s lacks %q", lang, k)
			}
		}
	}
}

// The gaps page maps the national coordinator's unmatched needs by
// region: a circle for each region of the table, none for another
// country's, and the CSV is the table.
func TestReportGapsPage(t *testing.T) {
	b, store := setupReports(t, 300)
	pt := b.client()
	pt.signIn(b.addCoordinator("paula", "pt"))
	tab, err := store.Report("gaps", reports.Scope{Country: "pt"}, reports.Filter{}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	regions := map[string]bool{}
	for _, r := range tab.Rows {
		regions[r.Key["region"]] = true
	}
	if len(regions) == 0 || !regions["PT17"] {
		t.Fatalf("test traffic: regions %v", regions)
	}
	r := pt.get("/console/en/reports/gaps")
	if r.status != http.StatusOK || !strings.Contains(r.body, `<svg class="map gapmap"`) {
		t.Fatalf("gaps: status %d: %.1500s", r.status, r.body)
	}
	circles := strings.Count(r.body, `<circle class="gap`)
	if circles != len(regions) {
		t.Errorf("gaps map: %d circles for regions %v", circles, regions)
	}
	for _, other := range []string{"ES30", "FR10", "NL32", "FI1B"} {
		if regions[other] != strings.Contains(r.body, "<title>"+other+":") {
			t.Errorf("gaps map: region %s drawn %v, in the table %v", other, !regions[other], regions[other])
		}
	}
	recs := readCSV(t, pt.get("/console/en/reports/gaps.csv"))
	if len(recs) != len(tab.Rows)+1 || !slices.Equal(recs[0], []string{"Country", "Region", "Need", "Reason", "Referrals", "Services offering it here"}) {
		t.Errorf("gaps CSV: %d records for %d rows, header %v", len(recs), len(tab.Rows), recs[0])
	}
	for i, row := range tab.Rows {
		if got := recs[i+1]; got[1] != row.Key["region"] || got[4] != shown(row.Counts["referrals"]) {
			t.Errorf("gaps CSV line %d: %v, want region %s count %s", i+1, got, row.Key["region"], shown(row.Counts["referrals"]))
		}
	}
}

// csvEquals requires a CSV download to be the read model's table cell by
// cell (the counts as shown, "<5" and "suppressed" included), with keys
// as key writes them.
func csvEquals(t *testing.T, name string, recs [][]string, tab *reports.Table, key func(r reports.Row) []string) {
	t.Helper()
	if len(recs) != len(tab.Rows)+1 {
		t.Fatalf("%s: %d records for %d rows", name, len(recs), len(tab.Rows))
	}
	for i, row := range tab.Rows {
		want := key(row)
		for _, c := range tab.Columns {
			want = append(want, shown(row.Counts[c]))
		}
		if got := recs[i+1][:len(want)]; !slices.Equal(got, want) {
			t.Errorf("%s line %d: %v, want %v", name, i+1, got, want)
		}
	}
}

// The gaps page beside the directory: what each region's services offer
// of the need, the constraints that excluded every service and the
// victim groups, each table with its CSV, for the national scope and
// with the need and victim-group filters, suppressed as the read model
// suppresses them.
func TestReportGapsOfferGroupsConstraints(t *testing.T) {
	b, store := setupReports(t, 400)
	pt := b.client()
	pt.signIn(b.addCoordinator("paula", "pt"))
	scope := reports.Scope{Country: "pt"}
	now := time.Now()
	snap := dirView().Snapshot()

	// The offer beside each gap: the directory's services of that need
	// in that region, as the matcher's index finds them.
	tab, err := store.Report("gaps", scope, reports.Filter{}, now)
	if err != nil {
		t.Fatal(err)
	}
	recs := readCSV(t, pt.get("/console/en/reports/gaps.csv"))
	offered := 0
	for i, row := range tab.Rows {
		n := len(snap.Candidates(directory.Query{Needs: []string{row.Key["need"]}, Country: row.Key["country"], Region: row.Key["region"]}, nil))
		if recs[i+1][5] != itoa(n) {
			t.Errorf("gaps line %d: %s services, want %d", i+1, recs[i+1][5], n)
		}
		if n > 0 {
			offered++
		}
	}
	if offered == 0 {
		t.Error("test traffic: no gap where the directory offers the need")
	}

	page := pt.get("/console/en/reports/gaps")
	for _, id := range []string{`id="gaps-constraints"`, `id="gaps-groups"`, `id="csv-gaps-constraints"`, `id="csv-gaps-groups"`, `id="f-need"`, `id="f-crime"`} {
		if !strings.Contains(page.body, id) {
			t.Errorf("gaps page without %s", id)
		}
	}
	cons, err := store.Report("gaps/constraints", scope, reports.Filter{}, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(cons.Rows) == 0 {
		t.Fatal("test traffic: no constraint")
	}
	csvEquals(t, "gaps-constraints", readCSV(t, pt.get("/console/en/reports/gaps-constraints.csv")), cons, func(r reports.Row) []string {
		return []string{labelOf("needs", r.Key["need"]), labelOf("constraints", r.Key["constraint"])}
	})
	groups, err := store.Report("gaps/groups", scope, reports.Filter{}, now)
	if err != nil {
		t.Fatal(err)
	}
	grecs := readCSV(t, pt.get("/console/en/reports/gaps-groups.csv"))
	if !slices.Equal(grecs[0], []string{"Victim group", "Value", "Unmatched"}) {
		t.Errorf("groups header %v", grecs[0])
	}
	if len(grecs) != len(groups.Rows)+1 {
		t.Fatalf("groups: %d records for %d rows", len(grecs), len(groups.Rows))
	}
	for i, r := range groups.Rows {
		if got := grecs[i+1][2]; got != shown(r.Counts["unmatched"]) {
			t.Errorf("groups %s=%s: %s, want %s", r.Key["dimension"], r.Key["value"], got, shown(r.Counts["unmatched"]))
		}
	}
	// Independently: each crime's unmatched referrals in Portugal (or
	// referred from there), from the generator's truth.
	tr := reportstest.Generate(12, 400)
	byCrime := map[string]int{}
	for _, x := range tr.Truths {
		if x.Country != "pt" && !strings.HasPrefix(x.Referrer, "pt.") {
			continue
		}
		if len(x.Unmatched) == 0 {
			continue
		}
		for _, c := range x.Crimes {
			byCrime[c]++
		}
	}
	checked := 0
	for _, r := range groups.Rows {
		if r.Key["dimension"] != "crime" {
			continue
		}
		if n, ok := r.Counts["unmatched"].Value(); ok {
			if n != byCrime[r.Key["value"]] {
				t.Errorf("unmatched with crime %s: %d, want %d", r.Key["value"], n, byCrime[r.Key["value"]])
			}
			checked++
		}
	}
	if checked == 0 {
		t.Error("no crime group shown")
	}

	// The filters: the tables are the read model's under the same
	// filter, cell by cell.
	for _, c := range []struct {
		query string
		f     reports.Filter
	}{
		{"need=safety.shelter", reports.Filter{Need: "safety.shelter"}},
		{"crime=domestic_violence", reports.Filter{Crime: "domestic_violence"}},
		{"age_band=child&cross_border=false", reports.Filter{AgeBand: "child", CrossBorder: new(bool)}},
	} {
		want, err := store.Report("gaps", scope, c.f, now)
		if err != nil {
			t.Fatal(err)
		}
		csvEquals(t, "gaps?"+c.query, readCSV(t, pt.get("/console/en/reports/gaps.csv?"+c.query)), want, func(r reports.Row) []string {
			return []string{strings.ToUpper(r.Key["country"]), r.Key["region"], labelOf("needs", r.Key["need"]), reasonText(r.Key["reason"])}
		})
		if c.f.Need != "" {
			for _, r := range want.Rows {
				if r.Key["need"] != c.f.Need {
					t.Errorf("need filter: a row of %s", r.Key["need"])
				}
			}
		}
		if r := pt.get("/console/en/reports/gaps?" + c.query); r.status != http.StatusOK || !strings.Contains(r.body, "selected") {
			t.Errorf("gaps?%s: status %d, or the filter not kept in the form", c.query, r.status)
		}
	}
	for _, c := range []struct{ query, says string }{
		{"need=nope", "a need code of the taxonomy"},
		{"crime=nope", "a crime code"},
		{"cross_border=maybe", "Cross-border must be yes or no"},
		{"gender=x", "female, male, non_binary or other"},
	} {
		for _, path := range []string{"gaps", "gaps-groups.csv"} {
			if r := pt.get("/console/en/reports/" + path + "?" + c.query); r.status != http.StatusBadRequest || !strings.Contains(r.body, c.says) || strings.Contains(r.body, "<table") {
				t.Errorf("%s?%s: status %d, want 400 saying %q", path, c.query, r.status, c.says)
			}
		}
	}
}

var taxonomy = sync.OnceValue(func() *schemas.Taxonomy {
	tx, err := schemas.LoadTaxonomy()
	if err != nil {
		panic(err)
	}
	return tx
})

func labelOf(section, code string) string { return taxonomy().Label(section, code, "en") }

func reasonText(code string) string {
	return map[string]string{"no_service": "no service there", "excluded": "every service excluded", "all_declined": "all declined", "expired": "expired"}[code]
}

// The impact page: time to first contact, outcomes and the victims'
// answers by country and quarter, each table the read model's, and each
// country beside the Netherlands with rates only; a national coordinator
// sees her country and the reference, never another country's row.
func TestReportImpactPage(t *testing.T) {
	b, store := setupReports(t, 400)
	pt := b.client()
	pt.signIn(b.addCoordinator("paula", "pt"))
	eu := b.client()
	eu.signIn(b.addCoordinator("elena", "eu"))
	scope := reports.Scope{Country: "pt"}
	now := time.Now()
	byQ := reports.Filter{By: "quarter"}

	times, err := store.Report("times", scope, byQ, now)
	if err != nil {
		t.Fatal(err)
	}
	csvEquals(t, "impact", readCSV(t, pt.get("/console/en/reports/impact.csv")), times, func(r reports.Row) []string {
		return []string{r.Key["period"], strings.ToUpper(r.Key["country"])}
	})
	for _, x := range []struct{ id, report string }{{"outcomes", "impact/outcomes"}, {"feedback", "impact/feedback"}} {
		tab, err := store.Report(x.report, scope, byQ, now)
		if err != nil {
			t.Fatal(err)
		}
		if len(tab.Rows) == 0 {
			t.Fatalf("test traffic: no %s", x.report)
		}
		recs := readCSV(t, pt.get("/console/en/reports/impact-"+x.id+".csv"))
		if len(recs) != len(tab.Rows)+1 {
			t.Fatalf("%s: %d records for %d rows", x.id, len(recs), len(tab.Rows))
		}
		for i, r := range tab.Rows {
			if got, want := recs[i+1][len(recs[i+1])-1], shown(r.Counts[tab.Columns[0]]); got != want || recs[i+1][0] != r.Key["period"] {
				t.Errorf("%s line %d: %v, want %s in %s", x.id, i+1, recs[i+1], want, r.Key["period"])
			}
		}
	}

	// The comparison: the Netherlands first, from the whole network;
	// Portugal's contact rate and median are the read model's.
	all, err := store.Report("times", reports.Scope{}, reports.Filter{}, now)
	if err != nil {
		t.Fatal(err)
	}
	mine, err := store.Report("times", scope, reports.Filter{}, now)
	if err != nil {
		t.Fatal(err)
	}
	rate := func(tab *reports.Table, cc string) (string, string) {
		for _, r := range tab.Rows {
			if r.Key["country"] == cc {
				p, m := "–", "–"
				if v := r.Stats["contact_rate"]; v != nil {
					p = strconv.FormatFloat(*v*100, 'f', 1, 64) + " %"
				}
				if v := r.Stats["median_minutes_to_first_contact"]; v != nil {
					m = strconv.FormatFloat(*v, 'f', 0, 64)
				}
				return p, m
			}
		}
		return "", ""
	}
	cmp := readCSV(t, pt.get("/console/en/reports/impact-netherlands.csv"))
	if len(cmp) != 3 || cmp[1][0] != "NL" || cmp[2][0] != "PT" {
		t.Fatalf("comparison as pt: %v", cmp)
	}
	nlRate, nlMin := rate(all, "nl")
	ptRate, ptMin := rate(mine, "pt")
	if cmp[1][1] != nlRate || cmp[1][3] != nlMin || cmp[2][1] != ptRate || cmp[2][3] != ptMin {
		t.Errorf("comparison %v, want NL %s %s, PT %s %s", cmp, nlRate, nlMin, ptRate, ptMin)
	}
	if !strings.HasSuffix(cmp[2][2], " pp") {
		t.Errorf("the difference from NL %q", cmp[2][2])
	}
	if euCmp := readCSV(t, eu.get("/console/en/reports/impact-netherlands.csv")); len(euCmp) != 1+len(reportstest.Countries) {
		t.Errorf("comparison as eu: %d lines", len(euCmp))
	}
	// Rates only for the reference: the national page has no NL count.
	page := pt.get("/console/en/reports/impact")
	if page.status != http.StatusOK || !strings.Contains(page.body, `id="impact-netherlands"`) || !strings.Contains(page.body, "slachtofferhulp") {
		t.Fatalf("impact page: status %d", page.status)
	}
	for _, tab := range []string{"impact.csv", "impact-outcomes.csv", "impact-feedback.csv"} {
		for _, rec := range readCSV(t, pt.get("/console/en/reports/"+tab))[1:] {
			if slices.Contains(rec, "NL") {
				t.Errorf("%s as pt has a row of NL: %v", tab, rec)
			}
		}
	}
	for _, path := range []string{"impact", "impact.csv", "impact-netherlands.csv", "impact-outcomes.csv", "impact-feedback.csv"} {
		if r := pt.get("/console/en/reports/" + path + "?country=nl"); r.status != http.StatusForbidden || strings.Contains(r.body, "<table") {
			t.Errorf("%s?country=nl as pt: status %d", path, r.status)
		}
	}
}

// The overview's trend picture draws a point for each count its table
// shows and none for a hidden one.
func TestReportTrendChart(t *testing.T) {
	b, store := setupReports(t, 120)
	eu := b.client()
	eu.signIn(b.addCoordinator("elena", "eu"))
	tr, err := store.Report("overview", reports.Scope{}, reports.Filter{By: "month", Need: "safety.shelter"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	points, hidden := 0, 0
	for _, r := range tr.Rows {
		for _, c := range []string{"requested", "accepted", "contacted", "unmatched"} {
			if _, ok := r.Counts[c].Value(); ok {
				points++
			} else {
				hidden++
			}
		}
	}
	if hidden == 0 {
		t.Fatal("test traffic: no hidden count in the trend")
	}
	page := eu.get("/console/en/reports/overview?need=safety.shelter")
	if !strings.Contains(page.body, `<svg class="trend-chart"`) || !strings.Contains(page.body, `<title id="trend-title">`) {
		t.Fatalf("no trend picture: %.1500s", page.body)
	}
	if got := strings.Count(page.body, `<circle class="dot`); got != points {
		t.Errorf("trend picture: %d points, want %d (the shown counts), %d hidden", got, points, hidden)
	}
}
