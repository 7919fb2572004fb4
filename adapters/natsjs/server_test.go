package natsjs_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/invictus-network/invictus/adapters/natsjs"
	"github.com/invictus-network/invictus/internal/testenv"
)

// testBundle is what most tests need: a running server, an in-process
// connection and a JetStream context on it.
type testBundle struct {
	srv *natsjs.Server
	nc  *nats.Conn
	js  jetstream.JetStream
	dir string
}

// setup starts an embedded server on a free port with its store in a
// temporary directory and shuts it down when the test ends.
func setup(t *testing.T) testBundle {
	t.Helper()
	dir := t.TempDir()
	return setupIn(t, dir)
}

func setupIn(t *testing.T, dir string) testBundle {
	t.Helper()
	ctx := testContext(t)
	srv, err := natsjs.StartServer(ctx, natsjs.ServerConfig{StoreDir: dir, Listen: "127.0.0.1:0"}, nil)
	if err != nil {
		t.Fatalf("StartServer: %v", err)
	}
	t.Cleanup(func() { shutdown(t, srv) })
	nc, err := srv.Connect(ctx, nats.Name("test"))
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(time.Minute))
	if err != nil {
		t.Fatalf("jetstream.New: %v", err)
	}
	return testBundle{srv: srv, nc: nc, js: js, dir: dir}
}

func shutdown(t *testing.T, srv *natsjs.Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // against a hang only
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

// testContext returns the test's context (see testenv.Context).
func testContext(t *testing.T) context.Context {
	t.Helper()
	return testenv.Context(t)
}

func TestStartServerListensOnFreePort(t *testing.T) {
	t.Parallel()
	b := setup(t)

	addr, ok := b.srv.Addr().(*net.TCPAddr)
	if !ok || addr.Port == 0 {
		t.Fatalf("Addr() = %v, want a TCP address with the chosen port", b.srv.Addr())
	}
	if want := "nats://" + addr.String(); b.srv.ClientURL() != want {
		t.Errorf("ClientURL() = %q, want %q", b.srv.ClientURL(), want)
	}

	// A client outside the process reaches JetStream over TCP.
	nc, err := nats.Connect(b.srv.ClientURL())
	if err != nil {
		t.Fatalf("connect over TCP: %v", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.AccountInfo(testContext(t)); err != nil {
		t.Errorf("AccountInfo over TCP: %v", err)
	}
}

func TestStartServerDontListen(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	srv, err := natsjs.StartServer(ctx, natsjs.ServerConfig{StoreDir: t.TempDir(), DontListen: true}, nil)
	if err != nil {
		t.Fatalf("StartServer: %v", err)
	}
	t.Cleanup(func() { shutdown(t, srv) })
	if srv.Addr() != nil || srv.ClientURL() != "" {
		t.Errorf("Addr() = %v, ClientURL() = %q; want nil and empty without a listener", srv.Addr(), srv.ClientURL())
	}

	// nats.InProcessServer works with *Server directly.
	nc, err := nats.Connect("", nats.InProcessServer(srv))
	if err != nil {
		t.Fatalf("connect in process: %v", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.AccountInfo(ctx); err != nil {
		t.Errorf("AccountInfo in process: %v", err)
	}
}

func TestStartServerAddrInUse(t *testing.T) {
	t.Parallel()
	var lc net.ListenConfig
	taken, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()

	_, err = natsjs.StartServer(testContext(t), natsjs.ServerConfig{
		StoreDir: t.TempDir(),
		Listen:   taken.Addr().String(),
	}, nil)
	if !errors.Is(err, natsjs.ErrAddrInUse) {
		t.Fatalf("StartServer on a taken port: err = %v, want ErrAddrInUse", err)
	}
	if !strings.Contains(err.Error(), taken.Addr().String()) {
		t.Errorf("error %q does not name the address %s", err, taken.Addr())
	}
}

func TestStartServerStoreNotWritable(t *testing.T) {
	t.Parallel()
	// Tests run as root, for whom permissions do not stop a write; a
	// directory under a regular file cannot be created by anyone.
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := natsjs.StartServer(testContext(t), natsjs.ServerConfig{
		StoreDir: filepath.Join(file, "sub"),
		Listen:   "127.0.0.1:0",
	}, nil)
	if !errors.Is(err, natsjs.ErrStoreNotWritable) {
		t.Fatalf("err = %v, want ErrStoreNotWritable", err)
	}
	if !strings.Contains(err.Error(), file) {
		t.Errorf("error %q does not name the path", err)
	}
}

func TestStartServerEndedContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := natsjs.StartServer(ctx, natsjs.ServerConfig{StoreDir: t.TempDir(), DontListen: true}, nil)
	if !errors.Is(err, context.Canceled) || !errors.Is(err, natsjs.ErrServerStart) {
		t.Fatalf("err = %v, want ErrServerStart wrapping context.Canceled", err)
	}
}

func TestServerConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		cfg   natsjs.ServerConfig
		field string // "" when valid
	}{
		{"defaults", natsjs.ServerConfig{StoreDir: "x"}, ""},
		{"no store", natsjs.ServerConfig{}, "StoreDir"},
		{"no port", natsjs.ServerConfig{StoreDir: "x", Listen: "127.0.0.1"}, "Listen"},
		{"bad port", natsjs.ServerConfig{StoreDir: "x", Listen: "127.0.0.1:99999"}, "Listen"},
		{"named port", natsjs.ServerConfig{StoreDir: "x", Listen: "127.0.0.1:nats"}, "Listen"},
		{"bad listen ignored without listener", natsjs.ServerConfig{StoreDir: "x", Listen: "nope", DontListen: true}, ""},
		{"negative timeout", natsjs.ServerConfig{StoreDir: "x", StartTimeout: -time.Second}, "StartTimeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.cfg.WithDefaults().Validate()
			switch {
			case tt.field == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tt.field != "" && (err == nil || !strings.Contains(err.Error(), tt.field)):
				t.Errorf("Validate() = %v, want an error naming %s", err, tt.field)
			}
		})
	}
}

func TestServerConfigWithDefaults(t *testing.T) {
	t.Parallel()
	got := natsjs.ServerConfig{StoreDir: "x"}.WithDefaults()
	if got.Listen != natsjs.ListenDefault || got.ServerName != natsjs.ServerNameDefault || got.StartTimeout != natsjs.StartTimeoutDefault {
		t.Errorf("WithDefaults() = %+v", got)
	}
	set := natsjs.ServerConfig{StoreDir: "x", Listen: "127.0.0.1:0", ServerName: "n", StartTimeout: time.Second, MinFree: 1}
	if got := set.WithDefaults(); got != set {
		t.Errorf("WithDefaults() changed set fields: %+v", got)
	}
}

func TestShutdownDrainsConnections(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	srv, err := natsjs.StartServer(ctx, natsjs.ServerConfig{StoreDir: t.TempDir(), DontListen: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := srv.Connect(ctx, nats.Name("drained"))
	if err != nil {
		t.Fatal(err)
	}
	received := make(chan struct{}, 1)
	if _, err := nc.Subscribe("x", func(*nats.Msg) { received <- struct{}{} }); err != nil {
		t.Fatal(err)
	}
	if err := nc.Publish("x", nil); err != nil {
		t.Fatal(err)
	}

	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if !nc.IsClosed() {
		t.Error("connection still open after Shutdown")
	}
	select {
	case <-received:
	default:
		t.Error("the message published before Shutdown was not delivered: the connection was closed, not drained")
	}
	if err := srv.Shutdown(ctx); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
}

func TestShutdownKeepsAcknowledgedMessages(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := testContext(t)
	const n = 200

	first := setupIn(t, dir)
	if err := natsjs.EnsureStreams(ctx, first.js, natsjs.StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if _, err := first.js.PublishAsync("referral.pt.r1", []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-first.js.PublishAsyncComplete():
	case <-ctx.Done():
		t.Fatal("async publishes not acknowledged in time")
	}
	shutdown(t, first.srv)

	second := setupIn(t, dir)
	if err := natsjs.EnsureStreams(ctx, second.js, natsjs.StreamsConfig{}); err != nil {
		t.Fatalf("EnsureStreams on existing store: %v", err)
	}
	s, err := second.js.Stream(ctx, natsjs.StreamReferrals)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != n {
		t.Errorf("after restart REFERRALS holds %d messages, want %d", info.State.Msgs, n)
	}
}

func TestServerLogsThroughSlog(t *testing.T) {
	t.Parallel()
	var lc net.ListenConfig
	taken, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()

	var buf testenv.SyncBuffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	_, err = natsjs.StartServer(testContext(t), natsjs.ServerConfig{StoreDir: t.TempDir(), Listen: taken.Addr().String()}, logger)
	if !errors.Is(err, natsjs.ErrAddrInUse) {
		t.Fatalf("err = %v, want ErrAddrInUse", err)
	}
	logs := buf.String()
	// The server's start-up notice at debug level, its fatal listen error
	// at error level (instead of exiting the process), both tagged.
	for _, want := range []string{
		`level=DEBUG msg="Starting nats-server" component=nats-server`,
		`level=ERROR msg="Error listening on port: ` + taken.Addr().String(),
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs do not contain %q:\n%s", want, logs)
		}
	}
}
