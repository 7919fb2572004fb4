package events_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/invictus-network/invictus/events"
)

func TestNewSetsAttributes(t *testing.T) {
	t.Parallel()
	before := time.Now()
	e, err := events.New(events.SourceRouting, refID, events.SamplePayload(events.TypeReferralOffered),
		events.WithCorrelationID("0195f0c3-3333-7abc-8def-0123456789ab"), events.WithTraceParent(testTraceParent))
	if err != nil {
		t.Fatal(err)
	}
	if !events.IsReferralID(e.ID()) || e.ID()[14] != '7' {
		t.Errorf("id %q is not a UUIDv7", e.ID())
	}
	for _, c := range []struct{ name, got, want string }{
		{"specversion", e.SpecVersion(), "1.0"},
		{"source", e.Source(), events.SourceRouting},
		{"type", e.Type(), events.TypeReferralOffered},
		{"subject", e.Subject(), refID},
		{"dataschema", e.DataSchema(), "urn:invictus:schema:referral.offered.v1"},
		{"datacontenttype", e.DataContentType(), "application/json"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q; want %q", c.name, c.got, c.want)
		}
	}
	if tm := e.Time(); tm.Location() != time.UTC || tm.Before(before.Add(-time.Second)) || tm.After(time.Now().Add(time.Second)) {
		t.Errorf("time %v is not now in UTC", tm)
	}
	ext := e.Extensions()
	if ext[events.ExtCorrelationID] != "0195f0c3-3333-7abc-8def-0123456789ab" || ext[events.ExtTraceParent] != testTraceParent {
		t.Errorf("extensions %v", ext)
	}
	if got, want := string(e.Data()), payloadJSON(t, events.SamplePayload(events.TypeReferralOffered)); got != want {
		t.Errorf("data %s; want %s", got, want)
	}
	if e.DataBase64 {
		t.Error("data is marked base64; structured JSON would carry data_base64")
	}

	// A value payload works as well as a pointer; WithTime is stored in UTC.
	e, err = events.New(events.SourceOf("pt.apav"), refID, events.Accepted{Placement: "p1"}, events.WithID("x-1"), events.WithTime(time.Date(2025, 6, 1, 12, 0, 0, 0, time.FixedZone("CEST", 2*3600))))
	if err != nil {
		t.Fatal(err)
	}
	if e.ID() != "x-1" || !e.Time().Equal(time.Date(2025, 6, 1, 10, 0, 0, 0, time.UTC)) || e.Time().Location() != time.UTC {
		t.Errorf("id %q time %v", e.ID(), e.Time())
	}
}

func TestNewRejects(t *testing.T) {
	t.Parallel()
	invalid := events.SamplePayload(events.TypeReferralRequested).(*events.Requested)
	invalid.Needs = append(invalid.Needs, "bogus")
	invalid.Consent.Referral = false
	invalid.Location.Region = "FR10"

	tests := []struct {
		name            string
		source, subject string
		payload         events.Payload
		opts            []events.Option
		class           error
		pointers        []string
	}{
		{"every payload problem", events.SourceOf("pt.apav"), refID, invalid, nil, events.ErrInvalid, []string{"/data/needs/3", "/data/consent/referral", "/data/location/region"}},
		{"bad source", "/orgs/pt", refID, &events.Accepted{Placement: "p1"}, nil, events.ErrInvalid, []string{"/source"}},
		{"empty source", "", refID, &events.Accepted{Placement: "p1"}, nil, events.ErrMissingAttribute, []string{"/source"}},
		{"bad subject", events.SourceOf("pt.apav"), "p1", &events.Accepted{Placement: "p1"}, nil, events.ErrInvalid, []string{"/subject"}},
		{"missing subject", events.SourceOf("pt.apav"), "", &events.Accepted{Placement: "p1"}, nil, events.ErrMissingAttribute, []string{"/subject"}},
		{"bad traceparent", events.SourceOf("pt.apav"), refID, &events.Accepted{Placement: "p1"}, []events.Option{events.WithTraceParent("abc")}, events.ErrInvalid, []string{"/traceparent"}},
		{"bad id", events.SourceOf("pt.apav"), refID, &events.Accepted{Placement: "p1"}, []events.Option{events.WithID(" padded ")}, events.ErrInvalid, []string{"/id"}},
		{"nil payload", events.SourceOf("pt.apav"), refID, nil, nil, events.ErrMissingAttribute, []string{"/data"}},
		{"typed nil payload", events.SourceOf("pt.apav"), refID, (*events.Accepted)(nil), nil, events.ErrMissingAttribute, []string{"/data"}},
		{"several attribute problems at once", "/x", "y", &events.Accepted{}, nil, events.ErrInvalid, []string{"/source", "/subject", "/data/placement"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := events.New(tt.source, tt.subject, tt.payload, tt.opts...)
			wantProblem(t, err, tt.class, tt.pointers...)
		})
	}
}

func TestSamplePayloadsAreValid(t *testing.T) {
	t.Parallel()
	for _, typ := range events.Types() {
		p := events.SamplePayload(typ)
		if p == nil {
			t.Errorf("no sample payload for %s", typ)
			continue
		}
		if p.EventType() != typ {
			t.Errorf("sample of %s has type %s", typ, p.EventType())
		}
		if want, _ := events.NewPayload(typ); reflect.TypeOf(p) != reflect.TypeOf(want) {
			t.Errorf("sample of %s is a %T; want %T", typ, p, want)
		}
		if err := events.ValidatePayload(p); err != nil {
			t.Errorf("sample of %s: %v", typ, err)
		}
	}
	if events.SamplePayload("invictus.nope.v1") != nil {
		t.Error("a sample for an unknown type")
	}
	// Each call returns a value of its own.
	a := events.SamplePayload(events.TypeReferralRequested).(*events.Requested)
	a.Needs[0] = "changed"
	*a.Location.Lat = 1
	if b := events.SamplePayload(events.TypeReferralRequested).(*events.Requested); b.Needs[0] == "changed" || *b.Location.Lat == 1 {
		t.Error("SamplePayload shares state between calls")
	}
}

func TestValidatePayloadPointers(t *testing.T) {
	t.Parallel()
	p := events.SamplePayload(events.TypeReferralPlanned).(*events.Planned)
	p.Groups[1].Candidates[0].Components["bad.key[0]"] = 0.5
	p.Groups[0].Candidates[0].Components["distance"] = 2
	err := events.ValidatePayload(p)
	wantProblem(t, err, events.ErrInvalid, "/data/groups/1/candidates/0/components/bad.key[0]", "/data/groups/0/candidates/0/components/distance")

	q := events.SamplePayload(events.TypeReferralRequested).(*events.Requested)
	q.Consent.RecordedBy = "Maria.Silva 912 345 678"
	ve := wantProblem(t, events.ValidatePayload(q), events.ErrInvalid, "/data/consent/recorded_by")
	for _, pr := range ve.Problems {
		if strings.Contains(pr.Message, "912") || strings.Contains(pr.Message, "Maria") {
			t.Errorf("a problem message repeats identifying text: %q", pr.Message)
		}
	}
}
