package natsjs

import (
	"context"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/invictus-network/invictus/routing"
)

// DispatchHeld dispatches msgs, REFERRALS messages taken from the
// dispatcher consumer, on one new lane of r's dispatcher, in order, and
// settles them: the dispatch of a router that held them while another
// router took over.
func DispatchHeld(ctx context.Context, r *Router, msgs ...jetstream.Msg) {
	l := r.newDispatchState(ctx, nil)
	defer l.timer.Stop()
	for _, m := range msgs {
		l.jobs = append(l.jobs, r.startDispatch(ctx, m, l))
	}
	l.flush()
}

// DispatchGroup is the priority group a router pulls the dispatcher
// consumer in.
const DispatchGroup = dispatchGroup

// LoadsBehind is how many of b's loads a replica behind the leader
// answered, completed from the leader.
func LoadsBehind(b *Bus) int64 { return b.behind.Load() }

// LoadDirect is b.Load without the leader's confirmation on a
// replicated stream: what Load was before it, for benchmarks.
func LoadDirect(ctx context.Context, b *Bus, referralID string, after uint64) (routing.History, error) {
	ctx, cancel := b.ctx(ctx)
	defer cancel()
	return b.loadDirect(ctx, referralID, after)
}
