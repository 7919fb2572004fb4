package routing

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/invictus-network/invictus/directory"
)

// TestNameRankOfDerivedSnapshots holds the name ranks of a table derived
// from the previous one (table.rankNames merging the services of the
// chunks that changed into the previous order) to the order of every
// service sorted by name, then id, as query.better once compared them:
// through renames, additions, deletions, and a rebuild that numbers every
// service again.
func TestNameRankOfDerivedSnapshots(t *testing.T) {
	t.Parallel()
	d := directory.Generate(5000, 17)
	// Twins: services with the same name, ordered by id.
	for i := 0; i < len(d.Services); i += 97 {
		d.Services[i].Name = d.Services[(i+1)%len(d.Services)].Name
	}
	snap := directory.NewIndex(d, 1)
	tab := buildTable(snap, nil)
	checkRanks(t, "fresh", snap, tab)
	renamed := d.Services[3]
	renamed.Name = "Aaa first of all"
	twin := d.Services[1500]
	twin.ID, twin.Name = "zz.twin.s1", d.Services[4000].Name
	added := d.Services[10]
	added.ID, added.Name = "zz.added.s1", "Mmm in the middle"
	rev := uint64(2)
	steps := [][]directory.Change{
		{{Key: directory.ServiceKey(renamed.ID), Service: &renamed}},
		{{Key: directory.ServiceKey(added.ID), Service: &added}, {Key: directory.ServiceKey(twin.ID), Service: &twin}},
		{{Key: directory.ServiceKey(d.Services[1100].ID), Deleted: true}, {Key: directory.ServiceKey(d.Services[2].ID), Deleted: true}},
	}
	// Enough additions for With to rebuild the postings.
	var many []directory.Change
	for k := range directory.IndexRebuildMin + 10 {
		s := d.Services[k*7]
		s.ID, s.Name = fmt.Sprintf("zz.many%d.s1", k), fmt.Sprintf("Service %d of many", k%40)
		many = append(many, directory.Change{Key: directory.ServiceKey(s.ID), Service: &s})
	}
	steps = append(steps, many)
	unchanged := 0
	for k, changes := range steps {
		for i := range changes {
			changes[i].Revision = rev
		}
		rev++
		next := snap.With(changes...)
		nt := buildTable(next, tab)
		for ci := range min(len(tab.chunks), len(nt.chunks)) {
			if tab.chunks[ci] == nt.chunks[ci] {
				unchanged++
			}
		}
		checkRanks(t, fmt.Sprintf("step %d", k), next, nt)
		snap, tab = next, nt
	}
	if unchanged == 0 {
		t.Fatal("no chunk was shared: the merge was never tried")
	}
}

// checkRanks fails t unless tab's order is that of snap's services sorted
// by name, then id.
func checkRanks(t *testing.T, what string, snap *directory.Index, tab *table) {
	t.Helper()
	var want []int32
	for i := range int32(snap.Len()) {
		if snap.Service(i) != nil {
			want = append(want, i)
		}
	}
	slices.SortFunc(want, func(a, b int32) int {
		sa, sb := snap.Service(a), snap.Service(b)
		if c := strings.Compare(sa.Name, sb.Name); c != 0 {
			return c
		}
		return strings.Compare(sa.ID, sb.ID)
	})
	if !slices.Equal(tab.order, want) {
		t.Fatalf("%s: %d services in name order, want %d, first difference at %d", what, len(tab.order), len(want), firstDiff(tab.order, want))
	}
	for k, i := range want {
		if tab.rank[i] != int32(k) {
			t.Fatalf("%s: service %d ranks %d, want %d", what, i, tab.rank[i], k)
		}
	}
}

func firstDiff(a, b []int32) int {
	for k := range min(len(a), len(b)) {
		if a[k] != b[k] {
			return k
		}
	}
	return min(len(a), len(b))
}
