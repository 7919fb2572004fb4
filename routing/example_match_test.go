package routing_test

import (
	"fmt"
	"strings"

	"github.com/invictus-network/invictus/directory"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/routing"
)

func ExampleMatcher_Match() {
	lisbon := directory.Location{ID: "lisboa", Country: "pt", Region: "PT170", Lat: 38.72, Lon: -9.14}
	d := &directory.Directory{
		Organisations: []directory.Organisation{{ID: "pt.casa", Name: "Casa"}, {ID: "pt.linha", Name: "Linha"}},
		Services: []directory.Service{{
			ID: "pt.casa.abrigo", Organisation: "pt.casa", Status: directory.StatusActive,
			Needs:     []string{events.NeedSafetyShelter, events.NeedSupportEmotional},
			Crimes:    []string{"domestic_violence"},
			Languages: []string{"pt", "en"}, Channels: []string{events.ChannelInPerson},
			Area:     directory.ServiceArea{Countries: []string{"pt"}, Regions: []string{"PT17"}},
			Hours:    directory.Schedule{TimeZone: "Europe/Lisbon", Always: true},
			Capacity: directory.Capacity{Status: events.CapacityAccepting},
		}, {
			ID: "pt.linha.apoio", Organisation: "pt.linha", Status: directory.StatusActive,
			Needs:     []string{events.NeedSupportEmotional, events.NeedJusticeLegalAid},
			Languages: []string{"pt"}, Channels: []string{events.ChannelInPerson, events.ChannelPhone},
			Area:      directory.ServiceArea{Countries: []string{"pt"}, Regions: []string{"PT17"}},
			Locations: []directory.Location{lisbon},
			Hours:     directory.Schedule{TimeZone: "Europe/Lisbon", Always: true},
			Capacity:  directory.Capacity{Status: events.CapacityWaitlist},
		}},
	}
	lat, lon := 38.74, -9.15
	profile := events.Profile{
		Needs:     []string{events.NeedSafetyShelter, events.NeedSupportEmotional, events.NeedJusticeLegalAid},
		Crimes:    []string{"domestic_violence"},
		Urgency:   events.UrgencyUrgent,
		Location:  events.Location{Country: "pt", Region: "PT170", Lat: &lat, Lon: &lon},
		Languages: []string{"pt"}, AgeBand: "adult",
		Channels: []string{events.ChannelInPerson, events.ChannelPhone},
	}

	m := routing.NewMatcher(routing.Config{})
	plan, err := m.Match(directory.NewIndex(d, 17), profile)
	if err != nil {
		panic(err)
	}
	for _, g := range plan.Groups {
		fmt.Println(g.Placement, strings.Join(g.Needs, " + "))
		for _, c := range g.Candidates {
			fmt.Printf("  %s %.2f: %s\n", c.Service, c.Score, strings.Join(c.Reasons, "; "))
		}
	}
	fmt.Println("planned at revision", plan.Event().DirectoryRevision)
	// Output:
	// p1 safety.shelter + support.emotional
	//   pt.casa.abrigo 0.80: covers safety.shelter and support.emotional; does not offer justice.legal_aid; specialised in domestic_violence; speaks pt; no location listed; channels: in_person; accepting; 24/7
	// p2 justice.legal_aid
	//   pt.linha.apoio 0.69: covers justice.legal_aid; also offers support.emotional; does not offer safety.shelter; speaks pt; 2.4 km; channels: in_person, phone; waiting list; 24/7
	// planned at revision 17
}
