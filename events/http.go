package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/binding/format"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
)

// Limits of a batch (Content-Type application/cloudevents-batch+json).
const (
	// MaxBatchEvents is the most events one batch may hold.
	MaxBatchEvents = 100
	// MaxBatchSize is the largest batch body, in bytes; each event in it
	// is also limited to MaxMessageSize.
	MaxBatchSize = 4 << 20
)

// DecodeHTTP decodes and validates the events of an HTTP request in any
// content mode of the CloudEvents HTTP binding: binary (Ce-* headers,
// Content-Type = datacontenttype, body = data; header values are
// percent-decoded), structured (application/cloudevents+json) or batch
// (application/cloudevents-batch+json, a JSON array of structured events).
// It applies every check Decode applies to each event.
//
// The body is read up to MaxMessageSize bytes (MaxBatchSize for a batch)
// and no further. A batch is all or nothing: when any event fails, the
// *ValidationError lists the problems of every failing event, with
// pointers prefixed by the event's index ("/2/data/needs/0"). Content
// problems are *ValidationError; an error reading the body is returned
// wrapped.
func DecodeHTTP(r *http.Request) ([]*Envelope, error) {
	cts := r.Header.Values(headerContentType)
	if len(cts) > 1 {
		return nil, newValidationError(problems{{Pointer: "/datacontenttype", Code: CodeDuplicate, Message: "header Content-Type is given more than once"}})
	}
	ct := ""
	if len(cts) == 1 {
		ct = cts[0]
	}
	mt, _, _ := mime.ParseMediaType(ct)
	switch {
	case mt == event.ApplicationCloudEventsBatchJSON:
		if msg := checkEventFormat(ct, true); msg != "" {
			return nil, newValidationError(problems{{Pointer: "/datacontenttype", Code: CodeContentType, Message: msg}})
		}
		body, err := readBody(r, MaxBatchSize)
		if err != nil {
			return nil, err
		}
		return decodeBatch(body)
	case format.IsFormat(mt):
		if msg := checkEventFormat(ct, false); msg != "" {
			return nil, newValidationError(problems{{Pointer: "/datacontenttype", Code: CodeContentType, Message: msg}})
		}
		body, err := readBody(r, MaxMessageSize)
		if err != nil {
			return nil, err
		}
		rv, fatal := parseStructured(body)
		if fatal != nil {
			return nil, newValidationError(fatal)
		}
		env, err := rv.decode()
		if err != nil {
			return nil, err
		}
		return []*Envelope{env}, nil
	}
	body, err := readBody(r, MaxMessageSize)
	if err != nil {
		return nil, err
	}
	m := Message{Header: make(map[string][]string), Data: body}
	for k, vs := range r.Header {
		if isEventHeader(k) {
			m.Header[k] = vs
		}
	}
	env, err := Decode(m)
	if err != nil {
		return nil, err
	}
	return []*Envelope{env}, nil
}

// readBody reads r's body, failing with ErrTooLarge beyond limit bytes
// without reading further.
func readBody(r *http.Request, limit int64) ([]byte, error) {
	tooLarge := func(n string) error {
		return newValidationError(problems{{Pointer: "", Code: CodeTooLarge,
			Message: fmt.Sprintf("the body is %s bytes; the limit is %d", n, limit)}})
	}
	if r.ContentLength > limit {
		return nil, tooLarge(strconv.FormatInt(r.ContentLength, 10))
	}
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("events: read request body: %w", err)
	}
	if int64(len(b)) > limit {
		return nil, tooLarge("more than " + strconv.FormatInt(limit, 10))
	}
	return b, nil
}

// decodeBatch decodes a JSON array of structured events.
func decodeBatch(body []byte) ([]*Envelope, error) {
	var fatal problems
	if i := invalidUTF8At(body); i >= 0 {
		fatal.add("", CodeInvalidUTF8, "the batch is not valid UTF-8: invalid byte at offset %d", i)
		return nil, newValidationError(fatal)
	}
	if off, msg, ok := syntaxError(body); !ok {
		fatal.add("", CodeMalformedJSON, "the batch is not well-formed JSON: %s (at byte offset %d)", msg, off)
		return nil, newValidationError(fatal)
	}
	var items []json.RawMessage
	if err := json.Unmarshal(body, &items); err != nil {
		fatal.add("", CodeFormat, "a batch must be a JSON array of events")
		return nil, newValidationError(fatal)
	}
	if len(items) > MaxBatchEvents {
		fatal.add("", CodeTooLarge, "the batch holds %d events; the limit is %d", len(items), MaxBatchEvents)
		return nil, newValidationError(fatal)
	}
	out := make([]*Envelope, 0, len(items))
	var ps problems
	for i, item := range items {
		prefix := "/" + strconv.Itoa(i)
		if len(item) > MaxMessageSize {
			ps.add(prefix, CodeTooLarge, "the event is %d bytes; the limit is %d", len(item), MaxMessageSize)
			continue
		}
		r, fatal := readStructured(item)
		if fatal != nil {
			ps = append(ps, prefixed(fatal, prefix)...)
			continue
		}
		env, err := r.decode()
		var ve *ValidationError
		if errors.As(err, &ve) {
			ps = append(ps, prefixed(ve.Problems, prefix)...)
			continue
		}
		out = append(out, env)
	}
	if err := newValidationError(ps); err != nil {
		return nil, err
	}
	return out, nil
}

// WriteHTTPRequest writes e into req in the binary content mode of the
// CloudEvents HTTP binding, through sdk-go: Ce-* headers, Content-Type and
// the body (with ContentLength and GetBody, so the request can be
// retried). Ce-* header values are then percent-encoded as the binding
// 1.0.2 says, which sdk-go does not do; any Ce-* header already on req is
// replaced. It is for webhooks and HTTP clients; it returns sdk-go's error
// when e cannot be written.
func WriteHTTPRequest(ctx context.Context, req *http.Request, e event.Event) error {
	if req.Header == nil {
		req.Header = make(http.Header)
	}
	for k := range req.Header {
		if isEventHeader(k) {
			delete(req.Header, k)
		}
	}
	if e.Context == nil {
		return errors.New("events: the event has no context")
	}
	if err := cehttp.WriteRequest(binding.WithForceBinary(ctx), (*binding.EventMessage)(&e), req); err != nil {
		return fmt.Errorf("events: write HTTP request for event %q: %w", e.ID(), err)
	}
	for k, vs := range req.Header {
		if len(k) > len(headerPrefix) && strings.EqualFold(k[:len(headerPrefix)], headerPrefix) {
			for i, v := range vs {
				vs[i] = percentEncode(v)
			}
		}
	}
	if req.Body == nil {
		// An event without data: make the request explicit about it.
		req.Body, req.ContentLength = http.NoBody, 0
		req.GetBody = func() (io.ReadCloser, error) { return http.NoBody, nil }
	}
	return nil
}
