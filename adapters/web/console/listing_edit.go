package console

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/invictus-network/invictus/directory"
	"github.com/invictus-network/invictus/events"
)

// listingEditData is the form where an organisation administrator edits
// one of her services' listing content.
type listingEditData struct {
	ID, Name, TimeZone                   string
	Hours, Languages, Role, Email, Phone string
	Channels, Access, AgeBands           []choice
	Errors                               fieldErrors
	Done                                 string
}

// listingEdit shows and applies the form of one service's listing
// content: hours, languages, channels, accessibility, eligibility (age)
// and the referral desk. A valid form becomes a directory.service.updated
// v2 command on the organisation's own subject, which the routing service
// applies to the directory; errors are shown next to their fields, all at
// once, and nothing is sent. A service of another organisation is refused
// with an audit line.
func (s *Server) listingEdit(_ http.ResponseWriter, r *http.Request, rq *request) (string, int, error) {
	rq.pg.Title = rq.p.T("listing.edit_title")
	rq.pg.Section = "listing"
	id := r.FormValue("service")
	sv := s.deps.Directory.Snapshot().ServiceByID(id)
	if sv == nil || sv.Organisation != rq.user.Org {
		s.auditLine(r.Context(), rq.user, "listing_refused", "", id)
		rq.pg.Data = messageData{Text: rq.p.T("listing.not_yours")}
		return "message", http.StatusForbidden, nil
	}
	d := &listingEditData{ID: sv.ID, Name: sv.Name, TimeZone: sv.Hours.TimeZone, Errors: fieldErrors{}}
	rq.pg.Data = d
	v := url.Values{
		"hours": {hoursText(sv.Hours)}, "languages": {strings.Join(sv.Languages, ", ")},
		"channels": sv.Channels, "accessibility": sv.Accessibility, "age_bands": sv.Eligibility.AgeBands,
		"role": {sv.Contact.Role}, "email": {sv.Contact.Email}, "phone": {sv.Contact.Phone},
	}
	status := http.StatusOK
	if r.Method == http.MethodPost {
		v = r.PostForm
		status = s.saveListingContent(r, rq, sv, d)
	}
	d.Hours, d.Languages = v.Get("hours"), v.Get("languages")
	d.Role, d.Email, d.Phone = v.Get("role"), v.Get("email"), v.Get("phone")
	d.Channels = s.terms("channels", rq.lang, v["channels"])
	d.Access = s.terms("accessibility", rq.lang, v["accessibility"])
	d.AgeBands = s.terms("age_bands", rq.lang, v["age_bands"])
	return "listing_edit", status, nil
}

// saveListingContent checks the posted form of sv and sends it; it
// returns the page's status.
func (s *Server) saveListingContent(r *http.Request, rq *request, sv *directory.Service, d *listingEditData) int {
	f := r.PostForm
	c := &events.ServiceContent{Service: sv.ID, Channels: f["channels"], Accessibility: f["accessibility"],
		AgeBands: f["age_bands"], Genders: sv.Eligibility.Genders}
	hours, err := directory.ParseHours(f.Get("hours"), sv.Hours.TimeZone)
	if err != nil {
		d.Errors["hours"] = []string{rq.p.T("listing.bad_hours", err.Error())}
	}
	c.Hours = events.ServiceHours{TimeZone: hours.TimeZone, Always: hours.Always}
	for _, w := range hours.Weekly {
		c.Hours.Weekly = append(c.Hours.Weekly, events.OpeningInterval{Day: w.Day, Opens: w.Opens, Closes: w.Closes})
	}
	for _, l := range strings.FieldsFunc(strings.ToLower(f.Get("languages")), func(r rune) bool { return r == ',' || r == ' ' || r == ';' }) {
		switch {
		case !events.IsLanguage(l):
			d.Errors["languages"] = append(d.Errors["languages"], rq.p.T("listing.bad_language", l))
		case !slices.Contains(c.Languages, l):
			c.Languages = append(c.Languages, l)
		}
	}
	if len(c.Languages) == 0 && d.Errors["languages"] == nil {
		d.Errors["languages"] = []string{rq.p.T("listing.need_language")}
	}
	if len(c.Channels) == 0 {
		d.Errors["channels"] = []string{rq.p.T("listing.need_channel")}
	}
	if role, email, phone := strings.TrimSpace(f.Get("role")), strings.TrimSpace(f.Get("email")), strings.TrimSpace(f.Get("phone")); role+email+phone != "" {
		c.Contact = &events.ServiceContact{Role: role, Email: email, Phone: phone}
	}
	if len(d.Errors) == 0 {
		// The checks the routing service will make, here first, so that
		// each problem is shown next to its field and nothing is sent.
		if err := events.ValidatePayload(c); err != nil {
			d.Errors["listing"] = []string{rq.p.T("listing.bad_detail", err.Error())}
		} else if err := directory.ValidateService(withContent(*sv, c)); err != nil {
			var ve *directory.ValidationError
			if !errors.As(err, &ve) {
				return http.StatusInternalServerError
			}
			for _, p := range ve.Problems {
				field := contentField(p.Pointer)
				d.Errors[field] = append(d.Errors[field], rq.p.T("listing.bad_detail", p.Message))
			}
		}
	}
	if len(d.Errors) > 0 {
		return http.StatusUnprocessableEntity
	}
	status, done := s.sendListing(r, rq, sv.ID, c, d.Errors, func(x *directory.Index) bool {
		v := x.ServiceByID(sv.ID)
		return v != nil && v.UpdatedAt.After(sv.UpdatedAt) && slices.Equal(v.Languages, c.Languages)
	})
	d.Done = done
	return status
}

// withContent returns a copy of sv with c's content.
func withContent(sv directory.Service, c *events.ServiceContent) *directory.Service {
	sv.SetContent(c)
	return &sv
}

// contentField is the form field of a directory validation pointer.
func contentField(ptr string) string {
	for _, f := range [][2]string{{"/hours", "hours"}, {"/languages", "languages"}, {"/channels", "channels"},
		{"/accessibility", "accessibility"}, {"/eligibility", "age_bands"}, {"/contact/email", "email"},
		{"/contact/phone", "phone"}, {"/contact", "role"}} {
		if strings.HasPrefix(ptr, f[0]) {
			return f[1]
		}
	}
	return "listing"
}

// hoursText writes a schedule in the notation of directory.ParseHours:
// "24/7", or "mo 09:00-17:00; tu 09:00-12:00, 13:00-17:00".
func hoursText(h directory.Schedule) string {
	if h.Always {
		return "24/7"
	}
	var parts []string
	for _, day := range directory.Days {
		var ivs []string
		for _, w := range h.Weekly {
			if w.Day == day {
				ivs = append(ivs, w.Opens+"-"+w.Closes)
			}
		}
		if len(ivs) > 0 {
			parts = append(parts, day+" "+strings.Join(ivs, ", "))
		}
	}
	return strings.Join(parts, "; ")
}
