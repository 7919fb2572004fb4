package client_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/invictus-network/invictus/adapters/natsjs"
	"github.com/invictus-network/invictus/client"
	"github.com/invictus-network/invictus/directory"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/referral"
	"github.com/invictus-network/invictus/routing"
	"github.com/invictus-network/invictus/seal"
)

// TestMain fails the package's tests if a goroutine outlives them: every
// server, router and client must be stopped.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testOrg is an organisation of the test directory with one service
// meeting needs.
type testOrg struct {
	id    string
	needs []string
}

// orgsDefault: a referrer whose own service is never a candidate, and
// two organisations offering emotional support, ranked pt.a1 then pt.a2
// (ties break on id).
var orgsDefault = []testOrg{
	{"pt.ref", []string{events.NeedInfoCase}},
	{"pt.a1", []string{events.NeedSupportEmotional, events.NeedInfoRights}},
	{"pt.a2", []string{events.NeedSupportEmotional, events.NeedInfoRights}},
}

// network is an embedded server with authentication on, the streams, the
// directory in its bucket, each organisation's consumer, and a routing
// service running as the routing user.
type network struct {
	t    testing.TB
	srv  *natsjs.Server
	url  string
	keys *natsjs.KeyStore
	// age keys of the organisations, by id
	age   map[string]seal.Key
	admin jetstream.JetStream
}

// startNetwork starts a network for orgs. Everything stops at cleanup.
func startNetwork(t testing.TB, orgs []testOrg) *network {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()
	keys, err := natsjs.NewKeyStore(filepath.Join(dir, natsjs.KeysDir))
	if err != nil {
		t.Fatal(err)
	}
	n := &network{t: t, keys: keys, age: map[string]seal.Key{}}
	d := testDirectory(t, orgs, n.age)
	auth, err := natsjs.AuthFromDirectory(keys, d)
	if err != nil {
		t.Fatal(err)
	}
	n.srv, err = natsjs.StartServer(ctx, natsjs.ServerConfig{StoreDir: filepath.Join(dir, "nats"), Listen: "127.0.0.1:0", Auth: auth}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer scancel()
		if err := n.srv.Shutdown(sctx); err != nil {
			t.Errorf("server shutdown: %v", err)
		}
	})
	n.url = n.srv.ClientURL()

	adminOpt, err := keys.ConnectOption(natsjs.UserAdmin)
	if err != nil {
		t.Fatal(err)
	}
	anc, err := n.srv.Connect(ctx, adminOpt, nats.Name("admin"))
	if err != nil {
		t.Fatal(err)
	}
	if n.admin, err = jetstream.New(anc); err != nil {
		t.Fatal(err)
	}
	if err := natsjs.EnsureStreams(ctx, n.admin, natsjs.StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	store, err := natsjs.NewDirectoryStore(ctx, n.admin, natsjs.DirectoryStoreConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.ImportDirectory(ctx, d, nil); err != nil {
		t.Fatal(err)
	}
	for _, o := range orgs {
		if err := natsjs.EnsureOrgConsumer(ctx, n.admin, o.id); err != nil {
			t.Fatal(err)
		}
	}
	n.startRouting(ctx)
	return n
}

// startRouting runs the directory follower and one router, both as the
// routing user, until cleanup.
func (n *network) startRouting(ctx context.Context) {
	t := n.t
	t.Helper()
	opt, err := n.keys.ConnectOption(natsjs.UserRouting)
	if err != nil {
		t.Fatal(err)
	}
	var asyncMu sync.Mutex
	var asyncErrs []error
	rnc, err := n.srv.Connect(ctx, opt, nats.Name("routing"), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		asyncMu.Lock()
		asyncErrs = append(asyncErrs, err)
		asyncMu.Unlock()
	}))
	if err != nil {
		t.Fatal(err)
	}
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

// connect connects as org with its seed file; it is closed at cleanup.
func (n *network) connect(org string, opts ...client.Option) *client.Client {
	n.t.Helper()
	c, err := n.tryConnect(org, opts...)
	if err != nil {
		n.t.Fatalf("connect as %s: %v", org, err)
	}
	return c
}

func (n *network) tryConnect(org string, opts ...client.Option) (*client.Client, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	opts = append([]client.Option{client.WithNKeySeed(n.keys.Path(org)), client.WithTimeout(5 * time.Second)}, opts...)
	c, err := client.Connect(ctx, n.url, org, opts...)
	if err != nil {
		return nil, err
	}
	n.t.Cleanup(func() { _ = c.Close() })
	return c, nil
}

// identity returns org's age identity.
func (n *network) identity(org string) string { return n.age[org].Identity }

// testDirectory returns a directory of organisations in Portugal, each with
// one remote service for its needs, open always and accepting, and an age
// key (kept in keys).
func testDirectory(t testing.TB, orgs []testOrg, keys map[string]seal.Key) *directory.Directory {
	t.Helper()
	d := &directory.Directory{}
	for _, o := range orgs {
		k, err := seal.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		keys[o.id] = k
		d.Organisations = append(d.Organisations, directory.Organisation{
			ID: o.id, Name: "Test " + o.id, Country: "pt", Languages: []string{"pt", "en"},
			AgeRecipient: k.Recipient, Synthetic: true,
		})
		d.Services = append(d.Services, directory.Service{
			ID: o.id + ".support", Organisation: o.id, Name: "Support", Status: directory.StatusActive,
			Needs: o.needs, Languages: []string{"pt", "en"},
			Channels: []string{events.ChannelPhone, events.ChannelInPerson},
			Area:     directory.ServiceArea{Countries: []string{"pt"}, Remote: true},
			Hours:    directory.Schedule{TimeZone: "Europe/Lisbon", Always: true},
			Capacity: directory.Capacity{Status: "accepting"},
		})
	}
	d.Sort()
	if err := d.Validate(); err != nil {
		t.Fatalf("test directory: %v", err)
	}
	return d
}

// request returns a referral.requested payload for needs.
func request(needs ...string) events.Requested {
	return events.Requested{
		Profile: events.Profile{
			Needs:     needs,
			Urgency:   events.UrgencyUrgent,
			Location:  events.Location{Country: "pt", Region: "PT17"},
			Languages: []string{"pt"},
			AgeBand:   "adult",
			Channels:  []string{events.ChannelPhone},
		},
		Consent: events.Consent{Referral: true, ShareData: true, GivenAt: time.Now().Add(-time.Minute).UTC(), Method: "verbal", RecordedBy: "staff-s001"},
	}
}

// ctxT returns a context that ends after d or at the end of the test.
func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// waitFloor is the least a wait for an asynchronous effect allows: on a
// loaded 2-core machine running the whole suite, effects that take
// milliseconds alone can take tens of seconds. A wait that succeeds
// returns at once, so only a real failure waits this long.
const waitFloor = 2 * time.Minute

// waitFor polls cond until it returns true, failing after timeout.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	timeout = max(timeout, waitFloor)
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// writeFile writes a secret file.
func writeFile(path string, b []byte) error { return os.WriteFile(path, b, 0o600) }

// result is a value and an error; must(f()).ok(t) fails the test on
// the error and returns the value.
type result[T any] struct {
	v   T
	err error
}

func must[T any](v T, err error) result[T] { return result[T]{v, err} }

func (r result[T]) ok(t testing.TB) T {
	t.Helper()
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r.v
}

// exampleT adapts an Example to the helpers: a failure prints and exits.
type exampleT struct {
	testing.TB
	mu       sync.Mutex
	cleanups []func()
	dirs     []string
}

func (e *exampleT) Helper() {}
func (e *exampleT) Cleanup(f func()) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.cleanups = append(e.cleanups, f)
}
func (e *exampleT) TempDir() string {
	d, err := os.MkdirTemp("", "invictus-client-example-")
	if err != nil {
		e.Fatal(err)
	}
	e.dirs = append(e.dirs, d)
	return d
}
func (e *exampleT) Fatal(args ...any) { panic(fmt.Sprint(args...)) }
func (e *exampleT) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf(format, args...))
}
func (e *exampleT) Errorf(format string, args ...any) {
	panic(fmt.Sprintf(format, args...))
}

// stop runs the cleanups, newest first, and removes the directories.
func (e *exampleT) stop() {
	e.mu.Lock()
	fs := e.cleanups
	e.cleanups = nil
	e.mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
	for _, d := range e.dirs {
		_ = os.RemoveAll(d)
	}
}
