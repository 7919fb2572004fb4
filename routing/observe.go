package routing

import (
	"errors"
	"time"

	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/referral"
)

// Command outcomes reported to [Observer.Command].
const (
	// OutcomeAccepted: the command's events are in the referral's log.
	OutcomeAccepted = "accepted"
	// OutcomeDuplicate: the command was handled before (same source and
	// id) or changes nothing; nothing was appended.
	OutcomeDuplicate = "duplicate"
	// OutcomeRejected: the command is not allowed (a [*Rejection]).
	OutcomeRejected = "rejected"
	// OutcomeFailed: the referral's log does not fold (ErrCorrupt); an
	// operator must look.
	OutcomeFailed = "failed"
)

// Observer is told what the service does, for metrics. It receives plain
// values only: event types, outcomes, durations and statuses, never a
// referral id, an organisation or anything about a victim. Calls happen
// on the goroutine handling the command, so an Observer must be safe for
// concurrent use and must not block.
//
// What one process observes is what it did: with several routing
// instances, sum their series. Referral statuses are counted from the
// transitions each instance made since it started; referrals that
// existed before are not seeded, so a status may go below zero on one
// instance after a restart.
type Observer interface {
	// Command reports the outcome (an Outcome* constant) of one command
	// given to [Service.Handle], by its CloudEvents type. A command that
	// failed in a way worth retrying is reported once it is decided.
	Command(eventType, outcome string)
	// Offered reports an offer appended to a referral's log, with the time
	// from the referral's request to the offer (zero if the request's time
	// is later, a sender's clock being ahead).
	Offered(latency time.Duration)
	// Expired reports an offer whose deadline passed (referral.expired
	// appended).
	Expired()
	// Transition reports a referral's status changed from from to to by
	// one append; from is "" for a new referral.
	Transition(from, to referral.Status)
}

// nopObserver is the Observer of a ServiceConfig without one.
type nopObserver struct{}

func (nopObserver) Command(string, string)                      {}
func (nopObserver) Offered(time.Duration)                       {}
func (nopObserver) Expired()                                    {}
func (nopObserver) Transition(referral.Status, referral.Status) {}

// observeAppend tells the observer about the events out, appended on
// before and leading to after.
func (s *Service) observeAppend(before, after referral.State, out []Outgoing) {
	o := s.cfg.Observer
	for i := range out {
		switch out[i].Event.Type() {
		case events.TypeReferralOffered:
			if after.RequestedAt.IsZero() {
				continue
			}
			o.Offered(max(out[i].Event.Time().Sub(after.RequestedAt), 0))
		case events.TypeReferralExpired:
			o.Expired()
		}
	}
	if before.Status != after.Status {
		o.Transition(before.Status, after.Status)
	}
}

// commandOutcome returns the outcome of a command that Handle ended with
// err; changed says whether its last decision appended events. It returns
// "" for an error worth retrying: the command is not decided yet.
func commandOutcome(err error, changed bool) string {
	switch {
	case err == nil && changed:
		return OutcomeAccepted
	case err == nil:
		return OutcomeDuplicate
	case errors.Is(err, ErrRejected):
		return OutcomeRejected
	case errors.Is(err, ErrCorrupt):
		return OutcomeFailed
	}
	return ""
}
