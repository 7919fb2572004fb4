package httpapi

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/invictus-network/invictus/events"
)

// Role is what a token may do.
type Role string

// Roles of DESIGN.md section 8.
const (
	// RoleOrganisation sends commands for its organisation, reads its own
	// referrals and inbox, registers webhooks, previews plans and reads
	// the directory.
	RoleOrganisation Role = "organisation"
	// RoleCoordinator watches flows across organisations: aggregates, never
	// case data. It previews plans and reads the directory.
	RoleCoordinator Role = "coordinator"
	// RoleDirectoryAdmin maintains the directory; over HTTP it reads it.
	RoleDirectoryAdmin Role = "directory_admin"
)

// Roles lists every role.
var Roles = []Role{RoleOrganisation, RoleCoordinator, RoleDirectoryAdmin}

// Valid reports whether r is one of Roles.
func (r Role) Valid() bool { return slices.Contains(Roles, r) }

// Token format and limits.
const (
	// TokenPrefix starts every token: "inv_" and 43 characters of
	// unpadded base64url (32 random bytes).
	TokenPrefix = "inv_"
	// tokenSecretLen is the length of a token after the prefix.
	tokenSecretLen = 43
	// TokenIDLen is the length of a token id: the first hex digits of the
	// token's SHA-256. The id names a token in lists and revocations; it
	// cannot be used to authenticate.
	TokenIDLen = 16
	// TokenNameMax bounds a token's descriptive name.
	TokenNameMax = 64
	// tokenKeyPrefix starts the Store keys of tokens.
	tokenKeyPrefix = "tok."
	// TokenTTLMax bounds the lifetime a token can be given at creation.
	TokenTTLMax = 5 * 365 * 24 * time.Hour
	// tokenWatchRetry and tokenWatchRetryMax bound the wait before the
	// token cache watches the store again after the watch failed.
	tokenWatchRetry    = 100 * time.Millisecond
	tokenWatchRetryMax = 10 * time.Second
)

// Errors of [Tokens].
var (
	// ErrBadToken reports a token that is malformed, unknown or revoked.
	ErrBadToken = errors.New("httpapi: invalid token")
	// ErrTokenExpired reports a token past its expiry; it wraps
	// ErrBadToken.
	ErrTokenExpired = fmt.Errorf("%w: expired", ErrBadToken)
	// ErrTokenNotFound reports a revocation of a token id that does not
	// exist; it wraps fs.ErrNotExist.
	ErrTokenNotFound = fmt.Errorf("httpapi: no such token: %w", fs.ErrNotExist)
)

// Token is the stored record of an API token. The secret itself is never
// stored: only its SHA-256, from which the id is derived.
type Token struct {
	// ID is the first TokenIDLen hex digits of Hash.
	ID string `json:"id"`
	// Org is the organisation the token acts for; required for
	// RoleOrganisation, optional for the others.
	Org string `json:"organisation,omitempty"`
	// Role is what the token may do.
	Role Role `json:"role"`
	// Name describes the token for people ("case system", "alice's laptop").
	Name string `json:"name,omitempty"`
	// Hash is the hex SHA-256 of the secret.
	Hash string `json:"sha256"`
	// CreatedAt is when the token was made.
	CreatedAt time.Time `json:"created_at"`
	// ExpiresAt, when set, is when the token stops being accepted.
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// Expired reports whether the token is past its expiry at now.
func (t Token) Expired(now time.Time) bool {
	return t.ExpiresAt != nil && !now.Before(*t.ExpiresAt)
}

// TokenOption is a choice made when creating one token.
type TokenOption func(*Token)

// WithExpiry makes the token expire at the given time.
func WithExpiry(at time.Time) TokenOption {
	return func(t *Token) {
		at = at.UTC().Truncate(time.Second)
		t.ExpiresAt = &at
	}
}

// Watcher follows the changes of a [Store]. The token cache uses it
// (see [Tokens.Follow]).
type Watcher interface {
	// Watch calls fn with the value of every key that starts with prefix
	// (empty or ending with a dot), then calls caughtUp once, then calls
	// fn for every later change, a nil value for a deleted key, until
	// ctx ends (it returns nil then) or the watch fails (it returns the
	// error). fn and caughtUp are called from one goroutine.
	Watch(ctx context.Context, prefix string, fn func(key string, value []byte), caughtUp func()) error
}

// Tokens issues, revokes and checks API tokens in a [Store]. While
// [Tokens.Follow] runs, it checks tokens against an in-memory copy of the
// store kept current by a watch, so that a request costs no store read.
// It is safe for concurrent use.
type Tokens struct {
	store Store
	now   func() time.Time

	mu    sync.RWMutex
	cache map[string]Token // by id; nil unless a watch is caught up
}

// NewTokens returns a token manager over store (the "tokens" bucket).
func NewTokens(store Store) *Tokens {
	return &Tokens{store: store, now: time.Now}
}

// hashToken returns the hex SHA-256 of a token secret.
func hashToken(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// checkTokenFields reports what is wrong with a new token's fields.
func checkTokenFields(org string, role Role, name string) error {
	switch {
	case !role.Valid():
		return fmt.Errorf("httpapi: role %q is not one of %v", role, Roles)
	case role == RoleOrganisation && !events.IsOrgID(org):
		return fmt.Errorf("httpapi: an organisation token needs an organisation id (<country>.<slug>), not %q", org)
	case org != "" && !events.IsOrgID(org):
		return fmt.Errorf("httpapi: %q is not an organisation id (<country>.<slug>)", org)
	case len(name) > TokenNameMax:
		return fmt.Errorf("httpapi: a token name is at most %d bytes", TokenNameMax)
	case strings.IndexFunc(name, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0:
		return errors.New("httpapi: a token name must be printable text")
	}
	return nil
}

// Create issues a new token for org with role and returns its secret,
// shown this once, and its record. It returns an error naming the bad
// field, or the store's error.
func (t *Tokens) Create(ctx context.Context, org string, role Role, name string, opts ...TokenOption) (secret string, tok Token, err error) {
	if err := checkTokenFields(org, role, name); err != nil {
		return "", Token{}, err
	}
	now := t.now().UTC().Truncate(time.Second)
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", Token{}, fmt.Errorf("httpapi: token: %w", err)
	}
	secret = TokenPrefix + base64.RawURLEncoding.EncodeToString(raw[:])
	h := hashToken(secret)
	tok = Token{ID: h[:TokenIDLen], Org: org, Role: role, Name: name, Hash: h, CreatedAt: now}
	for _, o := range opts {
		o(&tok)
	}
	if tok.ExpiresAt != nil && (!tok.ExpiresAt.After(now) || tok.ExpiresAt.Sub(now) > TokenTTLMax) {
		return "", Token{}, fmt.Errorf("httpapi: a token's expiry must be in the future and at most %s away, not %s", TokenTTLMax, tok.ExpiresAt.Format(time.RFC3339))
	}
	b, err := json.Marshal(tok)
	if err != nil {
		return "", Token{}, fmt.Errorf("httpapi: token: %w", err)
	}
	if err := t.store.Create(ctx, tokenKeyPrefix+tok.ID, b); err != nil {
		return "", Token{}, fmt.Errorf("httpapi: store token %s: %w", tok.ID, err)
	}
	t.mu.Lock()
	if t.cache != nil {
		t.cache[tok.ID] = tok // the watch says so too, a moment later
	}
	t.mu.Unlock()
	return secret, tok, nil
}

// Revoke deletes the token with the id. It returns ErrTokenNotFound when
// there is none, or the store's error.
func (t *Tokens) Revoke(ctx context.Context, id string) error {
	if !isTokenID(id) {
		return fmt.Errorf("%w: %q is not a token id", ErrTokenNotFound, id)
	}
	if _, err := t.store.Get(ctx, tokenKeyPrefix+id); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%w: %s", ErrTokenNotFound, id)
		}
		return fmt.Errorf("httpapi: revoke token %s: %w", id, err)
	}
	if err := t.store.Delete(ctx, tokenKeyPrefix+id); err != nil {
		return fmt.Errorf("httpapi: revoke token %s: %w", id, err)
	}
	t.mu.Lock()
	delete(t.cache, id) // the watch says so too, a moment later
	t.mu.Unlock()
	return nil
}

// List returns every token record, sorted by organisation, role and id.
func (t *Tokens) List(ctx context.Context) ([]Token, error) {
	keys, err := t.store.Keys(ctx, tokenKeyPrefix)
	if err != nil {
		return nil, fmt.Errorf("httpapi: list tokens: %w", err)
	}
	out := make([]Token, 0, len(keys))
	for _, k := range keys {
		b, err := t.store.Get(ctx, k)
		if errors.Is(err, fs.ErrNotExist) {
			continue // revoked meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("httpapi: list tokens: %w", err)
		}
		var tok Token
		if err := json.Unmarshal(b, &tok); err != nil {
			return nil, fmt.Errorf("httpapi: token %s: %w", k, err)
		}
		out = append(out, tok)
	}
	slices.SortFunc(out, func(a, b Token) int {
		if c := strings.Compare(a.Org, b.Org); c != 0 {
			return c
		}
		if c := strings.Compare(string(a.Role), string(b.Role)); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// Authenticate returns the record of the token secret. It returns an
// error wrapping ErrBadToken for a malformed, unknown or revoked token,
// ErrTokenExpired for an expired one, and the store's error otherwise.
// While [Tokens.Follow] is caught up, a known token costs no store read;
// an unknown one is looked up in the store (it may have been created a
// moment ago elsewhere).
func (t *Tokens) Authenticate(ctx context.Context, secret string) (Token, error) {
	h, ok := tokenHash(secret)
	if !ok {
		return Token{}, fmt.Errorf("%w: not an %s token", ErrBadToken, TokenPrefix)
	}
	tok, found, _ := t.cached(h)
	if !found {
		b, err := t.store.Get(ctx, tokenKeyPrefix+h[:TokenIDLen])
		if errors.Is(err, fs.ErrNotExist) {
			return Token{}, fmt.Errorf("%w: unknown or revoked", ErrBadToken)
		}
		if err != nil {
			return Token{}, fmt.Errorf("httpapi: authenticate: %w", err)
		}
		if err := json.Unmarshal(b, &tok); err != nil {
			return Token{}, fmt.Errorf("httpapi: token %s: %w", h[:TokenIDLen], err)
		}
	}
	if subtle.ConstantTimeCompare([]byte(tok.Hash), []byte(h)) != 1 {
		return Token{}, fmt.Errorf("%w: unknown or revoked", ErrBadToken)
	}
	if tok.Expired(t.now()) {
		return Token{}, fmt.Errorf("%w at %s", ErrTokenExpired, tok.ExpiresAt.Format(time.RFC3339))
	}
	return tok, nil
}

// tokenHash returns the hex SHA-256 of a well-formed token secret.
func tokenHash(secret string) (string, bool) {
	if len(secret) != len(TokenPrefix)+tokenSecretLen || !strings.HasPrefix(secret, TokenPrefix) {
		return "", false
	}
	return hashToken(secret), true
}

// cached returns the cached record of the token whose hash is h: found
// when the cache has it, live when the cache is current (so that a token
// it lacks is not in the store either, bar one created a moment ago).
func (t *Tokens) cached(h string) (tok Token, found, live bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.cache == nil {
		return Token{}, false, false
	}
	tok, found = t.cache[h[:TokenIDLen]]
	return tok, found, true
}

// Follow keeps the in-memory copy of the tokens current by watching the
// store, until ctx ends; then it returns nil. Without it every
// [Tokens.Authenticate] reads the store. When the watch fails, the copy
// is dropped (Authenticate reads the store again) and the watch starts
// over after a growing pause. It returns an error at once when the store
// is not a [Watcher].
func (t *Tokens) Follow(ctx context.Context) error {
	w, ok := t.store.(Watcher)
	if !ok {
		return errors.New("httpapi: the token store cannot be watched")
	}
	defer t.drop()
	delay := tokenWatchRetry
	for {
		m := map[string]Token{}
		live := false
		err := w.Watch(ctx, tokenKeyPrefix, func(key string, value []byte) {
			id := strings.TrimPrefix(key, tokenKeyPrefix)
			var tok Token
			if value != nil && json.Unmarshal(value, &tok) != nil {
				value = nil // unreadable: Authenticate reports it from the store
			}
			t.mu.Lock()
			defer t.mu.Unlock()
			if value == nil {
				delete(m, id)
			} else {
				m[id] = tok
			}
		}, func() {
			t.mu.Lock()
			t.cache, live = m, true
			t.mu.Unlock()
		})
		t.drop()
		if ctx.Err() != nil {
			return nil
		}
		if live {
			delay = tokenWatchRetry
		}
		_ = err // the store reads of Authenticate report the failure, if it lasts
		if !sleep(ctx, delay) {
			return nil
		}
		delay = min(delay*2, tokenWatchRetryMax)
	}
}

// drop forgets the cached tokens.
func (t *Tokens) drop() {
	t.mu.Lock()
	t.cache = nil
	t.mu.Unlock()
}

// isTokenID reports whether id has the form of a token id.
func isTokenID(id string) bool {
	if len(id) != TokenIDLen {
		return false
	}
	for i := range len(id) {
		if c := id[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
