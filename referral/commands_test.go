package referral_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/referral"
)

// The command list is what Decide decides: every type of the catalogue
// sent as a command gets past the type check exactly when it is in
// CommandTypes, is forbidden when it is in RoutingTypes, and is invalid
// otherwise. The HTTP API takes the same list (httpapi.CommandTypes).
func TestCommandTypesAreWhatDecideDecides(t *testing.T) {
	t.Parallel()
	const org = "pt.apav"
	for _, typ := range events.Types() {
		p, ok := events.NewPayload(typ)
		if !ok {
			t.Fatalf("no payload for %s", typ)
		}
		e := event.New(event.CloudEventsVersionV1)
		e.SetID("c-1")
		e.SetSource(events.SourceOf(org))
		e.SetType(typ)
		e.SetSubject(events.NewReferralID())
		_, err := referral.Decide(referral.State{}, &events.Envelope{Event: e, Payload: p}, referral.Actor{Org: org}, time.Now(), referral.Deadlines{})
		re := &referral.Error{}
		if err != nil && !errors.As(err, &re) {
			t.Fatalf("%s: %v, want a *referral.Error", typ, err)
		}
		atType := re.Pointer == "/type"
		switch {
		case slices.Contains(referral.CommandTypes, typ):
			if atType {
				t.Errorf("%s is a command, but Decide refuses its type: %v", typ, err)
			}
		case slices.Contains(referral.RoutingTypes, typ):
			if !atType || re.Code != referral.CodeForbidden {
				t.Errorf("%s is the routing service's: %v, want forbidden at /type", typ, err)
			}
		default:
			if !atType || re.Code != referral.CodeInvalid {
				t.Errorf("%s is not a referral command: %v, want invalid at /type", typ, err)
			}
		}
	}
}

// A payload given as a value, not the pointer events.Decode returns, is
// refused, not misread.
func TestDecideRefusesAValuePayload(t *testing.T) {
	t.Parallel()
	const org = "pt.apav"
	e := event.New(event.CloudEventsVersionV1)
	e.SetID("c-1")
	e.SetSource(events.SourceOf(org))
	e.SetType(events.TypeReferralAccepted)
	e.SetSubject(events.NewReferralID())
	_, err := referral.Decide(referral.State{}, &events.Envelope{Event: e, Payload: events.Accepted{Placement: "p1"}}, referral.Actor{Org: org}, time.Now(), referral.Deadlines{})
	var re *referral.Error
	if !errors.As(err, &re) || re.Code != referral.CodeInvalid || re.Pointer != "/data" {
		t.Fatalf("%v, want invalid at /data", err)
	}
}
