package routing_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/invictus-network/invictus/directory"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/internal/testenv"
	"github.com/invictus-network/invictus/referral"
	"github.com/invictus-network/invictus/routing"
	"github.com/invictus-network/invictus/seal"
)

// memLog is an in-memory routing.EventLog with the semantics of the
// JetStream one: one subject per referral, appends all-or-none with an
// expected last sequence, events deduplicated by id. It is the second
// implementation of the port, used where a test needs to step in between
// a load and an append; the JetStream one is tested end to end in
// adapters/natsjs.
type memLog struct {
	mu       sync.Mutex
	seq      uint64
	subjects map[string][]memStored
	ids      map[string]bool
	appends  []routing.Append
	// beforeAppend, if set, runs before each append with the lock not held.
	beforeAppend func(a routing.Append)
	// crashAfter, if positive, makes the next append store only its first
	// crashAfter events and fail, as a crash half way through a chain does.
	crashAfter int
}

type memStored struct {
	seq uint64
	env *events.Envelope
}

func newMemLog() *memLog {
	return &memLog{subjects: map[string][]memStored{}, ids: map[string]bool{}}
}

func (l *memLog) subjectOf(id string) string {
	for s := range l.subjects {
		if strings.HasSuffix(s, "."+id) {
			return s
		}
	}
	return ""
}

func (l *memLog) Load(_ context.Context, id string, after uint64) (routing.History, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	h := routing.History{Subject: l.subjectOf(id), Last: after}
	for _, s := range l.subjects[h.Subject] {
		h.Last = s.seq
		if s.seq > after {
			h.Events = append(h.Events, s.env)
		}
	}
	return h, nil
}

func (l *memLog) Append(_ context.Context, a routing.Append) (uint64, error) {
	if l.beforeAppend != nil {
		l.beforeAppend(a)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var last uint64
	subject := l.subjectOf(a.ReferralID)
	if subject != "" && subject != a.Subject {
		return 0, fmt.Errorf("%w: referral lives on %s", routing.ErrConflict, subject)
	}
	if ss := l.subjects[a.Subject]; len(ss) > 0 {
		last = ss[len(ss)-1].seq
	}
	if last != a.Expected {
		return 0, fmt.Errorf("%w: last %d, expected %d", routing.ErrConflict, last, a.Expected)
	}
	envs := make([]*events.Envelope, len(a.Events))
	for i, o := range a.Events {
		if l.ids[o.Event.ID()] {
			return 0, fmt.Errorf("%w: %s", routing.ErrDuplicate, o.Event.ID())
		}
		env, err := events.DecodeEvent(o.Event)
		if err != nil {
			return 0, err
		}
		envs[i] = env
	}
	if l.crashAfter > 0 && l.crashAfter < len(envs) {
		envs = envs[:l.crashAfter]
		defer func() { l.crashAfter = 0 }()
		for _, env := range envs {
			l.seq++
			l.ids[env.Event.ID()] = true
			l.subjects[a.Subject] = append(l.subjects[a.Subject], memStored{seq: l.seq, env: env})
		}
		return 0, fmt.Errorf("%w: crashed after %d events", routing.ErrUnavailable, len(envs))
	}
	for _, env := range envs {
		l.seq++
		l.ids[env.Event.ID()] = true
		l.subjects[a.Subject] = append(l.subjects[a.Subject], memStored{seq: l.seq, env: env})
	}
	l.appends = append(l.appends, a)
	return l.seq, nil
}

// types returns the event types stored for a referral, in order.
func (l *memLog) types(id string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, s := range l.subjects[l.subjectOf(id)] {
		out = append(out, strings.TrimSuffix(strings.TrimPrefix(s.env.Event.Type(), "invictus.referral."), ".v1"))
	}
	return out
}

// outgoing returns every event appended so far with its dispatch data.
func (l *memLog) outgoing() []routing.Outgoing {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []routing.Outgoing
	for _, a := range l.appends {
		out = append(out, a.Events...)
	}
	return out
}

// svcOrg describes a test organisation with one service.
type svcOrg = testenv.Org

// svcRequest returns a referral.requested payload for needs.
func svcRequest(needs ...string) *events.Requested {
	return testenv.Request(time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC), needs...)
}

// svcBundle is what a service test needs.
type svcBundle struct {
	log  *memLog
	svc  *routing.Service
	view *directory.View
	keys map[string]seal.Key
	now  time.Time
	mu   sync.Mutex
}

func (b *svcBundle) clock() time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.now
}

func (b *svcBundle) advance(d time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.now = b.now.Add(d)
}

// newService returns another service on the same log and directory (a
// second instance, with its own cache).
func (b *svcBundle) newService(t testing.TB) *routing.Service {
	t.Helper()
	svc, err := routing.NewService(b.log, b.view, routing.NewMatcher(routing.Config{}), routing.ServiceConfig{Now: b.clock})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

func svcSetup(t testing.TB, orgs ...svcOrg) *svcBundle {
	t.Helper()
	if len(orgs) == 0 {
		needs := []string{events.NeedSupportEmotional, events.NeedInfoRights}
		orgs = []svcOrg{{ID: "pt.ref", Needs: []string{events.NeedInfoCase}}, {ID: "pt.a1", Needs: needs}, {ID: "pt.a2", Needs: needs}, {ID: "pt.a3", Needs: needs}}
	}
	b := &svcBundle{log: newMemLog(), view: directory.NewView(), keys: map[string]seal.Key{},
		now: time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)}
	b.view.Load(testenv.Directory(t, orgs, b.keys), 1)
	b.svc = b.newService(t)
	return b
}

// command builds a command of org about referral id.
func command(t testing.TB, org, id string, p events.Payload) *events.Envelope {
	t.Helper()
	ev, err := events.New(events.SourceOf(org), id, p)
	if err != nil {
		t.Fatalf("build %s: %v", p.EventType(), err)
	}
	env, err := events.DecodeEvent(ev)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// handle sends a command of org and fails the test on an error.
func (b *svcBundle) handle(t testing.TB, org, id string, p events.Payload) *events.Envelope {
	t.Helper()
	env := command(t, org, id, p)
	if err := b.svc.Handle(context.Background(), env, referral.Actor{Org: org}); err != nil {
		t.Fatalf("handle %s from %s: %v", p.EventType(), org, err)
	}
	return env
}

// state returns the referral's state as a fresh fold of the log.
func (b *svcBundle) state(t testing.TB, id string) referral.State {
	t.Helper()
	st, err := b.newService(t).State(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// offerOf returns the open offer of the referral's only placement.
func offerOf(t testing.TB, st referral.State, placement int) (string, referral.Offer) {
	t.Helper()
	if len(st.Placements) <= placement {
		t.Fatalf("referral %s has %d placements", st.ID, len(st.Placements))
	}
	p := st.Placements[placement]
	if p.Status != referral.PlacementOffered {
		t.Fatalf("placement %s is %s, not offered", p.ID, p.Status)
	}
	return p.ID, p.Offer
}

func equalTypes(got []string, want ...string) bool { return slices.Equal(got, want) }
