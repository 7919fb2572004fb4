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
)

// Errors of [Tokens].
var (
	// ErrBadToken reports a token that is malformed, unknown or revoked.
	ErrBadToken = errors.New("httpapi: invalid token")
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
}

// Tokens issues, revokes and checks API tokens in a [Store]. It is safe
// for concurrent use.
type Tokens struct {
	store Store
	now   func() time.Time
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
func (t *Tokens) Create(ctx context.Context, org string, role Role, name string) (secret string, tok Token, err error) {
	if err := checkTokenFields(org, role, name); err != nil {
		return "", Token{}, err
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", Token{}, fmt.Errorf("httpapi: token: %w", err)
	}
	secret = TokenPrefix + base64.RawURLEncoding.EncodeToString(raw[:])
	h := hashToken(secret)
	tok = Token{ID: h[:TokenIDLen], Org: org, Role: role, Name: name, Hash: h, CreatedAt: t.now().UTC().Truncate(time.Second)}
	b, err := json.Marshal(tok)
	if err != nil {
		return "", Token{}, fmt.Errorf("httpapi: token: %w", err)
	}
	if err := t.store.Create(ctx, tokenKeyPrefix+tok.ID, b); err != nil {
		return "", Token{}, fmt.Errorf("httpapi: store token %s: %w", tok.ID, err)
	}
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
// and the store's error otherwise.
func (t *Tokens) Authenticate(ctx context.Context, secret string) (Token, error) {
	if len(secret) != len(TokenPrefix)+tokenSecretLen || !strings.HasPrefix(secret, TokenPrefix) {
		return Token{}, fmt.Errorf("%w: not an %s token", ErrBadToken, TokenPrefix)
	}
	h := hashToken(secret)
	b, err := t.store.Get(ctx, tokenKeyPrefix+h[:TokenIDLen])
	if errors.Is(err, fs.ErrNotExist) {
		return Token{}, fmt.Errorf("%w: unknown or revoked", ErrBadToken)
	}
	if err != nil {
		return Token{}, fmt.Errorf("httpapi: authenticate: %w", err)
	}
	var tok Token
	if err := json.Unmarshal(b, &tok); err != nil {
		return Token{}, fmt.Errorf("httpapi: token %s: %w", h[:TokenIDLen], err)
	}
	if subtle.ConstantTimeCompare([]byte(tok.Hash), []byte(h)) != 1 {
		return Token{}, fmt.Errorf("%w: unknown or revoked", ErrBadToken)
	}
	return tok, nil
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
