package natsjs

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Defaults of [ServerConfig].
const (
	// ListenDefault is the client address of the embedded server. It is not
	// NATS's usual 4222, so that it never collides with a standard server.
	ListenDefault = "127.0.0.1:4223"
	// ServerNameDefault names the embedded server in its INFO and in
	// JetStream metadata.
	ServerNameDefault = "invictus"
	// StartTimeoutDefault bounds how long [StartServer] waits for the server
	// to accept connections.
	StartTimeoutDefault = 10 * time.Second
	// tlsTimeout bounds a client's TLS handshake.
	tlsTimeout = 2 * time.Second
)

// Errors returned by [StartServer]. They are wrapped with details; test them
// with errors.Is.
var (
	// ErrAddrInUse reports that the client listen address is taken by
	// another process.
	ErrAddrInUse = errors.New("address already in use")
	// ErrStoreNotWritable reports that the JetStream store directory cannot
	// be created or written.
	ErrStoreNotWritable = errors.New("store directory not writable")
	// ErrServerStart reports any other failure of the server to start.
	ErrServerStart = errors.New("nats server did not start")
)

// ServerConfig configures the embedded NATS server. StoreDir is required;
// the zero value of every other field means its default.
type ServerConfig struct {
	// StoreDir is the directory under which JetStream keeps its file store.
	// It is created if missing. Required.
	StoreDir string
	// Listen is the client address, host:port. Port 0 picks a free port;
	// [Server.Addr] tells which. Default [ListenDefault].
	Listen string
	// DontListen starts the server without a TCP listener: only in-process
	// connections ([Server.Connect]) reach it. Listen is then ignored.
	DontListen bool
	// ServerName names the server. Default [ServerNameDefault].
	ServerName string
	// StartTimeout bounds the wait for the server to be ready. Default
	// [StartTimeoutDefault].
	StartTimeout time.Duration
	// TLS, when set, makes clients connect over TLS with it (in-process
	// connections excepted); with ClientAuth tls.RequireAndVerifyClientCert
	// and ClientCAs, they must present a certificate that CA signed.
	TLS *tls.Config
	// MaxStore bounds JetStream's file store, in bytes; 0 leaves the
	// server's own default (three quarters of the disk's free space at
	// start). The streams' MaxBytes are reserved from it (storage.go).
	MaxStore int64
	// MinFree is the free space the store's file system must keep, in
	// bytes, for [Server.StorageCheck]. Default [MinFreeDefault].
	MinFree int64
	// Auth, when set, turns authentication on: only the nkey users it
	// lists may connect, in process too, each with its permissions (see
	// auth.go). Nil accepts every connection, as before.
	Auth *Auth
}

// WithDefaults returns a copy of c with every unset field given its default.
func (c ServerConfig) WithDefaults() ServerConfig {
	if c.Listen == "" {
		c.Listen = ListenDefault
	}
	if c.ServerName == "" {
		c.ServerName = ServerNameDefault
	}
	if c.StartTimeout == 0 {
		c.StartTimeout = StartTimeoutDefault
	}
	if c.MinFree == 0 {
		c.MinFree = MinFreeDefault
	}
	return c
}

// Validate reports the first invalid field of c, naming it. Call it on the
// result of [ServerConfig.WithDefaults].
func (c ServerConfig) Validate() error {
	if c.StoreDir == "" {
		return errors.New("natsjs: ServerConfig.StoreDir is required")
	}
	if !c.DontListen {
		if _, _, err := splitListen(c.Listen); err != nil {
			return fmt.Errorf("natsjs: ServerConfig.Listen %q: %w", c.Listen, err)
		}
	}
	if c.ServerName == "" {
		return errors.New("natsjs: ServerConfig.ServerName is required")
	}
	if c.StartTimeout <= 0 {
		return fmt.Errorf("natsjs: ServerConfig.StartTimeout %s must be positive", c.StartTimeout)
	}
	if c.MaxStore < 0 || c.MinFree < 0 {
		return fmt.Errorf("natsjs: ServerConfig.MaxStore %d and MinFree %d must not be negative", c.MaxStore, c.MinFree)
	}
	return nil
}

// splitListen parses host:port into the server's options; port 0 becomes
// the server's "pick a free port" value.
func splitListen(listen string) (string, int, error) {
	host, portText, err := net.SplitHostPort(listen)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("port %q is not a number from 0 to 65535", portText)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	return host, port, nil
}

// Server is a running embedded NATS server with JetStream. Its methods are
// safe for concurrent use.
type Server struct {
	ns     *server.Server
	cfg    ServerConfig
	logger *slog.Logger

	mu    sync.Mutex
	conns []*nats.Conn // in-process connections handed out by Connect

	// Authentication (auth.go, accounts.go, gate.go); nil without.
	authMu sync.Mutex
	authn  *authenticator
	gate   *gate
}

// StartServer starts an embedded NATS server with JetStream storing files
// under cfg.StoreDir and returns once it accepts connections. Server logs go
// to logger (nil discards them). It returns an error wrapping
// [ErrStoreNotWritable] when the store directory cannot be written,
// [ErrAddrInUse] when the listen address is taken, and [ErrServerStart] for
// any other start failure; ctx bounds the wait.
func StartServer(ctx context.Context, cfg ServerConfig, logger *slog.Logger) (*Server, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("natsjs: %w: %w", ErrServerStart, err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := CheckWritable(cfg.StoreDir); err != nil {
		return nil, fmt.Errorf("natsjs: %w: %w", ErrStoreNotWritable, err)
	}

	opts := &server.Options{
		ServerName: cfg.ServerName,
		JetStream:  true,
		StoreDir:   cfg.StoreDir,
		DontListen: cfg.DontListen,
		NoSigs:     true, // the binary owns signal handling
		// 0 is the server's default.
		JetStreamMaxStore: cfg.MaxStore,
		// The server has no monitoring, cluster, gateway or leaf ports.
	}
	if !cfg.DontListen {
		host, port, err := splitListen(cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("natsjs: ServerConfig.Listen %q: %w", cfg.Listen, err)
		}
		opts.Host, opts.Port = host, port
	}
	if cfg.TLS != nil {
		opts.TLSConfig, opts.TLS = cfg.TLS, true
		opts.TLSVerify = cfg.TLS.ClientAuth == tls.RequireAndVerifyClientCert
		opts.TLSTimeout = tlsTimeout.Seconds()
	}
	var authn *authenticator
	if cfg.Auth != nil { // auth.go
		var err error
		if authn, err = cfg.Auth.apply(opts); err != nil {
			return nil, err
		}
	}

	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("natsjs: %w: %w", ErrServerStart, err)
	}
	if authn != nil {
		if err := authn.bind(ns); err != nil {
			return nil, err
		}
	}
	sl := &serverLogger{logger: logger.With(slog.String("component", "nats-server"))}
	ns.SetLoggerV2(sl, false, false, false)

	// Start creates the listener and enables JetStream before it returns; a
	// failure of either is reported through Fatalf, which serverLogger keeps.
	ns.Start()
	if err := waitReady(ctx, ns, sl, cfg); err != nil {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, err
	}
	s := &Server{ns: ns, cfg: cfg, logger: logger}
	if authn != nil {
		if err := s.startAuth(ctx, authn); err != nil {
			_ = s.Shutdown(context.WithoutCancel(ctx))
			return nil, err
		}
	}
	return s, nil
}

// waitReady polls the server until it accepts connections with JetStream on,
// a fatal start error is logged, ctx ends or cfg.StartTimeout passes.
func waitReady(ctx context.Context, ns *server.Server, sl *serverLogger, cfg ServerConfig) error {
	deadline := time.Now().Add(cfg.StartTimeout)
	for {
		if err := sl.fatalErr(); err != nil {
			if errors.Is(err, syscall.EADDRINUSE) {
				return fmt.Errorf("natsjs: listen %s: %w", cfg.Listen, ErrAddrInUse)
			}
			return fmt.Errorf("natsjs: %w: %w", ErrServerStart, err)
		}
		if ns.ReadyForConnections(20*time.Millisecond) && ns.JetStreamEnabled() {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("natsjs: %w: %w", ErrServerStart, err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("natsjs: %w: not ready after %s", ErrServerStart, cfg.StartTimeout)
		}
	}
}

// CheckWritable creates dir if needed and proves a file can be written in
// it: what StartServer checks of its store, and serve of its data
// directory.
func CheckWritable(dir string) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".write-check-*")
	if err != nil {
		return err
	}
	name := f.Name()
	if err := f.Close(); err != nil {
		return err
	}
	return os.Remove(name)
}

// ClientURL returns the URL clients outside the process use, such as
// "nats://127.0.0.1:4223", or "" when the server does not listen.
func (s *Server) ClientURL() string {
	if s.cfg.DontListen {
		return ""
	}
	return s.ns.ClientURL()
}

// Addr returns the address the server listens on, with the actual port when
// port 0 was asked for, or nil when the server does not listen.
func (s *Server) Addr() net.Addr {
	if s.cfg.DontListen {
		return nil
	}
	return s.ns.Addr()
}

// InProcessConn returns a new in-process network connection to the server.
// It makes *Server a [nats.InProcessConnProvider], so nats.InProcessServer(s)
// works as a connect option; prefer [Server.Connect], which also drains the
// connection at [Server.Shutdown].
func (s *Server) InProcessConn() (net.Conn, error) {
	return s.ns.InProcessConn()
}

// Connect opens an in-process client connection to the server, for the
// services inside the binary. opts are applied after the in-process option.
// The connection is drained by [Server.Shutdown] if still open then. It
// returns ctx's error if ctx has already ended and the client's error if the
// connection fails; a deadline on ctx bounds the connect.
func (s *Server) Connect(ctx context.Context, opts ...nats.Option) (*nats.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("natsjs: connect: %w", err)
	}
	all := []nats.Option{nats.InProcessServer(s)}
	if deadline, ok := ctx.Deadline(); ok {
		all = append(all, nats.Timeout(time.Until(deadline)))
	}
	nc, err := nats.Connect("", append(all, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("natsjs: connect in process: %w", err)
	}
	s.mu.Lock()
	s.conns = append(s.conns, nc)
	s.mu.Unlock()
	return nc, nil
}

// Msgs returns the messages the server has received from and sent to
// its clients since it started (its own statistics, as /varz has them).
func (s *Server) Msgs() (in, out int64) {
	v, err := s.ns.Varz(nil)
	if err != nil {
		return 0, 0
	}
	return v.InMsgs, v.OutMsgs
}

// Shutdown drains the connections made by [Server.Connect] that are still
// open, so that their pending publishes and acknowledgements complete, then
// shuts the server down and waits until it has stopped and flushed its store.
// It returns ctx's error if ctx ends first; the shutdown then still
// completes in the background. Calling it more than once is safe.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.gate != nil {
		s.gate.close()
	}
	s.mu.Lock()
	conns := s.conns
	s.conns = nil
	s.mu.Unlock()

	var errs []error
	for _, nc := range conns {
		if nc.IsClosed() {
			continue
		}
		if err := nc.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			errs = append(errs, fmt.Errorf("natsjs: drain %q: %w", nc.Opts.Name, err))
		}
	}
	if err := waitClosed(ctx, conns); err != nil {
		errs = append(errs, err)
	}

	done := make(chan struct{})
	go func() {
		s.ns.Shutdown()
		s.ns.WaitForShutdown()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("natsjs: server shutdown: %w", ctx.Err()))
	}
	return errors.Join(errs...)
}

// waitClosed polls until every connection is closed or ctx ends.
func waitClosed(ctx context.Context, conns []*nats.Conn) error {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for _, nc := range conns {
		for !nc.IsClosed() {
			select {
			case <-ctx.Done():
				nc.Close()
				return fmt.Errorf("natsjs: drain %q: %w", nc.Opts.Name, ctx.Err())
			case <-tick.C:
			}
		}
	}
	return nil
}

// serverLogger adapts nats-server's logger to slog. Fatal messages are
// logged as errors and their error argument is kept for StartServer: the
// server's own logger would exit the process instead.
type serverLogger struct {
	logger *slog.Logger

	mu    sync.Mutex
	fatal error
}

func (l *serverLogger) fatalErr() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.fatal
}

// Noticef logs at debug level: the server's notices are its start-up banner
// and routine events; the binary logs its own summary at info level.
func (l *serverLogger) Noticef(format string, v ...any) {
	l.log(slog.LevelDebug, format, v)
}

// Warnf logs at warn level.
func (l *serverLogger) Warnf(format string, v ...any) {
	l.log(slog.LevelWarn, format, v)
}

// Errorf logs at error level.
func (l *serverLogger) Errorf(format string, v ...any) {
	l.log(slog.LevelError, format, v)
}

// Fatalf logs at error level and records the first error among v, or the
// message itself when v holds none.
func (l *serverLogger) Fatalf(format string, v ...any) {
	l.log(slog.LevelError, format, v)
	var err error
	for _, a := range v {
		if e, ok := a.(error); ok {
			err = e
			break
		}
	}
	if err == nil {
		err = fmt.Errorf(format, v...)
	}
	l.mu.Lock()
	if l.fatal == nil {
		l.fatal = err
	}
	l.mu.Unlock()
}

// Debugf logs at debug level.
func (l *serverLogger) Debugf(format string, v ...any) {
	l.log(slog.LevelDebug, format, v)
}

// Tracef logs at debug level; tracing is never switched on, as traces carry
// message payloads.
func (l *serverLogger) Tracef(format string, v ...any) {
	l.log(slog.LevelDebug, format, v)
}

func (l *serverLogger) log(level slog.Level, format string, v []any) {
	ctx := context.Background()
	if !l.logger.Enabled(ctx, level) {
		return
	}
	l.logger.Log(ctx, level, fmt.Sprintf(format, v...))
}

var _ server.Logger = (*serverLogger)(nil)
