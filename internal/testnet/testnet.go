// Package testnet starts, for the tests of several packages, a network as
// organisations meet it: an embedded NATS server with authentication on
// (one nkey user per organisation, the keys in a data directory laid out
// as `serve` keeps it), the streams, the test directory in its bucket,
// each organisation's durable consumer, and a routing service running as
// the routing user. Only tests import it.
package testnet

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/invictus-network/invictus/adapters/natsjs"
	"github.com/invictus-network/invictus/directory"
	"github.com/invictus-network/invictus/internal/testenv"
	"github.com/invictus-network/invictus/referral"
	"github.com/invictus-network/invictus/routing"
	"github.com/invictus-network/invictus/seal"
)

// Network is a running network. Everything stops at the test's cleanup.
type Network struct {
	// Data is the data directory: the key store is Data/keys.
	Data string
	Srv  *natsjs.Server
	// URL is the server's client URL (it listens on 127.0.0.1).
	URL  string
	Keys *natsjs.KeyStore
	// Age holds the organisations' age keys, by id.
	Age map[string]seal.Key
	// Admin is JetStream on the administrator's connection.
	Admin jetstream.JetStream
}

// Start starts a network for orgs (testenv.Directory). The routing
// service's deadline for urgent referrals is an hour, and a permission
// the routing user is refused fails the test.
func Start(t testing.TB, orgs []testenv.Org) *Network {
	t.Helper()
	ctx := testenv.Context(t)
	n := &Network{Data: t.TempDir(), Age: map[string]seal.Key{}}
	keys, err := natsjs.NewKeyStore(filepath.Join(n.Data, natsjs.KeysDir))
	if err != nil {
		t.Fatal(err)
	}
	n.Keys = keys
	d := testenv.Directory(t, orgs, n.Age)
	auth, err := natsjs.AuthFromDirectory(keys, d)
	if err != nil {
		t.Fatal(err)
	}
	n.Srv, err = natsjs.StartServer(ctx, natsjs.ServerConfig{StoreDir: filepath.Join(n.Data, "nats"), Listen: "127.0.0.1:0", Auth: auth}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), time.Minute) // against a hang only
		defer scancel()
		if err := n.Srv.Shutdown(sctx); err != nil {
			t.Errorf("server shutdown: %v", err)
		}
	})
	n.URL = n.Srv.ClientURL()

	if n.Admin, err = jetstream.New(n.connect(ctx, t, natsjs.UserAdmin), jetstream.WithDefaultTimeout(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := natsjs.EnsureStreams(ctx, n.Admin, natsjs.StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	store, err := natsjs.NewDirectoryStore(ctx, n.Admin, natsjs.DirectoryStoreConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.ImportDirectory(ctx, d, nil); err != nil {
		t.Fatal(err)
	}
	for _, o := range orgs {
		if err := natsjs.EnsureOrgConsumer(ctx, n.Admin, o.ID); err != nil {
			t.Fatal(err)
		}
	}
	n.startRouting(ctx, t)
	return n
}

// connect connects in process as user of the key store.
func (n *Network) connect(ctx context.Context, t testing.TB, user string, opts ...nats.Option) *nats.Conn {
	t.Helper()
	opt, err := n.Keys.ConnectOption(user)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := n.Srv.Connect(ctx, append([]nats.Option{opt, nats.Name(user)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return nc
}

// startRouting runs the directory follower and one router, both as the
// routing user, until cleanup.
func (n *Network) startRouting(ctx context.Context, t testing.TB) {
	t.Helper()
	var asyncMu sync.Mutex
	var asyncErrs []error
	rnc := n.connect(ctx, t, natsjs.UserRouting, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		asyncMu.Lock()
		asyncErrs = append(asyncErrs, err)
		asyncMu.Unlock()
	}))
	js, err := jetstream.New(rnc)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, natsjs.BucketDirectory)
	if err != nil {
		t.Fatal(err)
	}
	view := directory.NewView()
	follower := natsjs.NewDirectoryFollower(kv, view, nil)
	node, err := natsjs.NewNode(rnc, view, natsjs.NodeConfig{
		Service: routing.ServiceConfig{Deadlines: referral.Deadlines{Urgent: time.Hour}},
		Router:  natsjs.RouterConfig{AckWait: 2 * time.Second, RetryDelay: 20 * time.Millisecond, PinnedTTL: 2 * time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	rt := node.Router
	if err := rt.EnsureConsumers(ctx); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := follower.Run(rctx); err != nil {
			t.Errorf("directory follower: %v", err)
		}
	})
	select {
	case <-follower.Ready():
	case <-ctx.Done():
		cancel()
		wg.Wait()
		t.Fatal("the directory follower did not load the directory")
	}
	wg.Go(func() {
		// A router stopped while it starts reports the cancellation.
		if err := rt.Run(rctx); err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("router: %v", err)
		}
	})
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		rnc.Close()
		asyncMu.Lock()
		defer asyncMu.Unlock()
		for _, err := range asyncErrs {
			if errors.Is(err, nats.ErrPermissionViolation) {
				t.Errorf("the routing user was refused something: %v", err)
			}
		}
	})
}

// Plain starts an embedded server storing under dir (a temporary
// directory when empty), with no listener and no authentication, ensures
// the streams and connects to it in process, named after the test; the
// connection and the server end at cleanup.
func Plain(t testing.TB, dir string) (*natsjs.Server, *nats.Conn, jetstream.JetStream) {
	t.Helper()
	ctx := testenv.Context(t)
	if dir == "" {
		dir = t.TempDir()
	}
	srv, err := natsjs.StartServer(ctx, natsjs.ServerConfig{StoreDir: dir, DontListen: true}, nil)
	if err != nil {
		t.Fatalf("StartServer: %v", err)
	}
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), time.Minute) // against a hang only
		defer scancel()
		if err := srv.Shutdown(sctx); err != nil {
			t.Errorf("server shutdown: %v", err)
		}
	})
	nc, err := srv.Connect(ctx, nats.Name(t.Name()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if err := natsjs.EnsureStreams(ctx, js, natsjs.StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	return srv, nc, js
}

// RunRouter runs a routing service (natsjs.NewNode of cfg, reading dir)
// on a connection of its own to srv until cleanup, and returns it.
func RunRouter(t testing.TB, srv *natsjs.Server, dir routing.Directory, cfg natsjs.NodeConfig) *natsjs.Node {
	t.Helper()
	ctx := context.Background()
	nc, err := srv.Connect(ctx, nats.Name("router"))
	if err != nil {
		t.Fatal(err)
	}
	node, err := natsjs.NewNode(nc, dir, cfg)
	if err != nil {
		nc.Close()
		t.Fatal(err)
	}
	if err := node.Router.EnsureConsumers(ctx); err != nil {
		nc.Close()
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- node.Router.Run(rctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("router: %v", err)
		}
		nc.Close()
	})
	return node
}
