package natsjs_test

import (
	"context"
	"testing"
	"time"

	"github.com/invictus-network/invictus/adapters/natsjs"
	"github.com/invictus-network/invictus/directory"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/internal/testenv"
	"github.com/invictus-network/invictus/referral"
)

// listingNet is a network whose routing service reads the directory from
// the KV bucket (as serve does) and applies listing commands to it.
func listingNet(t *testing.T) (*netBundle, *natsjs.DirectoryStore) {
	t.Helper()
	n := newNet(t, time.Minute)
	ctx := context.Background()
	store, err := natsjs.NewDirectoryStore(ctx, n.js, natsjs.DirectoryStoreConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.ImportDirectory(ctx, testenv.Directory(t, orgsLifecycle, n.keys), nil); err != nil {
		t.Fatal(err)
	}
	n.view = directory.NewView()
	f := natsjs.NewDirectoryFollower(store.KeyValue(), n.view, nil)
	fctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- f.Run(fctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("follower: %v", err)
		}
	})
	<-f.Ready()
	n.rtCfg.Listings = store
	n.startRouter()
	return n, store
}

func TestListingCapacityOwnOrganisationTakesEffectInMatching(t *testing.T) {
	n, store := listingNet(t)
	before, _, err := store.GetService(context.Background(), "pt.a1.support")
	if err != nil {
		t.Fatal(err)
	}
	n.send("pt.a1", "pt.a1.support", &events.CapacityUpdated{Service: "pt.a1.support", Status: events.CapacityFull})
	testenv.Await(t, "the view to see pt.a1.support full", func() bool {
		s := n.view.Service("pt.a1.support")
		return s != nil && s.Capacity.Status == events.CapacityFull
	})
	after, _, err := store.GetService(context.Background(), "pt.a1.support")
	if err != nil {
		t.Fatal(err)
	}
	if !after.Capacity.UpdatedAt.After(before.Capacity.UpdatedAt) || !after.UpdatedAt.After(before.UpdatedAt) {
		t.Errorf("capacity/last confirmed not stamped: before %v/%v after %v/%v", before.Capacity.UpdatedAt, before.UpdatedAt, after.Capacity.UpdatedAt, after.UpdatedAt)
	}
	// The matcher no longer offers a full service first: pt.a2 comes first.
	id := events.NewReferralID()
	n.send("pt.ref", id, request(needsA...))
	n.waitState(id, "the first offer to go to pt.a2", offeredTo(0, "pt.a2"))

	// Confirming the organisation and a service stamps updated_at only.
	o0, _, _ := store.GetOrganisation(context.Background(), "pt.a1")
	n.send("pt.a1", "pt.a1", &events.OrganisationUpdated{Organisation: "pt.a1"})
	testenv.Await(t, "pt.a1 to be confirmed", func() bool {
		o := n.view.Organisation("pt.a1")
		return o != nil && o.UpdatedAt.After(o0.UpdatedAt)
	})
	if o := n.view.Organisation("pt.a1"); o.Name != o0.Name || o.AgeRecipient != o0.AgeRecipient {
		t.Errorf("confirming changed the organisation: %+v", o)
	}
}

func TestListingOtherOrganisationRefusedNothingChanges(t *testing.T) {
	n, store := listingNet(t)
	ctx := context.Background()
	_, rev0, err := store.GetService(ctx, "pt.a3.support")
	if err != nil {
		t.Fatal(err)
	}
	_, orgRev0, _ := store.GetOrganisation(ctx, "pt.a3")
	cases := []struct {
		name string
		p    events.Payload
		id   string
		org  string
	}{
		{"capacity of another's service", &events.CapacityUpdated{Service: "pt.a3.support", Status: events.CapacityFull}, "pt.a3.support", "pt.a2"},
		{"confirm another's service", &events.ServiceUpdated{Service: "pt.a3.support"}, "pt.a3.support", "pt.a2"},
		{"edit another's service", serviceContent("pt.a3.support"), "pt.a3.support", "pt.a2"},
		{"confirm another organisation", &events.OrganisationUpdated{Organisation: "pt.a3"}, "pt.a3", "pt.a2"},
		{"delete own service", &events.ServiceUpdated{Service: "pt.a2.support", Deleted: true}, "pt.a2.support", "pt.a2"},
	}
	var ids []string
	for _, c := range cases {
		ids = append(ids, n.send(c.org, c.id, c.p).Event.ID())
	}
	var got map[string]*events.CommandRejected
	testenv.Await(t, "a rejection of each", func() bool {
		got = map[string]*events.CommandRejected{}
		for _, m := range n.read(natsjs.StreamDelivery, "out.pt.a2.>") {
			if m.env != nil {
				if r, ok := m.env.Payload.(*events.CommandRejected); ok {
					got[r.Command] = r
				}
			}
		}
		return len(got) == len(cases)
	})
	for i, c := range cases {
		r := got[ids[i]]
		if r == nil || len(r.Errors) == 0 || r.Errors[0].Code != referral.CodeForbidden {
			t.Errorf("%s: rejection %+v, want forbidden", c.name, r)
		}
	}
	n.consumerIdle(natsjs.StreamInbound, natsjs.ConsumerRouting)
	sv, rev, err := store.GetService(ctx, "pt.a3.support")
	if err != nil {
		t.Fatal(err)
	}
	if rev != rev0 || sv.Capacity.Status != events.CapacityAccepting {
		t.Errorf("pt.a3.support changed: revision %d -> %d, status %s", rev0, rev, sv.Capacity.Status)
	}
	if _, orgRev, _ := store.GetOrganisation(ctx, "pt.a3"); orgRev != orgRev0 {
		t.Errorf("pt.a3 changed: revision %d -> %d", orgRev0, orgRev)
	}
	if _, _, err := store.GetService(ctx, "pt.a2.support"); err != nil {
		t.Errorf("pt.a2.support was deleted: %v", err)
	}
}
