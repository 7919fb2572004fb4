package httpapi

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/invictus-network/invictus/events"
)

// Defaults and limits of [WebhookConfig].
const (
	// WebhooksPerOrgDefault is how many webhooks one organisation may register.
	WebhooksPerOrgDefault = 5
	// WebhookAttemptsDefault bounds the attempts to deliver one message.
	WebhookAttemptsDefault = 8
	// WebhookBackoffDefault is the delay before the first retry; it
	// doubles with each attempt, up to WebhookBackoffMaxDefault.
	WebhookBackoffDefault    = 2 * time.Second
	WebhookBackoffMaxDefault = 10 * time.Minute
	// WebhookTimeoutDefault bounds one attempt.
	WebhookTimeoutDefault = 10 * time.Second
	// WebhookLogSizeDefault is how many attempts the delivery log of one
	// webhook keeps.
	WebhookLogSizeDefault = 100
	// WebhookResyncDefault is how often the dispatcher reads the
	// registrations again (to see those made on other instances).
	WebhookResyncDefault = 30 * time.Second
	// WebhookURLMax bounds the length of a webhook URL.
	WebhookURLMax = 2048
	// webhookDescriptionMax bounds a webhook's description.
	webhookDescriptionMax = 200
)

// WebhookConfig configures the webhooks. The zero value of every field
// means its default.
type WebhookConfig struct {
	// AllowPrivate lets webhooks reach addresses that are not public
	// (loopback, private networks, link-local, metadata...; see
	// [IsPublic]) and accepts http:// URLs whose host is loopback. For
	// local development only: otherwise a webhook URL must be https and
	// resolve to public addresses only, checked at registration and again
	// at every connection, after DNS.
	AllowPrivate bool
	// Resolver looks up webhook hosts. Default net.DefaultResolver;
	// tests give their own.
	Resolver Resolver
	// TLS configures the connections to webhooks (trusted roots...).
	// Default: the system's roots.
	TLS *tls.Config
	// MaxPerOrg bounds the webhooks of one organisation. Default
	// [WebhooksPerOrgDefault].
	MaxPerOrg int
	// Attempts bounds the attempts per message. Default
	// [WebhookAttemptsDefault].
	Attempts int
	// Backoff and BackoffMax set the exponential delay between attempts.
	// Defaults [WebhookBackoffDefault], [WebhookBackoffMaxDefault].
	Backoff    time.Duration
	BackoffMax time.Duration
	// Timeout bounds one attempt. Default [WebhookTimeoutDefault].
	Timeout time.Duration
	// LogSize is how many attempts each delivery log keeps. Default
	// [WebhookLogSizeDefault].
	LogSize int
	// Resync is how often registrations are read again. Default
	// [WebhookResyncDefault].
	Resync time.Duration
}

// WithDefaults returns a copy of c with every unset field given its default.
func (c WebhookConfig) WithDefaults() WebhookConfig {
	if c.MaxPerOrg == 0 {
		c.MaxPerOrg = WebhooksPerOrgDefault
	}
	if c.Attempts == 0 {
		c.Attempts = WebhookAttemptsDefault
	}
	if c.Backoff == 0 {
		c.Backoff = WebhookBackoffDefault
	}
	if c.BackoffMax == 0 {
		c.BackoffMax = WebhookBackoffMaxDefault
	}
	if c.Timeout == 0 {
		c.Timeout = WebhookTimeoutDefault
	}
	if c.LogSize == 0 {
		c.LogSize = WebhookLogSizeDefault
	}
	if c.Resync == 0 {
		c.Resync = WebhookResyncDefault
	}
	if c.Resolver == nil {
		c.Resolver = net.DefaultResolver
	}
	return c
}

// Validate reports the first invalid field of c, naming it.
func (c WebhookConfig) Validate() error {
	switch {
	case c.MaxPerOrg < 1:
		return fmt.Errorf("httpapi: WebhookConfig.MaxPerOrg %d must be at least 1", c.MaxPerOrg)
	case c.Attempts < 1 || c.Attempts > 100:
		return fmt.Errorf("httpapi: WebhookConfig.Attempts %d must be from 1 to 100", c.Attempts)
	case c.Backoff <= 0 || c.BackoffMax < c.Backoff:
		return fmt.Errorf("httpapi: WebhookConfig.Backoff %s must be positive and at most BackoffMax %s", c.Backoff, c.BackoffMax)
	case c.Timeout <= 0:
		return fmt.Errorf("httpapi: WebhookConfig.Timeout %s must be positive", c.Timeout)
	case c.LogSize < 1 || c.LogSize > 1000:
		return fmt.Errorf("httpapi: WebhookConfig.LogSize %d must be from 1 to 1000", c.LogSize)
	case c.Resync <= 0:
		return fmt.Errorf("httpapi: WebhookConfig.Resync %s must be positive", c.Resync)
	}
	return nil
}

// Webhook is a registered webhook as the API shows it.
type Webhook struct {
	// ID is "wh_" and 24 base32 characters.
	ID string `json:"id"`
	// Org is the organisation whose deliveries it receives.
	Org string `json:"organisation"`
	// URL receives a POST per delivery.
	URL string `json:"url"`
	// Description is for people.
	Description string `json:"description,omitempty"`
	// Secret signs the requests; it is shown only in the answer to the
	// registration.
	Secret string `json:"secret,omitempty"`
	// CreatedAt is when it was registered.
	CreatedAt time.Time `json:"created_at"`
	// StartAfter is the delivery sequence it was registered at: it
	// receives what arrives after.
	StartAfter uint64 `json:"start_after"`
}

// WebhookAttempt is one entry of a webhook's delivery log.
type WebhookAttempt struct {
	// MessageID is the webhook-id header: the same on every attempt of
	// one message.
	MessageID string `json:"message_id"`
	// Seq is the delivery's sequence in the organisation's inbox.
	Seq       uint64 `json:"seq"`
	EventID   string `json:"event_id"`
	EventType string `json:"type"`
	Referral  string `json:"referral,omitempty"`
	// Attempt counts the attempts of the message, from 1.
	Attempt int       `json:"attempt"`
	At      time.Time `json:"at"`
	// StatusCode is the receiver's HTTP status, 0 when none came back.
	StatusCode int `json:"status_code,omitempty"`
	// Error says why the attempt failed (never the receiver's body).
	Error      string `json:"error,omitempty"`
	DurationMS int64  `json:"duration_ms"`
	// Result is delivered, failed (another attempt follows) or gave_up.
	Result string `json:"result"`
	// NextAttemptAt is when a failed attempt is retried.
	NextAttemptAt *time.Time `json:"next_attempt_at,omitempty"`
}

// Results of a [WebhookAttempt].
const (
	ResultDelivered = "delivered"
	ResultFailed    = "failed"
	ResultGaveUp    = "gave_up"
)

// Store keys of the webhooks.
const (
	hookKeyPrefix   = "hook."
	cursorKeyPrefix = "cursor."
	logKeyPrefix    = "log."
	webhookIDPrefix = "wh_"
)

func hookKey(org, id string) string { return hookKeyPrefix + org + "." + id }

// hookOfKey returns the organisation and id of a hook key.
func hookOfKey(key string) (org, id string, ok bool) {
	rest, found := strings.CutPrefix(key, hookKeyPrefix)
	if !found {
		return "", "", false
	}
	i := strings.LastIndexByte(rest, '.')
	if i < 0 {
		return "", "", false
	}
	org, id = rest[:i], rest[i+1:]
	return org, id, events.IsOrgID(org) && isWebhookID(id)
}

var webhookIDEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

func newWebhookID() (string, error) {
	var b [15]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("httpapi: webhook id: %w", err)
	}
	return webhookIDPrefix + strings.ToLower(webhookIDEncoding.EncodeToString(b[:])), nil
}

func isWebhookID(id string) bool {
	rest, ok := strings.CutPrefix(id, webhookIDPrefix)
	if !ok || len(rest) != 24 {
		return false
	}
	for i := range len(rest) {
		if c := rest[i]; !('a' <= c && c <= 'z' || '2' <= c && c <= '7') {
			return false
		}
	}
	return true
}

// webhookRequest is the body of POST /v1/webhooks.
type webhookRequest struct {
	URL         string `json:"url"`
	Description string `json:"description,omitempty"`
}

// checkWebhookURL reports what is wrong with a webhook URL: its form,
// then where it leads ([WebhookConfig.checkTarget]).
func (c WebhookConfig) checkWebhookURL(ctx context.Context, raw string) *Error {
	bad := func(format string, args ...any) *Error {
		return &Error{Status: http.StatusUnprocessableEntity, Problems: []Problem{{Pointer: "/url", Code: events.CodeFormat, Message: fmt.Sprintf(format, args...)}}}
	}
	if raw == "" {
		return &Error{Status: http.StatusUnprocessableEntity, Problems: []Problem{{Pointer: "/url", Code: events.CodeRequired, Message: "url is required"}}}
	}
	if len(raw) > WebhookURLMax {
		return &Error{Status: http.StatusUnprocessableEntity, Problems: []Problem{{Pointer: "/url", Code: events.CodeTooLong, Message: fmt.Sprintf("url allows at most %d characters", WebhookURLMax)}}}
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "":
		return bad("url must be an absolute https URL")
	case u.Scheme != "https" && u.Scheme != "http":
		return bad("url must use https")
	case u.User != nil:
		return bad("url must not hold a user name or password")
	case u.Fragment != "":
		return bad("url must not have a fragment")
	}
	return c.checkTarget(ctx, u.Scheme, u.Hostname())
}

// webhookStore returns the store, or 503 when webhooks are not configured.
func (s *Server) webhookStore() (Store, *Error) {
	if s.deps.Webhooks == nil || s.webhooks == nil {
		return nil, unavailable("webhooks")
	}
	return s.deps.Webhooks, nil
}

// loadWebhook returns org's webhook id, or 404.
func (s *Server) loadWebhook(ctx context.Context, st Store, org, id string) (Webhook, error) {
	notFound := errorf(http.StatusNotFound, CodeNotFound, "no webhook %q of your organisation", id)
	if !isWebhookID(id) || !events.IsOrgID(org) {
		return Webhook{}, notFound
	}
	b, err := st.Get(ctx, hookKey(org, id))
	if errors.Is(err, fs.ErrNotExist) {
		return Webhook{}, notFound
	}
	if err != nil {
		return Webhook{}, fmt.Errorf("httpapi: read webhook: %w", err)
	}
	var h Webhook
	if err := json.Unmarshal(b, &h); err != nil {
		return Webhook{}, fmt.Errorf("httpapi: webhook %s: %w", id, err)
	}
	return h, nil
}

// orgWebhooks returns org's webhooks, sorted by creation.
func orgWebhooks(ctx context.Context, st Store, org string) ([]Webhook, error) {
	keys, err := st.Keys(ctx, hookKeyPrefix+org+".")
	if err != nil {
		return nil, fmt.Errorf("httpapi: list webhooks: %w", err)
	}
	out := make([]Webhook, 0, len(keys))
	for _, k := range keys {
		if o, _, ok := hookOfKey(k); !ok || o != org {
			continue
		}
		b, err := st.Get(ctx, k)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("httpapi: read webhook: %w", err)
		}
		var h Webhook
		if err := json.Unmarshal(b, &h); err != nil {
			return nil, fmt.Errorf("httpapi: webhook %s: %w", k, err)
		}
		out = append(out, h)
	}
	slices.SortFunc(out, func(a, b Webhook) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// createWebhook serves POST /v1/webhooks: it registers a URL for the
// caller's organisation and answers 201 with the webhook and its secret,
// shown this once.
func (s *Server) createWebhook(w http.ResponseWriter, r *http.Request, who Token) error {
	st, e := s.webhookStore()
	if e != nil {
		return e
	}
	var req webhookRequest
	if e := readJSON(r, s.cfg.MaxJSONBody, &req); e != nil {
		return e
	}
	if e := s.cfg.Webhooks.checkWebhookURL(r.Context(), req.URL); e != nil {
		return e
	}
	if len(req.Description) > webhookDescriptionMax || strings.IndexFunc(req.Description, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return &Error{Status: http.StatusUnprocessableEntity, Problems: []Problem{{Pointer: "/description", Code: events.CodeTooLong,
			Message: fmt.Sprintf("description is printable text of at most %d bytes", webhookDescriptionMax)}}}
	}
	ctx, cancel := context.WithTimeout(r.Context(), StoreTimeout)
	defer cancel()
	existing, err := orgWebhooks(ctx, st, who.Org)
	if err != nil {
		return err
	}
	if len(existing) >= s.cfg.Webhooks.MaxPerOrg {
		return errorf(http.StatusConflict, CodeConflict, "your organisation has %d webhooks, the most allowed; delete one first", len(existing))
	}
	last, err := s.deps.Inbox.Last(ctx, who.Org)
	if err != nil {
		return fmt.Errorf("httpapi: inbox position: %w", err)
	}
	id, err := newWebhookID()
	if err != nil {
		return err
	}
	secret, err := NewWebhookSecret()
	if err != nil {
		return err
	}
	h := Webhook{ID: id, Org: who.Org, URL: req.URL, Description: req.Description, Secret: secret,
		CreatedAt: s.cfg.Now().UTC(), StartAfter: last}
	b, err := json.Marshal(h)
	if err != nil {
		return fmt.Errorf("httpapi: encode webhook: %w", err)
	}
	if err := st.Create(ctx, hookKey(who.Org, id), b); err != nil {
		return fmt.Errorf("httpapi: store webhook: %w", err)
	}
	s.webhooks.notify()
	w.Header().Set("Location", "/v1/webhooks/"+id)
	writeJSON(w, http.StatusCreated, h)
	return nil
}

// listWebhooks serves GET /v1/webhooks: the caller's webhooks, without
// their secrets.
func (s *Server) listWebhooks(w http.ResponseWriter, r *http.Request, who Token) error {
	st, e := s.webhookStore()
	if e != nil {
		return e
	}
	ctx, cancel := context.WithTimeout(r.Context(), StoreTimeout)
	defer cancel()
	hooks, err := orgWebhooks(ctx, st, who.Org)
	if err != nil {
		return err
	}
	for i := range hooks {
		hooks[i].Secret = ""
	}
	writeJSON(w, http.StatusOK, map[string][]Webhook{"webhooks": hooks})
	return nil
}

// getWebhook serves GET /v1/webhooks/{id}, without the secret.
func (s *Server) getWebhook(w http.ResponseWriter, r *http.Request, who Token) error {
	st, e := s.webhookStore()
	if e != nil {
		return e
	}
	ctx, cancel := context.WithTimeout(r.Context(), StoreTimeout)
	defer cancel()
	h, err := s.loadWebhook(ctx, st, who.Org, r.PathValue("id"))
	if err != nil {
		return err
	}
	h.Secret = ""
	writeJSON(w, http.StatusOK, h)
	return nil
}

// deleteWebhook serves DELETE /v1/webhooks/{id}: deliveries stop and the
// log is deleted.
func (s *Server) deleteWebhook(w http.ResponseWriter, r *http.Request, who Token) error {
	st, e := s.webhookStore()
	if e != nil {
		return e
	}
	ctx, cancel := context.WithTimeout(r.Context(), StoreTimeout)
	defer cancel()
	h, err := s.loadWebhook(ctx, st, who.Org, r.PathValue("id"))
	if err != nil {
		return err
	}
	for _, k := range []string{hookKey(h.Org, h.ID), cursorKeyPrefix + h.ID, logKeyPrefix + h.ID} {
		if err := st.Delete(ctx, k); err != nil {
			return fmt.Errorf("httpapi: delete webhook: %w", err)
		}
	}
	s.webhooks.notify()
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// webhookDeliveries serves GET /v1/webhooks/{id}/deliveries: the
// delivery log, newest first (?limit=, default and most
// WebhookConfig.LogSize).
func (s *Server) webhookDeliveries(w http.ResponseWriter, r *http.Request, who Token) error {
	st, e := s.webhookStore()
	if e != nil {
		return e
	}
	limit, e := uintParam(r.URL.Query().Get("limit"), "limit", uint64(s.cfg.Webhooks.LogSize))
	if e != nil {
		return e
	}
	if limit < 1 || limit > uint64(s.cfg.Webhooks.LogSize) {
		return paramError("limit", events.CodeOutOfRange, "limit must be from 1 to %d", s.cfg.Webhooks.LogSize)
	}
	ctx, cancel := context.WithTimeout(r.Context(), StoreTimeout)
	defer cancel()
	h, err := s.loadWebhook(ctx, st, who.Org, r.PathValue("id"))
	if err != nil {
		return err
	}
	log, err := readLog(ctx, st, h.ID)
	if err != nil {
		return err
	}
	slices.Reverse(log)
	if len(log) > int(limit) {
		log = log[:limit]
	}
	writeJSON(w, http.StatusOK, map[string][]WebhookAttempt{"deliveries": log})
	return nil
}

// readLog returns the delivery log of webhook id, oldest first.
func readLog(ctx context.Context, st Store, id string) ([]WebhookAttempt, error) {
	b, err := st.Get(ctx, logKeyPrefix+id)
	if errors.Is(err, fs.ErrNotExist) {
		return []WebhookAttempt{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("httpapi: read delivery log: %w", err)
	}
	var log []WebhookAttempt
	if err := json.Unmarshal(b, &log); err != nil {
		return nil, fmt.Errorf("httpapi: delivery log of %s: %w", id, err)
	}
	return log, nil
}
