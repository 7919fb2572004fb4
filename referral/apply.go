package referral

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"time"

	"github.com/invictus-network/invictus/events"
)

// Unmatched reason of a placement whose candidates all declined or let
// their offer expire.
const reasonAllDeclined = "all_declined"

// origin says who wrote an event: the routing service or an organisation.
type origin struct {
	routing bool
	org     string
}

func originOf(source string) (origin, error) {
	if source == events.SourceRouting {
		return origin{routing: true}, nil
	}
	if org, ok := events.OrgOfSource(source); ok {
		return origin{org: org}, nil
	}
	return origin{}, fail(CodeInvalid, ptrSource, "source %q is neither %s nor %s", source, events.SourceRouting, events.SourceOf("<organisation id>"))
}

// Apply applies one event of the referral's subject to s and returns the
// new state. It never modifies s (the result shares no memory that a later
// Apply would change).
//
// Events an organisation sends (requested, accepted, declined, handover,
// contacted, on_hold, completed, withdrawn, feedback) are recorded as the
// command's own CloudEvent, so their source names the organisation and
// Apply checks the same rules as [Decide]. The routing service's events
// (planned, offered, expired, unmatched, erased) must have the source
// events.SourceRouting. referral.erase is a command only: its fact is
// referral.erased.
//
// The payload is a pointer, as events.Decode returns it.
//
// Errors are *[Error]. An event whose id was already applied returns s
// unchanged with CodeDuplicate ([ErrDuplicate]), which callers treat as
// success. On any error the returned state is s.
func Apply(s State, ev *events.Envelope) (State, error) {
	if ev == nil {
		return s, fail(CodeInvalid, "", "no event")
	}
	id := ev.Event.ID()
	if id == "" {
		return s, fail(CodeInvalid, ptrID, "the event has no id")
	}
	if s.Seen(ev.Event.Source(), id) {
		return s, fail(CodeDuplicate, ptrID, "event %s was already applied", id)
	}
	p := ev.Payload
	if err := checkPayload(p, "event"); err != nil {
		return s, err
	}
	if t := ev.Event.Type(); t != p.EventType() {
		return s, fail(CodeInvalid, ptrType, "type %q does not match its payload (%s)", t, p.EventType())
	}
	o, err := originOf(ev.Event.Source())
	if err != nil {
		return s, err
	}
	next, err := applyPayload(s, p, o, ev.Event.Subject(), ev.Event.Time())
	if err != nil {
		return s, err
	}
	if _, ok := p.(*events.Erased); ok {
		// The subject is purged down to this one event: the state is what
		// folding that event alone gives. The erase command it answers is
		// remembered so that a re-sent erase is a duplicate, not an error.
		var erasedBy string
		if c := correlationID(ev); c != "" {
			erasedBy = erasedByKey(c)
		}
		next.SeenIDs = remember(remember(nil, erasedBy), events.MsgID(ev.Event.Source(), id))
		next.Version = 1
		return next, nil
	}
	next.SeenIDs = remember(s.SeenIDs, events.MsgID(ev.Event.Source(), id))
	next.Version = s.Version + 1
	return next, nil
}

// Fold applies evs in order to the empty state. Duplicates (an id seen
// before) are skipped. On another error it returns the state before the
// failing event and the error, wrapped with the event's index.
func Fold(evs []*events.Envelope) (State, error) {
	var s State
	for i, ev := range evs {
		next, err := Apply(s, ev)
		if errors.Is(err, ErrDuplicate) {
			continue
		}
		if err != nil {
			return s, fmt.Errorf("referral: fold event %d: %w", i, err)
		}
		s = next
	}
	return s, nil
}

func correlationID(ev *events.Envelope) string {
	v, _ := ev.Event.Extensions()[events.ExtCorrelationID].(string)
	return v
}

// applyPayload checks and applies p written by o at time at.
func applyPayload(s State, p events.Payload, o origin, subject string, at time.Time) (State, error) {
	switch p.(type) {
	case *events.Planned, *events.Offered, *events.Expired, *events.Unmatched, *events.Erased:
		if !o.routing {
			return s, fail(CodeForbidden, ptrSource, "%s is written by the routing service only", p.EventType())
		}
		return applyRouting(s, p, subject, at)
	case *events.Erase:
		return s, fail(CodeInvalid, ptrType, "%s is a command; the fact recorded is %s", events.TypeReferralErase, events.TypeReferralErased)
	case *events.Requested, *events.Accepted, *events.Declined, *events.Handover, *events.Contacted,
		*events.OnHold, *events.Completed, *events.Withdrawn, *events.Feedback:
		if o.routing {
			return s, fail(CodeForbidden, ptrSource, "%s must be recorded with the sending organisation's source", p.EventType())
		}
		i, err := check(s, p, Actor{Org: o.org}, subject)
		if err != nil {
			return s, err
		}
		return applyCommand(s, p, i, o.org, subject, at), nil
	}
	return s, fail(CodeInvalid, ptrType, "%s is not a referral event", p.EventType())
}

// exists checks that the referral exists, is not erased and is the one
// subject names.
func exists(s State, subject string) error {
	switch {
	case !s.Exists():
		return fail(CodeNotFound, ptrSubject, "referral %q does not exist", subject)
	case s.Status == StatusErased:
		return fail(CodeErased, ptrSubject, "referral %s was erased", s.ID)
	case subject != s.ID:
		return fail(CodeInvalid, ptrSubject, "subject %q is not referral %s", subject, s.ID)
	}
	return nil
}

// check authorises an organisation's command against s: whether the
// referral and placement exist, whether by may issue it, and whether the
// state allows it, in that order. It returns the index of the placement
// the command is about, or -1.
func check(s State, p events.Payload, by Actor, subject string) (int, error) {
	if _, ok := p.(*events.Requested); ok {
		switch {
		case s.Exists() && by.Org != "":
			// Erased or not, the id is taken; an organisation is not told
			// more, whether it is a party or not.
			return -1, fail(CodeConflict, ptrSubject, "referral %s already exists", subject)
		case s.Status == StatusErased:
			return -1, fail(CodeErased, ptrSubject, "referral %s was erased", s.ID)
		case s.Exists():
			return -1, fail(CodeConflict, ptrSubject, "referral %s already exists", s.ID)
		case by.Org == "":
			return -1, fail(CodeForbidden, ptrSource, "a referral is requested by an organisation")
		case !events.IsReferralID(subject):
			return -1, fail(CodeInvalid, ptrSubject, "subject %q is not a referral id", subject)
		}
		return -1, nil
	}
	if by.Org != "" && !by.Coordinator && (s.Status == StatusErased || !s.isParty(by.Org)) {
		// The same rejection as for a referral that does not exist: a
		// non-party learns neither that it exists nor its state.
		return -1, fail(CodeNotFound, ptrSubject, "referral %q does not exist", subject)
	}
	if err := exists(s, subject); err != nil {
		return -1, err
	}
	if by.Org == "" {
		if _, ok := p.(*events.Erase); !ok || !by.Coordinator {
			return -1, fail(CodeForbidden, ptrSource, "a coordinator may only erase a referral")
		}
	}
	switch v := p.(type) {
	case *events.Erase:
		if !by.Coordinator && by.Org != s.Referrer {
			return -1, fail(CodeForbidden, ptrSource, "only the referrer or a coordinator may erase referral %s", s.ID)
		}
		return -1, nil
	case *events.Withdrawn:
		if by.Org != s.Referrer {
			return -1, fail(CodeForbidden, ptrSource, "only the referrer may withdraw referral %s", s.ID)
		}
		if s.Status.Closed() {
			return -1, fail(CodeConflict, ptrSubject, "referral %s is %s", s.ID, s.Status)
		}
		return -1, nil
	case *events.Feedback:
		if v.Placement == "" {
			if by.Org != s.Referrer {
				return -1, fail(CodeForbidden, ptrPlacement, "feedback without a placement comes from the referrer; an accepting organisation names its placement")
			}
			return -1, nil
		}
	}
	id := placementOf(p)
	i := s.placementIndex(id)
	if i < 0 {
		return -1, fail(CodeNotFound, ptrPlacement, "referral %s has no placement %q", s.ID, id)
	}
	pl := s.Placements[i]
	switch p.(type) {
	case *events.Accepted, *events.Declined:
		if !pl.offeredTo(by.Org) {
			return -1, fail(CodeForbidden, ptrSource, "placement %s is not offered to %s", pl.ID, by.Org)
		}
		if pl.Status != PlacementOffered || pl.Offer.Organisation != by.Org {
			return -1, fail(CodeConflict, ptrPlacement, "the offer of placement %s to %s is no longer open (placement is %s)", pl.ID, by.Org, pl.Status)
		}
	case *events.Handover:
		if by.Org != s.Referrer {
			return -1, fail(CodeForbidden, ptrSource, "only the referrer hands over referral %s", s.ID)
		}
		if !s.Consent.ShareData {
			return -1, fail(CodeForbidden, "", "the victim did not consent to sharing data with the receiving organisation")
		}
		if !pl.Status.Active() {
			return -1, fail(CodeConflict, ptrPlacement, "placement %s is %s; hand over after acceptance, before completion", pl.ID, pl.Status)
		}
	case *events.Contacted:
		if err := accepting(pl, by.Org); err != nil {
			return -1, err
		}
		if pl.Status != PlacementAccepted && pl.Status != PlacementOnHold {
			return -1, fail(CodeConflict, ptrPlacement, "placement %s is %s; contact is reported from accepted or on_hold", pl.ID, pl.Status)
		}
	case *events.OnHold, *events.Completed:
		if err := accepting(pl, by.Org); err != nil {
			return -1, err
		}
		if !pl.Status.Active() {
			return -1, fail(CodeConflict, ptrPlacement, "placement %s is %s", pl.ID, pl.Status)
		}
	case *events.Feedback:
		if by.Org != s.Referrer && (pl.AcceptedBy == "" || by.Org != pl.AcceptedBy) {
			return -1, fail(CodeForbidden, ptrSource, "feedback on placement %s comes from the referrer or the accepting organisation", pl.ID)
		}
		if pl.AcceptedBy == "" {
			return -1, fail(CodeConflict, ptrPlacement, "placement %s was never accepted", pl.ID)
		}
	}
	return i, nil
}

// accepting checks that org is the organisation that accepted pl. The
// organisation holding the open offer is told to accept first.
func accepting(pl Placement, org string) error {
	if pl.AcceptedBy != "" {
		if pl.AcceptedBy == org {
			return nil
		}
		return fail(CodeForbidden, ptrSource, "placement %s was accepted by another organisation", pl.ID)
	}
	if pl.Status == PlacementOffered && pl.Offer.Organisation == org {
		return fail(CodeConflict, ptrPlacement, "placement %s is offered to %s; accept it first", pl.ID, org)
	}
	return fail(CodeForbidden, ptrSource, "%s has not accepted placement %s", org, pl.ID)
}

// applyCommand applies an organisation's command that check accepted.
func applyCommand(s State, p events.Payload, i int, org, subject string, at time.Time) State {
	var pl Placement
	if i >= 0 {
		pl = s.Placements[i]
	}
	switch v := p.(type) {
	case *events.Requested:
		return State{
			ID:                    subject,
			Country:               v.Location.Country,
			Referrer:              org,
			Profile:               cloneProfile(v.Profile),
			Consent:               v.Consent,
			PreferredOrganisation: v.PreferredOrganisation,
			ResponseHours:         v.ResponseHours,
			Status:                StatusRequested,
			RequestedAt:           at,
			UpdatedAt:             at,
			Version:               s.Version,
			Sequence:              s.Sequence,
			SeenIDs:               s.SeenIDs,
		}
	case *events.Accepted:
		pl.Status = PlacementAccepted
		pl.AcceptedBy = pl.Offer.Organisation
		pl.AcceptedAt = at
	case *events.Declined:
		pl.Status = PlacementDeclined
		pl.Refusals = append(slices.Clip(pl.Refusals), Refusal{
			Attempt: pl.Offer.Attempt, Service: pl.Offer.Service, Organisation: pl.Offer.Organisation,
			Status: PlacementDeclined, Reason: v.Reason, At: at,
		})
	case *events.Handover:
		pl.Handovers++
	case *events.Contacted:
		pl.Status = PlacementInProgress
		pl.ContactedAt = at
	case *events.OnHold:
		pl.Status = PlacementOnHold
		pl.HoldUntil = time.Time{}
		if v.Until != nil {
			pl.HoldUntil = *v.Until
		}
	case *events.Completed:
		pl.Status = PlacementCompleted
		pl.Outcome = v.Outcome
		pl.ClosedAt = at
	case *events.Withdrawn:
		ps := slices.Clone(s.Placements)
		for j := range ps {
			if !ps[j].Status.Closed() {
				ps[j].Status = PlacementCancelled
				ps[j].ClosedAt = at
			}
		}
		s.Placements = ps
		s.Status = StatusCancelled
		s.WithdrawnReason = v.Reason
		s.ClosedAt = at
	case *events.Feedback:
		s.Feedback++
	}
	if i >= 0 {
		s = s.withPlacement(i, pl)
	}
	s.UpdatedAt = at
	return derive(s, at)
}

// applyRouting checks and applies one of the routing service's events.
func applyRouting(s State, p events.Payload, subject string, at time.Time) (State, error) {
	if v, ok := p.(*events.Erased); ok {
		switch {
		case s.Status == StatusErased:
			return s, fail(CodeErased, ptrSubject, "referral %s was erased", s.ID)
		case !events.IsReferralID(subject):
			return s, fail(CodeInvalid, ptrSubject, "subject %q is not a referral id", subject)
		case s.Exists() && subject != s.ID:
			return s, fail(CodeInvalid, ptrSubject, "subject %q is not referral %s", subject, s.ID)
		}
		e := *v
		e.Needs = slices.Clone(v.Needs)
		return State{ID: subject, Country: v.Country, Status: StatusErased, Erasure: &e, UpdatedAt: at, ClosedAt: at, Sequence: s.Sequence}, nil
	}
	if err := exists(s, subject); err != nil {
		return s, err
	}
	switch v := p.(type) {
	case *events.Planned:
		if s.Status != StatusRequested {
			return s, fail(CodeConflict, ptrType, "referral %s is %s, not waiting for a plan", s.ID, s.Status)
		}
		ps := make([]Placement, 0, len(v.Groups))
		for gi, g := range v.Groups {
			if !events.IsPlacementID(g.Placement) || s.placementIndex(g.Placement) >= 0 || slices.ContainsFunc(ps, func(p Placement) bool { return p.ID == g.Placement }) {
				return s, fail(CodeInvalid, fmt.Sprintf("/data/groups/%d/placement", gi), "placement id %q is invalid or repeated", g.Placement)
			}
			if len(g.Candidates) == 0 {
				return s, fail(CodeInvalid, fmt.Sprintf("/data/groups/%d/candidates", gi), "placement %s has no candidate", g.Placement)
			}
			ps = append(ps, Placement{ID: g.Placement, Needs: slices.Clone(g.Needs), Candidates: cloneCandidates(g.Candidates), Status: PlacementPlanned})
		}
		gaps := make([]Gap, 0, len(v.Unmatched))
		for _, u := range v.Unmatched {
			gaps = append(gaps, Gap{Need: u.Need, Reason: u.Reason, Offered: u.Offered, Excluded: maps.Clone(u.Excluded), Nowhere: u.Nowhere})
		}
		s.Placements, s.Gaps = ps, gaps
		s.DirectoryRevision = v.DirectoryRevision
		s.Status = StatusPlanned
	case *events.Offered:
		i := s.placementIndex(v.Placement)
		if i < 0 {
			return s, fail(CodeNotFound, ptrPlacement, "referral %s has no placement %q", s.ID, v.Placement)
		}
		pl := s.Placements[i]
		if !pl.Status.awaitingOffer() {
			return s, fail(CodeConflict, ptrPlacement, "placement %s is %s, not waiting for an offer", pl.ID, pl.Status)
		}
		if v.Attempt != pl.Attempt+1 {
			return s, fail(CodeConflict, "/data/attempt", "offer attempt %d of placement %s, expected %d", v.Attempt, pl.ID, pl.Attempt+1)
		}
		if pl.Refused(v.Organisation) {
			return s, fail(CodeConflict, "/data/organisation", "%s already refused placement %s", v.Organisation, pl.ID)
		}
		ci := slices.IndexFunc(pl.Candidates[pl.Next:], func(c events.Candidate) bool {
			return c.Service == v.Service && c.Organisation == v.Organisation
		})
		if ci < 0 {
			return s, fail(CodeConflict, "/data/service", "%s is not a remaining candidate of placement %s", v.Service, pl.ID)
		}
		if v.Referrer != s.Referrer {
			return s, fail(CodeInvalid, "/data/referrer", "referrer %q is not %s", v.Referrer, s.Referrer)
		}
		if !slices.Equal(v.Needs, pl.Needs) {
			return s, fail(CodeInvalid, "/data/needs", "needs are not those of placement %s", pl.ID)
		}
		pl.Status = PlacementOffered
		pl.Attempt++
		pl.Next += ci + 1
		pl.Offer = Offer{Attempt: pl.Attempt, Service: v.Service, Organisation: v.Organisation, Deadline: v.Deadline, OfferedAt: at}
		s = s.withPlacement(i, pl)
	case *events.Expired:
		i := s.placementIndex(v.Placement)
		if i < 0 {
			return s, fail(CodeNotFound, ptrPlacement, "referral %s has no placement %q", s.ID, v.Placement)
		}
		pl := s.Placements[i]
		if pl.Status != PlacementOffered || pl.Offer.Service != v.Service {
			return s, fail(CodeConflict, ptrPlacement, "placement %s has no open offer to %s", pl.ID, v.Service)
		}
		pl.Status = PlacementExpired
		pl.Refusals = append(slices.Clip(pl.Refusals), Refusal{
			Attempt: pl.Offer.Attempt, Service: pl.Offer.Service, Organisation: pl.Offer.Organisation,
			Status: PlacementExpired, At: at,
		})
		s = s.withPlacement(i, pl)
	case *events.Unmatched:
		if v.Placement == "" {
			return reportGaps(s, *v, at)
		}
		i := s.placementIndex(v.Placement)
		if i < 0 {
			return s, fail(CodeNotFound, ptrPlacement, "referral %s has no placement %q", s.ID, v.Placement)
		}
		pl := s.Placements[i]
		if !pl.Status.awaitingOffer() {
			return s, fail(CodeConflict, ptrPlacement, "placement %s is %s, not waiting for an offer", pl.ID, pl.Status)
		}
		if _, left := pl.nextCandidate(); left {
			return s, fail(CodeConflict, ptrPlacement, "placement %s still has candidates to offer", pl.ID)
		}
		pl.Status = PlacementFailed
		pl.UnmatchedReason = v.Reason
		pl.ClosedAt = at
		s = s.withPlacement(i, pl)
	}
	s.UpdatedAt = at
	return derive(s, at), nil
}

// reportGaps marks the plan's uncovered needs named by an unmatched event
// without a placement as reported.
func reportGaps(s State, v events.Unmatched, at time.Time) (State, error) {
	if s.Status == StatusRequested {
		return s, fail(CodeConflict, ptrType, "referral %s has no plan yet", s.ID)
	}
	if len(v.Needs) == 0 {
		return s, fail(CodeInvalid, "/data/needs", "no needs")
	}
	gaps := slices.Clone(s.Gaps)
	for ni, n := range v.Needs {
		k := slices.IndexFunc(gaps, func(g Gap) bool { return g.Need == n })
		switch {
		case k < 0:
			return s, fail(CodeInvalid, fmt.Sprintf("/data/needs/%d", ni), "%s is not a need the plan left uncovered", n)
		case gaps[k].Reason != v.Reason:
			return s, fail(CodeInvalid, "/data/reason", "need %s was left uncovered for %s, not %s", n, gaps[k].Reason, v.Reason)
		case gaps[k].Reported:
			return s, fail(CodeConflict, fmt.Sprintf("/data/needs/%d", ni), "need %s was already reported unmatched", n)
		}
		gaps[k].Reported = true
	}
	s.Gaps = gaps
	s.UpdatedAt = at
	return s, nil
}

// derive sets the referral's status from its placements once it has a
// plan: terminal when every placement is closed, in progress once one was
// accepted, planned before.
func derive(s State, at time.Time) State {
	if s.Status != StatusPlanned && s.Status != StatusInProgress {
		return s
	}
	allClosed, allCompleted, anyCompleted, anyAccepted := true, true, false, false
	for _, p := range s.Placements {
		switch p.Status {
		case PlacementCompleted:
			anyCompleted = true
		case PlacementFailed, PlacementCancelled:
			allCompleted = false
		default:
			allClosed, allCompleted = false, false
		}
		if p.AcceptedBy != "" {
			anyAccepted = true
		}
	}
	switch {
	case allClosed && !anyCompleted:
		s.Status = StatusFailed
	case allClosed && allCompleted && len(s.Gaps) == 0:
		s.Status = StatusCompleted
	case allClosed:
		s.Status = StatusPartiallyCompleted
	case anyAccepted:
		s.Status = StatusInProgress
	default:
		s.Status = StatusPlanned
	}
	if s.Status.Closed() {
		s.ClosedAt = at
	}
	return s
}

// checkPayload refuses a missing payload, and a payload that is a value
// rather than the pointer events.Decode and events.NewPayload return: the
// package's type switches name the pointer types. what is "event" or
// "command".
func checkPayload(p events.Payload, what string) error {
	if events.IsNil(p) {
		return fail(CodeInvalid, "/data", "the %s has no payload", what)
	}
	if reflect.ValueOf(p).Kind() != reflect.Pointer {
		return fail(CodeInvalid, "/data", "the %s's payload is a %T value, not a pointer as events.Decode returns", what, p)
	}
	return nil
}

// placementOf returns the placement a payload is about, or "".
func placementOf(p events.Payload) string {
	if pp, ok := p.(events.PlacementPayload); ok && !events.IsNil(p) {
		return pp.PlacementID()
	}
	return ""
}
