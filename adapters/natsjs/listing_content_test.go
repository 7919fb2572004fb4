package natsjs_test

import (
	"context"
	"slices"
	"testing"

	"github.com/invictus-network/invictus/adapters/natsjs"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/internal/testenv"
	"github.com/invictus-network/invictus/referral"
)

// serviceContent is a directory.service.updated v2 for service id: open on
// weekday mornings, in Portuguese and Ukrainian, by phone, for adults.
func serviceContent(id string) *events.ServiceContent {
	return &events.ServiceContent{
		Service:   id,
		Hours:     events.ServiceHours{TimeZone: "Europe/Lisbon", Weekly: []events.OpeningInterval{{Day: "mo", Opens: "09:00", Closes: "12:00"}, {Day: "we", Opens: "09:00", Closes: "12:00"}}},
		Languages: []string{"pt", "uk"}, Channels: []string{events.ChannelPhone},
		Accessibility: []string{"easy_read"}, AgeBands: []string{"adult"},
		Contact: &events.ServiceContact{Role: "Referral desk", Email: "desk@example.org"},
	}
}

// TestListingContentOwnService: an organisation edits its own service's
// listing content with directory.service.updated v2; the routing service
// writes it to the directory bucket (the rest of the record unchanged),
// and the view follows. Content the directory refuses is rejected as
// invalid, naming the field, and changes nothing.
func TestListingContentOwnService(t *testing.T) {
	n, store := listingNet(t)
	ctx := context.Background()
	before, _, err := store.GetService(ctx, "pt.a1.support")
	if err != nil {
		t.Fatal(err)
	}
	n.send("pt.a1", "pt.a1.support", serviceContent("pt.a1.support"))
	testenv.Await(t, "the view to see the new languages", func() bool {
		s := n.view.Service("pt.a1.support")
		return s != nil && slices.Equal(s.Languages, []string{"pt", "uk"})
	})
	after, _, err := store.GetService(ctx, "pt.a1.support")
	if err != nil {
		t.Fatal(err)
	}
	if len(after.Hours.Weekly) != 2 || after.Hours.Weekly[1].Day != "we" || after.Hours.Always ||
		!slices.Equal(after.Channels, []string{events.ChannelPhone}) || !slices.Equal(after.Eligibility.AgeBands, []string{"adult"}) ||
		after.Contact.Email != "desk@example.org" || !after.UpdatedAt.After(before.UpdatedAt) {
		t.Errorf("stored content: %+v", after)
	}
	if !slices.Equal(after.Needs, before.Needs) || after.Capacity.Status != before.Capacity.Status || after.Name != before.Name {
		t.Errorf("the rest of the record changed: needs %v -> %v, capacity %s -> %s", before.Needs, after.Needs, before.Capacity.Status, after.Capacity.Status)
	}

	// Closing before opening: the directory refuses it, nothing changes.
	_, rev0, _ := store.GetService(ctx, "pt.a1.support")
	bad := serviceContent("pt.a1.support")
	bad.Hours.Weekly[0].Opens, bad.Hours.Weekly[0].Closes = "12:00", "09:00"
	id := n.send("pt.a1", "pt.a1.support", bad).Event.ID()
	var rej *events.CommandRejected
	testenv.Await(t, "the rejection", func() bool {
		for _, m := range n.read(natsjs.StreamDelivery, "out.pt.a1.>") {
			if r, ok := m.env.Payload.(*events.CommandRejected); ok && r.Command == id {
				rej = r
			}
		}
		return rej != nil
	})
	if rej.Errors[0].Code != referral.CodeInvalid || rej.Errors[0].Pointer == "/data" {
		t.Errorf("rejection %+v, want invalid with the field", rej.Errors)
	}
	n.consumerIdle(natsjs.StreamInbound, natsjs.ConsumerRouting)
	if _, rev, _ := store.GetService(ctx, "pt.a1.support"); rev != rev0 {
		t.Errorf("the refused content changed the record: revision %d -> %d", rev0, rev)
	}
}
