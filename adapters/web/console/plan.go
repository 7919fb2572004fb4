package console

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"

	"github.com/invictus-network/invictus/directory"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/internal/wire"
	"github.com/invictus-network/invictus/routing"
)

// planData is what the plan page shows.
type planData struct {
	Emergency bool
	Urgency   string
	Groups    []planGroup
	Unmatched []unmatchedView
	Relaxed   []relaxedView
	Hidden    []hidden
	Profile   []fact
	Error     string
	Confirm   string // error of the confirmation box
}

type hidden struct{ Name, Value string }

// fact is one line of a profile in words.
type fact struct{ Label, Value string }

type planGroup struct {
	Placement  string
	Needs      []string
	Candidates []candidateView
}

type candidateView struct {
	Service, Org, Place string
	Distance            string
	Languages           string
	Hours               string
	Capacity            string
	Why                 []string
	NotMet              []string
	First               bool
}

type unmatchedView struct {
	Need, Why string
}

type relaxedView struct {
	Need, Constraint string
	Services         []string
}

// plan previews the plan of a checked assessment.
func (s *Server) plan(_ http.ResponseWriter, r *http.Request, rq *request, f *assessForm, confirmErr *string) (string, int, error) {
	rq.pg.Title = rq.p.T("plan.title")
	rq.pg.Section = "assess"
	plan, err := s.match(rq.user.Org, &f.req)
	if errors.Is(err, routing.ErrInvalidProfile) {
		rq.pg.Data = s.assessData(r.PostForm, fieldErrors{"needs": {err.Error()}}, rq)
		return "assess", http.StatusUnprocessableEntity, nil
	}
	if err != nil {
		return "plan", 0, err
	}
	d := &planData{Emergency: plan.Urgency == events.UrgencyEmergency, Urgency: s.tax.Label("urgencies", plan.Urgency, rq.lang),
		Profile: s.profileFacts(f.req.Profile, rq.lang, rq)}
	if confirmErr != nil {
		d.Confirm = *confirmErr
	}
	snap := s.deps.Directory.Snapshot()
	for _, g := range plan.Groups {
		pg := planGroup{Placement: g.Placement}
		for _, n := range g.Needs {
			pg.Needs = append(pg.Needs, s.tax.Label("needs", n, rq.lang))
		}
		for i, c := range g.Candidates {
			pg.Candidates = append(pg.Candidates, s.candidate(snap, c, &f.req.Profile, rq, i == 0))
		}
		d.Groups = append(d.Groups, pg)
	}
	for _, u := range plan.Unmatched {
		d.Unmatched = append(d.Unmatched, unmatchedView{Need: s.tax.Label("needs", u.Need, rq.lang), Why: s.unmatchedWhy(u, rq)})
	}
	for _, rl := range plan.Relaxed {
		rv := relaxedView{Need: s.tax.Label("needs", rl.Need, rq.lang), Constraint: rq.p.T("constraint." + rl.Constraint)}
		for _, c := range rl.Candidates {
			rv.Services = append(rv.Services, c.Name+" ("+s.orgName(c.Organisation)+")")
		}
		d.Relaxed = append(d.Relaxed, rv)
	}
	keys := make([]string, 0, len(f.v))
	for k := range f.v {
		if k != "csrf" && k != "confirm" && k != "edit" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		for _, v := range f.v[k] {
			d.Hidden = append(d.Hidden, hidden{k, v})
		}
	}
	rq.pg.Data = d
	status := http.StatusOK
	if confirmErr != nil {
		status = http.StatusUnprocessableEntity
	}
	return "plan", status, nil
}

// unmatchedWhy says in words why nothing covers a need.
func (s *Server) unmatchedWhy(u events.UnmatchedNeed, rq *request) string {
	if u.Nowhere {
		return rq.p.T("unmatched.nowhere")
	}
	if u.Reason == "no_service" {
		return rq.p.T("unmatched.no_service")
	}
	var parts []string
	keys := make([]string, 0, len(u.Excluded))
	for k := range u.Excluded {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		parts = append(parts, rq.p.T("constraint."+k)+" ("+fmt.Sprint(u.Excluded[k])+")")
	}
	return rq.p.N("unmatched.excluded", u.Offered, strings.Join(parts, "; "))
}

// candidate describes one proposed service in words.
func (s *Server) candidate(snap *directory.Index, c routing.Candidate, p *events.Profile, rq *request, first bool) candidateView {
	v := candidateView{Service: c.Name, Org: s.orgName(c.Organisation), First: first}
	sv := snap.ServiceByID(c.Service)
	if sv == nil {
		return v
	}
	if v.Service == "" {
		v.Service = sv.Name
	}
	var langs []string
	for _, l := range sv.Languages {
		langs = append(langs, languageName(l))
	}
	v.Languages = strings.Join(langs, ", ")
	v.Hours = s.hours(sv.Hours, rq)
	v.Capacity = s.tax.Label("capacity_statuses", sv.Capacity.Status, rq.lang)
	if len(sv.Locations) > 0 {
		v.Place = sv.Locations[0].City
	}
	if p.Location.Lat != nil && p.Location.Lon != nil {
		if i, ok := snap.Lookup(c.Service); ok {
			if km := snap.NearestKm(i, *p.Location.Lat, *p.Location.Lon); !math.IsInf(km, 0) && !math.IsNaN(km) && km >= 0 {
				v.Distance = rq.p.T("plan.km", km)
			}
		}
	}
	if len(c.Why) > 0 {
		// The matcher's own reasons, in the caseworker's language.
		for _, r := range c.Why {
			w := r.Words(s.tax, rq.lang)
			if w == "" {
				continue
			}
			if shortfall[r.Code] {
				v.NotMet = append(v.NotMet, w)
			} else {
				v.Why = append(v.Why, w)
			}
		}
		return v
	}
	if sv.Area.Remote {
		v.Why = append(v.Why, rq.p.T("why.remote"))
	}
	comps := make([]string, 0, len(c.Components))
	for k := range c.Components {
		comps = append(comps, k)
	}
	slices.Sort(comps)
	for _, k := range comps {
		switch x := c.Components[k]; {
		case x >= 0.999:
			v.Why = append(v.Why, rq.p.T("why."+k))
		case x <= 0.5:
			v.NotMet = append(v.NotMet, rq.p.T("notmet."+k))
		}
	}
	var covers []string
	for _, n := range c.Covers {
		covers = append(covers, s.tax.Label("needs", n, rq.lang))
	}
	v.Why = append([]string{rq.p.T("why.covers", strings.Join(covers, ", "))}, v.Why...)
	return v
}

// shortfall are the reasons that say what a proposed service does not
// meet; the others say why it is proposed.
var shortfall = map[string]bool{
	routing.ReasonNotOffered: true, routing.ReasonOtherCrimes: true, routing.ReasonNotFirstLanguage: true,
	routing.ReasonInterpreterArranged: true, routing.ReasonAcrossWater: true, routing.ReasonAcrossBorder: true,
	routing.ReasonNoLocation: true, routing.ReasonNotFirstChannel: true, routing.ReasonWaitingList: true,
	routing.ReasonRelaxedAccessibility: true, routing.ReasonRelaxedChannel: true, routing.ReasonRelaxedOpenNow: true,
}

// hours says when a service is open.
func (s *Server) hours(h directory.Schedule, rq *request) string {
	if h.Always {
		return rq.p.T("hours.always")
	}
	var parts []string
	for _, o := range h.Weekly {
		parts = append(parts, rq.p.T("day."+o.Day)+" "+o.Opens+"–"+o.Closes)
	}
	if len(parts) == 0 {
		return rq.p.T("hours.none")
	}
	return strings.Join(parts, ", ")
}

// profileFacts is a profile in words, in the order of the form.
func (s *Server) profileFacts(p events.Profile, lang string, rq *request) []fact {
	labels := func(section string, codes []string) string {
		var out []string
		for _, c := range codes {
			out = append(out, s.tax.Label(section, c, lang))
		}
		return strings.Join(out, ", ")
	}
	var langs []string
	for _, l := range p.Languages {
		langs = append(langs, languageName(l))
	}
	place := countryName(p.Location.Country, lang)
	if p.Location.Region != "" {
		place += ", " + p.Location.Region
	}
	if p.Location.Lat != nil && p.Location.Lon != nil {
		place += fmt.Sprintf(" (%.2f, %.2f)", *p.Location.Lat, *p.Location.Lon)
	}
	yes := rq.p.T("word.no")
	if p.InterpreterOK {
		yes = rq.p.T("word.yes")
	}
	out := []fact{
		{rq.p.T("field.needs"), labels("needs", p.Needs)},
		{rq.p.T("field.urgency"), s.tax.Label("urgencies", p.Urgency, lang)},
		{rq.p.T("field.crimes"), labels("crimes", p.Crimes)},
		{rq.p.T("field.flags"), labels("flags", p.Flags)},
		{rq.p.T("field.country"), place},
		{rq.p.T("field.languages"), strings.Join(langs, ", ")},
		{rq.p.T("field.interpreter"), yes},
		{rq.p.T("field.age_band"), s.tax.Label("age_bands", p.AgeBand, lang)},
		{rq.p.T("field.gender"), labels("genders", nonEmpty(p.Gender))},
		{rq.p.T("field.channels"), labels("channels", p.Channels)},
		{rq.p.T("field.accessibility"), labels("accessibility", p.Accessibility)},
	}
	if p.Location.ResidenceCountry != "" {
		out = append(out, fact{rq.p.T("field.residence"), countryName(p.Location.ResidenceCountry, lang)})
	}
	kept := out[:0]
	for _, f := range out {
		if f.Value != "" {
			kept = append(kept, f)
		}
	}
	return kept
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

// send publishes the checked and confirmed referral.requested, through
// the same inbound path as the API, and shows the referral.
func (s *Server) send(w http.ResponseWriter, r *http.Request, rq *request) (string, int, error) {
	f, errs := s.parseAssessment(r, rq.user, rq.p.T)
	if errs != nil {
		rq.pg.Title = rq.p.T("assess.title_errors", len(errs))
		rq.pg.Section = "assess"
		rq.pg.Data = s.assessData(r.PostForm, errs, rq)
		return "assess", http.StatusUnprocessableEntity, nil
	}
	if r.PostFormValue("confirm") != "yes" {
		msg := rq.p.T("plan.confirm_missing")
		return s.plan(w, r, rq, f, &msg)
	}
	id := events.NewReferralID()
	res, err := s.command(r.Context(), rq.user, id, &f.req)
	if err != nil {
		return "", 0, err
	}
	if res.rejected != nil {
		msg := rq.p.T("plan.rejected", problemsText(res.rejected))
		return s.plan(w, r, rq, f, &msg)
	}
	http.Redirect(w, r, Prefix+rq.lang+"/referrals/"+id+"?sent=1", http.StatusSeeOther)
	return "", 0, nil
}

// problemsText joins the messages of a rejection.
func problemsText(rej *events.CommandRejected) string {
	var out []string
	for _, p := range rej.Errors {
		out = append(out, p.Message)
	}
	return strings.Join(out, "; ")
}

// commandResult is what became of a command a person sent.
type commandResult struct {
	id       string
	accepted bool
	rejected *events.CommandRejected
}

// command builds a command of the person's organisation, stores it on
// the INBOUND stream as the API does (the routing service decides it),
// writes the audit line, and waits for the decision.
func (s *Server) command(ctx context.Context, u *User, referralID string, p events.Payload) (*commandResult, error) {
	ev, msg, err := wire.NewCommand(u.Org, referralID, p)
	if err != nil {
		return nil, fmt.Errorf("console: build command: %w", err)
	}
	sctx, cancel := context.WithTimeout(ctx, StoreTimeout)
	err = s.deps.Commands.Submit(sctx, u.Org, msg)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("console: submit command: %w", err)
	}
	s.auditLine(ctx, u, strings.TrimSuffix(strings.TrimPrefix(ev.Type(), "invictus.referral."), ".v1"), referralID, ev.ID())
	res := &commandResult{id: ev.ID()}
	if s.cfg.CommandWait > 0 {
		wctx, cancel := context.WithTimeout(ctx, s.cfg.CommandWait)
		defer cancel()
		acc, rej, err := s.deps.Outcomes.Wait(wctx, u.Org, referralID, ev.ID())
		if err == nil {
			res.accepted, res.rejected = acc, rej
		}
	}
	return res, nil
}
