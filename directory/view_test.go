package directory_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/invictus-network/invictus/directory"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/internal/testenv"
)

func TestParseKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		key, kind, id string
		ok            bool
	}{
		{directory.OrgKey("pt.apav"), directory.KindOrganisation, "pt.apav", true},
		{directory.ServiceKey("pt.apav.helpline"), directory.KindService, "pt.apav.helpline", true},
		{"org.pt.apav.helpline", "", "", false}, // a service id under org.
		{"svc.pt.apav", "", "", false},          // an org id under svc.
		{"org.xx.apav", "", "", false},          // unknown country
		{"foo.pt.apav", "", "", false},
		{"org", "", "", false},
	}
	for _, tt := range tests {
		kind, id, ok := directory.ParseKey(tt.key)
		if ok != tt.ok || (ok && (kind != tt.kind || id != tt.id)) {
			t.Errorf("ParseKey(%q) = %q %q %v, want %q %q %v", tt.key, kind, id, ok, tt.kind, tt.id, tt.ok)
		}
	}
}

func TestViewApplyAndRevision(t *testing.T) {
	t.Parallel()
	v := directory.NewView()
	if v.Revision() != 0 || v.Snapshot().Len() != 0 {
		t.Fatalf("new view: revision %d, %d services", v.Revision(), v.Snapshot().Len())
	}
	v.Load(handDirectory(), 5)
	first := v.Snapshot()
	if v.Revision() != 5 || v.Service("pt.org.porto") == nil || v.Organisation("pt.org") == nil {
		t.Fatalf("after Load: revision %d", v.Revision())
	}

	s := *v.Service("pt.org.porto")
	s.Capacity.Status = events.CapacityWaitlist
	v.Apply(directory.Change{Key: directory.ServiceKey(s.ID), Revision: 6, Service: &s})
	if v.Revision() != 6 || v.Service("pt.org.porto").Capacity.Status != events.CapacityWaitlist {
		t.Fatalf("after Apply: revision %d, capacity %q", v.Revision(), v.Service("pt.org.porto").Capacity.Status)
	}
	if first.ServiceByID("pt.org.porto").Capacity.Status != events.CapacityAccepting || first.Revision() != 5 {
		t.Error("an earlier snapshot changed")
	}

	// A replayed (older) change is skipped.
	old := s
	old.Capacity.Status = events.CapacityFull
	v.Apply(directory.Change{Key: directory.ServiceKey(s.ID), Revision: 6, Service: &old})
	if v.Service("pt.org.porto").Capacity.Status != events.CapacityWaitlist {
		t.Error("a replayed change was applied")
	}

	v.Apply(directory.Change{Key: directory.OrgKey("fr.fv"), Revision: 9, Deleted: true})
	if v.Organisation("fr.fv") != nil || v.Revision() != 9 {
		t.Errorf("organisation deletion: revision %d", v.Revision())
	}
}

func TestViewWaitRevision(t *testing.T) {
	t.Parallel()
	v := directory.NewView()
	ctx := testenv.Context(t)

	done := make(chan error, 1)
	go func() { done <- v.WaitRevision(ctx, 3) }()
	for rev := uint64(1); rev <= 3; rev++ {
		s := svc(fmt.Sprintf("s%d", rev), events.NeedInfoRights)
		s.Area.Regions = []string{"PT"}
		v.Apply(directory.Change{Key: directory.ServiceKey(s.ID), Revision: rev, Service: &s})
	}
	if err := <-done; err != nil {
		t.Fatalf("WaitRevision(3): %v", err)
	}
	if err := v.WaitRevision(ctx, 2); err != nil {
		t.Fatalf("WaitRevision of a past revision: %v", err)
	}

	short, cancelShort := context.WithCancel(ctx)
	cancelShort()
	if err := v.WaitRevision(short, 4); !errors.Is(err, context.Canceled) {
		t.Fatalf("WaitRevision with an ended context = %v, want context.Canceled", err)
	}
}

// TestViewReadersSeeConsistentSnapshots runs readers against a writer:
// every snapshot a reader takes answers the same as the brute force on
// that snapshot, whatever the writer does meanwhile (run with -race).
func TestViewReadersSeeConsistentSnapshots(t *testing.T) {
	t.Parallel()
	v := directory.NewView()
	v.Load(handDirectory(), 1)
	q := directory.Query{Needs: []string{events.NeedInfoRights}, Country: "pt"}

	const writes = 300
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			var dst []int32
			for {
				select {
				case <-stop:
					return
				default:
				}
				x := v.Snapshot()
				dst = x.Candidates(q, dst[:0])
				if want := brute(x, q); !slices.Equal(dst, want) {
					errs <- fmt.Errorf("revision %d: %d candidates, brute force %d", x.Revision(), len(dst), len(want))
					return
				}
			}
		})
	}
	for rev := uint64(2); rev < writes+2; rev++ {
		s := svc(fmt.Sprintf("w%04d", rev%50), events.NeedInfoRights)
		s.Area.Regions = []string{"PT"}
		ch := directory.Change{Key: directory.ServiceKey(s.ID), Revision: rev, Service: &s}
		if rev%3 == 0 {
			ch = directory.Change{Key: ch.Key, Revision: rev, Deleted: true}
		}
		v.Apply(ch)
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if v.Revision() != writes+1 {
		t.Errorf("Revision = %d, want %d", v.Revision(), writes+1)
	}
	v.Compact()
	if v.Snapshot().Pending() != 0 || v.Revision() != writes+1 {
		t.Errorf("after Compact: Pending %d, Revision %d", v.Snapshot().Pending(), v.Revision())
	}
}
