package events

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
)

// Message is a transport-neutral NATS message: subject, headers and data.
// Header has the same underlying type as nats.Header, so the two convert to
// each other without copying; this package does not import nats.go.
type Message struct {
	Subject string
	Header  map[string][]string
	Data    []byte
}

// Envelope is a decoded, validated event: the CloudEvents event as received
// (its data is the payload's JSON) and the typed payload.
type Envelope struct {
	// Event holds the context attributes, the extensions and the data.
	Event event.Event
	// Payload is a pointer to the payload struct of Event's type, e.g.
	// *Requested for TypeReferralRequested. It has passed ValidatePayload.
	Payload Payload
}

// MaxMessageSize is the largest event the codec accepts, in bytes: the data
// plus the CloudEvents headers (ce-* and Content-Type, counted as NATS
// writes them on the wire) in binary mode, or the whole structured JSON
// event. It is checked before anything is parsed.
//
// 512 KiB is half of NATS's default max_payload (1 MiB, which also counts
// headers), leaving room for the JetStream headers added in flight; it holds
// the largest payload of the catalogue, a referral.handover with a 256 KiB
// sealed envelope, with room to spare. Over HTTP the same limit applies to
// each event; a batch may hold up to MaxBatchEvents events in MaxBatchSize
// bytes.
const MaxMessageSize = 512 * 1024

// Extension attributes of the contract.
const (
	// ExtCorrelationID carries the id of the command an event answers; it
	// is an event id (see EventIDPattern).
	ExtCorrelationID = "correlationid"
	// ExtTraceParent carries the W3C trace context of the event.
	ExtTraceParent = "traceparent"
	// ExtTraceState carries the W3C trace state that goes with
	// traceparent.
	ExtTraceState = "tracestate"
)

// extensions is the allow-list of CloudEvents extension attributes (see
// IsExtension).
var extensions = []string{ExtCorrelationID, ExtTraceParent, ExtTraceState}

// IsExtension reports whether name is an extension attribute of the
// contract: correlationid, traceparent or tracestate. Decode refuses an
// event with any other extension (CodeUnknownExtension), so that nothing
// outside the payload's codes travels with a referral.
func IsExtension(name string) bool { return slices.Contains(extensions, name) }

// IsAttribute reports whether name is a context attribute (specversion,
// id, source, type, subject, time, dataschema, datacontenttype) or an
// extension of the contract (see IsExtension).
func IsAttribute(name string) bool { return slices.Contains(contextAttrs, name) || IsExtension(name) }

// MsgID returns the JetStream Nats-Msg-Id of the event with this source and
// id: both together, "<source>/<id>", since an id is unique per source
// only. MsgID("/orgs/pt.apav", "0195…") is "/orgs/pt.apav/0195…". Every
// publisher of an event to a stream uses it, so that one organisation's id
// never shadows another's.
func MsgID(source, id string) string { return source + "/" + id }

// sourceOrgPrefix starts the source of every organisation's events.
const sourceOrgPrefix = "/orgs/"

// SourceOf returns the CloudEvents source of an organisation's events:
// SourceOf("pt.apav") is "/orgs/pt.apav". It does not check org; New and
// Decode reject a source whose organisation id is not valid.
func SourceOf(org string) string { return sourceOrgPrefix + org }

// OrgOfSource returns the organisation id of a source built by SourceOf,
// and false when source is not "/orgs/<valid organisation id>" (for example
// the routing service's SourceRouting).
func OrgOfSource(source string) (string, bool) {
	org, ok := strings.CutPrefix(source, sourceOrgPrefix)
	if !ok || !IsOrgID(org) {
		return "", false
	}
	return org, true
}

// SchemaURI returns the dataschema of eventType's events: the URN that is
// also the "$id" of its payload's JSON Schema.
// SchemaURI("invictus.referral.requested.v1") is
// "urn:invictus:schema:referral.requested.v1".
func SchemaURI(eventType string) string {
	return SchemaURNPrefix + strings.TrimPrefix(eventType, "invictus.")
}

// SchemaPath returns the URL path under which the HTTP API serves the JSON
// Schema of eventType's payload: SchemaPath("invictus.referral.requested.v1")
// is "/schemas/referral.requested.v1.json". Events carried it as their
// dataschema before SchemaURI; Decode still accepts it.
func SchemaPath(eventType string) string {
	return SchemaPathPrefix + strings.TrimPrefix(eventType, "invictus.") + ".json"
}

// NewReferralID returns a new referral id: a UUIDv7 in canonical lower-case
// form, ordered by creation time.
func NewReferralID() string { return uuid.Must(uuid.NewV7()).String() }

// Option sets an optional attribute of an event built by New.
type Option func(*options)

type options struct {
	id            string
	time          time.Time
	correlationID string
	traceParent   string
	traceState    string
}

// WithID sets the event id instead of a new UUIDv7 (for tests, examples,
// and re-emitting a stored event).
func WithID(id string) Option { return func(o *options) { o.id = id } }

// WithTime sets the event time instead of the current time; it is stored
// in UTC.
func WithTime(t time.Time) Option { return func(o *options) { o.time = t } }

// WithCorrelationID sets the correlationid extension: the id of the
// command the event answers.
func WithCorrelationID(id string) Option { return func(o *options) { o.correlationID = id } }

// WithTraceParent sets the traceparent extension, a W3C trace context
// header value ("00-<trace id>-<parent id>-<flags>").
func WithTraceParent(tp string) Option { return func(o *options) { o.traceParent = tp } }

// WithTraceState sets the tracestate extension, the W3C trace state that
// goes with traceparent (see IsTraceState).
func WithTraceState(ts string) Option { return func(o *options) { o.traceState = ts } }

// New builds the event of payload p: id (a new UUIDv7 unless WithID),
// source, type (p.EventType()), subject, time (now in UTC unless WithTime),
// dataschema (SchemaURI of the type), datacontenttype application/json
// and data (p as JSON).
//
// New applies every rule Decode applies, so what it returns decodes: source
// must be SourceOf a valid organisation or an /invictus/... source, subject
// must suit the type (see the package documentation), and p must pass
// ValidatePayload. Any problem is returned as a *ValidationError listing
// all of them.
func New(source, subject string, p Payload, opts ...Option) (event.Event, error) {
	if p == nil || isNilPointer(p) {
		return event.Event{}, newValidationError(problems{{Pointer: "/data", Code: CodeMissingAttribute, Message: "the payload is required"}})
	}
	o := options{time: time.Now()}
	for _, opt := range opts {
		opt(&o)
	}
	if o.id == "" {
		id, err := uuid.NewV7()
		if err != nil {
			return event.Event{}, fmt.Errorf("events: new event id: %w", err)
		}
		o.id = id.String()
	}
	data, err := json.Marshal(p)
	if err != nil {
		return event.Event{}, newValidationError(problems{{Pointer: "/data", Code: CodeFormat, Message: "the payload cannot be encoded as JSON: " + err.Error()}})
	}
	typ := p.EventType()
	r := newRawEvent()
	r.attrs[attrSpecVersion] = event.CloudEventsVersionV1
	r.attrs[attrID] = o.id
	if source != "" {
		r.attrs[attrSource] = source
	}
	r.attrs[attrType] = typ
	if subject != "" {
		r.attrs[attrSubject] = subject
	}
	if !o.time.IsZero() {
		r.attrs[attrTime] = o.time.UTC().Format(time.RFC3339Nano)
	}
	r.attrs[attrDataSchema] = SchemaURI(typ)
	r.attrs[attrDataContentType] = ContentTypeJSON
	if o.correlationID != "" {
		r.attrs[ExtCorrelationID] = o.correlationID
	}
	if o.traceParent != "" {
		r.attrs[ExtTraceParent] = o.traceParent
	}
	if o.traceState != "" {
		r.attrs[ExtTraceState] = o.traceState
	}
	r.data, r.hasData = data, true
	env, err := r.decode()
	if err != nil {
		return event.Event{}, err
	}
	return env.Event, nil
}

func isNilPointer(p Payload) bool {
	v := reflect.ValueOf(p)
	return v.Kind() == reflect.Pointer && v.IsNil()
}
