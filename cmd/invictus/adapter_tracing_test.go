package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/invictus-network/invictus/adapters/httpapi"
	"github.com/invictus-network/invictus/directory"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/internal/mailpit"
	"github.com/invictus-network/invictus/internal/testenv"
	"github.com/invictus-network/invictus/internal/tracing"
	"github.com/invictus-network/invictus/internal/tracing/otlptest"
)

// adapterProc is a running `invictus adapter ...` process.
type adapterProc struct {
	t       *testing.T
	cmd     *exec.Cmd
	stderr  *syncBuffer
	exited  chan struct{}
	waitErr error
}

// startAdapterProc runs the real binary with args and env added to the
// test's clean environment; it is killed at cleanup unless stopped.
func startAdapterProc(t *testing.T, env []string, args ...string) *adapterProc {
	t.Helper()
	p := &adapterProc{t: t, stderr: &syncBuffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(invictusBinary(t), args...)
	p.cmd.Env = append(cleanEnv(), env...)
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	})
	return p
}

// stop sends SIGTERM and fails the test unless the process exits 0.
func (p *adapterProc) stop() {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.t.Fatal(err)
	}
	testenv.Recv(p.t, "the adapter to stop after SIGTERM", p.exited, p.stderr.String)
	if p.waitErr != nil {
		p.t.Errorf("adapter exit: %v\n%s", p.waitErr, p.stderr)
	}
}

// TestAdapterEmailTraces runs the node and `invictus adapter email` as
// processes of their own, both exporting to one real OTLP receiver (the
// node with --otlp-endpoint, the adapter with OTEL_EXPORTER_OTLP_ENDPOINT).
// The adapter's span of the offer's e-mail is the child of the node's
// span of the delivery copy, in the client's trace, and the answer link
// the receiver uses is a server span of the adapter whose command the
// node's router routes under it. Run again without an endpoint, the
// adapter adds no trace header: the router's span of the next answer
// has no parent. Every attribute is one of tracing.Keys.
func TestAdapterEmailTraces(t *testing.T) {
	t.Parallel()
	otlp := otlptest.Start()
	t.Cleanup(otlp.Close)
	mp := mailpit.Start(t)
	data := t.TempDir()
	n := startNode(t, data, "--otlp-endpoint", otlp.URL())
	adapterAddr := freeAddr(t)
	adapterArgs := []string{"adapter", "email", "--nats-url", "nats://" + n.NATS, "--nats-creds", data + "/keys/admin.nk",
		"--smtp-url", mp.URL(), "--mail-from", "referrals@node.test", "--public-url", "http://" + adapterAddr, "--listen", adapterAddr}
	adapter := startAdapterProc(t, []string{"OTEL_EXPORTER_OTLP_ENDPOINT=" + otlp.URL()}, adapterArgs...)
	testenv.Await(t, "the adapter to send", func() bool {
		return strings.Contains(metricsOf(adapterAddr), "invictus_email_sender_leader 1")
	}, adapter.stderr.String)

	nc := connectAdmin(t, n.NATS, data)
	ref, recv := "pt.trace-mref", "pt.trace-mrecv"
	d := testOrgsDirectory(t, ref, recv)
	o := d.Organisation(recv)
	o.ReferralChannel = directory.ReferralChannelEmail
	o.ReferralContact = directory.Contact{Role: "Referral desk", Email: "desk@trace-mrecv.test"}
	tokens := provisionTestOrgs(t, nc, d, false)

	seen := map[string]bool{}
	// answer accepts the offer of referral id by its e-mail's link, served
	// by the adapter, and waits for the referrer to see it.
	answer := func(id string) {
		t.Helper()
		var link string
		testenv.Await(t, "the offer e-mail of "+id, func() bool {
			ms, err := mp.Messages()
			if err != nil {
				return false
			}
			for _, s := range ms {
				if seen[s.ID] {
					continue
				}
				m, err := mp.Message(s.ID)
				if err != nil {
					return false
				}
				seen[s.ID] = true
				link = regexp.MustCompile(`http://\S+/mail/link/\S+`).FindString(m.Text)
				return link != ""
			}
			return false
		})
		if !strings.HasPrefix(link, "http://"+adapterAddr+"/mail/link/") {
			t.Fatalf("accept link %q: want one served by the adapter", link)
		}
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, link, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("POST the accept link: %d", resp.StatusCode)
		}
		testenv.Await(t, "the acceptance of "+id, func() bool {
			code, v := getReferral(t, n.HTTP, tokens[ref], id)
			return code == http.StatusOK && len(v.Placements) == 1 && v.Placements[0].Status == "accepted"
		})
	}

	id := events.NewReferralID()
	const clientTrace = "6bf92f3577b34da6a3ce929d0e0e4736"
	postTraced(t, n.HTTP, tokens[ref], ref, id, testRequested(recv), "00-"+clientTrace+"-00f067aa0ba902b7-01")
	answer(id)
	adapter.stop() // flushes its spans

	isAdapter := func(sp otlptest.Span) bool { return sp.Resource["service.name"] == "invictus-adapter-email" }
	var spans []otlptest.Span
	var mail, post, copySpan, route otlptest.Span
	testenv.Await(t, "the spans of the e-mail, the link and their parents", func() bool {
		spans = otlp.Spans()
		mail, post, copySpan, route = otlptest.Span{}, otlptest.Span{}, otlptest.Span{}, otlptest.Span{}
		for _, sp := range spans {
			switch {
			case isAdapter(sp) && sp.Name == "email "+events.TypeReferralOffered && sp.Attrs[tracing.KeyReferral] == id:
				mail = sp
			case isAdapter(sp) && sp.Kind == "SPAN_KIND_SERVER":
				post = sp
			case !isAdapter(sp) && sp.Name == "deliver "+events.TypeReferralOffered && sp.Attrs[tracing.KeyOrg] == recv && sp.TraceID == clientTrace:
				copySpan = sp
			case !isAdapter(sp) && sp.Name == "route "+events.TypeReferralAccepted && sp.Attrs[tracing.KeyReferral] == id:
				route = sp
			}
		}
		return mail.SpanID != "" && post.SpanID != "" && copySpan.SpanID != "" && route.SpanID != ""
	}, func() string { return describeSpans(otlp.Spans()) + strings.Join(otlp.Bad(), "\n") })
	if mail.TraceID != clientTrace || mail.ParentID != copySpan.SpanID || mail.Attrs[tracing.KeyOrg] != recv || mail.Attrs[tracing.KeyOutcome] != "sent" {
		t.Errorf("the adapter's e-mail span %+v: want the child of the node's copy %s in trace %s, sent to %s", mail, copySpan.SpanID, clientTrace, recv)
	}
	if post.Name != "POST /mail/link/{token}" || post.Attrs[tracing.KeyStatus] != "200" {
		t.Errorf("the adapter's link span %+v: want POST /mail/link/{token}, 200", post)
	}
	if route.TraceID != post.TraceID || route.ParentID != post.SpanID || route.Attrs[tracing.KeyOutcome] != "accepted" {
		t.Errorf("the router's span of the answer %+v: want the child of the adapter's link span %s, accepted", route, post.SpanID)
	}
	for _, sp := range spans {
		for k := range sp.Attrs {
			if !slices.Contains(tracing.Keys, k) {
				t.Errorf("span %q has attribute %s, not one of tracing.Keys", sp.Name, k)
			}
		}
		for _, v := range sp.Attrs {
			if strings.Contains(v, "desk@") || strings.Contains(v, "/mail/link/") && v != "/mail/link/{token}" {
				t.Errorf("span %q carries %q", sp.Name, v)
			}
		}
	}

	// Without an endpoint the adapter exports nothing and its answer
	// carries no trace header.
	exported := len(slices.DeleteFunc(otlp.Spans(), func(sp otlptest.Span) bool { return !isAdapter(sp) }))
	adapter = startAdapterProc(t, nil, adapterArgs...)
	testenv.Await(t, "the adapter to send again", func() bool {
		return strings.Contains(metricsOf(adapterAddr), "invictus_email_sender_leader 1")
	}, adapter.stderr.String)
	id2 := events.NewReferralID()
	if res := postCommand(t, n.HTTP, tokens[ref], ref, id2, testRequested(recv)); res.Status != httpapi.StatusAccepted {
		t.Fatalf("referral.requested: %+v", res)
	}
	answer(id2)
	adapter.stop()
	var route2 otlptest.Span
	testenv.Await(t, "the router's span of the second answer", func() bool {
		for _, sp := range otlp.Spans() {
			if sp.Name == "route "+events.TypeReferralAccepted && sp.Attrs[tracing.KeyReferral] == id2 {
				route2 = sp
				return true
			}
		}
		return false
	})
	if route2.ParentID != "" {
		t.Errorf("tracing off in the adapter, the router's span of its answer has parent %s: a trace header was added", route2.ParentID)
	}
	if now := len(slices.DeleteFunc(otlp.Spans(), func(sp otlptest.Span) bool { return !isAdapter(sp) })); now != exported {
		t.Errorf("without an endpoint the adapter exported %d spans more", now-exported)
	}
	if bad := otlp.Bad(); len(bad) > 0 {
		t.Errorf("the receiver refused exports: %v", bad)
	}
	if code := n.stop(); code != 0 {
		t.Errorf("serve exit %d\n%s", code, n.stderr)
	}
}

// TestAdapterPostgresTraces runs the node and `invictus adapter postgres
// --otlp-endpoint` as processes of their own against one real OTLP
// receiver. A case system writes a referral.requested into the outbox
// with the traceparent of its own span: the adapter's span of the
// command is that span's child, the node's router span is the adapter's
// child, and the adapter's span of storing the referrer's referral.planned
// in its inbox is the child of the node's delivery copy, all in the case
// system's trace, the inbox row naming its span. Every attribute is one of
// tracing.Keys.
func TestAdapterPostgresTraces(t *testing.T) {
	t.Parallel()
	url, schema := adapterTestDB(t)
	otlp := otlptest.Start()
	t.Cleanup(otlp.Close)
	data := t.TempDir()
	n := startNode(t, data, "--otlp-endpoint", otlp.URL())
	nc := connectAdmin(t, n.NATS, data)
	ref, recv := "pt.trace-pgref", "pt.trace-pgrecv"
	provisionTestOrgs(t, nc, testOrgsDirectory(t, ref, recv), false)
	metricsAddr := freeAddr(t)
	adapter := startAdapterProc(t, nil, "adapter", "postgres", "--db", url, "--schema", schema, "--org", ref,
		"--nats-url", "nats://"+n.NATS, "--creds", data+"/keys/admin.nk", "--metrics-listen", metricsAddr, "--otlp-endpoint", otlp.URL())
	testenv.Await(t, "the adapter's /healthz", func() bool {
		resp, err := http.Get("http://" + metricsAddr + "/healthz") //nolint:noctx // a test
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, adapter.stderr.String)

	ctx := testenv.Context(t)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	const caseTrace, caseSpan = "9bf92f3577b34da6a3ce929d0e0e4736", "40f067aa0ba902b7"
	payload, _ := json.Marshal(testRequested(recv))
	q := pgx.Identifier{schema}.Sanitize()
	var id string
	if err := conn.QueryRow(ctx, `INSERT INTO `+q+`.outbox (type, payload, traceparent) VALUES ($1, $2, $3) RETURNING id::text`,
		events.TypeReferralRequested, payload, "00-"+caseTrace+"-"+caseSpan+"-01").Scan(&id); err != nil {
		t.Fatal(err)
	}
	var rowTP string
	testenv.Await(t, "the referral.planned in the inbox", func() bool {
		var tp *string
		err := conn.QueryRow(ctx, `SELECT traceparent FROM `+q+`.inbox WHERE referral_id = $1 AND type = $2`, id, events.TypeReferralPlanned).Scan(&tp)
		if err == nil && tp != nil {
			rowTP = *tp
		}
		return err == nil
	})
	adapter.stop() // flushes its spans

	isAdapter := func(sp otlptest.Span) bool { return sp.Resource["service.name"] == "invictus-adapter-postgres" }
	var spans []otlptest.Span
	var outbox, route, copySpan, inbox otlptest.Span
	testenv.Await(t, "the spans of the outbox, the router, the copy and the inbox", func() bool {
		spans = otlp.Spans()
		for _, sp := range spans {
			switch {
			case sp.TraceID != caseTrace:
			case isAdapter(sp) && sp.Name == "outbox "+events.TypeReferralRequested:
				outbox = sp
			case isAdapter(sp) && sp.Name == "inbox "+events.TypeReferralPlanned:
				inbox = sp
			case !isAdapter(sp) && sp.Name == "route "+events.TypeReferralRequested:
				route = sp
			case !isAdapter(sp) && sp.Name == "deliver "+events.TypeReferralPlanned && sp.Attrs[tracing.KeyOrg] == ref:
				copySpan = sp
			}
		}
		return outbox.SpanID != "" && route.SpanID != "" && copySpan.SpanID != "" && inbox.SpanID != ""
	}, func() string { return describeSpans(otlp.Spans()) + strings.Join(otlp.Bad(), "\n") })
	if outbox.ParentID != caseSpan || outbox.Attrs[tracing.KeyEventID] != id || outbox.Attrs[tracing.KeyOutcome] != "published" {
		t.Errorf("the adapter's outbox span %+v: want the child of the case system's %s, row %s, published", outbox, caseSpan, id)
	}
	if route.ParentID != outbox.SpanID || route.Attrs[tracing.KeyOutcome] != "accepted" {
		t.Errorf("the router's span %+v: want the child of the adapter's %s, accepted", route, outbox.SpanID)
	}
	if inbox.ParentID != copySpan.SpanID || inbox.Attrs[tracing.KeyOutcome] != "stored" {
		t.Errorf("the adapter's inbox span %+v: want the child of the node's copy %s, stored", inbox, copySpan.SpanID)
	}
	if want := "00-" + caseTrace + "-" + inbox.SpanID + "-01"; rowTP != want {
		t.Errorf("the inbox row's traceparent %q, want its span's %q", rowTP, want)
	}
	for _, sp := range spans {
		for k := range sp.Attrs {
			if !slices.Contains(tracing.Keys, k) {
				t.Errorf("span %q has attribute %s, not one of tracing.Keys", sp.Name, k)
			}
		}
	}
	if code := n.stop(); code != 0 {
		t.Errorf("serve exit %d\n%s", code, n.stderr)
	}
}
