package routing_test

import (
	"errors"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/routing"
)

// The service builds its own events without events.New's encode and
// decode round trip; each must be exactly what events.New builds from
// the same payload and attributes, on the wire.
func TestOwnEventsAreWhatEventsNewBuilds(t *testing.T) {
	t.Parallel()
	b := svcSetup(t)
	id := events.NewReferralID()
	b.handle(t, "pt.ref", id, svcRequest(events.NeedSupportEmotional))
	pl, _ := offerOf(t, b.state(t, id), 0)
	b.handle(t, "pt.a1", id, &events.Declined{Placement: pl, Reason: "capacity"})
	b.handle(t, "pt.a2", id, &events.Accepted{Placement: pl})
	// A need only the referrer offers is a gap: referral.unmatched with
	// the profile and the gap's details.
	b.handle(t, "pt.ref", events.NewReferralID(), svcRequest(events.NeedSupportEmotional, events.NeedInfoCase))

	checked := map[string]bool{}
	for _, o := range b.log.outgoing() {
		ev := o.Event
		if ev.Source() != events.SourceRouting {
			continue
		}
		id := ev.Subject()
		env, err := events.DecodeEvent(ev)
		if err != nil {
			t.Fatalf("%s does not decode: %v", ev.Type(), err)
		}
		opts := []events.Option{events.WithID(ev.ID()), events.WithTime(ev.Time())}
		if c, ok := ev.Extensions()[events.ExtCorrelationID].(string); ok {
			opts = append(opts, events.WithCorrelationID(c))
		}
		want, err := events.New(events.SourceRouting, id, env.Payload, opts...)
		if err != nil {
			t.Fatal(err)
		}
		got, err := routing.OwnEvent(id, env.Payload, ev.ID(), ev.Time(), stringExt(ev.Extensions()[events.ExtCorrelationID]))
		if err != nil {
			t.Fatal(err)
		}
		gm, err := events.ToNATS("referral.pt."+id, got)
		if err != nil {
			t.Fatal(err)
		}
		wm, err := events.ToNATS("referral.pt."+id, want)
		if err != nil {
			t.Fatal(err)
		}
		if !maps.EqualFunc(gm.Header, wm.Header, slices.Equal) || string(gm.Data) != string(wm.Data) {
			t.Errorf("%s:\nown    %v %s\nevents %v %s", ev.Type(), gm.Header, gm.Data, wm.Header, wm.Data)
		}
		// And what the service appended is that event.
		am, err := events.ToNATS("referral.pt."+id, ev)
		if err != nil {
			t.Fatal(err)
		}
		if !maps.EqualFunc(am.Header, wm.Header, slices.Equal) || string(am.Data) != string(wm.Data) {
			t.Errorf("appended %s differs from events.New's:\n%v %s\n%v %s", ev.Type(), am.Header, am.Data, wm.Header, wm.Data)
		}
		checked[ev.Type()] = true
	}
	for _, typ := range []string{events.TypeReferralPlanned, events.TypeReferralOffered, events.TypeReferralUnmatched} {
		if !checked[typ] {
			t.Errorf("no %s was checked", typ)
		}
	}

	// A payload that breaks the contract is refused as events.New refuses
	// it (plans and offers are not checked here: the matcher's property
	// tests and the decoding of every event above check them).
	bad := &events.Expired{Placement: "p1"}
	_, err := routing.OwnEvent(id, bad, routing.EventID("k", 0), time.Now(), "")
	var ve *events.ValidationError
	if !errors.As(err, &ve) || !errors.Is(err, events.ErrInvalid) {
		t.Errorf("invalid payload: %v, want a *events.ValidationError", err)
	}
}

func stringExt(v any) string {
	s, _ := v.(string)
	return s
}

// BenchmarkOwnEvent builds the service's own events of one request with
// a gap: the plan, an offer and the unmatched report with the profile.
func BenchmarkOwnEvent(b *testing.B) {
	id := events.NewReferralID()
	now := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	pays := []events.Payload{
		events.SamplePayload(events.TypeReferralPlanned),
		events.SamplePayload(events.TypeReferralOffered),
		events.SamplePayload(events.TypeReferralUnmatched),
	}
	b.ReportAllocs()
	for b.Loop() {
		for i, p := range pays {
			if _, err := routing.OwnEvent(id, p, routing.EventID("k", i), now, "c1"); err != nil {
				b.Fatal(err)
			}
		}
	}
}
