package referral_test

import (
	"strings"
	"testing"
	"time"

	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/referral"
)

func at(day, hour, minute int) time.Time {
	return time.Date(2025, time.March, day, hour, minute, 0, 0, time.UTC) // 3 March 2025 is a Monday
}

func TestDeadlinesFor(t *testing.T) {
	t.Parallel()
	d := referral.DefaultDeadlines()
	cases := []struct {
		name              string
		urgency           string
		from              time.Time
		deadline, reminds time.Time
	}{
		{"emergency", events.UrgencyEmergency, at(3, 10, 0), at(3, 10, 15), at(3, 10, 7).Add(30 * time.Second)},
		{"emergency on a Sunday counts every minute", events.UrgencyEmergency, at(9, 23, 50), at(10, 0, 5), at(9, 23, 57).Add(30 * time.Second)},
		{"urgent", events.UrgencyUrgent, at(7, 23, 0), at(8, 1, 0), at(8, 0, 0)},
		{"soon on a Monday", events.UrgencySoon, at(3, 10, 0), at(4, 10, 0), at(3, 22, 0)},
		{"soon on a Friday afternoon skips the weekend", events.UrgencySoon, at(7, 15, 0), at(10, 15, 0), at(10, 3, 0)},
		{"soon on a Saturday starts on Monday", events.UrgencySoon, at(8, 10, 0), at(11, 0, 0), at(10, 12, 0)},
		{"routine on a Friday afternoon", events.UrgencyRoutine, at(7, 15, 0), at(12, 15, 0), at(11, 3, 0)},
		{"routine on a Wednesday", events.UrgencyRoutine, at(5, 9, 0), at(10, 9, 0), at(6, 21, 0)},
		{"an unknown urgency counts as routine", "whenever", at(5, 9, 0), at(10, 9, 0), at(6, 21, 0)},
	}
	for _, tc := range cases {
		deadline, reminder := d.For(tc.urgency, tc.from)
		if !deadline.Equal(tc.deadline) || !reminder.Equal(tc.reminds) {
			t.Errorf("%s: For = %s, %s; want %s, %s", tc.name, deadline, reminder, tc.deadline, tc.reminds)
		}
		if r := d.Reminder(tc.urgency, tc.from, deadline); !r.Equal(reminder) {
			t.Errorf("%s: Reminder = %s, For's reminder %s", tc.name, r, reminder)
		}
	}
}

func TestDeadlinesLocation(t *testing.T) {
	t.Parallel()
	// Friday 23:30 UTC is already Saturday in UTC+2: the working day
	// starts on Monday 00:00 there (Sunday 22:00 UTC).
	d := referral.DefaultDeadlines()
	d.Location = time.FixedZone("UTC+2", 2*3600)
	deadline, _ := d.For(events.UrgencySoon, at(7, 23, 30))
	if want := at(9, 22, 0).Add(24 * time.Hour); !deadline.Equal(want) {
		t.Fatalf("deadline %s, want %s", deadline, want)
	}
	// In UTC the same instant still has 30 minutes of Friday.
	utc, _ := referral.DefaultDeadlines().For(events.UrgencySoon, at(7, 23, 30))
	if want := at(10, 23, 30); !utc.Equal(want) {
		t.Fatalf("UTC deadline %s, want %s", utc, want)
	}
	if deadline.Location() != time.UTC {
		t.Fatalf("deadline in %s, want the location of from", deadline.Location())
	}
}

func TestDeadlinesConfig(t *testing.T) {
	t.Parallel()
	var zero referral.Deadlines
	if got := zero.WithDefaults(); got != referral.DefaultDeadlines() {
		t.Fatalf("WithDefaults of zero = %+v", got)
	}
	if err := referral.DefaultDeadlines().Validate(); err != nil {
		t.Fatal(err)
	}
	bad := referral.DefaultDeadlines()
	bad.Soon = -time.Hour
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "Soon") {
		t.Fatalf("Validate: %v, want an error naming Soon", err)
	}
	// Zero fields of a partial config take their defaults in For.
	custom := referral.Deadlines{Urgent: time.Hour}
	if dl, _ := custom.For(events.UrgencyUrgent, at(3, 9, 0)); !dl.Equal(at(3, 10, 0)) {
		t.Fatalf("custom urgent deadline %s", dl)
	}
	if dl, _ := custom.For(events.UrgencyEmergency, at(3, 9, 0)); !dl.Equal(at(3, 9, 15)) {
		t.Fatalf("default emergency deadline %s", dl)
	}
}
