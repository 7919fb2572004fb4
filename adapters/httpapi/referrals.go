package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/referral"
)

// ReferralView is the body of GET /v1/referrals/{id}: what one
// organisation may see of a referral.
type ReferralView struct {
	// ID is the referral id.
	ID string `json:"id"`
	// Role is the caller's part: "referrer" or "recipient".
	Role string `json:"role"`
	// Status is the referral's status (referral.Status); shown to the
	// referrer only.
	Status string `json:"status,omitempty"`
	// Placements are the placements the caller may see: every placement
	// for the referrer, those it was offered for a recipient.
	Placements []PlacementView `json:"placements"`
	// Events are the events the caller may see, in log order, as
	// structured CloudEvents (application/cloudevents+json).
	Events []json.RawMessage `json:"events"`
}

// PlacementView is one placement of a [ReferralView].
type PlacementView struct {
	Placement string   `json:"placement"`
	Status    string   `json:"status"`
	Needs     []string `json:"needs"`
	// Organisation is the organisation that accepted the placement, or
	// the one it is offered to now.
	Organisation string `json:"organisation,omitempty"`
	// Outcome is the completion outcome code.
	Outcome string `json:"outcome,omitempty"`
}

// Parts of a [ReferralView].
const (
	PartReferrer  = "referrer"
	PartRecipient = "recipient"
)

// getReferral serves GET /v1/referrals/{id}. Only the referrer and the
// organisations the referral was offered to may read it, each seeing only
// the events it received (referral.Recipients) or sent. An unknown
// referral and another organisation's referral both answer 404, so that a
// response never tells whether a referral exists; so does an erased
// referral, of which only statistics remain.
func (s *Server) getReferral(w http.ResponseWriter, r *http.Request, who Token) error {
	if s.deps.Timeline == nil {
		return unavailable("reading referrals")
	}
	id := r.PathValue("id")
	notFound := errorf(http.StatusNotFound, CodeNotFound, "no referral %q that your organisation is part of", id)
	if !events.IsReferralID(id) {
		return notFound
	}
	ctx, cancel := context.WithTimeout(r.Context(), StoreTimeout)
	defer cancel()
	evs, err := s.deps.Timeline.Events(ctx, id)
	if err != nil {
		return fmt.Errorf("httpapi: read referral: %w", err)
	}
	view, err := timelineFor(id, who.Org, evs)
	if err != nil {
		return err
	}
	if view == nil {
		return notFound
	}
	writeJSON(w, http.StatusOK, view)
	return nil
}

// timelineFor folds evs and returns what org may see, or nil when org is
// no party to the referral.
func timelineFor(id, org string, evs []*events.Envelope) (*ReferralView, error) {
	var st referral.State
	view := &ReferralView{ID: id, Placements: []PlacementView{}, Events: []json.RawMessage{}}
	for _, ev := range evs {
		visible := ev.Event.Source() == events.SourceOf(org) || slices.Contains(referral.Recipients(st, ev.Payload), org)
		next, err := referral.Apply(st, ev)
		switch {
		case errors.Is(err, referral.ErrDuplicate):
			continue
		case err != nil:
			return nil, fmt.Errorf("httpapi: referral %s does not fold: %w", id, err)
		}
		st = next
		if !visible {
			continue
		}
		b, err := structured(ev.Event)
		if err != nil {
			return nil, err
		}
		view.Events = append(view.Events, b)
	}
	offered := func(p referral.Placement) bool {
		if p.Offer.Organisation == org || p.AcceptedBy == org {
			return true
		}
		return p.Refused(org)
	}
	switch {
	case st.Referrer != "" && st.Referrer == org:
		view.Role, view.Status = PartReferrer, string(st.Status)
	case slices.ContainsFunc(st.Placements, offered):
		view.Role = PartRecipient
	default:
		return nil, nil
	}
	for _, p := range st.Placements {
		if view.Role == PartRecipient && !offered(p) {
			continue
		}
		pv := PlacementView{Placement: p.ID, Status: string(p.Status), Needs: p.Needs, Organisation: p.AcceptedBy, Outcome: p.Outcome}
		if pv.Organisation == "" {
			pv.Organisation = p.Offer.Organisation
		}
		if view.Role == PartRecipient && pv.Organisation != org {
			// Offered to the caller before, now with someone else: the
			// caller learns only that its own offer is over.
			pv.Organisation, pv.Outcome = "", ""
			pv.Status = string(refusalStatus(p, org))
		}
		view.Placements = append(view.Placements, pv)
	}
	return view, nil
}

// refusalStatus is the status of org's own, ended offer of p.
func refusalStatus(p referral.Placement, org string) referral.PlacementStatus {
	for i := len(p.Refusals) - 1; i >= 0; i-- {
		if p.Refusals[i].Organisation == org {
			return p.Refusals[i].Status
		}
	}
	return p.Status
}

// structured returns the event in the CloudEvents JSON format.
func structured(e event.Event) (json.RawMessage, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("httpapi: encode event %s: %w", e.ID(), err)
	}
	return b, nil
}
