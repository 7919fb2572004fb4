package events

import (
	"errors"
	"fmt"
	"strings"

	"github.com/go-playground/validator/v10"

	"github.com/invictus-network/invictus/internal/clip"
)

// Error classes of Decode. Each is a sentinel that a *ValidationError
// matches with errors.Is, so callers can tell the classes apart.
var (
	ErrInvalid          = errors.New("invalid event")
	ErrUnknownType      = errors.New("unknown event type")
	ErrMissingAttribute = errors.New("missing required attribute")
	ErrContentType      = errors.New("unsupported datacontenttype")
	ErrInvalidUTF8      = errors.New("invalid UTF-8")
	ErrTooLarge         = errors.New("message too large")
	ErrUnknownField     = errors.New("unknown payload field")
	ErrMalformedJSON    = errors.New("malformed JSON")
)

// Problem codes: stable, machine-readable. The same codes appear in
// command.rejected and in the HTTP API's error bodies.
const (
	CodeRequired    = "required"
	CodeInvalidCode = "invalid_code"
	CodeEnum        = "enum"
	CodeTooShort    = "too_short"
	CodeTooLong     = "too_long"
	CodeOutOfRange  = "out_of_range"
	CodeFormat      = "format"
	CodePrecision   = "precision"
	CodeConsent     = "consent_required"
	CodeDuplicate   = "duplicate"
	CodeIdentifying = "identifying_text"
	// CodeFreeText: a member holding free text ("text", "note"...), which no
	// routing payload has; only the sealed handover envelope carries text.
	CodeFreeText = "free_text"
	// CodeUnknownExtension: a CloudEvents extension attribute outside
	// Extensions, the allow-list.
	CodeUnknownExtension = "unknown_extension"
	CodeUnknownField     = "unknown_field"
	CodeMalformedJSON    = "malformed_json"
	CodeInvalidUTF8      = "invalid_utf8"
	CodeTooLarge         = "too_large"
	CodeUnknownType      = "unknown_type"
	CodeMissingAttribute = "missing_attribute"
	CodeContentType      = "unsupported_content_type"
	CodeInvalidAttribute = "invalid_attribute"
	CodeRegionCountry    = "region_country_mismatch"
)

// ValidationError lists every problem found in one event.
type ValidationError struct {
	// Class is one of the Err* sentinels; errors.Is(err, Class) is true.
	Class    error
	Problems []Problem
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	if e.Class == nil {
		b.WriteString(ErrInvalid.Error())
	} else {
		b.WriteString(e.Class.Error())
	}
	for i, p := range e.Problems {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s %s: %s", p.Pointer, p.Code, p.Message)
	}
	return b.String()
}

// Is reports whether target is the error's class.
func (e *ValidationError) Is(target error) bool { return target == e.Class }

// toValidationError converts validator errors into problems with JSON
// pointers below prefix.
func toValidationError(err error, prefix string) error {
	var verrs validator.ValidationErrors
	if !errors.As(err, &verrs) {
		return &ValidationError{Class: ErrInvalid, Problems: []Problem{{Pointer: prefix, Code: CodeFormat, Message: err.Error()}}}
	}
	out := &ValidationError{Class: ErrInvalid}
	for _, fe := range verrs {
		code, msg := describe(fe)
		out.Problems = append(out.Problems, Problem{Pointer: prefix + namespaceToPointer(fe.Namespace()), Code: code, Message: msg})
	}
	return out
}

// namespaceToPointer turns validator's "Requested.Profile.needs[0]" into
// "/needs/0": the root type name and embedded structs are dropped. A map
// key in brackets may itself hold dots or brackets; it ends at the "]"
// that is followed by the end, "." or "[".
func namespaceToPointer(ns string) string {
	var b strings.Builder
	for i, first := 0, true; i < len(ns); first = false {
		j := i
		for j < len(ns) && ns[j] != '.' && ns[j] != '[' {
			j++
		}
		// The root type is dropped, and so is the embedded Profile, which is
		// inlined in JSON.
		if name := ns[i:j]; !first && name != "Profile" {
			b.WriteByte('/')
			b.WriteString(escapePointer(name))
		}
		for j < len(ns) && ns[j] == '[' {
			k := j + 1
			for k < len(ns) && (ns[k] != ']' || (k+1 < len(ns) && ns[k+1] != '.' && ns[k+1] != '[')) {
				k++
			}
			b.WriteByte('/')
			b.WriteString(escapePointer(ns[j+1 : k]))
			j = min(k+1, len(ns))
		}
		if j < len(ns) && ns[j] == '.' {
			j++
		}
		i = j
	}
	return b.String()
}

func escapePointer(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

func describe(fe validator.FieldError) (code, msg string) {
	// Values are shortened: a message must fit in a Problem (500 bytes).
	v := clip.Mark(fmt.Sprint(fe.Value()), 64, "…")
	if list, ok := enumTags[fe.Tag()]; ok {
		return CodeEnum, fmt.Sprintf("%q is not one of: %s", v, strings.Join(list, " "))
	}
	switch fe.Tag() {
	case "required", "required_with":
		return CodeRequired, fmt.Sprintf("%s is required", fe.Field())
	case "need", "crime", "flag", "lang", "country":
		return CodeInvalidCode, fmt.Sprintf("%q is not a known %s code", v, fe.Tag())
	case "oneof":
		return CodeEnum, fmt.Sprintf("%q is not one of: %s", v, fe.Param())
	case "min":
		if isLen(fe) {
			return CodeTooShort, fmt.Sprintf("%s needs at least %s item(s) or character(s)", fe.Field(), fe.Param())
		}
		return CodeOutOfRange, fmt.Sprintf("%v is below the minimum %s", v, fe.Param())
	case "max":
		if isLen(fe) {
			return CodeTooLong, fmt.Sprintf("%s allows at most %s item(s) or character(s)", fe.Field(), fe.Param())
		}
		return CodeOutOfRange, fmt.Sprintf("%v is above the maximum %s", v, fe.Param())
	case "gte", "lte", "latitude", "longitude":
		return CodeOutOfRange, fmt.Sprintf("%v is out of range for %s", v, fe.Field())
	case "coord2":
		return CodePrecision, "coordinates must be rounded to 0.01 degrees at most"
	case "istrue":
		return CodeConsent, "the victim's consent to be referred must be recorded as true"
	case "unique":
		return CodeDuplicate, fmt.Sprintf("%s contains duplicates", fe.Field())
	case "ageenvelope":
		// Never echoed: a case file sent unsealed by mistake would travel on
		// in command.rejected, DLQ headers and logs. The parameter is the
		// reason CheckEnvelope gave, which quotes nothing.
		return CodeFormat, fe.Param()
	case "staffref":
		return CodeFormat, "recorded_by must be a pseudonymous staff reference (" + StaffRefPattern + ", with at least one letter and one digit after the hyphen, e.g. apav-lx0412), never a name or phone number"
	case "pasttime":
		return CodeOutOfRange, fmt.Sprintf("%s must be from %s to %s after now", fe.Field(), EarliestTime, maxClockSkewText)
	case "nutscountry":
		return CodeRegionCountry, fmt.Sprintf("region %v is not in country %s", v, fe.Param())
	case "nutsknown":
		return CodeInvalidCode, fmt.Sprintf("region %v is not a NUTS 2021 or NUTS 2024 code of %s", v, fe.Param())
	}
	return CodeFormat, fmt.Sprintf("%v is not a valid %s (%s)", v, fe.Field(), fe.Tag())
}

func isLen(fe validator.FieldError) bool {
	switch fe.Kind().String() {
	case "string", "slice", "map", "array":
		return true
	}
	return false
}
