package httpapi

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/invictus-network/invictus/reports"
)

// Reports answers GET /v1/reports/{name}: the coordinators' read model
// (a *reports.Store satisfies it).
type Reports interface {
	Report(name string, s reports.Scope, f reports.Filter, now time.Time) (*reports.Table, error)
}

// reportParams are the query parameters of GET /v1/reports/{name}.
var reportParams = []string{"from", "to", "country", "need", "crime", "flag", "age_band", "gender", "language", "channel", "cross_border", "by"}

// scopeOf returns what a coordinator token may see: a token of an
// organisation is a national coordinator's, for that organisation's
// country; a token without one is a European coordinator's.
func scopeOf(who Token) reports.Scope {
	cc, _, _ := strings.Cut(who.Org, ".")
	return reports.Scope{Country: cc}
}

// reportFilter reads the query, refusing unknown parameters (all of
// them named), repeated ones and unreadable values.
func reportFilter(q url.Values) (reports.Filter, *Error) {
	var unknown []Problem
	for _, k := range sortedKeys(q) {
		if !slices.Contains(reportParams, k) {
			unknown = append(unknown, Problem{Parameter: k, Code: CodeInvalidParameter,
				Message: "unknown filter " + strconv.Quote(k) + "; the filters are " + strings.Join(reportParams, ", ")})
		} else if len(q[k]) > 1 {
			unknown = append(unknown, Problem{Parameter: k, Code: CodeInvalidParameter, Message: "given more than once"})
		}
	}
	if len(unknown) > 0 {
		return reports.Filter{}, &Error{Status: http.StatusBadRequest, Problems: unknown}
	}
	f := reports.Filter{Country: q.Get("country"), Need: q.Get("need"), Crime: q.Get("crime"), Flag: q.Get("flag"),
		AgeBand: q.Get("age_band"), Gender: q.Get("gender"), Language: q.Get("language"), Channel: q.Get("channel"), By: q.Get("by")}
	for _, p := range []struct {
		name string
		to   *time.Time
	}{{"from", &f.From}, {"to", &f.To}} {
		if v := q.Get(p.name); v != "" {
			t, err := time.Parse(time.DateOnly, v)
			if err != nil {
				return f, paramError(p.name, CodeInvalidParameter, "%s must be a date, YYYY-MM-DD", p.name)
			}
			*p.to = t
		}
	}
	if v := q.Get("cross_border"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return f, paramError("cross_border", CodeInvalidParameter, "cross_border must be true or false")
		}
		f.CrossBorder = &b
	}
	return f, nil
}

// getReport serves GET /v1/reports/{name...}: one report of aggregates,
// small counts suppressed, within the coordinator's scope.
func (s *Server) getReport(w http.ResponseWriter, r *http.Request, who Token) error {
	if s.deps.Reports == nil {
		return unavailable("reports")
	}
	name := r.PathValue("name")
	if !slices.Contains(reports.Reports, name) {
		return errorf(http.StatusNotFound, CodeNotFound, "no report %q; the reports are %s", name, strings.Join(reports.Reports, ", "))
	}
	f, e := reportFilter(r.URL.Query())
	if e != nil {
		return e
	}
	t, err := s.deps.Reports.Report(name, scopeOf(who), f, s.cfg.Now())
	var fe *reports.FilterError
	switch {
	case errors.As(err, &fe):
		return paramError(fe.Field, CodeInvalidParameter, "%s %s", fe.Field, fe.Message)
	case errors.Is(err, reports.ErrForbidden):
		return errorf(http.StatusForbidden, CodeForbidden, "a national coordinator sees only its own country and the flows that touch it")
	case err != nil:
		return err
	}
	writeJSON(w, http.StatusOK, t)
	return nil
}
