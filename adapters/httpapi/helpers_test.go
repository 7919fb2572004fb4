package httpapi_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/invictus-network/invictus/adapters/httpapi"
	"github.com/invictus-network/invictus/adapters/natsjs"
	"github.com/invictus-network/invictus/directory"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/internal/testenv"
	"github.com/invictus-network/invictus/internal/testnet"
	"github.com/invictus-network/invictus/reports"
	"github.com/invictus-network/invictus/routing"
)

// The natsjs implementations satisfy the ports: the wiring in cmd/invictus
// is a struct literal.
var (
	_ httpapi.Store       = (*natsjs.KVStore)(nil)
	_ httpapi.CommandSink = (*natsjs.InboundSink)(nil)
	_ httpapi.Outcomes    = (*natsjs.CommandOutcomes)(nil)
	_ httpapi.Timeline    = (*natsjs.ReferralTimeline)(nil)
	_ httpapi.Inbox       = (*natsjs.DeliveryInbox)(nil)
	_ httpapi.StreamStats = (*natsjs.StreamStats)(nil)
	_ httpapi.Directory   = (*directory.View)(nil)
	_ httpapi.Matcher     = (*routing.Matcher)(nil)
)

// Organisations of the test directory: a referrer whose own service is no
// candidate, three organisations ranked a1, a2, a3 for needsA, and a
// local office in Porto.
const (
	orgRef   = "pt.ref"
	orgA1    = "pt.a1"
	orgA2    = "pt.a2"
	orgA3    = "pt.a3"
	orgPorto = "pt.porto"
)

var needsA = []string{events.NeedSupportEmotional, events.NeedInfoRights}

// testDirectory returns the directory of the tests: remote services in
// Portugal for a1..a3 (with a location in Lisbon), the referrer's service
// for info.case, and an in-person office in Porto for
// safety.risk_advice.
func testDirectory(t testing.TB) *directory.Directory {
	t.Helper()
	d := &directory.Directory{}
	add := func(org string, needs []string, langs []string, area directory.ServiceArea, locs []directory.Location) {
		d.Organisations = append(d.Organisations, directory.Organisation{
			ID: org, Name: "Test " + org, Country: "pt", Languages: langs, Synthetic: true,
		})
		d.Services = append(d.Services, directory.Service{
			ID: org + ".support", Organisation: org, Name: "Support of " + org, Status: directory.StatusActive,
			Needs: needs, Languages: langs, Crimes: []string{"domestic_violence"},
			Channels:  []string{events.ChannelPhone, events.ChannelInPerson},
			Area:      area,
			Locations: locs,
			Hours:     directory.Schedule{TimeZone: "Europe/Lisbon", Always: true},
			Capacity:  directory.Capacity{Status: "accepting"},
		})
	}
	lisbon := func(id string) []directory.Location {
		return []directory.Location{{ID: id, Name: "Lisbon office", City: "Lisboa", Country: "pt", Region: "PT170", Lat: 38.72, Lon: -9.14}}
	}
	remote := directory.ServiceArea{Countries: []string{"pt"}, Remote: true}
	add(orgRef, []string{events.NeedInfoCase}, []string{"pt"}, remote, nil)
	add(orgA1, needsA, []string{"pt", "en"}, remote, lisbon("lisboa"))
	add(orgA2, needsA, []string{"pt", "en"}, remote, lisbon("lisboa"))
	add(orgA3, needsA, []string{"pt", "fr"}, remote, lisbon("lisboa"))
	add(orgPorto, []string{events.NeedSafetyRiskAdvice}, []string{"pt"},
		directory.ServiceArea{Countries: []string{"pt"}, Regions: []string{"PT11"}, RadiusKm: 30},
		[]directory.Location{{ID: "porto", Name: "Porto office", City: "Porto", Country: "pt", Region: "PT11A", Lat: 41.15, Lon: -8.61}})
	d.Sort()
	if err := d.Validate(); err != nil {
		t.Fatalf("test directory: %v", err)
	}
	return d
}

// bundle is a running node for a test: embedded NATS with the streams,
// the directory, optionally the routing service, and the API on an
// httptest server.
type bundle struct {
	t      *testing.T
	srv    *natsjs.Server
	nc     *nats.Conn
	js     jetstream.JetStream
	ports  *natsjs.HTTPPorts
	view   *directory.View
	api    *httpapi.Server
	http   *httptest.Server
	logs   *syncBuffer
	tokens map[string]string // "<org>/<role>" -> secret
	// metrics are the API's collectors, the routing service's observer.
	metrics *httpapi.Metrics
	// reports is the coordinators' read model, fed from REFERRALS when
	// options.reports is set.
	reports *reports.Store
}

// options of setup.
type options struct {
	router bool
	cfg    httpapi.Config
	// httpsOnly refuses http:// webhook URLs and private targets (the
	// tests' receivers are http:// on loopback, so it is off by default).
	httpsOnly bool
	// wrapTokens, when set, wraps the token store the API is given.
	wrapTokens func(httpapi.Store) httpapi.Store
	// reports feeds a reports.Store from REFERRALS and serves it.
	reports bool
}

// setup starts a node. With o.router the routing service runs too.
func setup(t *testing.T, o options) *bundle {
	t.Helper()
	ctx := testenv.Context(t)
	b := &bundle{t: t, view: directory.NewView(), logs: &syncBuffer{}, tokens: map[string]string{}, metrics: httpapi.NewMetrics()}
	b.srv, b.nc, b.js = testnet.Plain(t, "")
	var err error
	if b.ports, err = natsjs.NewHTTPPorts(ctx, b.nc, natsjs.StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	b.view.Load(testDirectory(t), 1)
	if o.router {
		b.startRouter()
	}

	cfg := o.cfg
	cfg.Logger = slog.New(slog.NewJSONHandler(b.logs, nil))
	if cfg.Webhooks.Backoff == 0 {
		cfg.Webhooks.Backoff = 10 * time.Millisecond
		cfg.Webhooks.BackoffMax = 40 * time.Millisecond
	}
	cfg.Webhooks.AllowPrivate = !o.httpsOnly
	if cfg.Webhooks.Resolver == nil {
		cfg.Webhooks.Resolver = testResolver{"example.org": {netip.MustParseAddr("93.184.215.14")}}
	}
	cfg.Webhooks.Resync = time.Hour // the API notifies the dispatcher
	if cfg.RatePerSecond == 0 {
		cfg.RatePerSecond, cfg.RateBurst = 1000, 1000
	}
	p := b.ports
	var tokens httpapi.Store = p.Tokens
	if o.wrapTokens != nil {
		tokens = o.wrapTokens(tokens)
	}
	var rep httpapi.Reports
	if o.reports {
		b.reports = reports.NewStore(reports.Config{})
		rep = b.reports
		feed, err := natsjs.NewReportFeed(b.nc, b.reports, natsjs.ReportFeedConfig{})
		if err != nil {
			t.Fatal(err)
		}
		fctx, fcancel := context.WithCancel(context.Background())
		fdone := make(chan error, 1)
		go func() { fdone <- feed.Run(fctx) }()
		t.Cleanup(func() {
			fcancel()
			if err := <-fdone; err != nil {
				t.Errorf("report feed: %v", err)
			}
		})
	}
	b.api, err = httpapi.New(httpapi.Deps{
		Tokens: tokens, Webhooks: p.Webhooks, Commands: p.Commands, Outcomes: p.Outcomes,
		Timeline: p.Timeline, Inbox: p.Inbox, Directory: b.view, Matcher: routing.NewMatcher(routing.Config{}),
		Stats: p.Stats, Ready: map[string]httpapi.Check{"jetstream": p.Ready}, Metrics: b.metrics, Reports: rep,
		Keys: p.Keys,
	}, cfg)
	if err != nil {
		t.Fatalf("httpapi.New: %v", err)
	}
	// The API is served as serve serves it: its timeouts, its limited
	// listener.
	b.http = httptest.NewUnstartedServer(b.api)
	b.http.Config = b.api.HTTPServer(b.api)
	b.http.Listener = b.api.Listener(b.http.Listener)
	b.http.Start()
	t.Cleanup(b.http.Close)
	tctx, tcancel := context.WithCancel(context.Background())
	tdone := make(chan error, 1)
	go func() { tdone <- b.api.Tokens().Follow(tctx) }()
	t.Cleanup(func() {
		tcancel()
		if err := <-tdone; err != nil {
			t.Errorf("tokens: %v", err)
		}
	})
	dctx, dcancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.api.Dispatcher().Run(dctx) }()
	t.Cleanup(func() {
		dcancel()
		if err := <-done; err != nil {
			t.Errorf("dispatcher: %v", err)
		}
	})
	return b
}

// startRouter runs the routing service on its own connection until the
// test ends.
func (b *bundle) startRouter() {
	testnet.RunRouter(b.t, b.srv, b.view, natsjs.NodeConfig{
		Service: routing.ServiceConfig{Observer: b.metrics},
		Router:  natsjs.RouterConfig{AckWait: 2 * time.Second, RetryDelay: 20 * time.Millisecond, Workers: 2},
	})
}

// token returns a token of org with role, made once per bundle.
func (b *bundle) token(org string, role httpapi.Role) string {
	b.t.Helper()
	key := org + "/" + string(role)
	if tok, ok := b.tokens[key]; ok {
		return tok
	}
	secret, _, err := b.api.Tokens().Create(context.Background(), org, role, "test "+key)
	if err != nil {
		b.t.Fatalf("create token: %v", err)
	}
	b.tokens[key] = secret
	return secret
}

// orgToken is token(org, RoleOrganisation).
func (b *bundle) orgToken(org string) string { return b.token(org, httpapi.RoleOrganisation) }

// response is a response read in full.
type response struct {
	status int
	header http.Header
	body   []byte
}

// decode decodes the body into v.
func (r response) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// errors returns the problems of an error body.
func (r response) errors(t testing.TB) []httpapi.Problem {
	t.Helper()
	var eb httpapi.ErrorBody
	r.decode(t, &eb)
	if len(eb.Errors) == 0 {
		t.Fatalf("status %d: no errors in %s", r.status, r.body)
	}
	return eb.Errors
}

// do sends a request with the token (none when empty) and reads the answer.
func (b *bundle) do(method, path, token string, body []byte, header http.Header) response {
	b.t.Helper()
	req, err := http.NewRequestWithContext(b.t.Context(), method, b.http.URL+path, bytes.NewReader(body))
	if err != nil {
		b.t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: data}
}

func (b *bundle) get(path, token string) response { return b.do(http.MethodGet, path, token, nil, nil) }

// postJSON posts v as application/json.
func (b *bundle) postJSON(path, token string, v any) response {
	b.t.Helper()
	body, err := json.Marshal(v)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(http.MethodPost, path, token, body, http.Header{"Content-Type": {"application/json"}})
}

// postEvent posts e in the structured content mode.
func (b *bundle) postEvent(path, token string, e event.Event) response {
	b.t.Helper()
	body, err := json.Marshal(e)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(http.MethodPost, path, token, body, http.Header{"Content-Type": {"application/cloudevents+json"}})
}

// newEvent builds a valid event of org about referral id.
func newEvent(t testing.TB, org, id string, p events.Payload) event.Event {
	t.Helper()
	e, err := events.New(events.SourceOf(org), id, p)
	if err != nil {
		t.Fatalf("events.New: %v", err)
	}
	return e
}

// requested returns a referral.requested payload of the referrer for
// support.emotional in Lisbon.
func requested() *events.Requested {
	lat, lon := 38.72, -9.14
	return &events.Requested{
		Profile: events.Profile{
			Needs: []string{events.NeedSupportEmotional}, Crimes: []string{"domestic_violence"},
			Urgency:   events.UrgencyUrgent,
			Location:  events.Location{Country: "pt", Region: "PT17", Lat: &lat, Lon: &lon},
			Languages: []string{"pt"}, AgeBand: "adult", Channels: []string{events.ChannelPhone},
		},
		Consent: events.Consent{Referral: true, GivenAt: time.Now().UTC().Add(-time.Minute), Method: "verbal", RecordedBy: "staff-s001"},
	}
}

// refer sends a referral of the referrer and waits until it is offered to
// a1; it returns the referral id.
func (b *bundle) refer() string {
	b.t.Helper()
	id := events.NewReferralID()
	r := b.postEvent("/v1/events?wait=10s", b.orgToken(orgRef), newEvent(b.t, orgRef, id, requested()))
	if r.status != http.StatusCreated {
		b.t.Fatalf("refer: status %d: %s", r.status, r.body)
	}
	b.eventually("the offer to a1", func() bool { return b.hasDelivery(orgA1, id, events.TypeReferralOffered) })
	return id
}

// hasDelivery reports whether org's inbox holds an event of typ about id.
func (b *bundle) hasDelivery(org, id, typ string) bool {
	found := false
	err := b.ports.Inbox.Read(b.t.Context(), org, 0, 1000, func(_ uint64, m events.Message) error {
		env, err := events.Decode(m)
		if err == nil && env.Event.Subject() == id && env.Event.Type() == typ {
			found = true
		}
		return nil
	})
	if err != nil {
		b.t.Fatalf("read inbox: %v", err)
	}
	return found
}

// eventually polls cond until it holds (see testenv.Await).
func (b *bundle) eventually(what string, cond func() bool) {
	b.t.Helper()
	eventually(b.t, what, cond)
}

// eventually polls cond until it holds: the test binary's timeout, not a
// clock, bounds the wait (see testenv.Await).
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	testenv.Await(t, what, cond)
}

// syncBuffer is a buffer safe for concurrent writes.
type syncBuffer = testenv.SyncBuffer

// sseEvent is one server-sent event.
type sseEvent struct {
	id, event, data string
}

// sseStream reads server-sent events from a response.
type sseStream struct {
	resp   *http.Response
	cancel context.CancelFunc
	events chan sseEvent
	done   chan struct{}
}

// openStream opens the inbox as an event stream, resuming after lastID
// when it is not empty.
func (b *bundle) openStream(token, lastID string) *sseStream {
	b.t.Helper()
	ctx, cancel := context.WithCancel(b.t.Context())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.http.URL+"/v1/inbox", nil)
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "text/event-stream")
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req) //nolint:bodyclose // closed by sseStream.close
	if err != nil {
		cancel()
		b.t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		cancel()
		resp.Body.Close()
		b.t.Fatalf("stream: status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	s := &sseStream{resp: resp, cancel: cancel, events: make(chan sseEvent, 64), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		defer close(s.events)
		r := bufio.NewReader(resp.Body)
		var ev sseEvent
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimRight(line, "\n")
			switch {
			case line == "":
				if ev.data != "" {
					s.events <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "id: "):
				ev.id = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "event: "):
				ev.event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				ev.data += strings.TrimPrefix(line, "data: ")
			}
		}
	}()
	b.t.Cleanup(s.close)
	return s
}

// next returns the next event (see testenv.Await for how long it waits).
func (s *sseStream) next(t testing.TB) sseEvent {
	t.Helper()
	var ev sseEvent
	testenv.Await(t, "a server-sent event", func() bool {
		select {
		case e, ok := <-s.events:
			if !ok {
				t.Fatal("the stream ended")
			}
			ev = e
			return true
		default:
			return false
		}
	})
	return ev
}

func (s *sseStream) close() {
	s.cancel()
	s.resp.Body.Close()
	<-s.done
}

// testResolver answers names from a map, as DNS would: the tests run
// without DNS.
type testResolver map[string][]netip.Addr

func (r testResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if ips, ok := r[host]; ok {
		return ips, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}
