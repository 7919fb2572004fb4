package client_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/invictus-network/invictus/client"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/internal/testenv"
	"github.com/invictus-network/invictus/internal/testnet"
)

// TestMain fails the package's tests if a goroutine outlives them: every
// server, router and client must be stopped.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// orgsDefault: a referrer whose own service is never a candidate, and
// two organisations offering emotional support, ranked pt.a1 then pt.a2
// (ties break on id).
var orgsDefault = []testenv.Org{
	{ID: "pt.ref", Needs: []string{events.NeedInfoCase}},
	{ID: "pt.a1", Needs: []string{events.NeedSupportEmotional, events.NeedInfoRights}},
	{ID: "pt.a2", Needs: []string{events.NeedSupportEmotional, events.NeedInfoRights}},
}

// network is a testnet network of the test's.
type network struct {
	*testnet.Network
	t testing.TB
}

// startNetwork starts a network for orgs. Everything stops at cleanup.
func startNetwork(t testing.TB, orgs []testenv.Org) *network {
	t.Helper()
	return &network{Network: testnet.Start(t, orgs), t: t}
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
	// A minute per request, against a hang only: a loaded machine running
	// the whole suite can take seconds to answer what takes milliseconds.
	opts = append([]client.Option{client.WithNKeySeed(n.Keys.Path(org)), client.WithTimeout(time.Minute)}, opts...)
	c, err := client.Connect(testenv.Context(n.t), n.URL, org, opts...)
	if err != nil {
		return nil, err
	}
	n.t.Cleanup(func() { _ = c.Close() })
	return c, nil
}

// identity returns org's age identity.
func (n *network) identity(org string) string { return n.Age[org].Identity }

// request returns a referral.requested payload for needs.
func request(needs ...string) events.Requested {
	return *testenv.Request(time.Now().Add(-time.Minute).UTC(), needs...)
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

// Context is the example's context: testenv.Context derives from it, and
// its clean-up (run by stop) ends what it derived.
func (e *exampleT) Context() context.Context { return context.Background() }
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
