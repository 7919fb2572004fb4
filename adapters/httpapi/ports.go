package httpapi

import (
	"context"

	"github.com/invictus-network/invictus/directory"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/routing"
)

// The ports: what the HTTP API needs from the rest of the system. Each is
// a small interface whose signatures use only the standard library and
// the domain packages, so that an adapter (adapters/natsjs implements them
// all in httpports.go) satisfies it without importing this package, and
// cmd/invictus wires them with a struct literal ([Deps]).
//
// Errors: a port returns an error wrapping fs.ErrNotExist for a record
// that does not exist, fs.ErrExist for one that already does (Store), and
// anything else when the infrastructure failed; the API answers the
// latter with 503 unavailable.

// CommandSink accepts the commands organisations send: the INBOUND stream.
type CommandSink interface {
	// Submit publishes msg, a command of org already encoded for
	// in.<cc>.<org> (events.ToNATS), with its source and CloudEvents id
	// as the deduplication key (Nats-Msg-Id, events.MsgID), so a command
	// sent twice is stored once. It returns when the command is stored.
	Submit(ctx context.Context, org string, msg events.Message) error
}

// Timeline reads a referral's event log: the REFERRALS stream.
type Timeline interface {
	// Events returns every stored event of the referral, in order; none
	// (and no error) when the referral does not exist.
	Events(ctx context.Context, referralID string) ([]*events.Envelope, error)
}

// Inbox reads an organisation's deliveries (out.<cc>.<org>.>) in stream
// order, without consuming them: any number of readers may read from any
// cursor.
type Inbox interface {
	// Read calls fn for the deliveries of org stored after sequence after,
	// at most limit of them, and returns once they are read. fn receives
	// each delivery's DELIVERY stream sequence (a cursor, and the id of
	// the server-sent event) and the message as stored, with its
	// CloudEvents headers; an error from fn stops the read and is
	// returned.
	Read(ctx context.Context, org string, after uint64, limit int, fn func(seq uint64, m events.Message) error) error
	// Follow calls fn for every delivery of org after sequence after,
	// those stored already and those stored later, one at a time, until
	// ctx ends (it returns nil then) or fn returns an error.
	Follow(ctx context.Context, org string, after uint64, fn func(seq uint64, m events.Message) error) error
	// Last returns a sequence at or after the last delivery stored for
	// org: following from it gives only what arrives later.
	Last(ctx context.Context, org string) (uint64, error)
}

// Outcomes tells what became of a command.
type Outcomes interface {
	// Wait blocks until the routing service has decided command
	// commandID of org about referral referralID: accepted is true once
	// the command (or, for an erasure, its consequence) is in the
	// referral's log; rejection is the command.rejected sent back to org.
	// It may be called before or after the command is submitted. When ctx
	// ends first it returns ctx's error.
	Wait(ctx context.Context, org, referralID, commandID string) (accepted bool, rejection *events.CommandRejected, err error)
}

// Store is a small key-value store for the API's own records: tokens
// (hashed), webhooks and their delivery logs. Keys are dot-separated
// tokens of [-_=a-zA-Z0-9].
type Store interface {
	// Get returns the value of key, or an error wrapping fs.ErrNotExist.
	Get(ctx context.Context, key string) ([]byte, error)
	// Put sets the value of key.
	Put(ctx context.Context, key string, value []byte) error
	// Create sets the value of key only if it has none, else returns an
	// error wrapping fs.ErrExist.
	Create(ctx context.Context, key string, value []byte) error
	// Delete removes key; deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// Keys returns the keys that start with prefix, which is empty or
	// ends with a dot.
	Keys(ctx context.Context, prefix string) ([]string, error)
}

// Directory gives the current directory snapshot; *directory.View is one.
type Directory interface {
	Snapshot() *directory.Index
}

// Matcher plans a needs profile against a directory snapshot;
// *routing.Matcher is one.
type Matcher interface {
	Match(snap *directory.Index, p events.Profile, opts ...routing.MatchOption) (*routing.Plan, error)
}

// StreamStats reads the figures of /metrics that live in the streams.
type StreamStats interface {
	// Stats returns the number of messages in DLQ and the lag (messages
	// not yet delivered) of each durable consumer, by "<stream>/<consumer>".
	Stats(ctx context.Context) (dlq uint64, lag map[string]uint64, err error)
}

// Check is one readiness check of /readyz: nil when the part it checks
// can serve.
type Check func(ctx context.Context) error
