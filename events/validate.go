package events

import (
	"math"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/go-playground/validator/v10"
)

// StaffRefPattern is the syntax of a pseudonymous staff reference
// (Consent.RecordedBy): a prefix of 2 to 8 lower-case letters (the
// organisation's or unit's short code), a hyphen, and a code of 4 to 32
// lower-case letters and digits that holds at least one letter and at
// least one digit. A name ("Maria.Silva", "maria-silva") has no digit and
// a phone number ("+351 912 345 678", "tel-912345678") no letter in its
// code, so neither matches. Examples: "apav-lx0412", "staff-s017".
const StaffRefPattern = `^[a-z]{2,8}-[a-z0-9]{4,32}$`

// IsStaffRef reports whether s is a valid pseudonymous staff reference
// (see [StaffRefPattern]).
func IsStaffRef(s string) bool {
	if !isStaffRefSyntax(s) {
		return false
	}
	_, code, _ := strings.Cut(s, "-")
	return strings.ContainsAny(code, "0123456789") && strings.ContainsAny(code, "abcdefghijklmnopqrstuvwxyz")
}

// EventIDPattern is the syntax of every id the contract carries in an
// attribute: the CloudEvents id and the correlationid extension. An id is
// 1 to [MaxIDLength] ASCII letters, digits, '.', '_', ':' or '-', starting
// with a letter or digit: UUIDs, ULIDs and database keys fit; a path
// ("../../etc/passwd"), a NATS wildcard ("*", ">"), markup ("<script>"),
// white space and non-ASCII characters do not. Ids are never rewritten:
// one that does not match is refused.
const EventIDPattern = `^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$`

// MaxIDLength is the longest id, in bytes (see [EventIDPattern]).
const MaxIDLength = 128

// IsEventID reports whether id is a valid CloudEvents id of the contract
// (see [EventIDPattern]).
func IsEventID(id string) bool { return isEventIDSyntax(id) }

// Plausible times (DESIGN.md section 3). An event's time and a consent
// record's given_at are refused outside these bounds.
const (
	// EarliestTime is the earliest event time and consent time accepted:
	// the network did not exist before.
	EarliestTime = "2020-01-01T00:00:00Z"
	// MaxClockSkew is how far in the future (by the receiver's clock) an
	// event time or consent time may be: senders' clocks differ a little.
	MaxClockSkew = 5 * time.Minute
	// MaxConsentAge is how long before the referral.requested event's time
	// the victim's consent may have been given.
	MaxConsentAge = 2 * 365 * 24 * time.Hour
)

// The bounds as people read them, for problem messages.
const (
	maxClockSkewText  = "5 minutes"
	maxConsentAgeText = "2 years"
)

// earliestTime is EarliestTime parsed.
var earliestTime = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

// plausibleTime returns why t is not a plausible past instant at now, or "".
func plausibleTime(t, now time.Time) string {
	switch {
	case t.Before(earliestTime):
		return "is before " + EarliestTime
	case t.After(now.Add(MaxClockSkew)):
		return "is more than " + maxClockSkewText + " in the future"
	}
	return ""
}

// NUTSCountry returns the NUTS country prefix of an ISO country code (NUTS
// uses EL for Greece and UK for the United Kingdom).
func NUTSCountry(cc string) string {
	switch cc {
	case "gr":
		return "EL"
	case "gb":
		return "UK"
	}
	return strings.ToUpper(cc)
}

// IsOrgID reports whether id is a valid organisation id: <cc>.<slug>.
func IsOrgID(id string) bool {
	cc, slug, ok := strings.Cut(id, ".")
	return ok && IsCountry(cc) && isSlug(slug)
}

// IsServiceID reports whether id is a valid service id: <org id>.<slug>.
func IsServiceID(id string) bool {
	i := strings.LastIndexByte(id, '.')
	return i > 0 && IsOrgID(id[:i]) && isSlug(id[i+1:])
}

// IsPlacementID reports whether id is a valid placement id.
func IsPlacementID(id string) bool { return isPlacementSyntax(id) }

// hasAtMostTwoDecimals reports whether f is a multiple of 0.01 (within
// floating-point error).
func hasAtMostTwoDecimals(f float64) bool {
	x := f * 100
	return math.Abs(x-math.Round(x)) < 1e-6
}

// enumTags are the validate tags of the code lists that a needs profile
// and a service's listing both use ([Profile], [ServiceContent]): each
// list is written once, in taxonomy.go, and a code outside it is reported
// as a oneof rule would report it (CodeEnum, naming the codes).
var enumTags = map[string][]string{
	"channel": Channels, "accessibility": Accessibility, "ageband": AgeBands, "gender": Genders,
}

func newValidator() *validator.Validate {
	v := validator.New(validator.WithRequiredStructEnabled())
	v.RegisterTagNameFunc(func(f reflect.StructField) string {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			return ""
		}
		return name
	})
	str := func(pred func(string) bool) validator.Func {
		return func(fl validator.FieldLevel) bool { return pred(fl.Field().String()) }
	}
	must := func(tag string, fn validator.Func) {
		if err := v.RegisterValidation(tag, fn); err != nil {
			panic(err) // programming error: tags are fixed at build time
		}
	}
	must("country", str(IsCountry))
	must("need", str(IsNeed))
	must("crime", str(IsCrime))
	must("flag", str(IsFlag))
	must("lang", str(IsLanguage))
	must("orgid", str(IsOrgID))
	must("svcid", str(IsServiceID))
	must("placement", str(IsPlacementID))
	must("nuts", str(isNUTSSyntax))
	must("lau", str(isLAU))
	must("staffref", str(IsStaffRef))
	must("component", str(isComponent))
	must("agerecipient", str(isAgeRecipientSyntax))
	must("pasttime", func(fl validator.FieldLevel) bool {
		t, ok := timeOf(fl.Field())
		return ok && plausibleTime(t, time.Now()) == ""
	})
	// The validator's own unique, latitude and longitude box every
	// element into a map of interfaces, or format the number and match it
	// against a regular expression: a tenth of validating a request. Here
	// the contract's own cases (a list of codes, a coordinate) are
	// checked directly, anything else by the validator's own rule
	// (TestFastRulesMatchValidator).
	must("unique", uniqueRule)
	must("latitude", coordinateRule("latitude", 90))
	must("longitude", coordinateRule("longitude", 180))
	for tag, list := range enumTags {
		must(tag, str(func(s string) bool { return slices.Contains(list, s) }))
	}
	must("coord2", func(fl validator.FieldLevel) bool { return hasAtMostTwoDecimals(fl.Field().Float()) })
	must("istrue", func(fl validator.FieldLevel) bool { return fl.Field().Bool() })
	v.RegisterStructValidation(func(sl validator.StructLevel) {
		loc := sl.Current().Interface().(Location)
		switch {
		case loc.Region == "" || loc.Country == "":
		case !strings.HasPrefix(loc.Region, NUTSCountry(loc.Country)):
			sl.ReportError(loc.Region, "region", "Region", "nutscountry", loc.Country)
		case !IsKnownNUTS(loc.Country, loc.Region):
			sl.ReportError(loc.Region, "region", "Region", "nutsknown", loc.Country)
		}
	}, Location{})
	v.RegisterStructValidation(func(sl validator.StructLevel) {
		h := sl.Current().Interface().(Handover)
		if h.Envelope == "" || len(h.Envelope) > MaxEnvelopeSize {
			return // required and max report it
		}
		if err := CheckEnvelope(h.Envelope); err != nil {
			// The tag carries the reason; the value is never reported (it
			// may be a case file sent unsealed by mistake).
			sl.ReportError("", "envelope", "Envelope", "ageenvelope", err.Error())
		}
	}, Handover{})
	return v
}

// baked is a validator with only its own rules, for the cases the
// package's versions of them (uniqueRule, coordinateRule) leave to it.
var baked = validator.New()

// timeOf returns the time.Time v holds without boxing a copy of it when
// v is addressable.
func timeOf(v reflect.Value) (time.Time, bool) {
	if v.Type() != timeType {
		return time.Time{}, false
	}
	if v.CanAddr() {
		return *(v.Addr().Interface().(*time.Time)), true
	}
	t, ok := v.Interface().(time.Time)
	return t, ok
}

// uniqueRule is the validator's unique for a list of strings: no string
// twice, without allocating for a short list.
func uniqueRule(fl validator.FieldLevel) bool {
	v := fl.Field()
	if fl.Param() != "" || v.Kind() != reflect.Slice || v.Type().Elem().Kind() != reflect.String {
		return baked.Var(v.Interface(), "unique"+paramOf(fl)) == nil
	}
	n := v.Len()
	if n > 32 {
		seen := make(map[string]struct{}, n)
		for i := range n {
			seen[v.Index(i).String()] = struct{}{}
		}
		return len(seen) == n
	}
	for i := range n {
		s := v.Index(i).String()
		for j := range i {
			if v.Index(j).String() == s {
				return false
			}
		}
	}
	return true
}

// paramOf returns "=param" of fl's tag, or "".
func paramOf(fl validator.FieldLevel) string {
	if p := fl.Param(); p != "" {
		return "=" + p
	}
	return ""
}

// coordinateRule is the validator's latitude (limit 90) or longitude
// (180) for a number: the validator formats it and matches the text
// against a pattern that accepts exactly the numbers from -limit to
// limit.
func coordinateRule(tag string, limit float64) validator.Func {
	return func(fl validator.FieldLevel) bool {
		v := fl.Field()
		switch v.Kind() {
		case reflect.Float32, reflect.Float64:
			f := v.Float()
			return f >= -limit && f <= limit // false for NaN
		}
		return baked.Var(v.Interface(), tag) == nil
	}
}

// validate is the package's validator; validator.Validate is safe for
// concurrent use and caches struct metadata.
var validate = newValidator()

// ValidateProfile checks a needs profile with the rules of
// referral.requested, with pointers into the profile ("/location/region"):
// the one validation of a profile, which the CLI (match and refer), the
// HTTP API and the routing service (through Decode) apply before they
// match. It returns a *ValidationError of
// class ErrInvalid.
func ValidateProfile(p Profile) error {
	err := validate.Struct(p)
	if err == nil {
		return nil
	}
	return toValidationError(err, "")
}

// ValidatePayload checks p against its validation rules and returns nil or
// a *ValidationError listing every problem with a JSON pointer under /data.
func ValidatePayload(p Payload) error {
	err := validate.Struct(p)
	if err == nil {
		return nil
	}
	return toValidationError(err, "/data")
}
