package console

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
)

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

// peopleData is the people page of an organisation administrator.
type peopleData struct {
	People []*User
	Link   string
	Errors fieldErrors
	Roles  []choice
	Done   string
}

// people lists the organisation's people, invites new ones (a link shown
// once) and disables accounts.
func (s *Server) people(w http.ResponseWriter, r *http.Request, rq *request) (string, int, error) {
	rq.pg.Title = rq.p.T("people.title")
	rq.pg.Section = "people"
	org := rq.user.Org
	d := &peopleData{Errors: fieldErrors{}}
	for _, role := range []Role{RoleCaseworker, RoleOrgAdmin} {
		d.Roles = append(d.Roles, choice{Value: string(role), Label: rq.p.T("role." + string(role))})
	}
	rq.pg.Data = d
	status := http.StatusOK
	if r.Method == http.MethodPost {
		switch r.PostFormValue("action") {
		case "invite":
			role := Role(r.PostFormValue("role"))
			if role != RoleCaseworker && role != RoleOrgAdmin {
				d.Errors["role"] = []string{rq.p.T("people.bad_role")}
				status = http.StatusUnprocessableEntity
				break
			}
			secret, err := s.accts.CreateInvite(r.Context(), Invite{Org: org, Role: role, Username: r.PostFormValue("username"), CreatedBy: rq.user.StaffRef})
			switch {
			case errors.Is(err, ErrBadUsername):
				d.Errors["username"] = []string{rq.p.T("invite.bad_name")}
				status = http.StatusUnprocessableEntity
			case err != nil:
				return "people", 0, err
			default:
				d.Link = Prefix + rq.lang + "/invite/" + secret
				s.auditLine(r.Context(), rq.user, "invite", "", string(role))
			}
		case "disable":
			name := r.PostFormValue("username")
			u, err := s.accts.Get(r.Context(), name)
			if errors.Is(err, ErrUserNotFound) || (err == nil && u.Org != org) || name == rq.user.Username {
				s.auditLine(r.Context(), rq.user, "disable_refused", "", "")
				d.Errors["disable"] = []string{rq.p.T("people.cannot_disable")}
				status = http.StatusForbidden
				break
			}
			if err != nil {
				return "people", 0, err
			}
			if _, err := s.accts.Disable(r.Context(), name); err != nil {
				return "people", 0, err
			}
			s.auditLine(r.Context(), rq.user, "disable", "", u.StaffRef)
			d.Done = rq.p.T("people.disabled")
		default:
			status = http.StatusBadRequest
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), StoreTimeout)
	defer cancel()
	list, err := s.accts.List(ctx, org)
	if err != nil {
		return "people", 0, err
	}
	d.People = list
	return "people", status, nil
}

// auditData is the audit page.
type auditData struct{ Lines []AuditLine }

// AuditMax bounds the lines the audit page shows, newest first.
const AuditMax = 200

// audit shows the organisation's audit log: who (by staff id) did what.
func (s *Server) audit(_ http.ResponseWriter, r *http.Request, rq *request) (string, int, error) {
	rq.pg.Title = rq.p.T("audit.title")
	rq.pg.Section = "audit"
	ctx, cancel := context.WithTimeout(r.Context(), StoreTimeout)
	defer cancel()
	keys, err := s.deps.Audit.Keys(ctx, "a."+rq.user.Org+".")
	if err != nil {
		return "audit", 0, err
	}
	slices.SortFunc(keys, func(a, b string) int { return strings.Compare(b, a) })
	d := &auditData{}
	for _, k := range keys[:min(len(keys), AuditMax)] {
		b, err := s.deps.Audit.Get(ctx, k)
		if err != nil {
			continue
		}
		var l AuditLine
		if json.Unmarshal(b, &l) == nil {
			d.Lines = append(d.Lines, l)
		}
	}
	rq.pg.Data = d
	return "audit", http.StatusOK, nil
}
