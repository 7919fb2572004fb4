package console

import (
	"bytes"
	"context"
	"crypto/rand"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/invictus-network/invictus/adapters/web"
	"github.com/invictus-network/invictus/directory"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/internal/ratelimit"
	"github.com/invictus-network/invictus/routing"
	"github.com/invictus-network/invictus/schemas"
)

// Prefix is the path under which the console is served.
const Prefix = "/console/"

// Defaults and limits of [Config].
const (
	// SessionTTLDefault is how long a session lasts after sign-in.
	SessionTTLDefault = 8 * time.Hour
	// SessionIdleDefault ends a session nobody used for this long.
	SessionIdleDefault = 30 * time.Minute
	// LockAfterDefault is the number of wrong passwords or codes in a
	// row that locks an account.
	LockAfterDefault = 5
	// LockForDefault is how long a locked account stays locked.
	LockForDefault = 15 * time.Minute
	// SignInRateDefault is the sign-in attempts one address may make per
	// minute, beyond a burst of as many.
	SignInRateDefault = 10
	// InviteTTLDefault is how long an invitation link works.
	InviteTTLDefault = 7 * 24 * time.Hour
	// CommandWaitDefault is how long a page waits for the routing
	// service's decision on a command before saying it is pending.
	CommandWaitDefault = 5 * time.Second
	// MaxFormBytes bounds a posted form.
	MaxFormBytes = 64 << 10
	// StoreTimeout bounds one call to the store, the inbox or the
	// timeline.
	StoreTimeout = 5 * time.Second
	// ListMax bounds the referrals listed on the dashboard.
	ListMax = 100
)

// Config configures a [Server]. The zero value of every field means its
// default.
type Config struct {
	// SecureCookies marks cookies Secure even on plain HTTP (behind a
	// TLS-terminating proxy). Over TLS they always are.
	SecureCookies bool
	// SessionTTL and SessionIdle bound a session. Defaults
	// [SessionTTLDefault] and [SessionIdleDefault].
	SessionTTL, SessionIdle time.Duration
	// LockAfter and LockFor are the lock-out rule. Defaults
	// [LockAfterDefault] and [LockForDefault].
	LockAfter int
	LockFor   time.Duration
	// SignInRate is the sign-in attempts per minute of one address.
	// Default [SignInRateDefault].
	SignInRate int
	// CommandWait is how long to wait for the routing service's answer.
	// Default [CommandWaitDefault].
	CommandWait time.Duration
	// ExitURL is where the quick-exit button leads. Default
	// [web.ExitURLDefault].
	ExitURL string
	// Logger receives the audit lines (pseudonymous staff ids, never a
	// name) and errors. Default discards.
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// WithDefaults returns a copy of c with every unset field given its default.
func (c Config) WithDefaults() Config {
	if c.SessionTTL == 0 {
		c.SessionTTL = SessionTTLDefault
	}
	if c.SessionIdle == 0 {
		c.SessionIdle = SessionIdleDefault
	}
	if c.LockAfter == 0 {
		c.LockAfter = LockAfterDefault
	}
	if c.LockFor == 0 {
		c.LockFor = LockForDefault
	}
	if c.SignInRate == 0 {
		c.SignInRate = SignInRateDefault
	}
	if c.CommandWait == 0 {
		c.CommandWait = CommandWaitDefault
	}
	if c.ExitURL == "" {
		c.ExitURL = web.ExitURLDefault
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate reports the first invalid field of c, naming it.
func (c Config) Validate() error {
	switch {
	case c.SessionTTL < time.Minute:
		return fmt.Errorf("console: Config.SessionTTL %s must be at least a minute", c.SessionTTL)
	case c.SessionIdle < time.Minute || c.SessionIdle > c.SessionTTL:
		return fmt.Errorf("console: Config.SessionIdle %s must be from a minute to SessionTTL", c.SessionIdle)
	case c.LockAfter < 1:
		return fmt.Errorf("console: Config.LockAfter %d must be positive", c.LockAfter)
	case c.LockFor < time.Second:
		return fmt.Errorf("console: Config.LockFor %s must be at least a second", c.LockFor)
	case c.SignInRate < 1:
		return fmt.Errorf("console: Config.SignInRate %d must be positive", c.SignInRate)
	case c.CommandWait < 0:
		return fmt.Errorf("console: Config.CommandWait %s must not be negative", c.CommandWait)
	}
	return nil
}

// The ports: the same as the HTTP API's (adapters/natsjs implements them),
// declared here with only the methods the console calls.

// Store is a key-value bucket: accounts, sessions and the audit log each
// have one. Keys are dot-separated tokens of [-_=a-zA-Z0-9]; errors wrap
// fs.ErrNotExist (Get) and fs.ErrExist (Create).
type Store interface {
	Get(ctx context.Context, key string) ([]byte, error)
	Put(ctx context.Context, key string, value []byte) error
	Create(ctx context.Context, key string, value []byte) error
	Delete(ctx context.Context, key string) error
	Keys(ctx context.Context, prefix string) ([]string, error)
}

// CommandSink stores a command on the INBOUND stream, as the API does.
type CommandSink interface {
	Submit(ctx context.Context, org string, msg events.Message) error
}

// Outcomes tells what the routing service decided about a command.
type Outcomes interface {
	Wait(ctx context.Context, org, referralID, commandID string) (accepted bool, rejection *events.CommandRejected, err error)
}

// Timeline reads a referral's event log.
type Timeline interface {
	Events(ctx context.Context, referralID string) ([]*events.Envelope, error)
}

// Inbox reads an organisation's deliveries.
type Inbox interface {
	Read(ctx context.Context, org string, after uint64, limit int, fn func(seq uint64, m events.Message) error) error
	Follow(ctx context.Context, org string, after uint64, fn func(seq uint64, m events.Message) error) error
	Last(ctx context.Context, org string) (uint64, error)
}

// Directory gives the current directory snapshot.
type Directory interface {
	Snapshot() *directory.Index
}

// Matcher plans a profile; *routing.Matcher is one.
type Matcher interface {
	Match(snap *directory.Index, p events.Profile, opts ...routing.MatchOption) (*routing.Plan, error)
}

// Deps are the console's ports; all are required.
type Deps struct {
	Accounts  Store
	Sessions  Store
	Audit     Store
	Commands  CommandSink
	Outcomes  Outcomes
	Timeline  Timeline
	Inbox     Inbox
	Directory Directory
	Matcher   Matcher
	// Keys is the bucket of the organisations' passphrase-wrapped age
	// identities, the one the HTTP API's /v1/keys/identity keeps. Optional:
	// without it caseworkers cannot fetch their organisation's key here.
	Keys Store
	// Reports is the coordinators' read model; optional (nil: the
	// report pages say it is unavailable).
	Reports Reports
	// Approvals writes directory administrators' decisions about new
	// organisations into the directory; optional (nil: the approvals page
	// lists them and says that this node cannot decide).
	Approvals Approvals
	// Failures lists the e-mails given up per organisation, for its
	// administrator's page; optional (nil: the page says the e-mail
	// channel does not run here).
	Failures Failures
	// Notices reads the delivery.failed events a referrer holds, for its
	// timeline; optional.
	Notices Notices
}

// Server serves the console: an http.Handler under [Prefix].
type Server struct {
	deps    Deps
	cfg     Config
	log     *slog.Logger
	cat     *web.Catalog
	tax     *schemas.Taxonomy
	tmpl    map[string]map[string]*template.Template // lang -> view
	static  map[string]*staticFile
	cities  []directory.City
	mux     *http.ServeMux
	accts   *Accounts
	limiter *ratelimit.Keyed
	exitURL template.URL
}

// New returns the console over deps. It returns an error naming a
// missing dependency or an invalid Config field, or the error of parsing
// an embedded file.
func New(deps Deps, cfg Config) (*Server, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	for name, v := range map[string]any{
		"Accounts": deps.Accounts, "Sessions": deps.Sessions, "Audit": deps.Audit, "Commands": deps.Commands,
		"Outcomes": deps.Outcomes, "Timeline": deps.Timeline, "Inbox": deps.Inbox, "Directory": deps.Directory, "Matcher": deps.Matcher,
	} {
		if v == nil {
			return nil, fmt.Errorf("console: Deps.%s is required", name)
		}
	}
	s := &Server{deps: deps, cfg: cfg, log: cfg.Logger, mux: http.NewServeMux(), exitURL: template.URL(cfg.ExitURL)}
	var err error
	if s.cat, err = web.LoadCatalogFS(translationFiles, "translations"); err != nil {
		return nil, err
	}
	if s.tax, err = schemas.LoadTaxonomy(); err != nil {
		return nil, err
	}
	if s.static, err = loadStatic(); err != nil {
		return nil, err
	}
	s.cities = directory.Cities()
	s.accts = NewAccounts(deps.Accounts, AccountsConfig{LockAfter: cfg.LockAfter, LockFor: cfg.LockFor, InviteTTL: InviteTTLDefault, Now: cfg.Now})
	s.limiter = newLimiter(cfg.SignInRate)
	if err := s.parseTemplates(); err != nil {
		return nil, err
	}
	s.routes()
	return s, nil
}

// Accounts returns the console's accounts.
func (s *Server) Accounts() *Accounts { return s.accts }

// ServeHTTP serves the console with the security headers on every
// response.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	web.SetSecurityHeaders(w.Header(), "geolocation=()")
	w.Header().Set("Cache-Control", "no-store")
	s.mux.ServeHTTP(w, r)
}

// CSP is the Content-Security-Policy of a console page: the public pages'
// policy, plus connections to this node for the live updates.
func CSP(nonce string) string {
	return strings.Replace(web.CSP(nonce), "img-src 'self';", "img-src 'self'; connect-src 'self';", 1)
}

//go:embed templates
var templateFiles embed.FS

//go:embed translations/*.json
var translationFiles embed.FS

//go:embed static
var staticFiles embed.FS

// parseTemplates parses every view with the common templates, once per
// language so that t is bound to the language.
func (s *Server) parseTemplates() error {
	views, err := fs.Glob(templateFiles, "templates/views/*.html")
	if err != nil {
		return err
	}
	s.tmpl = map[string]map[string]*template.Template{}
	for _, lang := range web.Languages {
		common, err := template.New("common").Funcs(s.funcs(lang)).ParseFS(templateFiles, "templates/common/*.html")
		if err != nil {
			return fmt.Errorf("console: templates/common: %w", err)
		}
		s.tmpl[lang] = map[string]*template.Template{}
		for _, f := range views {
			t, err := template.Must(common.Clone()).ParseFS(templateFiles, f)
			if err != nil {
				return fmt.Errorf("console: %s: %w", f, err)
			}
			s.tmpl[lang][strings.TrimSuffix(path.Base(f), ".html")] = t
		}
	}
	return nil
}

// render draws a view in the layout into a buffer.
func (s *Server) render(lang, view string, data any) ([]byte, error) {
	t, ok := s.tmpl[lang][view]
	if !ok {
		return nil, fmt.Errorf("console: no view %q", view)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", data); err != nil {
		return nil, fmt.Errorf("console: render %s/%s: %w", lang, view, err)
	}
	return buf.Bytes(), nil
}

// newToken returns n random bytes, base64url: nonces, session ids, CSRF
// tokens and invitations.
func newToken(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// errNotFound is a referral the person's organisation is no party to.
var errNotFound = errors.New("console: not found")
