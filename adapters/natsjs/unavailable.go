package natsjs

import (
	"errors"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Unavailable reports whether err means JetStream did not answer for now
// and may on a later try: nobody listens on its API (a node whose
// JetStream is not up yet), a request went unanswered, or the cluster
// has no meta or stream leader yet, or a replicated stream cannot be
// placed only because a peer is offline (a node the meta leader has not
// heard from yet after the cluster's start, or one restarting). A
// missing stream, a refused request, a bad configuration (too few nodes,
// no storage left) are not.
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, nats.ErrTimeout) || errors.Is(err, nats.ErrConnectionReconnecting) ||
		errors.Is(err, nats.ErrDisconnected) {
		return true
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode {
		case jsErrCodeClusterNotAvail, jsErrCodeClusterNotLeader:
			return true
		case jsErrCodeClusterNoPeers:
			// The server lists every reason; a peer offline alone passes.
			return apiErr.Description == noPeersOffline
		}
	}
	return false
}

// JetStream error codes nats.go does not name.
const (
	jsErrCodeClusterNotAvail  jetstream.ErrorCode = 10008 // JetStream system temporarily unavailable
	jsErrCodeClusterNotLeader jetstream.ErrorCode = 10009 // JetStream cluster can not handle request
	jsErrCodeClusterNoPeers   jetstream.ErrorCode = 10005 // no suitable peers for placement, <reasons>
)

// noPeersOffline is the description of jsErrCodeClusterNoPeers when its
// only reason is a peer offline (nats-server 2.15's selectPeerError).
const noPeersOffline = "no suitable peers for placement, peer offline"
