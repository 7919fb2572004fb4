package natsjs

import (
	"context"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// processCPU returns the CPU time (user and system) the process has
// used so far: the embedded server's and the client's alike.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkDeliveryCopies weighs publishing an event's delivery copies
// in one JetStream atomic batch against the dispatcher's way, each copy
// confirmed by its own acknowledgement (dispatchState.deliverOnce), on
// the default single-replica file store, in the same run. Each event has
// two copies, as referral.offered and referral.accepted have in bench
// e2e (2.3 of the 5.2 events of a referral there; the others have one or
// none). It reports the process's CPU per event (the embedded server's
// and the client's) and the acknowledgements per event.
//
// A batch would save one acknowledgement per two-copy event (about 2.3
// of the 27 messages out of the server per referral), but on a
// single-replica file stream nats-server 2.15 stages every atomic batch
// in a file store of its own, created, flushed to disk and deleted for
// each batch (jetstream_batching.go newBatchStore, stream.go
// processJetStreamAtomicBatchMsg), so that a partial commit can be
// completed after a crash (jetstream.go, "Restoring partial batch
// write"). That costs far more than the acknowledgement saved: on this
// 2-core machine (load 9), 3.3-4.3 ms of CPU and 15-19 ms per event,
// against 0.12-0.23 ms and 0.17-0.26 ms for two copies acknowledged one
// by one (3 runs of 2,000 events each).
//
//	go test -run '^$' -bench DeliveryCopies -benchtime 2000x ./adapters/natsjs/
func BenchmarkDeliveryCopies(b *testing.B) {
	const copies = 2
	for _, batch := range []bool{false, true} {
		name := "own-acks"
		if batch {
			name = "atomic-batch"
		}
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			srv, err := StartServer(ctx, ServerConfig{StoreDir: b.TempDir(), DontListen: true}, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer func() { _ = srv.Shutdown(context.Background()) }()
			nc, err := srv.Connect(ctx)
			if err != nil {
				b.Fatal(err)
			}
			defer nc.Close()
			bus, err := NewBus(nc, BusConfig{})
			if err != nil {
				b.Fatal(err)
			}
			if err := EnsureStreams(ctx, bus.js, StreamsConfig{}); err != nil {
				b.Fatal(err)
			}
			if batch {
				s, err := bus.js.Stream(ctx, StreamDelivery)
				if err != nil {
					b.Fatal(err)
				}
				cfg := s.CachedInfo().Config
				cfg.AllowAtomicPublish = true
				if _, err := bus.js.UpdateStream(ctx, cfg); err != nil {
					b.Fatal(err)
				}
			}
			r := &Router{bus: bus, cfg: RouterConfig{}.WithDefaults()}
			l := r.newDispatchState(ctx, nil)
			defer l.timer.Stop()
			// Each event's copies go to subjects nothing is on yet, as an
			// event's first copies on a referral do.
			event := func(i int) []*nats.Msg {
				out := make([]*nats.Msg, copies)
				for k := range out {
					org := "pt.o" + strconv.Itoa(k)
					id := "r" + strconv.Itoa(i)
					m := &nats.Msg{Subject: "out." + org + "." + id, Header: nats.Header{}, Data: make([]byte, 900)}
					m.Header.Set(jetstream.MsgIDHeader, "e"+strconv.Itoa(i)+"."+org)
					m.Header.Set(HeaderSequence, strconv.Itoa(i+1))
					out[k] = m
				}
				return out
			}
			in0, out0 := srv.Msgs()
			cpu0 := processCPU(b)
			b.ResetTimer()
			for i := range b.N {
				msgs := event(i)
				if !batch {
					for _, m := range msgs {
						if err := l.deliverOnce(m); err != nil {
							b.Fatal(err)
						}
					}
					continue
				}
				for _, m := range msgs {
					m.Header.Set(hdrExpectedSubjSeq, "0")
				}
				if _, err := bus.publishBatch(ctx, msgs); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			in1, out1 := srv.Msgs()
			s, err := bus.js.Stream(ctx, StreamDelivery)
			if err != nil {
				b.Fatal(err)
			}
			if info, err := s.Info(ctx); err != nil || info.State.Msgs != uint64(copies*b.N) {
				b.Fatalf("DELIVERY holds %v copies (%v), want %d", info, err, copies*b.N)
			}
			b.ReportMetric(float64((processCPU(b)-cpu0).Microseconds())/float64(b.N), "cpu-µs/event")
			b.ReportMetric(float64(in1-in0)/float64(b.N), "msgs-in/event")
			b.ReportMetric(float64(out1-out0)/float64(b.N), "msgs-out/event")
		})
	}
}
