package routing_test

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/invictus-network/invictus/directory"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/referral"
	"github.com/invictus-network/invictus/routing"
)

// exampleDirectory is a referrer and two organisations offering
// emotional support everywhere in Portugal.
func exampleDirectory() *directory.Directory {
	d := &directory.Directory{}
	for _, o := range []struct{ id, need string }{{"pt.ref", events.NeedInfoCase}, {"pt.a1", events.NeedSupportEmotional}, {"pt.a2", events.NeedSupportEmotional}} {
		d.Organisations = append(d.Organisations, directory.Organisation{ID: o.id, Name: o.id, Country: "pt", Synthetic: true})
		d.Services = append(d.Services, directory.Service{
			ID: o.id + ".support", Organisation: o.id, Name: "Support", Needs: []string{o.need},
			Languages: []string{"pt"}, Channels: []string{events.ChannelPhone},
			Area:     directory.ServiceArea{Countries: []string{"pt"}, Remote: true},
			Hours:    directory.Schedule{TimeZone: "Europe/Lisbon", Always: true},
			Capacity: directory.Capacity{Status: "accepting"},
		})
	}
	return d
}

// A referral.requested command is planned, offered to the best candidate
// and appended to the log in one go; each event says who receives it. An
// organisation answering an offer made to another is rejected.
func ExampleService_Handle() {
	now := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	log := newMemLog() // any routing.EventLog: natsjs.Bus in production
	view := directory.NewView()
	view.Load(exampleDirectory(), 1)
	svc, err := routing.NewService(log, view, routing.NewMatcher(routing.Config{}),
		routing.ServiceConfig{Now: func() time.Time { return now }})
	if err != nil {
		panic(err)
	}

	id := "0195b9d2-7c1e-7000-8000-000000000001"
	ev, err := events.New(events.SourceOf("pt.ref"), id, svcRequest(events.NeedSupportEmotional), events.WithID("cmd-1"), events.WithTime(now))
	if err != nil {
		panic(err)
	}
	cmd, _ := events.DecodeEvent(ev)
	if err := svc.Handle(context.Background(), cmd, referral.Actor{Org: "pt.ref"}); err != nil {
		panic(err)
	}
	for _, o := range log.outgoing() {
		line := fmt.Sprintf("%s to %v", strings.TrimPrefix(o.Event.Type(), "invictus."), o.Recipients)
		if o.Timer != nil {
			line += fmt.Sprintf(", reminder %s, deadline %s", o.Timer.Remind.Format(time.Kitchen), o.Timer.Deadline.Format(time.Kitchen))
		}
		fmt.Println(line)
	}

	// pt.a2 was not offered the placement: it is no party, and is told
	// what it would be told of a referral that does not exist.
	st, _ := svc.State(context.Background(), id)
	ev, _ = events.New(events.SourceOf("pt.a2"), id, &events.Accepted{Placement: st.Placements[0].ID})
	accept, _ := events.DecodeEvent(ev)
	err = svc.Handle(context.Background(), accept, referral.Actor{Org: "pt.a2"})
	fmt.Println(err)
	// Output:
	// referral.requested.v1 to []
	// referral.planned.v1 to [pt.ref]
	// referral.offered.v1 to [pt.ref pt.a1], reminder 11:00AM, deadline 12:00PM
	// routing: command rejected: not_found at "/subject": referral "0195b9d2-7c1e-7000-8000-000000000001" does not exist
}
