package events

import (
	"context"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/binding/spec"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
)

// sdkWriter is the binding.BinaryWriter ToNATS filled through sdk-go's
// binding.Write before natsWriter.write took its place: the reference
// that write must agree with.
type sdkWriter struct {
	header map[string][]string
	data   []byte
}

func (w *sdkWriter) Start(context.Context) error { return nil }
func (w *sdkWriter) End(context.Context) error   { return nil }

func (w *sdkWriter) SetData(r io.Reader) error {
	b, err := io.ReadAll(r)
	w.data = b
	return err
}

func (w *sdkWriter) SetAttribute(a spec.Attribute, value any) error {
	if err := w.SetExtension(a.Name(), value); err != nil {
		return err
	}
	if a.Kind() == spec.DataContentType {
		s, _ := types.Format(value)
		w.header[headerContentType] = []string{s}
	}
	return nil
}

func (w *sdkWriter) SetExtension(name string, value any) error {
	if value == nil {
		return nil
	}
	s, err := types.Format(value)
	if err != nil {
		return err
	}
	if !utf8.ValidString(s) {
		return newValidationError(problems{{Pointer: "/" + name, Code: CodeInvalidUTF8, Message: name + " is not valid UTF-8"}})
	}
	w.header[headerPrefix+strings.ToLower(name)] = []string{percentEncode(s)}
	return nil
}

// TestNATSWriterMatchesSDK checks that natsWriter.write encodes events as
// sdk-go's binding.Write did: the same headers and data, and the same
// error for an attribute that is not valid UTF-8. Dropping an attribute,
// the Content-Type header or the time, or writing a blank attribute,
// fails it.
func TestNATSWriterMatchesSDK(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 3, 1, 10, 30, 0, 123456789, time.FixedZone("x", 3600))
	var cases []event.Event
	for _, typ := range Types() {
		subject := "6f1c2d3e-4a5b-4c6d-8e7f-8091a2b3c4d5"
		for _, s := range []string{"pt.apav", "pt.apav.lisboa"} {
			if !subjectFits(typ, subject) {
				subject = s
			}
		}
		e, err := New(SourceOf("pt.apav"), subject, SamplePayload(typ), WithTime(at), WithCorrelationID("abc-1"))
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		cases = append(cases, e)
	}
	bare := event.New(event.CloudEventsVersionV1)
	bare.SetID("x")
	cases = append(cases, bare) // no source, type, time or data
	odd := cases[0].Clone()
	odd.SetSubject("a b\"%ç")
	odd.SetExtension("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	odd.SetExtension("flag", true)
	odd.SetExtension("count", int32(7))
	odd.DataEncoded = nil
	cases = append(cases, odd)
	bad := cases[0].Clone()
	bad.SetSubject("ok")
	bad.SetType("bad\xffutf8")
	cases = append(cases, bad)
	badExt := cases[0].Clone()
	badExt.SetExtension("note", "bad\xffutf8")
	cases = append(cases, badExt)

	for i, e := range cases {
		want := &sdkWriter{header: map[string][]string{}}
		_, wantErr := binding.Write(binding.WithForceBinary(context.Background()), (*binding.EventMessage)(&e), nil, want)
		got := &natsWriter{header: map[string][]string{}}
		gotErr := got.write(&e)
		var wve, gve *ValidationError
		if errors.As(wantErr, &wve) != errors.As(gotErr, &gve) || (wantErr == nil) != (gotErr == nil) {
			t.Errorf("case %d: error %v; sdk-go %v", i, gotErr, wantErr)
			continue
		}
		if wve != nil {
			if !reflect.DeepEqual(gve.Problems, wve.Problems) {
				t.Errorf("case %d: problems %+v; sdk-go %+v", i, gve.Problems, wve.Problems)
			}
			continue
		}
		if !reflect.DeepEqual(got.header, want.header) {
			t.Errorf("case %d: headers\n%v\nsdk-go\n%v", i, got.header, want.header)
		}
		if string(got.data) != string(want.data) || (got.data == nil) != (want.data == nil) {
			t.Errorf("case %d: data %q; sdk-go %q", i, got.data, want.data)
		}
		if len(e.DataEncoded) > 0 && &got.data[0] == &e.DataEncoded[0] {
			t.Errorf("case %d: data shares the event's array", i)
		}
	}
}
