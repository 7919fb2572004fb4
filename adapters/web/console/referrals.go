package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/referral"
)

// Parts of a referral, as the console shows it.
const (
	partReferrer  = "referrer"
	partRecipient = "recipient"
)

// folded is what one organisation may see of a referral: the same rule
// as the API's GET /v1/referrals/{id}.
type folded struct {
	ID     string
	Part   string
	State  referral.State
	Events []*events.Envelope
}

// fold folds a referral's log for org; nil when org is no party to it.
func fold(id, org string, evs []*events.Envelope) (*folded, error) {
	var st referral.State
	f := &folded{ID: id}
	for _, ev := range evs {
		visible := ev.Event.Source() == events.SourceOf(org) || slices.Contains(referral.Recipients(st, ev.Payload), org)
		next, err := referral.Apply(st, ev)
		switch {
		case errors.Is(err, referral.ErrDuplicate):
			continue
		case err != nil:
			return nil, fmt.Errorf("console: referral %s does not fold: %w", id, err)
		}
		st = next
		if visible {
			f.Events = append(f.Events, ev)
		}
	}
	f.State = st
	switch {
	case st.Referrer != "" && st.Referrer == org:
		f.Part = partReferrer
	case slices.ContainsFunc(st.Placements, func(p referral.Placement) bool { return offeredTo(p, org) }):
		f.Part = partRecipient
	default:
		return nil, nil
	}
	return f, nil
}

func offeredTo(p referral.Placement, org string) bool {
	return p.Offer.Organisation == org || p.AcceptedBy == org || p.Refused(org)
}

// load reads and folds a referral for the person's organisation; it
// returns errNotFound when the organisation is no party to it.
func (s *Server) load(ctx context.Context, id, org string) (*folded, error) {
	if !events.IsReferralID(id) {
		return nil, errNotFound
	}
	ctx, cancel := context.WithTimeout(ctx, StoreTimeout)
	defer cancel()
	evs, err := s.deps.Timeline.Events(ctx, id)
	if err != nil {
		return nil, err
	}
	f, err := fold(id, org, evs)
	if err != nil {
		return nil, err
	}
	if f == nil {
		return nil, errNotFound
	}
	return f, nil
}

// row is one referral of the dashboard.
type row struct {
	ID, Short  string
	Needs      string
	Status     string
	StatusCode string
	Updated    time.Time
	Deadline   *time.Time
}

// homeData is the dashboard.
type homeData struct {
	Sent     []row
	Received []row
	Role     string
}

// inboxReferrals lists the referrals of org's deliveries, newest first:
// those it sent and those offered to it.
func (s *Server) inboxReferrals(ctx context.Context, org string) (sent, received []string, err error) {
	ctx, cancel := context.WithTimeout(ctx, StoreTimeout)
	defer cancel()
	seen := map[string]bool{}
	var order []string
	kind := map[string]string{}
	after := uint64(0)
	for range 20 { // at most 20 pages of 500 deliveries
		n := 0
		err := s.deps.Inbox.Read(ctx, org, after, 500, func(seq uint64, m events.Message) error {
			n++
			after = max(after, seq)
			env, derr := events.Decode(m)
			if derr != nil {
				return nil //nolint:nilerr // an undecodable delivery is skipped, as the API skips it
			}
			id := env.Event.Subject()
			if !events.IsReferralID(id) {
				return nil
			}
			switch p := env.Payload.(type) {
			case *events.Planned, *events.Unmatched:
				kind[id] = partReferrer
			case *events.Offered:
				if p.Organisation == org && kind[id] == "" {
					kind[id] = partRecipient
				} else if p.Referrer == org {
					kind[id] = partReferrer
				}
			}
			if !seen[id] {
				seen[id] = true
			}
			order = slices.DeleteFunc(order, func(x string) bool { return x == id })
			order = append(order, id)
			return nil
		})
		if err != nil {
			return nil, nil, err
		}
		if n < 500 {
			break
		}
	}
	for i := len(order) - 1; i >= 0; i-- {
		switch kind[order[i]] {
		case partReferrer:
			sent = append(sent, order[i])
		case partRecipient:
			received = append(received, order[i])
		}
	}
	return sent, received, nil
}

// home is the dashboard: the referrals sent and the offers received.
func (s *Server) home(_ http.ResponseWriter, r *http.Request, rq *request) (string, int, error) {
	rq.pg.Title = rq.p.T("home.title")
	rq.pg.Section = "home"
	d := &homeData{Role: string(rq.user.Role)}
	rq.pg.Data = d
	if !rq.user.Role.Refers() {
		return "home", http.StatusOK, nil
	}
	rq.pg.Live = true
	org := rq.user.Org
	sent, received, err := s.inboxReferrals(r.Context(), org)
	if err != nil {
		return "home", 0, err
	}
	mk := func(id string) (row, bool) {
		f, err := s.load(r.Context(), id, org)
		if err != nil {
			return row{}, false
		}
		st := f.State
		rw := row{ID: id, Short: id[len(id)-12:], Updated: st.UpdatedAt}
		var needs []string
		for _, n := range st.Profile.Needs {
			needs = append(needs, s.tax.Label("needs", n, rq.lang))
		}
		rw.Needs = strings.Join(needs, ", ")
		if f.Part == partReferrer {
			rw.StatusCode = string(st.Status)
			rw.Status = rq.p.T("status." + string(st.Status))
		} else {
			for _, p := range st.Placements {
				if !offeredTo(p, org) {
					continue
				}
				ps := placementStatusFor(p, org)
				rw.StatusCode = string(ps)
				rw.Status = rq.p.T("pstatus." + string(ps))
				if ps == referral.PlacementOffered {
					dl := p.Offer.Deadline
					rw.Deadline = &dl
				}
			}
		}
		return rw, true
	}
	for _, id := range sent[:min(len(sent), ListMax)] {
		if rw, ok := mk(id); ok {
			d.Sent = append(d.Sent, rw)
		}
	}
	for _, id := range received[:min(len(received), ListMax)] {
		if rw, ok := mk(id); ok {
			d.Received = append(d.Received, rw)
		}
	}
	return "home", http.StatusOK, nil
}

// placementStatusFor is the status of p as org sees it: its own offer's
// end once the placement went to someone else.
func placementStatusFor(p referral.Placement, org string) referral.PlacementStatus {
	if p.Offer.Organisation == org || p.AcceptedBy == org {
		return p.Status
	}
	for i := len(p.Refusals) - 1; i >= 0; i-- {
		if p.Refusals[i].Organisation == org {
			return p.Refusals[i].Status
		}
	}
	return p.Status
}

// referralData is the referral page.
type referralData struct {
	ID         string
	Part       string
	Status     string
	Sent       bool
	Done       string
	Error      string
	Profile    []fact
	Placements []placementView
	Timeline   []entry
	// Decline, Outcomes, Questions, Missing are the coded choices of the
	// forms.
	Decline   []choice
	Outcomes  []choice
	Questions []string
	Missing   []choice
	ShareData bool
}

// placementView is one placement of the referral page, with the actions
// the person's organisation may take on it.
type placementView struct {
	ID        string
	Needs     string
	Status    string
	Code      string
	Org       string
	Service   string
	Outcome   string
	Deadline  *time.Time
	Recipient string // the accepting organisation's age recipient
	Profile   []fact // the offered profile, for the recipient
	CanAnswer bool   // accept / decline
	CanAct    bool   // contact / hold / complete
	CanFeed   bool   // feedback
	Handover  bool   // the referrer may hand the case file over
	Accepted  bool   // an organisation accepted the placement
	Envelopes []string
}

// entry is one line of the timeline.
type entry struct {
	At   time.Time
	What string
	Note string
}

// notParty answers a person whose organisation is no party of referral
// id exactly as if it did not exist, as the API does, and audits the
// refusal as what.
func (s *Server) notParty(ctx context.Context, rq *request, what, id string) (string, int, error) {
	s.auditLine(ctx, rq.user, what, "", id)
	rq.pg.Title = rq.p.T("error.title")
	rq.pg.Data = messageData{Text: rq.p.T("error.not_party")}
	return "message", http.StatusNotFound, nil
}

// referral shows one referral to a party of it; to anyone else it is
// "not found", as in the API.
func (s *Server) referral(_ http.ResponseWriter, r *http.Request, rq *request) (string, int, error) {
	id := r.PathValue("id")
	f, err := s.load(r.Context(), id, rq.user.Org)
	if errors.Is(err, errNotFound) {
		return s.notParty(r.Context(), rq, "open_refused", id)
	}
	if err != nil {
		return "referral", 0, err
	}
	rq.pg.Data = s.referralData(f, rq)
	d := rq.pg.Data.(*referralData)
	if f.Part == partReferrer {
		d.Timeline = s.withNotices(r.Context(), f.ID, rq, d.Timeline)
	}
	d.Sent = r.URL.Query().Get("sent") == "1"
	if done := r.URL.Query().Get("done"); done != "" {
		d.Done = rq.p.T("done." + done)
	}
	rq.pg.Title = rq.p.T("referral.title", id[len(id)-12:])
	rq.pg.Section = "home"
	rq.pg.Live = true
	rq.pg.Seal = true
	return "referral", http.StatusOK, nil
}

// referralData builds the referral page.
func (s *Server) referralData(f *folded, rq *request) *referralData {
	org := rq.user.Org
	st := f.State
	d := &referralData{ID: f.ID, Part: f.Part, ShareData: st.Consent.ShareData,
		Decline: s.terms("decline_reasons", rq.lang, nil), Outcomes: s.terms("outcomes", rq.lang, nil),
		Questions: []string{"informed", "respectful", "helpful", "recommend"}}
	for _, m := range events.FeedbackMissing {
		d.Missing = append(d.Missing, choice{Value: m, Label: rq.p.T("missing." + m)})
	}
	if f.Part == partReferrer {
		d.Status = rq.p.T("status." + string(st.Status))
		d.Profile = s.profileFacts(st.Profile, rq.lang, rq)
	}
	offers := map[string]*events.Offered{}
	envelopes := map[string][]string{}
	for _, ev := range f.Events {
		switch p := ev.Payload.(type) {
		case *events.Offered:
			if p.Organisation == org {
				offers[p.Placement] = p
			}
		case *events.Handover:
			envelopes[p.Placement] = append(envelopes[p.Placement], p.Envelope)
		}
		d.Timeline = append(d.Timeline, s.entry(ev, rq))
	}
	snap := s.deps.Directory.Snapshot()
	for _, p := range st.Placements {
		if f.Part == partRecipient && !offeredTo(p, org) {
			continue
		}
		var needs []string
		for _, n := range p.Needs {
			needs = append(needs, s.tax.Label("needs", n, rq.lang))
		}
		ps := p.Status
		if f.Part == partRecipient {
			ps = placementStatusFor(p, org)
		}
		pv := placementView{ID: p.ID, Needs: strings.Join(needs, ", "), Code: string(ps), Status: rq.p.T("pstatus." + string(ps))}
		who := p.AcceptedBy
		if who == "" {
			who = p.Offer.Organisation
		}
		if f.Part == partReferrer || who == org {
			pv.Org = s.orgName(who)
			if sv := snap.ServiceByID(p.Offer.Service); sv != nil {
				pv.Service = sv.Name
			}
			if p.Outcome != "" {
				pv.Outcome = s.tax.Label("outcomes", p.Outcome, rq.lang)
			}
		}
		if ps == referral.PlacementOffered {
			dl := p.Offer.Deadline
			pv.Deadline = &dl
		}
		if f.Part == partRecipient {
			if o := offers[p.ID]; o != nil {
				pv.Profile = s.profileFacts(o.Profile, rq.lang, rq)
			}
			pv.CanAnswer = p.Status == referral.PlacementOffered && p.Offer.Organisation == org
			pv.CanAct = p.AcceptedBy == org && p.Status.Active()
			pv.CanFeed = p.AcceptedBy == org
			pv.Envelopes = envelopes[p.ID]
		} else {
			pv.CanFeed = p.AcceptedBy != ""
			pv.Handover = st.Consent.ShareData && p.Status.Active()
			pv.Accepted = p.AcceptedBy != ""
			if o := snap.Directory(); o != nil && p.AcceptedBy != "" {
				if org := snap.Organisation(p.AcceptedBy); org != nil {
					pv.Recipient = org.AgeRecipient
				}
			}
		}
		d.Placements = append(d.Placements, pv)
	}
	return d
}

// entry says one event of the timeline in words.
func (s *Server) entry(ev *events.Envelope, rq *request) entry {
	short := strings.TrimSuffix(strings.TrimPrefix(ev.Event.Type(), "invictus.referral."), ".v1")
	e := entry{At: ev.Event.Time().UTC(), What: rq.p.T("event." + short)}
	var notes []string
	if src, ok := events.OrgOfSource(ev.Event.Source()); ok {
		notes = append(notes, s.orgName(src))
	}
	switch p := ev.Payload.(type) {
	case *events.Planned:
		notes = append(notes, rq.p.N("event.placements", len(p.Groups)))
	case *events.Offered:
		notes = []string{p.Placement + " → " + s.orgName(p.Organisation), rq.p.T("event.deadline", p.Deadline.UTC().Format("2006-01-02 15:04 UTC"))}
	case *events.Accepted:
		notes = append(notes, p.Placement)
	case *events.Declined:
		notes = append(notes, p.Placement, s.tax.Label("decline_reasons", p.Reason, rq.lang))
	case *events.Expired:
		notes = []string{p.Placement}
	case *events.Contacted:
		notes = append(notes, p.Placement)
	case *events.OnHold:
		notes = append(notes, p.Placement)
	case *events.Completed:
		notes = append(notes, p.Placement, s.tax.Label("outcomes", p.Outcome, rq.lang))
	case *events.Handover:
		notes = append(notes, p.Placement)
	case *events.Feedback:
		notes = append(notes, p.Placement)
	case *events.Unmatched:
		var needs []string
		for _, n := range p.Needs {
			needs = append(needs, s.tax.Label("needs", n, rq.lang))
		}
		notes = []string{strings.Join(needs, ", ")}
	case *events.Withdrawn:
		notes = append(notes, s.tax.Label("withdraw_reasons", p.Reason, rq.lang))
	}
	e.Note = strings.Join(slices.DeleteFunc(notes, func(x string) bool { return x == "" }), " · ")
	return e
}

// act runs an action a party takes on a referral: the form's action
// field names it. Each becomes the same command the API and the CLI
// send; the routing service decides.
func (s *Server) act(w http.ResponseWriter, r *http.Request, rq *request) (string, int, error) {
	id := r.PathValue("id")
	org := rq.user.Org
	rq.pg.Seal = true // the referral page, drawn again on an error
	f, err := s.load(r.Context(), id, org)
	if errors.Is(err, errNotFound) {
		return s.notParty(r.Context(), rq, "action_refused", id)
	}
	if err != nil {
		return "referral", 0, err
	}
	action := r.PostFormValue("action")
	pl := r.PostFormValue("placement")
	var p *referral.Placement
	for i := range f.State.Placements {
		if f.State.Placements[i].ID == pl {
			p = &f.State.Placements[i]
		}
	}
	refuse := func(key string) (string, int, error) {
		s.auditLine(r.Context(), rq.user, "action_refused", id, action)
		rq.pg.Data = s.referralData(f, rq)
		rq.pg.Data.(*referralData).Error = rq.p.T(key)
		rq.pg.Title = rq.p.T("referral.title", id[len(id)-12:])
		return "referral", http.StatusForbidden, nil
	}
	if p == nil {
		return refuse("error.placement")
	}
	var payload events.Payload
	switch action {
	case "accept":
		if p.Status != referral.PlacementOffered || p.Offer.Organisation != org {
			return refuse("error.not_yours")
		}
		payload = &events.Accepted{Placement: pl}
	case "decline":
		if p.Status != referral.PlacementOffered || p.Offer.Organisation != org {
			return refuse("error.not_yours")
		}
		payload = &events.Declined{Placement: pl, Reason: r.PostFormValue("reason")}
	case "contact", "hold", "complete":
		if p.AcceptedBy != org {
			return refuse("error.not_yours")
		}
		switch action {
		case "contact":
			payload = &events.Contacted{Placement: pl}
		case "hold":
			oh := &events.OnHold{Placement: pl}
			if u := r.PostFormValue("until"); u != "" {
				t, err := time.Parse("2006-01-02", u)
				if err != nil {
					return refuse("error.until")
				}
				oh.Until = &t
			}
			payload = oh
		default:
			payload = &events.Completed{Placement: pl, Outcome: r.PostFormValue("outcome")}
		}
	case "feedback":
		if p.AcceptedBy == "" || (p.AcceptedBy != org && f.Part != partReferrer) {
			return refuse("error.not_yours")
		}
		fb := &events.Feedback{Placement: pl, Missing: r.PostForm["missing"]}
		for _, q := range []string{"informed", "respectful", "helpful", "recommend"} {
			if v := r.PostFormValue("q_" + q); v != "" {
				n, err := strconv.Atoi(v)
				if err != nil {
					return refuse("error.feedback")
				}
				fb.Answers = append(fb.Answers, events.Answer{Question: q, Value: n})
			}
		}
		payload = fb
	case "handover":
		if f.Part != partReferrer {
			return refuse("error.not_yours")
		}
		payload = &events.Handover{Placement: pl, Recipient: r.PostFormValue("recipient"), Envelope: r.PostFormValue("envelope")}
	default:
		return refuse("error.action")
	}
	var ve *events.ValidationError
	if err := events.ValidatePayload(payload); errors.As(err, &ve) {
		rq.pg.Data = s.referralData(f, rq)
		rq.pg.Data.(*referralData).Error = rq.p.T("error.action_invalid", ve.Problems[0].Pointer)
		rq.pg.Title = rq.p.T("referral.title", id[len(id)-12:])
		return "referral", http.StatusUnprocessableEntity, nil
	}
	res, err := s.command(r.Context(), rq.user, id, payload)
	if err != nil {
		return "referral", 0, err
	}
	if res.rejected != nil {
		f, err = s.load(r.Context(), id, org)
		if err != nil {
			return "referral", 0, err
		}
		rq.pg.Data = s.referralData(f, rq)
		rq.pg.Data.(*referralData).Error = rq.p.T("error.rejected", problemsText(res.rejected))
		rq.pg.Title = rq.p.T("referral.title", id[len(id)-12:])
		return "referral", http.StatusUnprocessableEntity, nil
	}
	done := action
	if !res.accepted {
		done = "pending"
	}
	http.Redirect(w, r, Prefix+rq.lang+"/referrals/"+id+"?done="+done, http.StatusSeeOther)
	return "", 0, nil
}

// events streams a signed-in person's organisation's deliveries as
// server-sent events (the same inbox the API streams), so that pages
// refresh what they show. Each event carries only its type and
// referral.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	ss, u, err := s.loadSession(r)
	if err != nil || ss.Stage != StageFull || !u.Role.Refers() {
		http.Error(w, "sign in first", http.StatusUnauthorized)
		return
	}
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.SessionIdle)
	defer cancel()
	last, err := s.deps.Inbox.Last(ctx, u.Org)
	if err != nil {
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	write := func(b []byte) error {
		_ = rc.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := w.Write(b); err != nil {
			return err
		}
		return rc.Flush()
	}
	if write([]byte("retry: 3000\n\n")) != nil {
		return
	}
	err = s.deps.Inbox.Follow(ctx, u.Org, last, func(seq uint64, m events.Message) error {
		env, derr := events.Decode(m)
		if derr != nil {
			return nil //nolint:nilerr // an undecodable delivery is skipped, as the API skips it
		}
		b, _ := json.Marshal(map[string]string{"referral": env.Event.Subject(), "type": env.Event.Type()})
		return write(fmt.Appendf(nil, "id: %d\nevent: delivery\ndata: %s\n\n", seq, b))
	})
	if err != nil && ctx.Err() == nil {
		s.log.DebugContext(r.Context(), "console: event stream ended", slog.Any("error", err))
	}
}
