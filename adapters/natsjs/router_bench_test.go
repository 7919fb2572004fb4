package natsjs_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/invictus-network/invictus/adapters/natsjs"
	"github.com/invictus-network/invictus/events"
)

// BenchmarkRequestToOffer drives b.N referrals through one in-process
// router at a steady offered load of 1,000 referrals/s and reports the
// latency from the publish of referral.requested to the offer's arrival
// in the offered organisation's consumer (p50, p95, p99, in µs), and the
// referrals/s sustained.
func BenchmarkRequestToOffer(b *testing.B) {
	const rate = 1000 // referrals per second
	n := newNet(b, time.Hour)
	n.startRouter()
	ctx := context.Background()

	var mu sync.Mutex
	sent := map[string]time.Time{}
	var lat []time.Duration
	done := make(chan struct{})
	oc, err := n.js.OrderedConsumer(ctx, natsjs.StreamDelivery, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"out.pt.a1.>"}})
	if err != nil {
		b.Fatal(err)
	}
	cc, err := oc.Consume(func(m jetstream.Msg) {
		now := time.Now()
		_, id, err := events.ParseDeliverySubject(m.Subject())
		if err != nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if t0, ok := sent[id]; ok {
			lat = append(lat, now.Sub(t0))
			delete(sent, id)
			if len(lat) == b.N {
				close(done)
			}
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { cc.Stop(); <-cc.Closed() }()

	// Commands are encoded before the clock starts.
	msgs := make([]struct {
		id  string
		msg *events.Message
	}, b.N)
	for i := range msgs {
		id := events.NewReferralID()
		ev, err := events.New(events.SourceOf("pt.ref"), id, request(events.NeedSupportEmotional))
		if err != nil {
			b.Fatal(err)
		}
		m, err := events.ToNATS("in.pt.ref", ev)
		if err != nil {
			b.Fatal(err)
		}
		msgs[i].id, msgs[i].msg = id, &m
	}
	b.ResetTimer()
	start := time.Now()
	tick := time.NewTicker(time.Second / rate)
	defer tick.Stop()
	for i := range msgs {
		<-tick.C
		mu.Lock()
		sent[msgs[i].id] = time.Now()
		mu.Unlock()
		if _, err := n.js.PublishMsgAsync(natsMsg(*msgs[i].msg)); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-done:
	case <-time.After(time.Minute):
		b.Fatalf("%d of %d offers arrived", len(lat), b.N)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) }
	b.ReportMetric(q(0.50), "p50-µs")
	b.ReportMetric(q(0.95), "p95-µs")
	b.ReportMetric(q(0.99), "p99-µs")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "referrals/s")
}
