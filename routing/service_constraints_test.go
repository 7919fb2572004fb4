package routing_test

import (
	"testing"

	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/internal/testenv"
	"github.com/invictus-network/invictus/seal"
)

// After a decline the lifecycle offers the next candidate of the plan, so
// the plan alone must keep the hard constraints: the referrer's own
// service and a service that would need the interpreter the victim
// refused are never offered, first or after declines.
func TestDeclinesNeverReachAServiceThatFailsAConstraint(t *testing.T) {
	t.Parallel()
	needs := []string{events.NeedSupportEmotional}
	orgs := []svcOrg{{ID: "pt.a0", Needs: needs}, {ID: "pt.a1", Needs: needs}, {ID: "pt.a2", Needs: needs}, {ID: "pt.a3", Needs: needs}}
	b := svcSetup(t, orgs...)
	d := testenv.Directory(t, orgs, map[string]seal.Key{})
	for i := range d.Services {
		if d.Services[i].Organisation == "pt.a1" {
			// Best on every other count, but speaks French only: it
			// would need an interpreter, which the victim refused.
			d.Services[i].Languages = []string{"fr"}
			d.Services[i].InterpreterAvailable = true
		}
	}
	b.view.Load(d, 2)
	b.svc = b.newService(t)

	id := events.NewReferralID()
	req := svcRequest(events.NeedSupportEmotional) // Portuguese, interpreter_ok false
	b.handle(t, "pt.a0", id, req)
	var offered []string
	for range 3 {
		st := b.state(t, id)
		if len(st.Placements) != 1 {
			t.Fatalf("placements %+v", st.Placements)
		}
		if st.Placements[0].Status != "offered" {
			break
		}
		pl, offer := offerOf(t, st, 0)
		offered = append(offered, offer.Organisation)
		b.handle(t, offer.Organisation, id, &events.Declined{Placement: pl, Reason: "capacity"})
	}
	if len(offered) != 2 || offered[0] != "pt.a2" || offered[1] != "pt.a3" {
		t.Fatalf("offered to %v, want pt.a2 then pt.a3: never the referrer pt.a0 nor pt.a1, which needs the refused interpreter", offered)
	}
	if got := b.log.types(id); got[len(got)-1] != "unmatched" {
		t.Fatalf("after the last decline: %v, want unmatched", got)
	}
}
