package postgres_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/invictus-network/invictus/adapters/postgres"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/internal/tracing"
	"github.com/invictus-network/invictus/internal/tracing/otlptest"
)

// insertTraced inserts one outbox row of typ with payload and the
// traceparent column tp ("" for NULL), as a traced case system would,
// and returns its id.
func (p *pgEnv) insertTraced(typ string, payload any, tp string) string {
	p.t.Helper()
	b, err := json.Marshal(payload)
	if err != nil {
		p.t.Fatal(err)
	}
	var tpArg *string
	if tp != "" {
		tpArg = &tp
	}
	var id string
	if err := p.pool.QueryRow(testCtx(p.t), `INSERT INTO `+p.q()+`.outbox (type, payload, traceparent) VALUES ($1, $2, $3) RETURNING id::text`,
		typ, b, tpArg).Scan(&id); err != nil {
		p.t.Fatalf("insert outbox row: %v", err)
	}
	return id
}

// inboundTraceparents returns the traceparent header of each INBOUND
// message of the test organisation, by outbox row id.
func (b *relayBundle) inboundTraceparents(t *testing.T) map[string]string {
	t.Helper()
	ctx := testCtx(t)
	st, err := b.js.Stream(ctx, postgres.StreamInbound)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for seq := info.State.FirstSeq; seq > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		out[rowID(t, m.Header.Get(jetstream.MsgIDHeader))] = m.Header.Get(tracing.HeaderTraceParent)
	}
	return out
}

// inboxTraceparent returns the traceparent column of the inbox row of
// event id ("" for NULL).
func (b *inboxBundle) inboxTraceparent(t *testing.T, id string) string {
	t.Helper()
	var tp *string
	if err := b.pg.pool.QueryRow(testCtx(t), `SELECT traceparent FROM `+b.pg.q()+`.inbox WHERE event_id = $1`, id).Scan(&tp); err != nil {
		t.Fatal(err)
	}
	if tp == nil {
		return ""
	}
	return *tp
}

// TestTraceRelayAndInbox: while traces are exported, each command the
// relay publishes has an "outbox <type>" span, the child of the span its
// row's traceparent column names (the root of a trace without one), and
// its INBOUND message names that span in a traceparent header; a row
// the contract rejects has a failed span. Each delivery the inbox stores
// has an "inbox <type>" span, the child of the span its DELIVERY message
// names, whose traceparent the row records. Spans carry only the node's
// keys. With tracing off, no header is added and no traceparent stored.
// Not parallel: it sets the global tracer provider.
func TestTraceRelayAndInbox(t *testing.T) {
	rcv, stop := otlptest.Tracing(t)

	const caseTrace, caseSpan = "7bf92f3577b34da6a3ce929d0e0e4736", "20f067aa0ba902b7"
	caseTP := "00-" + caseTrace + "-" + caseSpan + "-01"
	rb := newRelayBundle(t)
	requested := events.SamplePayload(events.TypeReferralRequested)
	traced := rb.pg.insertTraced(events.TypeReferralRequested, requested, caseTP)
	plain := rb.pg.insertTraced(events.TypeReferralRequested, requested, "")
	junk := rb.pg.insertTraced(events.TypeReferralRequested, requested, "not a traceparent")
	rejected := rb.pg.insertTraced(events.TypeReferralRequested, map[string]any{"nothing": "valid"}, caseTP)
	relay := start(t, rb.newRelay(t, rb.pg.relayConfig()).Run)
	rb.waitAllRelayed(t)
	headers := rb.inboundTraceparents(t)

	ib := newInboxBundle(t)
	const delTrace, delSpan = "8bf92f3577b34da6a3ce929d0e0e4736", "30f067aa0ba902b7"
	ev := offer(t)
	deliverTraced(t, ib, ev, "00-"+delTrace+"-"+delSpan+"-01")
	inbox := start(t, ib.newInbox(t, ib.inboxConfig()).Run)
	eventually(t, "the delivery stored", func() bool { return ib.inboxRows() == 1 })
	rowTP := ib.inboxTraceparent(t, ev.ID())
	stop()

	spans := rcv.Spans()
	byEvent := map[string]otlptest.Span{}
	for _, sp := range spans {
		byEvent[sp.Attrs[tracing.KeyEventID]] = sp
		for k := range sp.Attrs {
			if !slices.Contains(tracing.Keys, k) {
				t.Errorf("span %s has attribute %s, not one of tracing.Keys", sp.Name, k)
			}
		}
	}
	name := "outbox " + events.TypeReferralRequested
	for _, c := range []struct {
		id, what, trace, parent, outcome string
	}{
		{traced, "a row with a traceparent", caseTrace, caseSpan, "published"},
		{plain, "a row without", "", "", "published"},
		{junk, "a row with an invalid traceparent", "", "", "published"},
		{rejected, "a rejected row", caseTrace, caseSpan, "rejected"},
	} {
		sp, ok := byEvent[c.id]
		switch {
		case !ok:
			t.Errorf("%s: no span", c.what)
			continue
		case sp.Name != name || sp.Kind != "SPAN_KIND_PRODUCER" || sp.ParentID != c.parent || (c.trace != "" && sp.TraceID != c.trace) ||
			sp.Attrs[tracing.KeyOutcome] != c.outcome || sp.Attrs[tracing.KeyOrg] != testOrg || sp.Attrs[tracing.KeyChannel] != "postgres":
			t.Errorf("%s: span %+v; want %s, a producer, parent %q in trace %q, %s", c.what, sp, name, c.parent, c.trace, c.outcome)
		}
		if c.outcome == "rejected" {
			if sp.Status != "STATUS_CODE_ERROR" {
				t.Errorf("%s: span status %s, want an error", c.what, sp.Status)
			}
			continue
		}
		if want := "00-" + sp.TraceID + "-" + sp.SpanID + "-01"; headers[c.id] != want {
			t.Errorf("%s: INBOUND traceparent %q, want its span's %q", c.what, headers[c.id], want)
		}
	}
	in, ok := byEvent[ev.ID()]
	if !ok || in.Name != "inbox "+events.TypeReferralOffered || in.Kind != "SPAN_KIND_CONSUMER" || in.TraceID != delTrace ||
		in.ParentID != delSpan || in.Attrs[tracing.KeyOutcome] != "stored" || in.Attrs[tracing.KeyReferral] != ev.Subject() {
		t.Errorf("inbox span %+v: want inbox %s, a consumer, the child of %s in trace %s, stored", in, events.TypeReferralOffered, delSpan, delTrace)
	}
	if want := "00-" + delTrace + "-" + in.SpanID + "-01"; rowTP != want {
		t.Errorf("inbox row traceparent %q, want its span's %q", rowTP, want)
	}
	if bad := rcv.Bad(); len(bad) > 0 {
		t.Errorf("the receiver refused exports: %v", bad)
	}

	// Tracing off: nothing added, nothing stored.
	off := rb.pg.insertTraced(events.TypeReferralRequested, requested, caseTP)
	rb.waitAllRelayed(t)
	if tp := rb.inboundTraceparents(t)[off]; tp != "" {
		t.Errorf("tracing off, the relay's message has traceparent %q", tp)
	}
	ev2 := offer(t)
	deliverTraced(t, ib, ev2, "00-"+delTrace+"-"+delSpan+"-01")
	eventually(t, "the second delivery stored", func() bool { return ib.inboxRows() == 2 })
	if tp := ib.inboxTraceparent(t, ev2.ID()); tp != "" {
		t.Errorf("tracing off, the inbox row has traceparent %q", tp)
	}
	for _, r := range []*running{relay, inbox} {
		if err := r.stop(t); err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("Run: %v", err)
		}
	}
}

// deliverTraced publishes ev to the test organisation's delivery subject
// with the traceparent header tp, as the node's dispatcher does.
func deliverTraced(t *testing.T, b *inboxBundle, ev event.Event, tp string) {
	t.Helper()
	subject, err := events.DeliverySubject(testOrg, ev.Subject())
	if err != nil {
		t.Fatal(err)
	}
	m, err := events.ToNATS(subject, ev)
	if err != nil {
		t.Fatal(err)
	}
	msg := &nats.Msg{Subject: m.Subject, Header: nats.Header(m.Header), Data: m.Data}
	msg.Header.Set(tracing.HeaderTraceParent, tp)
	if _, err := b.js.PublishMsg(testCtx(t), msg, jetstream.WithMsgID(ev.ID())); err != nil {
		t.Fatalf("publish delivery: %v", err)
	}
}
