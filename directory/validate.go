package directory

import (
	"errors"
	"fmt"
	"net/mail"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"filippo.io/age"

	"github.com/invictus-network/invictus/events"
)

// ErrInvalid is the class of every validation and import error of this
// package: errors.Is(err, ErrInvalid) is true for a *ValidationError.
var ErrInvalid = errors.New("invalid directory data")

// Problem codes of this package, in addition to the events.Code* codes
// (required, invalid_code, enum, too_long, out_of_range, format,
// duplicate, region_country_mismatch) that it uses too.
const (
	// CodeUnknownReference: a service names an organisation that does not exist.
	CodeUnknownReference = "unknown_reference"
	// CodeIDMismatch: an id does not start with its parent's id, or a
	// country differs from the one in the id.
	CodeIDMismatch = "id_mismatch"
	// CodeTimeZone: the time zone is not a known IANA zone.
	CodeTimeZone = "unknown_time_zone"
	// CodeHoursOrder: an opening interval closes before (or when) it opens.
	CodeHoursOrder = "closes_before_opens"
	// CodeZeroCoordinates: a location at latitude 0, longitude 0.
	CodeZeroCoordinates = "zero_coordinates"
	// CodeConflict: two records with one id disagree (a location listed
	// differently by two services of one organisation).
	CodeConflict = "conflict"
	// CodeAgeRecipient: the age recipient is not an age X25519 public key.
	CodeAgeRecipient = "invalid_age_recipient"
	// CodeEmptyArea: the area covers no place: no region, no radius around
	// a location and not remote.
	CodeEmptyArea = "empty_area"
	// CodeRemoteChannel: a remote service without a remote channel.
	CodeRemoteChannel = "remote_without_channel"
	// CodeNoEmailAddress: an organisation receives referrals by e-mail
	// but has no referral contact address.
	CodeNoEmailAddress = "no_email_address"
	// CodeVersion: a record written by a newer model version.
	CodeVersion = "unsupported_version"
)

// Limits of the validator.
const (
	MaxNameLen      = 300
	MaxTextLen      = 4000
	MaxRadiusKm     = 1000.0
	MaxResponseHour = 720
	MaxListLen      = 64
)

// Problem is one validation problem: where (a JSON pointer, RFC 6901,
// into the directory's JSON, e.g. /services/3/hours/weekly/0/opens; for
// form imports "row 4, column needs"), a stable code and a message.
type Problem = events.Problem

// ValidationError lists every problem found. It matches ErrInvalid with
// errors.Is.
type ValidationError struct {
	Problems []Problem
}

// Error lists the problems, at most 20 of them.
func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString(ErrInvalid.Error())
	for i, p := range e.Problems {
		if i == 20 {
			fmt.Fprintf(&b, "; and %d more", len(e.Problems)-i)
			break
		}
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		if p.Pointer != "" {
			b.WriteString(p.Pointer)
			b.WriteString(": ")
		}
		b.WriteString(p.Message)
	}
	return b.String()
}

// Is reports whether target is ErrInvalid.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

// problems collects problems under a pointer prefix.
type problems struct {
	list   []Problem
	prefix string
}

func (p *problems) add(ptr, code, format string, args ...any) {
	p.list = append(p.list, Problem{Pointer: p.prefix + ptr, Code: code, Message: fmt.Sprintf(format, args...)})
}

func (p *problems) err() error {
	if len(p.list) == 0 {
		return nil
	}
	return &ValidationError{Problems: p.list}
}

var (
	reSlug     = regexp.MustCompile(`^[a-z0-9-]{1,48}$`)
	reNUTSAny  = regexp.MustCompile(`^[A-Z]{2}[0-9A-Z]{0,3}$`)
	reOrgType  = regexp.MustCompile(`^[a-z_]{1,40}$`)
	rePhone    = regexp.MustCompile(`^\+?[0-9][0-9 ().-]{1,30}$`)
	reControls = regexp.MustCompile(`[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]`)
)

// ValidateOrganisation checks one organisation and returns nil or a
// *ValidationError with JSON pointers relative to the organisation.
func ValidateOrganisation(o *Organisation) error {
	var p problems
	validateOrganisation(&p, o)
	return p.err()
}

// ValidateService checks one service on its own (not whether its
// organisation exists) and returns nil or a *ValidationError with JSON
// pointers relative to the service.
func ValidateService(s *Service) error {
	var p problems
	validateService(&p, s)
	return p.err()
}

// Validate checks every organisation and service, and the links between
// them: unique organisation and service ids, every service's organisation
// present, one location id meaning one place within an organisation. It
// returns nil or a *ValidationError listing every problem with a JSON
// pointer into the directory (/organisations/0/id, /services/3/...).
func (d *Directory) Validate() error {
	var p problems
	orgs := make(map[string]int, len(d.Organisations))
	for i := range d.Organisations {
		o := &d.Organisations[i]
		p.prefix = "/organisations/" + strconv.Itoa(i)
		validateOrganisation(&p, o)
		if j, dup := orgs[o.ID]; dup && o.ID != "" {
			p.add("/id", events.CodeDuplicate, "organisation id %q is also used by /organisations/%d", o.ID, j)
		} else {
			orgs[o.ID] = i
		}
	}
	svcs := make(map[string]int, len(d.Services))
	type locRef struct {
		loc *Location
		at  string
	}
	locs := make(map[string]locRef) // org id + "/" + location id
	for i := range d.Services {
		s := &d.Services[i]
		p.prefix = "/services/" + strconv.Itoa(i)
		validateService(&p, s)
		if j, dup := svcs[s.ID]; dup && s.ID != "" {
			p.add("/id", events.CodeDuplicate, "service id %q is also used by /services/%d", s.ID, j)
		} else {
			svcs[s.ID] = i
		}
		if _, ok := orgs[s.Organisation]; !ok && s.Organisation != "" {
			p.add("/organisation", CodeUnknownReference, "organisation %q is not in the directory", s.Organisation)
		}
		for k := range s.Locations {
			l := &s.Locations[k]
			if l.ID == "" {
				continue
			}
			key := s.Organisation + "/" + l.ID
			at := fmt.Sprintf("%s/locations/%d", p.prefix, k)
			if prev, ok := locs[key]; ok {
				if !sameLocation(prev.loc, l) {
					p.add(fmt.Sprintf("/locations/%d/id", k), CodeConflict, "location %q differs from the one of the same id at %s", l.ID, prev.at)
				}
			} else {
				locs[key] = locRef{l, at}
			}
		}
	}
	p.prefix = ""
	return p.err()
}

func sameLocation(a, b *Location) bool {
	return a.ID == b.ID && a.Name == b.Name && a.Address == b.Address && a.Postcode == b.Postcode &&
		a.City == b.City && a.Country == b.Country && a.Region == b.Region &&
		a.Lat == b.Lat && a.Lon == b.Lon && slices.Equal(a.Accessibility, b.Accessibility)
}

func validateOrganisation(p *problems, o *Organisation) {
	switch {
	case o.ID == "":
		p.add("/id", events.CodeRequired, "id is required")
	case !events.IsOrgID(o.ID):
		p.add("/id", events.CodeFormat, "%q is not an organisation id (<country>.<slug>, slug of a-z, 0-9 and -)", o.ID)
	}
	switch {
	case o.Country == "":
		p.add("/country", events.CodeRequired, "country is required")
	case !events.IsCountry(o.Country):
		p.add("/country", events.CodeInvalidCode, "%q is not a known country code (ISO 3166-1 alpha-2, lower case)", o.Country)
	case o.ID != "" && !strings.HasPrefix(o.ID, o.Country+"."):
		p.add("/country", CodeIDMismatch, "country %q differs from the country of id %q", o.Country, o.ID)
	}
	text(p, "/name", o.Name, MaxNameLen, true)
	text(p, "/alternate_name", o.AlternateName, MaxNameLen, false)
	text(p, "/description", o.Description, MaxTextLen, false)
	text(p, "/city", o.City, MaxNameLen, false)
	if o.Type != "" && !reOrgType.MatchString(o.Type) {
		p.add("/type", events.CodeFormat, "%q is not a type word (a-z and _)", o.Type)
	}
	if o.Website != "" {
		validateURL(p, "/website", o.Website)
	}
	if len(o.Helplines) > MaxListLen {
		p.add("/helplines", events.CodeTooLong, "at most %d helplines", MaxListLen)
	}
	for i, h := range o.Helplines {
		at := fmt.Sprintf("/helplines/%d", i)
		switch {
		case h.Number == "":
			p.add(at+"/number", events.CodeRequired, "number is required")
		case !rePhone.MatchString(h.Number):
			p.add(at+"/number", events.CodeFormat, "%q is not a phone number", h.Number)
		}
		text(p, at+"/name", h.Name, MaxNameLen, false)
		text(p, at+"/hours", h.Hours, MaxNameLen, false)
	}
	codes(p, "/languages", o.Languages, "language", events.IsLanguage, false)
	validateContact(p, "/referral_contact", o.ReferralContact)
	switch o.ReferralChannel {
	case "":
	case ReferralChannelEmail, ReferralChannelEmailDigest:
		if o.ReferralContact.Email == "" {
			p.add("/referral_contact/email", CodeNoEmailAddress,
				"organisation %s receives referrals by e-mail (referral_channel %s) but has no referral contact e-mail address", o.ID, o.ReferralChannel)
		}
	default:
		p.add("/referral_channel", events.CodeEnum, "%q is not one of: email, email_digest (or empty for the organisation's own system)", o.ReferralChannel)
	}
	if o.AgeRecipient != "" {
		if _, err := age.ParseX25519Recipient(o.AgeRecipient); err != nil {
			p.add("/age_recipient", CodeAgeRecipient, "not an age X25519 public key (age1...): %v", err)
		}
	}
	if o.Illustrative && o.Synthetic {
		p.add("/synthetic", events.CodeEnum, "an organisation is either illustrative (real) or synthetic, not both")
	}
	for i, s := range o.Sources {
		validateURL(p, fmt.Sprintf("/sources/%d", i), s)
	}
	validateVersion(p, o.Version)
}

func validateService(p *problems, s *Service) {
	switch {
	case s.ID == "":
		p.add("/id", events.CodeRequired, "id is required")
	case !events.IsServiceID(s.ID):
		p.add("/id", events.CodeFormat, "%q is not a service id (<country>.<org slug>.<slug>)", s.ID)
	case s.Organisation != "" && OrgIDOf(s.ID) != s.Organisation:
		p.add("/id", CodeIDMismatch, "service id %q does not start with its organisation id %q", s.ID, s.Organisation+".")
	}
	switch {
	case s.Organisation == "":
		p.add("/organisation", events.CodeRequired, "organisation is required")
	case !events.IsOrgID(s.Organisation):
		p.add("/organisation", events.CodeFormat, "%q is not an organisation id", s.Organisation)
	}
	text(p, "/name", s.Name, MaxNameLen, true)
	text(p, "/description", s.Description, MaxTextLen, false)
	switch s.Status {
	case StatusActive, StatusInactive:
	case "":
		p.add("/status", events.CodeRequired, "status is required (active or inactive)")
	default:
		p.add("/status", events.CodeEnum, "%q is not one of: active inactive", s.Status)
	}
	codes(p, "/needs", s.Needs, "need", events.IsNeed, true)
	codes(p, "/crimes", s.Crimes, "crime", events.IsCrime, false)
	codes(p, "/flags", s.Flags, "flag", events.IsFlag, false)
	codes(p, "/eligibility/age_bands", s.Eligibility.AgeBands, "age band", in(events.AgeBands), false)
	codes(p, "/eligibility/genders", s.Eligibility.Genders, "gender", in(events.Genders), false)
	codes(p, "/languages", s.Languages, "language", events.IsLanguage, true)
	codes(p, "/channels", s.Channels, "channel", in(events.Channels), true)
	codes(p, "/accessibility", s.Accessibility, "accessibility", in(events.Accessibility), false)
	validateArea(p, s)
	locIDs := make(map[string]int, len(s.Locations))
	for i := range s.Locations {
		at := fmt.Sprintf("/locations/%d", i)
		l := &s.Locations[i]
		validateLocation(p, at, l)
		if j, dup := locIDs[l.ID]; dup && l.ID != "" {
			p.add(at+"/id", events.CodeDuplicate, "location id %q is also used by /locations/%d", l.ID, j)
		} else {
			locIDs[l.ID] = i
		}
		if l.Country != "" && len(s.Area.Countries) > 0 && !slices.Contains(s.Area.Countries, l.Country) {
			p.add(at+"/country", events.CodeRegionCountry, "location country %q is not among the area's countries %v", l.Country, s.Area.Countries)
		}
	}
	validateSchedule(p, "/hours", &s.Hours)
	if s.ResponseHours < 0 || s.ResponseHours > MaxResponseHour {
		p.add("/response_hours", events.CodeOutOfRange, "%d is out of range 0..%d", s.ResponseHours, MaxResponseHour)
	}
	switch {
	case s.Capacity.Status == "":
		p.add("/capacity/status", events.CodeRequired, "capacity status is required (accepting, waitlist or full)")
	case !slices.Contains(events.CapacityStatuses, s.Capacity.Status):
		p.add("/capacity/status", events.CodeEnum, "%q is not one of: accepting waitlist full", s.Capacity.Status)
	}
	if s.Capacity.MaxOpen < 0 {
		p.add("/capacity/max_open", events.CodeOutOfRange, "%d is negative", s.Capacity.MaxOpen)
	}
	validateContact(p, "/contact", s.Contact)
	validateVersion(p, s.Version)
}

func validateArea(p *problems, s *Service) {
	a := &s.Area
	codes(p, "/area/countries", a.Countries, "country", events.IsCountry, true)
	for i, r := range a.Regions {
		at := fmt.Sprintf("/area/regions/%d", i)
		if !reNUTSAny.MatchString(r) {
			p.add(at, events.CodeFormat, "%q is not a NUTS code (e.g. PT, PT1, PT11, PT11A)", r)
			continue
		}
		if !slices.ContainsFunc(a.Countries, func(cc string) bool { return events.NUTSCountry(cc) == r[:2] }) {
			p.add(at, events.CodeRegionCountry, "region %q is not in the area's countries %v", r, a.Countries)
		}
	}
	if slices.Contains(a.Regions, "") || hasDup(a.Regions) {
		p.add("/area/regions", events.CodeDuplicate, "regions must be unique and non-empty")
	}
	if a.RadiusKm < 0 || a.RadiusKm > MaxRadiusKm || a.RadiusKm != a.RadiusKm {
		p.add("/area/radius_km", events.CodeOutOfRange, "%v is out of range 0..%v", a.RadiusKm, MaxRadiusKm)
	}
	if a.RadiusKm > 0 && len(s.Locations) == 0 {
		p.add("/area/radius_km", CodeEmptyArea, "a radius needs at least one location to be measured from")
	}
	if a.Remote && !slices.ContainsFunc(s.Channels, func(c string) bool { return slices.Contains(events.RemoteChannels, c) }) {
		p.add("/area/remote", CodeRemoteChannel, "a remote service needs a remote channel (phone, video, chat or email)")
	}
	if !a.Remote && len(a.Regions) == 0 && (a.RadiusKm <= 0 || len(s.Locations) == 0) {
		p.add("/area", CodeEmptyArea, "the area covers nothing: give regions, a radius around locations, or remote")
	}
}

func validateLocation(p *problems, at string, l *Location) {
	switch {
	case l.ID == "":
		p.add(at+"/id", events.CodeRequired, "location id is required")
	case !reSlug.MatchString(l.ID):
		p.add(at+"/id", events.CodeFormat, "%q is not a location id (a-z, 0-9 and -, at most 48)", l.ID)
	}
	text(p, at+"/name", l.Name, MaxNameLen, false)
	text(p, at+"/address", l.Address, MaxNameLen, false)
	text(p, at+"/postcode", l.Postcode, 20, false)
	text(p, at+"/city", l.City, MaxNameLen, false)
	switch {
	case l.Country == "":
		p.add(at+"/country", events.CodeRequired, "country is required")
	case !events.IsCountry(l.Country):
		p.add(at+"/country", events.CodeInvalidCode, "%q is not a known country code", l.Country)
	}
	if l.Region != "" {
		switch {
		case !reNUTSAny.MatchString(l.Region):
			p.add(at+"/region", events.CodeFormat, "%q is not a NUTS code", l.Region)
		case l.Country != "" && l.Region[:2] != events.NUTSCountry(l.Country):
			p.add(at+"/region", events.CodeRegionCountry, "region %q is not in country %q", l.Region, l.Country)
		}
	}
	if !(l.Lat >= -90 && l.Lat <= 90) {
		p.add(at+"/lat", events.CodeOutOfRange, "latitude %v is outside -90..90", l.Lat)
	}
	if !(l.Lon >= -180 && l.Lon <= 180) {
		p.add(at+"/lon", events.CodeOutOfRange, "longitude %v is outside -180..180", l.Lon)
	}
	if l.Lat == 0 && l.Lon == 0 {
		p.add(at+"/lat", CodeZeroCoordinates, "coordinates 0,0 are a missing value, not a place")
	}
	codes(p, at+"/accessibility", l.Accessibility, "accessibility", in(events.Accessibility), false)
}

func validateSchedule(p *problems, at string, h *Schedule) {
	if h.TimeZone == "" {
		p.add(at+"/time_zone", events.CodeRequired, "time zone is required (IANA name, e.g. Europe/Lisbon)")
	} else if _, err := LoadZone(h.TimeZone); err != nil {
		p.add(at+"/time_zone", CodeTimeZone, "%q is not a known IANA time zone", h.TimeZone)
	}
	if h.Always && len(h.Weekly) > 0 {
		p.add(at+"/weekly", events.CodeEnum, "weekly hours must be empty when the service is open 24/7")
	}
	if len(h.Weekly) > 7*8 {
		p.add(at+"/weekly", events.CodeTooLong, "at most %d intervals", 7*8)
	}
	for i, w := range h.Weekly {
		wat := fmt.Sprintf("%s/weekly/%d", at, i)
		if !slices.Contains(Days, w.Day) {
			p.add(wat+"/day", events.CodeEnum, "%q is not one of: %s", w.Day, strings.Join(Days, " "))
		}
		o, okO := ParseClock(w.Opens)
		c, okC := ParseClock(w.Closes)
		if !okO || o >= 24*60 {
			p.add(wat+"/opens", events.CodeFormat, "%q is not a time HH:MM between 00:00 and 23:59", w.Opens)
		}
		if !okC {
			p.add(wat+"/closes", events.CodeFormat, "%q is not a time HH:MM between 00:00 and 24:00", w.Closes)
		}
		if okO && okC && c <= o {
			p.add(wat+"/closes", CodeHoursOrder, "closes %s is not after opens %s (split a night interval at 24:00)", w.Closes, w.Opens)
		}
	}
}

func validateContact(p *problems, at string, c Contact) {
	text(p, at+"/role", c.Role, MaxNameLen, false)
	if c.Email != "" {
		if a, err := mail.ParseAddress(c.Email); err != nil || a.Address != c.Email {
			p.add(at+"/email", events.CodeFormat, "%q is not a bare e-mail address", c.Email)
		}
	}
	if c.Phone != "" && !rePhone.MatchString(c.Phone) {
		p.add(at+"/phone", events.CodeFormat, "%q is not a phone number", c.Phone)
	}
	if (c.Email != "" || c.Phone != "") && c.Role == "" {
		p.add(at+"/role", events.CodeRequired, "a contact names its role or desk (never a person)")
	}
}

func validateURL(p *problems, at, s string) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		p.add(at, events.CodeFormat, "%q is not an http(s) URL", s)
	}
}

func validateVersion(p *problems, v int) {
	if v < 0 || v > ModelVersion {
		p.add("/version", CodeVersion, "version %d is not supported (this build reads up to %d)", v, ModelVersion)
	}
}

// text checks a free-text field: required, length, control characters.
func text(p *problems, at, s string, maxLen int, required bool) {
	switch {
	case s == "" && required:
		p.add(at, events.CodeRequired, "%s is required", strings.TrimPrefix(at[strings.LastIndexByte(at, '/'):], "/"))
	case len(s) > maxLen:
		p.add(at, events.CodeTooLong, "at most %d bytes", maxLen)
	case reControls.MatchString(s):
		p.add(at, events.CodeFormat, "control characters are not allowed")
	}
}

// codes checks a list of codes: each known, no duplicate, at least one if
// required, at most MaxListLen.
func codes(p *problems, at string, list []string, what string, known func(string) bool, required bool) {
	if required && len(list) == 0 {
		p.add(at, events.CodeRequired, "at least one %s is required", what)
		return
	}
	if len(list) > MaxListLen {
		p.add(at, events.CodeTooLong, "at most %d items", MaxListLen)
		return
	}
	seen := make(map[string]bool, len(list))
	for i, c := range list {
		if !known(c) {
			p.add(fmt.Sprintf("%s/%d", at, i), events.CodeInvalidCode, "%q is not a known %s code", c, what)
		} else if seen[c] {
			p.add(fmt.Sprintf("%s/%d", at, i), events.CodeDuplicate, "%s %q is listed twice", what, c)
		}
		seen[c] = true
	}
}

func in(set []string) func(string) bool {
	return func(s string) bool { return slices.Contains(set, s) }
}

func hasDup(list []string) bool {
	seen := make(map[string]bool, len(list))
	for _, s := range list {
		if seen[s] {
			return true
		}
		seen[s] = true
	}
	return false
}
