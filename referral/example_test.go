package referral_test

import (
	"fmt"
	"time"

	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/referral"
)

// Example shows how the routing service uses the state machine: decide
// each command, append what the decision says, fold it into the state,
// and deliver each event to its recipients.
func Example() {
	const id = "01956a2e-7c00-7000-8000-0000000000aa"
	now := time.Date(2025, time.March, 3, 9, 0, 0, 0, time.UTC)
	deadlines := referral.DefaultDeadlines()
	var s referral.State
	n := 0

	// record appends one event: here, folds it into s and prints who
	// receives it.
	record := func(source string, p events.Payload, e *events.Envelope) {
		if e == nil {
			n++
			ev, err := events.New(source, id, p, events.WithID(fmt.Sprintf("ex-%d", n)), events.WithTime(now))
			if err != nil {
				panic(err)
			}
			e = &events.Envelope{Event: ev, Payload: p}
		}
		fmt.Println(e.Event.Type(), "→", referral.Recipients(s, p))
		next, err := referral.Apply(s, e)
		if err != nil {
			panic(err)
		}
		s = next
	}
	// command runs an organisation's command through Decide.
	command := func(org string, p events.Payload) {
		n++
		ev, err := events.New(events.SourceOf(org), id, p, events.WithID(fmt.Sprintf("ex-%d", n)), events.WithTime(now))
		if err != nil {
			panic(err)
		}
		cmd := &events.Envelope{Event: ev, Payload: p}
		dec, err := referral.Decide(s, cmd, referral.Actor{Org: org}, now, deadlines)
		if err != nil {
			fmt.Println("rejected:", referral.CodeOf(err))
			return
		}
		if dec.Record {
			record("", p, cmd)
		}
		for _, e := range dec.Events {
			record(events.SourceRouting, e, nil)
		}
	}

	command("pt.apav", requested(true))
	// The routing service plans (the matcher is not in this package).
	record(events.SourceRouting, &events.Planned{Groups: []events.PlanGroup{group("p1", bothNeeds, "pt.shelter-lx", "pt.legal-aid")}}, nil)
	for _, e := range referral.OffersAfterPlan(s, now, deadlines) {
		record(events.SourceRouting, e, nil)
	}
	command("pt.legal-aid", &events.Accepted{Placement: "p1"}) // not offered yet: no party, so told "not found"
	command("pt.shelter-lx", &events.Declined{Placement: "p1", Reason: "capacity"})
	command("pt.legal-aid", &events.Accepted{Placement: "p1"})
	command("pt.apav", handover("p1"))
	command("pt.legal-aid", &events.Completed{Placement: "p1", Outcome: "supported"})
	fmt.Println(s.Status)
	// Output:
	// invictus.referral.requested.v1 → []
	// invictus.referral.planned.v1 → [pt.apav]
	// invictus.referral.offered.v1 → [pt.apav pt.shelter-lx]
	// rejected: not_found
	// invictus.referral.declined.v1 → [pt.apav pt.shelter-lx]
	// invictus.referral.offered.v1 → [pt.apav pt.legal-aid]
	// invictus.referral.accepted.v1 → [pt.apav pt.legal-aid]
	// invictus.referral.handover.v1 → [pt.legal-aid]
	// invictus.referral.completed.v1 → [pt.apav pt.legal-aid]
	// completed
}

func ExampleDeadlines_For() {
	d := referral.DefaultDeadlines()
	friday := time.Date(2025, time.March, 7, 15, 0, 0, 0, time.UTC)
	deadline, reminder := d.For(events.UrgencySoon, friday)
	fmt.Println(deadline.Format(time.RFC1123), "|", reminder.Format(time.RFC1123))
	deadline, reminder = d.For(events.UrgencyEmergency, friday)
	fmt.Println(deadline.Format(time.Kitchen), "|", reminder.Format(time.Kitchen))
	// Output:
	// Mon, 10 Mar 2025 15:00:00 UTC | Mon, 10 Mar 2025 03:00:00 UTC
	// 3:15PM | 3:07PM
}
