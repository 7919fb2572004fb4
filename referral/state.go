package referral

import (
	"maps"
	"slices"
	"time"

	"github.com/invictus-network/invictus/events"
)

// Status is the status of a referral as a whole. The codes follow the HL7
// FHIR Task statuses that closed-loop referral standards use, written in
// snake case like the rest of the contract.
type Status string

// Referral statuses. The zero Status ("") means the referral does not exist.
// After [StatusPlanned] the status is derived from the placements by [Apply]
// (see the package documentation); there is no separate event for it.
const (
	// StatusRequested: referral.requested recorded, no plan yet.
	StatusRequested Status = "requested"
	// StatusPlanned: a plan exists, no placement has been accepted yet.
	StatusPlanned Status = "planned"
	// StatusInProgress: at least one placement has been accepted and at
	// least one placement is still open.
	StatusInProgress Status = "in_progress"
	// StatusCompleted: every placement completed and the plan covered
	// every need.
	StatusCompleted Status = "completed"
	// StatusPartiallyCompleted: every placement is closed, some completed,
	// and some failed or some needs had no service in the plan.
	StatusPartiallyCompleted Status = "partially_completed"
	// StatusFailed: every placement is closed and none completed (or the
	// plan had no placement at all).
	StatusFailed Status = "failed"
	// StatusCancelled: withdrawn by the referrer.
	StatusCancelled Status = "cancelled"
	// StatusErased: purged on the victim's request; only statistics remain.
	StatusErased Status = "erased"
)

// Closed reports whether the status is terminal: no placement can change
// any more (feedback, gap reports and erasure are still accepted, except
// after erasure).
func (s Status) Closed() bool {
	switch s {
	case StatusCompleted, StatusPartiallyCompleted, StatusFailed, StatusCancelled, StatusErased:
		return true
	}
	return false
}

// PlacementStatus is the status of one placement: one need group of the
// plan, offered to its ranked candidates one after the other.
type PlacementStatus string

// Placement statuses (FHIR Task-like codes).
const (
	// PlacementPlanned: in the plan, not offered yet.
	PlacementPlanned PlacementStatus = "planned"
	// PlacementOffered: offered to one organisation, waiting for its answer.
	PlacementOffered PlacementStatus = "offered"
	// PlacementAccepted: accepted by the offered organisation.
	PlacementAccepted PlacementStatus = "accepted"
	// PlacementInProgress: the accepting organisation made contact.
	PlacementInProgress PlacementStatus = "in_progress"
	// PlacementOnHold: waitlisted by the accepting organisation.
	PlacementOnHold PlacementStatus = "on_hold"
	// PlacementCompleted: closed by the accepting organisation with an
	// outcome code.
	PlacementCompleted PlacementStatus = "completed"
	// PlacementDeclined: the last offer was declined; the next candidate
	// is owed (see [Pending]).
	PlacementDeclined PlacementStatus = "declined"
	// PlacementExpired: the last offer's deadline passed; the next
	// candidate is owed (see [Pending]).
	PlacementExpired PlacementStatus = "expired"
	// PlacementCancelled: the referral was withdrawn while the placement
	// was open.
	PlacementCancelled PlacementStatus = "cancelled"
	// PlacementFailed: no candidate was left (referral.unmatched).
	PlacementFailed PlacementStatus = "failed"
)

// Closed reports whether the placement can no longer change.
func (p PlacementStatus) Closed() bool {
	switch p {
	case PlacementCompleted, PlacementCancelled, PlacementFailed:
		return true
	}
	return false
}

// Active reports whether the placement is accepted and not yet closed:
// accepted, in progress or on hold.
func (p PlacementStatus) Active() bool {
	switch p {
	case PlacementAccepted, PlacementInProgress, PlacementOnHold:
		return true
	}
	return false
}

// awaitingOffer reports whether the placement needs its next offer (or an
// unmatched event when no candidate is left).
func (p PlacementStatus) awaitingOffer() bool {
	switch p {
	case PlacementPlanned, PlacementDeclined, PlacementExpired:
		return true
	}
	return false
}

// Actor is who sends a command: an organisation, a coordinator, or a
// coordinator acting for an organisation. The routing service builds it
// from the subject or token the command arrived with, never from the
// command's own content.
type Actor struct {
	// Org is the sending organisation's id (pt.apav), or empty for a
	// coordinator that acts for no organisation.
	Org string
	// Coordinator is true for a national or European coordinator, who may
	// erase a referral on the victim's request and nothing else.
	Coordinator bool
}

// Offer is one offer of a placement to one organisation.
type Offer struct {
	// Attempt counts the offers of the placement, from 1.
	Attempt      int
	Service      string
	Organisation string
	Deadline     time.Time
	OfferedAt    time.Time
}

// Refusal is an offer that ended without acceptance: declined by the
// organisation or expired at its deadline. An organisation that refused a
// placement is never offered it again.
type Refusal struct {
	Attempt      int
	Service      string
	Organisation string
	// Status is PlacementDeclined or PlacementExpired.
	Status PlacementStatus
	// Reason is the decline reason code; empty for an expiry.
	Reason string
	At     time.Time
}

// Placement is one need group of the plan and its way through the
// candidates.
type Placement struct {
	ID    string
	Needs []string
	// Candidates are the plan's ranked candidates, offered in order.
	Candidates []events.Candidate
	// Next is the index in Candidates from which the next offer is chosen.
	Next int
	// Attempt is the number of offers made so far.
	Attempt int
	Status  PlacementStatus
	// Offer is the latest offer (zero before the first); it stays after
	// the offer is answered.
	Offer Offer
	// AcceptedBy is the organisation that accepted the placement; once set
	// it never changes.
	AcceptedBy  string
	AcceptedAt  time.Time
	ContactedAt time.Time
	// HoldUntil is the optional end of a hold reported by referral.on_hold.
	HoldUntil time.Time
	// Outcome is the completion outcome code.
	Outcome string
	// Handovers counts the sealed envelopes handed over.
	Handovers int
	// Refusals lists the declined and expired offers, oldest first.
	Refusals []Refusal
	// UnmatchedReason is the reason of referral.unmatched for a failed
	// placement.
	UnmatchedReason string
	ClosedAt        time.Time
}

// Refused reports whether org declined this placement or let an offer of
// it expire.
func (p Placement) Refused(org string) bool {
	for _, r := range p.Refusals {
		if r.Organisation == org {
			return true
		}
	}
	return false
}

// offeredTo reports whether org has been offered this placement, now or
// before.
func (p Placement) offeredTo(org string) bool {
	return org != "" && (p.Offer.Organisation == org || p.Refused(org))
}

// nextCandidate returns the index of the next candidate to offer: the
// first from Next on whose organisation has not refused the placement.
func (p Placement) nextCandidate() (int, bool) {
	for i := p.Next; i < len(p.Candidates); i++ {
		if !p.Refused(p.Candidates[i].Organisation) {
			return i, true
		}
	}
	return 0, false
}

// Gap is a need of the profile that the plan could not cover at all.
type Gap struct {
	Need string
	// Reason is no_service or excluded (see [events.UnmatchedNeed]).
	Reason string
	// Offered and Excluded are the plan's counts of the services that
	// offer the need and of those each hard constraint removed.
	Offered  int
	Excluded map[string]int
	// Nowhere: no service of the directory offered the need at all.
	Nowhere bool
	// Reported is true once referral.unmatched reported it.
	Reported bool
}

// MaxSeenIDs bounds the CloudEvents ids a [State] remembers for
// idempotency. Older ids are forgotten first; a duplicate older than that
// is still caught by JetStream's duplicate window and by the transition
// rules (a second acceptance is a conflict).
const MaxSeenIDs = 1024

// State is a referral's state: the fold of the events on its subject.
// Apply never modifies a State in place; values can be shared freely.
type State struct {
	// ID is the referral id (the events' CloudEvents subject).
	ID string
	// Country is where the victim is: the profile's location country,
	// kept after erasure. The referrer's own country is the prefix of
	// Referrer.
	Country string
	// Referrer is the referring organisation's id.
	Referrer              string
	Profile               events.Profile
	Consent               events.Consent
	PreferredOrganisation string
	// ResponseHours is the response time the referrer asked for, if any;
	// it shortens offer deadlines (see [Deadlines.ForReferral]).
	ResponseHours int
	Status        Status
	// DirectoryRevision is the directory revision the plan used.
	DirectoryRevision uint64
	// Placements are the plan's groups in plan order.
	Placements []Placement
	// Gaps are the needs no candidate covered.
	Gaps []Gap
	// WithdrawnReason is the reason code of referral.withdrawn.
	WithdrawnReason string
	// Feedback counts the survey answers sets received.
	Feedback int
	// Erasure is what statistics keep of an erased referral.
	Erasure *events.Erased
	// RequestedAt is the time of referral.requested; UpdatedAt of the last
	// event; ClosedAt of the event that made Status terminal.
	RequestedAt time.Time
	UpdatedAt   time.Time
	ClosedAt    time.Time
	// Version is the number of events on the referral's subject this state
	// reflects. Erasure leaves one event on the subject, so it sets
	// Version to 1.
	Version uint64
	// Sequence is for the caller: the stream sequence of the last event
	// applied, used as the expected last subject sequence of the next
	// append. Apply leaves it unchanged.
	Sequence uint64
	// SeenIDs are the events and commands applied, each as its source and
	// CloudEvents id together (events.MsgID), oldest first, at most
	// MaxSeenIDs of them: an id is unique per source only, so one
	// organisation's id never makes another's command a duplicate.
	SeenIDs []string
}

// Exists reports whether the referral has been requested (or erased).
func (s State) Exists() bool { return s.Status != "" }

// Seen reports whether the event or command with this CloudEvents source
// and id has already been applied.
func (s State) Seen(source, id string) bool {
	return slices.Contains(s.SeenIDs, events.MsgID(source, id))
}

// erasedByKey is how an erased state remembers the erase command that
// erased it: referral.erased carries the command's id (correlationid) but
// not its source, so a re-sent erase with that id is a duplicate
// whoever sends it (it changes nothing either way).
func erasedByKey(id string) string { return "erase " + id }

// isParty reports whether org takes part in the referral: the referrer or
// an organisation that was offered one of its placements. Other
// organisations are told nothing about it.
func (s State) isParty(org string) bool { return org != "" && slices.Contains(s.parties(), org) }

// Placement returns the placement with this id.
func (s State) Placement(id string) (Placement, bool) {
	if i := s.placementIndex(id); i >= 0 {
		return s.Placements[i], true
	}
	return Placement{}, false
}

// LiveOffer returns the placement's offer when attempt is its current,
// unanswered offer. The routing service uses it to decide whether a
// reminder is still due.
func (s State) LiveOffer(placement string, attempt int) (Offer, bool) {
	p, ok := s.Placement(placement)
	if !ok || s.Status == StatusErased || p.Status != PlacementOffered || p.Offer.Attempt != attempt {
		return Offer{}, false
	}
	return p.Offer, true
}

func (s State) placementIndex(id string) int {
	if id == "" {
		return -1
	}
	for i := range s.Placements {
		if s.Placements[i].ID == id {
			return i
		}
	}
	return -1
}

// withPlacement returns s with placement i replaced, copying the slice.
func (s State) withPlacement(i int, p Placement) State {
	ps := slices.Clone(s.Placements)
	ps[i] = p
	s.Placements = ps
	return s
}

// remember appends id to ids in a new slice bounded by MaxSeenIDs.
func remember(ids []string, id string) []string {
	if id == "" || slices.Contains(ids, id) {
		return ids
	}
	if len(ids) >= MaxSeenIDs {
		ids = ids[len(ids)-MaxSeenIDs+1:]
	}
	out := make([]string, len(ids), len(ids)+1)
	copy(out, ids)
	return append(out, id)
}

// parties returns every organisation involved in the referral: the
// referrer first, then every organisation ever offered a placement.
func (s State) parties() []string {
	var out []string
	add := func(org string) {
		if org != "" && !slices.Contains(out, org) {
			out = append(out, org)
		}
	}
	add(s.Referrer)
	for _, p := range s.Placements {
		for _, r := range p.Refusals {
			add(r.Organisation)
		}
		add(p.Offer.Organisation)
		add(p.AcceptedBy)
	}
	return out
}

// cloneProfile returns a deep copy of p, so that a State never shares
// memory with a payload its caller may change.
func cloneProfile(p events.Profile) events.Profile {
	p.Needs = slices.Clone(p.Needs)
	p.Crimes = slices.Clone(p.Crimes)
	p.Flags = slices.Clone(p.Flags)
	p.Languages = slices.Clone(p.Languages)
	p.Channels = slices.Clone(p.Channels)
	p.Accessibility = slices.Clone(p.Accessibility)
	if p.Location.Lat != nil {
		v := *p.Location.Lat
		p.Location.Lat = &v
	}
	if p.Location.Lon != nil {
		v := *p.Location.Lon
		p.Location.Lon = &v
	}
	return p
}

func cloneCandidates(cs []events.Candidate) []events.Candidate {
	out := make([]events.Candidate, len(cs))
	for i, c := range cs {
		c.Covers = slices.Clone(c.Covers)
		c.Reasons = slices.Clone(c.Reasons)
		c.Components = maps.Clone(c.Components)
		out[i] = c
	}
	return out
}
