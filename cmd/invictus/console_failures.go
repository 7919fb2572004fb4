package main

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/invictus-network/invictus/adapters/email"
	"github.com/invictus-network/invictus/adapters/natsjs"
	"github.com/invictus-network/invictus/adapters/web/console"
)

// emailFailures is the console's list of the e-mails given up
// (console.Failures): the e-mail channel's records in KV email, whether
// serve runs the channel or `invictus adapter email` does.
type emailFailures struct {
	js jetstream.JetStream

	mu    sync.Mutex
	store *natsjs.RevStore // nil until the bucket is found
}

// Failures returns the failures of org's messages, oldest first, or
// console.ErrNoChannel when the bucket does not exist.
func (e *emailFailures) Failures(ctx context.Context, org string) ([]console.DeliveryFailure, error) {
	e.mu.Lock()
	st := e.store
	e.mu.Unlock()
	if st == nil {
		kv, err := e.js.KeyValue(ctx, natsjs.BucketEmail)
		if errors.Is(err, jetstream.ErrBucketNotFound) {
			return nil, console.ErrNoChannel
		}
		if err != nil {
			return nil, fmt.Errorf("KV %s: %w", natsjs.BucketEmail, err)
		}
		st = natsjs.NewRevStore(kv)
		e.mu.Lock()
		e.store = st
		e.mu.Unlock()
	}
	fs, err := email.ListFailures(ctx, st, org)
	if err != nil {
		return nil, err
	}
	out := make([]console.DeliveryFailure, len(fs))
	for i, f := range fs {
		out[i] = console.DeliveryFailure{At: f.At, Org: f.Org, Kind: f.Kind, Referral: f.Referral, Placement: f.Placement,
			Code: f.Code, Attempts: f.Attempts, Temporary: f.Temporary}
	}
	return out, nil
}
