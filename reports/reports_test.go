package reports

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/reports/reportstest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

var uuidRe = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-7`)

var now = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

func build(t testing.TB, tr *reportstest.Traffic) *Model {
	t.Helper()
	m := New(Config{})
	for i, e := range tr.Envelopes {
		m.Apply(uint64(i+1), e)
	}
	return m
}

func report(t *testing.T, m *Model, name string, s Scope, f Filter) *Table {
	t.Helper()
	tb, err := m.Report(name, s, f, now)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return tb
}

// checkCell requires a shown count to equal want, and a hidden one to be
// either small or hidden as a complement (its number is then checked by
// checkSuppression).
func checkCell(t *testing.T, where string, c *Count, want int) {
	t.Helper()
	if n, ok := c.Value(); ok && n != want {
		t.Errorf("%s = %d, want %d", where, n, want)
	} else if !ok && want == 0 {
		t.Errorf("%s is hidden but is 0", where)
	}
}

func TestFlowsMatchIndependentCounts(t *testing.T) {
	t.Parallel()
	tr := reportstest.Generate(1, 3000)
	m := build(t, tr)
	want := map[string]int{} // from/to/code
	wantOrg := map[string]int{}
	for _, x := range tr.Truths {
		seen := map[string]bool{}
		for org, codes := range x.Answers {
			for code := range codes {
				if code == "reminded" {
					continue
				}
				wantOrg[x.Referrer+"/"+org+"/"+code]++
				k := x.Referrer[:2] + "/" + org[:2] + "/" + code
				if !seen[k] {
					seen[k] = true
					want[k]++
				}
			}
		}
	}
	tb := report(t, m, "flows/countries", Scope{}, Filter{})
	shown := 0
	for _, r := range tb.Rows {
		for _, c := range tb.Columns {
			checkCell(t, fmt.Sprintf("%s→%s %s", r.Key["from"], r.Key["to"], c), r.Counts[c], want[r.Key["from"]+"/"+r.Key["to"]+"/"+c])
			if _, ok := r.Counts[c].Value(); ok {
				shown++
			}
		}
	}
	if len(tb.Rows) != len(reportstest.Countries)*len(reportstest.Countries) || shown == 0 {
		t.Fatalf("%d rows, %d shown cells", len(tb.Rows), shown)
	}
	to := report(t, m, "flows/organisations", Scope{}, Filter{})
	for _, r := range to.Rows {
		for _, c := range to.Columns {
			checkCell(t, fmt.Sprintf("%s→%s %s", r.Key["from"], r.Key["to"], c), r.Counts[c], wantOrg[r.Key["from"]+"/"+r.Key["to"]+"/"+c])
		}
	}
	checkSuppression(t, tb)
	checkSuppression(t, to)
}

func TestOrganisationsTimesOutcomesGapsFeedback(t *testing.T) {
	t.Parallel()
	tr := reportstest.Generate(2, 3000)
	m := build(t, tr)
	org := map[string]map[string]int{}
	minutes := map[string][]int64{}
	contacted, requested := map[string]int{}, map[string]int{}
	contactMin := map[string][]int64{}
	outcomes, gaps, feedback := map[string]int{}, map[string]int{}, map[string]int{}
	for _, x := range tr.Truths {
		requested[x.Country]++
		if x.ContactMinutes >= 0 {
			contacted[x.Country]++
			contactMin[x.Country] = append(contactMin[x.Country], x.ContactMinutes)
		}
		for o, codes := range x.Answers {
			if org[o] == nil {
				org[o] = map[string]int{}
			}
			for c := range codes {
				org[o][c]++
			}
		}
		for o, ms := range x.AcceptMinutes {
			minutes[o] = append(minutes[o], ms...)
		}
		for k := range x.Outcomes {
			outcomes[k[0]+"/"+k[1]]++
		}
		for k := range x.Unmatched {
			gaps[x.Country+"/"+x.Region+"/"+k[0]+"/"+k[1]]++
		}
		for k := range x.Feedback {
			feedback[k[0]+"/"+k[1]]++
		}
	}
	lowerMedian := func(v []int64) float64 {
		v = slices.Clone(v)
		slices.Sort(v)
		return float64(v[(len(v)-1)/2])
	}
	tb := report(t, m, "organisations", Scope{}, Filter{})
	for _, r := range tb.Rows {
		o := r.Key["organisation"]
		for _, c := range tb.Columns {
			checkCell(t, o+" "+c, r.Counts[c], org[o][c])
		}
		if med := r.Stats["median_minutes_to_accept"]; med == nil || *med != lowerMedian(minutes[o]) {
			t.Errorf("%s median to accept %v, want %v", o, med, lowerMedian(minutes[o]))
		}
		if rate := r.Stats["acceptance_rate"]; rate == nil || fmt.Sprintf("%.4f", *rate) != fmt.Sprintf("%.4f", float64(org[o]["accepted"])/float64(org[o]["offered"])) {
			t.Errorf("%s acceptance rate %v", o, rate)
		}
	}
	tt := report(t, m, "times", Scope{}, Filter{})
	for _, r := range tt.Rows {
		cc := r.Key["country"]
		checkCell(t, cc+" requested", r.Counts["requested"], requested[cc])
		checkCell(t, cc+" contacted", r.Counts["contacted"], contacted[cc])
		if med := r.Stats["median_minutes_to_first_contact"]; med == nil || *med != lowerMedian(contactMin[cc]) {
			t.Errorf("%s median to contact %v, want %v", cc, med, lowerMedian(contactMin[cc]))
		}
	}
	for name, want := range map[string]map[string]int{"outcomes": outcomes, "gaps": gaps, "feedback": feedback} {
		tb := report(t, m, name, Scope{}, Filter{})
		if len(tb.Rows) == 0 {
			t.Fatalf("%s: no rows", name)
		}
		got := 0
		for _, r := range tb.Rows {
			var k []string
			for _, d := range tb.Dims {
				k = append(k, r.Key[d])
			}
			checkCell(t, name+" "+strings.Join(k, "/"), r.Counts["referrals"], want[strings.Join(k, "/")])
			got++
		}
		if got != len(want) {
			t.Errorf("%s: %d rows, want %d", name, got, len(want))
		}
		checkSuppression(t, tb)
	}
}

func TestFiltersNarrowToVictimGroupAndNeed(t *testing.T) {
	t.Parallel()
	tr := reportstest.Generate(3, 2000)
	m := build(t, tr)
	yes := true
	f := Filter{Crime: "fraud", AgeBand: "adult", CrossBorder: &yes, Need: "info.rights",
		From: time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)}
	want := 0
	for _, x := range tr.Truths {
		if slices.Contains(x.Crimes, "fraud") && x.AgeBand == "adult" && x.CrossBorder && slices.Contains(x.Needs, "info.rights") &&
			!x.Day.Before(f.From) && x.Day.Before(f.To) {
			want++
		}
	}
	tb := report(t, m, "overview", Scope{}, f)
	if n, ok := tb.Totals["requested"].Value(); want >= MinCell && (!ok || n != want) {
		t.Fatalf("requested = %d (%v), want %d", n, ok, want)
	}
	if want == 0 {
		t.Fatal("the filter keeps nothing; the traffic is too small")
	}
}

// checkSuppression requires every shown count to be 0 or at least
// MinCell, and no column group (rows and total) to have exactly one
// hidden count with a visible total.
func checkSuppression(t *testing.T, tb *Table) {
	t.Helper()
	for _, c := range tb.Columns {
		hidden := 0
		for _, r := range tb.Rows {
			n, ok := r.Counts[c].Value()
			if ok && n > 0 && n < MinCell {
				t.Errorf("%s: %v %s shows %d", tb.Report, r.Key, c, n)
			}
			if !ok {
				hidden++
			}
		}
		if _, ok := tb.Totals[c].Value(); ok && hidden == 1 {
			t.Errorf("%s: column %s has one hidden cell and a visible total", tb.Report, c)
		}
	}
	raw, _ := json.Marshal(tb)
	if uuidRe.Match(raw) {
		t.Errorf("%s: a referral id in the report", tb.Report)
	}
}

func TestSuppressionHidesComplements(t *testing.T) {
	t.Parallel()
	tb := &Table{Report: "t", Dims: []string{"from", "to"}, Columns: []string{"n"}, Totals: map[string]*Count{}}
	add := func(from, to string, n int) {
		tb.Rows = append(tb.Rows, Row{Key: map[string]string{"from": from, "to": to}, Counts: map[string]*Count{"n": {n: n}}})
	}
	// pt→es 3 is small; the pt row and the es column would give it away.
	add("pt", "es", 3)
	add("pt", "fr", 9)
	add("pt", "nl", 20)
	add("fi", "es", 7)
	add("fi", "fr", 30)
	add("fi", "nl", 40)
	tb.Totals["n"] = &Count{n: 109}
	tb.suppress()
	hidden := map[string]bool{}
	for _, r := range tb.Rows {
		if _, ok := r.Counts["n"].Value(); !ok {
			hidden[r.Key["from"]+r.Key["to"]] = true
		}
	}
	// Primary: pt→es. Row pt: pt→fr (9, smallest). Column es: fi→es (7).
	// Column fr then has pt→fr hidden alone: fi→fr; row fi has fi→es and
	// fi→fr: two, done.
	for _, k := range []string{"ptes", "ptfr", "fies", "fifr"} {
		if !hidden[k] {
			t.Errorf("%s shown; hidden: %v", k, hidden)
		}
	}
	if hidden["ptnl"] || hidden["finl"] {
		t.Errorf("too much hidden: %v", hidden)
	}
	raw, _ := json.Marshal(tb)
	raw = bytes.ReplaceAll(raw, []byte(`\u003c`), []byte("<"))
	if !strings.Contains(string(raw), `"<5"`) || !strings.Contains(string(raw), `"suppressed"`) || strings.Contains(string(raw), `"n":3`) || strings.Contains(string(raw), `"n":9`) {
		t.Errorf("JSON %s", raw)
	}
	// Nothing hidden can be derived: every group with a hidden cell has two.
	for _, by := range []string{"from", "to"} {
		n := map[string]int{}
		for _, r := range tb.Rows {
			if _, ok := r.Counts["n"].Value(); !ok {
				n[r.Key[by]]++
			}
		}
		for k, c := range n {
			if c == 1 {
				t.Errorf("%s=%s has one hidden cell", by, k)
			}
		}
	}
}

func TestNationalCoordinatorSeesOwnCountry(t *testing.T) {
	t.Parallel()
	tr := reportstest.Generate(4, 3000)
	m := build(t, tr)
	eu := report(t, m, "flows/countries", Scope{}, Filter{})
	pt := report(t, m, "flows/countries", Scope{Country: "pt"}, Filter{})
	if len(pt.Rows) == 0 || len(pt.Rows) >= len(eu.Rows) {
		t.Fatalf("pt sees %d rows of %d", len(pt.Rows), len(eu.Rows))
	}
	euRow := map[string]Row{}
	for _, r := range eu.Rows {
		euRow[r.Key["from"]+r.Key["to"]] = r
	}
	for _, r := range pt.Rows {
		if r.Key["from"] != "pt" && r.Key["to"] != "pt" {
			t.Errorf("pt coordinator sees %v", r.Key)
		}
		for _, c := range pt.Columns {
			a, ok1 := r.Counts[c].Value()
			b, ok2 := euRow[r.Key["from"]+r.Key["to"]].Counts[c].Value()
			if ok1 && ok2 && a != b {
				t.Errorf("%v %s: pt %d, eu %d", r.Key, c, a, b)
			}
		}
	}
	gaps := report(t, m, "gaps", Scope{Country: "pt"}, Filter{})
	for _, r := range gaps.Rows {
		if r.Key["country"] != "pt" {
			// a gap of a victim elsewhere shows only when a pt referrer sent it
			t.Logf("gap row %v", r.Key)
		}
	}
	if _, err := m.Report("gaps", Scope{Country: "pt"}, Filter{Country: "es"}, now); !errors.Is(err, ErrForbidden) {
		t.Fatalf("pt asking for es: %v", err)
	}
}

func TestBadFilters(t *testing.T) {
	t.Parallel()
	m := New(Config{})
	for _, tc := range []struct {
		f     Filter
		field string
	}{
		{Filter{From: now.Add(48 * time.Hour)}, "from"},
		{Filter{From: now.Add(-48 * time.Hour), To: now.Add(-72 * time.Hour)}, "to"},
		{Filter{To: now.Add(48 * time.Hour)}, "to"},
		{Filter{From: now.Add(-48 * time.Hour), To: now.Add(72 * time.Hour)}, "to"},
		{Filter{Need: "food"}, "need"},
		{Filter{Country: "xx"}, "country"},
		{Filter{By: "year"}, "by"},
	} {
		_, err := m.Report("overview", Scope{}, tc.f, now)
		var fe *FilterError
		if !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("%+v: %v, want a FilterError on %s", tc.f, err, tc.field)
		}
	}
	// Tomorrow is the latest end (the day after the last day, today).
	if _, err := m.Report("overview", Scope{}, Filter{To: now.Add(24 * time.Hour)}, now); err != nil {
		t.Errorf("to=tomorrow: %v", err)
	}
	if _, err := m.Report("nope", Scope{}, Filter{}, now); !errors.Is(err, ErrUnknownReport) {
		t.Errorf("unknown report: %v", err)
	}
}

func TestSnapshotRestoresAndResumes(t *testing.T) {
	t.Parallel()
	tr := reportstest.Generate(5, 1500)
	full := NewStore(Config{})
	half := NewStore(Config{})
	for i, e := range tr.Envelopes {
		full.Apply(uint64(i+1), e)
		if i < len(tr.Envelopes)/2 {
			half.Apply(uint64(i+1), e)
		}
	}
	var buf bytes.Buffer
	if err := half.Snapshot(&buf); err != nil {
		t.Fatal(err)
	}
	resumed := NewStore(Config{})
	if err := resumed.Restore(&buf); err != nil {
		t.Fatal(err)
	}
	if resumed.Sequence() != uint64(len(tr.Envelopes)/2) {
		t.Fatalf("restored at %d", resumed.Sequence())
	}
	for i, e := range tr.Envelopes {
		resumed.Apply(uint64(i+1), e) // the first half is skipped by sequence
	}
	if resumed.Events() != full.Events() {
		t.Fatalf("events %d, want %d", resumed.Events(), full.Events())
	}
	for _, name := range Reports {
		a, _ := full.Report(name, Scope{}, Filter{}, now)
		b, _ := resumed.Report(name, Scope{}, Filter{}, now)
		ja, _ := json.Marshal(a)
		jb, _ := json.Marshal(b)
		if !bytes.Equal(ja, jb) {
			t.Errorf("%s differs after restore", name)
		}
	}
}

// The gaps' constraint breakdown and victim groups equal counts made
// from the generator's truths.
func TestGapConstraintsAndGroups(t *testing.T) {
	t.Parallel()
	tr := reportstest.Generate(3, 1500)
	m := build(t, tr)
	cons, groups := map[string]int{}, map[string]int{}
	for _, x := range tr.Truths {
		for k := range x.Excluded {
			cons[k[0]+"/"+k[1]]++
		}
		if len(x.Unmatched) == 0 {
			continue
		}
		for _, c := range x.Crimes {
			groups["crime/"+c]++
		}
		for _, n := range x.Needs {
			groups["need/"+n]++
		}
		groups["age_band/"+x.AgeBand]++
		groups[fmt.Sprintf("cross_border/%v", x.CrossBorder)]++
	}
	tb := report(t, m, "gaps/constraints", Scope{}, Filter{})
	shown := 0
	for _, r := range tb.Rows {
		k := r.Key["need"] + "/" + r.Key["constraint"]
		checkCell(t, "constraint "+k, r.Counts["referrals"], cons[k])
		if _, ok := r.Counts["referrals"].Value(); ok {
			shown++
		}
	}
	if len(tb.Rows) != len(cons) || shown == 0 {
		t.Errorf("constraints: %d rows, %d shown, want %d", len(tb.Rows), shown, len(cons))
	}
	gb := report(t, m, "gaps/groups", Scope{}, Filter{})
	checked := 0
	for _, r := range gb.Rows {
		k := r.Key["dimension"] + "/" + r.Key["value"]
		if want, ok := groups[k]; ok {
			checkCell(t, "group "+k, r.Counts["unmatched"], want)
			checked++
		}
	}
	if checked < 10 {
		t.Errorf("groups: %d rows checked", checked)
	}
}

// The impact tables by country and quarter equal counts made from the
// generator's truths: outcomes count needs, feedback counts referrals.
func TestImpactByCountryAndQuarter(t *testing.T) {
	t.Parallel()
	tr := reportstest.GenerateSpan(5, 1500, 365*24*time.Hour)
	m := build(t, tr)
	quarter := func(d time.Time) string { return fmt.Sprintf("%d-Q%d", d.Year(), (int(d.Month())-1)/3+1) }
	outcomes, feedback := map[string]int{}, map[string]int{}
	quarters := map[string]bool{}
	for _, x := range tr.Truths {
		q := quarter(x.Day)
		quarters[q] = true
		for k := range x.Outcomes {
			outcomes[q+"/"+x.Country+"/"+k[1]]++
		}
		for k := range x.Feedback {
			feedback[q+"/"+x.Country+"/"+k[0]+"/"+k[1]]++
		}
	}
	if len(quarters) < 2 {
		t.Fatalf("test traffic spans quarters %v", quarters)
	}
	for name, want := range map[string]map[string]int{"impact/outcomes": outcomes, "impact/feedback": feedback} {
		tb := report(t, m, name, Scope{}, Filter{By: "quarter"})
		shown := 0
		for _, r := range tb.Rows {
			var k []string
			for _, d := range tb.Dims {
				k = append(k, r.Key[d])
			}
			checkCell(t, name+" "+strings.Join(k, "/"), r.Counts[tb.Columns[0]], want[strings.Join(k, "/")])
			if _, ok := r.Counts[tb.Columns[0]].Value(); ok {
				shown++
			}
		}
		if len(tb.Rows) != len(want) || shown == 0 {
			t.Errorf("%s: %d rows, %d shown, want %d", name, len(tb.Rows), shown, len(want))
		}
	}
	if _, err := m.Report("times", Scope{}, Filter{By: "year"}, now); err == nil {
		t.Error("by=year accepted")
	}
}

// The model forgets the referrals quiet for longer than the horizon, and
// the counts are those of a model that forgets nothing.
func TestModelForgetsQuietReferrals(t *testing.T) {
	t.Parallel()
	tr := reportstest.GenerateSpan(9, 1200, 2*365*24*time.Hour)
	bounded := New(Config{})
	all := New(Config{Horizon: 100 * 365 * 24 * time.Hour})
	for i, e := range tr.Sorted() {
		bounded.Apply(uint64(i+1), e)
		all.Apply(uint64(i+1), e)
	}
	last := tr.Truths[0].Requested
	for _, x := range tr.Truths {
		if x.Requested.After(last) {
			last = x.Requested
		}
	}
	recent := 0
	for _, x := range tr.Truths {
		if x.Requested.After(last.Add(-HorizonDefault - 72*time.Hour)) {
			recent++
		}
	}
	if all.Open() != len(tr.Truths) || bounded.Open() > recent || bounded.Open() == 0 {
		t.Errorf("kept %d referrals of %d (unbounded %d), at most %d within the horizon", bounded.Open(), len(tr.Truths), all.Open(), recent)
	}
	for _, name := range Reports {
		a := report(t, bounded, name, Scope{}, Filter{})
		b := report(t, all, name, Scope{}, Filter{})
		ja, _ := json.Marshal(a)
		jb, _ := json.Marshal(b)
		if !bytes.Equal(ja, jb) {
			t.Errorf("%s differs once quiet referrals are forgotten", name)
		}
	}
	// A referral's event after the horizon is not counted.
	x := tr.Truths[0]
	late, err := events.New("/orgs/"+x.Referrer, x.ID, &events.Feedback{Answers: []events.Answer{{Question: "safe", Value: 1}}},
		events.WithTime(x.Requested.Add(HorizonDefault+30*24*time.Hour)))
	if err == nil && late.Time().Before(time.Now()) {
		before := bounded.Events()
		bounded.Apply(0, &events.Envelope{Event: late, Payload: &events.Feedback{Answers: []events.Answer{{Question: "safe", Value: 1}}}})
		fb := report(t, bounded, "feedback", Scope{}, Filter{})
		for _, r := range fb.Rows {
			if r.Key["question"] == "safe" {
				t.Errorf("late feedback counted (events %d)", before)
			}
		}
	}
}
