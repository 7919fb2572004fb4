package events_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/invictus-network/invictus/events"
)

// TestSharedCodeListsRefuseAsEnums: the code lists a needs profile and a
// service's listing share (channels, accessibility, age bands, genders)
// are checked against the taxonomy's Go lists in both payloads, and an
// unknown code is an enum problem naming every allowed code.
func TestSharedCodeListsRefuseAsEnums(t *testing.T) {
	t.Parallel()
	req := func(f func(*events.Requested)) events.Payload {
		p := events.SamplePayload(events.TypeReferralRequested).(*events.Requested)
		f(p)
		return p
	}
	svc := func(f func(*events.ServiceContent)) events.Payload {
		p := events.SamplePayload(events.TypeDirectoryServiceContent).(*events.ServiceContent)
		f(p)
		return p
	}
	for _, c := range []struct {
		name    string
		p       events.Payload
		pointer string
		codes   []string
	}{
		{"profile channel", req(func(p *events.Requested) { p.Channels = []string{"fax"} }), "/data/channels/0", events.Channels},
		{"profile accessibility", req(func(p *events.Requested) { p.Accessibility = []string{"ramp"} }), "/data/accessibility/0", events.Accessibility},
		{"profile age band", req(func(p *events.Requested) { p.AgeBand = "toddler" }), "/data/age_band", events.AgeBands},
		{"profile gender", req(func(p *events.Requested) { p.Gender = "x" }), "/data/gender", events.Genders},
		{"service channel", svc(func(p *events.ServiceContent) { p.Channels = []string{"fax"} }), "/data/channels/0", events.Channels},
		{"service accessibility", svc(func(p *events.ServiceContent) { p.Accessibility = []string{"ramp"} }), "/data/accessibility/0", events.Accessibility},
		{"service age band", svc(func(p *events.ServiceContent) { p.AgeBands = []string{"toddler"} }), "/data/age_bands/0", events.AgeBands},
		{"service gender", svc(func(p *events.ServiceContent) { p.Genders = []string{"x"} }), "/data/genders/0", events.Genders},
	} {
		err := events.ValidatePayload(c.p)
		var ve *events.ValidationError
		if !errors.As(err, &ve) || len(ve.Problems) != 1 {
			t.Errorf("%s: %v, want one problem", c.name, err)
			continue
		}
		pr := ve.Problems[0]
		if pr.Code != events.CodeEnum || pr.Pointer != c.pointer || !strings.HasSuffix(pr.Message, "is not one of: "+strings.Join(c.codes, " ")) {
			t.Errorf("%s: %+v, want %s at %s naming %v", c.name, pr, events.CodeEnum, c.pointer, c.codes)
		}
	}
	for _, p := range []events.Payload{events.SamplePayload(events.TypeReferralRequested), events.SamplePayload(events.TypeDirectoryServiceContent)} {
		if err := events.ValidatePayload(p); err != nil {
			t.Errorf("%T sample: %v", p, err)
		}
	}
}
