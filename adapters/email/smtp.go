package email

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"sync"

	mail "github.com/wneessen/go-mail"
	"github.com/wneessen/go-mail/smtp"
)

// TLS modes of an SMTP URL.
const (
	// TLSStartTLS: smtp:// upgrades the connection with STARTTLS and
	// refuses a server without it (default port 587).
	TLSStartTLS = "starttls"
	// TLSImplicit: smtps:// speaks TLS from the start (default port 465).
	TLSImplicit = "implicit"
	// TLSOpportunistic: smtp://...?tls=opportunistic uses STARTTLS when
	// offered (local relays).
	TLSOpportunistic = "opportunistic"
	// TLSNone: smtp://...?tls=none never encrypts (tests, a relay on the
	// same host).
	TLSNone = "none"
)

// ErrSMTPURL is the class of the errors of [ParseSMTPURL].
var ErrSMTPURL = errors.New("invalid SMTP URL")

// SMTPConfig is a parsed SMTP URL: where and how to send.
type SMTPConfig struct {
	Host     string
	Port     int
	TLS      string
	Username string
	Password string
	// RootCAs verifies the server's certificate; nil means the system's
	// roots. It is never read from the URL (tests set it).
	RootCAs *x509.CertPool
}

// String returns the URL without the password.
func (c SMTPConfig) String() string {
	scheme := "smtp"
	if c.TLS == TLSImplicit {
		scheme = "smtps"
	}
	u := url.URL{Scheme: scheme, Host: net.JoinHostPort(c.Host, strconv.Itoa(c.Port))}
	if c.Username != "" {
		u.User = url.User(c.Username)
	}
	if c.TLS == TLSOpportunistic || c.TLS == TLSNone {
		u.RawQuery = "tls=" + c.TLS
	}
	return u.String()
}

// ParseSMTPURL parses smtp://[user[:password]@]host[:port][?tls=starttls|opportunistic|none]
// (STARTTLS, port 587 by default) or smtps://[user[:password]@]host[:port]
// (implicit TLS, port 465 by default). Errors wrap [ErrSMTPURL] and never
// quote the password.
func ParseSMTPURL(raw string) (SMTPConfig, error) {
	bad := func(format string, args ...any) (SMTPConfig, error) {
		return SMTPConfig{}, fmt.Errorf("%w: %s", ErrSMTPURL, fmt.Sprintf(format, args...))
	}
	u, err := url.Parse(raw)
	if err != nil {
		return bad("not a URL (want smtp://user:pass@host:port or smtps://...)")
	}
	var c SMTPConfig
	switch u.Scheme {
	case "smtp":
		c.TLS, c.Port = TLSStartTLS, 587
	case "smtps":
		c.TLS, c.Port = TLSImplicit, 465
	default:
		return bad("scheme %q: want smtp (STARTTLS) or smtps (implicit TLS)", u.Scheme)
	}
	c.Host = u.Hostname()
	if c.Host == "" || u.Opaque != "" {
		return bad("no host (want %s://host:port)", u.Scheme)
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return bad("port %q is not from 1 to 65535", p)
		}
		c.Port = n
	}
	if u.Path != "" && u.Path != "/" {
		return bad("unexpected path %q", u.Path)
	}
	if u.User != nil {
		c.Username = u.User.Username()
		c.Password, _ = u.User.Password()
	}
	q := u.Query()
	for k := range q {
		if k != "tls" {
			return bad("unknown parameter %q (only tls)", k)
		}
	}
	if t := q.Get("tls"); t != "" {
		switch {
		case u.Scheme == "smtps":
			return bad("smtps:// is implicit TLS: tls=%s does not apply", t)
		case t == TLSStartTLS || t == TLSOpportunistic || t == TLSNone:
			c.TLS = t
		default:
			return bad("tls=%q: want starttls, opportunistic or none", t)
		}
	}
	return c, nil
}

// SendError is a failed send, classified.
type SendError struct {
	// Temporary is true for a failure worth retrying: a 4xx reply, or no
	// server to talk to; false for a 5xx reply (the server refused the
	// message for good).
	Temporary bool
	// Code is the SMTP reply code, 0 when none came.
	Code int
	err  error
}

func (e *SendError) Error() string {
	kind := "permanent"
	if e.Temporary {
		kind = "temporary"
	}
	if e.Code != 0 {
		return fmt.Sprintf("%s SMTP failure (%d)", kind, e.Code)
	}
	return fmt.Sprintf("%s SMTP failure: %v", kind, e.err)
}

func (e *SendError) Unwrap() error { return e.err }

// Mailer sends messages over one SMTP connection, kept open between
// messages and opened again after a failure. It is safe for concurrent
// use; sends are serialised.
type Mailer struct {
	cfg    SMTPConfig
	client *mail.Client

	mu   sync.Mutex
	conn *smtp.Client
}

// NewMailer returns a mailer for cfg. It does not connect.
func NewMailer(cfg SMTPConfig) (*Mailer, error) {
	opts := []mail.Option{mail.WithPort(cfg.Port), mail.WithTimeout(SendTimeoutDefault),
		mail.WithTLSConfig(&tls.Config{ServerName: cfg.Host, RootCAs: cfg.RootCAs, MinVersion: tls.VersionTLS12})}
	switch cfg.TLS {
	case TLSImplicit:
		opts = append(opts, mail.WithSSL())
	case TLSStartTLS:
		opts = append(opts, mail.WithTLSPortPolicy(mail.TLSMandatory))
	case TLSOpportunistic:
		opts = append(opts, mail.WithTLSPortPolicy(mail.TLSOpportunistic))
	case TLSNone:
		opts = append(opts, mail.WithTLSPortPolicy(mail.NoTLS))
	default:
		return nil, fmt.Errorf("%w: TLS mode %q", ErrSMTPURL, cfg.TLS)
	}
	// WithTLSPortPolicy picks a default port; set ours again after it.
	opts = append(opts, mail.WithPort(cfg.Port))
	if cfg.Username != "" {
		opts = append(opts, mail.WithSMTPAuth(mail.SMTPAuthAutoDiscover),
			mail.WithUsername(cfg.Username), mail.WithPassword(cfg.Password))
	}
	c, err := mail.NewClient(cfg.Host, opts...)
	if err != nil {
		return nil, fmt.Errorf("email: SMTP client for %s: %w", cfg, err)
	}
	return &Mailer{cfg: cfg, client: c}, nil
}

// Check connects, says hello (with STARTTLS and authentication as
// configured) and quits: it tells at start whether the server is there.
func (m *Mailer) Check(ctx context.Context) error {
	conn, err := m.client.DialToSMTPClientWithContext(ctx)
	if err != nil {
		return fmt.Errorf("SMTP server %s: %w", m.cfg, err)
	}
	return m.client.CloseWithSMTPClient(conn)
}

// Send sends msg and returns once the server accepted it. Failures are
// *SendError.
func (m *Mailer) Send(ctx context.Context, msg *mail.Msg) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.conn == nil {
		conn, err := m.client.DialToSMTPClientWithContext(ctx)
		if err != nil {
			return &SendError{Temporary: true, err: err}
		}
		m.conn = conn
	}
	if err := m.client.SendWithSMTPClient(m.conn, msg); err != nil {
		_ = m.client.CloseWithSMTPClient(m.conn) // the connection may be broken: start afresh
		m.conn = nil
		return classify(err)
	}
	return nil
}

// Close ends the connection, if any.
func (m *Mailer) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.conn == nil {
		return nil
	}
	err := m.client.CloseWithSMTPClient(m.conn)
	m.conn = nil
	return err
}

// classify turns go-mail's error into a *SendError.
func classify(err error) *SendError {
	var se *mail.SendError
	if errors.As(err, &se) {
		code := se.ErrorCode()
		return &SendError{Temporary: se.IsTemp() || code < 500, Code: code, err: err}
	}
	return &SendError{Temporary: true, err: err}
}

// randomName returns 12 random hex digits.
func randomName() string {
	var b [6]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}
