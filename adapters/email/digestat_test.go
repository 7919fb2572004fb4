package email_test

import (
	"strings"
	"testing"
	"time"

	"github.com/invictus-network/invictus/adapters/email"
	"github.com/invictus-network/invictus/directory"
)

// TestParseDigestAt: a time of day HH:MM on a 24-hour clock, anything
// else refused with a message saying what is expected.
func TestParseDigestAt(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]time.Duration{"00:00": 0, "07:00": 7 * time.Hour, "23:59": 23*time.Hour + 59*time.Minute, "12:05": 12*time.Hour + 5*time.Minute} {
		if got, err := email.ParseDigestAt(in); err != nil || got != want {
			t.Errorf("ParseDigestAt(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "7:00", "07:60", "24:00", "07h00", "07:00:00", "-1:00", "ab:cd", "07:0", " 7:00"} {
		if _, err := email.ParseDigestAt(in); err == nil || !strings.Contains(err.Error(), "time of day") {
			t.Errorf("ParseDigestAt(%q): %v, want an error about the time of day", in, err)
		}
	}
	err := email.Config{From: "a@b.test", PublicURL: "https://node.test", DigestAt: "25:00"}.WithDefaults().Validate()
	if err == nil || !strings.Contains(err.Error(), "Config.DigestAt") {
		t.Errorf("Validate with DigestAt 25:00: %v", err)
	}
}

// TestNextDigest: the digest time is read on the organisation's clock,
// through the changes of summer time.
func TestNextDigest(t *testing.T) {
	t.Parallel()
	lisbon, _ := time.LoadLocation("Europe/Lisbon")
	helsinki, _ := time.LoadLocation("Europe/Helsinki")
	utc := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, c := range []struct {
		at   time.Duration
		loc  *time.Location
		now  string
		want string
	}{
		{7 * time.Hour, time.UTC, "2026-12-07T06:59:00Z", "2026-12-07T07:00:00Z"},
		{7 * time.Hour, time.UTC, "2026-12-07T07:00:00Z", "2026-12-08T07:00:00Z"},
		{7 * time.Hour, helsinki, "2026-12-07T04:00:00Z", "2026-12-07T05:00:00Z"}, // EET, UTC+2
		{7 * time.Hour, helsinki, "2026-07-01T05:00:00Z", "2026-07-02T04:00:00Z"}, // EEST, UTC+3
		// Lisbon moves to summer time on 29 March 2026 at 01:00 UTC.
		{7 * time.Hour, lisbon, "2026-03-28T08:00:00Z", "2026-03-29T06:00:00Z"},
		// Back to winter time on 25 October 2026 at 01:00 UTC.
		{7 * time.Hour, lisbon, "2026-10-24T08:00:00Z", "2026-10-25T07:00:00Z"},
		{0, lisbon, "2026-12-31T23:59:00Z", "2027-01-01T00:00:00Z"},
	} {
		got := email.NextDigest(c.at, c.loc, utc(c.now))
		if !got.Equal(utc(c.want)) {
			t.Errorf("NextDigest(%s, %s, %s) = %s, want %s", c.at, c.loc, c.now, got.UTC().Format(time.RFC3339), c.want)
		}
	}
}

// TestDigestZones: an organisation's time zone is that of its first
// service by id; one whose services have none is absent (UTC).
func TestDigestZones(t *testing.T) {
	t.Parallel()
	d := &directory.Directory{Services: []directory.Service{
		{ID: "pt.b.x", Organisation: "pt.b", Hours: directory.Schedule{TimeZone: "Atlantic/Azores"}},
		{ID: "pt.b.a", Organisation: "pt.b", Hours: directory.Schedule{TimeZone: "Europe/Lisbon"}},
		{ID: "fi.c.a", Organisation: "fi.c", Hours: directory.Schedule{TimeZone: "Europe/Helsinki"}},
		{ID: "pt.d.a", Organisation: "pt.d"},
	}}
	z := email.DigestZones(d)
	if z["pt.b"].String() != "Europe/Lisbon" || z["fi.c"].String() != "Europe/Helsinki" || z["pt.d"] != nil || len(z) != 2 {
		t.Errorf("DigestZones = %v", z)
	}
}
