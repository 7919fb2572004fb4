package routing_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/referral"
	"github.com/invictus-network/invictus/routing"
	"github.com/invictus-network/invictus/seal"
)

func TestHandleRequestPlansAndOffers(t *testing.T) {
	t.Parallel()
	b := svcSetup(t)
	id := events.NewReferralID()
	cmd := b.handle(t, "pt.ref", id, svcRequest(events.NeedSupportEmotional))

	if got := b.log.types(id); !equalTypes(got, "requested", "planned", "offered") {
		t.Fatalf("log = %v, want requested, planned, offered", got)
	}
	out := b.log.outgoing()
	if len(b.log.appends) != 1 {
		t.Fatalf("%d appends, want the command's events in one", len(b.log.appends))
	}
	if out[0].Event.ID() != cmd.Event.ID() || out[0].Event.Source() != events.SourceOf("pt.ref") {
		t.Errorf("first event is not the command itself: %s from %s", out[0].Event.ID(), out[0].Event.Source())
	}
	if len(out[0].Recipients) != 0 {
		t.Errorf("requested goes to %v, want nobody", out[0].Recipients)
	}
	key := cmd.Event.Source() + " " + cmd.Event.ID()
	for i, o := range out[1:] {
		if o.Event.ID() != routing.EventID(key, i) {
			t.Errorf("event %d id %s, want the derived %s", i+1, o.Event.ID(), routing.EventID(key, i))
		}
		if o.Event.Source() != events.SourceRouting {
			t.Errorf("event %d source %s", i+1, o.Event.Source())
		}
		if c, _ := o.Event.Extensions()[events.ExtCorrelationID].(string); c != cmd.Event.ID() {
			t.Errorf("event %d correlationid %q, want the command id", i+1, c)
		}
	}
	if !slices.Equal(out[1].Recipients, []string{"pt.ref"}) {
		t.Errorf("planned goes to %v, want the referrer", out[1].Recipients)
	}
	st := b.state(t, id)
	pl, offer := offerOf(t, st, 0)
	if offer.Organisation != "pt.a1" || offer.Attempt != 1 {
		t.Fatalf("offer %+v, want attempt 1 to pt.a1 (ties break on service id)", offer)
	}
	if !slices.Equal(out[2].Recipients, []string{"pt.ref", "pt.a1"}) {
		t.Errorf("offered goes to %v, want referrer and offered org", out[2].Recipients)
	}
	tm := out[2].Timer
	if tm == nil || tm.Placement != pl || tm.Attempt != 1 || tm.Organisation != "pt.a1" {
		t.Fatalf("offered timer %+v", tm)
	}
	now := b.clock()
	if want := now.Add(referral.DeadlineUrgentDefault); !tm.Deadline.Equal(want) || !offer.Deadline.Equal(want) {
		t.Errorf("deadline %s, offer %s, want %s", tm.Deadline, offer.Deadline, want)
	}
	if want := now.Add(referral.DeadlineUrgentDefault / 2); !tm.Remind.Equal(want) {
		t.Errorf("reminder %s, want %s", tm.Remind, want)
	}
}

func TestHandleIsIdempotent(t *testing.T) {
	t.Parallel()
	b := svcSetup(t)
	id := events.NewReferralID()
	cmd := command(t, "pt.ref", id, svcRequest(events.NeedSupportEmotional))
	by := referral.Actor{Org: "pt.ref"}
	ctx := context.Background()
	if err := b.svc.Handle(ctx, cmd, by); err != nil {
		t.Fatal(err)
	}
	// Delivered again to the same instance, and to another one (whose
	// cache is empty, as after a crash that lost the acknowledgement).
	if err := b.svc.Handle(ctx, cmd, by); err != nil {
		t.Fatalf("second delivery: %v", err)
	}
	if err := b.newService(t).Handle(ctx, cmd, by); err != nil {
		t.Fatalf("delivery to another instance: %v", err)
	}
	if got := b.log.types(id); !equalTypes(got, "requested", "planned", "offered") {
		t.Fatalf("log = %v, want the events once", got)
	}

	// The same for a command answering an offer.
	pl, _ := offerOf(t, b.state(t, id), 0)
	decline := command(t, "pt.a1", id, &events.Declined{Placement: pl, Reason: "capacity"})
	for range 3 {
		if err := b.newService(t).Handle(ctx, decline, referral.Actor{Org: "pt.a1"}); err != nil {
			t.Fatal(err)
		}
	}
	if got := b.log.types(id); !equalTypes(got, "requested", "planned", "offered", "declined", "offered") {
		t.Fatalf("log = %v after three deliveries of one decline", got)
	}
}

// A stale instance decides on an old state; its append conflicts, and it
// decides again on the new state.
func TestHandleRetriesOnConflict(t *testing.T) {
	t.Parallel()
	b := svcSetup(t)
	id := events.NewReferralID()
	b.handle(t, "pt.ref", id, svcRequest(events.NeedSupportEmotional))
	pl, _ := offerOf(t, b.state(t, id), 0)

	// While pt.a1's decline is being decided, the referrer withdraws.
	withdraw := command(t, "pt.ref", id, &events.Withdrawn{Reason: "victim_request"})
	once := true
	b.log.beforeAppend = func(a routing.Append) {
		if once && a.Events[0].Event.Type() == events.TypeReferralDeclined {
			once = false
			if err := b.newService(t).Handle(context.Background(), withdraw, referral.Actor{Org: "pt.ref"}); err != nil {
				t.Errorf("withdraw: %v", err)
			}
		}
	}
	err := b.svc.Handle(context.Background(), command(t, "pt.a1", id, &events.Declined{Placement: pl, Reason: "capacity"}), referral.Actor{Org: "pt.a1"})
	var rej *routing.Rejection
	if !errors.As(err, &rej) || rej.Code != referral.CodeConflict {
		t.Fatalf("decline after withdrawal: %v, want a conflict rejection decided on the new state", err)
	}
	if got := b.log.types(id); !equalTypes(got, "requested", "planned", "offered", "withdrawn") {
		t.Fatalf("log = %v", got)
	}
	if out := b.log.outgoing(); !slices.Equal(out[len(out)-1].Cancel, []string{pl}) {
		t.Errorf("withdrawal cancels %v, want the open placement %s", out[len(out)-1].Cancel, pl)
	}
}

// conflictLog is a log on which every append loses the race.
type conflictLog struct {
	*memLog
	appends int
}

func (l *conflictLog) Append(context.Context, routing.Append) (uint64, error) {
	l.appends++
	return 0, fmt.Errorf("%w: always", routing.ErrConflict)
}

func TestHandleGivesUpAfterMaxAttempts(t *testing.T) {
	t.Parallel()
	b := svcSetup(t)
	log := &conflictLog{memLog: b.log}
	svc, err := routing.NewService(log, b.view, routing.NewMatcher(routing.Config{}), routing.ServiceConfig{MaxAttempts: 3, Now: b.clock})
	if err != nil {
		t.Fatal(err)
	}
	err = svc.Handle(context.Background(), command(t, "pt.ref", events.NewReferralID(), svcRequest(events.NeedSupportEmotional)), referral.Actor{Org: "pt.ref"})
	if !errors.Is(err, routing.ErrConflict) || errors.Is(err, routing.ErrRejected) {
		t.Fatalf("error %v, want a retryable conflict", err)
	}
	if log.appends != 3 {
		t.Fatalf("%d appends, want MaxAttempts (3)", log.appends)
	}
}

func TestHandleRejects(t *testing.T) {
	t.Parallel()
	b := svcSetup(t)
	id := events.NewReferralID()
	b.handle(t, "pt.ref", id, svcRequest(events.NeedSupportEmotional))
	pl, _ := offerOf(t, b.state(t, id), 0)
	before := b.log.types(id)
	ctx := context.Background()

	forged := command(t, "pt.a1", id, &events.Accepted{Placement: pl})
	tests := []struct {
		name    string
		cmd     *events.Envelope
		by      string
		code    string
		pointer string
	}{
		{"forged source", forged, "pt.a2", referral.CodeForbidden, "/source"},
		{"accept by a non-party", command(t, "pt.a2", id, &events.Accepted{Placement: pl}), "pt.a2", referral.CodeNotFound, "/subject"},
		{"withdraw of another's referral", command(t, "pt.a1", id, &events.Withdrawn{Reason: "error"}), "pt.a1", referral.CodeForbidden, "/source"},
		{"unknown referral", command(t, "pt.a1", events.NewReferralID(), &events.Accepted{Placement: pl}), "pt.a1", referral.CodeNotFound, "/subject"},
		{"unknown placement", command(t, "pt.a1", id, &events.Accepted{Placement: "zz"}), "pt.a1", referral.CodeNotFound, "/data/placement"},
		{"requested twice", command(t, "pt.ref", id, svcRequest(events.NeedSupportEmotional)), "pt.ref", referral.CodeConflict, ""},
		{"routing's own event", command(t, "pt.ref", id, &events.Expired{Placement: pl, Service: "pt.a1.support", Deadline: time.Now()}), "pt.ref", referral.CodeForbidden, "/type"},
	}
	for _, tc := range tests {
		err := b.svc.Handle(ctx, tc.cmd, referral.Actor{Org: tc.by})
		rej := routing.RejectionOf(err)
		if rej == nil || !errors.Is(err, routing.ErrRejected) {
			t.Errorf("%s: %v, want a rejection", tc.name, err)
			continue
		}
		if rej.Code != tc.code || len(rej.Problems) == 0 || (tc.pointer != "" && rej.Problems[0].Pointer != tc.pointer) {
			t.Errorf("%s: rejection %+v, want code %s at %s", tc.name, rej, tc.code, tc.pointer)
		}
	}
	if got := b.log.types(id); !slices.Equal(got, before) {
		t.Fatalf("log changed by rejected commands: %v", got)
	}
}

func TestHandoverMustBeSealedToTheDirectoryRecipient(t *testing.T) {
	t.Parallel()
	b := svcSetup(t)
	id := events.NewReferralID()
	b.handle(t, "pt.ref", id, svcRequest(events.NeedSupportEmotional))
	pl, _ := offerOf(t, b.state(t, id), 0)
	b.handle(t, "pt.a1", id, &events.Accepted{Placement: pl})

	other, err := seal.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	env, err := seal.Seal(other.Recipient, []byte("name and phone"))
	if err != nil {
		t.Fatal(err)
	}
	err = b.svc.Handle(context.Background(), command(t, "pt.ref", id, &events.Handover{Placement: pl, Recipient: other.Recipient, Envelope: env}), referral.Actor{Org: "pt.ref"})
	if rej := routing.RejectionOf(err); rej == nil || rej.Problems[0].Pointer != "/data/recipient" {
		t.Fatalf("handover to a recipient not in the directory: %v, want a rejection at /data/recipient", err)
	}

	right := b.keys["pt.a1"].Recipient
	env, err = seal.Seal(right, []byte("name and phone"))
	if err != nil {
		t.Fatal(err)
	}
	b.handle(t, "pt.ref", id, &events.Handover{Placement: pl, Recipient: right, Envelope: env})
	out := b.log.outgoing()
	if last := out[len(out)-1]; last.Event.Type() != events.TypeReferralHandover || !slices.Equal(last.Recipients, []string{"pt.a1"}) {
		t.Fatalf("handover %s goes to %v, want the accepting organisation only", last.Event.Type(), last.Recipients)
	}
}

func TestOnTimer(t *testing.T) {
	t.Parallel()
	b := svcSetup(t)
	id := events.NewReferralID()
	b.handle(t, "pt.ref", id, svcRequest(events.NeedSupportEmotional))
	pl, offer := offerOf(t, b.state(t, id), 0)
	ctx := context.Background()

	err := b.svc.OnTimer(ctx, id, pl, 1)
	var early *routing.TooEarlyError
	if !errors.As(err, &early) || !early.At.Equal(offer.Deadline) || !errors.Is(err, routing.ErrTooEarly) {
		t.Fatalf("timer before the deadline: %v, want TooEarly at %s", err, offer.Deadline)
	}
	if due, err := b.svc.ReminderDue(ctx, id, pl, 1); err != nil || !due {
		t.Fatalf("reminder of the open offer: %v %v, want due", due, err)
	}

	b.advance(referral.DeadlineUrgentDefault)
	for range 2 { // the second firing is stale
		if err := b.svc.OnTimer(ctx, id, pl, 1); err != nil {
			t.Fatal(err)
		}
	}
	if got := b.log.types(id); !equalTypes(got, "requested", "planned", "offered", "expired", "offered") {
		t.Fatalf("log = %v", got)
	}
	_, next := offerOf(t, b.state(t, id), 0)
	if next.Organisation != "pt.a2" || next.Attempt != 2 {
		t.Fatalf("next offer %+v, want attempt 2 to pt.a2", next)
	}
	if due, _ := b.svc.ReminderDue(ctx, id, pl, 1); due {
		t.Fatal("reminder of an expired offer is due")
	}
	// A stale timer of attempt 1 and an unknown placement.
	if err := b.newService(t).OnTimer(ctx, id, pl, 1); err != nil {
		t.Fatal(err)
	}
	if err := b.svc.OnTimer(ctx, id, "nope", 1); !errors.Is(err, routing.ErrRejected) {
		t.Fatalf("timer of an unknown placement: %v, want a rejection", err)
	}
}

func TestEraseKeepsStatisticsOnly(t *testing.T) {
	t.Parallel()
	b := svcSetup(t)
	id := events.NewReferralID()
	req := b.handle(t, "pt.ref", id, svcRequest(events.NeedSupportEmotional))
	pl, _ := offerOf(t, b.state(t, id), 0)
	b.handle(t, "pt.a1", id, &events.Declined{Placement: pl, Reason: "capacity"})
	erase := b.handle(t, "pt.ref", id, &events.Erase{Reason: "victim_request"})

	out := b.log.outgoing()
	last := out[len(out)-1]
	if last.Event.Type() != events.TypeReferralErased || !last.Erase {
		t.Fatalf("last event %s erase=%v, want referral.erased asking for the purge", last.Event.Type(), last.Erase)
	}
	if !slices.Equal(last.Recipients, []string{"pt.ref", "pt.a1", "pt.a2"}) {
		t.Errorf("erased goes to %v, want every party", last.Recipients)
	}
	st := b.state(t, id)
	if st.Status != referral.StatusErased || st.Erasure == nil || st.Erasure.Country != "pt" || st.Erasure.RequestedOn != req.Event.Time().UTC().Format(time.DateOnly) || st.Erasure.ErasedOn != "2026-03-04" {
		t.Fatalf("state after erasure: %s %+v", st.Status, st.Erasure)
	}
	// Erasing again is a no-op; anything else is rejected.
	if err := b.newService(t).Handle(context.Background(), erase, referral.Actor{Org: "pt.ref"}); err != nil {
		t.Fatalf("erase again: %v", err)
	}
	err := b.svc.Handle(context.Background(), command(t, "pt.a2", id, &events.Accepted{Placement: pl}), referral.Actor{Org: "pt.a2"})
	// Erasure forgets the parties: an organisation is told what it would
	// be told of a referral that never existed.
	if rej := routing.RejectionOf(err); rej == nil || rej.Code != referral.CodeNotFound {
		t.Fatalf("command after erasure: %v, want not_found", err)
	}
}

func TestRejectedEvent(t *testing.T) {
	t.Parallel()
	rej := &routing.Rejection{Code: "forbidden", Problems: []events.Problem{{Pointer: "/source", Code: "forbidden", Message: "no"}}}
	id := events.NewReferralID()
	a, err := routing.Rejected("pt.a1", "cmd-1", events.TypeReferralAccepted, id, rej, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	b, err := routing.Rejected("pt.a1", "cmd-1", events.TypeReferralAccepted, id, rej, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if a.Event.ID() != b.Event.ID() {
		t.Error("a rejection built twice has two ids")
	}
	p := a.Payload.(*events.CommandRejected)
	if p.Command != "cmd-1" || p.CommandType != events.TypeReferralAccepted || a.Event.Subject() != id || a.Event.Source() != events.SourceRouting {
		t.Errorf("rejection %+v on %s", p, a.Event.Subject())
	}
	// Ids are unique per source: another organisation's command with the
	// same id gets a rejection of its own.
	if c, err := routing.Rejected("pt.a2", "cmd-1", events.TypeReferralAccepted, id, rej, time.Now()); err != nil || c.Event.ID() == a.Event.ID() {
		t.Errorf("two senders' rejections share id %s (%v)", a.Event.ID(), err)
	}
	// A command that did not decode: unknown type, subject an org id.
	if _, err := routing.Rejected("pt.a1", "", "bogus", "pt.a1", rej, time.Now()); err != nil {
		t.Errorf("rejection of an undecodable command: %v", err)
	}
	// An id outside the contract's alphabet is not repeated, nor used as
	// correlationid.
	for _, bad := range []string{"../../etc/passwd", "*", ">", "<script>", "a\xff"} {
		r, err := routing.Rejected("pt.a1", bad, events.TypeReferralAccepted, id, rej, time.Now())
		if err != nil {
			t.Fatalf("rejection of id %q: %v", bad, err)
		}
		if p := r.Payload.(*events.CommandRejected); p.Command != "unknown" || r.Event.Extensions()[events.ExtCorrelationID] != nil {
			t.Errorf("id %q: command %q, correlationid %v", bad, p.Command, r.Event.Extensions()[events.ExtCorrelationID])
		}
	}
}

// A crash half way through a chained append leaves the first events of a
// command; the command is delivered again and the service completes what
// the referral owes, then recognises the command.
func TestInterruptedAppendIsCompleted(t *testing.T) {
	t.Parallel()
	b := svcSetup(t)
	ctx := context.Background()
	id := events.NewReferralID()
	req := command(t, "pt.ref", id, svcRequest(events.NeedSupportEmotional))
	b.log.crashAfter = 1 // requested stored; planned and offered lost
	if err := b.svc.Handle(ctx, req, referral.Actor{Org: "pt.ref"}); !errors.Is(err, routing.ErrUnavailable) {
		t.Fatalf("crashed append: %v", err)
	}
	if got := b.log.types(id); !equalTypes(got, "requested") {
		t.Fatalf("log after the crash %v", got)
	}
	if err := b.newService(t).Handle(ctx, req, referral.Actor{Org: "pt.ref"}); err != nil {
		t.Fatalf("redelivery: %v", err)
	}
	if got := b.log.types(id); !equalTypes(got, "requested", "planned", "offered") {
		t.Fatalf("log after redelivery %v", got)
	}
	out := b.log.outgoing()
	if last := out[len(out)-1]; last.Timer == nil || !slices.Equal(last.Recipients, []string{"pt.ref", "pt.a1"}) {
		t.Errorf("completed offer: timer %v, recipients %v", last.Timer, last.Recipients)
	}

	// The same after a decline: declined stored, the next offer lost.
	pl, _ := offerOf(t, b.state(t, id), 0)
	decline := command(t, "pt.a1", id, &events.Declined{Placement: pl, Reason: "capacity"})
	b.log.crashAfter = 1
	if err := b.svc.Handle(ctx, decline, referral.Actor{Org: "pt.a1"}); !errors.Is(err, routing.ErrUnavailable) {
		t.Fatalf("crashed append: %v", err)
	}
	// Another command of the referral arrives first: it completes the
	// referral before it is decided.
	err := b.newService(t).Handle(ctx, command(t, "pt.a2", id, &events.Accepted{Placement: pl}), referral.Actor{Org: "pt.a2"})
	if err != nil {
		t.Fatalf("acceptance by the next candidate: %v", err)
	}
	if err := b.newService(t).Handle(ctx, decline, referral.Actor{Org: "pt.a1"}); err != nil {
		t.Fatalf("redelivered decline: %v", err)
	}
	if got := b.log.types(id); !equalTypes(got, "requested", "planned", "offered", "declined", "offered", "accepted") {
		t.Fatalf("log %v", got)
	}
}
