package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/invictus-network/invictus/adapters/natsjs"
)

// Defaults and limits of `invictus serve`.
const (
	serveDataDefault            = "./data"
	serveListenDefault          = "127.0.0.1:8080"
	serveNATSListenDefault      = natsjs.ListenDefault
	serveShutdownTimeoutDefault = 30 * time.Second
	// serveStartTimeout bounds the start of all components together.
	serveStartTimeout = 60 * time.Second
)

// serveOptions are the flags of `invictus serve`.
type serveOptions struct {
	data            string
	listen          string
	natsListen      string
	addrFile        string
	shutdownTimeout time.Duration
}

func newServeCmd(_, errOut io.Writer) *cobra.Command {
	var o serveOptions
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run an INVICTUS node: embedded NATS with JetStream and the HTTP server",
		Long: "Serve starts an embedded NATS server with JetStream storing under --data,\n" +
			"creates the streams and buckets of the wire contract, and serves HTTP on\n" +
			"--listen (/healthz, /readyz). It stops cleanly on SIGINT or SIGTERM.\n" +
			"Port 0 in --listen or --nats-listen picks a free port; --addr-file tells which.",
		Args: cobra.NoArgs,
	}
	f := cmd.Flags()
	f.StringVar(&o.data, "data", serveDataDefault, "data directory (JetStream store under DIR/nats)")
	f.StringVar(&o.listen, "listen", serveListenDefault, "HTTP listen address, host:port")
	f.StringVar(&o.natsListen, "nats-listen", serveNATSListenDefault, "NATS client listen address, host:port")
	f.StringVar(&o.addrFile, "addr-file", "", `write {"http": ADDR, "nats": ADDR} to FILE once ready; removed at shutdown`)
	f.DurationVar(&o.shutdownTimeout, "shutdown-timeout", serveShutdownTimeoutDefault, "how long a clean shutdown may take")
	lf := addLogFlags(cmd)

	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		logger, err := lf.logger(errOut)
		if err != nil {
			return err
		}
		if o.shutdownTimeout <= 0 {
			return usageError{fmt.Errorf("--shutdown-timeout %s: must be positive", o.shutdownTimeout)}
		}
		return runServe(cmd.Context(), o, logger)
	}
	return cmd
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
// after a clean shutdown.
func runServe(ctx context.Context, o serveOptions, logger *slog.Logger) error {
	failed := make(chan error, 8)
	fail := func(err error) {
		select {
		case failed <- err:
		default: // one failure is enough to shut down
		}
	}

	ready := &readiness{}
	natsC := &natsComponent{
		storeDir: filepath.Join(o.data, "nats"),
		dataFlag: o.data,
		listen:   o.natsListen,
		logger:   logger,
		fail:     fail,
	}
	httpC := &httpComponent{
		listen:  o.listen,
		handler: newProbeMux(ready),
		logger:  logger,
		fail:    fail,
	}
	ready.add("nats", natsC.connected)
	ready.add("streams", natsC.streamsEnsured)
	// Later services (routing, delivery, ...) join this list, before HTTP so
	// that HTTP only answers once they run and stops before they do.
	components := []component{natsC, httpC}

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

	addrs := map[string]string{"http": httpC.addr(), "nats": natsC.addr()}
	var runErr error
	if o.addrFile != "" {
		if err := writeFileAtomic(o.addrFile, addrs); err != nil {
			runErr = &flagError{flag: "addr-file", value: o.addrFile, err: err}
		}
	}
	if runErr == nil {
		ready.serving.Store(true)
		logger.Info("invictus ready",
			slog.String("http", addrs["http"]), slog.String("nats", addrs["nats"]), slog.String("data", o.data))
		select {
		case <-ctx.Done():
			logger.Info("shutting down", slog.String("reason", "signal"))
		case runErr = <-failed:
			logger.Error("shutting down after a failure", slog.Any("error", runErr))
		}
	}

	ready.serving.Store(false)
	stopErr := stopAll(context.WithoutCancel(ctx), o.shutdownTimeout, components, logger)
	if o.addrFile != "" {
		if err := os.Remove(o.addrFile); err != nil && !errors.Is(err, os.ErrNotExist) {
			stopErr = errors.Join(stopErr, fmt.Errorf("remove addr file: %w", err))
		}
	}
	if err := errors.Join(runErr, stopErr); err != nil {
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

// natsComponent runs the embedded NATS server, holds the node's in-process
// connection and ensures the streams.
type natsComponent struct {
	storeDir string
	dataFlag string // --data, for error messages
	listen   string
	streams  natsjs.StreamsConfig
	logger   *slog.Logger
	fail     func(error)

	srv      *natsjs.Server
	conn     atomic.Pointer[nats.Conn]
	ensured  atomic.Bool
	stopping atomic.Bool
}

func (n *natsComponent) Name() string { return "nats" }

// Start starts the server, connects in process and ensures the streams.
func (n *natsComponent) Start(ctx context.Context) error {
	srv, err := natsjs.StartServer(ctx, natsjs.ServerConfig{StoreDir: n.storeDir, Listen: n.listen}, n.logger)
	switch {
	case errors.Is(err, natsjs.ErrAddrInUse):
		return &flagError{flag: "nats-listen", value: n.listen, err: natsjs.ErrAddrInUse}
	case errors.Is(err, natsjs.ErrStoreNotWritable):
		return &flagError{flag: "data", value: n.dataFlag, err: err}
	case err != nil:
		return fmt.Errorf("start nats: %w", err)
	}
	n.srv = srv

	nc, err := srv.Connect(ctx,
		nats.Name("invictus serve"),
		nats.ClosedHandler(func(*nats.Conn) {
			if !n.stopping.Load() {
				n.fail(errors.New("nats: in-process connection closed"))
			}
		}),
	)
	if err == nil {
		n.conn.Store(nc)
		err = n.ensureStreams(ctx, nc)
	}
	if err != nil {
		n.stopping.Store(true)
		return errors.Join(err, srv.Shutdown(context.WithoutCancel(ctx)))
	}
	return nil
}

func (n *natsComponent) ensureStreams(ctx context.Context, nc *nats.Conn) error {
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	if err := natsjs.EnsureStreams(ctx, js, n.streams); err != nil {
		return err
	}
	n.ensured.Store(true)
	return nil
}

// Stop drains the node's connections and shuts the server down.
func (n *natsComponent) Stop(ctx context.Context) error {
	n.stopping.Store(true)
	n.ensured.Store(false)
	return n.srv.Shutdown(ctx)
}

// addr is the NATS client address, host:port.
func (n *natsComponent) addr() string { return n.srv.Addr().String() }

// connected is the readiness check of the in-process connection.
func (n *natsComponent) connected(context.Context) error {
	nc := n.conn.Load()
	if nc == nil {
		return errors.New("not connected")
	}
	if st := nc.Status(); st != nats.CONNECTED {
		return fmt.Errorf("connection %s", st)
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

// httpComponent serves HTTP on its listen address.
type httpComponent struct {
	listen  string
	handler http.Handler
	logger  *slog.Logger
	fail    func(error)

	srv  *http.Server
	ln   net.Listener
	done chan struct{}
}

func (h *httpComponent) Name() string { return "http" }

// Start listens and serves in a goroutine.
func (h *httpComponent) Start(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", h.listen)
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		return &flagError{flag: "listen", value: h.listen, err: syscall.EADDRINUSE}
	case err != nil:
		return &flagError{flag: "listen", value: h.listen, err: err}
	}
	h.ln = ln
	h.srv = &http.Server{
		Handler:           h.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(h.logger.Handler(), slog.LevelWarn),
	}
	h.done = make(chan struct{})
	go func() {
		defer close(h.done)
		if err := h.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			h.fail(fmt.Errorf("http: %w", err))
		}
	}()
	return nil
}

// Stop stops accepting, lets requests in flight finish until ctx ends, then
// closes what is left.
func (h *httpComponent) Stop(ctx context.Context) error {
	err := h.srv.Shutdown(ctx)
	if err != nil {
		err = errors.Join(err, h.srv.Close())
	}
	<-h.done
	return err
}

// addr is the HTTP listen address, host:port.
func (h *httpComponent) addr() string { return h.ln.Addr().String() }

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

// probeReport is the JSON body of /healthz and /readyz.
type probeReport struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks,omitempty"`
}

func (r *readiness) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	report := probeReport{Status: "ready", Checks: map[string]string{"serve": "ok"}}
	if !r.serving.Load() {
		report.Status, report.Checks["serve"] = "not ready", "starting or stopping"
	}
	for _, c := range r.checks {
		ctx, cancel := context.WithTimeout(req.Context(), 2*time.Second)
		err := c.check(ctx)
		cancel()
		if err != nil {
			report.Status, report.Checks[c.name] = "not ready", err.Error()
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

// newProbeMux serves /healthz (the process is alive) and /readyz.
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
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // fails harmlessly after the rename
	if _, err := tmp.Write(append(data, '\n')); err != nil {
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
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
