package console

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/invictus-network/invictus/directory"
)

// Approvals is how a directory administrator decides about the
// organisations waiting for approval ([directory.Organisation.Pending]);
// *natsjs.DirectoryStore is one. Both calls return an error wrapping
// directory.ErrConflict when the organisation is no longer waiting, and
// directory.ErrNotFound when it is gone.
type Approvals interface {
	ApproveOrganisation(ctx context.Context, id string) (uint64, error)
	RejectOrganisation(ctx context.Context, id string) error
}

// approvalsData is the page of the organisations waiting for approval.
type approvalsData struct {
	Orgs        []pendingOrg
	Unavailable bool
	Errors      fieldErrors
	Done        string
}

// pendingOrg is one organisation waiting for approval, in words.
type pendingOrg struct {
	Org      *directory.Organisation
	Langs    string
	Services []pendingService
}

// pendingService is one service of a pending organisation, in words.
type pendingService struct {
	ID, Name, Needs, Countries string
}

// approvals lists the organisations added to the directory that wait for
// a directory administrator, and applies her decision: approve (the
// organisation is listed: its services are proposed and searchable) or
// reject (it and its services leave the directory). Only directory
// administrators reach it (the page's access rule refuses anyone else
// with an audit line); every decision is audited in the node's log.
func (s *Server) approvals(_ http.ResponseWriter, r *http.Request, rq *request) (string, int, error) {
	rq.pg.Title = rq.p.T("approvals.title")
	rq.pg.Section = "approvals"
	d := &approvalsData{Errors: fieldErrors{}, Unavailable: s.deps.Approvals == nil}
	rq.pg.Data = d
	status := http.StatusOK
	if r.Method == http.MethodPost {
		status = s.decide(r, rq, d)
	}
	snap := s.deps.Directory.Snapshot()
	for _, o := range snap.PendingOrganisations() {
		po := pendingOrg{Org: o}
		var langs []string
		for _, l := range o.Languages {
			langs = append(langs, languageName(l))
		}
		po.Langs = strings.Join(langs, ", ")
		for _, sv := range snap.ServicesOf(o.ID) {
			var needs []string
			for _, n := range sv.Needs {
				needs = append(needs, s.tax.Label("needs", n, rq.lang))
			}
			po.Services = append(po.Services, pendingService{ID: sv.ID, Name: sv.Name, Needs: strings.Join(needs, ", "),
				Countries: strings.ToUpper(strings.Join(sv.Area.Countries, ", "))})
		}
		d.Orgs = append(d.Orgs, po)
	}
	return "approvals", status, nil
}

// decide applies one POST of the approvals page and returns its status.
func (s *Server) decide(r *http.Request, rq *request, d *approvalsData) int {
	if s.deps.Approvals == nil {
		return http.StatusServiceUnavailable
	}
	id, action := r.PostFormValue("organisation"), r.PostFormValue("action")
	if action != "approve" && action != "reject" {
		return http.StatusBadRequest
	}
	o := s.deps.Directory.Snapshot().Organisation(id)
	if o == nil || !o.Pending {
		s.auditLine(r.Context(), rq.user, "organisation_"+action+"_refused", "", id)
		d.Errors["approvals"] = []string{rq.p.T("approvals.not_pending")}
		return http.StatusConflict
	}
	ctx, cancel := context.WithTimeout(r.Context(), StoreTimeout)
	defer cancel()
	var (
		err  error
		done func(*directory.Index) bool
	)
	if action == "approve" {
		_, err = s.deps.Approvals.ApproveOrganisation(ctx, id)
		done = func(x *directory.Index) bool { v := x.Organisation(id); return v != nil && !v.Pending }
	} else {
		err = s.deps.Approvals.RejectOrganisation(ctx, id)
		done = func(x *directory.Index) bool { return x.Organisation(id) == nil }
	}
	switch {
	case errors.Is(err, directory.ErrConflict) || errors.Is(err, directory.ErrNotFound):
		s.auditLine(r.Context(), rq.user, "organisation_"+action+"_refused", "", id)
		d.Errors["approvals"] = []string{rq.p.T("approvals.not_pending")}
		return http.StatusConflict
	case err != nil:
		s.log.WarnContext(r.Context(), "console: approval failed", "organisation", id, "error", err)
		d.Errors["approvals"] = []string{rq.p.T("approvals.failed")}
		return http.StatusServiceUnavailable
	}
	past := map[string]string{"approve": "approved", "reject": "rejected"}[action]
	s.auditLine(r.Context(), rq.user, "organisation_"+past, "", id)
	s.waitDirectory(r.Context(), done)
	d.Done = rq.p.T("approvals."+past, o.Name)
	return http.StatusOK
}

// waitDirectory waits, at most Config.CommandWait, until the directory the
// console reads satisfies cond, and reports whether it did.
func (s *Server) waitDirectory(ctx context.Context, cond func(*directory.Index) bool) bool {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.CommandWait)
	defer cancel()
	tick := time.NewTicker(listingPoll)
	defer tick.Stop()
	for {
		if cond(s.deps.Directory.Snapshot()) {
			return true
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return false
		}
	}
}
