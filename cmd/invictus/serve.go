package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/invictus-network/invictus/adapters/httpapi"
	"github.com/invictus-network/invictus/adapters/natsjs"
	"github.com/invictus-network/invictus/adapters/web"
	"github.com/invictus-network/invictus/directory"
	"github.com/invictus-network/invictus/events"
)

// Defaults and limits of `invictus serve`.
const (
	serveDataDefault            = "./data"
	serveListenDefault          = "127.0.0.1:8080"
	serveNATSListenDefault      = natsjs.ListenDefault
	serveShutdownTimeoutDefault = 30 * time.Second
	// serveStartTimeout bounds the start of all components together.
	serveStartTimeout = 60 * time.Second
	// serveDemoSeedDefault is the seed of the demo directory.
	serveDemoSeedDefault = 1
	// serveSimulateRateDefault is how many referrals a minute --simulate
	// sends; serveSimulateRateMax bounds it.
	serveSimulateRateDefault = 12.0
	serveSimulateRateMax     = 6000.0
	// demoPublicIntake is the public intake organisation of a demo node.
	demoPublicIntake = "pt.public-intake"
)

// serveOptions are the settings of `invictus serve`: flags, environment,
// configuration file (see config.go).
type serveOptions struct {
	data            string
	listen          string
	natsListen      string
	natsURL         string
	natsCreds       string
	addrFile        string
	pprofListen     string
	memoryLimit     sizeValue
	shutdownTimeout time.Duration
	retention       time.Duration
	reportsEvery    int
	demo            bool
	demoSeed        int64
	simulate        bool
	simulateRate    float64
	publicIntake    string
	askWorkBits     int
	email           emailSettings
	tracing         tracingFlags
	logs            logFlags
	http            httpFlags
	limits          limitOptions
	natsTLS         tlsFlags
	natsTLSCA       string // with --nats-url: the CA of its server certificate
}

// httpFlags are the HTTP API's limits and TLS settings of serve.
type httpFlags struct {
	tls                  tlsFlags
	maxInFlight          int
	maxConns             int
	readTimeout          time.Duration
	writeTimeout         time.Duration
	idleTimeout          time.Duration
	allowPrivateWebhooks bool
}

// tlsFlags name a certificate, its key and, for the NATS server, the CA
// of the client certificates it requires.
type tlsFlags struct {
	cert, key, clientCA string
}

// addFlags registers the settings on fs: serve's flags, which `config
// print` takes too.
func (o *serveOptions) addFlags(fs *pflag.FlagSet) {
	addConfigFlag(fs)
	fs.StringVar(&o.data, "data", serveDataDefault, "data directory: the JetStream store (DIR/nats), NATS keys (DIR/keys), demo files (DIR/demo); while the node runs, DIR/node.json has its addresses")
	fs.StringVar(&o.listen, "listen", serveListenDefault, "HTTP listen address, host:port; port 0 picks a free port")
	fs.StringVar(&o.natsListen, "nats-listen", serveNATSListenDefault, "NATS client address of the embedded server, host:port; port 0 picks a free port")
	fs.StringVar(&o.natsURL, "nats-url", "", "use the external NATS server or cluster at this URL (comma-separated for several) instead of the embedded one")
	fs.StringVar(&o.natsCreds, "nats-creds", "", "credentials for --nats-url: a NATS .creds file or an nkey seed file")
	fs.StringVar(&o.addrFile, "addr-file", "", `once ready, write {"http": ADDR, "nats": ADDR} to FILE; removed at shutdown`)
	fs.StringVar(&o.pprofListen, "pprof-listen", "", "serve Go profiles (/debug/pprof/) on this loopback host:port, to the bearer token in DIR/"+pprofTokenFile+" (made at start)")
	o.memoryLimit = memoryLimitDefault
	fs.Var(&o.memoryLimit, "memory-limit", `the Go runtime's soft memory limit: it collects garbage more often as the heap nears it, at some CPU cost (bytes, or with KiB, MiB, GiB; "unlimited" for none); when left at the default, GOMEMLIMIT in the environment stands`)
	fs.DurationVar(&o.shutdownTimeout, "shutdown-timeout", serveShutdownTimeoutDefault, "how long a clean shutdown may take")
	fs.DurationVar(&o.retention, "retention", natsjs.RetentionDefault, "closed referrals are purged this long after their last event, once the reports have folded them (GDPR storage limitation); 0 keeps them")
	fs.IntVar(&o.reportsEvery, "reports-checkpoint-every", natsjs.ReportCheckpointEveryDefault, "the instance holding the reports lease checkpoints the coordinators' read model in the cluster after this many events (and after a minute with any)")
	fs.BoolVar(&o.demo, "demo", false, "load the demo directory and give every demo organisation keys and an HTTP token (written under DIR/demo)")
	fs.Int64Var(&o.demoSeed, "demo-seed", serveDemoSeedDefault, "seed of the demo directory's synthetic offices")
	fs.BoolVar(&o.simulate, "simulate", false, "with --demo: send realistic referral traffic between demo organisations")
	fs.Float64Var(&o.simulateRate, "simulate-rate", serveSimulateRateDefault, "referrals per minute that --simulate sends")
	fs.StringVar(&o.publicIntake, "public-intake", "", "take requests to be contacted from the public pages, as referrals from this pseudo-organisation (<cc>.<slug>, such as pt.public-intake; with --demo the default is "+demoPublicIntake+")")
	fs.IntVar(&o.askWorkBits, "ask-work-bits", web.WorkBitsDefault, fmt.Sprintf("proof of work of the public request to be contacted: leading zero bits of a SHA-256 the browser must find (each bit doubles its cost; 1 to %d)", web.WorkBitsMax))
	fs.StringVar(&o.http.tls.cert, "tls-cert", "", "serve HTTPS: the PEM certificate (chain) of --listen; needs --tls-key")
	fs.StringVar(&o.http.tls.key, "tls-key", "", "the PEM private key of --tls-cert")
	fs.IntVar(&o.http.maxInFlight, "http-max-in-flight", httpapi.MaxInFlightDefault, "HTTP requests handled at once; more are answered 503 with Retry-After (probes and /metrics excepted)")
	fs.IntVar(&o.http.maxConns, "http-max-conns", httpapi.MaxConnsDefault, "open HTTP connections; more wait in the accept queue")
	fs.DurationVar(&o.http.readTimeout, "http-read-timeout", httpapi.ReadTimeoutDefault, "longest read of one HTTP request")
	fs.DurationVar(&o.http.writeTimeout, "http-write-timeout", httpapi.WriteTimeoutDefault, "longest HTTP response (event streams excepted); more than ?wait='s 10s")
	fs.DurationVar(&o.http.idleTimeout, "http-idle-timeout", httpapi.IdleTimeoutDefault, "idle HTTP keep-alive connections are closed after this")
	fs.BoolVar(&o.http.allowPrivateWebhooks, "allow-private-webhooks", false, "for development only: webhooks may target loopback and private addresses, and http:// to loopback")
	fs.StringVar(&o.natsTLS.cert, "nats-tls-cert", "", "embedded NATS server: require TLS with this PEM certificate (chain); with --nats-url: present it as the client certificate; needs --nats-tls-key")
	fs.StringVar(&o.natsTLS.key, "nats-tls-key", "", "the PEM private key of --nats-tls-cert")
	fs.StringVar(&o.natsTLSCA, flagNATSTLSCA, "", "with --nats-url: trust this PEM CA for the server's certificate (default: the system's roots)")
	fs.StringVar(&o.natsTLS.clientCA, "nats-tls-client-ca", "", "embedded NATS server: require client certificates signed by this PEM CA (with --nats-tls-cert)")
	o.email.addFlags(fs)
	o.tracing.addFlags(fs)
	o.limits.addFlags(fs)
	fs.StringVar(&o.logs.level, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&o.logs.format, "log-format", "text", "log format: text or json")
}

// validate checks the settings against each other; settings says where
// each came from.
func (o *serveOptions) validate(settings map[string]setting) error {
	switch {
	case o.shutdownTimeout <= 0:
		return usageError{fmt.Errorf("--shutdown-timeout %s: must be positive", o.shutdownTimeout)}
	case o.reportsEvery <= 0:
		return usageError{fmt.Errorf("--reports-checkpoint-every %d: must be positive", o.reportsEvery)}
	case o.memoryLimit >= 0 && o.memoryLimit < memoryLimitMin:
		return usageError{fmt.Errorf("--memory-limit %d: want at least %d MiB, or unlimited", int64(o.memoryLimit), memoryLimitMin>>20)}
	case o.retention < 0:
		return usageError{fmt.Errorf("--retention %s: must be 0 (keep) or positive", o.retention)}
	case o.simulate && !o.demo:
		return usageError{errors.New("--simulate needs --demo: it sends referrals as the demo organisations")}
	case o.publicIntake != "" && !events.IsOrgID(o.publicIntake):
		return usageError{fmt.Errorf("--public-intake %q: want an organisation id, <cc>.<slug> such as pt.public-intake", o.publicIntake)}
	case o.askWorkBits < 1 || o.askWorkBits > web.WorkBitsMax:
		return usageError{fmt.Errorf("--ask-work-bits %d: want from 1 to %d", o.askWorkBits, web.WorkBitsMax)}
	case o.simulateRate <= 0 || o.simulateRate > serveSimulateRateMax:
		return usageError{fmt.Errorf("--simulate-rate %v: want more than 0 and at most %v referrals a minute", o.simulateRate, serveSimulateRateMax)}
	case o.natsCreds != "" && o.natsURL == "":
		return usageError{errors.New("--nats-creds is for --nats-url: the embedded server keeps its own keys under --data")}
	case o.natsURL != "" && settings["nats-listen"].Source != sourceDefault:
		return usageError{errors.New("--nats-listen is for the embedded server; with --nats-url there is none")}
	case (o.http.tls.cert == "") != (o.http.tls.key == ""):
		return usageError{errors.New("--tls-cert and --tls-key go together")}
	case (o.natsTLS.cert == "") != (o.natsTLS.key == ""):
		return usageError{errors.New("--nats-tls-cert and --nats-tls-key go together")}
	case o.natsTLS.clientCA != "" && o.natsTLS.cert == "":
		return usageError{errors.New("--nats-tls-client-ca needs --nats-tls-cert and --nats-tls-key")}
	case o.natsURL != "" && o.natsTLS.clientCA != "":
		return usageError{errors.New("--nats-tls-client-ca is for the embedded server; with --nats-url there is none")}
	case o.natsURL == "" && o.natsTLSCA != "":
		return usageError{errors.New("--nats-tls-ca is for --nats-url: the CA of the external server's certificate")}
	case o.http.maxInFlight < 1 || o.http.maxConns < 1:
		return usageError{fmt.Errorf("--http-max-in-flight %d and --http-max-conns %d: must be at least 1", o.http.maxInFlight, o.http.maxConns)}
	case o.http.readTimeout <= 0 || o.http.idleTimeout <= 0:
		return usageError{fmt.Errorf("--http-read-timeout %s and --http-idle-timeout %s: must be positive", o.http.readTimeout, o.http.idleTimeout)}
	case o.http.writeTimeout <= httpapi.MaxWaitDefault:
		return usageError{fmt.Errorf("--http-write-timeout %s: must be more than the longest ?wait=, %s", o.http.writeTimeout, httpapi.MaxWaitDefault)}
	case o.natsURL == "" && o.limits.replicas != natsjs.ReplicasDefault:
		return usageError{fmt.Errorf("--nats-replicas %d is for a cluster (--nats-url); the embedded server is one node", o.limits.replicas)}
	case o.natsURL == "" && len(o.limits.hubSources) > 0:
		return usageError{errors.New("--hub-sources is for a country hub (--nats-url to the hub of deploy/nats/hub.conf); the embedded server has no leaf nodes")}
	case o.natsURL == "" && o.limits.hubDirectory != "":
		return usageError{errors.New("--hub-directory is for a country hub (--nats-url to the hub of deploy/nats/hub.conf); the embedded server has no leaf nodes")}
	case len(o.limits.hubSources) > 0 && o.limits.hubCountry == "":
		return usageError{errors.New("--hub-sources needs --hub-country, the country whose deliveries to source")}
	case o.natsURL != "" && (settings["nats-max-store"].Source != sourceDefault || settings["store-min-free"].Source != sourceDefault):
		return usageError{errors.New("--nats-max-store and --store-min-free are for the embedded server; with --nats-url its operator sets them")}
	}
	if err := o.limits.validate(); err != nil {
		return err
	}
	if err := o.tracing.validate(); err != nil {
		return err
	}
	return o.email.check()
}

// serverTLS loads the certificate and key of f, and the client CA when
// set, as the server side of TLS; flag names f's certificate flag for
// errors. It returns nil when f names no certificate.
func serverTLS(f tlsFlags, flag, keyFlag string) (*tls.Config, error) {
	if f.cert == "" {
		return nil, nil
	}
	cert, err := loadKeyPair(flag, f.cert, keyFlag, f.key)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if f.clientCA != "" {
		pem, err := os.ReadFile(f.clientCA)
		if err != nil {
			return nil, &flagError{flag: "nats-tls-client-ca", value: f.clientCA, err: err}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, &flagError{flag: "nats-tls-client-ca", value: f.clientCA, err: errors.New("no PEM certificate in the file")}
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// loadKeyPair loads a PEM certificate and its key, each error naming the
// flag and file at fault: a missing key file is the key flag's error, not
// the certificate's, so that the operator fixes the right setting.
func loadKeyPair(certFlag, certFile, keyFlag, keyFile string) (tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, &flagError{flag: certFlag, value: certFile, err: err}
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return tls.Certificate{}, &flagError{flag: keyFlag, value: keyFile, err: err}
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, &flagError{flag: certFlag, value: certFile, err: fmt.Errorf("with --%s %s: %w", keyFlag, keyFile, err)}
	}
	return cert, nil
}

// exposedWithoutTLS reports whether addr (host:port, as bound) is reached
// from other machines: any address but loopback.
func exposedWithoutTLS(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return true
	}
	if host == "localhost" {
		return false
	}
	ip, err := netip.ParseAddr(host)
	return err != nil || !ip.Unmap().IsLoopback()
}

// warnPlaintext logs, and prints to out, a loud warning for each address
// that other machines reach without TLS.
func warnPlaintext(out io.Writer, logger *slog.Logger, plain map[string]string) {
	for _, what := range []string{"HTTP", "NATS"} {
		addr, ok := plain[what]
		if !ok || !exposedWithoutTLS(addr) {
			continue
		}
		flags := "--tls-cert and --tls-key"
		if what == "NATS" {
			flags = "--nats-tls-cert and --nats-tls-key"
		}
		logger.Warn("listening on a non-loopback address without TLS: tokens, credentials and referrals cross the network in clear",
			slog.String("listener", what), slog.String("addr", addr), slog.String("fix", flags))
		fmt.Fprintf(out, "\n!!! WARNING: %s listens on %s WITHOUT TLS. Tokens, credentials and referrals\n!!! cross the network in clear. Use %s, or listen on 127.0.0.1 behind a TLS proxy.\n\n", what, addr, flags)
	}
}

func newServeCmd(out, errOut io.Writer) *cobra.Command {
	return newServeCmdWith(out, errOut, os.LookupEnv)
}

// newServeCmdWith is newServeCmd reading the environment through env.
func newServeCmdWith(out, errOut io.Writer, env lookupEnv) *cobra.Command {
	if env == nil {
		env = os.LookupEnv
	}
	var o serveOptions
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run an INVICTUS node: NATS with JetStream, the routing service and the HTTP API",
		Long: "Serve runs a node: an embedded NATS server with JetStream storing under --data\n" +
			"(or an external server with --nats-url), the streams and buckets of the wire\n" +
			"contract, the directory, the routing service, and the HTTP API on --listen\n" +
			"(/v1/..., /healthz, /readyz, /metrics). With --smtp-url it also e-mails the\n" +
			"organisations whose directory entry has referral_channel email, and serves the\n" +
			"pages of their accept and decline links under /mail/. It stops cleanly on\n" +
			"SIGINT or SIGTERM.\n\n" +
			"Settings come from flags, then INVICTUS_<FLAG_NAME> environment variables, then\n" +
			"the YAML file of --config, then defaults; `invictus config print` shows them.",
		Example: "  invictus serve --demo --simulate\n" +
			"  invictus serve --data /var/lib/invictus --listen :8080\n" +
			"  invictus serve --nats-url nats://nats-1:4222,nats://nats-2:4222 --nats-creds invictus.creds\n" +
			"  INVICTUS_LISTEN=127.0.0.1:0 invictus serve --config /etc/invictus.yaml --addr-file addr.json",
		Args: cobra.NoArgs,
	}
	o.addFlags(cmd.Flags())
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		settings, err := layerConfig(cmd.Flags(), env)
		if err != nil {
			return err
		}
		logger, err := o.logs.logger(errOut)
		if err != nil {
			return err
		}
		o.tracing.readEnv(env)
		if err := o.validate(settings); err != nil {
			return err
		}
		_, goMemLimit := env("GOMEMLIMIT")
		limit, restore := applyMemoryLimit(int64(o.memoryLimit), settings["memory-limit"].Source == sourceDefault, goMemLimit)
		defer restore()
		if limit != math.MaxInt64 {
			logger.Info("memory limit", slog.Int64("bytes", limit))
		}
		return withSource(runServe(cmd.Context(), o, logger, out), settings)
	}
	return cmd
}

// withSource adds to an error about a flag's value where the value came
// from, when not from the command line: a stale INVICTUS_NATS_URL, say,
// is easier to find so.
func withSource(err error, settings map[string]setting) error {
	var fe *flagError
	if !errors.As(err, &fe) {
		return err
	}
	switch s := settings[fe.flag]; s.Source {
	case sourceEnv:
		return fmt.Errorf("%w (--%s was set by %s)", err, fe.flag, s.From)
	case sourceFile:
		return fmt.Errorf("%w (--%s was set in %s)", err, fe.flag, s.From)
	}
	return err
}

// component is one long-running part of serve. Start returns once the part
// serves (or has failed and cleaned up after itself); Stop stops it and waits
// for its goroutines. Components start in order and stop in reverse order.
// A failure after Start is reported through the fail function the component
// was built with, and shuts serve down.
type component interface {
	Name() string
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
}

// runServe runs the node until ctx ends or a component fails. It returns nil
// after a clean shutdown. The demo banner goes to out.
func runServe(ctx context.Context, o serveOptions, logger *slog.Logger, out io.Writer) error {
	failed := make(chan error, 8)
	fail := func(err error) {
		select {
		case failed <- err:
		default: // one failure is enough to shut down
		}
	}

	httpTLS, err := serverTLS(o.http.tls, "tls-cert", "tls-key")
	if err != nil {
		return err
	}
	var natsTLS *tls.Config
	var natsClientTLS []nats.Option
	if o.natsURL == "" {
		natsTLS, err = serverTLS(o.natsTLS, flagNATSTLSCert, flagNATSTLSKey)
	} else {
		natsClientTLS, err = (&natsTLSFlags{ca: o.natsTLSCA, cert: o.natsTLS.cert, key: o.natsTLS.key}).options()
	}
	if err != nil {
		return err
	}
	ready := &readiness{}
	view := directory.NewView()
	natsC := &natsComponent{
		data:       o.data,
		listen:     o.natsListen,
		url:        o.natsURL,
		creds:      o.natsCreds,
		tls:        natsTLS,
		dialTLS:    natsClientTLS,
		streams:    o.limits.streams(),
		domainWait: o.limits.hubDomainWait,
		maxStore:   int64(o.limits.natsMaxStore),
		minFree:    int64(o.limits.storeMinFree),
		logger:     logger,
		fail:       fail,
	}
	dirC := &directoryComponent{conn: natsC.adminConn, view: view, logger: logger, fail: fail}
	provC := &provisionComponent{nats: natsC, view: view, logger: logger, fail: fail}
	// The API serves the metrics the routing service feeds.
	metrics := httpapi.NewMetrics()
	routeC := &routingComponent{conn: natsC.routingConn, view: view, observer: metrics, damaged: natsC.storeCheck, logger: logger, fail: fail}
	if len(o.limits.hubSources) > 0 {
		routeC.hubCountry = o.limits.hubCountry
	}
	reportsC := &reportsComponent{data: o.data, conn: natsC.adminConn, streams: natsC.streams, every: o.reportsEvery, logger: logger, fail: fail}
	apiC := &apiComponent{
		reports: reportsC,
		listen:  o.listen,
		conn:    natsC.adminConn,
		view:    view,
		probes:  newProbeMux(ready),
		metrics: metrics,
		config: httpapi.Config{
			MaxInFlight:  o.http.maxInFlight,
			MaxConns:     o.http.maxConns,
			ReadTimeout:  o.http.readTimeout,
			WriteTimeout: o.http.writeTimeout,
			IdleTimeout:  o.http.idleTimeout,
			TLS:          httpTLS,
			Webhooks:     httpapi.WebhookConfig{AllowPrivate: o.http.allowPrivateWebhooks},
		},
		nats:      natsC,
		intakeOrg: o.publicIntake,
		workBits:  o.askWorkBits,
		logger:    logger,
		fail:      fail,
	}
	if apiC.intakeOrg == "" && o.demo {
		apiC.intakeOrg = demoPublicIntake
	}
	ready.add("nats", natsC.connected)
	ready.add("streams", natsC.streamsEnsured)
	ready.add("jetstream", natsC.jetstreamCheck)
	ready.add("storage", natsC.storageCheck)
	ready.add("store", natsC.storeCheck)
	ready.add("directory", dirC.loaded)
	ready.add("routing", routeC.runningCheck)

	// HTTP comes after the services, so that it only answers once they
	// run and stops before they do.
	components := []component{&tracingComponent{flags: o.tracing}, natsC}
	var demo *demoComponent
	if o.demo {
		demo = &demoComponent{data: o.data, seed: o.demoSeed, conn: natsC.adminConn, logger: logger}
		components = append(components, demo)
	}
	components = append(components, dirC, provC, routeC, reportsC)
	components = append(components, &retentionComponent{age: o.retention, conn: natsC.adminConn, streams: natsC.streams, reg: metrics.Registry, logger: logger, fail: fail})
	if o.email.enabled() {
		// Before the API, which mounts its link pages at /mail/.
		o.email.replicas = o.limits.replicas
		emailC := &emailComponent{settings: o.email, conn: natsC.adminConn, view: view, reg: metrics.Registry, logger: logger, fail: fail}
		apiC.mail = emailC
		components = append(components, emailC)
	}
	components = append(components, apiC)
	var pprofC *pprofComponent
	if o.pprofListen != "" {
		pprofC = &pprofComponent{listen: o.pprofListen, data: o.data, logger: logger}
		components = append(components, pprofC)
	}
	var tokens *demoTokensComponent
	if o.demo {
		tokens = &demoTokensComponent{data: o.data, demo: demo, api: apiC, logger: logger}
		components = append(components, tokens)
	}
	if o.simulate {
		components = append(components, &simulateComponent{
			conn: natsC.adminConn, connect: natsC.connectAs, demo: demo, ratePerMinute: o.simulateRate, logger: logger, fail: fail,
		})
	}

	if o.addrFile != "" {
		// A file left by an earlier run must not be mistaken for this one's.
		if err := os.Remove(o.addrFile); err != nil && !errors.Is(err, os.ErrNotExist) {
			return &flagError{flag: "addr-file", value: o.addrFile, err: err}
		}
	}

	startCtx, cancel := context.WithTimeout(ctx, serveStartTimeout)
	started, err := startAll(startCtx, components, logger)
	cancel()
	if err != nil {
		stopErr := stopAll(context.WithoutCancel(ctx), o.shutdownTimeout, started, logger)
		return errors.Join(err, stopErr)
	}

	addrs := map[string]string{"http": apiC.addr(), "nats": natsC.addr()}
	if pprofC != nil {
		addrs["pprof"] = pprofC.addr()
	}
	var runErr error
	embedded := o.natsURL == ""
	if embedded {
		// The CLI finds the node running on --data by this file.
		info := nodeInfo{PID: os.Getpid(), HTTP: addrs["http"], NATS: addrs["nats"], Started: time.Now().UTC()}
		if err := writeNodeFile(o.data, info); err != nil {
			runErr = &flagError{flag: "data", value: o.data, err: fmt.Errorf("write %s: %w", nodeFileName, err)}
		}
	}
	// Ready before the addr file says so: whoever waits for the file
	// finds /readyz answering 200.
	ready.serving.Store(runErr == nil)
	if runErr == nil {
		logger.Info("invictus ready",
			slog.String("http", addrs["http"]), slog.String("nats", addrs["nats"]), slog.String("data", o.data))
		plain := map[string]string{}
		if httpTLS == nil {
			plain["HTTP"] = addrs["http"]
		}
		if embedded && natsTLS == nil {
			plain["NATS"] = addrs["nats"]
		}
		warnPlaintext(out, logger, plain)
		if o.http.allowPrivateWebhooks {
			logger.Warn("webhooks may reach loopback and private addresses (--allow-private-webhooks): for development only")
		}
		if demo != nil {
			printDemoBanner(out, o.data, o.natsURL == "", addrs, demo, tokens)
		}
		// The addr file comes last: whoever waits for it finds the log
		// line, the warnings and the banner already written.
		if o.addrFile != "" {
			if err := writeFileAtomic(o.addrFile, addrs); err != nil {
				runErr = &flagError{flag: "addr-file", value: o.addrFile, err: err}
			}
		}
	}
	if runErr == nil {
		select {
		case <-ctx.Done():
			logger.Info("shutting down", slog.String("reason", "signal"))
		case runErr = <-failed:
			logger.Error("shutting down after a failure", slog.Any("error", runErr))
		}
	}

	ready.serving.Store(false)
	var nodeErr error
	if embedded {
		if err := removeNodeFile(o.data); err != nil {
			nodeErr = fmt.Errorf("remove %s: %w", nodeFileName, err)
		}
	}
	stopErr := stopAll(context.WithoutCancel(ctx), o.shutdownTimeout, components, logger)
	if o.addrFile != "" {
		if err := os.Remove(o.addrFile); err != nil && !errors.Is(err, os.ErrNotExist) {
			stopErr = errors.Join(stopErr, fmt.Errorf("remove addr file: %w", err))
		}
	}
	if err := errors.Join(runErr, nodeErr, stopErr); err != nil {
		return err
	}
	logger.Info("shutdown complete")
	return nil
}

// startAll starts components in order and returns those that started; it
// stops at the first error.
func startAll(ctx context.Context, components []component, logger *slog.Logger) ([]component, error) {
	for i, c := range components {
		begin := time.Now()
		if err := c.Start(ctx); err != nil {
			return components[:i], err
		}
		logger.Debug("started", slog.String("component", c.Name()), slog.Duration("took", time.Since(begin)))
	}
	return components, nil
}

// stopAll stops components in reverse order within timeout, stopping every
// one even when some fail.
func stopAll(ctx context.Context, timeout time.Duration, components []component, logger *slog.Logger) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var errs []error
	for i := len(components) - 1; i >= 0; i-- {
		c := components[i]
		if err := c.Stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop %s: %w", c.Name(), err))
			continue
		}
		logger.Debug("stopped", slog.String("component", c.Name()))
	}
	return errors.Join(errs...)
}

// background is the goroutine of a component: run until Stop.
type background struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// startBackground runs run in a goroutine until stop. If run returns
// before that (with an error or without), fail is told and serve shuts
// down.
func startBackground(name string, fail func(error), run func(context.Context) error) *background {
	ctx, cancel := context.WithCancel(context.Background())
	b := &background{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(b.done)
		err := run(ctx)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = errors.New("stopped unexpectedly")
		}
		fail(fmt.Errorf("%s: %w", name, err))
	}()
	return b
}

// stop cancels the goroutine and waits for it until ctx ends.
func (b *background) stop(ctx context.Context) error {
	if b == nil {
		return nil
	}
	b.cancel()
	select {
	case <-b.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// httpServer serves a handler on a listener until shutdown.
type httpServer struct {
	srv  *http.Server
	ln   net.Listener
	done chan struct{}
}

// listenHTTP listens on addr, the value of flag; a taken port is a
// flagError naming it.
func listenHTTP(ctx context.Context, flag, addr string) (net.Listener, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		return nil, &flagError{flag: flag, value: addr, err: syscall.EADDRINUSE}
	case err != nil:
		return nil, &flagError{flag: flag, value: addr, err: err}
	}
	return ln, nil
}

// serveHTTP serves srv on ln in a goroutine; a failure of the server is
// told to fail.
func serveHTTP(ln net.Listener, srv *http.Server, fail func(error)) *httpServer {
	h := &httpServer{ln: ln, srv: srv, done: make(chan struct{})}
	go func() {
		defer close(h.done)
		if err := h.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			fail(fmt.Errorf("http: %w", err))
		}
	}()
	return h
}

// shutdown stops accepting, lets requests in flight finish until ctx ends,
// then closes what is left.
func (h *httpServer) shutdown(ctx context.Context) error {
	if h == nil {
		return nil
	}
	err := h.srv.Shutdown(ctx)
	if err != nil {
		err = errors.Join(err, h.srv.Close())
	}
	<-h.done
	return err
}

// readiness answers /readyz: ready when serve has started every component and
// is not shutting down, and every check passes.
type readiness struct {
	serving atomic.Bool
	checks  []namedCheck
}

type namedCheck struct {
	name  string
	check func(context.Context) error
}

// add registers a check; call it before serving.
func (r *readiness) add(name string, check func(context.Context) error) {
	r.checks = append(r.checks, namedCheck{name, check})
}

// statusNotReady is the status of /readyz when a check fails (the OpenAPI
// document's Readiness enum: ready, not_ready).
const statusNotReady = "not_ready"

// probeReport is the JSON body of /healthz and /readyz.
type probeReport struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks,omitempty"`
}

func (r *readiness) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	report := probeReport{Status: "ready", Checks: map[string]string{"serve": "ok"}}
	if !r.serving.Load() {
		report.Status, report.Checks["serve"] = statusNotReady, "starting or stopping"
	}
	for _, c := range r.checks {
		ctx, cancel := context.WithTimeout(req.Context(), 2*time.Second)
		err := c.check(ctx)
		cancel()
		if err != nil {
			report.Status, report.Checks[c.name] = statusNotReady, err.Error()
			continue
		}
		report.Checks[c.name] = "ok"
	}
	code := http.StatusOK
	if report.Status != "ready" {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, report)
}

// newProbeMux serves /healthz (the process is alive) and /readyz. Serve
// puts it in front of the HTTP API, whose other routes it leaves alone.
func newProbeMux(ready *readiness) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, probeReport{Status: "alive"})
	})
	mux.Handle("GET /readyz", ready)
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v) // the client has gone if this fails
}

// writeFileAtomic writes v as JSON to path through a temporary file in the
// same directory and a rename, so a reader sees the whole file or none.
func writeFileAtomic(path string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return writeBytesAtomic(path, append(data, '\n'), 0o644)
}

// writeBytesAtomic writes data to path with mode perm through a temporary
// file in the same directory and a rename.
func writeBytesAtomic(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // fails harmlessly after the rename
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
