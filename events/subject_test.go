package events_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/invictus-network/invictus/events"
)

const refID = "0195f0c1-2d4b-7c3a-8e5f-6a7b8c9d0e1f"

// badIDs are strings that are not valid ids or tokens of any kind.
var badIDs = []string{"", " ", ".", "*", ">", "pt.*", "pt.>", "pt. apav", "pt.apav\t", "pt.ap\u00e1v", "pt..apav", "pt.apav.", "PT.APAV", "pt.apav\n", "pt.apav\x00"}

func TestIsReferralID(t *testing.T) {
	t.Parallel()
	for _, id := range []string{refID, events.NewReferralID(), "123e4567-e89b-12d3-a456-426614174000"} {
		if !events.IsReferralID(id) {
			t.Errorf("IsReferralID(%q) = false", id)
		}
	}
	for _, id := range append([]string{
		strings.ToUpper(refID), "{" + refID + "}", "urn:uuid:" + refID, strings.ReplaceAll(refID, "-", ""),
		refID[:35], refID + "0", "0195f0c1-2d4b-7c3a-8e5f-6a7b8c9d0e1g", "0195f0c1x2d4b-7c3a-8e5f-6a7b8c9d0e1f",
		"00000000-0000-0000-0000-000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff",
	}, badIDs...) {
		if events.IsReferralID(id) {
			t.Errorf("IsReferralID(%q) = true", id)
		}
	}
}

func TestNewReferralIDIsUUIDv7(t *testing.T) {
	t.Parallel()
	a, b := events.NewReferralID(), events.NewReferralID()
	if a == b {
		t.Fatal("two equal ids")
	}
	if a[14] != '7' {
		t.Errorf("%s is not a version 7 UUID", a)
	}
}

func TestSubjectBuilders(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		build func() (string, error)
		want  string
	}{
		{"inbound", func() (string, error) { return events.InboundSubject("pt.apav") }, "in.pt.apav"},
		{"inbound with hyphen", func() (string, error) { return events.InboundSubject("fr.france-victimes-75") }, "in.fr.france-victimes-75"},
		{"referral", func() (string, error) { return events.ReferralSubject("fi", refID) }, "referral.fi." + refID},
		{"delivery", func() (string, error) { return events.DeliverySubject("fi.riku", refID) }, "out.fi.riku." + refID},
		{"timer", func() (string, error) { return events.TimerSubject(refID, "p1") }, "timer." + refID + ".p1"},
		{"timer fire", func() (string, error) { return events.TimerFireSubject(refID, "p1") }, "timer.fire." + refID + ".p1"},
		{"dlq", func() (string, error) { return events.DLQSubject("decode_failed") }, "dlq.decode_failed"},
	}
	for _, tt := range tests {
		got, err := tt.build()
		if err != nil || got != tt.want {
			t.Errorf("%s: got %q, %v; want %q", tt.name, got, err, tt.want)
		}
	}
	if got := events.DeliveryFilter("pt.apav"); got != "out.pt.apav.>" {
		t.Errorf("DeliveryFilter = %q", got)
	}
}

func TestSubjectBuildersRejectBadTokens(t *testing.T) {
	t.Parallel()
	check := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, events.ErrInvalidSubject) {
			t.Errorf("%s: error %v; want ErrInvalidSubject", what, err)
		}
	}
	for _, bad := range append(badIDs, "zz.apav", "pt", "pt.apav.x", "pt."+strings.Repeat("a", 49)) {
		_, err := events.InboundSubject(bad)
		check("InboundSubject("+bad+")", err)
		_, err = events.DeliverySubject(bad, refID)
		check("DeliverySubject("+bad+")", err)
		if got := events.DeliveryFilter(bad); got != events.NoDeliveryFilter {
			t.Errorf("DeliveryFilter(%q) = %q; want %q", bad, got, events.NoDeliveryFilter)
		}
	}
	for _, bad := range badIDs {
		_, err := events.ReferralSubject("pt", bad)
		check("ReferralSubject(pt, "+bad+")", err)
		_, err = events.ReferralSubject(bad, refID)
		check("ReferralSubject("+bad+", id)", err)
		_, err = events.DeliverySubject("pt.apav", bad)
		check("DeliverySubject(org, "+bad+")", err)
		_, err = events.TimerSubject(bad, "p1")
		check("TimerSubject("+bad+", p1)", err)
		_, err = events.TimerSubject(refID, bad)
		check("TimerSubject(id, "+bad+")", err)
		_, err = events.TimerFireSubject(refID, bad)
		check("TimerFireSubject(id, "+bad+")", err)
		_, err = events.DLQSubject(bad)
		check("DLQSubject("+bad+")", err)
	}
	_, err := events.ReferralSubject("xx", refID)
	check("unknown country", err)
	_, err = events.TimerSubject(refID, "P1")
	check("upper-case placement", err)
	_, err = events.DLQSubject("Decode")
	check("upper-case reason", err)
}

func TestSubjectParsers(t *testing.T) {
	t.Parallel()
	org, err := events.ParseInboundSubject("in.pt.apav")
	if err != nil || org != "pt.apav" {
		t.Errorf("ParseInboundSubject = %q, %v", org, err)
	}
	cc, id, err := events.ParseReferralSubject("referral.pt." + refID)
	if err != nil || cc != "pt" || id != refID {
		t.Errorf("ParseReferralSubject = %q, %q, %v", cc, id, err)
	}
	org, id, err = events.ParseDeliverySubject("out.fi.riku." + refID)
	if err != nil || org != "fi.riku" || id != refID {
		t.Errorf("ParseDeliverySubject = %q, %q, %v", org, id, err)
	}
	id, p, fired, err := events.ParseTimerSubject("timer." + refID + ".p2")
	if err != nil || id != refID || p != "p2" || fired {
		t.Errorf("ParseTimerSubject = %q, %q, %v, %v", id, p, fired, err)
	}
	id, p, fired, err = events.ParseTimerSubject("timer.fire." + refID + ".p2")
	if err != nil || id != refID || p != "p2" || !fired {
		t.Errorf("ParseTimerSubject(fire) = %q, %q, %v, %v", id, p, fired, err)
	}

	bad := []string{
		"", "in", "in.pt", "in.pt.apav.x", "in.zz.apav", "in.pt.*", "in.pt.>", "in.*.apav", "IN.pt.apav", "in.pt.apav ", "in..apav",
		"referral.pt", "referral.pt." + refID + ".x", "referral.xx." + refID, "referral.pt.*", "referral.pt." + strings.ToUpper(refID), "referrals.pt." + refID,
		"out.pt.apav", "out.pt.apav.>", "out.pt.*." + refID, "out.pt.apav." + refID + ".x", "out.pt.a_b." + refID,
		"timer." + refID, "timer." + refID + ".p1.x", "timer.fire." + refID, "timer.fire.x." + refID + ".p1", "timer.fire." + refID + ".*", "timer.*.p1", "timer.fire.fire.p1",
	}
	for _, s := range bad {
		if _, err := events.ParseInboundSubject(s); err == nil {
			t.Errorf("ParseInboundSubject(%q) accepted", s)
		}
		if _, _, err := events.ParseReferralSubject(s); err == nil {
			t.Errorf("ParseReferralSubject(%q) accepted", s)
		}
		if _, _, err := events.ParseDeliverySubject(s); err == nil {
			t.Errorf("ParseDeliverySubject(%q) accepted", s)
		}
		if _, _, _, err := events.ParseTimerSubject(s); err == nil {
			t.Errorf("ParseTimerSubject(%q) accepted", s)
		}
	}
}

func TestSourceHelpers(t *testing.T) {
	t.Parallel()
	if got := events.SourceOf("pt.apav"); got != "/orgs/pt.apav" {
		t.Errorf("SourceOf = %q", got)
	}
	if org, ok := events.OrgOfSource("/orgs/fr.france-victimes-75"); !ok || org != "fr.france-victimes-75" {
		t.Errorf("OrgOfSource = %q, %v", org, ok)
	}
	for _, s := range []string{events.SourceRouting, events.SourceDirectory, "/orgs/", "/orgs/pt", "/orgs/zz.apav", "/orgs/pt.apav/x", "orgs/pt.apav", "/orgs/pt.*"} {
		if org, ok := events.OrgOfSource(s); ok {
			t.Errorf("OrgOfSource(%q) = %q, true", s, org)
		}
	}
	for _, s := range []string{"/orgs/pt.apav", events.SourceRouting, events.SourceDirectory} {
		if !events.IsSource(s) {
			t.Errorf("IsSource(%q) = false", s)
		}
	}
	for _, s := range []string{"", "/", "/invictus/", "/invictus/Routing", "/invictus/a/b", "https://example.org", "/orgs/pt.apav "} {
		if events.IsSource(s) {
			t.Errorf("IsSource(%q) = true", s)
		}
	}
	if got := events.SchemaPath(events.TypeReferralRequested); got != "/schemas/referral.requested.v1.json" {
		t.Errorf("SchemaPath = %q", got)
	}
	if got := events.SchemaPath(events.TypeDirectoryCapacityUpdated); got != "/schemas/directory.capacity.updated.v1.json" {
		t.Errorf("SchemaPath = %q", got)
	}
}
