package routing

import (
	"context"
	"errors"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/invictus-network/invictus/directory"
	"github.com/invictus-network/invictus/events"
)

// Error classes of the routing service and of the adapters behind its
// ports. Adapters translate their driver's errors into these at the edge;
// test them with errors.Is.
var (
	// ErrConflict reports an append whose expected last sequence is not
	// the referral's current one: another instance appended first. The
	// service reloads and retries, a bounded number of times.
	ErrConflict = errors.New("routing: concurrent update")
	// ErrDuplicate reports an append whose events are already stored
	// (deduplicated by their ids): an earlier attempt succeeded.
	ErrDuplicate = errors.New("routing: events already appended")
	// ErrUnavailable reports that the infrastructure failed in a way that
	// may pass: retry later.
	ErrUnavailable = errors.New("routing: unavailable")
	// ErrCorrupt reports a referral log that does not fold: an event that
	// does not decode or does not apply. It needs an operator.
	ErrCorrupt = errors.New("routing: corrupt referral log")
	// ErrRejected is the class of every [*Rejection].
	ErrRejected = errors.New("routing: command rejected")
	// ErrTooEarly reports a deadline timer that fired before the offer's
	// deadline; see [*TooEarlyError] for when to retry.
	ErrTooEarly = errors.New("routing: timer fired too early")
)

// EventLog is the referral event log (REFERRALS): one subject per
// referral, appended with optimistic concurrency.
type EventLog interface {
	// Load returns the events of the referral stored after sequence after
	// (0 for all of them), in order, with the referral's subject and its
	// last sequence. A referral without events gives an empty History.
	// Errors wrap ErrUnavailable (retry) or ErrCorrupt (a stored event
	// does not decode).
	Load(ctx context.Context, referralID string, after uint64) (History, error)
	// Append stores a's events on the referral's subject, all or none,
	// provided the subject's last sequence is a.Expected. It returns the
	// sequence of the last event stored. Errors wrap ErrConflict (the
	// subject moved on), ErrDuplicate (the events are stored already) or
	// ErrUnavailable.
	Append(ctx context.Context, a Append) (uint64, error)
}

// Directory gives the current directory snapshot; *directory.View is one.
type Directory interface {
	Snapshot() *directory.Index
}

// History is a referral's events as [EventLog.Load] returns them.
type History struct {
	// Subject is the referral's subject in the log; empty when it has no
	// events.
	Subject string
	// Events are the events after the sequence asked for, in order.
	Events []*events.Envelope
	// Last is the sequence of the subject's last event (0 when none); it
	// is the expected sequence of the next append.
	Last uint64
}

// Append is one atomic append to a referral's log.
type Append struct {
	// ReferralID is the referral the events belong to.
	ReferralID string
	// Subject is the referral's subject in the log.
	Subject string
	// Expected is the subject's last sequence the events were decided on;
	// 0 for a new referral.
	Expected uint64
	// Events are appended in order, all or none.
	Events []Outgoing
}

// Outgoing is one event to append, with what its dispatch must do.
type Outgoing struct {
	// Event is the CloudEvent; its id is its deduplication key.
	Event event.Event
	// Recipients are the organisations whose delivery subjects receive a
	// copy of the event (referral.Recipients).
	Recipients []string
	// Timer, for a referral.offered event, asks for the offer's reminder
	// and deadline to be scheduled.
	Timer *Timer
	// Cancel names placements whose pending timers are no longer needed
	// (the offer was answered, the referral closed). A timer that fires
	// anyway is stale and changes nothing.
	Cancel []string
	// Erase, on referral.erased, asks for every other copy of the referral
	// to be purged before the event is delivered.
	Erase bool
}

// Timer is an offer deadline to watch: a reminder to the offered
// organisation at Remind, then the deadline at Deadline.
type Timer struct {
	// ReferralID and Placement name the placement whose offer it watches.
	ReferralID string
	Placement  string
	// Attempt is the offer's attempt number; a timer of an earlier attempt
	// is stale.
	Attempt int
	// Organisation is the offered organisation, which gets the reminder.
	Organisation string
	// Remind is when to remind the organisation; zero for no reminder.
	Remind time.Time
	// Deadline is when the offer expires.
	Deadline time.Time
}
