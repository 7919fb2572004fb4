package natsjs_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/invictus-network/invictus/adapters/natsjs"
	"github.com/invictus-network/invictus/directory"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/internal/testenv"
)

// dirBundle is what the directory store tests need: a server with the
// streams and bucket, a writer on an in-process connection and a second,
// independent TCP connection as another process would have.
type dirBundle struct {
	srv    *natsjs.Server
	store  *natsjs.DirectoryStore
	other  *nats.Conn // a separate TCP connection, as another process
	otherJ jetstream.JetStream
}

func dirSetup(t *testing.T) dirBundle {
	t.Helper()
	ctx := dirContext(t)
	srv, err := natsjs.StartServer(ctx, natsjs.ServerConfig{StoreDir: t.TempDir(), Listen: "127.0.0.1:0"}, nil)
	if err != nil {
		t.Fatalf("StartServer: %v", err)
	}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), time.Minute) // against a hang only
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	nc, err := srv.Connect(ctx, nats.Name("writer"))
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(time.Minute))
	if err != nil {
		t.Fatalf("jetstream.New: %v", err)
	}
	if err := natsjs.EnsureStreams(ctx, js, natsjs.StreamsConfig{}); err != nil {
		t.Fatalf("EnsureStreams: %v", err)
	}
	store, err := natsjs.NewDirectoryStore(ctx, js, natsjs.DirectoryStoreConfig{})
	if err != nil {
		t.Fatalf("NewDirectoryStore: %v", err)
	}
	other, err := nats.Connect(srv.ClientURL(), nats.Name("follower"))
	if err != nil {
		t.Fatalf("connect over TCP: %v", err)
	}
	t.Cleanup(other.Close)
	otherJ, err := jetstream.New(other, jetstream.WithDefaultTimeout(time.Minute))
	if err != nil {
		t.Fatalf("jetstream.New: %v", err)
	}
	return dirBundle{srv: srv, store: store, other: other, otherJ: otherJ}
}

// dirContext returns the test's context (see testenv.Context).
func dirContext(t *testing.T) context.Context {
	t.Helper()
	return testenv.Context(t)
}

func testOrg(id string) *directory.Organisation {
	return &directory.Organisation{ID: id, Name: "Org " + id, Country: id[:2], Type: directory.OrgTypeNGO}
}

func testService(orgID, slug string) *directory.Service {
	cc := orgID[:2]
	return &directory.Service{
		ID: orgID + "." + slug, Organisation: orgID, Name: "Service " + slug, Status: directory.StatusActive,
		Needs: []string{events.NeedInfoRights, events.NeedSupportEmotional}, Languages: []string{"pt", "en"},
		Channels: []string{events.ChannelInPerson, events.ChannelPhone},
		Area:     directory.ServiceArea{Countries: []string{cc}, Regions: []string{events.NUTSCountry(cc)}},
		Hours:    directory.Schedule{TimeZone: "Europe/Lisbon", Always: true},
		Capacity: directory.Capacity{Status: events.CapacityAccepting},
	}
}

// startFollower runs a follower of the bucket on js's connection into a
// new view and waits for its initial load.
func startFollower(t *testing.T, ctx context.Context, js jetstream.JetStream) *directory.View {
	t.Helper()
	kv, err := js.KeyValue(ctx, natsjs.BucketDirectory)
	if err != nil {
		t.Fatalf("KeyValue: %v", err)
	}
	view := directory.NewView()
	f := natsjs.NewDirectoryFollower(kv, view, nil)
	fctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- f.Run(fctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("follower Run: %v", err)
		}
	})
	select {
	case <-f.Ready():
	case err := <-done:
		t.Fatalf("follower stopped before its initial load: %v", err)
	case <-ctx.Done():
		t.Fatal("follower not ready")
	}
	return view
}

func TestDirectoryStoreCompareAndSet(t *testing.T) {
	t.Parallel()
	b := dirSetup(t)
	ctx := dirContext(t)
	s := b.store

	org := testOrg("pt.apav")
	rev1, err := s.PutOrganisation(ctx, org, 0)
	if err != nil || rev1 == 0 {
		t.Fatalf("create: rev %d, %v", rev1, err)
	}
	if _, err := s.PutOrganisation(ctx, org, 0); !errors.Is(err, directory.ErrConflict) {
		t.Fatalf("second create = %v, want ErrConflict", err)
	}
	org.Name = "APAV"
	rev2, err := s.PutOrganisation(ctx, org, rev1)
	if err != nil || rev2 <= rev1 {
		t.Fatalf("update: rev %d, %v", rev2, err)
	}
	org.Name = "stale"
	if _, err := s.PutOrganisation(ctx, org, rev1); !errors.Is(err, directory.ErrConflict) {
		t.Fatalf("stale update = %v, want ErrConflict", err)
	}
	got, rev, err := s.GetOrganisation(ctx, "pt.apav")
	if err != nil || rev != rev2 || got.Name != "APAV" {
		t.Fatalf("Get = %+v rev %d %v; want APAV at %d (the stale write must not land)", got, rev, err, rev2)
	}

	// The stored value is versioned JSON.
	kv, err := b.otherJ.KeyValue(ctx, natsjs.BucketDirectory)
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(ctx, "org.pt.apav")
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(e.Value(), &raw); err != nil || raw["version"] != float64(directory.ModelVersion) {
		t.Fatalf("stored value %s: version %v, want %d", e.Value(), raw["version"], directory.ModelVersion)
	}

	// Invalid records and unknown organisations are refused.
	if _, err := s.PutOrganisation(ctx, &directory.Organisation{ID: "pt.BAD"}, 0); !errors.Is(err, directory.ErrInvalid) {
		t.Errorf("invalid organisation = %v, want ErrInvalid", err)
	}
	orphan := testService("pt.nobody", "line")
	var ve *directory.ValidationError
	if _, err := s.PutService(ctx, orphan, 0); !errors.As(err, &ve) || ve.Problems[0].Code != directory.CodeUnknownReference {
		t.Errorf("service of a missing organisation = %v, want %s", err, directory.CodeUnknownReference)
	}

	sv := testService("pt.apav", "helpline")
	srev, err := s.PutService(ctx, sv, 0)
	if err != nil {
		t.Fatalf("PutService: %v", err)
	}
	if _, _, err := s.GetService(ctx, "pt.apav.nope"); !errors.Is(err, directory.ErrNotFound) {
		t.Errorf("Get of a missing service = %v, want ErrNotFound", err)
	}
	if err := s.DeleteService(ctx, sv.ID, srev+100); !errors.Is(err, directory.ErrConflict) {
		t.Errorf("delete with a wrong revision = %v, want ErrConflict", err)
	}
	if err := s.DeleteService(ctx, sv.ID, 0); !errors.Is(err, directory.ErrInvalid) {
		t.Errorf("delete without a revision = %v, want ErrInvalid", err)
	}
	if err := s.DeleteService(ctx, sv.ID, srev); err != nil {
		t.Fatalf("DeleteService: %v", err)
	}
	if _, _, err := s.GetService(ctx, sv.ID); !errors.Is(err, directory.ErrNotFound) {
		t.Errorf("Get after delete = %v, want ErrNotFound", err)
	}
	// A deleted key can be created again.
	if _, err := s.PutService(ctx, sv, 0); err != nil {
		t.Errorf("re-create after delete: %v", err)
	}

	// Deleting an organisation checks its revision first, then removes its
	// services.
	if err := s.DeleteOrganisation(ctx, "pt.apav", rev1); !errors.Is(err, directory.ErrConflict) {
		t.Errorf("stale organisation delete = %v, want ErrConflict", err)
	}
	if _, _, err := s.GetService(ctx, sv.ID); err != nil {
		t.Errorf("a stale organisation delete removed a service: %v", err)
	}
	if err := s.DeleteOrganisation(ctx, "pt.apav", rev2); err != nil {
		t.Fatalf("DeleteOrganisation: %v", err)
	}
	d, _, err := s.Load(ctx)
	if err != nil || len(d.Organisations)+len(d.Services) != 0 {
		t.Fatalf("Load after deleting everything: %+v %v", d, err)
	}
}

// TestDirectoryConcurrentUpdates races writers with one expected revision:
// exactly one wins, every other gets ErrConflict. SetCapacity, which
// retries, lets every writer through.
func TestDirectoryConcurrentUpdates(t *testing.T) {
	t.Parallel()
	b := dirSetup(t)
	ctx := dirContext(t)
	if _, err := b.store.PutOrganisation(ctx, testOrg("pt.apav"), 0); err != nil {
		t.Fatal(err)
	}
	sv := testService("pt.apav", "helpline")
	rev, err := b.store.PutService(ctx, sv, 0)
	if err != nil {
		t.Fatal(err)
	}

	const writers = 8
	var wg sync.WaitGroup
	errs := make([]error, writers)
	start := make(chan struct{})
	for w := range writers {
		wg.Go(func() {
			mine := *sv
			mine.Description = fmt.Sprintf("written by %d", w)
			<-start
			_, errs[w] = b.store.PutService(ctx, &mine, rev)
		})
	}
	close(start)
	wg.Wait()
	wins, conflicts := 0, 0
	for _, err := range errs {
		switch {
		case err == nil:
			wins++
		case errors.Is(err, directory.ErrConflict):
			conflicts++
		default:
			t.Errorf("unexpected error: %v", err)
		}
	}
	if wins != 1 || conflicts != writers-1 {
		t.Fatalf("%d wins and %d conflicts, want 1 and %d", wins, conflicts, writers-1)
	}

	_, before, err := b.store.GetService(ctx, sv.ID)
	if err != nil {
		t.Fatal(err)
	}
	statuses := []string{events.CapacityFull, events.CapacityWaitlist, events.CapacityAccepting}
	for w := range writers {
		wg.Go(func() {
			if _, err := b.store.SetCapacity(ctx, sv.ID, statuses[w%3]); err != nil {
				t.Errorf("SetCapacity: %v", err)
			}
		})
	}
	wg.Wait()
	got, after, err := b.store.GetService(ctx, sv.ID)
	if err != nil {
		t.Fatal(err)
	}
	// Each SetCapacity wrote once: revisions advanced by exactly writers
	// (the bucket has no other writer).
	if after-before != writers {
		t.Errorf("revision went from %d to %d, want %d writes", before, after, writers)
	}
	if got.Capacity.UpdatedAt.IsZero() {
		t.Error("capacity timestamp not set")
	}
	if _, err := b.store.SetCapacity(ctx, sv.ID, "maybe"); !errors.Is(err, directory.ErrInvalid) {
		t.Errorf("SetCapacity(maybe) = %v, want ErrInvalid", err)
	}
	if _, err := b.store.SetCapacity(ctx, "pt.apav.nope", events.CapacityFull); !errors.Is(err, directory.ErrNotFound) {
		t.Errorf("SetCapacity of a missing service = %v, want ErrNotFound", err)
	}
}

// TestDirectoryChangeVisibleInAnotherView writes on one connection and
// follows the bucket on another (TCP, as another process would): each
// change shows in the follower's view within one second.
func TestDirectoryChangeVisibleInAnotherView(t *testing.T) {
	t.Parallel()
	b := dirSetup(t)
	ctx := dirContext(t)
	// Written before the follower starts: part of its initial load.
	if _, err := b.store.PutOrganisation(ctx, testOrg("pt.apav"), 0); err != nil {
		t.Fatal(err)
	}
	view := startFollower(t, ctx, b.otherJ)
	if view.Organisation("pt.apav") == nil || view.Revision() == 0 {
		t.Fatalf("initial load: revision %d, organisation %v", view.Revision(), view.Organisation("pt.apav"))
	}

	within := func(what string, ok func() bool) {
		t.Helper()
		testenv.Await(t, what+" to be visible in the other view", ok)
	}
	sv := testService("pt.apav", "helpline")
	rev, err := b.store.PutService(ctx, sv, 0)
	if err != nil {
		t.Fatal(err)
	}
	within("a new service", func() bool { return view.Service(sv.ID) != nil })
	if view.Revision() < rev {
		t.Errorf("view revision %d, want at least %d", view.Revision(), rev)
	}
	q := directory.Query{Needs: []string{events.NeedInfoRights}, Country: "pt"}
	if got := view.Snapshot().Candidates(q, nil); len(got) != 1 {
		t.Errorf("the new service is not a candidate: %v", got)
	}

	rev, err = b.store.SetCapacity(ctx, sv.ID, events.CapacityFull)
	if err != nil {
		t.Fatal(err)
	}
	if err := view.WaitRevision(ctx, rev); err != nil {
		t.Fatalf("WaitRevision: %v", err)
	}
	if got := view.Service(sv.ID).Capacity.Status; got != events.CapacityFull {
		t.Errorf("capacity in the other view = %q, want full", got)
	}

	if err := b.store.DeleteService(ctx, sv.ID, rev); err != nil {
		t.Fatal(err)
	}
	within("a deletion", func() bool { return view.Service(sv.ID) == nil })
}

// TestDirectoryEvents checks that every change is announced as a
// directory.* CloudEvent on core NATS, on a subject no stream captures.
func TestDirectoryEvents(t *testing.T) {
	t.Parallel()
	b := dirSetup(t)
	ctx := dirContext(t)
	sub, err := b.other.SubscribeSync(natsjs.SubjectDirectoryEvents)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.other.Flush(); err != nil {
		t.Fatal(err)
	}
	orgRev, err := b.store.PutOrganisation(ctx, testOrg("pt.apav"), 0)
	if err != nil {
		t.Fatal(err)
	}
	sv := testService("pt.apav", "helpline")
	if _, err := b.store.PutService(ctx, sv, 0); err != nil {
		t.Fatal(err)
	}
	capRev, err := b.store.SetCapacity(ctx, sv.ID, events.CapacityWaitlist)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ subject, typ, subj string }{
		{"directory.organisation.pt.apav", events.TypeDirectoryOrgUpdated, "pt.apav"},
		{"directory.service.pt.apav.helpline", events.TypeDirectoryServiceUpdated, sv.ID},
		{"directory.capacity.pt.apav.helpline", events.TypeDirectoryCapacityUpdated, sv.ID},
	}
	for i, w := range want {
		m, err := sub.NextMsg(time.Minute)
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		env, err := events.Decode(events.Message{Subject: m.Subject, Header: map[string][]string(m.Header), Data: m.Data})
		if err != nil {
			t.Fatalf("event %d does not decode: %v", i, err)
		}
		if m.Subject != w.subject || env.Event.Type() != w.typ || env.Event.Subject() != w.subj || env.Event.Source() != events.SourceDirectory {
			t.Errorf("event %d: %s %s %s from %s, want %s %s %s", i, m.Subject, env.Event.Type(), env.Event.Subject(), env.Event.Source(), w.subject, w.typ, w.subj)
		}
		switch p := env.Payload.(type) {
		case *events.OrganisationUpdated:
			if p.Revision != orgRev {
				t.Errorf("organisation event revision %d, want %d", p.Revision, orgRev)
			}
		case *events.CapacityUpdated:
			if p.Status != events.CapacityWaitlist || p.Revision != capRev {
				t.Errorf("capacity event %+v, want waitlist at %d", p, capRev)
			}
		}
	}
	for _, w := range want {
		if _, err := b.otherJ.StreamNameBySubject(ctx, w.subject); !errors.Is(err, jetstream.ErrStreamNotFound) {
			t.Errorf("a stream captures %s (%v); directory events must stay on core NATS", w.subject, err)
		}
	}
}

func TestDirectoryImportAndLoad(t *testing.T) {
	t.Parallel()
	b := dirSetup(t)
	ctx := dirContext(t)
	d := directory.Generate(300, 3)
	total := len(d.Organisations) + len(d.Services)

	var calls, last int
	res, err := b.store.ImportDirectory(ctx, d, func(done, all int) {
		calls++
		if all != total || done != last+1 {
			t.Errorf("progress(%d, %d) after %d, want (%d, %d)", done, all, last, last+1, total)
		}
		last = done
	})
	if err != nil {
		t.Fatalf("ImportDirectory: %v", err)
	}
	if res.Created != total || res.Updated != 0 || calls != total {
		t.Fatalf("first import: %+v with %d progress calls, want %d created", res, calls, total)
	}

	// A follower started now sees everything, at the import's revision.
	view := startFollower(t, ctx, b.otherJ)
	if err := view.WaitRevision(ctx, res.Revision); err != nil {
		t.Fatal(err)
	}
	if got := view.Snapshot().NumServices(); got != len(d.Services) {
		t.Errorf("follower has %d services, want %d", got, len(d.Services))
	}

	loaded, rev, err := b.store.Load(ctx)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if rev != res.Revision || len(loaded.Services) != len(d.Services) || len(loaded.Organisations) != len(d.Organisations) {
		t.Fatalf("Load: %d orgs %d services at %d, want %d %d at %d", len(loaded.Organisations), len(loaded.Services), rev,
			len(d.Organisations), len(d.Services), res.Revision)
	}
	a, _ := json.Marshal(d)
	c, _ := json.Marshal(loaded)
	if string(a) != string(c) {
		t.Error("the loaded directory differs from the imported one")
	}

	// Importing again changes nothing; a changed record is updated.
	d.Services[0].Description = "changed"
	res2, err := b.store.ImportDirectory(ctx, d, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res2.Created != 0 || res2.Updated != 1 || res2.Unchanged != total-1 {
		t.Errorf("second import: %+v, want 1 updated and %d unchanged", res2, total-1)
	}
	if err := view.WaitRevision(ctx, res2.Revision); err != nil {
		t.Fatal(err)
	}
	if got := view.Service(d.Services[0].ID).Description; got != "changed" {
		t.Errorf("follower has description %q after the update", got)
	}

	// An invalid directory writes nothing.
	bad := &directory.Directory{Organisations: []directory.Organisation{*testOrg("pt.new")}, Services: []directory.Service{{ID: "pt.new.x"}}}
	if _, err := b.store.ImportDirectory(ctx, bad, nil); !errors.Is(err, directory.ErrInvalid) {
		t.Fatalf("invalid import = %v, want ErrInvalid", err)
	}
	if _, _, err := b.store.GetOrganisation(ctx, "pt.new"); !errors.Is(err, directory.ErrNotFound) {
		t.Errorf("an invalid import wrote its organisation: %v", err)
	}
}

// TestDirectoryFollowerSkipsBadValues writes values the follower cannot
// use straight into the bucket: it logs and skips them, keeps following,
// and compacts its index once the bucket is quiet.
func TestDirectoryFollowerSkipsBadValues(t *testing.T) {
	t.Parallel()
	b := dirSetup(t)
	ctx := dirContext(t)
	kv, err := b.otherJ.KeyValue(ctx, natsjs.BucketDirectory)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.PutOrganisation(ctx, testOrg("pt.apav"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "svc.pt.apav.garbage", []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	view := startFollower(t, ctx, b.otherJ)
	if view.Service("pt.apav.garbage") != nil || view.Organisation("pt.apav") == nil {
		t.Fatal("initial load kept a bad value or lost a good one")
	}

	sv := testService("pt.apav", "helpline")
	rev, err := b.store.PutService(ctx, sv, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := view.WaitRevision(ctx, rev); err != nil || view.Service(sv.ID) == nil {
		t.Fatalf("good service after a bad value: %v", err)
	}
	// A value from a newer model, and one whose id is not its key's: the
	// service disappears from the view rather than keep a stale value.
	future, _ := json.Marshal(map[string]any{"id": sv.ID, "version": directory.ModelVersion + 1})
	rev, err = kv.Put(ctx, "svc.pt.apav.helpline", future)
	if err != nil {
		t.Fatal(err)
	}
	if err := view.WaitRevision(ctx, rev); err != nil {
		t.Fatal(err)
	}
	if view.Service(sv.ID) != nil {
		t.Error("the view kept a value the bucket replaced with one it cannot read")
	}
	if _, _, err := b.store.GetService(ctx, sv.ID); !errors.Is(err, directory.ErrInvalid) {
		t.Errorf("GetService of a newer version = %v, want ErrInvalid", err)
	}
	other, _ := json.Marshal(testService("pt.apav", "other"))
	if rev, err = kv.Put(ctx, "svc.pt.apav.third", other); err != nil {
		t.Fatal(err)
	}
	if err := view.WaitRevision(ctx, rev); err != nil {
		t.Fatal(err)
	}
	if view.Service("pt.apav.third") != nil || view.Service("pt.apav.other") != nil {
		t.Error("the view took a value stored under another service's key")
	}

	// The changes above sit in the index overlay until the follower
	// compacts it after FollowerCompactAfter of quiet.
	testenv.Await(t, "the index to be compacted", func() bool { return view.Snapshot().Pending() == 0 },
		func() string { return fmt.Sprintf("%d pending", view.Snapshot().Pending()) })
}
