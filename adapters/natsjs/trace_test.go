package natsjs_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/invictus-network/invictus/adapters/natsjs"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/internal/testenv"
	"github.com/invictus-network/invictus/internal/tracing"
	"github.com/invictus-network/invictus/internal/tracing/otlptest"
	"github.com/invictus-network/invictus/routing"
)

// TestTraceFromOrganisationsExtension: an organisation publishes a
// command over NATS with the CloudEvents traceparent extension; the
// router's span is its child, the routing service's offer carries the
// append's span as its own extension while the organisation's event keeps
// its own, and the delivery copy names its span in a traceparent header.
// With tracing off again, the node's messages carry no trace header.
// Not parallel: it sets the global tracer provider.
func TestTraceFromOrganisationsExtension(t *testing.T) {
	rcv, stop := otlptest.Tracing(t)

	n := newNet(t, 3*time.Second)
	n.svcCfg.Tracer = tracing.Steps{}
	n.startRouter()
	const trace, client = "5bf92f3577b34da6a3ce929d0e0e4736", "10f067aa0ba902b7"
	clientTP := "00-" + trace + "-" + client + "-01"
	id := events.NewReferralID()
	ev, err := events.New(events.SourceOf("pt.ref"), id, request(events.NeedSupportEmotional), events.WithTraceParent(clientTP))
	if err != nil {
		t.Fatal(err)
	}
	n.publish("pt.ref", ev)
	offer := n.waitDelivery("pt.a1", id, events.TypeReferralOffered, nil)

	tp := offer.header.Get(tracing.HeaderTraceParent)
	ext := offer.env.Event.Extensions()[events.ExtTraceParent]
	if !strings.HasPrefix(tp, "00-"+trace+"-") || !strings.HasPrefix(ext.(string), "00-"+trace+"-") || tp == ext {
		t.Errorf("offer's traceparent header %q and extension %v: want the client's trace, the copy's span and the append's", tp, ext)
	}
	for _, m := range n.read(natsjs.StreamReferrals, "referral.*."+id) {
		if m.typ() == events.TypeReferralRequested && m.env.Event.Extensions()[events.ExtTraceParent] != clientTP {
			t.Errorf("the organisation's own event has extension %v, want its own %s", m.env.Event.Extensions()[events.ExtTraceParent], clientTP)
		}
	}
	stop()
	var route otlptest.Span
	for _, sp := range rcv.Spans() {
		if sp.Name == "route "+events.TypeReferralRequested {
			route = sp
		}
	}
	if route.TraceID != trace || route.ParentID != client {
		t.Errorf("router's span %+v: want the child of the extension's %s in trace %s", route, client, trace)
	}

	// Tracing off: no header read or written.
	id2 := events.NewReferralID()
	ev2, err := events.New(events.SourceOf("pt.ref"), id2, request(events.NeedSupportEmotional), events.WithTraceParent(clientTP))
	if err != nil {
		t.Fatal(err)
	}
	n.publish("pt.ref", ev2)
	off := n.waitDelivery("pt.a1", id2, events.TypeReferralOffered, nil)
	if v := off.header.Get(tracing.HeaderTraceParent); v != "" {
		t.Errorf("tracing off, the offer's copy has traceparent %q", v)
	}
	for _, m := range n.read(natsjs.StreamReferrals, "referral.*."+id2) {
		if v := m.header.Get(tracing.HeaderTraceParent); v != "" {
			t.Errorf("tracing off, %s has traceparent %q", m.typ(), v)
		}
		if _, has := m.env.Event.Extensions()[events.ExtTraceParent]; has && m.typ() != events.TypeReferralRequested {
			t.Errorf("tracing off, the routing service's %s has a traceparent extension", m.typ())
		}
	}
	if bad := rcv.Bad(); len(bad) > 0 {
		t.Errorf("the receiver refused exports: %v", bad)
	}
}

// TestTraceTimersJoinReferral: an offer nobody answers has its reminder
// and its deadline fire; each timer's span is the child of the span that
// set it (the offer's dispatch, then the reminder), the reminder's copy
// names a span under the reminder's, and the deadline's referral.expired
// and next offer are appended and dispatched under the deadline's span:
// one trace from the request to the next offer. Spans carry only the
// node's keys. With tracing off again, a schedule carries no trace header.
// Not parallel: it sets the global tracer provider.
func TestTraceTimersJoinReferral(t *testing.T) {
	rcv, stop := otlptest.Tracing(t)

	n := newNet(t, 2*time.Second)
	n.svcCfg.Tracer = tracing.Steps{}
	n.startRouter()
	id := events.NewReferralID()
	n.send("pt.ref", id, request(events.NeedSupportEmotional))
	first := n.waitDelivery("pt.a1", id, events.TypeReferralOffered, nil)
	reminder := n.waitDelivery("pt.a1", id, events.TypeReferralOffered, func(m stored) bool {
		return m.header.Get(natsjs.HeaderReminder) != ""
	})
	n.waitDelivery("pt.a1", id, events.TypeReferralExpired, nil)
	second := n.waitDelivery("pt.a2", id, events.TypeReferralOffered, nil)
	stop()

	spans := rcv.Spans()
	byID := map[string]otlptest.Span{}
	for _, sp := range spans {
		byID[sp.SpanID] = sp
		for k := range sp.Attrs {
			if !slices.Contains(tracing.Keys, k) {
				t.Errorf("span %s has attribute %s, not one of tracing.Keys", sp.Name, k)
			}
		}
	}
	find := func(what string, ok func(otlptest.Span) bool) otlptest.Span {
		t.Helper()
		for _, sp := range spans {
			if ok(sp) {
				return sp
			}
		}
		t.Fatalf("no span %s among %d", what, len(spans))
		return otlptest.Span{}
	}
	dispatch1 := find("dispatching the first offer", func(sp otlptest.Span) bool {
		return sp.Name == "dispatch "+events.TypeReferralOffered && sp.Attrs[tracing.KeyEventID] == first.env.Event.ID()
	})
	remind := find("of the reminder", func(sp otlptest.Span) bool { return sp.Name == "timer "+natsjs.TimerReminder })
	deadline := find("of the deadline", func(sp otlptest.Span) bool { return sp.Name == "timer "+natsjs.TimerDeadline })
	if remind.ParentID != dispatch1.SpanID || remind.Attrs[tracing.KeyReferral] != id ||
		remind.Attrs[tracing.KeyOrg] != "pt.a1" || remind.Attrs[tracing.KeyOutcome] != "done" {
		t.Errorf("reminder's span %+v: want a child of the offer's dispatch %s, for pt.a1, done", remind, dispatch1.SpanID)
	}
	if deadline.ParentID != remind.SpanID || deadline.Attrs[tracing.KeyOutcome] != "done" {
		t.Errorf("deadline's span %+v: want a child of the reminder's %s, done", deadline, remind.SpanID)
	}
	app := find("appending under the deadline", func(sp otlptest.Span) bool {
		return sp.Name == routing.SpanAppend && sp.ParentID == deadline.SpanID
	})
	if !strings.Contains(app.Attrs[tracing.KeyEventType], events.TypeReferralExpired) {
		t.Errorf("the deadline's append %+v: want referral.expired among its events", app)
	}
	find("dispatching the next offer under the deadline's append", func(sp otlptest.Span) bool {
		return sp.Name == "dispatch "+events.TypeReferralOffered && sp.ParentID == app.SpanID &&
			sp.Attrs[tracing.KeyEventID] == second.env.Event.ID()
	})
	if tp := strings.Split(reminder.header.Get(tracing.HeaderTraceParent), "-"); len(tp) != 4 || byID[tp[2]].ParentID != remind.SpanID {
		t.Errorf("the reminder's copy names span %v: want one under the reminder's %s", tp, remind.SpanID)
	}
	for _, sp := range spans {
		if sp.Attrs[tracing.KeyReferral] == id && sp.TraceID != dispatch1.TraceID {
			t.Errorf("span %s of the referral is in trace %s, want %s", sp.Name, sp.TraceID, dispatch1.TraceID)
		}
	}

	// Tracing off: the schedule of an offer carries no trace header.
	id2 := events.NewReferralID()
	n.send("pt.ref", id2, request(events.NeedSupportEmotional))
	var timers []stored
	testenv.Await(t, "the offer's timer to be scheduled", func() bool {
		timers = n.read(natsjs.StreamTimers, "timer."+id2+".*")
		return len(timers) > 0
	})
	for _, m := range timers {
		if v := m.header.Get(tracing.HeaderTraceParent); v != "" {
			t.Errorf("tracing off, the timer %s has traceparent %q", m.subject, v)
		}
	}
	if bad := rcv.Bad(); len(bad) > 0 {
		t.Errorf("the receiver refused exports: %v", bad)
	}
}
