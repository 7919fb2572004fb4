package events

import (
	"math"
	"reflect"
	"regexp"
	"strings"

	"github.com/go-playground/validator/v10"
)

var (
	reOrgSlug   = regexp.MustCompile(`^[a-z0-9-]{1,48}$`)
	reNUTS      = regexp.MustCompile(`^[A-Z]{2}[0-9A-Z]{1,3}$`)
	reLAU       = regexp.MustCompile(`^[A-Z0-9_-]{1,20}$`)
	reStaffRef  = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)
	rePlacement = regexp.MustCompile(`^[a-z0-9-]{1,16}$`)
	reComponent = regexp.MustCompile(`^[a-z_]{1,32}$`)
	reAgeRecip  = regexp.MustCompile(`^age1[02-9ac-hj-np-z]{58}$`)
	// noident: e-mail addresses and runs of 6+ digits (phone, id numbers).
	reEmail  = regexp.MustCompile(`[^\s@]+@[^\s@]+\.[^\s@]+`)
	reDigits = regexp.MustCompile(`\d[\d\s().-]{5,}\d`)
)

// AgeArmorHeader starts every ASCII-armored age envelope.
const AgeArmorHeader = "-----BEGIN AGE ENCRYPTED FILE-----"

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
	return ok && IsCountry(cc) && reOrgSlug.MatchString(slug)
}

// IsServiceID reports whether id is a valid service id: <org id>.<slug>.
func IsServiceID(id string) bool {
	i := strings.LastIndexByte(id, '.')
	return i > 0 && IsOrgID(id[:i]) && reOrgSlug.MatchString(id[i+1:])
}

// IsPlacementID reports whether id is a valid placement id.
func IsPlacementID(id string) bool { return rePlacement.MatchString(id) }

// hasAtMostTwoDecimals reports whether f is a multiple of 0.01 (within
// floating-point error).
func hasAtMostTwoDecimals(f float64) bool {
	x := f * 100
	return math.Abs(x-math.Round(x)) < 1e-6
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
	must("nuts", str(reNUTS.MatchString))
	must("lau", str(reLAU.MatchString))
	must("staffref", str(reStaffRef.MatchString))
	must("component", str(reComponent.MatchString))
	must("agerecipient", str(reAgeRecip.MatchString))
	must("ageenvelope", str(func(s string) bool { return strings.HasPrefix(s, AgeArmorHeader) }))
	must("noident", str(func(s string) bool { return !reEmail.MatchString(s) && !reDigits.MatchString(s) }))
	must("coord2", func(fl validator.FieldLevel) bool { return hasAtMostTwoDecimals(fl.Field().Float()) })
	must("istrue", func(fl validator.FieldLevel) bool { return fl.Field().Bool() })
	v.RegisterStructValidation(func(sl validator.StructLevel) {
		loc := sl.Current().Interface().(Location)
		if loc.Region != "" && loc.Country != "" && !strings.HasPrefix(loc.Region, NUTSCountry(loc.Country)) {
			sl.ReportError(loc.Region, "region", "Region", "nutscountry", loc.Country)
		}
	}, Location{})
	return v
}

// validate is the package's validator; validator.Validate is safe for
// concurrent use and caches struct metadata.
var validate = newValidator()

// ValidatePayload checks p against its validation rules and returns nil or
// a *ValidationError listing every problem with a JSON pointer under /data.
func ValidatePayload(p Payload) error {
	err := validate.Struct(p)
	if err == nil {
		return nil
	}
	return toValidationError(err, "/data")
}
