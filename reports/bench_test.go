package reports

import (
	"fmt"

	"github.com/invictus-network/invictus/reports/reportstest"
	"runtime"
	"testing"
	"time"
)

// benchTraffic holds about 1,000,000 events (the generator makes about
// 6.8 per referral).
var benchTraffic *reportstest.Traffic

func trafficForBench(b *testing.B) *reportstest.Traffic {
	if benchTraffic == nil {
		benchTraffic = reportstest.Generate(42, 150_000)
	}
	return benchTraffic
}

// BenchmarkBuild builds the model from about 1,000,000 events and
// reports events/s and the heap the model holds, beside a raw baseline:
// ranging over the same events doing nothing but reading their time.
func BenchmarkBuild(b *testing.B) {
	tr := trafficForBench(b)
	start := time.Now()
	var sink int64
	for _, e := range tr.Envelopes {
		sink += e.Event.Time().Unix()
	}
	raw := time.Since(start)
	_ = sink
	b.ResetTimer()
	for b.Loop() {
		build(b, tr)
	}
	b.StopTimer()
	per := b.Elapsed() / time.Duration(b.N)
	b.ReportMetric(float64(len(tr.Envelopes)), "events")
	b.ReportMetric(float64(len(tr.Envelopes))/per.Seconds(), "events/s")
	b.ReportMetric(float64(len(tr.Envelopes))/raw.Seconds(), "raw-range-events/s")
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	m := build(b, tr)
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(m)
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "model-MiB")
	b.ReportMetric(float64(m.Cells()), "cells")
	b.ReportMetric(float64(m.Open()), "referrals-kept")
}

// BenchmarkReport times each report over the model of about 1,000,000
// events, as a European coordinator, unfiltered.
func BenchmarkReport(b *testing.B) {
	tr := trafficForBench(b)
	m := build(b, tr)
	b.ReportMetric(float64(m.Cells()), "cells")
	for _, name := range Reports {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if _, err := m.Report(name, Scope{}, Filter{}, now); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkMemoryByTime builds the model from 1 and 5 years of traffic at
// the same rate (10,000 referrals a year, generated a year at a time and
// applied in time order) and reports the heap it holds beside the raw
// baseline of the same model that forgets no referral (an unbounded
// Horizon): the bounded model keeps the referrals of the last
// HorizonDefault and the counters of every day, so it grows with the
// days it covers, not with the referrals.
//
//	go test -run '^$' -bench MemoryByTime -benchtime 1x ./reports/
func BenchmarkMemoryByTime(b *testing.B) {
	const perYear = 10_000
	for _, years := range []int{1, 5} {
		b.Run(fmt.Sprintf("years=%d", years), func(b *testing.B) {
			for b.Loop() {
				var base runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&base)
				bounded := New(Config{})
				unbounded := New(Config{Horizon: 100 * 365 * 24 * time.Hour})
				start := time.Now().AddDate(-years, 0, -3).UTC().Truncate(24 * time.Hour)
				seq := uint64(0)
				for y := range years {
					tr := reportstest.GenerateAt(uint64(100+y), perYear, start.AddDate(y, 0, 0), 365*24*time.Hour)
					for _, e := range tr.Sorted() {
						seq++
						bounded.Apply(seq, e)
						unbounded.Apply(seq, e)
					}
				}
				var both, one runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&both)
				b.ReportMetric(float64(unbounded.Open()), "referrals")
				unbounded = nil
				runtime.GC()
				runtime.ReadMemStats(&one)
				runtime.KeepAlive(unbounded)
				b.ReportMetric(float64(one.HeapAlloc-base.HeapAlloc)/(1<<20), "bounded-MiB")
				b.ReportMetric(float64(both.HeapAlloc-one.HeapAlloc)/(1<<20), "raw-unbounded-MiB")
				b.ReportMetric(float64(bounded.Open()), "referrals-kept")
				b.ReportMetric(float64(bounded.Cells()), "cells")
				b.ReportMetric(float64(seq), "events")
				runtime.KeepAlive(bounded)
			}
		})
	}
}
