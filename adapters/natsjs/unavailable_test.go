package natsjs_test

import (
	"fmt"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/invictus-network/invictus/adapters/natsjs"
)

// A stream that cannot be placed only because a peer is offline is a
// wait: right after a cluster starts, its meta leader may not have heard
// from every node yet (TestClusterRollingRestart's serve once exited on
// it at start-up, with every node's /healthz ok). One that cannot be
// placed for another reason is not. The errors are nats-server 2.15's
// answers to a stream create, as nats.go decodes them.
func TestUnavailableNoPeersOnlyWhileOffline(t *testing.T) {
	noPeers := func(desc string) error {
		return fmt.Errorf("natsjs: ensure stream TIMERS: %w", &jetstream.APIError{Code: 400, ErrorCode: 10005, Description: desc})
	}
	for _, c := range []struct {
		err  error
		want bool
	}{
		{noPeers("no suitable peers for placement, peer offline"), true},
		{noPeers("no suitable peers for placement, insufficient storage"), false},
		{noPeers("no suitable peers for placement, peer offline, insufficient storage"), false},
		{noPeers("no suitable peers for placement, tags not matched ['az:1']"), false},
		{noPeers("no suitable peers for placement"), false},
	} {
		if got := natsjs.Unavailable(c.err); got != c.want {
			t.Errorf("Unavailable(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
