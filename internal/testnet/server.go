package testnet

import (
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/invictus-network/invictus/internal/testenv"
)

// RunServer starts an in-process nats-server from opts (read from one of
// deploy/'s configurations, say), shuts it down at the end of the test,
// and returns once it is ready for connections; name says which server in
// a failure.
func RunServer(t testing.TB, name string, opts *server.Options) *server.Server {
	t.Helper()
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	go s.Start()
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	testenv.Await(t, name+" to be ready", func() bool { return s.ReadyForConnections(time.Second) })
	return s
}
