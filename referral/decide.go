package referral

import (
	"maps"
	"slices"
	"time"

	"github.com/invictus-network/invictus/events"
)

// Decision is what an accepted command produces.
type Decision struct {
	// Record is true when the command's own CloudEvent is the fact to
	// append to the referral's subject, unchanged (same id, source and
	// payload), before Events. It is false only for referral.erase, whose
	// fact is the referral.erased in Events.
	Record bool
	// Events are the routing service's own events that follow, in order,
	// to append with source events.SourceRouting (for example the next
	// offer after a decline, or referral.unmatched when no candidate is
	// left). They need no I/O to compute.
	Events []events.Payload
	// Erase is true for referral.erase: purge every copy of the referral
	// (REFERRALS, DELIVERY, TIMERS) and leave only Events[0], the
	// referral.erased statistics record. Compute [Recipients] of it from
	// the state before the purge.
	Erase bool
}

// CommandTypes are the event types an organisation sends as commands:
// the ones [Decide] decides, and the ones the HTTP API and the client
// accept. The routing service writes the [RoutingTypes]; every other type
// is not about a referral.
var CommandTypes = []string{
	events.TypeReferralRequested,
	events.TypeReferralAccepted,
	events.TypeReferralDeclined,
	events.TypeReferralHandover,
	events.TypeReferralContacted,
	events.TypeReferralOnHold,
	events.TypeReferralCompleted,
	events.TypeReferralWithdrawn,
	events.TypeReferralErase,
	events.TypeReferralFeedback,
}

// RoutingTypes are the referral events only the routing service writes:
// sent as commands, they are forbidden.
var RoutingTypes = []string{
	events.TypeReferralPlanned,
	events.TypeReferralOffered,
	events.TypeReferralExpired,
	events.TypeReferralUnmatched,
	events.TypeReferralErased,
}

// Decide authorises an organisation's or coordinator's command against
// the referral's current state and returns what to append. It is pure:
// now and d only set the deadlines of new offers and the erasure date.
//
// by is the sender as the routing service established it (the INBOUND
// subject or the HTTP token); when by.Org is set the command's source
// must be /orgs/<by.Org>. The rules (DESIGN.md section 4):
//
//   - referral.requested: any organisation, only when the referral does
//     not exist yet;
//   - accepted, declined: only the organisation holding the placement's
//     open offer;
//   - contacted, on_hold, completed: only the organisation that accepted
//     the placement;
//   - handover: only the referrer, after acceptance and before
//     completion, and only if the victim consented to sharing data;
//   - withdrawn: only the referrer, while the referral is open;
//   - erase: the referrer or a coordinator, in any state but erased;
//   - feedback: the referrer, or the accepting organisation of the
//     placement it names, once that placement was accepted.
//
// The routing service's own event types are forbidden as commands. An
// organisation that is not a party to the referral (the referrer, or an
// organisation offered one of its placements) gets CodeNotFound, exactly
// as for a referral that does not exist; so does every organisation once
// the referral is erased.
// Errors are *[Error]; a command whose source and id were already applied
// returns CodeDuplicate, and the caller acknowledges it without appending.
func Decide(s State, cmd *events.Envelope, by Actor, now time.Time, d Deadlines) (Decision, error) {
	if cmd == nil {
		return Decision{}, fail(CodeInvalid, "", "no command")
	}
	id := cmd.Event.ID()
	if id == "" {
		return Decision{}, fail(CodeInvalid, ptrID, "the command has no id")
	}
	p := cmd.Payload
	_, isErase := p.(*events.Erase)
	if s.Seen(cmd.Event.Source(), id) || (isErase && s.Status == StatusErased && slices.Contains(s.SeenIDs, erasedByKey(id))) {
		return Decision{}, fail(CodeDuplicate, ptrID, "command %s was already applied", id)
	}
	if err := checkPayload(p, "command"); err != nil {
		return Decision{}, err
	}
	if t := cmd.Event.Type(); t != p.EventType() {
		return Decision{}, fail(CodeInvalid, ptrType, "type %q does not match its payload (%s)", t, p.EventType())
	}
	switch t := p.EventType(); {
	case slices.Contains(RoutingTypes, t):
		return Decision{}, fail(CodeForbidden, ptrType, "%s is the routing service's own event, not a command", t)
	case !slices.Contains(CommandTypes, t):
		return Decision{}, fail(CodeInvalid, ptrType, "%s is not a referral command", t)
	}
	switch {
	case by.Org != "":
		if o, err := originOf(cmd.Event.Source()); err != nil || o.org != by.Org {
			return Decision{}, fail(CodeForbidden, ptrSource, "source %q is not the sender's %s", cmd.Event.Source(), events.SourceOf(by.Org))
		}
	case !by.Coordinator:
		return Decision{}, fail(CodeForbidden, ptrSource, "the command has no sender")
	}
	subject := cmd.Event.Subject()
	i, err := check(s, p, by, subject)
	if err != nil {
		return Decision{}, err
	}
	if _, ok := p.(*events.Erase); ok {
		return Decision{Erase: true, Events: []events.Payload{erasedOf(s, now)}}, nil
	}
	next := applyCommand(s, p, i, by.Org, subject, cmd.Event.Time())
	return Decision{Record: true, Events: Pending(next, now, d)}, nil
}

// erasedOf returns what statistics keep of s: country, region, needs,
// outcome and the dates as days (UTC).
func erasedOf(s State, now time.Time) *events.Erased {
	return &events.Erased{
		Country:     s.Country,
		Region:      s.Profile.Location.Region,
		Needs:       slices.Clone(s.Profile.Needs),
		Outcome:     outcomeOf(s.Status),
		RequestedOn: s.RequestedAt.UTC().Format(time.DateOnly),
		ErasedOn:    now.UTC().Format(time.DateOnly),
	}
}

// outcomeOf maps a referral status to the outcome code of referral.erased.
func outcomeOf(st Status) string {
	switch st {
	case StatusCompleted, StatusPartiallyCompleted, StatusFailed, StatusCancelled:
		return string(st)
	}
	return "open"
}

// Pending returns the routing service's events that s owes, which need no
// I/O: a referral.unmatched for each reason of the plan's unreported
// uncovered needs, then for each placement waiting for an offer (planned,
// declined or expired) the offer to its next candidate, or
// referral.unmatched (reason all_declined) when none is left. New offers
// get deadlines from d counted from now.
//
// Decide and OnTimer return these consequences themselves; the service
// calls Pending directly after appending referral.planned (see
// [OffersAfterPlan]) and after a restart, to finish what a crash
// interrupted. Payloads are pointers, like events.NewPayload's.
func Pending(s State, now time.Time, d Deadlines) []events.Payload {
	if !s.Exists() || s.Status == StatusErased || s.Status == StatusRequested {
		return nil
	}
	var out []events.Payload
	var reasons []string
	for _, g := range s.Gaps {
		if !g.Reported && !slices.Contains(reasons, g.Reason) {
			reasons = append(reasons, g.Reason)
		}
	}
	for _, r := range reasons {
		u := &events.Unmatched{Reason: r, Profile: cloneProfile(s.Profile)}
		for _, g := range s.Gaps {
			if !g.Reported && g.Reason == r {
				u.Needs = append(u.Needs, g.Need)
				u.Details = append(u.Details, events.UnmatchedNeed{Need: g.Need, Reason: g.Reason, Offered: g.Offered, Excluded: maps.Clone(g.Excluded), Nowhere: g.Nowhere})
			}
		}
		out = append(out, u)
	}
	deadline, _ := d.ForReferral(s, now)
	for _, p := range s.Placements {
		if !p.Status.awaitingOffer() {
			continue
		}
		i, ok := p.nextCandidate()
		if !ok {
			out = append(out, &events.Unmatched{Placement: p.ID, Needs: slices.Clone(p.Needs), Reason: reasonAllDeclined, Profile: cloneProfile(s.Profile)})
			continue
		}
		c := p.Candidates[i]
		out = append(out, &events.Offered{
			Placement:    p.ID,
			Service:      c.Service,
			Organisation: c.Organisation,
			Referrer:     s.Referrer,
			Needs:        slices.Clone(p.Needs),
			Attempt:      p.Attempt + 1,
			Deadline:     deadline,
			Profile:      cloneProfile(s.Profile),
		})
	}
	return out
}

// OffersAfterPlan returns the events to append right after
// referral.planned: the offer of the first candidate of each group, with
// its deadline from d counted from now, and the gap reports of needs the
// plan could not cover. It is [Pending] of the planned state.
func OffersAfterPlan(s State, now time.Time, d Deadlines) []events.Payload {
	return Pending(s, now, d)
}

// OnTimer handles the deadline timer of attempt of placement firing at
// now: it returns referral.expired followed by the next offer, or
// referral.unmatched when no candidate is left (and anything else
// [Pending] owes). A stale timer (the offer was answered, the attempt
// superseded, the referral closed or erased) yields nothing and no error.
//
// Errors: CodeNotFound for an unknown referral or placement; CodeTooEarly
// when now is before the offer's deadline (retry at the deadline).
func OnTimer(s State, placement string, attempt int, now time.Time, d Deadlines) ([]events.Payload, error) {
	if !s.Exists() {
		return nil, fail(CodeNotFound, ptrSubject, "the referral does not exist")
	}
	if s.Status == StatusErased {
		return nil, nil
	}
	i := s.placementIndex(placement)
	if i < 0 {
		return nil, fail(CodeNotFound, ptrPlacement, "referral %s has no placement %q", s.ID, placement)
	}
	pl := s.Placements[i]
	if pl.Status != PlacementOffered || pl.Offer.Attempt != attempt {
		return nil, nil
	}
	if now.Before(pl.Offer.Deadline) {
		return nil, fail(CodeTooEarly, ptrPlacement, "the offer of placement %s expires at %s", pl.ID, pl.Offer.Deadline.Format(time.RFC3339))
	}
	exp := &events.Expired{Placement: pl.ID, Service: pl.Offer.Service, Deadline: pl.Offer.Deadline}
	next, err := applyRouting(s, exp, s.ID, now)
	if err != nil {
		return nil, err
	}
	return append([]events.Payload{exp}, Pending(next, now, d)...), nil
}
