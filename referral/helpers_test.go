package referral_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/referral"
)

const (
	refID    = "01956a2e-7c00-7000-8000-000000000001"
	referrer = "pt.referrer"
	orgA     = "pt.alpha"
	orgB     = "pt.bravo"
	orgD     = "pt.delta"
	orgX     = "pt.xray"
	// srcCoordinator is the source a coordinator's command carries.
	srcCoordinator = "/invictus/coordinator"
)

// monday is Monday 3 March 2025, 09:00 UTC.
var monday = time.Date(2025, time.March, 3, 9, 0, 0, 0, time.UTC)

func src(org string) string { return events.SourceOf(org) }

func profile(urgency string, needs ...string) events.Profile {
	if len(needs) == 0 {
		needs = []string{events.NeedSafetyShelter, events.NeedJusticeLegalAid}
	}
	return events.Profile{
		Needs:     needs,
		Crimes:    []string{"domestic_violence"},
		Urgency:   urgency,
		Location:  events.Location{Country: "pt", Region: "PT17"},
		Languages: []string{"pt", "en"},
		AgeBand:   "adult",
		Channels:  []string{events.ChannelInPerson, events.ChannelPhone},
	}
}

func requested(shareData bool, needs ...string) *events.Requested {
	return &events.Requested{
		Profile: profile(events.UrgencyUrgent, needs...),
		Consent: events.Consent{Referral: true, ShareData: shareData, GivenAt: monday.Add(-time.Hour), Method: "verbal", RecordedBy: "staff-s017"},
	}
}

func candidate(org string, covers ...string) events.Candidate {
	return events.Candidate{
		Service:      org + ".main",
		Organisation: org,
		Covers:       covers,
		Score:        0.5,
		Components:   map[string]float64{"needs": 1},
		Reasons:      []string{"covers the needs"},
	}
}

func group(id string, needs []string, orgs ...string) events.PlanGroup {
	g := events.PlanGroup{Placement: id, Needs: needs}
	for _, o := range orgs {
		g.Candidates = append(g.Candidates, candidate(o, needs...))
	}
	return g
}

var bothNeeds = []string{events.NeedSafetyShelter, events.NeedJusticeLegalAid}

// plan1 is a plan of one placement p1 with candidates D, A, B in this order.
func plan1() *events.Planned {
	return &events.Planned{DirectoryRevision: 7, Groups: []events.PlanGroup{group("p1", bothNeeds, orgD, orgA, orgB)}}
}

const recipient = "age1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq"

func handover(placement string) *events.Handover {
	return &events.Handover{Placement: placement, Recipient: recipient, Envelope: events.SamplePayload(events.TypeReferralHandover).(*events.Handover).Envelope}
}

func feedback(placement string) *events.Feedback {
	return &events.Feedback{Placement: placement, Answers: []events.Answer{{Question: "helpful", Value: 5}}}
}

// harness drives one referral through Decide, Apply and the timer
// functions, keeping its log as a routing service would.
type harness struct {
	t   testing.TB
	s   referral.State
	log []*events.Envelope
	now time.Time
	seq int
	d   referral.Deadlines
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	return &harness{t: t, now: monday, d: referral.DefaultDeadlines()}
}

func (h *harness) clone() *harness {
	c := *h
	c.log = append([]*events.Envelope(nil), h.log...)
	return &c
}

func (h *harness) nextID() string {
	h.seq++
	return fmt.Sprintf("evt-%04d", h.seq)
}

// envelope builds a valid event with events.New, so every payload the
// tests and the state machine produce also passes the contract.
func (h *harness) envelope(source string, p events.Payload, opts ...events.Option) *events.Envelope {
	h.t.Helper()
	opts = append([]events.Option{events.WithID(h.nextID()), events.WithTime(h.now)}, opts...)
	e, err := events.New(source, refID, p, opts...)
	if err != nil {
		h.t.Fatalf("events.New(%s, %T): %v", source, p, err)
	}
	return &events.Envelope{Event: e, Payload: p}
}

// apply applies env and appends it to the log; the test fails on error.
func (h *harness) apply(env *events.Envelope) {
	h.t.Helper()
	s, err := referral.Apply(h.s, env)
	if err != nil {
		h.t.Fatalf("Apply(%s): %v", env.Event.Type(), err)
	}
	h.s = s
	h.log = append(h.log, env)
}

// routing applies the routing service's own events.
func (h *harness) routing(ps ...events.Payload) {
	h.t.Helper()
	for _, p := range ps {
		h.apply(h.envelope(events.SourceRouting, p))
	}
}

// raw applies an organisation's event without its consequences, as a
// crash between the two appends would leave it.
func (h *harness) raw(org string, p events.Payload) {
	h.t.Helper()
	h.apply(h.envelope(src(org), p))
}

// send decides a command and records the decision; it returns the
// decision, or the error and leaves everything unchanged.
func (h *harness) send(by referral.Actor, source string, p events.Payload) (referral.Decision, error) {
	h.t.Helper()
	cmd := h.envelope(source, p)
	before := snapshot(h.t, h.s)
	dec, err := referral.Decide(h.s, cmd, by, h.now, h.d)
	if after := snapshot(h.t, h.s); after != before {
		h.t.Fatalf("Decide modified its input state")
	}
	if err != nil {
		return dec, err
	}
	h.record(cmd, dec)
	return dec, nil
}

func (h *harness) record(cmd *events.Envelope, dec referral.Decision) {
	h.t.Helper()
	if dec.Erase {
		h.log = nil
		for _, p := range dec.Events {
			h.apply(h.envelope(events.SourceRouting, p, events.WithCorrelationID(cmd.Event.ID())))
		}
		return
	}
	if dec.Record {
		h.apply(cmd)
	}
	h.routing(dec.Events...)
}

// by sends an organisation's command from its own source; the test fails
// on error.
func (h *harness) by(org string, p events.Payload) referral.Decision {
	h.t.Helper()
	dec, err := h.send(referral.Actor{Org: org}, src(org), p)
	if err != nil {
		h.t.Fatalf("%s sends %s: %v", org, p.EventType(), err)
	}
	return dec
}

// plan appends referral.planned and the offers after it.
func (h *harness) plan(p *events.Planned) []events.Payload {
	h.t.Helper()
	h.routing(p)
	out := referral.OffersAfterPlan(h.s, h.now, h.d)
	h.routing(out...)
	return out
}

// timer fires the deadline timer of placement/attempt at h.now.
func (h *harness) timer(placement string, attempt int) ([]events.Payload, error) {
	h.t.Helper()
	out, err := referral.OnTimer(h.s, placement, attempt, h.now, h.d)
	if err == nil {
		h.routing(out...)
	}
	return out, err
}

func (h *harness) placement(id string) referral.Placement {
	h.t.Helper()
	p, ok := h.s.Placement(id)
	if !ok {
		h.t.Fatalf("no placement %s", id)
	}
	return p
}

// checkFold checks that folding the log gives the incrementally built state.
func (h *harness) checkFold() {
	h.t.Helper()
	got, err := referral.Fold(h.log)
	if err != nil {
		h.t.Fatalf("Fold: %v", err)
	}
	if !reflect.DeepEqual(got, h.s) {
		h.t.Fatalf("Fold(log) differs from the incremental state:\n fold: %+v\n incr: %+v", got, h.s)
	}
}

// fataler is what snapshot needs of *testing.T and *rapid.T.
type fataler interface {
	Helper()
	Fatal(args ...any)
}

// snapshot returns a deep textual image of s to detect mutation.
func snapshot(t fataler, s referral.State) string {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func codeOf(err error) string {
	if err == nil {
		return "ok"
	}
	if c := referral.CodeOf(err); c != "" {
		return c
	}
	return "untyped: " + err.Error()
}

func types(ps []events.Payload) string {
	var b []string
	for _, p := range ps {
		b = append(b, strings.TrimSuffix(strings.TrimPrefix(p.EventType(), "invictus.referral."), ".v1"))
	}
	return strings.Join(b, ",")
}
