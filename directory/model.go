package directory

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"
	_ "time/tzdata" // time zones load even on machines without a zoneinfo database

	"github.com/invictus-network/invictus/events"
)

// ModelVersion is the version of the JSON shape of [Organisation] and
// [Service]. Stored values carry it in their "version" field so that a
// reader can tell an old value from a new one.
const ModelVersion = 1

// Organisation types. The demo data uses these; any non-empty lower-case
// word is accepted.
const (
	OrgTypeNGO                  = "ngo"
	OrgTypeFederation           = "federation"
	OrgTypeNetwork              = "network"
	OrgTypeGovernment           = "government"
	OrgTypeGovernmentHelpline   = "government_helpline"
	OrgTypePublicServiceNetwork = "public_service_network"
	OrgTypeHelpline             = "helpline"
)

// Service statuses (HSDS service.status, restricted to what referral uses).
const (
	StatusActive   = "active"
	StatusInactive = "inactive"
)

// Organisation is a member of the network: an NGO, a public service, a
// helpline operator. It maps to the HSDS organization object.
type Organisation struct {
	// ID is <country>.<slug>, e.g. pt.apav (see events.IsOrgID).
	ID string `json:"id"`
	// Name is the organisation's name, usually in its own language.
	Name string `json:"name"`
	// AlternateName is another name: an acronym or the English name.
	AlternateName string `json:"alternate_name,omitempty"`
	// Description says what the organisation does.
	Description string `json:"description,omitempty"`
	// Country is the ISO 3166-1 alpha-2 code, lower case, of its seat; it
	// equals the first token of ID.
	Country string `json:"country"`
	// City is the city of its seat, if known.
	City string `json:"city,omitempty"`
	// Type is a lower-case word such as ngo or government_helpline
	// (see the OrgType constants).
	Type string `json:"type,omitempty"`
	// Website is the organisation's web address (a URL or a bare domain).
	Website string `json:"website,omitempty"`
	// Helplines are the public helplines it runs. Demo data carries only
	// the numbers present in the source data, never invented ones.
	Helplines []Helpline `json:"helplines,omitempty"`
	// Languages are ISO 639-1 codes the organisation works in.
	Languages []string `json:"languages,omitempty"`
	// ReferralContact is the desk that handles referrals: a role, never a
	// person's private data.
	ReferralContact Contact `json:"referral_contact,omitzero"`
	// ReferralChannel is how the organisation receives referrals: empty
	// for its own system (NATS, the HTTP API, webhooks, its case
	// database), [ReferralChannelEmail] for e-mail to
	// ReferralContact.Email, with signed links to answer (adapters/email),
	// or [ReferralChannelEmailDigest] for the same gathered in one e-mail a
	// day.
	ReferralChannel string `json:"referral_channel,omitempty"`
	// AgeRecipient is the organisation's age X25519 public key (age1...) to
	// which sealed handovers are encrypted. Empty means it has none yet.
	AgeRecipient string `json:"age_recipient,omitempty"`
	// Illustrative marks a real organisation shown for illustration: its
	// facts come from public pages and must be checked before real use.
	Illustrative bool `json:"illustrative,omitempty"`
	// Synthetic marks an organisation made up for demos and tests.
	Synthetic bool `json:"synthetic,omitempty"`
	// Pending marks an organisation added to the directory (invictus org
	// add) that a directory administrator has not approved yet: its
	// services are never candidates, in the matcher or in public search
	// (see [Index.Listed]), until it is approved. Absent (false) for every
	// organisation stored before approvals existed.
	Pending bool `json:"pending,omitempty"`
	// Sources are URLs the facts were taken from.
	Sources []string `json:"sources,omitempty"`
	// UpdatedAt is when the record last changed.
	UpdatedAt time.Time `json:"updated_at,omitzero"`
	// Version is the ModelVersion the value was written with; 0 is read as
	// ModelVersion.
	Version int `json:"version,omitempty"`
}

// ReferralChannelEmail is the [Organisation.ReferralChannel] of an
// organisation without a system of its own: offers and answers reach it by
// e-mail at its referral contact address.
const ReferralChannelEmail = "email"

// ReferralChannelEmailDigest is the [Organisation.ReferralChannel] of an
// organisation that receives by e-mail but wants one message a day (a
// digest) rather than one per event; an offer whose deadline comes before
// the next digest is still sent at once.
const ReferralChannelEmailDigest = "email_digest"

// ReceivesByEmail reports whether o receives referrals by e-mail, one
// message per event or in a daily digest.
func (o *Organisation) ReceivesByEmail() bool {
	return o.ReferralChannel == ReferralChannelEmail || o.ReferralChannel == ReferralChannelEmailDigest
}

// EmailDigest reports whether o receives its e-mail in a daily digest.
func (o *Organisation) EmailDigest() bool { return o.ReferralChannel == ReferralChannelEmailDigest }

// Helpline is a public phone line an organisation runs.
type Helpline struct {
	// Number as dialled in the country, e.g. "116 006".
	Number string `json:"number"`
	// Name of the line, if it has one.
	Name string `json:"name,omitempty"`
	// Hours as stated by the source, free text (e.g. "24/7"); empty when
	// not stated.
	Hours string `json:"hours,omitempty"`
	// Free reports whether calls are free of charge; nil when not stated.
	Free *bool `json:"free,omitempty"`
}

// Contact is a point of contact for referrals: a role or desk (e.g.
// "Referral desk"), with a functional e-mail address and phone number.
// It never names a person.
type Contact struct {
	Role  string `json:"role,omitempty"`
	Email string `json:"email,omitempty"`
	Phone string `json:"phone,omitempty"`
}

// IsZero reports whether c has no field set.
func (c Contact) IsZero() bool { return c == Contact{} }

// Service is something an organisation offers victims, with everything the
// matcher needs. It maps to the HSDS service object plus attributes.
type Service struct {
	// ID is <org id>.<slug>, e.g. pt.apav.helpline (see events.IsServiceID).
	ID string `json:"id"`
	// Organisation is the id of the organisation that runs the service.
	Organisation string `json:"organisation"`
	// Name and Description are shown to people; they are not used by
	// the matcher.
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Status is StatusActive or StatusInactive (required; Active treats
	// an empty status as active).
	Status string `json:"status"`
	// Needs are the need codes the service meets (at least one).
	Needs []string `json:"needs"`
	// Crimes are the crime types it specialises in; empty means any.
	Crimes []string `json:"crimes,omitempty"`
	// Flags are the individual-assessment flags it is specialised for.
	Flags []string `json:"flags,omitempty"`
	// Eligibility restricts who may be referred.
	Eligibility Eligibility `json:"eligibility,omitzero"`
	// Languages are the ISO 639-1 codes the service works in.
	Languages []string `json:"languages"`
	// InterpreterAvailable reports whether it can bring an interpreter.
	InterpreterAvailable bool `json:"interpreter_available,omitempty"`
	// Channels are the ways the service is delivered (events.Channels).
	Channels []string `json:"channels"`
	// Accessibility lists the accessibility needs it meets
	// (events.Accessibility), in addition to those of its locations.
	Accessibility []string `json:"accessibility,omitempty"`
	// Area says where the service serves.
	Area ServiceArea `json:"area"`
	// Locations are the places where it is delivered in person.
	Locations []Location `json:"locations,omitempty"`
	// Hours are its opening hours.
	Hours Schedule `json:"hours"`
	// ResponseHours is the promised time to answer an offer; 0 = none.
	ResponseHours int `json:"response_hours,omitempty"`
	// Capacity is its current capacity status.
	Capacity Capacity `json:"capacity"`
	// Contact is the service's referral desk, if it differs from the
	// organisation's.
	Contact Contact `json:"contact,omitzero"`
	// UpdatedAt is when the record last changed.
	UpdatedAt time.Time `json:"updated_at,omitzero"`
	// Version is the ModelVersion the value was written with; 0 is read as
	// ModelVersion.
	Version int `json:"version,omitempty"`
}

// Active reports whether the service takes referrals at all (Status active
// or empty).
func (s *Service) Active() bool { return s.Status == "" || s.Status == StatusActive }

// Eligibility restricts who a service accepts. An empty list means anyone.
type Eligibility struct {
	// AgeBands are codes of events.AgeBands.
	AgeBands []string `json:"age_bands,omitempty"`
	// Genders are codes of events.Genders.
	Genders []string `json:"genders,omitempty"`
}

// Accepts reports whether a person of the age band and gender (either may
// be empty, meaning unknown) is eligible. An unknown value is never
// excluded.
func (e Eligibility) Accepts(ageBand, gender string) bool {
	if ageBand != "" && len(e.AgeBands) > 0 && !slices.Contains(e.AgeBands, ageBand) {
		return false
	}
	if gender != "" && len(e.Genders) > 0 && !slices.Contains(e.Genders, gender) {
		return false
	}
	return true
}

// ServiceArea says where a service serves. A victim's location is covered
// when its country is in Countries and one of these holds: Remote; its NUTS
// region starts with one of Regions; it lies within RadiusKm of one of the
// service's locations. See [Service.Covers].
type ServiceArea struct {
	// Countries served, ISO 3166-1 alpha-2 lower case; at least one.
	Countries []string `json:"countries"`
	// Regions are NUTS codes of any level, 0 to 3 (level 0 is the country
	// code, e.g. "PT", and covers the whole country). A victim region
	// covered by a code is one that starts with it.
	Regions []string `json:"regions,omitempty"`
	// RadiusKm is the radius served around each location; 0 = none.
	RadiusKm float64 `json:"radius_km,omitempty"`
	// Remote means the service serves the whole of Countries through its
	// remote channels (phone, video, chat, e-mail).
	Remote bool `json:"remote,omitempty"`
}

// Location is a place where a service is delivered (HSDS location; the
// link to the service is HSDS service_at_location). Location ids are
// scoped by organisation: two services of one organisation that list the
// same location id list the same place.
type Location struct {
	// ID is a slug unique within the organisation, e.g. "porto".
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
	// Address is the street address, if public.
	Address  string `json:"address,omitempty"`
	Postcode string `json:"postcode,omitempty"`
	City     string `json:"city,omitempty"`
	// Country is the ISO 3166-1 alpha-2 code, lower case.
	Country string `json:"country"`
	// Region is the NUTS 3 (or coarser) code of the place, e.g. PT11A.
	Region string `json:"region,omitempty"`
	// Lat and Lon are WGS84 degrees.
	Lat float64 `json:"lat"`
	Lon float64 `json:"lon"`
	// Accessibility lists the accessibility needs the place meets.
	Accessibility []string `json:"accessibility,omitempty"`
}

// Schedule gives a service's opening hours in its own time zone.
type Schedule struct {
	// TimeZone is an IANA zone name, e.g. Europe/Lisbon.
	TimeZone string `json:"time_zone"`
	// Always means open 24 hours a day, 7 days a week; Weekly is then
	// ignored.
	Always bool `json:"always,omitempty"`
	// Weekly lists the opening intervals of each week day. A day may have
	// several intervals; a day without one is closed.
	Weekly []OpeningHours `json:"weekly,omitempty"`
}

// OpeningHours is one opening interval on one week day, in local time.
// An interval that runs past midnight is written as two: "22:00"-"24:00"
// on one day and "00:00"-"06:00" on the next.
type OpeningHours struct {
	// Day is one of Days: mo, tu, we, th, fr, sa, su.
	Day string `json:"day"`
	// Opens is "HH:MM", 00:00 to 23:59.
	Opens string `json:"opens"`
	// Closes is "HH:MM", after Opens; "24:00" means midnight at the end
	// of the day.
	Closes string `json:"closes"`
}

// Days are the week-day codes of OpeningHours, Monday first.
var Days = []string{"mo", "tu", "we", "th", "fr", "sa", "su"}

// Capacity is a service's capacity status (HSDS 3.1 service_capacity).
type Capacity struct {
	// Status is one of events.CapacityStatuses: accepting, waitlist, full.
	Status string `json:"status"`
	// UpdatedAt is when the status was last set.
	UpdatedAt time.Time `json:"updated_at,omitzero"`
	// MaxOpen is the number of open offers the service can hold at once;
	// 0 means unknown.
	MaxOpen int `json:"max_open,omitempty"`
}

// Directory is a whole directory: organisations and their services.
// Its lookups scan the slices; for matching use a search index.
type Directory struct {
	Organisations []Organisation `json:"organisations"`
	Services      []Service      `json:"services"`
}

// Sort orders organisations and services by id, so that equal directories
// compare equal.
func (d *Directory) Sort() {
	slices.SortFunc(d.Organisations, func(a, b Organisation) int { return cmp.Compare(a.ID, b.ID) })
	slices.SortFunc(d.Services, func(a, b Service) int { return cmp.Compare(a.ID, b.ID) })
}

// Organisation returns the organisation with the id, or nil.
func (d *Directory) Organisation(id string) *Organisation {
	for i := range d.Organisations {
		if d.Organisations[i].ID == id {
			return &d.Organisations[i]
		}
	}
	return nil
}

// Service returns the service with the id, or nil.
func (d *Directory) Service(id string) *Service {
	for i := range d.Services {
		if d.Services[i].ID == id {
			return &d.Services[i]
		}
	}
	return nil
}

// ServicesOf returns the services of the organisation, in directory order.
func (d *Directory) ServicesOf(orgID string) []*Service {
	var out []*Service
	for i := range d.Services {
		if d.Services[i].Organisation == orgID {
			out = append(out, &d.Services[i])
		}
	}
	return out
}

// Countries returns the sorted distinct countries of the organisations.
func (d *Directory) Countries() []string {
	var out []string
	for _, o := range d.Organisations {
		out = append(out, o.Country)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// OrgIDOf returns the organisation id part of a service id ("pt.apav" for
// "pt.apav.helpline"), or "" if id has fewer than three tokens.
func OrgIDOf(serviceID string) string {
	i := strings.LastIndexByte(serviceID, '.')
	if i <= 0 || strings.Count(serviceID, ".") < 2 {
		return ""
	}
	return serviceID[:i]
}

// Covers reports whether the service's area covers a victim in country cc,
// NUTS region (may be empty) and, if hasPoint, at lat/lon. It does not look
// at channels, needs or status.
func (s *Service) Covers(cc, region string, lat, lon float64, hasPoint bool) bool {
	if !slices.Contains(s.Area.Countries, cc) {
		return false
	}
	if s.Area.Remote {
		return true
	}
	if region != "" {
		for _, r := range s.Area.Regions {
			if strings.HasPrefix(region, r) {
				return true
			}
		}
	} else if slices.Contains(s.Area.Regions, events.NUTSCountry(cc)) {
		return true
	}
	if hasPoint && s.Area.RadiusKm > 0 {
		for _, l := range s.Locations {
			if DistanceKm(lat, lon, l.Lat, l.Lon) <= s.Area.RadiusKm {
				return true
			}
		}
	}
	return false
}

// earthRadiusKm is the mean radius of the Earth.
const earthRadiusKm = 6371.0088

// DistanceKm returns the great-circle (haversine) distance between two
// WGS84 points in kilometres.
func DistanceKm(lat1, lon1, lat2, lon2 float64) float64 {
	const rad = math.Pi / 180
	dLat := (lat2 - lat1) * rad
	dLon := (lon2 - lon1) * rad
	a := math.Sin(dLat/2)*math.Sin(dLat/2) + math.Cos(lat1*rad)*math.Cos(lat2*rad)*math.Sin(dLon/2)*math.Sin(dLon/2)
	return 2 * earthRadiusKm * math.Asin(math.Min(1, math.Sqrt(a)))
}

// zones caches loaded time zones; *time.Location values are immutable and
// safe to share.
var zones sync.Map // string -> *time.Location

// LoadZone returns the IANA time zone name, from a process-wide cache.
// The zone database is embedded (time/tzdata), so it does not depend on
// the machine. It returns the error of time.LoadLocation for unknown names
// and rejects "" and "Local", which are not portable.
func LoadZone(name string) (*time.Location, error) {
	if v, ok := zones.Load(name); ok {
		return v.(*time.Location), nil
	}
	if name == "" || name == "Local" {
		return nil, fmt.Errorf("time zone %q: an IANA zone name is required", name)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, err
	}
	zones.Store(name, loc)
	return loc, nil
}

// OpenAt reports whether the schedule is open at instant t, judged in the
// schedule's time zone. Always is open at every instant. A schedule with
// an unknown time zone or malformed hours is closed (Validate reports it).
func (s *Schedule) OpenAt(t time.Time) bool {
	if s.Always {
		return true
	}
	loc, err := LoadZone(s.TimeZone)
	if err != nil {
		return false
	}
	lt := t.In(loc)
	day := Days[(int(lt.Weekday())+6)%7]
	minute := lt.Hour()*60 + lt.Minute()
	for _, h := range s.Weekly {
		if h.Day != day {
			continue
		}
		o, ok1 := ParseClock(h.Opens)
		c, ok2 := ParseClock(h.Closes)
		if ok1 && ok2 && minute >= o && minute < c {
			return true
		}
	}
	return false
}

// ParseClock parses "HH:MM" (00:00 to 24:00) into minutes since midnight.
func ParseClock(s string) (int, bool) {
	if len(s) != 5 || s[2] != ':' {
		return 0, false
	}
	for _, i := range []int{0, 1, 3, 4} {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	h := int(s[0]-'0')*10 + int(s[1]-'0')
	m := int(s[3]-'0')*10 + int(s[4]-'0')
	if m > 59 || h > 24 || (h == 24 && m != 0) {
		return 0, false
	}
	return h*60 + m, true
}

// SetContent replaces the listing content of s with what an organisation
// said in c (directory.service.updated v2): hours, languages, channels,
// accessibility, eligibility and contact; the rest of s is kept. It does
// not validate the result (see [ValidateService]).
func (s *Service) SetContent(c *events.ServiceContent) {
	s.Hours = Schedule{TimeZone: c.Hours.TimeZone, Always: c.Hours.Always}
	for _, w := range c.Hours.Weekly {
		s.Hours.Weekly = append(s.Hours.Weekly, OpeningHours{Day: w.Day, Opens: w.Opens, Closes: w.Closes})
	}
	s.Languages, s.Channels, s.Accessibility = c.Languages, c.Channels, c.Accessibility
	s.Eligibility = Eligibility{AgeBands: c.AgeBands, Genders: c.Genders}
	s.Contact = Contact{}
	if c.Contact != nil {
		s.Contact = Contact{Role: c.Contact.Role, Email: c.Contact.Email, Phone: c.Contact.Phone}
	}
}
