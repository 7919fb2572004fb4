package events_test

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/invictus-network/invictus/events"
)

// Fixed attributes of the events the tests build.
const (
	testID          = "0195f0c3-1111-7abc-8def-0123456789ab"
	testTraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	testSubjectNATS = "in.pt.apav"
)

var testTime = time.Date(2025, 3, 10, 9, 31, 5, 123000000, time.UTC)

// sampleEvent builds a valid event of typ from SamplePayload.
func sampleEvent(t testing.TB, typ string, opts ...events.Option) event.Event {
	t.Helper()
	opts = append([]events.Option{events.WithID(testID), events.WithTime(testTime)}, opts...)
	e, err := events.New(events.SourceOf("pt.apav"), events.SampleSubject(typ), events.SamplePayload(typ), opts...)
	if err != nil {
		t.Fatalf("New(%s): %v", typ, err)
	}
	return e
}

// sampleMessage returns the binary-mode NATS message of sampleEvent.
func sampleMessage(t testing.TB, typ string, opts ...events.Option) events.Message {
	t.Helper()
	m, err := events.ToNATS(testSubjectNATS, sampleEvent(t, typ, opts...))
	if err != nil {
		t.Fatalf("ToNATS(%s): %v", typ, err)
	}
	return m
}

// structuredMessage returns e in structured mode, marshalled by sdk-go.
func structuredMessage(t testing.TB, e event.Event) events.Message {
	t.Helper()
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatalf("marshal event: %v", err)
	}
	return events.Message{
		Subject: testSubjectNATS,
		Header:  map[string][]string{"Content-Type": {event.ApplicationCloudEventsJSON}},
		Data:    b,
	}
}

// withHeader returns a copy of m with header name set to value (deleted
// when value is empty), matching names case-insensitively.
func withHeader(m events.Message, name, value string) events.Message {
	h := make(map[string][]string, len(m.Header))
	for k, v := range m.Header {
		if !strings.EqualFold(k, name) {
			h[k] = v
		}
	}
	if value != "" {
		h[name] = []string{value}
	}
	m.Header = h
	return m
}

// validationError returns err as a *ValidationError, failing the test if
// it is not one.
func validationError(t testing.TB, err error) *events.ValidationError {
	t.Helper()
	var ve *events.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v (%T) is not a *ValidationError", err, err)
	}
	return ve
}

// wantProblem fails unless err is a *ValidationError of class with a
// problem at each pointer, and returns a copy of it. The copy is not an
// error (Error has a pointer receiver), so callers that only assert need
// not look at the result.
func wantProblem(t testing.TB, err error, class error, pointers ...string) events.ValidationError {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want %v at %q", class, pointers)
	}
	ve := validationError(t, err)
	if !errors.Is(err, class) || ve.Class != class {
		t.Fatalf("error class %v; want %v (error: %v)", ve.Class, class, err)
	}
	for _, p := range pointers {
		if !slices.ContainsFunc(ve.Problems, func(pr events.Problem) bool { return pr.Pointer == p }) {
			t.Errorf("no problem at %q in %v", p, err)
		}
	}
	return *ve
}

// payloadJSON returns p as JSON, for comparisons that ignore how time
// zones are represented in memory.
func payloadJSON(t testing.TB, p events.Payload) string {
	t.Helper()
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatalf("marshal payload: %v", err)
	}
	return string(b)
}
