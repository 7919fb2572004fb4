package events

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"mime"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/v2/binding/format"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
)

// Header names of the CloudEvents NATS binding.
const (
	headerPrefix      = "ce-"
	headerContentType = "Content-Type"
)

// ToNATS encodes e as a NATS message on subject in the binary content mode
// of the CloudEvents NATS protocol binding 1.0.3: every attribute and
// extension in a ce-<name> header (ce-specversion, ce-id, ce-source,
// ce-type, ce-subject, ce-time, ce-dataschema, ce-datacontenttype,
// ce-correlationid, ce-traceparent...), the datacontenttype also in
// Content-Type, and the data as the message data. Header values are
// percent-encoded as the binding says: space, double quote, percent and
// every byte outside printable ASCII become %XX.
//
// ToNATS does not check the payload (New does) and does not set
// Nats-Msg-Id: deduplication is the publisher's choice, since JetStream
// deduplicates per stream and one event may be published to several
// subjects of a stream. It returns an error when subject is not a valid
// publish subject, when e is not a CloudEvents 1.0 event, and a
// *ValidationError (ErrInvalidUTF8, ErrTooLarge) when an attribute is not
// valid UTF-8 or the message exceeds MaxMessageSize.
func ToNATS(subject string, e event.Event) (Message, error) {
	if !isPublishSubject(subject) {
		return Message{}, fmt.Errorf("events: %q is not a valid NATS subject to publish to: %w", subject, ErrInvalidSubject)
	}
	if e.Context == nil || e.SpecVersion() != event.CloudEventsVersionV1 {
		return Message{}, fmt.Errorf("events: only CloudEvents %s events can be encoded", event.CloudEventsVersionV1)
	}
	w := &natsWriter{header: make(map[string][]string, 12)}
	if err := w.write(&e); err != nil {
		var ve *ValidationError
		if errors.As(err, &ve) {
			return Message{}, ve
		}
		return Message{}, fmt.Errorf("events: encode event %q: %w", e.ID(), err)
	}
	m := Message{Subject: subject, Header: w.header, Data: w.data}
	if n := messageSize(m); n > MaxMessageSize {
		return Message{}, newValidationError(problems{{Pointer: "", Code: CodeTooLarge,
			Message: fmt.Sprintf("the message is %d bytes; the limit is %d", n, MaxMessageSize)}})
	}
	return m, nil
}

// natsWriter fills a Message with an event in binary mode.
type natsWriter struct {
	header map[string][]string
	data   []byte
	// free backs the headers' one-value slices, allocated together.
	free []string
}

// binaryAttrs are the CloudEvents 1.0 context attributes in the order
// sdk-go's binary writer passes them (binding.EventMessage.ReadBinary),
// with their names; time is written after them.
var binaryAttrs = [...]struct {
	name, header string
	get          func(event.EventContextReader) string
}{
	{attrID, headerPrefix + attrID, event.EventContextReader.GetID},
	{attrSource, headerPrefix + attrSource, event.EventContextReader.GetSource},
	{attrSpecVersion, headerPrefix + attrSpecVersion, event.EventContextReader.GetSpecVersion},
	{attrType, headerPrefix + attrType, event.EventContextReader.GetType},
	{attrDataContentType, headerPrefix + attrDataContentType, event.EventContextReader.GetDataContentType},
	{attrDataSchema, headerPrefix + attrDataSchema, event.EventContextReader.GetDataSchema},
	{attrSubject, headerPrefix + attrSubject, event.EventContextReader.GetSubject},
}

// write fills w with e in binary mode, as sdk-go's binding.Write with
// binding.WithForceBinary fills a binding.BinaryWriter, without its
// reflection and boxing of every attribute (a third of the cost of
// encoding an event): the same headers, the same checks in the same order
// (the first attribute that is not valid UTF-8 is the error), blank
// attributes and the zero time left out, and the data copied.
func (w *natsWriter) write(e *event.Event) error {
	c := e.Context
	for _, a := range binaryAttrs {
		s := a.get(c)
		if s == "" {
			continue // sdk-go treats a blank attribute as missing
		}
		if err := w.setHeader(a.header, a.name, s); err != nil {
			return err
		}
		if a.name == attrDataContentType {
			w.header[headerContentType] = []string{s}
		}
	}
	if t := c.GetTime(); !t.IsZero() {
		if err := w.setHeader(headerPrefix+attrTime, attrTime, types.FormatTime(t)); err != nil {
			return err
		}
	}
	for name, v := range c.GetExtensions() {
		if err := w.set(name, v); err != nil {
			return err
		}
	}
	if len(e.DataEncoded) > 0 {
		w.data = bytes.Clone(e.DataEncoded)
	}
	return nil
}

// set sets the header of attribute or extension name to value, formatted
// as CloudEvents formats it.
func (w *natsWriter) set(name string, value any) error {
	if value == nil {
		return nil
	}
	s, err := types.Format(value)
	if err != nil {
		return err
	}
	return w.setHeader(headerPrefix+strings.ToLower(name), name, s)
}

// setHeader sets header, that of attribute or extension name, to the
// percent-encoded value s, which must be valid UTF-8.
func (w *natsWriter) setHeader(header, name, s string) error {
	if !utf8.ValidString(s) {
		return newValidationError(problems{{Pointer: "/" + name, Code: CodeInvalidUTF8, Message: name + " is not valid UTF-8"}})
	}
	if len(w.free) == 0 {
		w.free = make([]string, 12)
	}
	v := w.free[:1:1] // capacity 1: an append copies
	w.free = w.free[1:]
	v[0] = percentEncode(s)
	w.header[header] = v
	return nil
}

// messageSize returns the size that counts against MaxMessageSize: the
// data plus the ce-* and Content-Type headers as NATS writes them
// ("name: value\r\n"). Other headers (Nats-Msg-Id, JetStream's own) do not
// count.
func messageSize(m Message) int {
	n := len(m.Data)
	for k, vs := range m.Header {
		if !isEventHeader(k) {
			continue
		}
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

// isEventHeader reports whether header name k belongs to the event.
func isEventHeader(k string) bool {
	return strings.EqualFold(k, headerContentType) ||
		(len(k) >= len(headerPrefix) && strings.EqualFold(k[:len(headerPrefix)], headerPrefix))
}

// Decode decodes and validates a NATS message holding one event, in binary
// content mode (ce-* headers, data = payload) or structured mode
// (Content-Type application/cloudevents+json, data = the JSON event).
// Header names are matched case-insensitively and binary-mode values are
// unquoted and percent-decoded as the binding says. The message subject is
// not looked at.
//
// Every failure is a *ValidationError listing every problem found, each
// with a JSON pointer into the event ("/id", "/data/needs/0"). Its Class
// is the most fundamental problem's: ErrTooLarge (checked before anything
// is parsed), ErrInvalidUTF8, ErrMalformedJSON (with the byte offset),
// ErrMissingAttribute, ErrUnknownType, ErrContentType, ErrUnknownField,
// or ErrInvalid for everything else (attribute values, ValidatePayload's
// rules).
func Decode(m Message) (*Envelope, error) {
	if n := messageSize(m); n > MaxMessageSize {
		return nil, newValidationError(problems{{Pointer: "", Code: CodeTooLarge,
			Message: fmt.Sprintf("the message is %d bytes; the limit is %d", n, MaxMessageSize)}})
	}
	headers, dups := eventHeaders(m.Header)
	if ct, ok := headers[strings.ToLower(headerContentType)]; ok {
		if mt, _, err := mime.ParseMediaType(ct); err == nil && format.IsFormat(mt) {
			if msg := checkEventFormat(ct, false); msg != "" {
				return nil, newValidationError(problems{{Pointer: "/datacontenttype", Code: CodeContentType, Message: msg}})
			}
			r, fatal := parseStructured(m.Data)
			if fatal != nil {
				return nil, newValidationError(fatal)
			}
			return r.decode()
		}
	}
	r := newRawEvent()
	for _, lk := range slices.Sorted(maps.Keys(dups)) {
		r.bad(headerAttr(lk), CodeDuplicate, "header %s is given more than once", quote(dups[lk]))
	}
	readBinary(r, headers)
	r.data, r.hasData = m.Data, len(m.Data) > 0
	return r.decode()
}

// eventHeaders returns the ce-* and Content-Type headers of h by lower-case
// name, and the headers given more than once (lower-case name to one of
// the names used), which are left out.
func eventHeaders(h map[string][]string) (headers, dups map[string]string) {
	keys := make([]string, 0, len(h))
	for k := range h {
		if isEventHeader(k) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	headers = make(map[string]string, len(keys))
	dups = map[string]string{}
	for _, k := range keys {
		vs := h[k]
		if len(vs) == 0 {
			continue
		}
		lk := strings.ToLower(k)
		if _, seen := headers[lk]; seen || len(vs) > 1 {
			dups[lk] = k
		}
		headers[lk] = vs[0]
	}
	for lk := range dups {
		delete(headers, lk)
	}
	return headers, dups
}

// headerAttr returns the attribute a lower-case header name carries.
func headerAttr(lk string) string {
	if lk == strings.ToLower(headerContentType) {
		return attrDataContentType
	}
	return strings.TrimPrefix(lk, headerPrefix)
}

// readBinary fills r from binary-mode headers (lower-case names).
func readBinary(r *rawEvent, headers map[string]string) {
	keys := make([]string, 0, len(headers))
	for k := range headers {
		keys = append(keys, k)
	}
	slices.Sort(keys) // "ce-datacontenttype" before "content-type"
	for _, lk := range keys {
		name := headerAttr(lk)
		v := headers[lk]
		if lk == strings.ToLower(headerContentType) {
			// Content-Type carries datacontenttype as an HTTP media type,
			// not percent-encoded. ce-datacontenttype wins when both agree.
			if !utf8.ValidString(v) {
				r.bad(name, CodeInvalidUTF8, "header Content-Type is not valid UTF-8")
				continue
			}
			if other, ok := headers[headerPrefix+attrDataContentType]; ok {
				if dec, err := percentDecode(other); err == nil && !sameMediaType(dec, v) {
					r.bad(name, CodeContentType, "Content-Type %s and ce-datacontenttype %s disagree", quote(v), quote(dec))
				}
				continue
			}
			r.attrs[name] = v
			continue
		}
		dec, err := percentDecode(v)
		switch {
		case err != nil:
			r.bad(name, CodeInvalidAttribute, "header %s: %v", quote(lk), err)
		case !utf8.ValidString(dec):
			r.bad(name, CodeInvalidUTF8, "header %s is not valid UTF-8 once percent-decoded", quote(lk))
		default:
			if _, done := r.attrs[name]; !done && !r.reported[name] {
				r.attrs[name] = dec
			}
		}
	}
}

// sameMediaType reports whether a and b are the same media type with the
// same parameters.
func sameMediaType(a, b string) bool {
	ma, pa, errA := mime.ParseMediaType(a)
	mb, pb, errB := mime.ParseMediaType(b)
	if errA != nil || errB != nil {
		return a == b
	}
	if ma != mb || len(pa) != len(pb) {
		return false
	}
	for k, v := range pa {
		if w, ok := pb[k]; !ok || !strings.EqualFold(v, w) {
			return false
		}
	}
	return true
}

// checkEventFormat returns why ct is not an accepted structured-mode
// media type, or "". batch allows application/cloudevents-batch+json.
func checkEventFormat(ct string, batch bool) string {
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return fmt.Sprintf("Content-Type %s is not a media type: %v", quote(ct), err)
	}
	for k, v := range params {
		if k != "charset" || !strings.EqualFold(v, "utf-8") {
			return fmt.Sprintf("Content-Type %s has an unsupported parameter; only charset=utf-8 is allowed", quote(ct))
		}
	}
	switch {
	case mt == event.ApplicationCloudEventsJSON:
		return ""
	case mt == event.ApplicationCloudEventsBatchJSON && batch:
		return ""
	case mt == event.ApplicationCloudEventsBatchJSON:
		return "the batch content mode is not supported over NATS; send one event per message"
	}
	return fmt.Sprintf("event format %s is not supported; use %s or binary mode", quote(mt), event.ApplicationCloudEventsJSON)
}

// percentEncode encodes a header value as the CloudEvents NATS and HTTP
// bindings say: space, double quote, percent and every byte outside
// printable ASCII (U+0021-U+007E) as %XX with upper-case hex digits. Each
// byte of a multi-byte UTF-8 sequence is encoded, which is the encoding of
// the character.
func percentEncode(s string) string {
	need := false
	for i := 0; i < len(s); i++ {
		if mustEncode(s[i]) {
			need = true
			break
		}
	}
	if !need {
		return s
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s) + 16)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if mustEncode(c) {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&0xf])
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

func mustEncode(c byte) bool { return c <= ' ' || c >= 0x7f || c == '"' || c == '%' }

// percentDecode decodes a header value: an RFC 7230 quoted string is
// unquoted first (older senders), then one round of percent-decoding is
// applied; upper- and lower-case hex digits are accepted. The caller
// checks that the result is valid UTF-8 (overlong sequences such as
// %C0%A0 are not).
func percentDecode(v string) (string, error) {
	if strings.HasPrefix(v, `"`) {
		u, err := unquote(v)
		if err != nil {
			return "", err
		}
		v = u
	}
	if !strings.Contains(v, "%") {
		return v, nil
	}
	b := make([]byte, 0, len(v))
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c != '%' {
			b = append(b, c)
			continue
		}
		if i+2 >= len(v) || !isHex(v[i+1]) || !isHex(v[i+2]) {
			return "", fmt.Errorf("bad percent-encoding at offset %d", i)
		}
		b = append(b, unhex(v[i+1])<<4|unhex(v[i+2]))
		i += 2
	}
	return string(b), nil
}

// unquote removes the quotes and backslash escapes of an RFC 7230
// quoted-string that makes up the whole of v.
func unquote(v string) (string, error) {
	var b bytes.Buffer
	for i := 1; i < len(v); i++ {
		switch c := v[i]; c {
		case '"':
			if i != len(v)-1 {
				return "", fmt.Errorf("data after the closing quote at offset %d", i+1)
			}
			return b.String(), nil
		case '\\':
			if i+1 >= len(v) {
				return "", fmt.Errorf("unterminated escape at offset %d", i)
			}
			i++
			b.WriteByte(v[i])
		default:
			b.WriteByte(c)
		}
	}
	return "", fmt.Errorf("unterminated quoted string")
}

func isHex(c byte) bool {
	return ('0' <= c && c <= '9') || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}
