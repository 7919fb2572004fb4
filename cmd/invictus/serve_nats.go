package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/invictus-network/invictus/adapters/natsjs"
	"github.com/invictus-network/invictus/client"
	"github.com/invictus-network/invictus/events"
)

// Start-up errors of the NATS side of serve, wrapped in a flagError that
// names the flag to change; test them with errors.Is.
var (
	// errDataNotWritable: --data cannot be created or written.
	errDataNotWritable = errors.New("data directory not writable")
	// errNATSUnreachable: no server of --nats-url answered.
	errNATSUnreachable = errors.New("NATS server unreachable")
	// errNATSCredentials: the server refused the credentials of
	// --nats-creds, or wants some and none were given.
	errNATSCredentials = errors.New("the NATS server refused the credentials")
	// errNATSTooOld: the server lacks the JetStream features INVICTUS uses.
	errNATSTooOld = errors.New("the NATS server is too old")
	// errNoJetStream: JetStream is off on the server or for the account.
	errNoJetStream = errors.New("JetStream is not enabled")
	// errCredsFile: --nats-creds is neither a .creds file nor a seed file.
	errCredsFile = errors.New("not a NATS credentials file or nkey seed file")
	// errHubDomain: a JetStream domain of --hub-sources or --hub-directory
	// does not answer through --nats-url.
	errHubDomain = errors.New("no JetStream of that domain answers")
)

// hubDomainWaitDefault is --hub-domain-wait's default: how long serve
// tries the JetStream API of each domain of --hub-sources and
// --hub-directory before it gives up. A leaf connection made a moment ago
// may not carry the API's interest yet, and a loaded machine may be slow
// to answer, but a domain that does not exist never answers, and a hub
// that sources from it would start and never receive anything.
const hubDomainWaitDefault = time.Minute

// natsMinVersion is the oldest nats-server with what the streams need:
// message schedules (TIMERS), atomic batch publish, batched direct gets and
// pinned consumers.
var natsMinVersion = [3]int{2, 12, 0}

// natsConnectTimeout bounds the connection to an external server.
const natsConnectTimeout = 10 * time.Second

// natsComponent connects the node to NATS. By default it runs the embedded
// server with one nkey user per organisation (keys under DATA/keys) and
// connects in process as the administrator and as the routing service;
// with --nats-url it connects twice to that server with --nats-creds. Then
// it ensures the streams.
type natsComponent struct {
	data    string
	listen  string
	url     string
	creds   string
	gate    *natsjs.Gate  // external only: answers operator-mode organisations
	tls     *tls.Config   // embedded only: the server's TLS, or nil
	dialTLS []nats.Option // external only: the client side of TLS
	streams natsjs.StreamsConfig
	// domainWait is --hub-domain-wait.
	domainWait time.Duration
	// maxStore and minFree bound the embedded server's store and the
	// free space of its disk (0: defaults).
	maxStore, minFree int64
	logger            *slog.Logger
	fail              func(error)

	srv      *natsjs.Server   // embedded only
	keys     *natsjs.KeyStore // embedded only
	lock     *dataLock        // embedded only: DATA/node.lock, held while srv runs
	admin    atomic.Pointer[nats.Conn]
	routing  atomic.Pointer[nats.Conn]
	ensured  atomic.Bool
	stopping atomic.Bool
	jsCheck  func(context.Context) error // set before ensured
	jsStore  func(context.Context) error // set before ensured
	// verified is what the store check at start found.
	verified atomic.Pointer[natsjs.StoreReport]

	authMu sync.Mutex
	orgs   []string // organisations the embedded server's users are set for
}

func (n *natsComponent) Name() string { return "nats" }

// Start starts the embedded server or connects to the external one, then
// ensures the streams.
func (n *natsComponent) Start(ctx context.Context) error {
	var err error
	if n.url == "" {
		err = n.startEmbedded(ctx)
	} else {
		err = n.connectExternal(ctx)
	}
	if err == nil {
		err = n.ensureStreams(ctx)
	}
	if err == nil {
		err = n.verifyStore(ctx)
	}
	if err != nil {
		return errors.Join(err, n.Stop(context.WithoutCancel(ctx)))
	}
	return nil
}

// verifyStore checks the store (natsjs.VerifyStore) before anything
// routes on it. Damage does not stop serve: it makes the node not ready,
// with /readyz saying what is damaged and how to recover, and keeps the
// routing service from running on a half-read log.
func (n *natsComponent) verifyStore(ctx context.Context) error {
	js, err := jetstream.New(n.admin.Load())
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	begin := time.Now()
	var report natsjs.StoreReport
	err = untilAvailable(ctx, n.logger, js, "verify the store", func(ctx context.Context) error {
		var err error
		report, err = natsjs.VerifyStore(ctx, js)
		return err
	})
	if err != nil {
		return fmt.Errorf("verify the store: %w", err)
	}
	n.verified.Store(&report)
	if err := report.Err(); err != nil {
		n.logger.Error("the store is damaged: the node will not route until it is recovered", slog.Any("error", err))
		return nil
	}
	n.logger.Info("store verified", slog.Int("referrals", report.Referrals), slog.Duration("took", time.Since(begin)))
	return nil
}

// Bounds of untilAvailable: one try of JetStream's API, and the waits
// between tries.
const (
	availableProbe   = 2 * time.Second
	availableWaitMin = 50 * time.Millisecond
	availableWaitMax = 2 * time.Second
)

// untilAvailable runs do until it succeeds, fails for a reason other
// than JetStream being unavailable for now (natsjs.Unavailable), or ctx
// ends, logging what it waits for. A node just (re)started, or a cluster
// still electing its meta or stream leaders, answers "no responders" or
// not at all for a while: serve starting then must wait for it, not
// exit. Before each try of do, JetStream and each stream's leader are
// asked with a short bound (probeJetStream): a request sent before there
// is a leader is never answered, and do's requests are bounded only by
// ctx.
func untilAvailable(ctx context.Context, logger *slog.Logger, js jetstream.JetStream, what string, do func(context.Context) error) error {
	for failures := 0; ; failures++ {
		err := probeJetStream(ctx, js)
		if err == nil {
			err = do(ctx)
		}
		if err == nil || !natsjs.Unavailable(err) || ctx.Err() != nil {
			return err
		}
		wait := min(availableWaitMin<<min(failures, 10), availableWaitMax)
		logger.Warn("waiting for JetStream to answer", slog.String("to", what), slog.Int("tries", failures+1),
			slog.Duration("next", wait), slog.Any("error", err))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

// ensureTry bounds one try of ensuring the streams and buckets. The probe
// before it asks only the store's streams; a bucket's stream whose leader
// is still being elected (a node just killed) leaves the request
// unanswered, and that try is then made again instead of waited on until
// serve's start-up ends. Ensuring is idempotent, so a try cut short is
// safe to repeat.
const ensureTry = 15 * time.Second

// boundedTry is do with each try bounded by d: a try that ran out of its
// bound while ctx has not is nats.ErrTimeout, which untilAvailable tries
// again.
func boundedTry(d time.Duration, do func(context.Context) error) func(context.Context) error {
	return func(ctx context.Context) error {
		tctx, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		err := do(tctx)
		if err != nil && ctx.Err() == nil && tctx.Err() != nil {
			return fmt.Errorf("no answer within %s: %w (%w)", d, nats.ErrTimeout, err)
		}
		return err
	}
}

// probeJetStream asks JetStream's API for the account, then for each of
// the store's streams that exists (answered by its leader), each request
// bounded by availableProbe; one unanswered is nats.ErrTimeout.
func probeJetStream(ctx context.Context, js jetstream.JetStream) error {
	ask := func(what string, f func(context.Context) error) error {
		pctx, cancel := context.WithTimeout(ctx, availableProbe)
		defer cancel()
		err := f(pctx)
		if err != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("%s: no answer within %s: %w", what, availableProbe, nats.ErrTimeout)
		}
		return err
	}
	if err := ask("JetStream's account info", func(ctx context.Context) error {
		_, err := js.AccountInfo(ctx)
		return err
	}); err != nil {
		return err
	}
	for _, name := range natsjs.StoreStreams {
		err := ask("stream "+name, func(ctx context.Context) error {
			_, err := js.Stream(ctx, name)
			return err
		})
		if err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			return err
		}
	}
	return nil
}

// storeCheck is the readiness check of the store's verification.
func (n *natsComponent) storeCheck(context.Context) error {
	r := n.verified.Load()
	if r == nil {
		return errors.New("not verified")
	}
	return r.Err()
}

// startEmbedded starts the server with authentication and connects.
func (n *natsComponent) startEmbedded(ctx context.Context) error {
	if err := natsjs.CheckWritable(n.data); err != nil {
		return &flagError{flag: "data", value: n.data, err: fmt.Errorf("%w: %w", errDataNotWritable, err)}
	}
	keys, err := natsjs.NewKeyStore(filepath.Join(n.data, natsjs.KeysDir))
	if err != nil {
		return &flagError{flag: "data", value: n.data, err: fmt.Errorf("%w: %w", errDataNotWritable, err)}
	}
	n.keys = keys
	// One process at a time has the store open: a second serve, or a CLI
	// command opening it in process, would corrupt it.
	lock, err := lockDataDir(n.data)
	if errors.Is(err, errDataInUse) {
		if info, ierr := readNodeFile(n.data); ierr == nil {
			err = fmt.Errorf("%w: a node (pid %d) runs on it, NATS at %s", errDataInUse, info.PID, info.NATS)
		}
	}
	if err != nil {
		return &flagError{flag: "data", value: n.data, err: err}
	}
	n.lock = lock
	// The organisations known from earlier runs may connect at once; the
	// provisioner adds the directory's others once it is loaded.
	orgs, err := storedOrgs(filepath.Join(n.data, natsjs.KeysDir))
	if err != nil {
		return &flagError{flag: "data", value: n.data, err: err}
	}
	auth, err := natsjs.NewAuth(keys, orgs)
	if err != nil {
		return &flagError{flag: "data", value: n.data, err: err}
	}
	n.orgs = orgs

	srv, err := natsjs.StartServer(ctx, natsjs.ServerConfig{
		StoreDir: filepath.Join(n.data, "nats"),
		Listen:   n.listen,
		TLS:      n.tls,
		MaxStore: n.maxStore,
		MinFree:  n.minFree,
		Auth:     auth,
	}, n.logger)
	switch {
	case errors.Is(err, natsjs.ErrAddrInUse):
		return &flagError{flag: "nats-listen", value: n.listen, err: natsjs.ErrAddrInUse}
	case errors.Is(err, natsjs.ErrStoreNotWritable):
		return &flagError{flag: "data", value: n.data, err: fmt.Errorf("%w: %w", errDataNotWritable, err)}
	case err != nil:
		return fmt.Errorf("start nats: %w", err)
	}
	n.srv = srv

	for _, c := range []struct {
		user string
		name string
		conn *atomic.Pointer[nats.Conn]
	}{
		{natsjs.UserAdmin, "invictus serve", &n.admin},
		{natsjs.UserRouting, "invictus routing", &n.routing},
	} {
		opt, err := keys.ConnectOption(c.user)
		if err != nil {
			return err
		}
		nc, err := srv.Connect(ctx, opt, nats.Name(c.name), nats.ClosedHandler(n.closed))
		if err != nil {
			return err
		}
		c.conn.Store(nc)
	}
	return nil
}

// connectExternal connects to --nats-url twice (administrator and routing
// service) and checks that the server can run INVICTUS.
func (n *natsComponent) connectExternal(ctx context.Context) error {
	opts := []nats.Option{
		nats.Timeout(natsConnectTimeout),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.ClosedHandler(n.closed),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil && !n.stopping.Load() {
				n.logger.Warn("nats: disconnected; reconnecting", slog.String("error", err.Error()))
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			n.logger.Info("nats: reconnected", slog.String("server", nc.ConnectedAddr()))
		}),
	}
	if n.creds != "" {
		opt, err := natsCredsOption(n.creds)
		if err != nil {
			return &flagError{flag: "nats-creds", value: n.creds, err: err}
		}
		opts = append(opts, opt)
	}
	opts = append(opts, n.dialTLS...)
	for _, c := range []struct {
		name string
		conn *atomic.Pointer[nats.Conn]
	}{
		{"invictus serve", &n.admin},
		{"invictus routing", &n.routing},
	} {
		if err := ctx.Err(); err != nil {
			return err
		}
		nc, err := nats.Connect(n.url, append(slices.Clone(opts), nats.Name(c.name))...)
		if err != nil {
			return n.connectError(err)
		}
		c.conn.Store(nc)
	}
	nc := n.admin.Load()
	if v := nc.ConnectedServerVersion(); !versionAtLeast(v, natsMinVersion) {
		return &flagError{flag: "nats-url", value: n.url, err: fmt.Errorf(
			"%w: it runs nats-server %s; INVICTUS needs %d.%d.%d or later (message schedules, atomic batch publish)",
			errNATSTooOld, v, natsMinVersion[0], natsMinVersion[1], natsMinVersion[2])}
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	actx, cancel := context.WithTimeout(ctx, natsConnectTimeout)
	defer cancel()
	if _, err := js.AccountInfo(actx); err != nil {
		if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
			return &flagError{flag: "nats-url", value: n.url, err: fmt.Errorf("%w on the server or for this account: %w", errNoJetStream, err)}
		}
		return &flagError{flag: "nats-url", value: n.url, err: fmt.Errorf("JetStream does not answer: %w", err)}
	}
	// Before any stream sources from them: the other hubs' domains.
	if err := n.checkHubDomains(ctx, nc); err != nil {
		return err
	}
	// In operator mode the organisations' accounts send their consumer
	// requests to the gate, as on the embedded server; elsewhere nobody
	// sends it anything.
	if n.gate, err = natsjs.StartGate(nc); err != nil {
		return err
	}
	return nil
}

// checkHubDomains asks the JetStream API of each domain the streams source
// from ($JS.<domain>.API.INFO) until it answers, at most --hub-domain-wait; a
// domain that never answers is a start-up error naming its flag.
func (n *natsComponent) checkHubDomains(ctx context.Context, nc *nats.Conn) error {
	type domain struct{ flag, name string }
	var domains []domain
	for _, d := range n.streams.CrossBorderFrom {
		domains = append(domains, domain{"hub-sources", d})
	}
	if d := n.streams.DirectoryFrom; d != "" {
		domains = append(domains, domain{"hub-directory", d})
	}
	for _, d := range domains {
		js, err := jetstream.NewWithDomain(nc, d.name)
		if err != nil {
			return &flagError{flag: d.flag, value: d.name, err: err}
		}
		if err := awaitDomain(ctx, js, n.domainWait); err != nil {
			return &flagError{flag: d.flag, value: d.name, err: fmt.Errorf(
				"%w through %s within %s ($JS.%s.API.INFO unanswered): check the domain's spelling (the jetstream { domain } of that hub's server) and that its leaf connection is up: %w",
				errHubDomain, redactURLs(n.url), n.domainWait, d.name, err)}
		}
	}
	return nil
}

// awaitDomain tries js.AccountInfo until it answers, ctx ends or wait has
// passed.
func awaitDomain(ctx context.Context, js jetstream.JetStream, wait time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for {
		tctx, tcancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := js.AccountInfo(tctx)
		tcancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// connectError translates the error of connecting to --nats-url.
func (n *natsComponent) connectError(err error) error {
	authFailed := errors.Is(err, nats.ErrAuthorization) || errors.Is(err, nats.ErrAuthExpired) ||
		errors.Is(err, nats.ErrAuthRevoked) || errors.Is(err, nats.ErrAccountAuthExpired)
	switch {
	case authFailed && n.creds == "":
		return &flagError{flag: "nats-url", value: n.url,
			err: fmt.Errorf("%w: the server needs credentials; give --nats-creds FILE: %w", errNATSCredentials, err)}
	case authFailed:
		return &flagError{flag: "nats-creds", value: n.creds, err: fmt.Errorf("%w: %w", errNATSCredentials, err)}
	default:
		return &flagError{flag: "nats-url", value: redactURLs(n.url), err: fmt.Errorf("%w: %w", errNATSUnreachable, err)}
	}
}

// closed reports a connection closed while serve runs.
func (n *natsComponent) closed(nc *nats.Conn) {
	if n.stopping.Load() {
		return
	}
	err := errors.New("connection closed")
	if last := nc.LastError(); last != nil {
		err = fmt.Errorf("connection closed: %w", last)
	}
	n.fail(fmt.Errorf("nats (%s): %w", nc.Opts.Name, err))
}

func (n *natsComponent) ensureStreams(ctx context.Context) error {
	js, err := jetstream.New(n.admin.Load())
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	if err := untilAvailable(ctx, n.logger, js, "ensure the streams", boundedTry(ensureTry, func(ctx context.Context) error {
		return natsjs.EnsureStreams(ctx, js, n.streams)
	})); err != nil {
		return err
	}
	n.jsCheck = natsjs.JetStreamCheck(js)
	n.jsStore = natsjs.StorageCheck(js)
	n.ensured.Store(true)
	return nil
}

// storageCheck is the readiness check of storage: no stream full, nor
// the embedded server's store, nor the disk under it. It passes again by
// itself once space returns.
func (n *natsComponent) storageCheck(ctx context.Context) error {
	if !n.ensured.Load() {
		return errors.New("not started")
	}
	if n.srv != nil {
		if err := n.srv.StorageCheck()(ctx); err != nil {
			return err
		}
	}
	return n.jsStore(ctx)
}

// storageCollector returns the Prometheus collector of the streams'
// usage and bounds (and the embedded store's), once started.
func (n *natsComponent) storageCollector() (*natsjs.StorageCollector, error) {
	js, err := jetstream.New(n.admin.Load())
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	return natsjs.NewStorageCollector(js, n.srv), nil
}

// jetstreamCheck is the readiness check of JetStream: it answers.
func (n *natsComponent) jetstreamCheck(ctx context.Context) error {
	if !n.ensured.Load() {
		return errors.New("not started")
	}
	return n.jsCheck(ctx)
}

// Stop shuts the embedded server down (draining the node's connections
// first), or drains the connections to the external server.
func (n *natsComponent) Stop(ctx context.Context) error {
	n.stopping.Store(true)
	n.ensured.Store(false)
	if n.srv != nil {
		err := n.srv.Shutdown(ctx)
		if err == nil {
			n.lock.unlock()
			n.lock = nil
		}
		return err
	}
	n.lock.unlock() // a start that failed before the server ran
	n.lock = nil
	if n.gate != nil {
		n.gate.Close()
		n.gate = nil
	}
	var errs []error
	var conns []*nats.Conn
	for _, p := range []*atomic.Pointer[nats.Conn]{&n.admin, &n.routing} {
		nc := p.Load()
		if nc == nil || nc.IsClosed() {
			continue
		}
		conns = append(conns, nc)
		if err := nc.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			errs = append(errs, err)
		}
	}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for _, nc := range conns {
		for !nc.IsClosed() {
			select {
			case <-ctx.Done():
				nc.Close()
				errs = append(errs, fmt.Errorf("drain %q: %w", nc.Opts.Name, ctx.Err()))
			case <-tick.C:
			}
		}
	}
	return errors.Join(errs...)
}

// adminConn is the node's connection with every permission: streams,
// directory, HTTP API.
func (n *natsComponent) adminConn() *nats.Conn { return n.admin.Load() }

// connectAs connects to the node's NATS as organisation org through the
// client package, as any organisation connects: to the embedded server
// in process with org's own seed from the key store, so its permissions
// apply; to an external server with --nats-creds (the node holds no
// organisation's credentials there). name names the connection.
func (n *natsComponent) connectAs(ctx context.Context, org, name string) (*client.Client, error) {
	opts := []client.Option{client.WithName(name)}
	url := n.url
	if n.srv != nil {
		url = ""
		opts = append(opts, client.WithNKeySeed(n.keys.Path(org)), client.WithNATSOptions(nats.InProcessServer(n.srv)))
	} else {
		nopts := slices.Clone(n.dialTLS)
		if n.creds != "" {
			opt, err := natsCredsOption(n.creds)
			if err != nil {
				return nil, &flagError{flag: "nats-creds", value: n.creds, err: err}
			}
			nopts = append(nopts, opt)
		}
		opts = append(opts, client.WithNATSOptions(nopts...))
	}
	return client.Connect(ctx, url, org, opts...)
}

// routingConn is the routing service's connection.
func (n *natsComponent) routingConn() *nats.Conn { return n.routing.Load() }

// addr is the NATS client address, host:port: the embedded server's, or
// the external server the node is connected to.
func (n *natsComponent) addr() string {
	if n.srv != nil {
		return n.srv.Addr().String()
	}
	if nc := n.admin.Load(); nc != nil {
		return nc.ConnectedAddr()
	}
	return ""
}

// setOrgs gives the embedded server one user for each organisation of
// orgs (sorted), creating the keys of new ones; with an external server it
// does nothing (its operator manages the users).
func (n *natsComponent) setOrgs(orgs []string) error {
	if n.srv == nil {
		return nil
	}
	n.authMu.Lock()
	defer n.authMu.Unlock()
	if slices.Equal(orgs, n.orgs) {
		return nil
	}
	auth, err := natsjs.NewAuth(n.keys, orgs)
	if err != nil {
		return err
	}
	if err := n.srv.ReloadAuth(auth); err != nil {
		return err
	}
	n.orgs = slices.Clone(orgs)
	return nil
}

// connected is the readiness check of the node's connections.
func (n *natsComponent) connected(context.Context) error {
	for _, p := range []*atomic.Pointer[nats.Conn]{&n.admin, &n.routing} {
		nc := p.Load()
		if nc == nil {
			return errors.New("not connected")
		}
		if st := nc.Status(); st != nats.CONNECTED {
			return fmt.Errorf("connection %s", st)
		}
	}
	return nil
}

// streamsEnsured is the readiness check of the streams.
func (n *natsComponent) streamsEnsured(context.Context) error {
	if !n.ensured.Load() {
		return errors.New("streams not ensured")
	}
	return nil
}

// storedOrgs returns, sorted, the organisations that have a seed file in
// the key directory.
func storedOrgs(keysDir string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(keysDir, "*"+natsjs.SeedFileExt))
	if err != nil {
		return nil, err
	}
	var orgs []string
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), natsjs.SeedFileExt)
		if events.IsOrgID(name) {
			orgs = append(orgs, name)
		}
	}
	slices.Sort(orgs)
	return orgs, nil
}

// versionAtLeast reports whether the server version v ("2.12.1",
// "2.14.0-RC.2") is least or later.
func versionAtLeast(v string, least [3]int) bool {
	core, _, _ := strings.Cut(strings.TrimPrefix(v, "v"), "-")
	parts := strings.SplitN(core, ".", 3)
	var got [3]int
	for i := range got {
		if i >= len(parts) {
			break
		}
		n, err := strconv.Atoi(parts[i])
		if err != nil {
			return false
		}
		got[i] = n
	}
	for i := range got {
		if got[i] != least[i] {
			return got[i] > least[i]
		}
	}
	return true
}
