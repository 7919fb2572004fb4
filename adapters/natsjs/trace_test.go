package natsjs_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/invictus-network/invictus/adapters/natsjs"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/internal/tracing"
	"github.com/invictus-network/invictus/internal/tracing/otlptest"
)

// TestTraceFromOrganisationsExtension: an organisation publishes a
// command over NATS with the CloudEvents traceparent extension; the
// router's span is its child, the routing service's offer carries the
// append's span as its own extension while the organisation's event keeps
// its own, and the delivery copy names its span in a traceparent header.
// With tracing off again, the node's messages carry no trace header.
// Not parallel: it sets the global tracer provider.
func TestTraceFromOrganisationsExtension(t *testing.T) {
	rcv := otlptest.Start()
	t.Cleanup(rcv.Close)
	shutdown, err := tracing.Start(t.Context(), tracing.Config{Endpoint: rcv.URL()})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			if err := shutdown(context.Background()); err != nil {
				t.Errorf("tracing shutdown: %v", err)
			}
		}
	}
	t.Cleanup(stop)

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
