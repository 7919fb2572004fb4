package directory

import (
	"slices"
	"testing"

	"github.com/invictus-network/invictus/events"
)

func TestGenerateIsValidAndDeterministic(t *testing.T) {
	t.Parallel()
	a := Generate(3000, 11)
	if len(a.Services) != 3000 {
		t.Fatalf("%d services", len(a.Services))
	}
	if err := a.Validate(); err != nil {
		t.Fatal(err)
	}
	if mustJSON(t, a) != mustJSON(t, Generate(3000, 11)) {
		t.Fatal("same seed, different directory")
	}
	if mustJSON(t, a) == mustJSON(t, Generate(3000, 12)) {
		t.Fatal("the seed changes nothing")
	}
	if !slices.IsSortedFunc(a.Services, func(x, y Service) int {
		if x.ID < y.ID {
			return -1
		}
		return 1
	}) {
		t.Fatal("services are not sorted")
	}
	for _, n := range []int{0, 1, 7} {
		if g := Generate(n, 1); len(g.Services) != n || g.Validate() != nil {
			t.Errorf("Generate(%d): %d services, %v", n, len(g.Services), g.Validate())
		}
	}
}

func TestGenerateDistributions(t *testing.T) {
	t.Parallel()
	const n = 20000
	d := Generate(n, 5)
	var remote, always, accepting int
	perCountry := map[string]int{}
	perNeed := map[string]int{}
	for _, s := range d.Services {
		if len(s.Needs) < 2 || len(s.Needs) > 6 {
			t.Fatalf("%s has %d needs", s.ID, len(s.Needs))
		}
		for _, x := range s.Needs {
			perNeed[x]++
		}
		perCountry[s.Area.Countries[0]]++
		if s.Area.Remote {
			remote++
		}
		if s.Hours.Always {
			always++
		}
		if s.Capacity.Status == events.CapacityAccepting {
			accepting++
		}
	}
	near := func(name string, got int, pct float64) {
		want := pct * n / 100
		if float64(got) < want*0.8 || float64(got) > want*1.2 {
			t.Errorf("%s: %d of %d, want about %.0f%%", name, got, n, pct)
		}
	}
	near("remote", remote, 10)
	near("24/7", always, 5)
	near("accepting", accepting, 80)
	if perCountry["fr"] <= perCountry["hr"]*5 || len(perCountry) != 7 {
		t.Errorf("countries %v", perCountry)
	}
	if perNeed[events.NeedInfoRights] <= perNeed[events.NeedCrossborderAssistance]*3 {
		t.Errorf("popular needs are not more likely: %v", perNeed)
	}
	if len(perNeed) != len(events.Needs) {
		t.Errorf("only %d needs used", len(perNeed))
	}
}

func BenchmarkGenerate10k(b *testing.B) {
	for b.Loop() {
		Generate(10000, 1)
	}
}

func BenchmarkValidate10k(b *testing.B) {
	d := Generate(10000, 1)
	for b.Loop() {
		if err := d.Validate(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkExportHSDS1k(b *testing.B) {
	d := Generate(1000, 1)
	for b.Loop() {
		if _, err := ExportHSDS(d); err != nil {
			b.Fatal(err)
		}
	}
}
