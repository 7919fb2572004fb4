package events

import (
	"math"
	"reflect"
	"slices"
	"time"
)

// Payload is implemented by every event payload struct. EventType returns the
// CloudEvents type the payload belongs to.
//
// Decode and NewPayload return pointers (*Accepted, *Planned...), and so
// do the routing service and the referral package: a type switch over
// payloads names the pointer types. New also takes a value.
type Payload interface {
	EventType() string
}

// PlacementPayload is a payload about one placement of a referral:
// offered, accepted, declined, expired, handover, contacted, on_hold,
// completed, feedback and unmatched. PlacementID returns that placement,
// or "" where it is optional and absent (unmatched reporting uncovered
// needs, feedback about the whole referral).
type PlacementPayload interface {
	Payload
	PlacementID() string
}

// IsNil reports whether p is nil or a nil pointer.
func IsNil(p Payload) bool {
	if p == nil {
		return true
	}
	v := reflect.ValueOf(p)
	return v.Kind() == reflect.Pointer && v.IsNil()
}

// Location says where a victim is, coarsely: never an address. Coordinates
// carry at most two decimals (about 1 km): Decode and New round finer ones
// to 0.01 degrees before anything else sees them.
type Location struct {
	// Country is the ISO 3166-1 alpha-2 code, lower case, of where the
	// victim is now.
	Country string `json:"country" validate:"required,country"`
	// Region is a NUTS code (level 1 to 3) inside Country, e.g. PT17 or PT170.
	Region string `json:"region,omitempty" validate:"omitempty,nuts"`
	// Municipality is a LAU (local administrative unit) code.
	Municipality string `json:"municipality,omitempty" validate:"omitempty,lau"`
	// Lat and Lon are WGS84 degrees rounded to 0.01 at most; both or neither.
	Lat *float64 `json:"lat,omitempty" validate:"required_with=Lon,omitempty,latitude,coord2"`
	Lon *float64 `json:"lon,omitempty" validate:"required_with=Lat,omitempty,longitude,coord2"`
	// ResidenceCountry is set when the victim lives in another country
	// (cross-border case, Directive Art. 17).
	ResidenceCountry string `json:"residence_country,omitempty" validate:"omitempty,country"`
}

// Profile is the needs profile: everything routing needs and nothing that
// identifies the victim. Every field is a code; free text is not allowed.
type Profile struct {
	Needs         []string `json:"needs" validate:"required,min=1,max=19,unique,dive,need"`
	Crimes        []string `json:"crimes,omitempty" validate:"max=23,unique,dive,crime"`
	Flags         []string `json:"flags,omitempty" validate:"max=12,unique,dive,flag"`
	Urgency       string   `json:"urgency" validate:"required,oneof=routine soon urgent emergency"`
	Location      Location `json:"location"`
	Languages     []string `json:"languages" validate:"required,min=1,max=6,unique,dive,lang"`
	InterpreterOK bool     `json:"interpreter_ok"`
	AgeBand       string   `json:"age_band" validate:"required,ageband"`
	Gender        string   `json:"gender,omitempty" validate:"omitempty,gender"`
	Channels      []string `json:"channels" validate:"required,min=1,max=6,unique,dive,channel"`
	Accessibility []string `json:"accessibility,omitempty" validate:"max=8,unique,dive,accessibility"`
}

// Consent records the victim's consent to be referred. Referral must be true.
type Consent struct {
	// Referral is the victim's consent to be referred; it must be true.
	Referral bool `json:"referral" validate:"istrue"`
	// ShareData is the consent to share case details with the receiving
	// organisation after it accepts (sealed handover).
	ShareData bool `json:"share_data"`
	// GivenAt is when consent was given: not before EarliestTime, not more
	// than MaxClockSkew in the future, and (checked by Decode against the
	// event's time) at most MaxConsentAge before the referral was requested.
	GivenAt time.Time `json:"given_at" validate:"required,pasttime"`
	// Method is how consent was given: verbal, written or digital.
	Method string `json:"method" validate:"required,oneof=verbal written digital"`
	// RecordedBy is a pseudonymous staff reference of the referring
	// organisation, never a name: see StaffRefPattern.
	RecordedBy string `json:"recorded_by" validate:"required,staffref"`
}

// Requested is the payload of referral.requested: a needs profile with
// consent, sent by the referring organisation.
type Requested struct {
	Profile
	Consent Consent `json:"consent"`
	// PreferredOrganisation optionally names an organisation the victim prefers.
	PreferredOrganisation string `json:"preferred_organisation,omitempty" validate:"omitempty,orgid"`
	// ResponseHours optionally asks for an answer within this many hours.
	ResponseHours int `json:"response_hours,omitempty" validate:"omitempty,min=1,max=720"`
}

// Candidate is one ranked service in a plan group, with the score components
// that explain its rank.
type Candidate struct {
	Service      string             `json:"service" validate:"required,svcid"`
	Organisation string             `json:"organisation" validate:"required,orgid"`
	Covers       []string           `json:"covers" validate:"required,min=1,unique,dive,need"`
	Score        float64            `json:"score" validate:"gte=0,lte=1"`
	Components   map[string]float64 `json:"components" validate:"max=16,dive,keys,component,endkeys,gte=0,lte=1"`
	Reasons      []string           `json:"reasons" validate:"max=16,dive,min=1,max=200"`
}

// PlanGroup is a set of needs to be met by one placement, with its ranked
// candidates (the first is offered first).
type PlanGroup struct {
	Placement  string      `json:"placement" validate:"required,placement"`
	Needs      []string    `json:"needs" validate:"required,min=1,unique,dive,need"`
	Candidates []Candidate `json:"candidates" validate:"required,min=1,max=32,dive"`
}

// UnmatchedNeed is a need that no candidate covers, with a reason code.
type UnmatchedNeed struct {
	Need   string `json:"need" validate:"required,need"`
	Reason string `json:"reason" validate:"required,oneof=no_service excluded"`
	// Offered counts the services that offer the need where the victim
	// is (or remotely from the residence country).
	Offered int `json:"offered,omitempty" validate:"gte=0"`
	// Excluded counts those of them each hard constraint removed, each
	// under the first it failed: every constraint that stood between the
	// victim and the need is named.
	Excluded map[string]int `json:"excluded,omitempty" validate:"max=16,dive,keys,component,endkeys,gte=0"`
	// Nowhere is true when no active service of the directory offers the
	// need anywhere (reason no_service): a gap of the whole network, not
	// of the victim's area.
	Nowhere bool `json:"nowhere,omitempty"`
}

// RelaxedGroup are the services that could meet a need nothing eligible
// covers if one hard constraint were relaxed. They are shown apart from
// the plan's groups and never offered by the lifecycle: a caseworker
// decides with the victim whether to go that way.
type RelaxedGroup struct {
	Need string `json:"need" validate:"required,need"`
	// Constraint is the one hard constraint its candidates fail.
	Constraint string      `json:"constraint" validate:"required,oneof=accessibility channel open_now"`
	Candidates []Candidate `json:"candidates" validate:"required,min=1,max=32,dive"`
}

// Planned is the payload of referral.planned: the routing plan.
type Planned struct {
	DirectoryRevision uint64          `json:"directory_revision"`
	Groups            []PlanGroup     `json:"groups" validate:"max=19,dive"`
	Unmatched         []UnmatchedNeed `json:"unmatched,omitempty" validate:"max=19,dive"`
	// Excluded counts services excluded by each hard constraint.
	Excluded map[string]int `json:"excluded,omitempty" validate:"max=16,dive,keys,component,endkeys,gte=0"`
	// Relaxed are, for unmatched needs, the options left by relaxing one
	// hard constraint, marked with it; never part of Groups.
	Relaxed []RelaxedGroup `json:"relaxed,omitempty" validate:"max=19,dive"`
}

// Offered is the payload of referral.offered: one placement offered to one
// organisation, with the (non-identifying) profile it needs to decide.
type Offered struct {
	Placement    string    `json:"placement" validate:"required,placement"`
	Service      string    `json:"service" validate:"required,svcid"`
	Organisation string    `json:"organisation" validate:"required,orgid"`
	Referrer     string    `json:"referrer" validate:"required,orgid"`
	Needs        []string  `json:"needs" validate:"required,min=1,unique,dive,need"`
	Attempt      int       `json:"attempt" validate:"min=1,max=32"`
	Deadline     time.Time `json:"deadline" validate:"required"`
	Profile      Profile   `json:"profile"`
}

// Accepted is the payload of referral.accepted, sent by the offered organisation.
type Accepted struct {
	Placement string `json:"placement" validate:"required,placement"`
}

// Declined is the payload of referral.declined: a coded reason only. Free
// text is not part of any routing payload (it could name the victim); a
// member "text" is refused with CodeFreeText.
type Declined struct {
	Placement string `json:"placement" validate:"required,placement"`
	Reason    string `json:"reason" validate:"required,oneof=capacity out_of_scope not_eligible out_of_area language conflict_of_interest other"`
}

// Expired is the payload of referral.expired: an offer's deadline passed.
type Expired struct {
	Placement string    `json:"placement" validate:"required,placement"`
	Service   string    `json:"service" validate:"required,svcid"`
	Deadline  time.Time `json:"deadline" validate:"required"`
}

// Unmatched is the payload of referral.unmatched: needs for which no
// candidate is left. It is the raw material of gap analysis.
type Unmatched struct {
	Placement string   `json:"placement,omitempty" validate:"omitempty,placement"`
	Needs     []string `json:"needs" validate:"required,min=1,unique,dive,need"`
	Reason    string   `json:"reason" validate:"required,oneof=no_service excluded all_declined"`
	Profile   Profile  `json:"profile"`
	// Details say, need by need, what the plan found: how many services
	// offer it and which hard constraints removed them (reasons
	// no_service and excluded).
	Details []UnmatchedNeed `json:"details,omitempty" validate:"max=19,dive"`
}

// Handover is the payload of referral.handover: the sealed case envelope,
// age-encrypted to the accepting organisation's recipient. The routing
// service forwards it and cannot read it.
type Handover struct {
	Placement string `json:"placement" validate:"required,placement"`
	// Recipient is the age X25519 recipient the envelope was sealed to.
	Recipient string `json:"recipient" validate:"required,agerecipient"`
	// Envelope is the ASCII-armored age ciphertext; CheckEnvelope checks
	// its structure (at least one X25519 recipient stanza and a payload)
	// without opening it.
	Envelope string `json:"envelope" validate:"required,max=262144"`
}

// Contacted is the payload of referral.contacted: the accepting organisation
// has made contact with the victim.
type Contacted struct {
	Placement string `json:"placement" validate:"required,placement"`
}

// OnHold is the payload of referral.on_hold: the placement is waitlisted.
type OnHold struct {
	Placement string     `json:"placement" validate:"required,placement"`
	Until     *time.Time `json:"until,omitempty"`
}

// Completed is the payload of referral.completed, with an outcome code.
type Completed struct {
	Placement string `json:"placement" validate:"required,placement"`
	Outcome   string `json:"outcome" validate:"required,oneof=supported not_supported unable_to_contact declined_by_victim referred_elsewhere other"`
}

// Withdrawn is the payload of referral.withdrawn, sent by the referrer.
type Withdrawn struct {
	Reason string `json:"reason" validate:"required,oneof=victim_request needs_met referred_elsewhere duplicate error other"`
}

// Erase is the payload of referral.erase: the victim asked for every copy
// to be purged.
type Erase struct {
	Reason string `json:"reason" validate:"required,oneof=victim_request retention error"`
}

// Erased is the payload of referral.erased: all that statistics keep of an
// erased referral. Dates are days, not instants.
type Erased struct {
	Country     string   `json:"country" validate:"required,country"`
	Region      string   `json:"region,omitempty" validate:"omitempty,nuts"`
	Needs       []string `json:"needs" validate:"required,min=1,unique,dive,need"`
	Outcome     string   `json:"outcome" validate:"required,oneof=completed partially_completed failed cancelled open"`
	RequestedOn string   `json:"requested_on" validate:"required,datetime=2006-01-02"`
	ErasedOn    string   `json:"erased_on" validate:"required,datetime=2006-01-02"`
}

// Answer is one anonymous survey answer on a 1 to 5 scale.
type Answer struct {
	Question string `json:"question" validate:"required,oneof=helpful respectful timely informed safe recommend"`
	Value    int    `json:"value" validate:"min=1,max=5"`
}

// Feedback is the payload of referral.feedback: anonymous experience survey
// answers for impact measurement. The questionnaire asks, each on a 1 to 5
// scale, whether the victim was informed, respected and helped and
// whether she would recommend the service (the other questions of
// [Answer] stay accepted), and what was missing, as codes from
// [FeedbackMissing]: never free text.
type Feedback struct {
	Placement string   `json:"placement,omitempty" validate:"omitempty,placement"`
	Answers   []Answer `json:"answers" validate:"required,min=1,max=6,dive"`
	// Missing lists what the victim missed, as codes of FeedbackMissing.
	Missing []string `json:"missing,omitempty" validate:"max=8,unique,dive,oneof=information emotional_support practical_help legal_help safety interpreter faster_contact follow_up"`
}

// ExcludedBy returns, for an unmatched need of the plan whose reason is
// "excluded", the services each hard constraint excluded: the need's own
// Excluded, or the plan's for a plan made before needs had their own.
func (p *Planned) ExcludedBy(u UnmatchedNeed) map[string]int {
	if len(u.Excluded) > 0 {
		return u.Excluded
	}
	return p.Excluded
}

// FeedbackMissing lists the codes of [Feedback].Missing.
var FeedbackMissing = []string{"information", "emotional_support", "practical_help", "legal_help", "safety", "interpreter", "faster_contact", "follow_up"}

// Problem is one machine-readable validation problem: a JSON pointer into
// the event (RFC 6901; payload fields are under /data), a stable code and
// a human-readable message.
type Problem struct {
	Pointer string `json:"pointer" validate:"max=512"`
	Code    string `json:"code" validate:"required,max=64"`
	Message string `json:"message" validate:"required,max=500"`
}

// CommandRejected is the payload of command.rejected, delivered to the
// sender of a command that was not accepted.
type CommandRejected struct {
	Command     string    `json:"command" validate:"required,max=128"`
	CommandType string    `json:"command_type,omitempty" validate:"omitempty,max=128"`
	Errors      []Problem `json:"errors" validate:"required,min=1,max=100,dive"`
}

// DeliveryFailed is the payload of delivery.failed, delivered by a
// channel (the e-mail channel, source [SourceEmail]) to the referrer of a
// placement whose offer or reminder it could not bring to the offered
// organisation: its server refused the message for good, or it kept
// failing. It is not part of the referral's log (the routing service
// neither writes nor folds it); it names the message and the failure,
// never anything about the person.
type DeliveryFailed struct {
	// Placement is the placement whose message was not delivered.
	Placement string `json:"placement" validate:"required,placement"`
	// Organisation is the offered organisation that did not get it.
	Organisation string `json:"organisation" validate:"required,orgid"`
	// Channel is how it was sent: email.
	Channel string `json:"channel" validate:"required,oneof=email"`
	// Message is what was not delivered: the offer or its reminder.
	Message string `json:"message" validate:"required,oneof=offer reminder"`
	// Event is the id of the event that was not delivered (the
	// referral.offered).
	Event string `json:"event" validate:"required,max=128"`
	// Reason is refused (the server refused it for good) or gave_up
	// (temporary failures, too many times).
	Reason string `json:"reason" validate:"required,oneof=refused gave_up"`
	// SMTPCode is the reply code of the mail server's last answer, when
	// there was one (e.g. 550).
	SMTPCode int `json:"smtp_code,omitempty" validate:"omitempty,min=200,max=599"`
	// Attempts is how many times the message was tried.
	Attempts int `json:"attempts" validate:"min=1,max=1000"`
}

// Delivery failure reasons of [DeliveryFailed].Reason.
const (
	DeliveryRefused = "refused"
	DeliveryGaveUp  = "gave_up"
)

// OrganisationUpdated is the payload of directory.organisation.updated.
type OrganisationUpdated struct {
	Organisation string `json:"organisation" validate:"required,orgid"`
	Revision     uint64 `json:"revision"`
	Deleted      bool   `json:"deleted,omitempty"`
}

// ServiceUpdated is the payload of directory.service.updated.
type ServiceUpdated struct {
	Service  string `json:"service" validate:"required,svcid"`
	Revision uint64 `json:"revision"`
	Deleted  bool   `json:"deleted,omitempty"`
}

// ServiceContent is the payload of directory.service.updated v2: what an
// organisation says about one of its own services, on its INBOUND subject.
// It replaces these fields of the service's directory record as a whole
// (an absent list or contact means none); the rest of the record (needs,
// area, locations, capacity) stays as it is. Version 1 ([ServiceUpdated])
// carries only the id and stays accepted: it confirms the listing.
type ServiceContent struct {
	Service  string `json:"service" validate:"required,svcid"`
	Revision uint64 `json:"revision,omitempty"`
	// Hours are the opening hours in the service's time zone.
	Hours ServiceHours `json:"hours"`
	// Languages are the ISO 639-1 codes the service works in.
	Languages []string `json:"languages" validate:"required,min=1,max=40,unique,dive,lang"`
	// Channels are the ways the service is delivered.
	Channels []string `json:"channels" validate:"required,min=1,max=6,unique,dive,channel"`
	// Accessibility lists the accessibility needs it meets.
	Accessibility []string `json:"accessibility,omitempty" validate:"max=8,unique,dive,accessibility"`
	// AgeBands and Genders restrict who it accepts; empty means anyone.
	AgeBands []string `json:"age_bands,omitempty" validate:"max=4,unique,dive,ageband"`
	Genders  []string `json:"genders,omitempty" validate:"max=4,unique,dive,gender"`
	// Contact is the service's referral desk (a role, never a person),
	// when it differs from the organisation's.
	Contact *ServiceContact `json:"contact,omitempty"`
}

// ServiceHours are a service's opening hours in [ServiceContent].
type ServiceHours struct {
	// TimeZone is an IANA zone name, e.g. Europe/Lisbon.
	TimeZone string `json:"time_zone" validate:"required,min=1,max=64"`
	// Always means open 24 hours a day, 7 days a week.
	Always bool `json:"always,omitempty"`
	// Weekly lists the opening intervals of each week day.
	Weekly []OpeningInterval `json:"weekly,omitempty" validate:"max=70,dive"`
}

// OpeningInterval is one opening interval on one week day, local time
// "HH:MM"; Closes "24:00" is midnight at the end of the day.
type OpeningInterval struct {
	Day    string `json:"day" validate:"required,oneof=mo tu we th fr sa su"`
	Opens  string `json:"opens" validate:"required,min=5,max=5"`
	Closes string `json:"closes" validate:"required,min=5,max=5"`
}

// ServiceContact is a service's referral desk in [ServiceContent].
type ServiceContact struct {
	Role  string `json:"role,omitempty" validate:"max=100"`
	Email string `json:"email,omitempty" validate:"max=254"`
	Phone string `json:"phone,omitempty" validate:"max=40"`
}

// CapacityUpdated is the payload of directory.capacity.updated.
type CapacityUpdated struct {
	Service  string `json:"service" validate:"required,svcid"`
	Status   string `json:"status" validate:"required,oneof=accepting waitlist full"`
	Revision uint64 `json:"revision,omitempty"`
}

func (p Offered) PlacementID() string        { return p.Placement }
func (p Accepted) PlacementID() string       { return p.Placement }
func (p Declined) PlacementID() string       { return p.Placement }
func (p Expired) PlacementID() string        { return p.Placement }
func (p Unmatched) PlacementID() string      { return p.Placement }
func (p Handover) PlacementID() string       { return p.Placement }
func (p Contacted) PlacementID() string      { return p.Placement }
func (p OnHold) PlacementID() string         { return p.Placement }
func (p Completed) PlacementID() string      { return p.Placement }
func (p Feedback) PlacementID() string       { return p.Placement }
func (p DeliveryFailed) PlacementID() string { return p.Placement }

func (Requested) EventType() string           { return TypeReferralRequested }
func (Planned) EventType() string             { return TypeReferralPlanned }
func (Offered) EventType() string             { return TypeReferralOffered }
func (Accepted) EventType() string            { return TypeReferralAccepted }
func (Declined) EventType() string            { return TypeReferralDeclined }
func (Expired) EventType() string             { return TypeReferralExpired }
func (Unmatched) EventType() string           { return TypeReferralUnmatched }
func (Handover) EventType() string            { return TypeReferralHandover }
func (Contacted) EventType() string           { return TypeReferralContacted }
func (OnHold) EventType() string              { return TypeReferralOnHold }
func (Completed) EventType() string           { return TypeReferralCompleted }
func (Withdrawn) EventType() string           { return TypeReferralWithdrawn }
func (Erase) EventType() string               { return TypeReferralErase }
func (Erased) EventType() string              { return TypeReferralErased }
func (Feedback) EventType() string            { return TypeReferralFeedback }
func (CommandRejected) EventType() string     { return TypeCommandRejected }
func (DeliveryFailed) EventType() string      { return TypeDeliveryFailed }
func (OrganisationUpdated) EventType() string { return TypeDirectoryOrgUpdated }
func (ServiceUpdated) EventType() string      { return TypeDirectoryServiceUpdated }
func (ServiceContent) EventType() string      { return TypeDirectoryServiceContent }
func (CapacityUpdated) EventType() string     { return TypeDirectoryCapacityUpdated }

// registry maps every type to a constructor of its zero payload.
var registry = map[string]func() Payload{
	TypeReferralRequested:        func() Payload { return &Requested{} },
	TypeReferralPlanned:          func() Payload { return &Planned{} },
	TypeReferralOffered:          func() Payload { return &Offered{} },
	TypeReferralAccepted:         func() Payload { return &Accepted{} },
	TypeReferralDeclined:         func() Payload { return &Declined{} },
	TypeReferralExpired:          func() Payload { return &Expired{} },
	TypeReferralUnmatched:        func() Payload { return &Unmatched{} },
	TypeReferralHandover:         func() Payload { return &Handover{} },
	TypeReferralContacted:        func() Payload { return &Contacted{} },
	TypeReferralOnHold:           func() Payload { return &OnHold{} },
	TypeReferralCompleted:        func() Payload { return &Completed{} },
	TypeReferralWithdrawn:        func() Payload { return &Withdrawn{} },
	TypeReferralErase:            func() Payload { return &Erase{} },
	TypeReferralErased:           func() Payload { return &Erased{} },
	TypeReferralFeedback:         func() Payload { return &Feedback{} },
	TypeCommandRejected:          func() Payload { return &CommandRejected{} },
	TypeDeliveryFailed:           func() Payload { return &DeliveryFailed{} },
	TypeDirectoryOrgUpdated:      func() Payload { return &OrganisationUpdated{} },
	TypeDirectoryServiceUpdated:  func() Payload { return &ServiceUpdated{} },
	TypeDirectoryServiceContent:  func() Payload { return &ServiceContent{} },
	TypeDirectoryCapacityUpdated: func() Payload { return &CapacityUpdated{} },
}

// Types returns every event type of the catalogue, sorted.
func Types() []string {
	out := make([]string, 0, len(registry))
	for t := range registry {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}

// NewPayload returns a pointer to a zero payload for typ, and false when
// typ is not in the catalogue.
func NewPayload(typ string) (Payload, bool) {
	f, ok := registry[typ]
	if !ok {
		return nil, false
	}
	return f(), true
}

// round rounds Lat and Lon to 0.01 degrees (about 1 km) and reports
// whether either changed.
func (l *Location) round() bool {
	changed := false
	for _, c := range []*float64{l.Lat, l.Lon} {
		if c == nil {
			continue
		}
		if r := math.Round(*c*100) / 100; r != *c {
			*c, changed = r, true
		}
	}
	return changed
}

// roundCoordinates rounds the coordinates of the location p carries, if
// any, to 0.01 degrees: the server keeps nothing finer than the contract
// allows, whatever a sender gave. It reports whether anything changed.
func roundCoordinates(p Payload) bool {
	switch v := p.(type) {
	case *Requested:
		return v.Location.round()
	case *Offered:
		return v.Profile.Location.round()
	case *Unmatched:
		return v.Profile.Location.round()
	}
	return false
}
