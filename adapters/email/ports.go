package email

import (
	"context"
	"time"

	"github.com/invictus-network/invictus/directory"
	"github.com/invictus-network/invictus/events"
)

// The ports: what the e-mail adapter needs from the rest of the system.
// Each is a small interface whose signatures use only the standard
// library and the domain packages, so that adapters/natsjs implements them
// (emailports.go) without importing this package, and cmd/invictus wires
// them in a [Deps] literal.
//
// Errors: a port returns an error wrapping fs.ErrNotExist for a key that
// does not exist and fs.ErrExist for one that exists already or changed
// since the revision given; anything else means the infrastructure failed.

// Deliveries reads the deliveries of e-mail organisations from durable
// consumers (one per organisation), so that nothing is lost across
// restarts.
type Deliveries interface {
	// Consume calls handle for each delivery of org that is not yet
	// acknowledged, one at a time, until ctx ends (it returns nil) or the
	// consumer fails. A consumer created by this call starts with the
	// deliveries stored at or after since (all of them when since is
	// zero). handle gets the message and how many times it was delivered
	// (from 1), and answers: a nil error and zero delay acknowledges it;
	// a positive delay delivers it again after that delay; an error
	// terminates it (never delivered again).
	Consume(ctx context.Context, org string, since time.Time,
		handle func(ctx context.Context, m events.Message, delivered uint64) (retryAfter time.Duration, err error)) error
}

// Store is a small key-value store with revisions: the adapter's state
// (node secret, sender lease, failures) and marks (used links, sent
// messages). Keys are dot-separated tokens of [-_a-zA-Z0-9].
type Store interface {
	// Get returns the value and revision of key, or fs.ErrNotExist.
	Get(ctx context.Context, key string) ([]byte, uint64, error)
	// Create sets key if it has no value, or returns fs.ErrExist.
	Create(ctx context.Context, key string, value []byte) (uint64, error)
	// Update sets key if its revision is still revision, or returns
	// fs.ErrExist.
	Update(ctx context.Context, key string, value []byte, revision uint64) (uint64, error)
	// Delete removes key; deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
}

// CommandSink publishes an organisation's commands to the routing
// service, as every channel does (INBOUND).
type CommandSink interface {
	// Submit publishes msg, a command of org encoded for in.<cc>.<org>,
	// and returns once it is stored.
	Submit(ctx context.Context, org string, msg events.Message) error
}

// Notices publishes the channel's own events (delivery.failed) to an
// organisation's delivery subject, beside the routing service's.
type Notices interface {
	// Notify publishes msg, an event on org's delivery subject of a
	// referral, unless that subject holds an event with the same id and
	// source already, and returns once it is stored.
	Notify(ctx context.Context, org string, msg events.Message) error
}

// Outcomes tells what became of a command.
type Outcomes interface {
	// Wait blocks until the routing service decided command commandID of
	// org about referralID: accepted, or the command.rejected sent back.
	Wait(ctx context.Context, org, referralID, commandID string) (accepted bool, rejection *events.CommandRejected, err error)
}

// Timeline reads a referral's event log.
type Timeline interface {
	// Events returns the stored events of the referral in order; none
	// when it does not exist.
	Events(ctx context.Context, referralID string) ([]*events.Envelope, error)
}

// Directory is the current directory; *directory.View is one.
type Directory interface {
	Snapshot() *directory.Index
	Revision() uint64
}

// FailureStore is the adapter's state store as read by the
// administrators' listing of failures ([ListFailures]).
type FailureStore interface {
	Get(ctx context.Context, key string) ([]byte, uint64, error)
	// Keys returns the keys that start with prefix, which ends with a
	// dot.
	Keys(ctx context.Context, prefix string) ([]string, error)
}
