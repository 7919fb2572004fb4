package console

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/invictus-network/invictus/directory"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/internal/wire"
)

// listingData is the page where an organisation administrator keeps its
// organisation's listing: what the directory says, when it was last
// confirmed, and each service's capacity.
type listingData struct {
	Org      *directory.Organisation
	Langs    string
	Services []listingService
	Errors   fieldErrors
	Done     string
}

// listingService is one service of the listing in words.
type listingService struct {
	ID, Name, Hours, Languages, Channels, Access, Ages, Capacity, Status string
	Confirmed, CapacityAt                                                time.Time
	Statuses                                                             []choice
}

// listing shows the organisation's listing and applies the
// administrator's changes: a service's capacity, or the confirmation that
// the organisation or a service is listed correctly. Each change is a
// directory command on the organisation's INBOUND subject, decided by the
// routing service like any other; a service of another organisation is
// refused here already, with an audit line, and nothing is sent.
func (s *Server) listing(w http.ResponseWriter, r *http.Request, rq *request) (string, int, error) {
	rq.pg.Title = rq.p.T("listing.title")
	rq.pg.Section = "listing"
	org := rq.user.Org
	d := &listingData{Errors: fieldErrors{}}
	rq.pg.Data = d
	status := http.StatusOK
	if r.Method == http.MethodPost {
		status = s.changeListing(r, rq, d)
	}
	snap := s.deps.Directory.Snapshot()
	d.Org = snap.Organisation(org)
	if d.Org == nil {
		rq.pg.Title = rq.p.T("listing.none")
		return "message", http.StatusNotFound, nil
	}
	var langs []string
	for _, l := range d.Org.Languages {
		langs = append(langs, languageName(l))
	}
	d.Langs = strings.Join(langs, ", ")
	for _, sv := range snap.Directory().Services {
		if sv.Organisation != org {
			continue
		}
		d.Services = append(d.Services, s.listingService(&sv, rq))
	}
	return "listing", status, nil
}

// listingService describes sv for the listing page.
func (s *Server) listingService(sv *directory.Service, rq *request) listingService {
	labels := func(section string, codes []string) string {
		out := make([]string, 0, len(codes))
		for _, c := range codes {
			out = append(out, s.tax.Label(section, c, rq.lang))
		}
		return strings.Join(out, ", ")
	}
	var langs []string
	for _, l := range sv.Languages {
		langs = append(langs, languageName(l))
	}
	v := listingService{
		ID: sv.ID, Name: sv.Name, Hours: s.hours(sv.Hours, rq), Languages: strings.Join(langs, ", "),
		Channels: labels("channels", sv.Channels), Access: labels("accessibility", sv.Accessibility),
		Ages: labels("age_bands", sv.Eligibility.AgeBands), Status: sv.Capacity.Status,
		Capacity: s.tax.Label("capacity_statuses", sv.Capacity.Status, rq.lang), Confirmed: sv.UpdatedAt, CapacityAt: sv.Capacity.UpdatedAt,
	}
	for _, st := range events.CapacityStatuses {
		v.Statuses = append(v.Statuses, choice{Value: st, Label: s.tax.Label("capacity_statuses", st, rq.lang), On: st == sv.Capacity.Status})
	}
	return v
}

// changeListing applies one POST of the listing page and returns the
// page's status.
func (s *Server) changeListing(r *http.Request, rq *request, d *listingData) int {
	org := rq.user.Org
	snap := s.deps.Directory.Snapshot()
	refuse := func(detail string) int {
		s.auditLine(r.Context(), rq.user, "listing_refused", "", detail)
		d.Errors["listing"] = []string{rq.p.T("listing.not_yours")}
		return http.StatusForbidden
	}
	var (
		subject string
		p       events.Payload
		applied func(*directory.Index) bool
	)
	switch r.PostFormValue("action") {
	case "capacity":
		id, st := r.PostFormValue("service"), r.PostFormValue("status")
		sv := snap.ServiceByID(id)
		if sv == nil || sv.Organisation != org {
			return refuse(id)
		}
		if !slices.Contains(events.CapacityStatuses, st) {
			d.Errors["status-"+id] = []string{rq.p.T("listing.bad_status")}
			return http.StatusUnprocessableEntity
		}
		subject, p = id, &events.CapacityUpdated{Service: id, Status: st}
		applied = func(x *directory.Index) bool {
			v := x.ServiceByID(id)
			return v != nil && v.Capacity.Status == st && v.Capacity.UpdatedAt.After(sv.Capacity.UpdatedAt)
		}
	case "confirm_service":
		id := r.PostFormValue("service")
		sv := snap.ServiceByID(id)
		if sv == nil || sv.Organisation != org {
			return refuse(id)
		}
		subject, p = id, &events.ServiceUpdated{Service: id}
		applied = func(x *directory.Index) bool {
			v := x.ServiceByID(id)
			return v != nil && v.UpdatedAt.After(sv.UpdatedAt)
		}
	case "confirm_org":
		o := snap.Organisation(org)
		if o == nil {
			return refuse(org)
		}
		subject, p = org, &events.OrganisationUpdated{Organisation: org}
		applied = func(x *directory.Index) bool {
			v := x.Organisation(org)
			return v != nil && v.UpdatedAt.After(o.UpdatedAt)
		}
	default:
		return http.StatusBadRequest
	}
	status, done := s.sendListing(r, rq, subject, p, d.Errors, applied)
	d.Done = done
	return status
}

// sendListing sends a listing command (see listingCommand) and says how
// it went: the page's status and its notice, or an error under "listing"
// in errs.
func (s *Server) sendListing(r *http.Request, rq *request, subject string, p events.Payload, errs fieldErrors, applied func(*directory.Index) bool) (status int, done string) {
	ok, rej, err := s.listingCommand(r.Context(), rq, subject, p, applied)
	switch {
	case err != nil:
		errs["listing"] = []string{rq.p.T("listing.failed")}
		return http.StatusServiceUnavailable, ""
	case rej != nil:
		errs["listing"] = []string{rq.p.T("listing.rejected", rejectionText(rej))}
		return http.StatusConflict, ""
	case !ok:
		return http.StatusOK, rq.p.T("listing.pending")
	}
	return http.StatusOK, rq.p.T("listing.saved")
}

// rejectionText is the first problem of a rejection.
func rejectionText(rej *events.CommandRejected) string {
	if len(rej.Errors) == 0 {
		return ""
	}
	return rej.Errors[0].Code + ": " + rej.Errors[0].Message
}

// listingPoll is how often a listing page looks whether its change is in
// the directory view.
const listingPoll = 25 * time.Millisecond

// listingCommand sends a directory command of the person's organisation,
// writes the audit line, and waits (at most Config.CommandWait) until
// the change is in the directory the console reads, or the routing
// service refused it.
func (s *Server) listingCommand(ctx context.Context, rq *request, subject string, p events.Payload, applied func(*directory.Index) bool) (bool, *events.CommandRejected, error) {
	u := rq.user
	ev, msg, err := wire.NewCommand(u.Org, subject, p)
	if err != nil {
		return false, nil, err
	}
	sctx, cancel := context.WithTimeout(ctx, StoreTimeout)
	err = s.deps.Commands.Submit(sctx, u.Org, msg)
	cancel()
	if err != nil {
		return false, nil, err
	}
	s.auditLine(ctx, u, strings.TrimSuffix(strings.TrimPrefix(ev.Type(), "invictus."), ".v1"), "", subject)
	if s.cfg.CommandWait <= 0 {
		return false, nil, nil
	}
	wctx, cancel := context.WithTimeout(ctx, s.cfg.CommandWait)
	defer cancel()
	rejected := make(chan *events.CommandRejected, 1)
	go func() {
		_, rej, err := s.deps.Outcomes.Wait(wctx, u.Org, "", ev.ID())
		if err == nil && rej != nil {
			rejected <- rej
		}
	}()
	tick := time.NewTicker(listingPoll)
	defer tick.Stop()
	for {
		if applied(s.deps.Directory.Snapshot()) {
			return true, nil, nil
		}
		select {
		case rej := <-rejected:
			return false, rej, nil
		case <-tick.C:
		case <-wctx.Done():
			return false, nil, nil
		}
	}
}
