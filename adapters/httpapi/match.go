package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/routing"
)

// matchRequest is the body of POST /v1/match: a needs profile, as in the
// data of referral.requested. consent and response_hours are accepted (so
// that the same document can be previewed and then sent) and ignored.
type matchRequest struct {
	events.Profile
	PreferredOrganisation string          `json:"preferred_organisation,omitempty"`
	Consent               json.RawMessage `json:"consent,omitempty"`
	ResponseHours         int             `json:"response_hours,omitempty"`
}

// MatchResponse is the body of POST /v1/match: the plan the routing
// service would make now, with the explanation of every candidate.
type MatchResponse struct {
	// DirectoryRevision is the directory revision the plan was made from.
	DirectoryRevision uint64 `json:"directory_revision"`
	// Urgency is the profile's urgency.
	Urgency string `json:"urgency"`
	// Call112 is true for an emergency: the sender must call 112 as well.
	Call112 bool `json:"call_112,omitempty"`
	// Groups are the placements, each with its ranked candidates.
	Groups []MatchGroup `json:"groups"`
	// Unmatched are the needs no eligible service covers.
	Unmatched []events.UnmatchedNeed `json:"unmatched"`
	// Relaxed are, for unmatched needs, the services that fail one
	// relaxable constraint only, marked with it; never offered.
	Relaxed []MatchRelaxed `json:"relaxed,omitempty"`
	// Excluded counts the candidates excluded by each hard constraint.
	Excluded map[string]int `json:"excluded,omitempty"`
	// Considered is the number of candidates found; Eligible the number
	// that passed every hard constraint.
	Considered int `json:"considered"`
	Eligible   int `json:"eligible"`
}

// MatchGroup is one placement of a [MatchResponse].
type MatchGroup struct {
	Placement  string           `json:"placement"`
	Needs      []string         `json:"needs"`
	Candidates []MatchCandidate `json:"candidates"`
}

// MatchRelaxed are the options of a [MatchResponse] for an unmatched
// need if Constraint were relaxed.
type MatchRelaxed struct {
	Need       string           `json:"need"`
	Constraint string           `json:"constraint"`
	Candidates []MatchCandidate `json:"candidates"`
}

// MatchCandidate is one ranked service of a [MatchGroup].
type MatchCandidate struct {
	Service      string             `json:"service"`
	Organisation string             `json:"organisation"`
	Name         string             `json:"name,omitempty"`
	Covers       []string           `json:"covers"`
	Score        float64            `json:"score"`
	Components   map[string]float64 `json:"components"`
	Reasons      []string           `json:"reasons"`
}

// postMatch serves POST /v1/match.
func (s *Server) postMatch(w http.ResponseWriter, r *http.Request, tok Token) error {
	if s.deps.Matcher == nil || s.deps.Directory == nil {
		return unavailable("plan previews")
	}
	var req matchRequest
	if e := readJSON(r, s.cfg.MaxJSONBody, &req); e != nil {
		return e
	}
	if e := checkProfile(req.Profile, req.PreferredOrganisation, s.cfg.Now()); e != nil {
		return e
	}
	// The organisation previews what the routing service would plan for
	// its referral: never its own services.
	opts := []routing.MatchOption{routing.WithReferrer(tok.Org)}
	if req.PreferredOrganisation != "" {
		opts = append(opts, routing.WithPreferredOrganisation(req.PreferredOrganisation))
	}
	plan, err := s.deps.Matcher.Match(s.deps.Directory.Snapshot(), req.Profile, opts...)
	switch {
	case errors.Is(err, routing.ErrInvalidProfile):
		return errorf(http.StatusUnprocessableEntity, events.CodeFormat, "%s", strings.TrimPrefix(err.Error(), "routing: "))
	case err != nil:
		return err
	}
	writeJSON(w, http.StatusOK, matchResponse(plan))
	return nil
}

// checkProfile validates a profile with the rules of referral.requested;
// pointers are into the request body.
func checkProfile(p events.Profile, preferred string, now time.Time) *Error {
	req := &events.Requested{
		Profile:               p,
		Consent:               events.Consent{Referral: true, GivenAt: now, Method: "verbal", RecordedBy: "invictus-preview1"},
		PreferredOrganisation: preferred,
	}
	err := events.ValidatePayload(req)
	var ve *events.ValidationError
	if !errors.As(err, &ve) {
		return nil
	}
	out := &Error{Status: http.StatusUnprocessableEntity}
	for _, p := range ve.Problems {
		out.Problems = append(out.Problems, Problem{Pointer: strings.TrimPrefix(p.Pointer, "/data"), Code: p.Code, Message: p.Message})
	}
	return out
}

// matchResponse converts a plan.
func matchResponse(p *routing.Plan) MatchResponse {
	out := MatchResponse{
		DirectoryRevision: p.Revision, Urgency: p.Urgency, Call112: p.Urgency == events.UrgencyEmergency,
		Groups: make([]MatchGroup, 0, len(p.Groups)), Unmatched: p.Unmatched, Excluded: p.Excluded,
		Considered: p.Considered, Eligible: p.Eligible,
	}
	if out.Unmatched == nil {
		out.Unmatched = []events.UnmatchedNeed{}
	}
	for _, g := range p.Groups {
		out.Groups = append(out.Groups, MatchGroup{Placement: g.Placement, Needs: g.Needs, Candidates: matchCandidates(g.Candidates)})
	}
	for _, r := range p.Relaxed {
		out.Relaxed = append(out.Relaxed, MatchRelaxed{Need: r.Need, Constraint: r.Constraint, Candidates: matchCandidates(r.Candidates)})
	}
	return out
}

func matchCandidates(cs []routing.Candidate) []MatchCandidate {
	out := make([]MatchCandidate, 0, len(cs))
	for _, c := range cs {
		out = append(out, MatchCandidate{
			Service: c.Service, Organisation: c.Organisation, Name: c.Name, Covers: c.Covers,
			Score: c.Score, Components: c.Components, Reasons: c.Reasons,
		})
	}
	return out
}
