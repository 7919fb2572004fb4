package directory_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/invictus-network/invictus/directory"
	"github.com/invictus-network/invictus/events"
)

// benchSizes are the directory sizes of the index benchmarks.
var benchSizes = []int{1_000, 10_000, 100_000}

// generated caches Generate's directories across benchmarks.
var generated = map[int]*directory.Directory{}

func generatedDirectory(n int) *directory.Directory {
	if d, ok := generated[n]; ok {
		return d
	}
	d := directory.Generate(n, 1)
	generated[n] = d
	return d
}

// heapInUse returns the live heap after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkIndexBuild measures NewIndex over generated directories, and the
// memory the index takes (beyond the directory it points into) per 10,000
// services.
func BenchmarkIndexBuild(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			_, cached := generated[n]
			before := heapInUse()
			d := generatedDirectory(n)
			withDir := heapInUse()
			x := directory.NewIndex(d, 1)
			after := heapInUse()
			runtime.KeepAlive(x)
			b.ReportAllocs()
			for b.Loop() {
				x = directory.NewIndex(d, 1)
			}
			runtime.KeepAlive(x) // the last index built is used, not optimised away
			b.ReportMetric(float64(after-withDir)*10_000/float64(n), "index-bytes-per-10k-services")
			if !cached && withDir > before {
				b.ReportMetric(float64(withDir-before)*10_000/float64(n), "directory-bytes-per-10k-services")
			}
		})
	}
}

// benchQueries makes realistic needs-profile queries from the generated
// directory: a victim in the city of a random service (its NUTS 3 region
// and a point rounded to 0.01°), one to three needs drawn from the common
// ones, remote services of the same country wanted too.
func benchQueries(d *directory.Directory, k int) []directory.Query {
	r := rand.New(rand.NewPCG(7, 7))
	common := []string{
		events.NeedInfoRights, events.NeedSupportEmotional, events.NeedSupportPractical, events.NeedInfoCase,
		events.NeedJusticeLegalAid, events.NeedSafetyRiskAdvice, events.NeedSupportPsychological, events.NeedSafetyShelter,
	}
	qs := make([]directory.Query, 0, k)
	for len(qs) < k {
		s := &d.Services[r.IntN(len(d.Services))]
		if len(s.Locations) == 0 {
			continue
		}
		l := s.Locations[0]
		lat, lon := math.Round(l.Lat*100)/100, math.Round(l.Lon*100)/100
		q := directory.Query{Country: l.Country, Region: l.Region, Lat: &lat, Lon: &lon, RemoteCountries: []string{l.Country}}
		for range 1 + r.IntN(3) {
			if n := common[r.IntN(len(common))]; !slices.Contains(q.Needs, n) {
				q.Needs = append(q.Needs, n)
			}
		}
		if r.IntN(4) == 0 {
			q.RadiusKm = 25
		}
		qs = append(qs, q)
	}
	return qs
}

// BenchmarkIndexLookup measures Candidates on realistic queries and
// reports the median and 99th percentile of single lookups and the mean
// number of candidates returned.
func BenchmarkIndexLookup(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			x := directory.NewIndex(generatedDirectory(n), 1)
			qs := benchQueries(generatedDirectory(n), 1024)
			durations := make([]time.Duration, 1<<16)
			dst := make([]int32, 0, n)
			var found, ops int
			b.ReportAllocs()
			for b.Loop() {
				q := &qs[ops%len(qs)]
				start := time.Now()
				dst = x.Candidates(*q, dst[:0])
				durations[ops%len(durations)] = time.Since(start)
				found += len(dst)
				ops++
			}
			sample := slices.Clone(durations[:min(ops, len(durations))])
			slices.Sort(sample)
			b.ReportMetric(float64(sample[len(sample)/2].Nanoseconds()), "p50-ns")
			b.ReportMetric(float64(sample[len(sample)*99/100].Nanoseconds()), "p99-ns")
			b.ReportMetric(float64(found)/float64(ops), "candidates/op")
		})
	}
}

// BenchmarkIndexWith measures a copy-on-write update of one service: a
// capacity change (no postings touched) and an edit of its area (one more
// service in the overlay).
func BenchmarkIndexWith(b *testing.B) {
	for _, n := range benchSizes {
		d := generatedDirectory(n)
		x := directory.NewIndex(d, 1)
		s := d.Services[n/2]
		b.Run(fmt.Sprintf("capacity/services=%d", n), func(b *testing.B) {
			c := s
			c.Capacity.Status = events.CapacityFull
			ch := directory.Change{Key: directory.ServiceKey(c.ID), Revision: 2, Service: &c}
			b.ReportAllocs()
			for b.Loop() {
				_ = x.With(ch)
			}
		})
		b.Run(fmt.Sprintf("area/services=%d", n), func(b *testing.B) {
			c := s
			c.Area.Remote = !c.Area.Remote
			c.Channels = append(slices.Clone(c.Channels), events.ChannelPhone)
			ch := directory.Change{Key: directory.ServiceKey(c.ID), Revision: 2, Service: &c}
			b.ReportAllocs()
			for b.Loop() {
				_ = x.With(ch)
			}
		})
	}
}
