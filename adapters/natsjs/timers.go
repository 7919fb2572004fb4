package natsjs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/internal/tracing"
	"github.com/invictus-network/invictus/internal/wire"
	"github.com/invictus-network/invictus/routing"
)

// Offer deadlines are JetStream message schedules. Each placement has one
// schedule subject, timer.<referral id>.<placement>, holding at most one
// live schedule: first the reminder, which fires to
// timer.fire.<referral id>.<placement>; once it has fired (and the offer is
// still open) the deadline is scheduled on the same subject. A new offer of
// the placement replaces the schedule. Every schedule carries the offered
// event itself (its ce-* headers and data), so that the reminder can be
// delivered again without reading the log.
//
// Writes are ordered by (attempt, kind): a write that may be late (the
// deadline written once a reminder fired, or any write of an event
// dispatched again) is only made with the expected last sequence of the
// subject, and never over a schedule of a later attempt or over the
// deadline of the same attempt, so it cannot push back a newer timer. The
// first dispatch of an offer writes without looking: one router
// dispatches at a time, in log order, so nothing newer can be there. A
// timer that fires anyway for an answered offer is stale and changes
// nothing.

// scheduleAt returns the @at value for t: whole seconds (the format has no
// fraction), rounded up so that a timer never fires before t.
func scheduleAt(t time.Time) string {
	u := t.UTC()
	r := u.Truncate(time.Second)
	if r.Before(u) {
		r = r.Add(time.Second)
	}
	return "@at " + r.Format(time.RFC3339)
}

// timerRank orders schedules of one placement: later attempts first, and
// within an attempt the deadline after the reminder.
func timerRank(attempt int, kind string) int {
	r := attempt * 2
	if kind == TimerDeadline {
		r++
	}
	return r
}

// schedule writes the timer of kind for t on its placement's schedule
// subject, at at, carrying offer (the offered event's headers and data);
// when guarded, only if no schedule of a later rank is there. It returns
// an error wrapping routing.ErrUnavailable when JetStream fails.
func (b *Bus) schedule(ctx context.Context, t routing.Timer, kind string, at time.Time, offer *nats.Msg, guarded bool) error {
	subject, err := events.TimerSubject(t.ReferralID, t.Placement)
	if err != nil {
		return err
	}
	target, err := events.TimerFireSubject(t.ReferralID, t.Placement)
	if err != nil {
		return err
	}
	ctx, cancel := b.ctx(ctx)
	defer cancel()
	stream, err := b.stream(ctx, StreamTimers)
	if err != nil {
		return err
	}
	const attempts = 5
	for range attempts {
		var expected uint64
		var last *jetstream.RawStreamMsg
		var err error = jetstream.ErrMsgNotFound
		if guarded {
			last, err = stream.GetLastMsgForSubject(ctx, subject)
		}
		switch {
		case err == nil:
			a, _ := strconv.Atoi(last.Header.Get(HeaderAttempt))
			if timerRank(a, last.Header.Get(HeaderTimerKind)) > timerRank(t.Attempt, kind) {
				return nil // a newer timer is set
			}
			expected = last.Sequence
		case errors.Is(err, jetstream.ErrMsgNotFound):
		default:
			return fmt.Errorf("%w: read timer %s: %w", routing.ErrUnavailable, subject, err)
		}
		m := timerMsg(ctx, subject, target, t, kind, at, offer)
		if guarded {
			m.Header.Set(hdrExpectedSubjSeq, strconv.FormatUint(expected, 10))
		}
		_, err = b.js.PublishMsg(ctx, m)
		if err == nil {
			return nil
		}
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && apiErr.ErrorCode == errCodeWrongLastSeq {
			continue // written meanwhile: look again
		}
		return fmt.Errorf("%w: schedule %s: %w", routing.ErrUnavailable, subject, err)
	}
	return fmt.Errorf("%w: schedule %s: %d concurrent writes", routing.ErrUnavailable, subject, attempts)
}

// timerMsg returns the schedule message of the timer of kind for t on
// subject, firing to target at at, carrying offer, and naming ctx's span
// (the dispatch that made the offer, or the reminder that set the
// deadline) in its traceparent header: the timer's span, when it fires,
// is that span's child (see traceTimer).
func timerMsg(ctx context.Context, subject, target string, t routing.Timer, kind string, at time.Time, offer *nats.Msg) *nats.Msg {
	m := eventCopy(subject, offer.Header, offer.Data)
	tracing.Inject(ctx, m.Header)
	m.Header.Set(jetstream.ScheduleHeader, scheduleAt(at))
	m.Header.Set(jetstream.ScheduleTargetHeader, target)
	m.Header.Set(HeaderTimerKind, kind)
	m.Header.Set(HeaderAttempt, strconv.Itoa(t.Attempt))
	m.Header.Set(HeaderOrganisation, t.Organisation)
	if kind == TimerReminder {
		m.Header.Set(HeaderDeadline, t.Deadline.UTC().Format(time.RFC3339Nano))
	}
	return m
}

// firstTimer returns the kind and time of the first timer of an offer:
// its reminder, or its deadline when there is no reminder (or the
// reminder is not before the deadline).
func firstTimer(t routing.Timer) (string, time.Time) {
	if !t.Remind.IsZero() && t.Remind.Before(t.Deadline) {
		return TimerReminder, t.Remind
	}
	return TimerDeadline, t.Deadline
}

// scheduleOffer schedules the first timer of an offer (see firstTimer),
// guarded or not (see schedule).
func (b *Bus) scheduleOffer(ctx context.Context, t routing.Timer, offer *nats.Msg, guarded bool) error {
	kind, at := firstTimer(t)
	return b.schedule(ctx, t, kind, at, offer, guarded)
}

// scheduleOfferAsync publishes the first timer of an offer unguarded,
// without waiting for JetStream's acknowledgement: the first dispatch of
// an offer, whose timer nothing newer can precede (see above).
func (b *Bus) scheduleOfferAsync(ctx context.Context, t routing.Timer, offer *nats.Msg) (jetstream.PubAckFuture, error) {
	subject, err := events.TimerSubject(t.ReferralID, t.Placement)
	if err != nil {
		return nil, err
	}
	target, err := events.TimerFireSubject(t.ReferralID, t.Placement)
	if err != nil {
		return nil, err
	}
	kind, at := firstTimer(t)
	f, err := b.js.PublishMsgAsync(timerMsg(ctx, subject, target, t, kind, at, offer))
	if err != nil {
		return nil, fmt.Errorf("%w: schedule %s: %w", routing.ErrUnavailable, subject, err)
	}
	return f, nil
}

// cancelTimers purges the schedules of the referral's placements.
func (b *Bus) cancelTimers(ctx context.Context, referralID string, placements []string) error {
	for _, p := range placements {
		subject, err := events.TimerSubject(referralID, p)
		if err != nil {
			return err
		}
		if err := b.purge(ctx, StreamTimers, subject, 0); err != nil {
			return err
		}
	}
	return nil
}

// timerCancelHold is how long the dispatcher holds back the last
// cancellation of timers when no other follows.
const timerCancelHold = 5 * time.Millisecond

// heldCancel holds back the last cancellation of timers (the purge of
// the schedule subjects of answered offers) until the next one, or
// timerCancelHold passes. An offer answered within moments of being made
// leaves its schedule as the only message of TIMERS' last store block,
// and purging it makes the server write a tombstone and create a new
// block file; at a steady flow of answers that happened for nearly every
// answer. Held back, the purged schedule is rarely the last one left.
// Cancelling is tidying up: a timer that fires anyway for an answered
// offer is stale and changes nothing, so a cancellation that fails is
// logged, not retried.
type heldCancel struct {
	mu      sync.Mutex
	pending *timerCancel
	timer   *time.Timer
	bus     *Bus
	log     *slog.Logger
}

// timerCancel is one held cancellation: the placements of a referral.
type timerCancel struct {
	referralID string
	placements []string
}

// cancel holds back the cancellation of the referral's placements'
// timers and carries out the one held before.
func (h *heldCancel) cancel(ctx context.Context, referralID string, placements []string) {
	h.mu.Lock()
	prev := h.pending
	h.pending = &timerCancel{referralID: referralID, placements: placements}
	if h.timer == nil {
		h.timer = time.AfterFunc(timerCancelHold, h.flush)
	} else {
		h.timer.Reset(timerCancelHold)
	}
	h.mu.Unlock()
	h.purge(ctx, prev)
}

// flush carries out the cancellation held back, if any.
func (h *heldCancel) flush() {
	h.mu.Lock()
	prev := h.pending
	h.pending = nil
	h.mu.Unlock()
	h.purge(context.Background(), prev)
}

func (h *heldCancel) purge(ctx context.Context, c *timerCancel) {
	if c == nil {
		return
	}
	if err := h.bus.cancelTimers(ctx, c.referralID, c.placements); err != nil {
		h.log.InfoContext(ctx, "natsjs: timers not cancelled; they will fire stale", slog.String("referral", c.referralID), slog.Any("error", err))
	}
}

// deleteTimerMsg removes a handled fire message from TIMERS.
func (b *Bus) deleteTimerMsg(ctx context.Context, seq uint64) error {
	ctx, cancel := b.ctx(ctx)
	defer cancel()
	stream, err := b.stream(ctx, StreamTimers)
	if err != nil {
		return err
	}
	if err := stream.DeleteMsg(ctx, seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return fmt.Errorf("%w: delete timer message %d: %w", routing.ErrUnavailable, seq, err)
	}
	return nil
}

// handleTimer handles one message fired to timer.fire.<id>.<placement>: a
// reminder is delivered again to the offered organisation if its offer is
// still open, and the deadline scheduled; a deadline goes to
// Service.OnTimer. The fire message is then deleted and acknowledged.
func (r *Router) handleTimer(ctx context.Context, m jetstream.Msg) {
	log := r.cfg.Logger.With(slog.String("subject", m.Subject()))
	id, placement, fired, err := events.ParseTimerSubject(m.Subject())
	if err != nil || !fired {
		log.WarnContext(ctx, "natsjs: not a timer fire subject; dropped")
		r.term(ctx, m, "not a timer")
		return
	}
	h := m.Headers()
	attempt, _ := strconv.Atoi(h.Get(HeaderAttempt))
	t := routing.Timer{ReferralID: id, Placement: placement, Attempt: attempt, Organisation: h.Get(HeaderOrganisation)}
	if attempt < 1 {
		log.WarnContext(ctx, "natsjs: timer without attempt; dropped")
		r.term(ctx, m, "no attempt")
		return
	}
	kind := h.Get(HeaderTimerKind)
	ctx, span := traceTimer(ctx, m, kind, t)
	defer span.End()
	switch kind {
	case TimerReminder:
		err = r.remind(ctx, t, m)
	case TimerDeadline:
		err = r.svc.OnTimer(ctx, id, placement, attempt)
	default:
		log.WarnContext(ctx, "natsjs: unknown timer kind; dropped", slog.String("kind", kind))
		traceTimerOutcome(span, "dropped")
		r.term(ctx, m, "unknown kind")
		return
	}
	var early *routing.TooEarlyError
	switch {
	case err == nil:
		traceTimerOutcome(span, "done")
	case errors.As(err, &early):
		traceTimerOutcome(span, "early")
		r.nak(ctx, m, time.Until(early.At)+10*time.Millisecond)
		return
	case errors.Is(err, routing.ErrRejected), errors.Is(err, routing.ErrCorrupt):
		traceTimerOutcome(span, "dropped")
		log.WarnContext(ctx, "natsjs: timer dropped", slog.String("referral", id), slog.Any("error", err))
	default:
		traceTimerOutcome(span, "retried")
		log.InfoContext(ctx, "natsjs: timer retried", slog.String("referral", id), slog.Any("error", err))
		r.nak(ctx, m, r.retryDelay(m))
		return
	}
	if md, err := m.Metadata(); err == nil {
		if err := r.bus.deleteTimerMsg(ctx, md.Sequence.Stream); err != nil {
			log.InfoContext(ctx, "natsjs: fired timer not deleted", slog.Any("error", err))
		}
	}
	r.ack(ctx, m)
}

// remind delivers the offer again as a reminder when it is still open,
// then schedules its deadline.
func (r *Router) remind(ctx context.Context, t routing.Timer, m jetstream.Msg) error {
	due, err := r.svc.ReminderDue(ctx, t.ReferralID, t.Placement, t.Attempt)
	if err != nil || !due {
		return err
	}
	h := m.Headers()
	deadline, err := time.Parse(time.RFC3339Nano, h.Get(HeaderDeadline))
	if err != nil {
		return fmt.Errorf("%w: reminder without deadline: %w", routing.ErrCorrupt, err)
	}
	t.Deadline = deadline
	offer := &nats.Msg{Header: h, Data: m.Data()}
	if events.IsOrgID(t.Organisation) {
		subject, err := events.DeliverySubject(t.Organisation, t.ReferralID)
		if err != nil {
			return err
		}
		copyMsg := eventCopy(subject, h, m.Data())
		copyMsg.Header.Set(HeaderReminder, "1")
		copyMsg.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("%s.%s.reminder", headerFold(h, "ce-id"), t.Organisation))
		traceCopy(ctx, copyMsg, t.Organisation)
		cctx, cancel := r.bus.ctx(ctx)
		_, err = r.bus.js.PublishMsg(cctx, copyMsg)
		cancel()
		if err != nil {
			return fmt.Errorf("%w: deliver reminder: %w", routing.ErrUnavailable, err)
		}
	}
	return r.bus.schedule(ctx, t, TimerDeadline, deadline, offer, true)
}

// headerFold returns the first value of header key, matched
// case-insensitively.
func headerFold(h nats.Header, key string) string { return wire.HeaderValue(h, key) }
