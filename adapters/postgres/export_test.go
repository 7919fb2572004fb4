package postgres

import "context"

// SetAfterPublish installs f to run after a batch's acknowledgements and
// before its commit; an error from f aborts the batch as a crash would.
func SetAfterPublish(r *Relay, f func(ctx context.Context, ids []string) error) { r.afterPublish = f }

// RelayBatch runs one batch of r, as its Run loop does.
func RelayBatch(ctx context.Context, r *Relay) (int, error) { return r.relayBatch(ctx) }

// ErrNotHead is returned by a batch that does not hold the head of the
// outbox.
var ErrNotHead = errNotHead
