package reports

import (
	"cmp"
	"encoding/json"
	"slices"
	"strings"
)

// MinCell is the smallest count of referrals a report shows; a smaller
// non-zero count is shown as "<5".
const MinCell = 5

// Hidden is how a count from 1 to MinCell-1 is written.
const Hidden = "<5"

// Complement is how a count hidden only so that a small one cannot be
// derived from totals is written (it is MinCell or more).
const Complement = "suppressed"

// Count is one cell of a table: a number of referrals, shown or
// suppressed. A suppressed count marshals as "<5" and keeps no number.
type Count struct {
	n      int
	hidden bool
	small  bool
}

// Value returns the count and true, or 0 and false when it is suppressed.
func (c Count) Value() (int, bool) {
	if c.hidden {
		return 0, false
	}
	return c.n, true
}

// MarshalJSON writes the number, "<5" or "suppressed" (a complement).
func (c Count) MarshalJSON() ([]byte, error) {
	switch {
	case c.small:
		return []byte(`"<5"`), nil
	case c.hidden:
		return json.Marshal(Complement)
	}
	return json.Marshal(c.n)
}

// Row is one line of a table: the values of its dimensions, its counts
// by column and figures derived from them (rates, medians), null when a
// count they come from is suppressed or too small.
type Row struct {
	Key    map[string]string   `json:"key"`
	Counts map[string]*Count   `json:"counts"`
	Stats  map[string]*float64 `json:"stats,omitempty"`
}

// Table is one report: rows by dimensions, counts of referrals by
// column, and the totals of each column (the sum of its rows: a referral
// in two rows counts in both).
type Table struct {
	Report  string            `json:"report"`
	Unit    string            `json:"unit"`
	Dims    []string          `json:"dimensions"`
	Columns []string          `json:"columns"`
	Rows    []Row             `json:"rows"`
	Totals  map[string]*Count `json:"totals"`
	// rowGroup lists columns of which the first is at least the sum of
	// the others within a row (offered ≥ accepted + declined + expired).
	rowGroup []string
}

// suppress hides every count from 1 to MinCell-1 (primary suppression),
// then, until nothing changes, every group of cells with a visible or
// derivable sum that has exactly one hidden member gets a second one
// hidden: the smallest visible non-zero member, or else the sum itself
// (secondary suppression). The groups are: each column with its total;
// for each dimension, the rows that share every other dimension (their
// sum is what a query filtered on those dimensions shows); and the
// columns of rowGroup within each row.
func (t *Table) suppress() {
	type group struct {
		members []*Count
		total   *Count
	}
	var groups []group
	for _, c := range t.Columns {
		g := group{total: ptrOf(t.Totals, c)}
		for i := range t.Rows {
			g.members = append(g.members, ptrOf(t.Rows[i].Counts, c))
		}
		groups = append(groups, g)
		if len(t.Dims) < 2 {
			continue
		}
		for d := range t.Dims {
			by := map[string][]*Count{}
			var keys []string
			for i := range t.Rows {
				var k strings.Builder
				for o, name := range t.Dims {
					if o != d {
						k.WriteString(t.Rows[i].Key[name])
						k.WriteByte(0)
					}
				}
				if _, ok := by[k.String()]; !ok {
					keys = append(keys, k.String())
				}
				by[k.String()] = append(by[k.String()], ptrOf(t.Rows[i].Counts, c))
			}
			for _, k := range keys {
				groups = append(groups, group{members: by[k]})
			}
		}
	}
	if len(t.rowGroup) > 1 {
		for i := range t.Rows {
			g := group{total: ptrOf(t.Rows[i].Counts, t.rowGroup[0])}
			for _, c := range t.rowGroup[1:] {
				g.members = append(g.members, ptrOf(t.Rows[i].Counts, c))
			}
			groups = append(groups, g)
		}
	}
	for i := range t.Rows {
		for _, v := range t.Rows[i].Counts {
			v.hidden = v.n > 0 && v.n < MinCell
			v.small = v.hidden
		}
	}
	for _, v := range t.Totals {
		v.hidden = v.n > 0 && v.n < MinCell
		v.small = v.hidden
	}
	for changed := true; changed; {
		changed = false
		for _, g := range groups {
			if g.total != nil && g.total.hidden {
				continue
			}
			hidden := 0
			var cand *Count
			for _, m := range g.members {
				switch {
				case m.hidden:
					hidden++
				case m.n > 0 && (cand == nil || m.n < cand.n):
					cand = m
				}
			}
			if hidden != 1 {
				continue
			}
			switch {
			case cand != nil:
				cand.hidden = true
				changed = true
			case g.total != nil && g.total.n > 0:
				g.total.hidden = true
				changed = true
			}
		}
	}
	// Forget the numbers behind what is hidden.
	for i := range t.Rows {
		for _, v := range t.Rows[i].Counts {
			if v.hidden {
				v.n = 0
			}
		}
	}
	for _, v := range t.Totals {
		if v.hidden {
			v.n = 0
		}
	}
}

func ptrOf(m map[string]*Count, k string) *Count {
	if m[k] == nil {
		m[k] = &Count{}
	}
	return m[k]
}

func sortRows(rows []Row, dims []string) {
	slices.SortFunc(rows, func(a, b Row) int {
		for _, d := range dims {
			if c := cmp.Compare(a.Key[d], b.Key[d]); c != 0 {
				return c
			}
		}
		return 0
	})
}
