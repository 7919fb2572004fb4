package httpapi_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/invictus-network/invictus/adapters/httpapi"
	"github.com/invictus-network/invictus/events"
)

func TestIsPublic(t *testing.T) {
	t.Parallel()
	notPublic := []string{
		"127.0.0.1", "127.255.255.254", "::1", "10.0.0.1", "172.16.5.4", "192.168.1.1",
		"169.254.169.254", "169.254.0.1", "fe80::1", "0.0.0.0", "::", "0.1.2.3",
		"224.0.0.1", "239.255.255.250", "ff02::1", "100.64.0.1", "100.127.255.254",
		"fc00::1", "fd00:ec2::254", "255.255.255.255", "240.0.0.1", "198.18.0.1",
		"192.0.2.1", "2001:db8::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254",
		"64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe", "2002:7f00:1::1", "2002:a00:1::1", "::127.0.0.1",
		"fec0::1",
	}
	public := []string{"93.184.215.14", "1.1.1.1", "8.8.8.8", "2606:4700:4700::1111", "::ffff:93.184.215.14", "64:ff9b::808:808", "2002:808:808::1", "100.128.0.1", "172.32.0.1"}
	for _, s := range notPublic {
		if httpapi.IsPublic(netip.MustParseAddr(s)) {
			t.Errorf("%s: public; want not", s)
		}
	}
	for _, s := range public {
		if !httpapi.IsPublic(netip.MustParseAddr(s)) {
			t.Errorf("%s: not public; want public", s)
		}
	}
	t.Logf("tried %d non-public addresses, all refused; %d public ones, all allowed", len(notPublic), len(public))
}

// countingListener is a real TLS listener on 127.0.0.1 that counts the
// connections it accepts.
type countingListener struct {
	srv   *httptest.Server
	conns atomic.Int64
	hits  atomic.Int64
}

func newCountingListener(t *testing.T) *countingListener {
	cl := &countingListener{}
	cl.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		cl.hits.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	cl.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			cl.conns.Add(1)
		}
	}
	cl.srv.StartTLS()
	t.Cleanup(cl.srv.Close)
	return cl
}

func (cl *countingListener) port() string {
	_, p, _ := net.SplitHostPort(cl.srv.Listener.Addr().String())
	return p
}

// By default a webhook cannot be registered for a target that is not
// public, whatever the form of the address or the name that leads there;
// the real listener behind them is never contacted.
func TestWebhookRegistrationRefusesPrivateTargets(t *testing.T) {
	t.Parallel()
	cl := newCountingListener(t)
	port := cl.port()
	resolver := testResolver{
		"localhost":                {netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")},
		"metadata.google.internal": {netip.MustParseAddr("169.254.169.254")},
		"mixed.example.org":        {netip.MustParseAddr("93.184.215.14"), netip.MustParseAddr("10.1.2.3")},
		"example.org":              {netip.MustParseAddr("93.184.215.14")},
	}
	b := setup(t, options{httpsOnly: true, cfg: httpapi.Config{Webhooks: httpapi.WebhookConfig{Resolver: resolver}}})
	tok := b.orgToken(orgA1)
	targets := []string{
		"https://127.0.0.1:" + port + "/hook",
		"https://[::1]:" + port + "/hook",
		"https://localhost:" + port + "/hook",
		"http://127.0.0.1:" + port + "/hook",
		"https://10.0.0.1/hook",
		"https://172.16.0.1/hook",
		"https://192.168.0.1/hook",
		"https://169.254.169.254/latest/meta-data/",
		"https://metadata.google.internal/computeMetadata/v1/",
		"https://[fd00:ec2::254]/",
		"https://100.64.0.1/",
		"https://0.0.0.0:" + port + "/",
		"https://[::]:" + port + "/",
		"https://224.0.0.1/",
		"https://[fe80::1%25eth0]/",
		"https://[::ffff:127.0.0.1]:" + port + "/",
		"https://[::ffff:169.254.169.254]/",
		"https://[64:ff9b::7f00:1]/",
		"https://[2002:7f00:1::1]/",
		"https://mixed.example.org/",
		"https://2130706433/",
		"https://0x7f.0.0.1/",
		"https://unknown.invalid/",
	}
	refused := 0
	for _, u := range targets {
		r := b.postJSON("/v1/webhooks", tok, map[string]string{"url": u})
		if r.status != http.StatusUnprocessableEntity {
			t.Errorf("%s: status %d %s; want 422", u, r.status, r.body)
			continue
		}
		p := r.errors(t)[0]
		if p.Pointer != "/url" || (p.Code != httpapi.CodeNotPublic && p.Code != httpapi.CodeUnresolvable && p.Code != events.CodeFormat) {
			t.Errorf("%s: %+v", u, p)
			continue
		}
		refused++
	}
	t.Logf("webhook registration: tried %d private targets, refused %d", len(targets), refused)
	if r := b.get("/v1/webhooks", tok); !strings.Contains(string(r.body), `"webhooks":[]`) {
		t.Fatalf("webhooks stored: %s", r.body)
	}
	if n := cl.conns.Load(); n != 0 {
		t.Fatalf("the listener on 127.0.0.1 got %d connections", n)
	}
	if r := b.postJSON("/v1/webhooks", tok, map[string]string{"url": "https://example.org/hook"}); r.status != http.StatusCreated {
		t.Fatalf("a public target: status %d %s", r.status, r.body)
	}
}

// With AllowPrivate (serve --allow-private-webhooks) the same real
// listeners on 127.0.0.1 are registered and receive deliveries, over
// https and over http to loopback; http to a private address that is not
// loopback stays refused.
func TestWebhookAllowPrivateForDevelopment(t *testing.T) {
	t.Parallel()
	tlsL := newCountingListener(t)
	plain := newReceiver(t, 0)
	pool := x509.NewCertPool()
	pool.AddCert(tlsL.srv.Certificate())
	resolver := testResolver{"localhost": {netip.MustParseAddr("127.0.0.1")}}
	b := setup(t, options{router: true, cfg: httpapi.Config{Webhooks: httpapi.WebhookConfig{
		Resolver: resolver, TLS: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
	}}})
	tok := b.orgToken(orgRef)
	for _, u := range []string{tlsL.srv.URL + "/hook", plain.srv.URL + "/hook"} {
		r := b.postJSON("/v1/webhooks", tok, map[string]string{"url": u})
		if r.status != http.StatusCreated {
			t.Fatalf("%s: status %d %s", u, r.status, r.body)
		}
		var h httpapi.Webhook
		r.decode(t, &h)
		if strings.HasPrefix(u, "http://") {
			plain.setSecret(h.Secret)
		}
	}
	if r := b.postJSON("/v1/webhooks", tok, map[string]string{"url": "http://10.0.0.1/hook"}); r.status != http.StatusUnprocessableEntity {
		t.Fatalf("http to 10.0.0.1: status %d; want 422", r.status)
	}
	b.refer()
	b.eventually("deliveries to both listeners", func() bool { return tlsL.hits.Load() >= 1 && len(plain.got()) >= 1 })
}

// mutableResolver answers from a map that the test changes: DNS that
// changes its answer after registration (DNS rebinding).
type mutableResolver struct {
	mu sync.Mutex
	m  map[string][]netip.Addr
}

func (r *mutableResolver) set(host string, ips ...netip.Addr) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.m[host] = ips
}

func (r *mutableResolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return testResolver(r.m).LookupNetIP(ctx, network, host)
}

// A name that resolved to a public address at registration and resolves
// to 127.0.0.1 at delivery is refused at the connection, and the delivery
// log says the same for an open port as for a closed one.
func TestWebhookCheckedAtEveryConnection(t *testing.T) {
	t.Parallel()
	open := newCountingListener(t)
	closedLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, closedPort, _ := net.SplitHostPort(closedLn.Addr().String())
	closedLn.Close()
	res := &mutableResolver{m: map[string][]netip.Addr{}}
	public := netip.MustParseAddr("93.184.215.14")
	res.set("open.example.org", public)
	res.set("closed.example.org", public)
	b := setup(t, options{router: true, httpsOnly: true, cfg: httpapi.Config{Webhooks: httpapi.WebhookConfig{Resolver: res, Attempts: 1}}})
	tok := b.orgToken(orgRef)
	var hooks []httpapi.Webhook
	for _, u := range []string{"https://open.example.org:" + open.port() + "/hook", "https://closed.example.org:" + closedPort + "/hook"} {
		var h httpapi.Webhook
		r := b.postJSON("/v1/webhooks", tok, map[string]string{"url": u})
		if r.status != http.StatusCreated {
			t.Fatalf("%s: status %d %s", u, r.status, r.body)
		}
		r.decode(t, &h)
		hooks = append(hooks, h)
	}
	loopback := netip.MustParseAddr("127.0.0.1")
	res.set("open.example.org", loopback)
	res.set("closed.example.org", loopback)

	b.refer() // the referrer receives planned and its copy of the offer
	var errs [2]string
	for i, h := range hooks {
		var log struct {
			Deliveries []httpapi.WebhookAttempt `json:"deliveries"`
		}
		b.eventually("the attempts of "+h.URL, func() bool {
			b.get("/v1/webhooks/"+h.ID+"/deliveries", tok).decode(t, &log)
			return len(log.Deliveries) >= 2
		})
		for _, a := range log.Deliveries {
			if a.Result != httpapi.ResultGaveUp || a.StatusCode != 0 {
				t.Fatalf("%s: %+v; want given up without an answer", h.URL, a)
			}
			if errs[i] == "" {
				errs[i] = a.Error
			} else if a.Error != errs[i] {
				t.Fatalf("%s: errors differ: %q, %q", h.URL, errs[i], a.Error)
			}
		}
	}
	if errs[0] != errs[1] || !strings.Contains(errs[0], "public") {
		t.Fatalf("open port: %q; closed port: %q; want the same refusal", errs[0], errs[1])
	}
	if n := open.conns.Load(); n != 0 {
		t.Fatalf("the listener on 127.0.0.1 got %d connections", n)
	}
	t.Logf("delivery: 4 attempts to targets rebound to 127.0.0.1 (open and closed port), 4 refused alike: %q", errs[0])
}
