package routing_test

import (
	"fmt"
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
