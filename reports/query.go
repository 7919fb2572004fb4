package reports

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/invictus-network/invictus/events"
)

// Reports lists the report names [Model.Report] answers, in order.
var Reports = []string{"overview", "flows/countries", "flows/organisations", "organisations", "times", "outcomes", "gaps", "gaps/constraints", "gaps/groups", "groups", "feedback", "impact/outcomes", "impact/feedback"}

// Filter narrows a report. Every field is optional.
type Filter struct {
	// From and To bound the day the referral was requested: From
	// included, To excluded (UTC days).
	From, To time.Time
	// Country keeps what touches that country: the victim is there, or
	// the referrer or the offered organisation is based there.
	Country string
	// Need keeps referrals with this need.
	Need string
	// Victim-group codes: a referral is kept if its profile has them.
	Crime, Flag, AgeBand, Gender, Language, Channel string
	// CrossBorder, when set, keeps cross-border referrals (true) or the
	// others (false).
	CrossBorder *bool
	// By adds a period dimension, the period the referral was requested
	// in: "week" (ISO, 2026-W05), "month" (2026-01) or "quarter"
	// (2026-Q1); "" for none.
	By string
}

// Scope is what a coordinator may see: Country "" for a European
// coordinator (everything), else a national coordinator's country.
type Scope struct {
	Country string
}

// ErrForbidden reports a filter on a country the scope does not cover.
var ErrForbidden = errors.New("reports: the country is outside the coordinator's scope")

// ErrUnknownReport reports a report name not in [Reports].
var ErrUnknownReport = errors.New("reports: no such report")

// FilterError is a filter value that is not valid; Field names it.
type FilterError struct {
	Field, Message string
}

func (e *FilterError) Error() string { return "reports: " + e.Field + ": " + e.Message }

// Check returns a *FilterError for a bad value, or ErrForbidden for a
// country outside scope. now bounds the period: a From after now, or a To
// after tomorrow, is in the future.
func (f Filter) Check(s Scope, now time.Time) error {
	switch {
	case !f.From.IsZero() && f.From.After(now):
		return &FilterError{"from", "is in the future"}
	case !f.From.IsZero() && !f.To.IsZero() && !f.To.After(f.From):
		return &FilterError{"to", "is not after from"}
	case !f.To.IsZero() && dayOf(f.To) > dayOf(now)+1:
		// To is the day after the last: tomorrow at the latest.
		return &FilterError{"to", "is in the future (the day after the last day is tomorrow at the latest)"}
	case f.Country != "" && !events.IsCountry(f.Country):
		return &FilterError{"country", "is not an ISO 3166-1 alpha-2 code of the network"}
	case f.Need != "" && !events.IsNeed(f.Need):
		return &FilterError{"need", "is not a need code"}
	case f.Crime != "" && !events.IsCrime(f.Crime):
		return &FilterError{"crime", "is not a crime code"}
	case f.Flag != "" && !events.IsFlag(f.Flag):
		return &FilterError{"flag", "is not an Art. 22 flag code"}
	case f.AgeBand != "" && !slices.Contains([]string{"child", "youth", "adult", "older"}, f.AgeBand):
		return &FilterError{"age_band", "is not child, youth, adult or older"}
	case f.Gender != "" && !slices.Contains([]string{"female", "male", "non_binary", "other"}, f.Gender):
		return &FilterError{"gender", "is not female, male, non_binary or other"}
	case f.Channel != "" && !slices.Contains(channelCodes, f.Channel):
		return &FilterError{"channel", "is not a channel code"}
	case f.Language != "" && !events.IsLanguage(f.Language):
		return &FilterError{"language", "is not a language code"}
	case f.By != "" && f.By != "week" && f.By != "month" && f.By != "quarter":
		return &FilterError{"by", "is not week, month or quarter"}
	}
	if s.Country != "" && f.Country != "" && f.Country != s.Country {
		return ErrForbidden
	}
	return nil
}

// keep reports whether a referral with dimensions d passes the filter's
// profile and period parts.
func (f Filter) keep(d *dims) bool {
	day := func(t time.Time) int32 { return dayOf(t) }
	switch {
	case !f.From.IsZero() && d.Day < day(f.From):
		return false
	case !f.To.IsZero() && d.Day >= day(f.To):
		return false
	case f.Need != "" && d.Needs&mask([]string{f.Need}, events.Needs) == 0:
		return false
	case f.Crime != "" && d.Crimes&mask([]string{f.Crime}, events.Crimes) == 0:
		return false
	case f.Flag != "" && d.Flags&mask([]string{f.Flag}, events.Flags) == 0:
		return false
	case f.Channel != "" && d.Channels&mask([]string{f.Channel}, channelCodes) == 0:
		return false
	case f.AgeBand != "" && d.AgeBand != f.AgeBand:
		return false
	case f.Gender != "" && d.Gender != f.Gender:
		return false
	case f.Language != "" && !slices.Contains(strings.Split(d.Languages, ","), f.Language):
		return false
	case f.CrossBorder != nil && d.CrossBorder != *f.CrossBorder:
		return false
	}
	return true
}

// touches reports whether fact f (of a referral with dims d) involves
// country cc: the victim is there, the referrer is, or the organisation
// (or country) the fact is about is.
func touches(f *factView, d *dims, cc string) bool {
	if d.Country == cc || countryOf(d.Referrer) == cc {
		return true
	}
	switch f.Fam {
	case famFlowCountry:
		return f.B == cc
	case famFlowOrg, famReminded, famAcceptTime:
		return countryOf(f.B) == cc
	}
	return false
}

// period returns the label of day in the By unit.
func period(by string, day int32) string {
	t := time.Unix(int64(day)*86400, 0).UTC()
	switch by {
	case "week":
		y, w := t.ISOWeek()
		return fmt.Sprintf("%04d-W%02d", y, w)
	case "month":
		return t.Format("2006-01")
	case "quarter":
		return fmt.Sprintf("%04d-Q%d", t.Year(), (int(t.Month())-1)/3+1)
	}
	return ""
}

// acc accumulates the rows of a table by key.
type acc struct {
	t     *Table
	index map[string]int
	times map[string]map[int32]int32 // row key + column → minutes histogram
}

func newAcc(report string, dims, cols []string) *acc {
	return &acc{t: &Table{Report: report, Unit: "referrals", Dims: dims, Columns: cols, Totals: map[string]*Count{}},
		index: map[string]int{}, times: map[string]map[int32]int32{}}
}

func (a *acc) add(key []string, col string, c *cell, timed bool) {
	k := strings.Join(key, "\x00")
	i, ok := a.index[k]
	if !ok {
		i = len(a.t.Rows)
		a.index[k] = i
		r := Row{Key: map[string]string{}, Counts: map[string]*Count{}}
		for j, d := range a.t.Dims {
			r.Key[d] = key[j]
		}
		for _, c := range a.t.Columns {
			r.Counts[c] = &Count{}
		}
		a.t.Rows = append(a.t.Rows, r)
	}
	a.t.Rows[i].Counts[col].n += c.N
	if timed {
		h := a.times[k+"\x00"+col]
		if h == nil {
			h = map[int32]int32{}
			a.times[k+"\x00"+col] = h
		}
		for m, n := range c.Times {
			h[m] += n
		}
	}
}

// finish totals, sorts and suppresses the table, then derives the stats
// that stats asks for from visible counts only.
func (a *acc) finish(rowGroup []string, stats func(r *Row, key string, times map[string]map[int32]int32)) *Table {
	t := a.t
	for _, c := range t.Columns {
		t.Totals[c] = &Count{}
		for _, r := range t.Rows {
			t.Totals[c].n += r.Counts[c].n
		}
	}
	keys := make(map[*Row]string, len(t.Rows))
	sortRows(t.Rows, t.Dims)
	for i := range t.Rows {
		var k []string
		for _, d := range t.Dims {
			k = append(k, t.Rows[i].Key[d])
		}
		keys[&t.Rows[i]] = strings.Join(k, "\x00")
	}
	t.rowGroup = rowGroup
	t.suppress()
	if stats != nil {
		for i := range t.Rows {
			stats(&t.Rows[i], keys[&t.Rows[i]], a.times)
		}
	}
	if t.Rows == nil {
		t.Rows = []Row{}
	}
	return t
}

// median returns the lower median of a minutes histogram.
func median(h map[int32]int32) float64 {
	var total int32
	ks := make([]int32, 0, len(h))
	for k, n := range h {
		ks = append(ks, k)
		total += n
	}
	slices.Sort(ks)
	want := (total - 1) / 2
	for _, k := range ks {
		if want < h[k] {
			return float64(k)
		}
		want -= h[k]
	}
	return 0
}

func ratio(a, b *Count) *float64 {
	x, ok1 := a.Value()
	y, ok2 := b.Value()
	if !ok1 || !ok2 || y == 0 {
		return nil
	}
	v := float64(int(float64(x)/float64(y)*10000+0.5)) / 10000
	return &v
}

func medianOf(c *Count, h map[int32]int32) *float64 {
	if n, ok := c.Value(); !ok || n < MinCell || len(h) == 0 {
		return nil
	}
	v := median(h)
	return &v
}

// Report computes the named report over what scope may see, filtered.
// It returns ErrUnknownReport, a *FilterError or ErrForbidden (see
// [Filter.Check]) before computing anything.
func (m *Model) Report(name string, s Scope, f Filter, now time.Time) (*Table, error) {
	if !slices.Contains(Reports, name) {
		return nil, ErrUnknownReport
	}
	if err := f.Check(s, now); err != nil {
		return nil, err
	}
	// each calls fn for every fact of fam the scope and filter keep.
	each := func(fams []family, fn func(fc *factView, d *dims, c *cell)) {
		for i := range m.facts {
			raw := &m.facts[i]
			if !slices.Contains(fams, raw.Fam) {
				continue
			}
			d := &m.dims[raw.Dims]
			if !f.keep(d) {
				continue
			}
			v := m.view(raw)
			fc := &v
			if s.Country != "" && !touches(fc, d, s.Country) {
				continue
			}
			if f.Country != "" && !touches(fc, d, f.Country) {
				continue
			}
			fn(fc, d, &m.cells[i])
		}
	}
	flowCols := []string{flowOffered, flowAccepted, flowDeclined, flowExpired}
	withPeriod := func(dims ...string) []string {
		if f.By != "" {
			return append([]string{"period"}, dims...)
		}
		return dims
	}
	key := func(d *dims, parts ...string) []string {
		if f.By != "" {
			return append([]string{period(f.By, d.Day)}, parts...)
		}
		return parts
	}
	switch name {
	case "overview":
		a := newAcc(name, withPeriod(), []string{"requested", "offered", "accepted", "contacted", "unmatched"})
		each([]family{famRequested, famContact, famAny}, func(fc *factView, d *dims, c *cell) {
			switch fc.Fam {
			case famRequested:
				a.add(key(d), "requested", c, false)
			case famContact:
				a.add(key(d), "contacted", c, false)
			case famAny:
				a.add(key(d), fc.Code, c, false)
			}
		})
		return a.finish(nil, nil), nil
	case "flows/countries", "flows/organisations":
		fam := famFlowCountry
		if name == "flows/organisations" {
			fam = famFlowOrg
		}
		a := newAcc(name, withPeriod("from", "to"), flowCols)
		each([]family{fam}, func(fc *factView, d *dims, c *cell) { a.add(key(d, fc.A, fc.B), fc.Code, c, false) })
		return a.finish(flowCols, func(r *Row, _ string, _ map[string]map[int32]int32) {
			r.Stats = map[string]*float64{"acceptance_rate": ratio(r.Counts[flowAccepted], r.Counts[flowOffered])}
		}), nil
	case "organisations":
		cols := append(slices.Clone(flowCols), "reminded")
		a := newAcc(name, withPeriod("organisation"), cols)
		each([]family{famFlowOrg, famReminded, famAcceptTime}, func(fc *factView, d *dims, c *cell) {
			switch fc.Fam {
			case famFlowOrg:
				a.add(key(d, fc.B), fc.Code, c, false)
			case famReminded:
				a.add(key(d, fc.B), "reminded", c, false)
			case famAcceptTime:
				a.add(key(d, fc.B), flowAccepted, &cell{Times: c.Times}, true)
			}
		})
		return a.finish(flowCols, func(r *Row, k string, times map[string]map[int32]int32) {
			r.Stats = map[string]*float64{
				"acceptance_rate":          ratio(r.Counts[flowAccepted], r.Counts[flowOffered]),
				"missed_rate":              ratio(r.Counts[flowExpired], r.Counts[flowOffered]),
				"median_minutes_to_accept": medianOf(r.Counts[flowAccepted], times[k+"\x00"+flowAccepted]),
			}
		}), nil
	case "times":
		a := newAcc(name, withPeriod("country"), []string{"requested", "contacted"})
		each([]family{famRequested, famContact}, func(fc *factView, d *dims, c *cell) {
			if fc.Fam == famRequested {
				a.add(key(d, d.Country), "requested", c, false)
			} else {
				a.add(key(d, d.Country), "contacted", c, true)
			}
		})
		return a.finish(nil, func(r *Row, k string, times map[string]map[int32]int32) {
			r.Stats = map[string]*float64{
				"contact_rate":                    ratio(r.Counts["contacted"], r.Counts["requested"]),
				"median_minutes_to_first_contact": medianOf(r.Counts["contacted"], times[k+"\x00contacted"]),
			}
		}), nil
	case "outcomes":
		a := newAcc(name, withPeriod("need", "outcome"), []string{"referrals"})
		each([]family{famOutcome}, func(fc *factView, d *dims, c *cell) {
			if f.Need == "" || fc.A == f.Need {
				a.add(key(d, fc.A, fc.Code), "referrals", c, false)
			}
		})
		return a.finish(nil, nil), nil
	case "gaps":
		a := newAcc(name, withPeriod("country", "region", "need", "reason"), []string{"referrals"})
		each([]family{famUnmatched}, func(fc *factView, d *dims, c *cell) {
			if f.Need == "" || fc.A == f.Need {
				a.add(key(d, d.Country, d.Region, fc.A, fc.Code), "referrals", c, false)
			}
		})
		return a.finish(nil, nil), nil
	case "gaps/constraints":
		a := newAcc(name, withPeriod("need", "constraint"), []string{"referrals"})
		each([]family{famExcluded}, func(fc *factView, d *dims, c *cell) {
			if f.Need == "" || fc.A == f.Need {
				a.add(key(d, fc.A, fc.Code), "referrals", c, false)
			}
		})
		return a.finish(nil, nil), nil
	case "gaps/groups":
		// Referrals with a need no service took, by victim group.
		a := newAcc(name, []string{"dimension", "value"}, []string{"unmatched"})
		each([]family{famAny}, func(fc *factView, d *dims, c *cell) {
			if fc.Code != "unmatched" {
				return
			}
			for dim, vals := range groupsOf(d) {
				for _, v := range vals {
					a.add([]string{dim, v}, "unmatched", c, false)
				}
			}
		})
		return a.finish(nil, nil), nil
	case "impact/outcomes":
		// The outcomes of the victims' needs by the victim's country: a
		// referral counts once for each need with that outcome.
		a := newAcc(name, withPeriod("country", "outcome"), []string{"needs"})
		a.t.Unit = "needs"
		each([]family{famOutcome}, func(fc *factView, d *dims, c *cell) {
			if f.Need == "" || fc.A == f.Need {
				a.add(key(d, d.Country, fc.Code), "needs", c, false)
			}
		})
		return a.finish(nil, nil), nil
	case "impact/feedback":
		// The victims' answers by the victim's country.
		a := newAcc(name, withPeriod("country", "question", "answer"), []string{"referrals"})
		each([]family{famFeedback, famMissing}, func(fc *factView, d *dims, c *cell) {
			if fc.Fam == famMissing {
				a.add(key(d, d.Country, "missing", fc.Code), "referrals", c, false)
			} else {
				a.add(key(d, d.Country, fc.A, fc.Code), "referrals", c, false)
			}
		})
		return a.finish(nil, nil), nil
	case "groups":
		a := newAcc(name, []string{"dimension", "value"}, []string{"requested", "contacted"})
		each([]family{famRequested, famContact}, func(fc *factView, d *dims, c *cell) {
			col := "requested"
			if fc.Fam == famContact {
				col = "contacted"
			}
			for dim, vals := range groupsOf(d) {
				for _, v := range vals {
					a.add([]string{dim, v}, col, c, false)
				}
			}
		})
		return a.finish(nil, nil), nil
	case "feedback":
		a := newAcc(name, withPeriod("question", "answer"), []string{"referrals"})
		each([]family{famFeedback, famMissing}, func(fc *factView, d *dims, c *cell) {
			if fc.Fam == famMissing {
				a.add(key(d, "missing", fc.Code), "referrals", c, false)
			} else {
				a.add(key(d, fc.A, fc.Code), "referrals", c, false)
			}
		})
		return a.finish(nil, nil), nil
	}
	return nil, ErrUnknownReport
}

// groupsOf returns the victim-group values of a referral by dimension.
func groupsOf(d *dims) map[string][]string {
	g := map[string][]string{
		"crime":        unmask(d.Crimes, events.Crimes),
		"flag":         unmask(d.Flags, events.Flags),
		"channel":      unmask(d.Channels, channelCodes),
		"age_band":     {d.AgeBand},
		"language":     strings.Split(d.Languages, ","),
		"cross_border": {strconv.FormatBool(d.CrossBorder)},
		"need":         unmask(d.Needs, events.Needs),
	}
	if d.Gender != "" {
		g["gender"] = []string{d.Gender}
	}
	return g
}
