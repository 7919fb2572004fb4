package natsjs

import (
	"errors"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Unavailable reports whether err means JetStream did not answer for now
// and may on a later try: nobody listens on its API (a node whose
// JetStream is not up yet), a request went unanswered, or the cluster
// has no meta or stream leader yet. A missing stream, a refused request,
// a bad configuration are not.
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
		}
	}
	return false
}

// JetStream error codes nats.go does not name.
const (
	jsErrCodeClusterNotAvail  jetstream.ErrorCode = 10008 // JetStream system temporarily unavailable
	jsErrCodeClusterNotLeader jetstream.ErrorCode = 10009 // JetStream cluster can not handle request
)
