package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/invictus-network/invictus/adapters/httpapi"
	"github.com/invictus-network/invictus/adapters/natsjs"
	"github.com/invictus-network/invictus/adapters/web"
	"github.com/invictus-network/invictus/adapters/web/console"
	"github.com/invictus-network/invictus/directory"
	"github.com/invictus-network/invictus/intake"
	"github.com/invictus-network/invictus/internal/tracing"
	"github.com/invictus-network/invictus/routing"
)

// provisionDebounce groups the directory changes the provisioner acts on:
// an import of many records is one change of the users.
const provisionDebounce = 200 * time.Millisecond

// directoryComponent keeps the node's directory view current with the
// directory bucket.
type directoryComponent struct {
	conn   func() *nats.Conn
	view   *directory.View
	logger *slog.Logger
	fail   func(error)

	bg    *background
	ready atomic.Bool
}

func (d *directoryComponent) Name() string { return "directory" }

// Start runs the follower and returns once the bucket's content is in the
// view.
func (d *directoryComponent) Start(ctx context.Context) error {
	js, err := jetstream.New(d.conn())
	if err != nil {
		return fmt.Errorf("directory: %w", err)
	}
	kv, err := js.KeyValue(ctx, natsjs.BucketDirectory)
	if err != nil {
		return fmt.Errorf("directory: bucket %s: %w", natsjs.BucketDirectory, err)
	}
	follower := natsjs.NewDirectoryFollower(kv, d.view, d.logger)
	ended := make(chan error, 1)
	d.bg = startBackground("directory", func(err error) {
		select {
		case ended <- err:
		default:
		}
		d.fail(err)
	}, follower.Run)
	select {
	case <-follower.Ready():
		d.ready.Store(true)
		snap := d.view.Snapshot()
		d.logger.Info("directory loaded",
			slog.Int("organisations", snap.NumOrganisations()), slog.Int("services", snap.NumServices()),
			slog.Uint64("revision", snap.Revision()))
		return nil
	case err := <-ended:
		return errors.Join(err, d.bg.stop(ctx))
	case <-ctx.Done():
		return errors.Join(fmt.Errorf("directory: not loaded: %w", ctx.Err()), d.bg.stop(context.WithoutCancel(ctx)))
	}
}

// Stop stops following.
func (d *directoryComponent) Stop(ctx context.Context) error {
	d.ready.Store(false)
	return d.bg.stop(ctx)
}

// loaded is the readiness check of the directory.
func (d *directoryComponent) loaded(context.Context) error {
	if !d.ready.Load() {
		return errors.New("not loaded")
	}
	return nil
}

// provisionComponent gives every organisation of the directory what it
// needs to connect over NATS: a user on the embedded server (a key in
// DATA/keys). It does so at start for the whole directory, then for each
// organisation added later. On the embedded server an organisation's
// durable consumer on DELIVERY is made by the gate on its first use over
// NATS, so that organisations cost directory rows, not consumers; on an
// external server (no gate) the consumers are made here.
type provisionComponent struct {
	nats   *natsComponent
	view   *directory.View
	logger *slog.Logger
	fail   func(error)

	bg   *background
	mu   sync.Mutex
	done map[string]bool // organisations with a consumer
}

func (p *provisionComponent) Name() string { return "provision" }

// Start provisions the organisations of the directory, then follows it.
func (p *provisionComponent) Start(ctx context.Context) error {
	p.done = map[string]bool{}
	rev := p.view.Revision()
	if err := p.provision(ctx); err != nil {
		return err
	}
	p.bg = startBackground("provision", p.fail, func(ctx context.Context) error {
		return p.follow(ctx, rev)
	})
	return nil
}

// follow provisions again after each change of the directory, until ctx
// ends. A failure is logged and tried again at the next change.
func (p *provisionComponent) follow(ctx context.Context, rev uint64) error {
	debounce := time.NewTimer(provisionDebounce)
	debounce.Stop()
	defer debounce.Stop()
	for {
		if p.view.WaitRevision(ctx, rev+1) != nil {
			return nil // ctx ended
		}
		debounce.Reset(provisionDebounce)
		select {
		case <-ctx.Done():
			return nil
		case <-debounce.C:
		}
		rev = p.view.Revision()
		pctx, cancel := context.WithTimeout(ctx, time.Minute)
		err := p.provision(pctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			p.logger.Error("provisioning organisations", slog.Any("error", err))
		}
	}
}

// provision sets the server's users to the directory's organisations and,
// on an external server, creates the consumers of those that have none
// yet.
func (p *provisionComponent) provision(ctx context.Context) error {
	d := p.view.Snapshot().Directory()
	orgs := make([]string, 0, len(d.Organisations))
	for _, o := range d.Organisations {
		orgs = append(orgs, o.ID)
	}
	slices.Sort(orgs)
	if err := p.nats.setOrgs(orgs); err != nil {
		return fmt.Errorf("provision: users: %w", err)
	}
	if p.nats.srv != nil {
		return nil // the gate makes each consumer on first use
	}
	js, err := jetstream.New(p.nats.adminConn())
	if err != nil {
		return fmt.Errorf("provision: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	added := 0
	for _, org := range orgs {
		if p.done[org] {
			continue
		}
		if err := natsjs.EnsureOrgConsumer(ctx, js, org); err != nil {
			return fmt.Errorf("provision: %w", err)
		}
		p.done[org] = true
		added++
	}
	if added > 0 {
		p.logger.Info("organisations provisioned", slog.Int("consumers_ensured", added), slog.Int("organisations", len(orgs)))
	}
	return nil
}

// Stop stops following the directory.
func (p *provisionComponent) Stop(ctx context.Context) error { return p.bg.stop(ctx) }

// routingComponent runs the routing service: the INBOUND consumer, the
// dispatcher of appended events and the deadline timers.
type routingComponent struct {
	conn func() *nats.Conn
	view *directory.View
	// observer is told what the service does (the API's metrics).
	observer routing.Observer
	// damaged reports damage the store check found; the service does not
	// run on a damaged store.
	damaged func(context.Context) error
	// hubCountry, on a country hub with sources, forwards its
	// organisations' answers to other hubs' offers (natsjs.CrossBorder).
	hubCountry string
	logger     *slog.Logger
	fail       func(error)

	bg      *background
	running atomic.Bool
	refused atomic.Pointer[error] // why the service does not run
}

func (r *routingComponent) Name() string { return "routing" }

// Start creates the router's consumers and runs it, unless the store is
// damaged.
func (r *routingComponent) Start(ctx context.Context) error {
	if err := r.damaged(ctx); err != nil {
		// The node starts, not ready, so that /readyz can say what is
		// damaged; the routing service stays off rather than fold half-logs.
		refused := errors.New("not running: the store is damaged (see the store check)")
		r.refused.Store(&refused)
		return nil //nolint:nilerr // a damaged store is reported by readiness, not by failing the start
	}
	js, err := jetstream.New(r.conn())
	if err != nil {
		return fmt.Errorf("routing: %w", err)
	}
	// Organisations keep their own listings (directory.*.updated commands).
	listings, err := natsjs.NewDirectoryStore(ctx, js, natsjs.DirectoryStoreConfig{Logger: r.logger})
	if err != nil {
		return fmt.Errorf("routing: %w", err)
	}
	routerCfg := natsjs.RouterConfig{Logger: r.logger, Listings: listings}
	if r.hubCountry != "" {
		xb, err := natsjs.NewCrossBorder(ctx, js, r.hubCountry)
		if err != nil {
			return fmt.Errorf("routing: %w", err)
		}
		routerCfg.Forward = xb.Forward
	}
	node, err := natsjs.NewNode(r.conn(), r.view, natsjs.NodeConfig{
		Bus:     natsjs.BusConfig{Logger: r.logger},
		Service: routing.ServiceConfig{Logger: r.logger, Observer: r.observer, Tracer: tracing.Steps{}},
		Router:  routerCfg,
	})
	if err != nil {
		return fmt.Errorf("routing: %w", err)
	}
	rt := node.Router
	if err := rt.EnsureConsumers(ctx); err != nil {
		return fmt.Errorf("routing: %w", err)
	}
	r.bg = startBackground("routing", r.fail, rt.Run)
	r.running.Store(true)
	return nil
}

// Stop stops pulling and waits for the messages in hand.
func (r *routingComponent) Stop(ctx context.Context) error {
	r.running.Store(false)
	return r.bg.stop(ctx)
}

// runningCheck is the readiness check of the routing service.
func (r *routingComponent) runningCheck(context.Context) error {
	if err := r.refused.Load(); err != nil {
		return *err
	}
	if !r.running.Load() {
		return errors.New("not running")
	}
	return nil
}

// apiComponent serves the HTTP API (with serve's probes in front) and runs
// its webhook dispatcher.
type apiComponent struct {
	listen string
	conn   func() *nats.Conn
	view   *directory.View
	probes http.Handler
	// metrics are the collectors the API serves, fed by the routing
	// service too.
	metrics *httpapi.Metrics
	// config holds the limits, TLS and webhook settings of the flags.
	config httpapi.Config
	// mail serves the e-mail link pages under /mail/, if the e-mail
	// channel runs.
	mail http.Handler
	// nats gives the streams' bounds and their usage for the metrics.
	nats   *natsComponent
	logger *slog.Logger
	fail   func(error)
	// reports is the coordinators' read model, started before the API.
	reports *reportsComponent

	// intakeOrg, when set, takes requests to be contacted from the
	// public pages as referrals of this pseudo-organisation.
	intakeOrg string
	// workBits is the difficulty of the public form's proof of work.
	workBits int

	api        *httpapi.Server
	pages      *web.Server
	console    *console.Server
	http       *httpServer
	webhooks   *background
	tokenWatch *background
	intake     *background
}

func (a *apiComponent) Name() string { return "http" }

// Start listens first (a taken port fails fast), then builds the API on
// the JetStream ports and serves it.
func (a *apiComponent) Start(ctx context.Context) error {
	ln, err := listenHTTP(ctx, "listen", a.listen)
	if err != nil {
		return err
	}
	ports, err := natsjs.NewHTTPPorts(ctx, a.conn(), a.nats.streams)
	if err == nil {
		var storage *natsjs.StorageCollector
		if storage, err = a.nats.storageCollector(); err == nil {
			err = a.metrics.Registry.Register(storage)
		}
	}
	if err == nil {
		a.api, err = httpapi.New(httpapi.Deps{
			Tokens:    ports.Tokens,
			Webhooks:  ports.Webhooks,
			Commands:  ports.Commands,
			Outcomes:  ports.Outcomes,
			Timeline:  ports.Timeline,
			Inbox:     ports.Inbox,
			Directory: a.view,
			Matcher:   routing.NewMatcher(routing.Config{}),
			Stats:     ports.Stats,
			Metrics:   a.metrics,
			Reports:   a.reports.source(),
			Keys:      ports.Keys,
		}, a.apiConfig())
	}
	var in *intake.Intake
	if err == nil && a.intakeOrg != "" {
		in, err = intake.New(ports.Commands, ports.Inbox, ports.Keys, intake.Config{Org: a.intakeOrg, Logger: a.logger})
	}
	if err == nil {
		deps := web.Deps{Directory: a.view}
		if in != nil {
			deps.Intake = webIntake{in}
		}
		var key []byte
		if key, err = nodeSecret(ctx, ports.Keys, webWorkKey, web.WorkKeySize); err == nil {
			a.pages, err = web.New(deps, web.Config{Logger: a.logger, Registerer: a.metrics.Registry, WorkKey: key, WorkBits: a.workBits})
		}
	}
	if err == nil {
		a.console, err = a.newConsole(ctx, ports)
	}
	if err != nil {
		ln.Close()
		return fmt.Errorf("http api: %w", err)
	}
	// Serve's probes answer /healthz and /readyz (they know what runs),
	// the API its own paths, and the public pages everything else.
	mux := http.NewServeMux()
	mux.Handle("GET /healthz", a.probes)
	mux.Handle("GET /readyz", a.probes)
	for _, p := range httpapi.Paths {
		mux.Handle(p, a.api)
	}
	if a.mail != nil {
		mux.Handle("/mail/", a.mail)
	}
	mux.Handle(console.Prefix, a.console)
	mux.Handle("/", a.pages)
	// Requests check tokens against a copy the watch keeps current.
	a.tokenWatch = startBackground("tokens", a.fail, a.api.Tokens().Follow)
	a.http = serveHTTP(a.api.Listener(ln), a.api.HTTPServer(tracing.Handler(mux)), a.fail)
	if d := a.api.Dispatcher(); d != nil {
		// One instance of those sharing a cluster delivers the webhooks.
		js, err := jetstream.New(a.conn())
		var lease *natsjs.Lease
		if err == nil {
			lease, err = natsjs.EnsureLease(ctx, js, a.nats.streams, natsjs.LeaseConfig{Name: natsjs.LeaseWebhooks, Logger: a.logger})
		}
		if err == nil {
			err = a.metrics.Registry.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "invictus_webhooks_lease_held",
				Help: "1 while this instance holds the webhook lease and delivers webhooks.",
			}, func() float64 {
				if lease.Held() {
					return 1
				}
				return 0
			}))
		}
		if err != nil {
			return errors.Join(fmt.Errorf("http api: %w", err), a.http.shutdown(ctx))
		}
		a.webhooks = startBackground("webhooks", a.fail, func(ctx context.Context) error { return lease.Run(ctx, d.Run) })
	}
	if in != nil {
		a.intake = startBackground("intake", a.fail, in.Run)
	}
	return nil
}

// webWorkKey is the key, in the keys bucket, of the secret that signs
// the public form's proof-of-work challenges: the same for every node
// of a cluster, so a challenge one issued passes at another.
const webWorkKey = "web.work-key"

// secretStore is where a node secret is kept; natsjs.KVStore is one.
type secretStore interface {
	Get(ctx context.Context, key string) ([]byte, error)
	Create(ctx context.Context, key string, value []byte) error
}

// nodeSecret returns the random secret of size bytes kept under key,
// made by the first node to ask for it.
func nodeSecret(ctx context.Context, st secretStore, key string, size int) ([]byte, error) {
	b, err := st.Get(ctx, key)
	if errors.Is(err, fs.ErrNotExist) {
		secret := make([]byte, size)
		_, _ = rand.Read(secret) // never fails (crypto/rand)
		if err = st.Create(ctx, key, secret); errors.Is(err, fs.ErrExist) {
			b, err = st.Get(ctx, key) // another node was first
		} else if err == nil {
			b = secret
		}
	}
	if err != nil {
		return nil, fmt.Errorf("secret %s: %w", key, err)
	}
	if len(b) < size {
		return nil, fmt.Errorf("secret %s of %d bytes, want %d", key, len(b), size)
	}
	return b, nil
}

// webIntake hands the public pages' requests to be contacted to the
// intake.
type webIntake struct{ in *intake.Intake }

func (w webIntake) Refer(ctx context.Context, r web.SelfReferral) (string, error) {
	return w.in.Refer(ctx, intake.Request{
		Service: r.Service, Organisation: r.Organisation, Recipient: r.Recipient, Envelope: r.Envelope,
		Needs: r.Needs, Country: r.Country, Language: r.Language, Channel: r.Channel,
		AgeBand: r.AgeBand, Urgency: r.Urgency, ConsentAt: r.ConsentAt,
	})
}

// Stop stops accepting requests, lets those in flight finish, then stops
// the webhook dispatcher.
func (a *apiComponent) Stop(ctx context.Context) error {
	return errors.Join(a.http.shutdown(ctx), a.webhooks.stop(ctx), a.tokenWatch.stop(ctx), a.intake.stop(ctx))
}

// newConsole builds the web console on the API's ports and its own
// buckets (accounts, sessions, audit).
func (a *apiComponent) newConsole(ctx context.Context, ports *natsjs.HTTPPorts) (*console.Server, error) {
	stores, err := natsjs.NewConsoleStores(ctx, a.conn(), a.nats.streams)
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(a.conn())
	if err != nil {
		return nil, err
	}
	// Directory administrators approve new organisations in the directory
	// bucket the node follows; without the bucket the page says it cannot.
	var approvals console.Approvals
	if store, err := natsjs.NewDirectoryStore(ctx, js, natsjs.DirectoryStoreConfig{Logger: a.logger}); err == nil {
		approvals = store
	} else {
		a.logger.WarnContext(ctx, "console: organisations cannot be approved on this node", slog.Any("error", err))
	}
	return console.New(console.Deps{
		Accounts: stores.Accounts, Sessions: stores.Sessions, Audit: stores.Audit,
		Commands: ports.Commands, Outcomes: ports.Outcomes, Timeline: ports.Timeline, Inbox: ports.Inbox,
		Directory: a.view, Matcher: routing.NewMatcher(routing.Config{}), Keys: ports.Keys,
		Reports: a.reports.source(), Approvals: approvals,
		Failures: &emailFailures{js: js}, Notices: natsjs.NewDeliveryNotices(js),
	}, console.Config{Logger: a.logger})
}

// apiConfig is the API's configuration: the flags' settings and the
// logger.
func (a *apiComponent) apiConfig() httpapi.Config {
	c := a.config
	c.Logger = a.logger
	return c
}

// addr is the HTTP listen address, host:port.
func (a *apiComponent) addr() string { return a.http.ln.Addr().String() }

// tokens returns the API's token manager.
func (a *apiComponent) tokens() *httpapi.Tokens { return a.api.Tokens() }
