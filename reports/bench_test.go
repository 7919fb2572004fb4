package reports

import (
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
