package console_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/pquerna/otp/totp"

	"github.com/invictus-network/invictus/adapters/natsjs"
	"github.com/invictus-network/invictus/adapters/web/console"
	"github.com/invictus-network/invictus/directory"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/internal/testenv"
	"github.com/invictus-network/invictus/internal/testnet"
	"github.com/invictus-network/invictus/routing"
)

// The natsjs implementations satisfy the console's ports.
var (
	_ console.Store       = (*natsjs.KVStore)(nil)
	_ console.CommandSink = (*natsjs.InboundSink)(nil)
	_ console.Outcomes    = (*natsjs.CommandOutcomes)(nil)
	_ console.Timeline    = (*natsjs.ReferralTimeline)(nil)
	_ console.Inbox       = (*natsjs.DeliveryInbox)(nil)
	_ console.Directory   = (*directory.View)(nil)
	_ console.Matcher     = (*routing.Matcher)(nil)
)

// demoDir is the demo directory that `invictus serve --demo` loads.
var demoDir = sync.OnceValue(func() *directory.Directory {
	d, err := directory.Demo(1)
	if err != nil {
		panic(err)
	}
	return d
})

// bundle is a running node: embedded NATS with the streams, the routing
// service, and the console on an httptest server.
type bundle struct {
	t      testing.TB
	srv    *console.Server
	ports  *natsjs.HTTPPorts
	stores *natsjs.ConsoleStores
	http   *httptest.Server
	url    string
	// skew moves the console's clock: sessions expire, codes step on.
	skew atomic.Int64
	logs *syncBuffer
	// bodies records every request body the console received.
	bodies *syncBuffer
	js     jetstream.JetStream
	// view is the directory the console and the routing service read;
	// dir its bucket, with setupListing.
	view *directory.View
	dir  *natsjs.DirectoryStore
}

// now is the console's clock.
func (b *bundle) now() time.Time { return time.Now().Add(time.Duration(b.skew.Load())) }

// advance moves the clock forward.
func (b *bundle) advance(d time.Duration) { b.skew.Add(int64(d)) }

// syncBuffer is a buffer safe for concurrent writes.
type syncBuffer = testenv.SyncBuffer

// setup starts a node with the demo directory and the routing service.
func setup(t testing.TB) *bundle {
	t.Helper()
	return setupNode(t, demoDir(), false)
}

// setupWith starts a node with the directory and the routing service.
func setupWith(t testing.TB, dir *directory.Directory) *bundle {
	t.Helper()
	return setupNode(t, dir, false)
}

// setupListing is setup with the demo directory imported into the
// directory bucket, followed into the view (as serve does), and the
// routing service applying organisations' listing commands to it.
func setupListing(t testing.TB) *bundle {
	t.Helper()
	return setupNode(t, demoDir(), true)
}

// setupNode starts a node with dir (or, with kv, the demo directory in
// the directory bucket) and the routing service.
func setupNode(t testing.TB, dir *directory.Directory, kv bool) *bundle {
	t.Helper()
	ctx := testenv.Context(t)
	srv, nc, js := testnet.Plain(t, "")
	b := &bundle{t: t, logs: &syncBuffer{}, bodies: &syncBuffer{}, js: js}
	var err error
	if b.ports, err = natsjs.NewHTTPPorts(ctx, nc, natsjs.StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	if b.stores, err = natsjs.NewConsoleStores(ctx, nc, natsjs.StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	view := directory.NewView()
	b.view = view
	var listings natsjs.Listings
	var approvals console.Approvals
	if kv {
		b.dir = followDirectory(t, ctx, js, view)
		listings, approvals = b.dir, b.dir
	} else {
		view.Load(dir, 1)
	}
	testnet.RunRouter(t, srv, view, natsjs.NodeConfig{
		Router: natsjs.RouterConfig{AckWait: 5 * time.Second, RetryDelay: 20 * time.Millisecond, Workers: 2, Listings: listings},
	})
	b.srv, err = console.New(console.Deps{
		Accounts: b.stores.Accounts, Sessions: b.stores.Sessions, Audit: b.stores.Audit,
		Commands: b.ports.Commands, Outcomes: b.ports.Outcomes, Timeline: b.ports.Timeline, Inbox: b.ports.Inbox,
		Directory: view, Matcher: routing.NewMatcher(routing.Config{}), Keys: b.ports.Keys,
		Approvals: approvals,
	}, console.Config{Now: b.now, Logger: slog.New(slog.NewJSONHandler(b.logs, nil)), SignInRate: 1000})
	if err != nil {
		t.Fatal(err)
	}
	b.http = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil {
			body, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, "bad body", http.StatusBadRequest)
				return
			}
			_, _ = b.bodies.Write(append(body, '\n'))
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		b.srv.ServeHTTP(w, r)
	}))
	t.Cleanup(b.http.Close)
	b.url = b.http.URL
	return b
}

// followDirectory imports the demo directory into the directory bucket
// and keeps view current with it until the test ends; it returns the
// store.
func followDirectory(t testing.TB, ctx context.Context, js jetstream.JetStream, view *directory.View) *natsjs.DirectoryStore {
	t.Helper()
	store, err := natsjs.NewDirectoryStore(ctx, js, natsjs.DirectoryStoreConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.ImportDirectory(ctx, demoDir(), nil); err != nil {
		t.Fatal(err)
	}
	f := natsjs.NewDirectoryFollower(store.KeyValue(), view, nil)
	fctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(fctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("follower: %v", err)
		}
	})
	select {
	case <-f.Ready():
	case err := <-done:
		t.Fatalf("follower: %v", err)
	}
	return store
}

// person is an account of a test with its password.
type person struct {
	name, password, org string
	secret              string // the second factor, once enrolled
}

// addPerson creates an account.
func (b *bundle) addPerson(name string, role console.Role, org string) *person {
	b.t.Helper()
	p := &person{name: name, password: "correct horse " + name, org: org}
	if _, err := b.srv.Accounts().Add(b.t.Context(), name, role, org, "", p.password); err != nil {
		b.t.Fatal(err)
	}
	return p
}

// code returns the current second-factor code of secret on the console's
// clock, stepping the clock on so that no code is used twice.
func (b *bundle) code(secret string) string {
	b.t.Helper()
	b.advance(31 * time.Second)
	c, err := totp.GenerateCode(strings.ReplaceAll(secret, " ", ""), b.now())
	if err != nil {
		b.t.Fatal(err)
	}
	return c
}

// client is a person's HTTP client with its own cookies.
type client struct {
	b    *bundle
	hc   *http.Client
	csrf string
}

func (b *bundle) client() *client {
	jar, _ := cookiejar.New(nil)
	return &client{b: b, hc: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// page is a response read in full.
type page struct {
	status   int
	location string
	body     string
}

func (c *client) do(method, path string, form url.Values) page {
	c.b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(c.b.t.Context(), method, c.b.url+path, body)
	if err != nil {
		c.b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.b.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	p := page{status: resp.StatusCode, location: resp.Header.Get("Location"), body: string(b)}
	if i := strings.Index(p.body, `name="csrf" value="`); i >= 0 {
		rest := p.body[i+len(`name="csrf" value="`):]
		c.csrf = rest[:strings.IndexByte(rest, '"')]
	}
	return p
}

func (c *client) get(path string) page { return c.do(http.MethodGet, path, nil) }

// post posts form with the last page's CSRF token.
func (c *client) post(path string, form url.Values) page {
	if form.Get("csrf") == "" && c.csrf != "" {
		form.Set("csrf", c.csrf)
	}
	return c.do(http.MethodPost, path, form)
}

// signIn signs p in over HTTP, enrolling the second factor the first
// time, and fails the test if it does not end on the console's home.
func (c *client) signIn(p *person) {
	t := c.b.t
	t.Helper()
	c.get("/console/en/signin")
	r := c.post("/console/en/signin", url.Values{"username": {p.name}, "password": {p.password}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("sign in %s: status %d", p.name, r.status)
	}
	if strings.HasSuffix(r.location, "/enrol") {
		r = c.get(r.location)
		i := strings.Index(r.body, `id="totp-secret">`)
		if i < 0 {
			t.Fatalf("enrol page without a key: %s", r.body)
		}
		rest := r.body[i+len(`id="totp-secret">`):]
		p.secret = strings.ReplaceAll(rest[:strings.IndexByte(rest, '<')], " ", "")
		r = c.post("/console/en/enrol", url.Values{"code": {c.b.code(p.secret)}})
	} else {
		c.get(r.location)
		r = c.post("/console/en/code", url.Values{"code": {c.b.code(p.secret)}})
	}
	if r.status != http.StatusSeeOther || !strings.HasSuffix(r.location, "/en/") {
		t.Fatalf("second factor of %s: status %d to %q", p.name, r.status, r.location)
	}
	c.get(r.location)
}

// signedIn adds a person and returns her with a client signed in as her.
func (b *bundle) signedIn(name string, role console.Role, org string) (*person, *client) {
	b.t.Helper()
	p := b.addPerson(name, role, org)
	c := b.client()
	c.signIn(p)
	return p, c
}

// offer is a referral that ana, a caseworker of pt.apav, sent, with a
// person of the organisation offered its first placement signed in.
type offer struct {
	id, offered string
	ana, to     *person
	ca, ct      *client // ana's and to's
}

// referOffered has ana refer (see refer) and signs in name, with role, of
// the organisation offered the referral.
func referOffered(t *testing.T, b *bundle, name string, role console.Role) *offer {
	t.Helper()
	o := &offer{}
	o.ana, o.ca = b.signedIn("ana", console.RoleCaseworker, "pt.apav")
	o.id, o.offered = refer(t, b, o.ca)
	o.to, o.ct = b.signedIn(name, role, o.offered)
	return o
}

// accept has the offered person accept placement p1, and waits for the
// event.
func (o *offer) accept(t *testing.T, b *bundle) {
	t.Helper()
	o.ct.get("/console/en/referrals/" + o.id)
	if r := o.ct.post("/console/en/referrals/"+o.id, url.Values{"action": {"accept"}, "placement": {"p1"}}); r.status != http.StatusSeeOther {
		t.Fatalf("accept: status %d", r.status)
	}
	b.waitEvent(o.id, events.TypeReferralAccepted)
}

// validAssessment is a complete assessment form: emotional support in
// Lisbon, in Portuguese.
func validAssessment() url.Values {
	return url.Values{
		"needs": {"support.emotional"}, "urgency": {"soon"}, "crimes": {"domestic_violence"}, "flags": {"close_relationship_offender"},
		"country": {"pt"}, "city": {lisbonID()}, "languages": {"pt"}, "age_band": {"adult"}, "gender": {"female"},
		"channels": {"phone", "in_person"}, "consent_referral": {"yes"}, "consent_share_data": {"yes"},
		"consent_method": {"verbal"}, "consent_given_at": {time.Now().UTC().Add(-time.Hour).Format("2006-01-02T15:04")},
	}
}

// lisbonID is the form value of Lisboa.
func lisbonID() string {
	for _, c := range directory.Cities() {
		if c.Country == "pt" && c.Name == "Lisbon" {
			return "pt:" + itoa(c.GeoNamesID)
		}
	}
	panic("no Lisbon in the city list")
}

func itoa(n int) string { return strconv.Itoa(n) }

// waitEvent polls the referral's log until an event of typ is in it.
func (b *bundle) waitEvent(id, typ string) *events.Envelope {
	b.t.Helper()
	ctx := testenv.Context(b.t)
	var found *events.Envelope
	testenv.Await(b.t, fmt.Sprintf("a %s event of referral %s", typ, id), func() bool {
		evs, err := b.ports.Timeline.Events(ctx, id)
		if err != nil {
			return false
		}
		for _, ev := range evs {
			if ev.Event.Type() == typ {
				found = ev
				return true
			}
		}
		return false
	})
	return found
}

// count returns the number of events of the referral's log.
func (b *bundle) count(id string) int {
	b.t.Helper()
	evs, err := b.ports.Timeline.Events(b.t.Context(), id)
	if err != nil {
		b.t.Fatal(err)
	}
	return len(evs)
}

func dirView() *directory.View {
	v := directory.NewView()
	v.Load(demoDir(), 1)
	return v
}

func matcher() *routing.Matcher { return routing.NewMatcher(routing.Config{}) }

func newServer(t *testing.T, h http.Handler) string {
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return ts.URL
}
