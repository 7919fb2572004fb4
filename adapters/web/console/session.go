package console

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"time"

	"github.com/invictus-network/invictus/internal/ratelimit"
)

// Cookies of the console. Both are HttpOnly, SameSite=Strict, scoped to
// the console's path, and Secure over TLS.
const (
	// CookieSession holds the session's secret; the store keeps only its
	// hash.
	CookieSession = "invictus_session"
	// CookiePre is the sign-in form's CSRF token before a session exists
	// (double submit).
	CookiePre = "invictus_pre"
)

// Stages of a session: a password checked, waiting for the second
// factor or its enrolment; or signed in.
const (
	StageCode  = "code"
	StageEnrol = "enrol"
	StageFull  = "full"
)

// session is a stored session.
type session struct {
	Username string    `json:"username"`
	Epoch    int       `json:"epoch"`
	Stage    string    `json:"stage"`
	CSRF     string    `json:"csrf"`
	Created  time.Time `json:"created"`
	Seen     time.Time `json:"seen"`
	// Enrol is the second-factor secret offered during enrolment.
	Enrol string `json:"enrol,omitempty"`

	key string // store key, not stored
}

func sessionKey(secret string) string { return hashKey("s.", secret) }

// newSession stores a session for u at stage and sets its cookie.
func (s *Server) newSession(w http.ResponseWriter, r *http.Request, u *User, stage string) (*session, error) {
	secret := newToken(32)
	now := s.cfg.Now().UTC()
	ss := &session{Username: u.Username, Epoch: u.Epoch, Stage: stage, CSRF: newToken(24), Created: now, Seen: now, key: sessionKey(secret)}
	if err := s.saveSession(r.Context(), ss); err != nil {
		return nil, err
	}
	s.setCookie(w, r, CookieSession, secret, s.cfg.SessionTTL)
	return ss, nil
}

func (s *Server) saveSession(ctx context.Context, ss *session) error {
	b, err := json.Marshal(ss)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, StoreTimeout)
	defer cancel()
	return s.deps.Sessions.Put(ctx, ss.key, b)
}

// errNoSession is a request without a valid session.
var errNoSession = errors.New("console: no valid session")

// loadSession returns the request's session and its person, or
// errNoSession when there is none, it expired, or the person's sessions
// were ended.
func (s *Server) loadSession(r *http.Request) (*session, *User, error) {
	c, err := r.Cookie(CookieSession)
	if err != nil || c.Value == "" || len(c.Value) > 64 {
		return nil, nil, errNoSession
	}
	ctx, cancel := context.WithTimeout(r.Context(), StoreTimeout)
	defer cancel()
	key := sessionKey(c.Value)
	b, err := s.deps.Sessions.Get(ctx, key)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, errNoSession
	}
	if err != nil {
		return nil, nil, err
	}
	var ss session
	if err := json.Unmarshal(b, &ss); err != nil {
		return nil, nil, errNoSession
	}
	ss.key = key
	now := s.cfg.Now()
	if now.After(ss.Created.Add(s.cfg.SessionTTL)) || now.After(ss.Seen.Add(s.cfg.SessionIdle)) {
		_ = s.deps.Sessions.Delete(ctx, key)
		return nil, nil, errNoSession
	}
	u, err := s.accts.Get(ctx, ss.Username)
	if errors.Is(err, ErrUserNotFound) {
		return nil, nil, errNoSession
	}
	if err != nil {
		return nil, nil, err
	}
	if u.Disabled || u.Epoch != ss.Epoch {
		_ = s.deps.Sessions.Delete(ctx, key)
		return nil, nil, errNoSession
	}
	// The idle clock restarts at most once a minute: one write, not one
	// per request.
	if now.Sub(ss.Seen) > time.Minute {
		ss.Seen = now.UTC()
		if err := s.saveSession(r.Context(), &ss); err != nil {
			return nil, nil, err
		}
	}
	return &ss, u, nil
}

// endSession deletes the request's session and its cookie.
func (s *Server) endSession(w http.ResponseWriter, r *http.Request, ss *session) {
	if ss != nil {
		ctx, cancel := context.WithTimeout(r.Context(), StoreTimeout)
		_ = s.deps.Sessions.Delete(ctx, ss.key)
		cancel()
	}
	s.setCookie(w, r, CookieSession, "", -1)
}

// setCookie sets (maxAge > 0) or deletes a console cookie.
func (s *Server) setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge time.Duration) {
	c := &http.Cookie{
		Name: name, Value: value, Path: Prefix, HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: s.cfg.SecureCookies || r.TLS != nil,
	}
	if maxAge > 0 {
		c.MaxAge = int(maxAge / time.Second)
	} else {
		c.MaxAge = -1
	}
	http.SetCookie(w, c)
}

// checkCSRF compares the form's csrf field with the expected token.
func checkCSRF(r *http.Request, want string) bool {
	got := r.PostFormValue("csrf")
	return want != "" && got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// preToken returns the sign-in form's token, setting its cookie when the
// visitor has none.
func (s *Server) preToken(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(CookiePre); err == nil && len(c.Value) >= 16 && len(c.Value) <= 64 {
		return c.Value
	}
	v := newToken(24)
	s.setCookie(w, r, CookiePre, v, time.Hour)
	return v
}

// limiterMax bounds the addresses the sign-in limiter remembers.
const limiterMax = 10000

// newLimiter limits sign-in attempts by client address, in memory: a
// restart forgets it, the lock-out in the store does not. An address may
// make perMin attempts a minute, beyond a burst of as many.
func newLimiter(perMin int) *ratelimit.Keyed {
	return ratelimit.New(float64(perMin)/60, perMin, nil).WithMax(limiterMax)
}

// allow reports whether r's address may try now.
func (s *Server) allow(r *http.Request) bool {
	ok, _ := s.limiter.Allow(ratelimit.ClientIP(r))
	return ok
}

// auditKey returns a sortable key of an audit line of org.
func auditKey(org string, at time.Time) string {
	sum := sha256.Sum256([]byte(newToken(8)))
	return "a." + org + "." + fmt.Sprintf("%020d", at.UnixNano()) + "-" + hex.EncodeToString(sum[:4])
}
