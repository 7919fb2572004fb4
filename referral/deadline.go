package referral

import (
	"fmt"
	"time"

	"github.com/invictus-network/invictus/events"
)

// Default offer deadlines by urgency (DESIGN.md section 4). Soon and
// routine count working time: see [Deadlines].
const (
	DeadlineEmergencyDefault = 15 * time.Minute
	DeadlineUrgentDefault    = 2 * time.Hour
	DeadlineSoonDefault      = 24 * time.Hour     // one working day
	DeadlineRoutineDefault   = 3 * 24 * time.Hour // three working days
)

// Deadlines says how long an offered organisation has to answer, by the
// referral's urgency. A reminder is due at half the time.
//
// Emergency and Urgent are elapsed time. Soon and Routine are working
// time: only time on Monday to Friday in Location counts, so one working
// day from Friday 15:00 ends on Monday 15:00, and one from Saturday 10:00
// ends on Tuesday 00:00. Public holidays are not known and count as
// working days. The computation depends only on its inputs: deterministic
// for a given Location.
type Deadlines struct {
	Emergency time.Duration
	Urgent    time.Duration
	Soon      time.Duration
	Routine   time.Duration
	// Location is where weekends are reckoned; nil means UTC.
	Location *time.Location
}

// DefaultDeadlines returns the default deadlines, with weekends reckoned
// in UTC.
func DefaultDeadlines() Deadlines {
	return Deadlines{
		Emergency: DeadlineEmergencyDefault,
		Urgent:    DeadlineUrgentDefault,
		Soon:      DeadlineSoonDefault,
		Routine:   DeadlineRoutineDefault,
		Location:  time.UTC,
	}
}

// WithDefaults returns d with every zero field set to its default.
func (d Deadlines) WithDefaults() Deadlines {
	def := DefaultDeadlines()
	if d.Emergency == 0 {
		d.Emergency = def.Emergency
	}
	if d.Urgent == 0 {
		d.Urgent = def.Urgent
	}
	if d.Soon == 0 {
		d.Soon = def.Soon
	}
	if d.Routine == 0 {
		d.Routine = def.Routine
	}
	if d.Location == nil {
		d.Location = def.Location
	}
	return d
}

// Validate returns an error naming the first duration that is not
// positive.
func (d Deadlines) Validate() error {
	for _, f := range []struct {
		name string
		v    time.Duration
	}{{"Emergency", d.Emergency}, {"Urgent", d.Urgent}, {"Soon", d.Soon}, {"Routine", d.Routine}} {
		if f.v <= 0 {
			return fmt.Errorf("referral: Deadlines.%s must be positive, got %s", f.name, f.v)
		}
	}
	return nil
}

// For returns the deadline and the reminder time of an offer made at from
// to a referral of this urgency (routine, soon, urgent, emergency; any
// other value counts as routine). Zero fields of d take their defaults.
func (d Deadlines) For(urgency string, from time.Time) (deadline, reminder time.Time) {
	d = d.WithDefaults()
	dur, working := d.duration(urgency)
	if !working {
		return from.Add(dur), from.Add(dur / 2)
	}
	return addWorking(from, dur, d.Location), addWorking(from, dur/2, d.Location)
}

// ForReferral is [Deadlines.For] for the referral's urgency, shortened to
// the response time the referrer asked for (State.ResponseHours, elapsed
// hours) when that is sooner. The reminder is half way.
func (d Deadlines) ForReferral(s State, from time.Time) (deadline, reminder time.Time) {
	deadline, reminder = d.For(s.Profile.Urgency, from)
	if s.ResponseHours > 0 {
		if c := from.Add(time.Duration(s.ResponseHours) * time.Hour); c.Before(deadline) {
			deadline = c
			reminder = d.Reminder(s.Profile.Urgency, from, deadline)
		}
	}
	return deadline, reminder
}

// Reminder returns the time half way from from to deadline: half of the
// working time between them for soon and routine (when there is any),
// half of the elapsed time otherwise. For the deadline of
// [Deadlines.For] it is For's reminder.
func (d Deadlines) Reminder(urgency string, from, deadline time.Time) time.Time {
	d = d.WithDefaults()
	if _, working := d.duration(urgency); working {
		if w := workingBetween(from, deadline, d.Location); w > 0 {
			return addWorking(from, w/2, d.Location)
		}
	}
	return from.Add(deadline.Sub(from) / 2)
}

// duration returns the deadline of urgency and whether it is working time.
func (d Deadlines) duration(urgency string) (time.Duration, bool) {
	switch urgency {
	case events.UrgencyEmergency:
		return d.Emergency, false
	case events.UrgencyUrgent:
		return d.Urgent, false
	case events.UrgencySoon:
		return d.Soon, true
	}
	return d.Routine, true
}

func isWeekend(t time.Time) bool {
	wd := t.Weekday()
	return wd == time.Saturday || wd == time.Sunday
}

// nextMidnight returns the start of the day after t's, in t's location.
func nextMidnight(t time.Time) time.Time {
	y, m, day := t.Date()
	return time.Date(y, m, day+1, 0, 0, 0, 0, t.Location())
}

// addWorking returns the instant when dur of working time (Monday to
// Friday in loc) has passed since from, in from's location.
func addWorking(from time.Time, dur time.Duration, loc *time.Location) time.Time {
	t := from.In(loc)
	for {
		next := nextMidnight(t)
		if isWeekend(t) {
			t = next
			continue
		}
		avail := next.Sub(t)
		if dur <= avail {
			return t.Add(dur).In(from.Location())
		}
		dur -= avail
		t = next
	}
}

// workingBetween returns the working time (Monday to Friday in loc)
// between from and to.
func workingBetween(from, to time.Time, loc *time.Location) time.Duration {
	var sum time.Duration
	for t := from.In(loc); t.Before(to); {
		end := nextMidnight(t)
		if to.Before(end) {
			end = to
		}
		if !isWeekend(t) {
			sum += end.Sub(t)
		}
		t = end
	}
	return sum
}
