package routing_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/referral"
	"github.com/invictus-network/invictus/routing"
)

// countingLog counts the reads of the log.
type countingLog struct {
	*memLog
	loads atomic.Int64
}

func (l *countingLog) Load(ctx context.Context, id string, after uint64) (routing.History, error) {
	l.loads.Add(1)
	return l.memLog.Load(ctx, id, after)
}

// A command for a referral the service has in its cache, or for a new
// referral, is decided without reading the log: the append's expected
// sequence is the check.
func TestHandleDecidesOnTheCacheWithoutReadingTheLog(t *testing.T) {
	t.Parallel()
	b := svcSetup(t)
	log := &countingLog{memLog: b.log}
	svc, err := routing.NewService(log, b.view, routing.NewMatcher(routing.Config{}), routing.ServiceConfig{Now: b.clock})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	id := events.NewReferralID()
	if err := svc.Handle(ctx, command(t, "pt.ref", id, svcRequest(events.NeedSupportEmotional)), referral.Actor{Org: "pt.ref"}); err != nil {
		t.Fatal(err)
	}
	pl, _ := offerOf(t, b.state(t, id), 0)
	if err := svc.Handle(ctx, command(t, "pt.a1", id, &events.Accepted{Placement: pl}), referral.Actor{Org: "pt.a1"}); err != nil {
		t.Fatal(err)
	}
	if n := log.loads.Load(); n != 0 {
		t.Errorf("%d reads of the log for a new referral and a command on the cached one, want none", n)
	}
	if got := b.log.types(id); !equalTypes(got, "requested", "planned", "offered", "accepted") {
		t.Fatalf("log %v", got)
	}
}

// An instance whose cache is behind must not reject a command that the
// current state allows: a rejection decided on the cache is checked
// against the log before anyone is told.
func TestHandleChecksACachedRejectionAgainstTheLog(t *testing.T) {
	t.Parallel()
	b := svcSetup(t)
	ctx := context.Background()
	id := events.NewReferralID()
	b.handle(t, "pt.ref", id, svcRequest(events.NeedSupportEmotional)) // b.svc caches: offered to pt.a1
	pl, _ := offerOf(t, b.state(t, id), 0)

	// Another instance handles the decline: the offer moves to pt.a2.
	other := b.newService(t)
	if err := other.Handle(ctx, command(t, "pt.a1", id, &events.Declined{Placement: pl, Reason: "capacity"}), referral.Actor{Org: "pt.a1"}); err != nil {
		t.Fatal(err)
	}
	// b.svc's cache still says pt.a1 holds the offer; pt.a2's acceptance is
	// allowed all the same.
	if err := b.svc.Handle(ctx, command(t, "pt.a2", id, &events.Accepted{Placement: pl}), referral.Actor{Org: "pt.a2"}); err != nil {
		t.Fatalf("acceptance by the current candidate, on a stale cache: %v", err)
	}
	if got := b.log.types(id); !equalTypes(got, "requested", "planned", "offered", "declined", "offered", "accepted") {
		t.Fatalf("log %v", got)
	}
	// And a command the log does not allow is still rejected.
	err := b.svc.Handle(ctx, command(t, "pt.a3", id, &events.Accepted{Placement: pl}), referral.Actor{Org: "pt.a3"})
	if !errors.Is(err, routing.ErrRejected) {
		t.Fatalf("acceptance by an organisation never offered: %v, want a rejection", err)
	}
}

// An instance that has never seen a referral decides a command about it
// as for a new one; the append finds the referral exists, and the
// command is decided again on the log.
func TestHandleOnAnUncachedReferral(t *testing.T) {
	t.Parallel()
	b := svcSetup(t)
	ctx := context.Background()
	id := events.NewReferralID()
	req := command(t, "pt.ref", id, svcRequest(events.NeedSupportEmotional))
	if err := b.svc.Handle(ctx, req, referral.Actor{Org: "pt.ref"}); err != nil {
		t.Fatal(err)
	}
	// The same request, delivered again to a new instance: nothing new.
	if err := b.newService(t).Handle(ctx, req, referral.Actor{Org: "pt.ref"}); err != nil {
		t.Fatalf("redelivered request on a new instance: %v", err)
	}
	// Another request with the same referral id: rejected, nothing new.
	again := command(t, "pt.ref", id, svcRequest(events.NeedInfoRights))
	if err := b.newService(t).Handle(ctx, again, referral.Actor{Org: "pt.ref"}); !errors.Is(err, routing.ErrRejected) {
		t.Fatalf("second request for an existing referral: %v, want a rejection", err)
	}
	if got := b.log.types(id); !equalTypes(got, "requested", "planned", "offered") {
		t.Fatalf("log %v", got)
	}
}
