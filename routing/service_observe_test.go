package routing_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/referral"
	"github.com/invictus-network/invictus/routing"
)

// recorder is a routing.Observer that records what it is told.
type recorder struct {
	mu          sync.Mutex
	commands    []string
	offers      []time.Duration
	expiries    int
	transitions []string
}

var _ routing.Observer = (*recorder)(nil)

func (r *recorder) Command(eventType, outcome string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.commands = append(r.commands, eventType+" "+outcome)
}

func (r *recorder) Offered(latency time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.offers = append(r.offers, latency)
}

func (r *recorder) Expired() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expiries++
}

func (r *recorder) Transition(from, to referral.Status) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.transitions = append(r.transitions, fmt.Sprintf("%q>%q", from, to))
}

// take returns what was recorded since the last take and forgets it.
func (r *recorder) take() (commands []string, offers []time.Duration, expiries int, transitions []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	commands, offers, expiries, transitions = r.commands, r.offers, r.expiries, r.transitions
	r.commands, r.offers, r.expiries, r.transitions = nil, nil, 0, nil
	return commands, offers, expiries, transitions
}

func TestObserver(t *testing.T) {
	t.Parallel()
	b := svcSetup(t)
	rec := &recorder{}
	svc, err := routing.NewService(b.log, b.view, routing.NewMatcher(routing.Config{}), routing.ServiceConfig{Now: b.clock, Observer: rec})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	id := events.NewReferralID()
	// cmd builds a command of org sent at the service's clock minus ago.
	cmd := func(org string, p events.Payload, ago time.Duration) *events.Envelope {
		t.Helper()
		ev, err := events.New(events.SourceOf(org), id, p, events.WithTime(b.clock().Add(-ago)))
		if err != nil {
			t.Fatal(err)
		}
		env, err := events.DecodeEvent(ev)
		if err != nil {
			t.Fatal(err)
		}
		return env
	}
	check := func(step string, commands []string, offers []time.Duration, expiries int, transitions []string) {
		t.Helper()
		c, o, e, tr := rec.take()
		if !slices.Equal(c, commands) || !slices.Equal(o, offers) || e != expiries || !slices.Equal(tr, transitions) {
			t.Errorf("%s: observed commands %q, offers %v, expiries %d, transitions %v;\nwant %q, %v, %d, %v",
				step, c, o, e, tr, commands, offers, expiries, transitions)
		}
	}

	// A new referral, sent 90 s before the routing service sees it: one
	// accepted command, one offer 90 s after the request, and the
	// referral's first status.
	req := cmd("pt.ref", svcRequest(events.NeedSupportEmotional), 90*time.Second)
	if err := svc.Handle(ctx, req, referral.Actor{Org: "pt.ref"}); err != nil {
		t.Fatal(err)
	}
	check("requested", []string{events.TypeReferralRequested + " accepted"}, []time.Duration{90 * time.Second}, 0,
		[]string{`"">"planned"`})

	// The same command again: a duplicate, nothing else.
	if err := svc.Handle(ctx, req, referral.Actor{Org: "pt.ref"}); err != nil {
		t.Fatal(err)
	}
	check("requested again", []string{events.TypeReferralRequested + " duplicate"}, nil, 0, nil)

	// pt.a2 accepts a placement offered to pt.a1; pt.a2 sends a command
	// as pt.ref: both rejected, changing nothing.
	pl, _ := offerOf(t, b.state(t, id), 0)
	err = svc.Handle(ctx, cmd("pt.a2", &events.Accepted{Placement: pl}, 0), referral.Actor{Org: "pt.a2"})
	if !errors.Is(err, routing.ErrRejected) {
		t.Fatalf("pt.a2 accepts pt.a1's offer: %v, want a rejection", err)
	}
	err = svc.Handle(ctx, cmd("pt.ref", &events.Withdrawn{Reason: "victim_request"}, 0), referral.Actor{Org: "pt.a2"})
	if !errors.Is(err, routing.ErrRejected) {
		t.Fatalf("a command under another source: %v, want a rejection", err)
	}
	check("rejected", []string{events.TypeReferralAccepted + " rejected", events.TypeReferralWithdrawn + " rejected"}, nil, 0, nil)

	// The deadline passes: an expiry, and the next offer two hours and
	// 90 s after the request. A timer is no command.
	b.advance(referral.DeadlineUrgentDefault)
	if err := svc.OnTimer(ctx, id, pl, 1); err != nil {
		t.Fatal(err)
	}
	check("expired", nil, []time.Duration{referral.DeadlineUrgentDefault + 90*time.Second}, 1, nil)

	// pt.a2 accepts the new offer: the referral is in progress.
	if err := svc.Handle(ctx, cmd("pt.a2", &events.Accepted{Placement: pl}, 0), referral.Actor{Org: "pt.a2"}); err != nil {
		t.Fatal(err)
	}
	check("accepted", []string{events.TypeReferralAccepted + " accepted"}, nil, 0, []string{`"planned">"in_progress"`})

	// An offer "before" the request (the sender's clock ahead) is zero.
	other := id
	id = events.NewReferralID()
	if err := svc.Handle(ctx, cmd("pt.ref", svcRequest(events.NeedSupportEmotional), -time.Minute), referral.Actor{Org: "pt.ref"}); err != nil {
		t.Fatal(err)
	}
	check("requested from the future", []string{events.TypeReferralRequested + " accepted"}, []time.Duration{0}, 0,
		[]string{`"">"planned"`})

	// Completing and withdrawing close referrals.
	id = other
	if err := svc.Handle(ctx, cmd("pt.ref", &events.Withdrawn{Reason: "victim_request"}, 0), referral.Actor{Org: "pt.ref"}); err != nil {
		t.Fatal(err)
	}
	check("withdrawn", []string{events.TypeReferralWithdrawn + " accepted"}, nil, 0, []string{`"in_progress">"cancelled"`})
}

// A service without an Observer works as before.
func TestObserverIsOptional(t *testing.T) {
	t.Parallel()
	b := svcSetup(t)
	id := events.NewReferralID()
	b.handle(t, "pt.ref", id, svcRequest(events.NeedSupportEmotional))
	if got := b.log.types(id); !equalTypes(got, "requested", "planned", "offered") {
		t.Fatalf("log = %v", got)
	}
}
