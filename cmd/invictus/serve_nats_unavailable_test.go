package main

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/invictus-network/invictus/adapters/natsjs"
	"github.com/invictus-network/invictus/internal/testenv"
	"github.com/invictus-network/invictus/internal/testnet"
)

// TestServeStoreCheckWaitsForJetStream starts serve's NATS component on a
// 3-node cluster of which only one node runs (so there is no meta leader,
// and no stream leader: JetStream answers nothing, or "no responders"),
// as after nodes restart. Ensuring the streams and verifying the store
// must wait, saying so, until the other nodes are back, and then succeed.
func TestServeStoreCheckWaitsForJetStream(t *testing.T) {
	keys, adminPub, sysPub := clusterKeys(t)
	t.Setenv("INVICTUS_NATS_NKEY", adminPub)
	t.Setenv("NATS_SYS_NKEY", sysPub)
	conf := filepath.Join(deployDir, "nats", "cluster.conf")
	const n = 3
	var clients, routes, rl, urls []string
	for range n {
		clients = append(clients, freeAddr(t))
		routes = append(routes, freeAddr(t))
	}
	for i := range n {
		rl = append(rl, "nats://"+routes[i])
		urls = append(urls, "nats://"+clients[i])
	}
	t.Setenv("NATS_ROUTES", "["+strings.Join(rl, ", ")+"]")
	var opts []*server.Options
	for i := range n {
		opts = append(opts, clusterOptions(t, conf, i, clients[i], routes[i], t.TempDir()))
	}
	var mu sync.Mutex
	running := make([]*server.Server, n)
	start := func(i int) {
		t.Helper()
		s, err := server.NewServer(opts[i].Clone())
		if err != nil {
			t.Fatal(err)
		}
		go s.Start()
		testenv.Await(t, s.Name()+" to be ready", func() bool { return s.ReadyForConnections(time.Second) })
		mu.Lock()
		running[i] = s
		mu.Unlock()
	}
	stop := func(i int) {
		mu.Lock()
		s := running[i]
		running[i] = nil
		mu.Unlock()
		if s != nil {
			s.Shutdown()
			s.WaitForShutdown()
		}
	}
	t.Cleanup(func() {
		for i := range n {
			stop(i)
		}
	})
	connect := func() *nats.Conn {
		t.Helper()
		opt, err := keys.ConnectOption(natsjs.UserAdmin)
		if err != nil {
			t.Fatal(err)
		}
		nc, err := nats.Connect(strings.Join(urls, ","), opt, nats.MaxReconnects(-1), nats.DontRandomize())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		return nc
	}
	streams := natsjs.StreamsConfig{Replicas: 3}

	// The streams exist, R3: the store of a cluster that ran.
	for i := range n {
		start(i)
	}
	nc := connect()
	waitMetaLeader(t, nc)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Await(t, "the streams made", func() bool {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		return natsjs.EnsureStreams(ctx, js, streams) == nil
	})
	nc.Close()
	for i := range n {
		stop(i)
	}

	// One node of three back: no meta leader.
	start(0)
	var logs syncBuffer
	comp := &natsComponent{streams: streams, logger: slog.New(slog.NewTextHandler(&logs, nil))}
	comp.admin.Store(connect())
	ctx := testenv.Context(t)
	done := make(chan error, 1)
	go func() {
		err := comp.ensureStreams(ctx)
		if err == nil {
			err = comp.verifyStore(ctx)
		}
		done <- err
	}()
	testenv.Await(t, "serve to say it waits for JetStream", func() bool {
		select {
		case err := <-done:
			t.Fatalf("the start-up ended with one node of three: %v\n%s", err, logs.String())
		default:
		}
		return strings.Contains(logs.String(), "waiting for JetStream")
	})
	start(1)
	start(2)
	if err := testenv.Recv(t, "the start-up", done); err != nil {
		t.Fatalf("start-up: %v\n%s", err, logs.String())
	}
	if comp.storeCheck(ctx) != nil {
		t.Fatalf("store check: %v", comp.storeCheck(ctx))
	}
	t.Logf("logged while waiting:\n%s", logs.String())
}

// TestUntilAvailableTriesAgainATryLeftUnanswered runs a start-up step
// whose first try is never answered (as a request to a stream whose leader
// is being elected), on a real server: bounded, the try is cut and made
// again, and the step succeeds on the second, saying what it waited for.
func TestUntilAvailableTriesAgainATryLeftUnanswered(t *testing.T) {
	srv := testnet.RunServer(t, "unanswered", &server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir()})
	js := connectJS(t, srv.ClientURL())
	var logs syncBuffer
	tries := 0
	err := untilAvailable(testenv.Context(t), slog.New(slog.NewTextHandler(&logs, nil)), js, "ensure the streams",
		boundedTry(100*time.Millisecond, func(ctx context.Context) error {
			tries++
			if tries == 1 {
				<-ctx.Done() // never answered
				return ctx.Err()
			}
			return nil
		}))
	if err != nil || tries != 2 {
		t.Fatalf("untilAvailable: %v after %d tries, want success on the second", err, tries)
	}
	if !strings.Contains(logs.String(), "waiting for JetStream to answer") || !strings.Contains(logs.String(), "no answer within 100ms") {
		t.Errorf("logs %q do not say what was waited for", logs.String())
	}
}
