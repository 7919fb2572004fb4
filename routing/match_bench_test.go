package routing_test

import (
	"fmt"
	"math/bits"
	"slices"
	"testing"
	"time"

	"github.com/invictus-network/invictus/directory"
	"github.com/invictus-network/invictus/routing"
)

// BenchmarkMatch matches sampled profiles (routing.SampleProfiles) against
// generated directories of 1,000, 10,000 and 100,000 services and reports
// the 50th and 99th percentile latency of one match besides the mean.
// Run with: go test -run '^$' -bench Match -benchmem ./routing/
func BenchmarkMatch(b *testing.B) {
	profiles := routing.SampleProfiles(1000, 2)
	for _, n := range []int{1000, 10000, 100000} {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			snap := directory.NewIndex(directory.Generate(n, 1), 1)
			m := routing.NewMatcher(routing.Config{})
			at := routing.At(time.Date(2026, 11, 27, 11, 0, 0, 0, time.UTC))
			if _, err := m.Match(snap, profiles[0], at); err != nil { // builds the feature table
				b.Fatal(err)
			}
			lat := make([]time.Duration, 0, 4096)
			b.ReportAllocs()
			b.ResetTimer()
			k := 0
			for b.Loop() {
				start := time.Now()
				if _, err := m.Match(snap, profiles[k%len(profiles)], at); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
				k++
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
			b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
		})
	}
}

// TestCandidateBits checks that the candidate bitset Match reads selects
// exactly the services of Index.Candidates, on a fresh index and on one
// with an overlay of changed, added and deleted services.
func TestCandidateBits(t *testing.T) {
	t.Parallel()
	d := directory.Generate(3000, 3)
	base := directory.NewIndex(d, 1)
	changed := d.Services[10]
	changed.Needs = []string{"safety.shelter"}
	changed.Capacity.Status = "full"
	added := d.Services[20]
	added.ID = "zz.added.s0"
	overlay := base.With(
		directory.Change{Key: directory.ServiceKey(changed.ID), Revision: 2, Service: &changed},
		directory.Change{Key: directory.ServiceKey(added.ID), Revision: 3, Service: &added},
		directory.Change{Key: directory.ServiceKey(d.Services[30].ID), Revision: 4, Deleted: true},
	)
	if overlay.Pending() == 0 {
		t.Fatal("the changes made no overlay")
	}
	var words []uint64
	var list []int32
	for _, snap := range []*directory.Index{base, overlay} {
		for k, p := range routing.SampleProfiles(300, 5) {
			q := directory.Query{Needs: p.Needs, Country: p.Location.Country, Region: p.Location.Region, Lat: p.Location.Lat, Lon: p.Location.Lon}
			if r := p.Location.ResidenceCountry; r != "" && r != p.Location.Country {
				q.RemoteCountries = []string{r}
			}
			list = snap.Candidates(q, list[:0])
			words = snap.CandidateBits(q, words)
			if len(words) != (snap.Len()+63)/64 {
				t.Fatalf("profile %d: %d words for %d services", k, len(words), snap.Len())
			}
			var got []int32
			for wi, w := range words {
				for ; w != 0; w &= w - 1 {
					got = append(got, int32(wi*64+bits.TrailingZeros64(w)))
				}
			}
			if !slices.Equal(got, list) {
				t.Fatalf("profile %d: CandidateBits selects %d services, Candidates %d", k, len(got), len(list))
			}
		}
	}
}

// BenchmarkMatchWarmCold tells how much of the slowest matches at 100,000
// services is computing and how much is waiting for memory: for each of
// the sampled profiles, the least time of 7 matches, either each profile
// 7 times in a row (warm: its chunks stay in the caches) or the 1,000
// profiles one after another 7 times (cold: each match finds the caches
// full of the previous profile's chunks, as `invictus bench match` does).
// It reports the 50th and 99th percentiles of those least times.
// Run with: go test -run '^$' -bench MatchWarmCold -benchtime 1x ./routing/
func BenchmarkMatchWarmCold(b *testing.B) {
	profiles := routing.SampleProfiles(1000, 1)
	snap := directory.NewIndex(directory.Generate(100000, 1), 1)
	m := routing.NewMatcher(routing.Config{})
	at := routing.At(time.Date(2026, 11, 27, 11, 0, 0, 0, time.UTC))
	if _, err := m.Match(snap, profiles[0], at); err != nil { // builds the feature table
		b.Fatal(err)
	}
	least := make([]time.Duration, len(profiles))
	match := func(k int) {
		start := time.Now()
		if _, err := m.Match(snap, profiles[k], at); err != nil {
			b.Fatal(err)
		}
		least[k] = min(least[k], time.Since(start))
	}
	report := func(what string) {
		slices.Sort(least)
		b.ReportMetric(float64(least[len(least)/2].Nanoseconds()), what+"-p50-ns")
		b.ReportMetric(float64(least[len(least)*99/100].Nanoseconds()), what+"-p99-ns")
	}
	for b.Loop() {
		for k := range least {
			least[k] = time.Hour
			for range 7 {
				match(k)
			}
		}
		report("warm")
		for k := range least {
			least[k] = time.Hour
		}
		for range 7 {
			for k := range least {
				match(k)
			}
		}
		report("cold")
	}
}
