package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/invictus-network/invictus/adapters/httpapi"
	"github.com/invictus-network/invictus/directory"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/internal/mailpit"
	"github.com/invictus-network/invictus/internal/testenv"
	"github.com/invictus-network/invictus/internal/tracing"
	"github.com/invictus-network/invictus/internal/tracing/otlptest"
	"github.com/invictus-network/invictus/seal"
)

// TestServeOTLPEndpointUsage: a --otlp-endpoint that is not an http(s)
// URL is a usage error naming the flag, before anything starts.
func TestServeOTLPEndpointUsage(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"localhost:4318", "grpc://collector:4317", "http://", "http://c:4318/?x=1"} {
		code, _, errOut := runArgs(t, "serve", "--data", t.TempDir(), "--otlp-endpoint", v)
		if code != exitUsage || !strings.Contains(errOut, "--otlp-endpoint") {
			t.Errorf("--otlp-endpoint %q: exit %d, stderr %q; want %d naming the flag", v, code, errOut, exitUsage)
		}
	}
}

// traceHooks is a webhook receiver that keeps the trace headers of each
// request by CloudEvents type.
type traceHooks struct {
	srv *httptest.Server
	mu  sync.Mutex
	// byType holds, per ce-type, the traceparent and ce-traceparent
	// headers of the first request.
	byType map[string][2]string
}

func newTraceHooks(t *testing.T) *traceHooks {
	h := &traceHooks{byType: map[string][2]string{}}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		if _, ok := h.byType[r.Header.Get("ce-type")]; !ok {
			h.byType[r.Header.Get("ce-type")] = [2]string{r.Header.Get("traceparent"), r.Header.Get("ce-traceparent")}
		}
		h.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *traceHooks) got(typ string) ([2]string, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	v, ok := h.byType[typ]
	return v, ok
}

// TestServeTraces runs the real binary with --otlp-endpoint at a real
// OTLP/HTTP receiver and follows one referral: the client's trace (its
// traceparent header) holds the HTTP request's span, the router's span
// of the command, the match and the append, the dispatch of the offer,
// its copy to each recipient and the deliveries, a webhook to the
// referrer and an e-mail (Mailpit) to the receiver, each a child of the
// one before. No span carries a field of the case or the sealed
// envelope handed over later, and every attribute key is one the node
// declares.
func TestServeTraces(t *testing.T) {
	t.Parallel()
	otlp := otlptest.Start()
	t.Cleanup(otlp.Close)
	mp := mailpit.Start(t)
	data := filepath.Join(t.TempDir(), "data")
	listen := freeAddr(t)
	n := startNode(t, data, "--listen", listen, "--otlp-endpoint", otlp.URL(), "--allow-private-webhooks",
		"--smtp-url", mp.URL(), "--mail-from", "INVICTUS <referrals@node.test>", "--public-url", "http://"+listen)
	nc := connectAdmin(t, n.NATS, data)
	ref, recv := "pt.trace-ref", "pt.trace-recv"
	d := testOrgsDirectory(t, ref, recv)
	o := d.Organisation(recv)
	o.ReferralChannel = directory.ReferralChannelEmail
	o.ReferralContact = directory.Contact{Role: "Referrals desk", Email: "referrals@recv.test"}
	tokens := provisionTestOrgs(t, nc, d, false)
	hooks := newTraceHooks(t)
	body, _ := json.Marshal(map[string]string{"url": hooks.srv.URL + "/hook"})
	if code := apiCall(t, http.MethodPost, "http://"+n.HTTP+"/v1/webhooks", tokens[ref], "application/json", body, nil); code != http.StatusCreated {
		t.Fatalf("register webhook: %d", code)
	}

	// The case: fields that must never reach a span.
	req := testRequested(recv)
	req.Crimes = []string{"cybercrime"}
	req.Gender = "non_binary"
	req.Location.Region = "PT17"
	req.Consent.RecordedBy = "staff-7q3x"
	id := events.NewReferralID()
	const clientTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	postTraced(t, n.HTTP, tokens[ref], ref, id, req, "00-"+clientTrace+"-00f067aa0ba902b7-01")

	testenv.Await(t, "the offer's webhook to the referrer", func() bool { _, ok := hooks.got(events.TypeReferralOffered); return ok })
	testenv.Await(t, "the offer's e-mail to the receiver", func() bool { total, err := mp.Total(); return err == nil && total > 0 })

	// Every step, in the client's trace.
	type step struct{ name, org string }
	want := []step{
		{"POST /v1/events", ""},
		{"route " + events.TypeReferralRequested, ref},
		{routingSpanMatch, ""},
		{routingSpanAppend, ""},
		{"dispatch " + events.TypeReferralOffered, ""},
		{"deliver " + events.TypeReferralOffered, ref},
		{"deliver " + events.TypeReferralOffered, recv},
		{"webhook " + events.TypeReferralOffered, ref},
		{"email " + events.TypeReferralOffered, recv},
	}
	find := func(spans []otlptest.Span, s step) []otlptest.Span {
		var out []otlptest.Span
		for _, sp := range spans {
			if sp.TraceID == clientTrace && sp.Name == s.name && (s.org == "" || sp.Attrs[tracing.KeyOrg] == s.org) {
				out = append(out, sp)
			}
		}
		return out
	}
	var spans []otlptest.Span
	testenv.Await(t, "every span of the referral's offer at the receiver", func() bool {
		spans = otlp.Spans()
		for _, s := range want {
			if len(find(spans, s)) == 0 {
				return false
			}
		}
		return true
	}, func() string { return describeSpans(otlp.Spans()) + strings.Join(otlp.Bad(), "\n") })

	one := func(s step) otlptest.Span { return find(spans, s)[0] }
	httpSpan := one(want[0])
	if httpSpan.ParentID != "00f067aa0ba902b7" || httpSpan.Kind != "SPAN_KIND_SERVER" || httpSpan.Attrs[tracing.KeyStatus] == "" {
		t.Errorf("HTTP span %+v: want a server span, child of the client's 00f067aa0ba902b7, with its status code", httpSpan)
	}
	route := one(want[1])
	if route.ParentID != httpSpan.SpanID || route.Attrs[tracing.KeyReferral] != id || route.Attrs[tracing.KeyOutcome] != "accepted" {
		t.Errorf("router's span %+v: want the HTTP span %s's child, referral %s, accepted", route, httpSpan.SpanID, id)
	}
	// The command's append and match; the append that holds the offer
	// is the dispatch's parent.
	dispatch := one(want[4])
	var appendSpan otlptest.Span
	for _, sp := range find(spans, want[3]) {
		if sp.SpanID == dispatch.ParentID {
			appendSpan = sp
		}
	}
	if appendSpan.SpanID == "" || appendSpan.ParentID != route.SpanID || appendSpan.Attrs[tracing.KeyReferral] != id ||
		!strings.Contains(appendSpan.Attrs[tracing.KeyEventType], events.TypeReferralOffered) {
		t.Errorf("the offer's dispatch %+v is not the child of an append of the offer under the router's span %s:\n%s", dispatch, route.SpanID, describeSpans(spans))
	}
	if m := one(want[2]); m.ParentID != route.SpanID || m.Attrs[tracing.KeyNeeds] != events.NeedSupportEmotional || m.Attrs[tracing.KeyGroups] != "1" {
		t.Errorf("match span %+v: want the router's child with the need codes and 1 group", m)
	}
	for i, channel := range []string{"webhook", "email"} {
		org := []string{ref, recv}[i]
		copySpan := one(step{"deliver " + events.TypeReferralOffered, org})
		delivery := one(step{channel + " " + events.TypeReferralOffered, org})
		if copySpan.ParentID != dispatch.SpanID || delivery.ParentID != copySpan.SpanID {
			t.Errorf("%s to %s: copy %s (parent %s), delivery parent %s; want dispatch %s → copy → delivery",
				channel, org, copySpan.SpanID, copySpan.ParentID, delivery.ParentID, dispatch.SpanID)
		}
	}
	if got := one(want[7]).Attrs[tracing.KeyStatus]; got != "204" {
		t.Errorf("webhook span status %q, want 204", got)
	}
	// The webhook request names the delivery's span; the offer carries
	// the CloudEvents traceparent extension of the append that made it.
	h, _ := hooks.got(events.TypeReferralOffered)
	if wantTP := "00-" + clientTrace + "-" + one(want[7]).SpanID + "-01"; h[0] != wantTP {
		t.Errorf("webhook traceparent %q, want %q", h[0], wantTP)
	}
	if wantExt := "00-" + clientTrace + "-" + appendSpan.SpanID + "-01"; h[1] != wantExt {
		t.Errorf("offer's ce-traceparent %q, want the append's %q", h[1], wantExt)
	}

	// The receiver accepts, and the referrer hands over the sealed case.
	var view httpapi.ReferralView
	testenv.Await(t, "the placement offered", func() bool {
		code, v := getReferral(t, n.HTTP, tokens[ref], id)
		view = v
		return code == http.StatusOK && len(v.Placements) == 1
	})
	placement := view.Placements[0].Placement
	if res := postCommand(t, n.HTTP, tokens[recv], recv, id, &events.Accepted{Placement: placement}); res.Status != httpapi.StatusAccepted {
		t.Fatalf("referral.accepted: %+v", res)
	}
	const victim = "Maria Exemplo, born 1990-02-03, Rua das Flores 12"
	envelope, err := seal.Seal(o.AgeRecipient, []byte(victim))
	if err != nil {
		t.Fatal(err)
	}
	if res := postCommand(t, n.HTTP, tokens[ref], ref, id, &events.Handover{Placement: placement, Recipient: o.AgeRecipient, Envelope: envelope}); res.Status != httpapi.StatusAccepted {
		t.Fatalf("referral.handover: %+v", res)
	}
	testenv.Await(t, "the handover's router span", func() bool {
		spans = otlp.Spans()
		for _, sp := range spans {
			if sp.Name == "route "+events.TypeReferralHandover && sp.Attrs[tracing.KeyReferral] == id {
				return true
			}
		}
		return false
	})

	// A console form post has its span, named by the console's route.
	form := url.Values{"email": {"caseworker@trace-ref.test"}, "password": {"hunter2-correct-horse"}}
	resp, err := http.PostForm("http://"+n.HTTP+"/console/en/signin", form) //nolint:noctx // a test
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	testenv.Await(t, "the console form post's span", func() bool {
		spans = otlp.Spans()
		for _, sp := range spans {
			if sp.Name == "POST /console/en/signin" && sp.Attrs[tracing.KeyStatus] == strconv.Itoa(resp.StatusCode) {
				return true
			}
		}
		return false
	}, func() string { return describeSpans(otlp.Spans()) })

	// Nothing of the case, the consent, the envelope or the form in any
	// span.
	secrets := []string{"caseworker@trace-ref", "hunter2", "cybercrime", "non_binary", "PT17", "staff-7q3x", "verbal", "Maria", "Exemplo", "1990", "Flores",
		"AGE ENCRYPTED", envelope[40:80], o.AgeRecipient, "referrals@recv.test"}
	allowed := map[string]bool{}
	for _, k := range tracing.Keys {
		allowed[k] = true
	}
	for _, sp := range spans {
		texts := []string{sp.Name, sp.StatusMessage}
		texts = append(texts, sp.Events...)
		for k, v := range sp.Attrs {
			if !allowed[k] {
				t.Errorf("span %q has attribute %s, not one of tracing.Keys", sp.Name, k)
			}
			texts = append(texts, v)
		}
		for _, text := range texts {
			for _, s := range secrets {
				if strings.Contains(text, s) {
					t.Errorf("span %q carries %q: %q", sp.Name, s, text)
				}
			}
		}
	}
	t.Logf("%d spans from %d export requests; the offer's trace: %s", len(spans), otlp.Requests(), describeSpans(slices.DeleteFunc(slices.Clone(spans), func(sp otlptest.Span) bool { return sp.TraceID != clientTrace })))
	checkDashboard(t, n)
	if code := n.stop(); code != 0 {
		t.Errorf("exit %d\n%s", code, n.stderr)
	}
}

// The routing service's span names (routing.SpanMatch, SpanAppend).
const (
	routingSpanMatch  = "routing.match"
	routingSpanAppend = "routing.append"
)

// postTraced posts a command as a structured CloudEvent with a W3C
// traceparent header, as a traced client would.
func postTraced(t *testing.T, httpAddr, token, org, referralID string, p events.Payload, traceparent string) {
	t.Helper()
	ev, err := events.New(events.SourceOf(org), referralID, p)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(ev)
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://"+httpAddr+"/v1/events?wait=5s", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/cloudevents+json")
	req.Header.Set("traceparent", traceparent)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST %s: %d %s", p.EventType(), resp.StatusCode, b)
	}
}

// describeSpans lists spans as "name (span ← parent) attrs", by trace.
func describeSpans(spans []otlptest.Span) string {
	spans = slices.Clone(spans)
	sort.SliceStable(spans, func(i, j int) bool { return spans[i].TraceID < spans[j].TraceID })
	var b strings.Builder
	b.WriteString("\n")
	for _, sp := range spans {
		fmt.Fprintf(&b, "  %s %s (%s ← %s) %v\n", sp.TraceID[:8], sp.Name, sp.SpanID, sp.ParentID, sp.Attrs)
	}
	return b.String()
}
