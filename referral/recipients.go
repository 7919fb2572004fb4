package referral

import (
	"slices"

	"github.com/invictus-network/invictus/events"
)

// Recipients returns the organisations that must receive event p on their
// delivery subjects, referrer first, without repeats. s is the state the
// event applies to (the state before it): erasure, for one, empties the
// state. An organisation only ever receives the events of its own
// placements:
//
//   - requested: nobody (the referrer learns it was recorded from planned,
//     or from command.rejected);
//   - planned, unmatched: the referrer;
//   - offered: the offered organisation and the referrer;
//   - accepted, declined: the referrer and the answering organisation (its
//     acknowledgement);
//   - expired: the referrer and the organisation whose offer expired;
//   - handover: the accepting organisation only (the sealed envelope goes
//     to exactly one party);
//   - contacted, on_hold, completed: the referrer and the accepting
//     organisation;
//   - withdrawn: the referrer and every organisation holding an open offer
//     or an active placement;
//   - erase, erased: every party: the referrer and every organisation ever
//     offered a placement, so each purges its copies;
//   - feedback: the referrer, and the accepting organisation of the
//     placement it names.
//
// Other types (command.rejected goes to the command's sender; directory
// events) return nil.
func Recipients(s State, p events.Payload) []string {
	var out []string
	add := func(org string) {
		if org != "" && !slices.Contains(out, org) {
			out = append(out, org)
		}
	}
	pl, _ := s.Placement(placementOf(p))
	switch v := p.(type) {
	case *events.Planned, *events.Unmatched:
		add(s.Referrer)
	case *events.Offered:
		add(s.Referrer)
		add(v.Organisation)
	case *events.Accepted, *events.Declined, *events.Expired:
		add(s.Referrer)
		add(pl.Offer.Organisation)
	case *events.Handover:
		add(pl.AcceptedBy)
	case *events.Contacted, *events.OnHold, *events.Completed:
		add(s.Referrer)
		add(pl.AcceptedBy)
	case *events.Feedback:
		add(s.Referrer)
		add(pl.AcceptedBy)
	case *events.Withdrawn:
		add(s.Referrer)
		for _, q := range s.Placements {
			switch {
			case q.Status == PlacementOffered:
				add(q.Offer.Organisation)
			case q.Status.Active():
				add(q.AcceptedBy)
			}
		}
	case *events.Erase, *events.Erased:
		for _, org := range s.parties() {
			add(org)
		}
	}
	return out
}
