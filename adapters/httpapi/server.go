package httpapi

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/invictus-network/invictus/internal/ratelimit"
)

// Defaults and limits of [Config].
const (
	// RatePerSecondDefault is the sustained request rate of one token (or,
	// without a token, of one client address).
	RatePerSecondDefault = 20.0
	// RateBurstDefault is how many requests a token may make at once.
	RateBurstDefault = 40
	// MaxWaitDefault is the longest ?wait= of POST /v1/events.
	MaxWaitDefault = 10 * time.Second
	// MaxJSONBodyDefault bounds the JSON bodies of the API's own
	// endpoints (match, webhooks); events have their own limits
	// (events.MaxMessageSize, events.MaxBatchSize).
	MaxJSONBodyDefault = 64 << 10
	// InboxLimitDefault and InboxLimitMax bound a page of GET /v1/inbox.
	InboxLimitDefault = 100
	InboxLimitMax     = 1000
	// PerPageDefault and PerPageMax bound a page of the directory.
	PerPageDefault = 25
	PerPageMax     = 200
	// HeartbeatDefault is the interval of the comment lines that keep an
	// idle server-sent event stream open through proxies.
	HeartbeatDefault = 15 * time.Second
	// ReadyTimeout bounds the checks of one /readyz.
	ReadyTimeout = 2 * time.Second
	// StoreTimeout bounds each request to a port made for one HTTP request.
	StoreTimeout = 5 * time.Second

	// MaxInFlightDefault bounds the requests the API handles at once
	// (event streams count only until they start). A request beyond it
	// is answered at once with 503 overloaded and Retry-After:
	// ShedRetryAfter, before it is read or authenticated, so that memory
	// and goroutines stay bounded however fast requests come. /healthz,
	// /readyz and /metrics are never shed.
	MaxInFlightDefault = 256
	// ShedRetryAfter is the Retry-After, in seconds, of a shed request.
	ShedRetryAfter = 1
	// MaxConnsDefault bounds the open HTTP connections: a connection
	// beyond it waits in the kernel's accept queue until one closes.
	MaxConnsDefault = 1024
	// ReadHeaderTimeoutDefault bounds the reading of a request's headers.
	ReadHeaderTimeoutDefault = 10 * time.Second
	// ReadTimeoutDefault bounds the reading of a whole request.
	ReadTimeoutDefault = 30 * time.Second
	// WriteTimeoutDefault bounds a response, from the end of the
	// request's headers; it must exceed MaxWait. Event streams lift it
	// and bound each write by StreamWriteTimeoutDefault instead.
	WriteTimeoutDefault = 30 * time.Second
	// IdleTimeoutDefault closes a keep-alive connection idle this long.
	IdleTimeoutDefault = 60 * time.Second
	// StreamWriteTimeoutDefault bounds each write of a server-sent event
	// stream: a client that stops reading is dropped.
	StreamWriteTimeoutDefault = 30 * time.Second
)

// Config configures a [Server]. The zero value of every field means its
// default.
type Config struct {
	// RatePerSecond and RateBurst set the token bucket of each token.
	// Defaults [RatePerSecondDefault], [RateBurstDefault].
	RatePerSecond float64
	RateBurst     int
	// MaxWait bounds ?wait=. Default [MaxWaitDefault].
	MaxWait time.Duration
	// MaxJSONBody bounds JSON request bodies other than events. Default
	// [MaxJSONBodyDefault].
	MaxJSONBody int64
	// Heartbeat is the server-sent events keep-alive interval. Default
	// [HeartbeatDefault].
	Heartbeat time.Duration
	// Webhooks configures the webhook dispatcher.
	Webhooks WebhookConfig
	// MaxInFlight bounds the requests handled at once; more are shed
	// with 503. Default [MaxInFlightDefault].
	MaxInFlight int
	// MaxConns bounds the open connections of [Server.Listener].
	// Default [MaxConnsDefault].
	MaxConns int
	// ReadHeaderTimeout, ReadTimeout, WriteTimeout and IdleTimeout are
	// those of [Server.HTTPServer]. Defaults [ReadHeaderTimeoutDefault],
	// [ReadTimeoutDefault], [WriteTimeoutDefault], [IdleTimeoutDefault].
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	// StreamWriteTimeout bounds each write of an event stream. Default
	// [StreamWriteTimeoutDefault].
	StreamWriteTimeout time.Duration
	// TLS, when set, makes [Server.Listener] serve HTTPS with it.
	TLS *tls.Config
	// Logger receives one line per request (method, route, status,
	// organisation, duration: never a body, a path or a query) and the
	// errors of the ports. Default discards.
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// WithDefaults returns a copy of c with every unset field given its default.
func (c Config) WithDefaults() Config {
	if c.RatePerSecond == 0 {
		c.RatePerSecond = RatePerSecondDefault
	}
	if c.RateBurst == 0 {
		c.RateBurst = RateBurstDefault
	}
	if c.MaxWait == 0 {
		c.MaxWait = MaxWaitDefault
	}
	if c.MaxJSONBody == 0 {
		c.MaxJSONBody = MaxJSONBodyDefault
	}
	if c.Heartbeat == 0 {
		c.Heartbeat = HeartbeatDefault
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = MaxInFlightDefault
	}
	if c.MaxConns == 0 {
		c.MaxConns = MaxConnsDefault
	}
	if c.ReadHeaderTimeout == 0 {
		c.ReadHeaderTimeout = ReadHeaderTimeoutDefault
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = ReadTimeoutDefault
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = WriteTimeoutDefault
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = IdleTimeoutDefault
	}
	if c.StreamWriteTimeout == 0 {
		c.StreamWriteTimeout = StreamWriteTimeoutDefault
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	c.Webhooks = c.Webhooks.WithDefaults()
	return c
}

// Validate reports the first invalid field of c, naming it. Call it on
// the result of [Config.WithDefaults].
func (c Config) Validate() error {
	switch {
	case c.RatePerSecond <= 0:
		return fmt.Errorf("httpapi: Config.RatePerSecond %v must be positive", c.RatePerSecond)
	case c.RateBurst < 1:
		return fmt.Errorf("httpapi: Config.RateBurst %d must be at least 1", c.RateBurst)
	case c.MaxWait <= 0 || c.MaxWait > time.Minute:
		return fmt.Errorf("httpapi: Config.MaxWait %s must be positive and at most 1m", c.MaxWait)
	case c.MaxJSONBody < 1024:
		return fmt.Errorf("httpapi: Config.MaxJSONBody %d must be at least 1024", c.MaxJSONBody)
	case c.Heartbeat <= 0:
		return fmt.Errorf("httpapi: Config.Heartbeat %s must be positive", c.Heartbeat)
	case c.MaxInFlight < 1:
		return fmt.Errorf("httpapi: Config.MaxInFlight %d must be at least 1", c.MaxInFlight)
	case c.MaxConns < 1:
		return fmt.Errorf("httpapi: Config.MaxConns %d must be at least 1", c.MaxConns)
	case c.ReadHeaderTimeout <= 0 || c.ReadTimeout < c.ReadHeaderTimeout:
		return fmt.Errorf("httpapi: Config.ReadHeaderTimeout %s must be positive and at most ReadTimeout %s", c.ReadHeaderTimeout, c.ReadTimeout)
	case c.WriteTimeout <= c.MaxWait:
		return fmt.Errorf("httpapi: Config.WriteTimeout %s must exceed MaxWait %s", c.WriteTimeout, c.MaxWait)
	case c.IdleTimeout <= 0:
		return fmt.Errorf("httpapi: Config.IdleTimeout %s must be positive", c.IdleTimeout)
	case c.StreamWriteTimeout <= 0:
		return fmt.Errorf("httpapi: Config.StreamWriteTimeout %s must be positive", c.StreamWriteTimeout)
	}
	if err := c.Webhooks.Validate(); err != nil {
		return err
	}
	return nil
}

// Deps are the ports the API uses. Tokens is required; an endpoint whose
// port is nil answers 503 unavailable.
type Deps struct {
	// Tokens stores the API tokens (hashed). Required.
	Tokens Store
	// Webhooks stores webhook registrations, cursors and delivery logs.
	Webhooks Store
	// Commands receives POST /v1/events.
	Commands CommandSink
	// Outcomes answers ?wait=.
	Outcomes Outcomes
	// Timeline serves GET /v1/referrals/{id}.
	Timeline Timeline
	// Inbox serves GET /v1/inbox and feeds the webhooks.
	Inbox Inbox
	// Directory serves the directory endpoints and POST /v1/match.
	Directory Directory
	// Matcher serves POST /v1/match.
	Matcher Matcher
	// Stats feeds the DLQ and consumer lag gauges of /metrics.
	Stats StreamStats
	// Ready are the checks of /readyz, by name.
	Ready map[string]Check
	// Metrics are the collectors to update and serve; nil makes new ones.
	Metrics *Metrics
	// Reports serves GET /v1/reports/{name} to coordinators; nil answers 503.
	Reports Reports
	// Keys stores each organisation's passphrase-wrapped age identity
	// for /v1/keys/identity; nil answers 503.
	Keys Store
}

// Server is the HTTP API: an http.Handler. It is safe for concurrent use.
type Server struct {
	deps     Deps
	cfg      Config
	log      *slog.Logger
	tokens   *Tokens
	metrics  *Metrics
	limits   *ratelimit.Keyed
	mux      *http.ServeMux
	openapi  []byte
	dir      *dirCache
	webhooks *Dispatcher
	inFlight atomic.Int64
}

// New returns the API over deps. It returns an error naming an invalid
// Config field or a missing dependency, or the error of converting the
// OpenAPI document.
func New(deps Deps, cfg Config) (*Server, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Tokens == nil {
		return nil, errors.New("httpapi: Deps.Tokens is required")
	}
	if deps.Metrics == nil {
		deps.Metrics = NewMetrics()
	}
	doc, err := OpenAPIDocument()
	if err != nil {
		return nil, err
	}
	s := &Server{
		deps:    deps,
		cfg:     cfg,
		log:     cfg.Logger,
		tokens:  NewTokens(deps.Tokens),
		metrics: deps.Metrics,
		limits:  ratelimit.New(cfg.RatePerSecond, cfg.RateBurst, cfg.Now),
		mux:     http.NewServeMux(),
		openapi: doc,
		dir:     &dirCache{},
	}
	s.tokens.now = cfg.Now
	if deps.Webhooks != nil && deps.Inbox != nil {
		s.webhooks = newDispatcher(deps.Webhooks, deps.Inbox, cfg.Webhooks, s.metrics, cfg.Logger, cfg.Now)
	}
	s.routes()
	return s, nil
}

// Tokens returns the token manager the server authenticates with.
func (s *Server) Tokens() *Tokens { return s.tokens }

// Metrics returns the server's collectors.
func (s *Server) Metrics() *Metrics { return s.metrics }

// Dispatcher returns the webhook dispatcher, or nil when Deps lack the
// Webhooks store or the Inbox. Run it next to the server.
func (s *Server) Dispatcher() *Dispatcher { return s.webhooks }

// ServeHTTP serves the API. A request beyond Config.MaxInFlight is
// answered 503 overloaded at once.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sw := &statusWriter{ResponseWriter: w}
	if !neverShed(r.URL.Path) {
		if s.inFlight.Add(1) > int64(s.cfg.MaxInFlight) {
			s.inFlight.Add(-1)
			s.shed(w, r)
			return
		}
		sw.release = func() { s.inFlight.Add(-1) }
		defer sw.done()
	}
	start := s.cfg.Now()
	var org string
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v) // net/http's way to abort a response: not a bug
			}
			s.log.ErrorContext(r.Context(), "httpapi: panic", slog.String("route", r.Pattern), slog.Any("panic", v))
			if !sw.wrote {
				writeError(sw, errorf(http.StatusInternalServerError, CodeInternal, "internal error"))
			}
		}
		s.observe(r, sw, org, start)
	}()
	r = r.WithContext(context.WithValue(r.Context(), orgSlot{}, &org))
	s.mux.ServeHTTP(sw, r)
}

// neverShed reports whether path is one that admission control lets
// through: the probes and the metrics, which operators need most when
// the server is loaded.
func neverShed(path string) bool {
	return path == "/healthz" || path == "/readyz" || path == "/metrics"
}

// shedBody is the body of a shed request, encoded once.
var shedBody = []byte(`{"errors":[{"pointer":"","code":"` + CodeOverloaded + `","message":"the server is handling as many requests as it can; retry after the Retry-After seconds"}]}` + "\n")

// shed answers a request admission control refused: no body read, no
// token checked, nothing allocated beyond the answer.
func (s *Server) shed(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Retry-After", strconv.Itoa(ShedRetryAfter))
	w.WriteHeader(http.StatusServiceUnavailable)
	_, _ = w.Write(shedBody)
	s.metrics.HTTPShed.Inc()
	s.metrics.HTTPRequests.WithLabelValues(routeShed, methodLabel(r.Method), "503").Inc()
}

// Route labels of requests that matched no pattern.
const (
	routeUnmatched = "unmatched"
	routeShed      = "shed"
)

// methodLabel returns the method as a metric label: one of the standard
// methods, or "other", so that a client cannot make up label values.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "other"
}

// InFlight returns the number of requests being handled (event streams
// once started excluded).
func (s *Server) InFlight() int { return int(s.inFlight.Load()) }

// HTTPServer returns an *http.Server for handler (the Server itself, or a
// mux in front of it) with the timeouts of Config. Serve it on
// [Server.Listener].
func (s *Server) HTTPServer(handler http.Handler) *http.Server {
	return &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		WriteTimeout:      s.cfg.WriteTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
}

// MaxHeaderBytes bounds the request headers [Server.HTTPServer] reads.
const MaxHeaderBytes = 256 << 10

// Listener returns ln holding at most Config.MaxConns connections open
// at once, and serving TLS when Config.TLS is set.
func (s *Server) Listener(ln net.Listener) net.Listener {
	ln = LimitListener(ln, s.cfg.MaxConns)
	if s.cfg.TLS != nil {
		ln = tls.NewListener(ln, s.cfg.TLS)
	}
	return ln
}

// orgSlot is the context key of the *string in which the auth layer
// stores the caller's organisation for the request log.
type orgSlot struct{}

// observe logs the request and counts it.
func (s *Server) observe(r *http.Request, sw *statusWriter, org string, start time.Time) {
	status := sw.status
	if status == 0 {
		status = http.StatusOK
	}
	route := r.Pattern
	if route == "" {
		route = routeUnmatched
	}
	method := methodLabel(r.Method)
	d := s.cfg.Now().Sub(start)
	s.metrics.HTTPRequests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	if !sw.streamed {
		s.metrics.HTTPDuration.WithLabelValues(route).Observe(d.Seconds())
	}
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelError
	}
	s.log.LogAttrs(r.Context(), level, "http",
		slog.String("method", method), slog.String("route", route), slog.Int("status", status),
		slog.String("org", org), slog.Duration("duration", d))
}

// statusWriter records the status of a response. Unwrap lets
// http.ResponseController reach the connection (flush, deadlines).
type statusWriter struct {
	http.ResponseWriter
	status   int
	wrote    bool
	streamed bool
	// release gives back the request's admission slot; nil once done.
	release func()
}

// done gives back the admission slot, once.
func (w *statusWriter) done() {
	if w.release != nil {
		w.release()
		w.release = nil
	}
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.status, w.wrote = http.StatusOK, true
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// access says who may call an endpoint.
type access int

const (
	// public endpoints need no token and are rate limited by address.
	public access = iota
	// unlimited endpoints need no token and are not rate limited
	// (health, readiness, metrics).
	unlimited
	// authenticated endpoints need a token of one of the listed roles.
	authenticated
)

// handlerFunc is an endpoint: it returns an *Error to answer with, or
// another error, answered with 503 and logged.
type handlerFunc func(w http.ResponseWriter, r *http.Request, who Token) error

// endpoint is one method of a route.
type endpoint struct {
	access access
	roles  []Role
	h      handlerFunc
}

// route registers the endpoints of a path pattern; other methods get 405.
func (s *Server) route(pattern string, eps map[string]endpoint) {
	allow := make([]string, 0, len(eps))
	for m := range eps {
		allow = append(allow, m)
	}
	if _, ok := eps[http.MethodGet]; ok {
		allow = append(allow, http.MethodHead)
	}
	allowed := strings.Join(sortedStrings(allow), ", ")
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		method := r.Method
		if method == http.MethodHead {
			method = http.MethodGet
		}
		ep, ok := eps[method]
		if !ok {
			w.Header().Set("Allow", allowed)
			writeError(w, errorf(http.StatusMethodNotAllowed, CodeMethodNotAllowed, "%s is not allowed here; use %s", r.Method, allowed))
			return
		}
		s.serve(w, r, ep)
	})
}

// serve authenticates, rate-limits and runs one endpoint.
func (s *Server) serve(w http.ResponseWriter, r *http.Request, ep endpoint) {
	var who Token
	switch ep.access {
	case public:
		if e := s.limit("ip:" + ratelimit.ClientIP(r)); e != nil {
			writeError(w, e)
			return
		}
	case authenticated:
		var e *Error
		if who, e = s.authenticate(r); e != nil {
			writeError(w, e)
			return
		}
		if slot, ok := r.Context().Value(orgSlot{}).(*string); ok {
			*slot = who.Org
		}
		if e := s.limit("tok:" + who.ID); e != nil {
			writeError(w, e)
			return
		}
		if len(ep.roles) > 0 && !containsRole(ep.roles, who.Role) {
			writeError(w, errorf(http.StatusForbidden, CodeForbidden, "a %s token may not do this; it needs the role %s", who.Role, joinRoles(ep.roles)))
			return
		}
	}
	err := ep.h(w, r, who)
	if err == nil {
		return
	}
	var e *Error
	if !errors.As(err, &e) {
		s.log.WarnContext(r.Context(), "httpapi: backing service failed", slog.String("route", r.Pattern), slog.Any("error", err))
		e = &Error{Status: http.StatusServiceUnavailable, RetryAfter: 1,
			Problems: []Problem{{Code: CodeUnavailable, Message: "a backing service is unavailable; try again shortly"}}}
	}
	if sw, ok := w.(*statusWriter); ok && sw.wrote {
		return // a stream already started; nothing more can be said
	}
	writeError(w, e)
}

// authenticate returns the caller's token record, or a 401 (or 503 when
// the token store fails).
func (s *Server) authenticate(r *http.Request) (Token, *Error) {
	h := r.Header.Get("Authorization")
	scheme, secret, ok := strings.Cut(h, " ")
	if h == "" {
		if e := s.limit("ip:" + ratelimit.ClientIP(r)); e != nil {
			return Token{}, e
		}
		return Token{}, errorf(http.StatusUnauthorized, CodeUnauthorized, "this endpoint needs a token: Authorization: Bearer inv_...")
	}
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return Token{}, errorf(http.StatusUnauthorized, CodeUnauthorized, "the Authorization header must be: Bearer <token>")
	}
	secret = strings.TrimSpace(secret)
	if h, ok := tokenHash(secret); ok {
		if _, found, live := s.tokens.cached(h); live && !found {
			// A token the cache lacks costs a store read: it counts
			// against the client's address first.
			if e := s.limit("ip:" + ratelimit.ClientIP(r)); e != nil {
				return Token{}, e
			}
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), StoreTimeout)
	defer cancel()
	tok, err := s.tokens.Authenticate(ctx, secret)
	switch {
	case err == nil:
		return tok, nil
	case errors.Is(err, ErrTokenExpired):
		return Token{}, errorf(http.StatusUnauthorized, CodeTokenExpired, "the token has expired; ask for a new one")
	case errors.Is(err, ErrBadToken):
		// Failed attempts count against the client's address, so that
		// guessing is as slow as the rate limit.
		if e := s.limit("ip:" + ratelimit.ClientIP(r)); e != nil {
			return Token{}, e
		}
		return Token{}, errorf(http.StatusUnauthorized, CodeUnauthorized, "the token is not valid (malformed, unknown or revoked)")
	}
	s.log.WarnContext(r.Context(), "httpapi: token store failed", slog.Any("error", err))
	return Token{}, &Error{Status: http.StatusServiceUnavailable, RetryAfter: 1,
		Problems: []Problem{{Code: CodeUnavailable, Message: "tokens cannot be checked right now; try again shortly"}}}
}

// limit takes a token from key's bucket, or returns the 429 to answer.
func (s *Server) limit(key string) *Error {
	ok, wait := s.limits.Allow(key)
	if ok {
		return nil
	}
	return &Error{Status: http.StatusTooManyRequests, RetryAfter: max(wait, 1),
		Problems: []Problem{{Code: CodeRateLimited, Message: fmt.Sprintf("too many requests; at most %g per second (bursts of %d)", s.cfg.RatePerSecond, s.cfg.RateBurst)}}}
}

func containsRole(roles []Role, r Role) bool {
	for _, x := range roles {
		if x == r {
			return true
		}
	}
	return false
}

func joinRoles(roles []Role) string {
	s := make([]string, len(roles))
	for i, r := range roles {
		s[i] = string(r)
	}
	return strings.Join(s, " or ")
}

// unavailable is the error of an endpoint whose port is not configured.
func unavailable(what string) *Error {
	return errorf(http.StatusServiceUnavailable, CodeUnavailable, "%s is not available on this server", what)
}

// Paths are the path patterns the API serves, for a server that mounts
// it beside other handlers (the web pages take the rest).
var Paths = []string{"/v1/", "/schemas/", "/healthz", "/readyz", "/metrics"}

// routes registers every endpoint. The access matrix is in the package
// documentation.
func (s *Server) routes() {
	org := []Role{RoleOrganisation}
	get := func(a access, roles []Role, h handlerFunc) map[string]endpoint {
		return map[string]endpoint{http.MethodGet: {access: a, roles: roles, h: h}}
	}
	s.route("/healthz", get(unlimited, nil, s.healthz))
	s.route("/readyz", get(unlimited, nil, s.readyz))
	s.route("/metrics", get(unlimited, nil, s.serveMetrics))
	s.route("/schemas/{file...}", get(public, nil, s.schemaFile))
	s.route("/v1/openapi.json", get(public, nil, s.openAPI))

	s.route("/v1/events", map[string]endpoint{http.MethodPost: {access: authenticated, roles: org, h: s.postEvents}})
	s.route("/v1/referrals/{id}", get(authenticated, org, s.getReferral))
	s.route("/v1/inbox", get(authenticated, org, s.getInbox))
	s.route("/v1/webhooks", map[string]endpoint{
		http.MethodGet:  {access: authenticated, roles: org, h: s.listWebhooks},
		http.MethodPost: {access: authenticated, roles: org, h: s.createWebhook},
	})
	s.route("/v1/webhooks/{id}", map[string]endpoint{
		http.MethodGet:    {access: authenticated, roles: org, h: s.getWebhook},
		http.MethodDelete: {access: authenticated, roles: org, h: s.deleteWebhook},
	})
	s.route("/v1/webhooks/{id}/deliveries", get(authenticated, org, s.webhookDeliveries))
	s.route("/v1/match", map[string]endpoint{http.MethodPost: {access: authenticated, roles: []Role{RoleOrganisation, RoleCoordinator}, h: s.postMatch}})

	s.route("/v1/keys/identity", map[string]endpoint{
		http.MethodGet: {access: authenticated, roles: org, h: s.getIdentity},
		http.MethodPut: {access: authenticated, roles: org, h: s.putIdentity},
	})

	s.route("/v1/reports/{name...}", get(authenticated, []Role{RoleCoordinator}, s.getReport))

	// The directory is open data: no token, rate limited by address.
	s.route("/v1/services", get(public, nil, s.listServices))
	s.route("/v1/services/{id}", get(public, nil, s.getService))
	s.route("/v1/organizations", get(public, nil, s.listOrganizations))
	s.route("/v1/organizations/{id}", get(public, nil, s.getOrganization))
	s.route("/v1/directory/hsds.json", get(public, nil, s.exportDirectory))

	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, errorf(http.StatusNotFound, CodeNotFound, "no such endpoint; the API is described at /v1/openapi.json"))
	})
}

// healthz answers 200 while the process serves HTTP.
func (s *Server) healthz(w http.ResponseWriter, _ *http.Request, _ Token) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "alive"})
	return nil
}

// readyz runs the readiness checks: 200 when all pass, else 503 naming
// the failing ones.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request, _ Token) error {
	ctx, cancel := context.WithTimeout(r.Context(), ReadyTimeout)
	defer cancel()
	checks := map[string]string{}
	ready := true
	for _, name := range sortedKeys(s.deps.Ready) {
		if err := s.deps.Ready[name](ctx); err != nil {
			checks[name] = err.Error()
			ready = false
		} else {
			checks[name] = "ok"
		}
	}
	if !ready {
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "not_ready", "checks": checks})
		return nil
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "checks": checks})
	return nil
}

// serveMetrics serves the Prometheus text format.
func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request, _ Token) error {
	s.metrics.handler(s.deps.Stats, func(ctx context.Context, msg string, err error) {
		s.log.WarnContext(ctx, msg, slog.Any("error", err))
	}).ServeHTTP(w, r)
	return nil
}
