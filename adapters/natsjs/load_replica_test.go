package natsjs_test

import (
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/invictus-network/invictus/adapters/natsjs"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/internal/testenv"
	"github.com/invictus-network/invictus/routing"
)

// startR3 starts a cluster of three in-process servers routed to one
// another and returns them once JetStream has a meta leader. (A
// clustered JetStream needs its routes configured, and is ready only
// once it has peers: each server is started before any is waited for.)
func startR3(t testing.TB) []*server.Server {
	t.Helper()
	var routes []string
	for _, port := range routePorts(t, 3) {
		routes = append(routes, "nats://127.0.0.1:"+strconv.Itoa(port))
	}
	var servers []*server.Server
	for i := range 3 {
		port, _ := strconv.Atoi(routes[i][strings.LastIndex(routes[i], ":")+1:])
		opts := &server.Options{
			ServerName: fmt.Sprintf("n%d", i+1), Host: "127.0.0.1", Port: -1,
			JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
			Cluster: server.ClusterOpts{Name: "r3", Host: "127.0.0.1", Port: port},
			Routes:  server.RoutesFromStr(strings.Join(routes, ",")),
		}
		s, err := server.NewServer(opts)
		if err != nil {
			t.Fatal(err)
		}
		go s.Start()
		t.Cleanup(func() {
			s.Shutdown()
			s.WaitForShutdown()
		})
		servers = append(servers, s)
	}
	testenv.Await(t, "the cluster's JetStream meta leader", func() bool {
		for _, s := range servers {
			if !s.ReadyForConnections(10 * time.Millisecond) {
				return false
			}
		}
		for _, s := range servers {
			if s.JetStreamIsLeader() {
				return true
			}
		}
		return false
	})
	return servers
}

// routePorts returns n ports free to listen on, below the ephemeral
// range, where no connection's source port can take one before the
// server listens on it.
func routePorts(t testing.TB, n int) []int {
	t.Helper()
	var ports []int
	for len(ports) < n {
		port := 20000 + rand.IntN(12768)
		if slices.Contains(ports, port) {
			continue
		}
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			continue // taken
		}
		ln.Close()
		ports = append(ports, port)
	}
	return ports
}

// Any replica of a replicated REFERRALS answers direct gets, and a
// follower applies an event only after the leader acknowledged it. A
// bus connected to a follower (its local replica answers its direct
// gets) reads each referral right after another bus appended to it
// through the leader: every Load must hold every event acknowledged.
// Without the leader's confirmation in Load, the follower's view missed
// the last events; the routing service, deciding on it, rejected the
// acceptance of an offer it had not seen yet ("not found"), and
// TestClusterRollingRestart's referral stayed offered.
func TestLoadThroughAFollowerHoldsEveryAcknowledgedEvent(t *testing.T) {
	t.Parallel()
	servers := startR3(t)
	ctx := testenv.Context(t)
	connect := func(s *server.Server) *nats.Conn {
		nc, err := nats.Connect(s.ClientURL())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		return nc
	}
	js, err := jetstream.New(connect(servers[0]), jetstream.WithDefaultTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	for _, sc := range natsjs.StreamConfigs(natsjs.StreamsConfig{Replicas: 3}) {
		if sc.Name != natsjs.StreamReferrals {
			continue
		}
		sc.MaxBytes = 64 << 20
		testenv.Await(t, "REFERRALS created with 3 replicas", func() bool {
			_, err := js.CreateOrUpdateStream(ctx, sc)
			return err == nil
		})
	}
	var info *jetstream.StreamInfo
	testenv.Await(t, "REFERRALS to have a leader and two current replicas", func() bool {
		s, err := js.Stream(ctx, natsjs.StreamReferrals)
		if err != nil {
			return false
		}
		info = s.CachedInfo()
		if info.Cluster == nil || info.Cluster.Leader == "" || len(info.Cluster.Replicas) != 2 {
			return false
		}
		for _, r := range info.Cluster.Replicas {
			if !r.Current {
				return false
			}
		}
		return true
	})
	var leader, follower *server.Server
	for _, s := range servers {
		if s.Name() == info.Cluster.Leader {
			leader = s
		} else if follower == nil {
			follower = s
		}
	}
	writer, err := natsjs.NewBus(connect(leader), natsjs.BusConfig{})
	if err != nil {
		t.Fatal(err)
	}
	reader, err := natsjs.NewBus(connect(follower), natsjs.BusConfig{})
	if err != nil {
		t.Fatal(err)
	}
	// Direct gets are answered once the stream's replicas subscribed to
	// them (before, there are no responders).
	testenv.Await(t, "REFERRALS to answer direct gets", func() bool {
		_, err := reader.Load(ctx, events.NewReferralID(), 0)
		return err == nil
	})
	check := func(what string, a routing.Append, after, last uint64, want int) {
		t.Helper()
		h, err := reader.Load(ctx, a.ReferralID, after)
		if err != nil {
			t.Fatalf("%s: load through %s: %v", what, follower.Name(), err)
		}
		if h.Last != last || len(h.Events) != want || h.Subject != a.Subject {
			t.Fatalf("%s: load through %s after %d: %d events up to %d on %q; the leader acknowledged %d up to %d on %q",
				what, follower.Name(), after, len(h.Events), h.Last, h.Subject, want, last, a.Subject)
		}
	}
	// The follower joins the direct gets' queue group once it is caught
	// up (checked every 2 s); the loads go on until it has answered some
	// of them behind the leader, or many went through.
	const most, enough = 3000, 5
	n := 0
	for ; n < most && natsjs.LoadsBehind(reader) < enough; n++ {
		a := chain(t, events.NewReferralID())
		first, err := writer.Append(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		check("a new referral", a, 0, first, 3) // its subject found with a last-by-subject get
		more := chain(t, a.ReferralID)
		more.Expected = first
		last, err := writer.Append(ctx, more)
		if err != nil {
			t.Fatal(err)
		}
		check("a referral read before", more, first, last, 3) // its subject known: batched gets from after
	}
	t.Logf("%d referrals, %d loads answered by a replica behind the leader and completed from the leader", n, natsjs.LoadsBehind(reader))
}

// BenchmarkLoadR3 reads a referral of 6 events through a follower of an
// R3 REFERRALS, its subject known: direct is the read from whichever
// replica answers (Load before the leader's confirmation), confirmed is
// Load (one more request, to the leader).
func BenchmarkLoadR3(b *testing.B) {
	servers := startR3(b)
	ctx := testenv.Context(b)
	conns := map[string]*nats.Conn{}
	for _, s := range servers {
		nc, err := nats.Connect(s.ClientURL())
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(nc.Close)
		conns[s.Name()] = nc
	}
	js, err := jetstream.New(conns[servers[0].Name()], jetstream.WithDefaultTimeout(time.Minute))
	if err != nil {
		b.Fatal(err)
	}
	var stream jetstream.Stream
	for _, sc := range natsjs.StreamConfigs(natsjs.StreamsConfig{Replicas: 3}) {
		if sc.Name == natsjs.StreamReferrals {
			sc.MaxBytes = 64 << 20
			testenv.Await(b, "REFERRALS created", func() bool {
				stream, err = js.CreateOrUpdateStream(ctx, sc)
				return err == nil
			})
		}
	}
	var leader string
	testenv.Await(b, "REFERRALS's leader", func() bool {
		info, err := stream.Info(ctx)
		if err == nil && info.Cluster != nil {
			leader = info.Cluster.Leader
		}
		return leader != ""
	})
	var follower *natsjs.Bus
	for name, nc := range conns {
		if name != leader && follower == nil {
			if follower, err = natsjs.NewBus(nc, natsjs.BusConfig{}); err != nil {
				b.Fatal(err)
			}
		}
	}
	writer, err := natsjs.NewBus(conns[leader], natsjs.BusConfig{})
	if err != nil {
		b.Fatal(err)
	}
	a := chain(b, events.NewReferralID())
	first, err := writer.Append(ctx, a)
	if err != nil {
		b.Fatal(err)
	}
	more := chain(b, a.ReferralID)
	more.Expected = first
	last, err := writer.Append(ctx, more)
	if err != nil {
		b.Fatal(err)
	}
	testenv.Await(b, "the follower to answer the referral whole", func() bool {
		h, err := natsjs.LoadDirect(ctx, follower, a.ReferralID, 0)
		return err == nil && h.Last == last
	})
	for _, c := range []struct {
		name string
		load func() (routing.History, error)
	}{
		{"direct", func() (routing.History, error) { return natsjs.LoadDirect(ctx, follower, a.ReferralID, 0) }},
		{"confirmed", func() (routing.History, error) { return follower.Load(ctx, a.ReferralID, 0) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				h, err := c.load()
				if err != nil || len(h.Events) != 6 {
					b.Fatalf("%d events, %v", len(h.Events), err)
				}
			}
		})
	}
}
