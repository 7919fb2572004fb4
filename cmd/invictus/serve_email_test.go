package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/invictus-network/invictus/adapters/httpapi"
	"github.com/invictus-network/invictus/directory"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/internal/mailpit"
)

// TestServeEmailUsageErrors: a wrong e-mail setting is refused at once,
// naming the setting, and a password in --smtp-url is never echoed.
func TestServeEmailUsageErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--smtp-url", "ftp://user:s3cret@mail.test"}, "--smtp-url REDACTED: invalid SMTP URL: scheme \"ftp\""},
		{[]string{"serve", "--smtp-url", "smtp://user:s3cret@mail.test:99999"}, "--smtp-url REDACTED: invalid SMTP URL: port"},
		{[]string{"serve", "--smtp-url", "smtp://mail.test?tls=maybe"}, "tls=\"maybe\""},
		{[]string{"serve", "--smtp-url", "smtp://mail.test", "--public-url", "https://node.test"}, "--mail-from is required"},
		{[]string{"serve", "--smtp-url", "smtp://mail.test", "--mail-from", "a@b.test"}, "--public-url is required"},
		{[]string{"serve", "--smtp-url", "smtp://mail.test", "--mail-from", "nobody", "--public-url", "https://node.test"}, "--mail-from nobody"},
		{[]string{"serve", "--smtp-url", "smtp://mail.test", "--mail-from", "a@b.test", "--public-url", "node.test"}, "--public-url node.test"},
		{[]string{"serve", "--mail-from", "a@b.test"}, "give --smtp-url too"},
		{[]string{"adapter", "email", "--mail-from", "a@b.test"}, "--smtp-url is required"},
		{[]string{"serve", "--digest-at", "25:00"}, "--digest-at 25:00: not a time of day HH:MM on a 24-hour clock"},
		{[]string{"serve", "--smtp-url", "smtp://user:s3cret@mail.test", "--mail-from", "a@b.test", "--public-url", "https://node.test", "--digest-at", "7am"}, "--digest-at 7am: not a time of day"},
		{[]string{"adapter", "email", "--smtp-url", "smtp://mail.test", "--mail-from", "a@b.test", "--public-url", "https://node.test", "--digest-at", "7:00"}, "--digest-at 7:00: not a time of day"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			code, _, errOut := runArgs(t, tt.args...)
			if code != exitUsage || !strings.Contains(errOut, tt.want) {
				t.Errorf("exit %d, stderr %q; want %d with %q", code, errOut, exitUsage, tt.want)
			}
			if strings.Contains(errOut, "s3cret") {
				t.Errorf("the password is in the error: %q", errOut)
			}
		})
	}
}

// TestDigestAtHelp: serve and adapter email take --digest-at, and their
// help says on whose clock it is read.
func TestDigestAtHelp(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"serve", "--help"}, {"adapter", "email", "--help"}} {
		code, out, _ := runArgs(t, args...)
		flat := strings.Join(strings.Fields(out), " ")
		if code != exitOK || !strings.Contains(flat, `--digest-at string`) || !strings.Contains(flat, "on each organisation's own clock: the time zone of the opening hours of its first service (by id) in the directory, or UTC when it has none") || !strings.Contains(flat, `(default "07:00")`) {
			t.Errorf("%v: exit %d, the help does not explain --digest-at:\n%s", args, code, out)
		}
	}
}

// TestServeEmailUnreachable: an SMTP server that does not answer at start
// stops serve with an error naming --smtp-url, without the password.
func TestServeEmailUnreachable(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	code, _, errOut := runArgs(t, "serve", "--data", t.TempDir(), "--listen", "127.0.0.1:0", "--nats-listen", "127.0.0.1:0",
		"--smtp-url", "smtp://user:s3cret@"+addr+"?tls=none", "--mail-from", "referrals@node.test", "--public-url", "http://node.test")
	if code != exitError || !strings.Contains(errOut, "--smtp-url smtp://user@"+addr+"?tls=none: SMTP server unreachable") {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
	}
	if strings.Contains(errOut, "s3cret") {
		t.Errorf("the password is in the output:\n%s", errOut)
	}
}

// TestServeEmail runs serve with an SMTP server: an e-mail organisation
// gets the offer in its language, accepts it through the link served by
// the node, and the referrer (on the HTTP API) sees the acceptance.
func TestServeEmail(t *testing.T) {
	t.Parallel()
	mp := mailpit.Start(t)
	data := t.TempDir()
	listen := freeAddr(t)
	p := serveInProcess(t, fakeEnv(nil), "--data", data, "--listen", listen,
		"--smtp-url", mp.URL(), "--mail-from", "INVICTUS <referrals@node.test>", "--public-url", "http://"+listen)
	nc := connectAdmin(t, p.NATS, data)
	ref, recv := "pt.mail-ref", "pt.mail-recv"
	d := testOrgsDirectory(t, ref, recv)
	o := d.Organisation(recv)
	o.Languages = []string{"it"}
	o.ReferralChannel = directory.ReferralChannelEmail
	o.ReferralContact = directory.Contact{Role: "Sportello invii", Email: "invii@recv.test"}
	tokens := provisionTestOrgs(t, nc, d, false)

	id := events.NewReferralID()
	if res := postCommand(t, p.HTTP, tokens[ref], ref, id, testRequested(recv)); res.Status != httpapi.StatusAccepted {
		t.Fatalf("referral.requested: %+v", res)
	}
	var text string
	waitFor(t, "the offer e-mail", func() bool {
		ms, err := mp.Messages()
		if err != nil || len(ms) == 0 {
			return false
		}
		m, err := mp.Message(ms[0].ID)
		text = m.Text
		return err == nil && strings.Contains(m.Subject, "Nuova proposta di invio") && m.To[0].Address == "invii@recv.test"
	})
	link := regexp.MustCompile(`http://\S+/mail/link/\S+`).FindString(text)
	if !strings.HasPrefix(link, "http://"+listen+"/mail/link/") {
		t.Fatalf("no accept link in:\n%s", text)
	}
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		req, _ := http.NewRequestWithContext(context.Background(), method, link, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s %s: %d\n%s", method, link, resp.StatusCode, body)
		}
	}
	waitFor(t, "the acceptance", func() bool {
		code, v := getReferral(t, p.HTTP, tokens[ref], id)
		return code == http.StatusOK && len(v.Placements) == 1 && v.Placements[0].Status == "accepted"
	})
	var metrics string
	waitFor(t, "the e-mail metrics", func() bool {
		resp, err := http.Get("http://" + p.HTTP + "/metrics") //nolint:noctx // a test
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		metrics = string(b)
		return strings.Contains(metrics, `invictus_email_link_answers_total{result="accepted"} 1`)
	})
	if !strings.Contains(metrics, "invictus_email_sender_leader 1") {
		t.Errorf("the node does not say it sends:\n%s", metrics)
	}
	if code := p.stop(); code != exitOK {
		t.Errorf("exit %d\n%s", code, p.errOut)
	}
}

// metricsOf returns the /metrics text served at addr ("" on failure).
func metricsOf(addr string) string {
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, "http://"+addr+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestAdapterEmailBesideServe runs `invictus adapter email` as a process
// of its own beside a node that sends e-mail too: one of them holds the
// lease and sends, the other waits, and every message arrives once.
func TestAdapterEmailBesideServe(t *testing.T) {
	t.Parallel()
	mp := mailpit.Start(t)
	data := t.TempDir()
	listen := freeAddr(t)
	p := serveInProcess(t, fakeEnv(nil), "--data", data, "--listen", listen,
		"--smtp-url", mp.URL(), "--mail-from", "referrals@node.test", "--public-url", "http://"+listen)
	waitFor(t, "the node to send", func() bool { return strings.Contains(metricsOf(p.HTTP), "invictus_email_sender_leader 1") })

	adapterAddr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var errOut syncBuffer
	go func() {
		done <- run(ctx, []string{"adapter", "email", "--nats-url", "nats://" + p.NATS,
			"--nats-creds", data + "/keys/admin.nk", "--smtp-url", mp.URL(), "--mail-from", "referrals@node.test",
			"--public-url", "http://" + listen, "--listen", adapterAddr}, io.Discard, &errOut)
	}()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != exitOK {
			t.Errorf("adapter email exit %d:\n%s", code, errOut.String())
		}
	})
	waitFor(t, "the adapter to run", func() bool {
		return strings.Contains(metricsOf(adapterAddr), "invictus_email_sender_leader 0")
	})

	nc := connectAdmin(t, p.NATS, data)
	ref, recv := "pt.mail-ref2", "pt.mail-recv2"
	d := testOrgsDirectory(t, ref, recv)
	o := d.Organisation(recv)
	o.ReferralChannel = directory.ReferralChannelEmail
	o.ReferralContact = directory.Contact{Role: "Referral desk", Email: "desk@recv2.test"}
	tokens := provisionTestOrgs(t, nc, d, false)
	const n = 3
	for range n {
		if res := postCommand(t, p.HTTP, tokens[ref], ref, events.NewReferralID(), testRequested(recv)); res.Status != httpapi.StatusAccepted {
			t.Fatalf("referral.requested: %+v", res)
		}
	}
	waitFor(t, "the offers", func() bool { total, err := mp.Total(); return err == nil && total >= n })
	ms, err := mp.Messages()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, m := range ms {
		seen[m.MessageID] = true
	}
	node, adapter := metricsOf(p.HTTP), metricsOf(adapterAddr)
	t.Logf("node and adapter: received %d, distinct %d", len(ms), len(seen))
	if len(ms) != n || len(seen) != n || strings.Contains(adapter, `invictus_email_messages_total{result="sent"}`) ||
		!strings.Contains(node, `invictus_email_messages_total{result="sent"} 3`) {
		t.Errorf("received %d (%d distinct), want %d; the adapter must not have sent:\n%s", len(ms), len(seen), n, adapter)
	}
}

// TestAdapterEmailFailures: an offer the SMTP server refuses (5xx) is
// listed by `invictus adapter email failures`, for its organisation and
// for all, and the referrer is told by a delivery.failed event (which
// `invictus inbox` shows) and, as it receives by e-mail, by e-mail.
func TestAdapterEmailFailures(t *testing.T) {
	t.Parallel()
	// Mailpit refuses every recipient but the referrer's desk.
	mp := mailpit.Start(t, "--smtp-allowed-recipients", `^desk@ref3\.test$`)
	data := t.TempDir()
	listen := freeAddr(t)
	p := serveInProcess(t, fakeEnv(nil), "--data", data, "--listen", listen,
		"--smtp-url", mp.URL(), "--mail-from", "referrals@node.test", "--public-url", "http://"+listen)
	nc := connectAdmin(t, p.NATS, data)
	ref, recv := "pt.mail-ref3", "pt.mail-recv3"
	d := testOrgsDirectory(t, ref, recv)
	for _, id := range []string{ref, recv} {
		o := d.Organisation(id)
		o.ReferralChannel = directory.ReferralChannelEmail
		o.ReferralContact = directory.Contact{Role: "Referral desk", Email: "desk@" + strings.TrimPrefix(id, "pt.mail-") + ".test"}
	}
	tokens := provisionTestOrgs(t, nc, d, false)
	id := events.NewReferralID()
	if res := postCommand(t, p.HTTP, tokens[ref], ref, id, testRequested(recv)); res.Status != httpapi.StatusAccepted {
		t.Fatalf("referral.requested: %+v", res)
	}
	waitFor(t, "the referrer's notice", func() bool { total, err := mp.Total(); return err == nil && total >= 1 })
	ms, err := mp.Messages()
	if err != nil || len(ms) != 1 || !strings.Contains(ms[0].Subject, "não pôde ser entregue a") {
		t.Fatalf("messages: %+v, %v", ms, err)
	}
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"--org", recv}, []string{recv, "offer", id, "1 failures"}},
		{nil, []string{recv, "1 failures"}},
		{[]string{"--org", ref}, []string{"0 failures"}},
		{[]string{"--org", recv, "--json"}, []string{`"organisation":"` + recv + `"`, `"kind":"offer"`, `"smtp_code":5`}},
	} {
		var out, errOut bytes.Buffer
		args := append([]string{"adapter", "email", "failures", "--nats-url", "nats://" + p.NATS, "--nats-creds", data + "/keys/admin.nk"}, c.args...)
		if code := run(context.Background(), args, &out, &errOut); code != exitOK {
			t.Fatalf("%v: exit %d\n%s", c.args, code, errOut.String())
		}
		for _, w := range c.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("%v: no %q in\n%s", c.args, w, out.String())
			}
		}
		if c.want[0] == recv && !regexp.MustCompile(`\s5\d\d\s`).MatchString(out.String()) {
			t.Errorf("%v: no 5xx SMTP code in\n%s", c.args, out.String())
		}
	}
	// The receiver's administrator sees the failure in the console; the
	// referrer's administrator does not, and sees the undelivered offer
	// in the referral's timeline.
	base := "http://" + listen
	getRecv := consoleAs(t, base, data, "rita", recv, "org_admin")
	if status, body := getRecv("/console/en/failures"); status != http.StatusOK || !strings.Contains(body, `id="failures-list"`) ||
		!strings.Contains(body, id) || !regexp.MustCompile(`SMTP 5\d\d`).MatchString(body) || !strings.Contains(body, "<td>Offer</td>") {
		t.Errorf("the receiver's failures page: %d\n%s", status, body)
	}
	getRef := consoleAs(t, base, data, "rui", ref, "org_admin")
	if status, body := getRef("/console/en/failures"); status != http.StatusOK || !strings.Contains(body, `id="failures-none"`) || strings.Contains(body, id) {
		t.Errorf("the referrer's failures page: %d\n%s", status, body)
	}
	if status, body := getRef("/console/en/referrals/" + id); status != http.StatusOK || strings.Count(body, "Offer not delivered") != 1 {
		t.Errorf("the referrer's timeline: %d\n%s", status, body)
	}
	// The referrer's inbox shows the event once.
	creds := filepath.Join(t.TempDir(), ref+".nk")
	if code, out, errOut := runArgs(t, "creds", ref, "--data", data, "-o", creds); code != exitOK {
		t.Fatalf("creds: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut := runArgs(t, "inbox", "--nats-url", "nats://"+p.NATS, "--org", ref, "--creds", creds, "--type", "delivery.failed")
	if code != exitOK || strings.Count(out, "delivery.failed") != 1 ||
		!regexp.MustCompile(`the offer could not be delivered to `+regexp.QuoteMeta(recv)+` by email \(refused, SMTP 5\d\d, 1 attempt\(s\)\)`).MatchString(out) {
		t.Errorf("inbox of the referrer: exit %d\n%s%s", code, out, errOut)
	}
	var errOut2 bytes.Buffer
	if code := run(context.Background(), []string{"adapter", "email", "failures", "--org", "nope", "--nats-url", "nats://" + p.NATS}, io.Discard, &errOut2); code == exitOK || !strings.Contains(errOut2.String(), "--org") {
		t.Errorf("a bad --org: exit %d\n%s", code, errOut2.String())
	}
}

// TestBenchEmail: `invictus bench email` sends through a raw loop and
// through the adapter to Mailpit, in the same run, and prints both rates;
// every message arrives. A missing or wrong --smtp-url is refused.
func TestBenchEmail(t *testing.T) {
	t.Parallel()
	mp := mailpit.Start(t)
	code, out, errOut := runArgs(t, "bench", "email", "--smtp-url", mp.URL(), "--messages", "20")
	if code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	t.Log(out)
	for _, re := range []string{`messages per side: 20`, `raw SMTP loop: +[0-9.]+ msg/s +[0-9.]+ ms CPU/msg`, `e-mail adapter: +[0-9.]+ msg/s`, `adapter / raw: +[0-9.]+×`} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("no %q in\n%s", re, out)
		}
	}
	if total, err := mp.Total(); err != nil || total != 40 {
		t.Errorf("Mailpit received %d, %v; want 40", total, err)
	}
	for _, c := range [][]string{{"bench", "email"}, {"bench", "email", "--smtp-url", "ftp://x"}, {"bench", "email", "--smtp-url", mp.URL(), "--messages", "0"}} {
		if code, _, errOut := runArgs(t, c...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d\n%s", c, code, exitUsage, errOut)
		}
	}
}
