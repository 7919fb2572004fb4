package events

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"

	"github.com/invictus-network/invictus/internal/clip"
)

// CloudEvents context attribute names.
const (
	attrSpecVersion     = "specversion"
	attrID              = "id"
	attrSource          = "source"
	attrType            = "type"
	attrSubject         = "subject"
	attrTime            = "time"
	attrDataSchema      = "dataschema"
	attrDataContentType = "datacontenttype"
)

// contextAttrs lists the context attributes in the order problems are
// reported.
var contextAttrs = []string{attrSpecVersion, attrID, attrSource, attrType, attrSubject, attrTime, attrDataSchema, attrDataContentType}

// Limits of attribute values and problem lists.
const (
	// maxAttrLen bounds every string attribute and extension value, in bytes.
	maxAttrLen = 512
	// MaxProblems is the most problems a *ValidationError lists; it matches
	// the limit of command.rejected's errors.
	MaxProblems = 100
	// maxPointerLen and maxMessageLen match the limits of Problem.
	maxPointerLen = 512
	maxMessageLen = 500
)

// parseTime parses an RFC 3339 date-time strictly.
func parseTime(s string) (time.Time, bool) {
	var t time.Time
	if !isRFC3339(s) || t.UnmarshalText([]byte(s)) != nil {
		return time.Time{}, false
	}
	return t, true
}

// problems collects Problems; add formats the message.
type problems []Problem

func (ps *problems) add(pointer, code, format string, args ...any) {
	*ps = append(*ps, Problem{Pointer: pointer, Code: code, Message: fmt.Sprintf(format, args...)})
}

// classOrder ranks the error classes: a *ValidationError takes the class of
// its most fundamental problem.
var classOrder = []struct {
	code  string
	class error
}{
	{CodeTooLarge, ErrTooLarge},
	{CodeInvalidUTF8, ErrInvalidUTF8},
	{CodeMalformedJSON, ErrMalformedJSON},
	{CodeMissingAttribute, ErrMissingAttribute},
	{CodeUnknownType, ErrUnknownType},
	{CodeContentType, ErrContentType},
	{CodeUnknownField, ErrUnknownField},
	{CodeFreeText, ErrUnknownField},
}

// classOf returns the class of a list of problems.
func classOf(ps problems) error {
	for _, c := range classOrder {
		for _, p := range ps {
			if p.Code == c.code {
				return c.class
			}
		}
	}
	return ErrInvalid
}

// newValidationError returns a *ValidationError of ps, or nil when ps is
// empty. It bounds the list and each pointer and message to what a
// command.rejected payload can carry, and makes them valid UTF-8.
func newValidationError(ps problems) error {
	if len(ps) == 0 {
		return nil
	}
	class := classOf(ps)
	out := make([]Problem, 0, min(len(ps), MaxProblems))
	for _, p := range ps {
		if len(out) == MaxProblems {
			last := &out[len(out)-1]
			last.Message = clip.Mark(last.Message, maxMessageLen-40, "…") + fmt.Sprintf(" (and %d more problems)", len(ps)-MaxProblems)
			break
		}
		p.Pointer = clip.Mark(strings.ToValidUTF8(p.Pointer, "\uFFFD"), maxPointerLen, "…")
		p.Message = clip.Mark(strings.ToValidUTF8(p.Message, "\uFFFD"), maxMessageLen, "…")
		out = append(out, p)
	}
	return &ValidationError{Class: class, Problems: out}
}

// quote returns v quoted for a problem message, shortened to a readable length.
func quote(v string) string { return clip.Mark(fmt.Sprintf("%q", v), 80, "…") }

// prefixed returns ps with prefix prepended to every pointer (batch members).
func prefixed(ps problems, prefix string) problems {
	for i := range ps {
		ps[i].Pointer = prefix + ps[i].Pointer
	}
	return ps
}

// rawEvent is an event as read from a message, before any check: the
// attributes by name, and the data.
type rawEvent struct {
	// attrs holds the string-valued context attributes and extensions.
	attrs map[string]string
	// others holds extension values of other types (structured mode:
	// booleans and integers).
	others map[string]any
	// reported marks attributes whose problem is already reported, so that
	// they are not also reported as missing.
	reported map[string]bool
	data     []byte
	hasData  bool
	// probs holds the problems found while reading the message.
	probs problems
}

func newRawEvent() *rawEvent {
	return &rawEvent{attrs: map[string]string{}, others: map[string]any{}, reported: map[string]bool{}}
}

// bad records a problem with attribute name.
func (r *rawEvent) bad(name, code, format string, args ...any) {
	r.reported[name] = true
	r.probs.add("/"+escapePointer(name), code, format, args...)
}

// DecodeEvent checks an event that is already parsed (for example by
// sdk-go's HTTP binding) against the contract and decodes its payload, as
// Decode does. It returns a *ValidationError listing every problem.
func DecodeEvent(e event.Event) (*Envelope, error) {
	if len(e.DataEncoded) > MaxMessageSize {
		return nil, newValidationError(problems{{Pointer: "/data", Code: CodeTooLarge,
			Message: fmt.Sprintf("data is %d bytes; the limit is %d", len(e.DataEncoded), MaxMessageSize)}})
	}
	r := newRawEvent()
	if e.Context != nil {
		set := func(name, v string) {
			if v != "" {
				r.attrs[name] = v
			}
		}
		set(attrSpecVersion, e.SpecVersion())
		set(attrID, e.ID())
		set(attrSource, e.Source())
		set(attrType, e.Type())
		set(attrSubject, e.Subject())
		if t := e.Time(); !t.IsZero() {
			r.attrs[attrTime] = types.FormatTime(t)
		}
		set(attrDataSchema, e.DataSchema())
		set(attrDataContentType, e.DataContentType())
		for name, v := range e.Extensions() {
			switch v := v.(type) {
			case string:
				r.attrs[name] = v
			case bool, int32:
				r.others[name] = v
			default:
				s, err := types.Format(v)
				if err != nil {
					r.bad(name, CodeInvalidAttribute, "extension %s has an unsupported value type %T", name, v)
					continue
				}
				r.attrs[name] = s
			}
		}
	}
	names := make([]string, 0, len(e.FieldErrors))
	for name := range e.FieldErrors {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		r.bad(name, CodeInvalidAttribute, "%s: %v", name, e.FieldErrors[name])
	}
	r.data, r.hasData = e.DataEncoded, len(e.DataEncoded) > 0
	return r.decode()
}

// decode checks the attributes and the data and returns the envelope, or
// a *ValidationError listing every problem found.
func (r *rawEvent) decode() (*Envelope, error) {
	ps := r.checkAttributes()
	typ := r.attrs[attrType]
	_, knownType := registry[typ]
	var payload Payload
	switch {
	case r.reported["data"] || r.reported["data_base64"]:
	case !r.hasData || len(r.data) == 0:
		ps.add("/data", CodeMissingAttribute, "the event has no data; every event of the catalogue carries a JSON payload")
	case knownType && !r.reported[attrDataContentType] && r.attrs[attrDataContentType] != "":
		var pps problems
		payload, r.data, pps = decodePayload(typ, r.data)
		ps = append(ps, pps...)
		if req, ok := payload.(*Requested); ok && !r.reported[attrTime] {
			if at, ok := parseTime(r.attrs[attrTime]); ok {
				ps = append(ps, checkConsentTime(req.Consent.GivenAt, at)...)
			}
		}
	}
	if len(ps) > 0 {
		return nil, newValidationError(ps)
	}
	return &Envelope{Event: r.build(), Payload: payload}, nil
}

// checkConsentTime returns the problem of a consent given at given for a
// referral requested at at: after the request (beyond MaxClockSkew), or
// more than MaxConsentAge before it.
func checkConsentTime(given, at time.Time) problems {
	var ps problems
	switch {
	case given.IsZero():
	case given.After(at.Add(MaxClockSkew)):
		ps.add("/data/consent/given_at", CodeOutOfRange, "consent is recorded as given after the referral was requested (more than %s after the event's time)", maxClockSkewText)
	case given.Before(at.Add(-MaxConsentAge)):
		ps.add("/data/consent/given_at", CodeOutOfRange, "consent was given more than %s before the referral was requested; record it again", maxConsentAgeText)
	}
	return ps
}

// checkAttributes returns the problems of the attributes, with those found
// while reading the message first.
func (r *rawEvent) checkAttributes() problems {
	// Generic rules of every string value: UTF-8, no control characters,
	// no surrounding white space (sdk-go trims it), a bounded length.
	names := make([]string, 0, len(r.attrs))
	for name := range r.attrs {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if r.reported[name] {
			delete(r.attrs, name)
			continue
		}
		v := r.attrs[name]
		switch {
		case v == "" && (slices.Contains(contextAttrs, name) || IsExtension(name)):
			// An empty attribute is absent (sdk-go drops it too).
		case !utf8.ValidString(v):
			r.bad(name, CodeInvalidUTF8, "%s is not valid UTF-8", name)
		case len(v) > maxAttrLen:
			r.bad(name, CodeTooLong, "%s is %d bytes long; the limit is %d", name, len(v), maxAttrLen)
		case hasControl(v):
			r.bad(name, CodeInvalidAttribute, "%s contains control characters", name)
		case strings.TrimSpace(v) != v:
			r.bad(name, CodeInvalidAttribute, "%s has leading or trailing white space", name)
		default:
			continue
		}
		delete(r.attrs, name)
	}

	get := func(name string) (string, bool) {
		v, ok := r.attrs[name]
		if !ok && !r.reported[name] {
			r.bad(name, CodeMissingAttribute, "the %s attribute is required", name)
		}
		return v, ok
	}
	invalid := func(name, format string, args ...any) { r.bad(name, CodeInvalidAttribute, format, args...) }

	if v, ok := get(attrSpecVersion); ok && v != event.CloudEventsVersionV1 {
		invalid(attrSpecVersion, "specversion is %s; only %s is supported", quote(v), event.CloudEventsVersionV1)
	}
	if v, ok := get(attrID); ok && !IsEventID(v) {
		invalid(attrID, "id %s is not a valid event id: 1 to %d ASCII letters, digits, '.', '_', ':' or '-', starting with a letter or digit", quote(v), MaxIDLength)
	}
	if v, ok := get(attrSource); ok && !IsSource(v) {
		invalid(attrSource, "source %s is neither /orgs/<organisation id> nor /invictus/<name>", quote(v))
	}
	typ, hasType := get(attrType)
	_, knownType := registry[typ]
	if hasType && !knownType {
		r.bad(attrType, CodeUnknownType, "type %s is not in the event catalogue", quote(typ))
	}
	if subj, ok := r.attrs[attrSubject]; ok {
		if knownType && !subjectFits(typ, subj) {
			invalid(attrSubject, "subject %s is not %s", quote(subj), subjectRule(typ))
		}
	} else if knownType && typ != TypeCommandRejected && !r.reported[attrSubject] {
		r.bad(attrSubject, CodeMissingAttribute, "the subject attribute is required: %s", subjectRule(typ))
	}
	if v, ok := get(attrTime); ok {
		if t, ok := parseTime(v); !ok {
			invalid(attrTime, "time %s is not an RFC 3339 timestamp", quote(v))
		} else if t.IsZero() {
			invalid(attrTime, "time must not be the zero time")
		} else if why := plausibleTime(t, time.Now()); why != "" {
			r.bad(attrTime, CodeOutOfRange, "time %s %s", quote(v), why)
		}
	}
	if v, ok := get(attrDataSchema); ok && knownType && !schemaFits(typ, v) {
		invalid(attrDataSchema, "dataschema %s does not match type %s; want %s", quote(v), typ, SchemaURI(typ))
	}
	if v, ok := get(attrDataContentType); ok {
		if msg := checkContentType(v); msg != "" {
			r.bad(attrDataContentType, CodeContentType, "%s", msg)
		}
	}

	// Extensions.
	for _, name := range sortedKeys(r.attrs, r.others) {
		if slices.Contains(contextAttrs, name) || r.reported[name] {
			continue
		}
		if !isExtName(name) || name == "data" {
			invalid(name, "%s is not a valid extension attribute name (1 to 20 lower-case letters or digits)", quote(name))
			continue
		}
		v, isString := r.attrs[name]
		switch name {
		case ExtCorrelationID:
			if !isString {
				invalid(name, "correlationid must be a string")
			} else if !IsEventID(v) {
				invalid(name, "correlationid %s is not a valid event id (%s)", quote(v), EventIDPattern)
			}
		case ExtTraceParent:
			if !isString {
				invalid(name, "traceparent must be a string")
			} else if !IsTraceParent(v) {
				invalid(name, "traceparent %s is not a W3C trace context (00-<32 hex>-<16 hex>-<2 hex>)", quote(v))
			}
		case ExtTraceState:
			if !isString {
				invalid(name, "tracestate must be a string")
			} else if !IsTraceState(v) {
				// Not quoted: a value that is not a trace state may be anything.
				invalid(name, "tracestate is not a W3C trace state (up to 32 comma-separated key=value members)")
			}
		default:
			// The value is never quoted: an extension is where identity
			// would ride along.
			r.bad(name, CodeUnknownExtension, "extension attribute %s is not allowed: the contract accepts only %s; anything else belongs in the payload's codes or in a sealed envelope", name, strings.Join(extensions, ", "))
		}
	}
	return r.probs
}

func sortedKeys(a map[string]string, b map[string]any) []string {
	out := make([]string, 0, len(a)+len(b))
	for k := range a {
		out = append(out, k)
	}
	for k := range b {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// hasControl reports whether s holds a character that CloudEvents forbids
// in attribute values: U+0000-U+001F and U+007F-U+009F.
func hasControl(s string) bool {
	for _, c := range s {
		if c < 0x20 || (c >= 0x7f && c <= 0x9f) {
			return true
		}
	}
	return false
}

// IsSource reports whether s is a valid event source: /orgs/<organisation
// id> for organisations, /invictus/<name> for the network's own services
// (SourceRouting, SourceDirectory).
func IsSource(s string) bool {
	_, ok := OrgOfSource(s)
	return ok || isInvictusSource(s)
}

// IsTraceParent reports whether s is a valid W3C trace context traceparent.
func IsTraceParent(s string) bool {
	return isTraceParentSyntax(s) && s[:2] != "ff" &&
		s[3:35] != strings.Repeat("0", 32) && s[36:52] != strings.Repeat("0", 16)
}

// reTraceStateMember is one list member of a W3C trace state: a simple or
// multi-tenant key, "=", and a value of printable ASCII other than "," and
// "=" that does not end with a space.
var reTraceStateMember = regexp.MustCompile(`^(?:[a-z][a-z0-9_*/-]{0,255}|[a-z0-9][a-z0-9_*/-]{0,240}@[a-z][a-z0-9_*/-]{0,13})=[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]$`)

// IsTraceState reports whether s is a valid W3C trace context tracestate:
// at most 32 comma-separated key=value members (empty members and
// spaces or tabs around them allowed).
func IsTraceState(s string) bool {
	members := strings.Split(s, ",")
	if len(members) > 32 {
		return false
	}
	n := 0
	for _, m := range members {
		m = strings.Trim(m, " \t")
		if m == "" {
			continue
		}
		if !reTraceStateMember.MatchString(m) {
			return false
		}
		n++
	}
	return n > 0
}

// subjectFits reports whether subj is a valid subject for type typ.
func subjectFits(typ, subj string) bool {
	switch typ {
	case TypeDirectoryOrgUpdated:
		return IsOrgID(subj)
	case TypeDirectoryServiceUpdated, TypeDirectoryServiceContent, TypeDirectoryCapacityUpdated:
		return IsServiceID(subj)
	case TypeCommandRejected:
		return IsReferralID(subj) || IsOrgID(subj) || IsServiceID(subj)
	}
	return IsReferralID(subj)
}

// subjectRule describes the subject that type typ needs.
func subjectRule(typ string) string {
	switch typ {
	case TypeDirectoryOrgUpdated:
		return "the organisation id"
	case TypeDirectoryServiceUpdated, TypeDirectoryServiceContent, TypeDirectoryCapacityUpdated:
		return "the service id"
	case TypeCommandRejected:
		return "the rejected command's referral, organisation or service id"
	}
	return "the referral id (a canonical lower-case UUID)"
}

// schemaFits reports whether dataschema names the schema of typ: its URN
// SchemaURI(typ), or, as clients before the URN sent it, the path
// SchemaPath(typ) or an absolute http(s) URL with that path.
func schemaFits(typ, dataschema string) bool {
	if dataschema == SchemaURI(typ) {
		return true
	}
	want := SchemaPath(typ)
	if dataschema == want {
		return true
	}
	u, err := url.Parse(dataschema)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" &&
		u.User == nil && u.Path == want && u.RawPath == "" && u.RawQuery == "" && u.Fragment == "" && !u.ForceQuery
}

// checkContentType returns why ct is not an accepted datacontenttype, or "".
func checkContentType(ct string) string {
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return fmt.Sprintf("datacontenttype %s is not a media type: %v", quote(ct), err)
	}
	if mt != ContentTypeJSON {
		return fmt.Sprintf("datacontenttype %s is not supported; data must be %s", quote(ct), ContentTypeJSON)
	}
	for k, v := range params {
		if k != "charset" || !strings.EqualFold(v, "utf-8") {
			return fmt.Sprintf("datacontenttype %s has an unsupported parameter; only charset=utf-8 is allowed", quote(ct))
		}
	}
	return ""
}

// build returns the sdk-go event of checked attributes.
func (r *rawEvent) build() event.Event {
	e := event.New(event.CloudEventsVersionV1)
	e.SetID(r.attrs[attrID])
	e.SetSource(r.attrs[attrSource])
	e.SetType(r.attrs[attrType])
	if s, ok := r.attrs[attrSubject]; ok {
		e.SetSubject(s)
	}
	t, _ := parseTime(r.attrs[attrTime]) // checked
	e.SetTime(t)
	ds := r.attrs[attrDataSchema]
	if _, known := registry[r.attrs[attrType]]; known {
		// Checked by schemaFits: the older path and URL forms become the
		// URN, so that what the network stores and delivers is an absolute
		// URI whatever the sender wrote.
		ds = SchemaURI(r.attrs[attrType])
	}
	e.SetDataSchema(ds)
	e.SetDataContentType(r.attrs[attrDataContentType])
	for _, name := range sortedKeys(r.attrs, r.others) {
		if slices.Contains(contextAttrs, name) {
			continue
		}
		if v, ok := r.attrs[name]; ok {
			e.SetExtension(name, v)
		} else {
			e.SetExtension(name, r.others[name])
		}
	}
	e.DataEncoded = bytes.Clone(r.data)
	e.DataBase64 = false
	return e
}

// invalidUTF8At returns the offset of the first byte of b that is not part
// of a valid UTF-8 sequence, or -1.
func invalidUTF8At(b []byte) int {
	if utf8.Valid(b) {
		return -1
	}
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return -1
}

// syntaxError returns the offset (0-based) of the byte at which the first
// JSON syntax error in b was detected, including data after the value, and
// its description; or ok.
func syntaxError(b []byte) (offset int64, msg string, ok bool) {
	if json.Valid(b) {
		return 0, "", true
	}
	var v struct{}
	err := json.Unmarshal(b, &v) // checks the whole input before decoding
	var se *json.SyntaxError
	if errors.As(err, &se) {
		// encoding/json counts the bytes read, including the offending one.
		return max(se.Offset-1, 0), se.Error(), false
	}
	return int64(len(b)), "unexpected end of JSON input", false
}

// decodePayload decodes data as the payload of typ. Problems have pointers
// under /data: invalid UTF-8, malformed JSON (with the byte offset), every
// unknown or repeated member, every value of the wrong JSON type, and every
// rule ValidatePayload checks.
func decodePayload(typ string, data []byte) (Payload, []byte, problems) {
	var ps problems
	if i := invalidUTF8At(data); i >= 0 {
		ps.add("/data", CodeInvalidUTF8, "data is not valid UTF-8: invalid byte at offset %d", i)
		return nil, data, ps
	}
	if off, msg, ok := syntaxError(data); !ok {
		ps.add("/data", CodeMalformedJSON, "data is not well-formed JSON: %s (at byte offset %d)", msg, off)
		return nil, data, ps
	}
	if hasLoneSurrogate(data) {
		ps.add("/data", CodeInvalidUTF8, "data holds a lone UTF-16 surrogate escape, which cannot be decoded without changing the value")
		return nil, data, ps
	}
	p, _ := NewPayload(typ)
	w := walker{b: data}
	w.value(reflect.TypeOf(p), "/data")
	ps = append(ps, w.probs...)
	if w.wrongType {
		return nil, data, ps // decoding would fail or leave zero values behind
	}
	if err := json.Unmarshal(data, p); err != nil {
		ps.add("/data", CodeFormat, "data does not decode as %s: %v", typ, err)
		return nil, data, ps
	}
	if roundCoordinates(p) {
		// The data carries what the payload now holds: nothing downstream
		// sees the finer coordinates the sender gave.
		if b, err := json.Marshal(p); err == nil {
			data = b
		}
	}
	var ve *ValidationError
	if err := ValidatePayload(p); errors.As(err, &ve) {
		ps = append(ps, ve.Problems...)
	} else if err != nil {
		ps.add("/data", CodeFormat, "%v", err)
	}
	return p, data, ps
}

// DecodePayload decodes data, a JSON payload of eventType on its own (a
// needs profile in a file, say), with every check Decode applies to the
// data of an event: it returns the payload, or a *ValidationError listing
// every problem found, with pointers into data ("/needs/1") rather than
// into an event ("/data/needs/1"). Coordinates are rounded as Decode
// rounds them.
func DecodePayload(eventType string, data []byte) (Payload, error) {
	if _, ok := registry[eventType]; !ok {
		return nil, newValidationError(problems{{Pointer: "", Code: CodeUnknownType, Message: fmt.Sprintf("%s is not a type of the contract", quote(eventType))}})
	}
	if len(data) > MaxMessageSize {
		return nil, newValidationError(problems{{Pointer: "", Code: CodeTooLarge, Message: fmt.Sprintf("the payload is larger than %d bytes", MaxMessageSize)}})
	}
	p, _, ps := decodePayload(eventType, data)
	if len(ps) > 0 {
		for i := range ps {
			if ps[i].Pointer == "/data" {
				ps[i].Pointer = ""
			} else {
				ps[i].Pointer = strings.TrimPrefix(ps[i].Pointer, "/data/")
				ps[i].Pointer = "/" + ps[i].Pointer
			}
		}
		return nil, newValidationError(ps)
	}
	return p, nil
}

var timeType = reflect.TypeFor[time.Time]()

// walker checks a JSON value against the Go type it decodes into,
// reporting what encoding/json would silently accept or reject without a
// pointer: unknown members (encoding/json also matches names
// case-insensitively), repeated members, wrong JSON types, numbers that do
// not fit and timestamps that do not parse. It reads b, which must be
// well-formed JSON (syntaxError said so), without allocating for what it
// skips; json.Decoder.Token would cost more than the rest of Decode.
type walker struct {
	b         []byte
	i         int
	probs     problems
	wrongType bool
}

func (w *walker) mismatch(ptr, want string) {
	w.wrongType = true
	w.probs.add(ptr, CodeFormat, "must be %s", want)
}

// ws skips white space.
func (w *walker) ws() {
	for w.i < len(w.b) {
		switch w.b[w.i] {
		case ' ', '\t', '\n', '\r':
			w.i++
		default:
			return
		}
	}
}

// next skips white space and returns the next byte without consuming it.
func (w *walker) next() byte {
	w.ws()
	return w.b[w.i]
}

// str reads a string token and returns its value.
func (w *walker) str() string {
	start := w.i
	escaped := false
	j := start + 1
	for w.b[j] != '"' {
		if w.b[j] == '\\' {
			escaped = true
			j++
		}
		j++
	}
	w.i = j + 1
	if !escaped {
		return string(w.b[start+1 : j])
	}
	var v string
	_ = json.Unmarshal(w.b[start:w.i], &v) // well-formed
	return v
}

// literal reads a number, true, false or null.
func (w *walker) literal() string {
	start := w.i
	for w.i < len(w.b) {
		switch w.b[w.i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return string(w.b[start:w.i])
		}
		w.i++
	}
	return string(w.b[start:w.i])
}

// skip skips the next value.
func (w *walker) skip() {
	switch w.next() {
	case '"':
		w.str()
	case '{', '[':
		w.i++
		for depth := 1; depth > 0; {
			switch w.next() {
			case '"':
				w.str()
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
			}
			w.i++
		}
	default:
		w.literal()
	}
}

func (w *walker) value(t reflect.Type, ptr string) {
	c := w.next()
	for t.Kind() == reflect.Pointer {
		if c == 'n' {
			w.literal()
			return
		}
		t = t.Elem()
	}
	switch c {
	case '{':
		if (t.Kind() == reflect.Struct && t != timeType) || (t.Kind() == reflect.Map && t.Key().Kind() == reflect.String) {
			w.object(t, ptr)
			return
		}
		w.mismatch(ptr, describeKind(t))
		w.skip()
	case '[':
		if t.Kind() != reflect.Slice {
			w.mismatch(ptr, describeKind(t))
			w.skip()
			return
		}
		w.i++
		if w.next() == ']' {
			w.i++
			return
		}
		for i := 0; ; i++ {
			w.value(t.Elem(), ptr+"/"+strconv.Itoa(i))
			if w.next() == ']' {
				w.i++
				return
			}
			w.i++ // ,
		}
	case '"':
		v := w.str()
		switch {
		case t == timeType:
			if _, ok := parseTime(v); !ok {
				w.wrongType = true
				w.probs.add(ptr, CodeFormat, "%s is not an RFC 3339 timestamp", quote(v))
			}
		case t.Kind() != reflect.String:
			w.mismatch(ptr, describeKind(t))
		}
	case 't', 'f':
		w.literal()
		if t.Kind() != reflect.Bool {
			w.mismatch(ptr, describeKind(t))
		}
	case 'n':
		w.literal()
		switch t.Kind() {
		case reflect.Slice, reflect.Map, reflect.Interface:
		default:
			w.mismatch(ptr, describeKind(t)+", not null")
		}
	default:
		w.number(w.literal(), t, ptr)
	}
}

// object walks the members of a JSON object decoded into struct or map t.
func (w *walker) object(t reflect.Type, ptr string) {
	var fields map[string]reflect.Type
	if t.Kind() == reflect.Struct {
		fields = jsonFields(t)
	}
	w.i++ // {
	if w.next() == '}' {
		w.i++
		return
	}
	seen := map[string]bool{}
	for {
		w.next()
		key := w.str()
		w.next()
		w.i++ // :
		kp := ptr + "/" + escapePointer(key)
		if seen[key] {
			w.probs.add(kp, CodeDuplicate, "member %s appears more than once", quote(key))
		}
		seen[key] = true
		var ft reflect.Type
		if fields == nil {
			ft = t.Elem() // a map
		} else if ft = fields[key]; ft == nil {
			if freeTextMembers[key] {
				w.probs.add(kp, CodeFreeText, "%s: free text is not allowed in routing payloads, which must identify nobody; use the coded reason, and put anything else in the sealed handover envelope", quote(key))
			} else {
				w.probs.add(kp, CodeUnknownField, "%s is not a field of this payload", quote(key))
			}
			w.skip()
		}
		if ft != nil {
			w.value(ft, kp)
		}
		if w.next() == '}' {
			w.i++
			return
		}
		w.i++ // ,
	}
}

// number checks that the JSON number s fits kind t.
func (w *walker) number(s string, t reflect.Type, ptr string) {
	var err error
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		_, err = strconv.ParseInt(s, 10, t.Bits())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		_, err = strconv.ParseUint(s, 10, t.Bits())
	case reflect.Float32, reflect.Float64:
		_, err = strconv.ParseFloat(s, t.Bits())
	default:
		w.mismatch(ptr, describeKind(t))
		return
	}
	var ne *strconv.NumError
	switch {
	case err == nil:
	case errors.As(err, &ne) && errors.Is(ne.Err, strconv.ErrRange):
		w.wrongType = true
		w.probs.add(ptr, CodeOutOfRange, "%s is out of range", clip.Mark(s, 40, "…"))
	default:
		w.mismatch(ptr, describeKind(t))
	}
}

func describeKind(t reflect.Type) string {
	switch {
	case t == timeType:
		return "an RFC 3339 timestamp string"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	}
	return "a " + t.Kind().String()
}

// freeTextMembers are member names that hold free text in other
// systems' payloads (and in referral.declined before v1 was closed to
// text); they get CodeFreeText rather than CodeUnknownField.
var freeTextMembers = map[string]bool{
	"text": true, "note": true, "notes": true, "comment": true, "comments": true,
	"description": true, "details": true, "explanation": true, "message": true, "remarks": true,
}

// fieldCache maps a struct type to its JSON member names and types.
var fieldCache sync.Map // reflect.Type -> map[string]reflect.Type

// jsonFields returns the JSON members of struct t as encoding/json sees
// them: named by the json tag or the field name, with the fields of
// untagged embedded structs inlined (shallower fields win).
func jsonFields(t reflect.Type) map[string]reflect.Type {
	if f, ok := fieldCache.Load(t); ok {
		return f.(map[string]reflect.Type)
	}
	out := map[string]reflect.Type{}
	var collect func(t reflect.Type, depth int, depthOf map[string]int)
	collect = func(t reflect.Type, depth int, depthOf map[string]int) {
		for i := range t.NumField() {
			f := t.Field(i)
			tag := f.Tag.Get("json")
			name, _, _ := strings.Cut(tag, ",")
			if name == "-" && !strings.HasPrefix(tag, "-,") {
				continue
			}
			ft := f.Type
			if f.Anonymous && name == "" {
				et := ft
				if et.Kind() == reflect.Pointer {
					et = et.Elem()
				}
				if et.Kind() == reflect.Struct {
					collect(et, depth+1, depthOf)
					continue
				}
			}
			if !f.IsExported() {
				continue
			}
			if name == "" {
				name = f.Name
			}
			if d, ok := depthOf[name]; ok && d <= depth {
				continue
			}
			depthOf[name] = depth
			out[name] = ft
		}
	}
	collect(t, 0, map[string]int{})
	fieldCache.Store(t, out)
	return out
}

// parseStructured reads an event in the CloudEvents JSON format. It
// returns the problems that stop reading (not UTF-8, not JSON, not an
// object) as fatal; the others are kept in the rawEvent.
func parseStructured(b []byte) (*rawEvent, problems) {
	var fatal problems
	if i := invalidUTF8At(b); i >= 0 {
		fatal.add("", CodeInvalidUTF8, "the event is not valid UTF-8: invalid byte at offset %d", i)
		return nil, fatal
	}
	if off, msg, ok := syntaxError(b); !ok {
		fatal.add("", CodeMalformedJSON, "the event is not well-formed JSON: %s (at byte offset %d)", msg, off)
		return nil, fatal
	}
	return readStructured(b)
}

// readStructured reads a syntactically valid JSON-format event.
func readStructured(b []byte) (*rawEvent, problems) {
	var fatal problems
	w := walker{b: b}
	if w.next() != '{' {
		fatal.add("", CodeFormat, "a structured event must be a JSON object")
		return nil, fatal
	}
	w.i++
	r := newRawEvent()
	seen := map[string]bool{}
	var data, dataB64 json.RawMessage
	for w.next() != '}' {
		key := w.str()
		w.next()
		w.i++ // :
		w.next()
		start := w.i
		w.skip()
		raw := json.RawMessage(w.b[start:w.i])
		if w.next() == ',' {
			w.i++
		}
		if seen[key] {
			r.bad(key, CodeDuplicate, "member %s appears more than once", quote(key))
			continue
		}
		seen[key] = true
		switch {
		case string(raw) == "null":
			// A null attribute is absent.
		case key == "data":
			data = raw
		case key == "data_base64":
			dataB64 = raw
		default:
			r.member(key, raw)
		}
	}
	switch {
	case data != nil && dataB64 != nil:
		r.bad("data_base64", CodeInvalidAttribute, "data and data_base64 are mutually exclusive")
	case data != nil:
		r.data, r.hasData = data, true
	case dataB64 != nil:
		var s string
		if json.Unmarshal(dataB64, &s) != nil {
			r.bad("data_base64", CodeInvalidAttribute, "data_base64 must be a base64 string")
			break
		}
		d, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			r.bad("data_base64", CodeInvalidAttribute, "data_base64 is not standard base64: %v", err)
			break
		}
		r.data, r.hasData = d, true
	}
	return r, nil
}

// member reads one attribute or extension of a JSON-format event.
func (r *rawEvent) member(key string, raw json.RawMessage) {
	if raw[0] == '"' {
		if hasLoneSurrogate(raw) {
			r.bad(key, CodeInvalidUTF8, "%s holds a lone UTF-16 surrogate escape, which cannot be decoded without changing the value", key)
			return
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			r.bad(key, CodeInvalidAttribute, "%s is not a valid JSON string", key)
			return
		}
		r.attrs[key] = s
		return
	}
	if slices.Contains(contextAttrs, key) {
		r.bad(key, CodeInvalidAttribute, "%s must be a JSON string", key)
		return
	}
	switch string(raw) {
	case "true", "false":
		r.others[key] = string(raw) == "true"
		return
	}
	if n, err := strconv.ParseInt(string(raw), 10, 32); err == nil {
		r.others[key] = int32(n)
		return
	}
	r.bad(key, CodeInvalidAttribute, "extension %s must be a string, a boolean or a 32-bit integer", quote(key))
}

// hasLoneSurrogate reports whether the well-formed JSON b holds a \u
// escape of a UTF-16 surrogate that is not part of a pair: encoding/json
// would silently decode it as U+FFFD. Backslashes occur only inside
// strings in well-formed JSON, so every escape is found by a plain scan.
func hasLoneSurrogate(b []byte) bool {
	if !bytes.Contains(b, []byte(`\u`)) {
		return false
	}
	unit := func(i int) (rune, bool) { // the \uXXXX escape at b[i:]
		if i+6 > len(b) || b[i] != '\\' || b[i+1] != 'u' {
			return 0, false
		}
		v, err := strconv.ParseUint(string(b[i+2:i+6]), 16, 16)
		return rune(v), err == nil
	}
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' {
			continue
		}
		if i+1 < len(b) && b[i+1] != 'u' {
			i++ // a one-character escape, such as \\
			continue
		}
		c, ok := unit(i)
		if !ok {
			continue
		}
		switch {
		case c >= 0xDC00 && c <= 0xDFFF:
			return true // a low surrogate without its high one
		case c >= 0xD800 && c <= 0xDBFF:
			lo, ok := unit(i + 6)
			if !ok || lo < 0xDC00 || lo > 0xDFFF {
				return true
			}
			i += 11
		default:
			i += 5
		}
	}
	return false
}
