package console

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
	"math/big"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"golang.org/x/crypto/argon2"

	"github.com/invictus-network/invictus/events"
)

// Role is what a person may do in the console.
type Role string

// Roles of a person.
const (
	// RoleCaseworker assesses, refers and answers offers for her
	// organisation.
	RoleCaseworker Role = "caseworker"
	// RoleOrgAdmin does what a caseworker does and manages the
	// organisation's people.
	RoleOrgAdmin Role = "org_admin"
	// RoleCoordinator reads the figures of one country (Scope cc) or of
	// all (Scope "eu").
	RoleCoordinator Role = "coordinator"
	// RoleDirectoryAdmin keeps the directory.
	RoleDirectoryAdmin Role = "directory_admin"
)

// Roles lists the roles, in the order of forms.
var Roles = []Role{RoleCaseworker, RoleOrgAdmin, RoleCoordinator, RoleDirectoryAdmin}

// Valid reports whether r is a role.
func (r Role) Valid() bool { return slices.Contains(Roles, r) }

// CaseData reports whether the role sees case data: such a role needs a
// second factor.
func (r Role) CaseData() bool { return r != RoleDirectoryAdmin }

// Refers reports whether the role sends and answers referrals.
func (r Role) Refers() bool { return r == RoleCaseworker || r == RoleOrgAdmin }

// User is a person's account. Nothing in it is shown to another
// organisation; only StaffRef leaves the node, in commands.
type User struct {
	Username string `json:"username"`
	Org      string `json:"org,omitempty"`
	Role     Role   `json:"role"`
	// Scope is a coordinator's country (pt) or "eu".
	Scope string `json:"scope,omitempty"`
	// StaffRef is the pseudonymous staff id recorded in commands
	// (events.StaffRefPattern).
	StaffRef string `json:"staff_ref"`
	// PasswordHash is the argon2id hash in the PHC string format.
	PasswordHash string `json:"password_hash,omitempty"`
	// TOTPSecret is the base32 secret of the second factor, once enrolled.
	TOTPSecret string `json:"totp_secret,omitempty"`
	// TOTPLast is the last time step accepted: a code is used once.
	TOTPLast    int64     `json:"totp_last,omitempty"`
	Lang        string    `json:"lang,omitempty"`
	Disabled    bool      `json:"disabled,omitempty"`
	Failures    int       `json:"failures,omitempty"`
	LockedUntil time.Time `json:"locked_until,omitzero"`
	// Epoch ends every session of the person when it grows: signing out
	// everywhere and disabling do that.
	Epoch     int       `json:"epoch"`
	CreatedAt time.Time `json:"created_at"`
}

// Enrolled reports whether the person has a second factor.
func (u *User) Enrolled() bool { return u.TOTPSecret != "" }

// Invite is an invitation to create an account, used once.
type Invite struct {
	Org       string    `json:"org,omitempty"`
	Role      Role      `json:"role"`
	Scope     string    `json:"scope,omitempty"`
	Username  string    `json:"username,omitempty"`
	ExpiresAt time.Time `json:"expires_at"`
	CreatedBy string    `json:"created_by,omitempty"`
}

// Errors of [Accounts]. Sign-in failures are one error, whatever failed,
// so that a page never tells whether a name exists.
var (
	ErrBadCredentials = errors.New("console: wrong name, password or code")
	ErrLocked         = errors.New("console: account locked for a while after too many failed attempts")
	ErrUserExists     = errors.New("console: the name is taken")
	ErrUserNotFound   = errors.New("console: no such person")
	ErrInviteInvalid  = errors.New("console: the invitation is unknown, used or expired")
	ErrWeakPassword   = errors.New("console: the password needs at least 12 characters")
	ErrBadUsername    = errors.New("console: a name is 3 to 64 letters, digits and . _ @ -")
	ErrBadRole        = errors.New("console: unknown role, or a role without the organisation or scope it needs")
)

// MinPasswordLength is the shortest password accepted.
const MinPasswordLength = 12

var reUsername = regexp.MustCompile(`^[a-z0-9][a-z0-9._@-]{2,63}$`)

// AccountsConfig configures [Accounts].
type AccountsConfig struct {
	LockAfter int
	LockFor   time.Duration
	InviteTTL time.Duration
	Now       func() time.Time
}

// Accounts keeps the people of the node in a [Store]: users under
// user.<hash of the name>, invitations under invite.<hash of the link>.
type Accounts struct {
	st  Store
	cfg AccountsConfig
}

// NewAccounts returns the accounts kept in st.
func NewAccounts(st Store, cfg AccountsConfig) *Accounts {
	if cfg.LockAfter == 0 {
		cfg.LockAfter = LockAfterDefault
	}
	if cfg.LockFor == 0 {
		cfg.LockFor = LockForDefault
	}
	if cfg.InviteTTL == 0 {
		cfg.InviteTTL = InviteTTLDefault
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Accounts{st: st, cfg: cfg}
}

func hashKey(prefix, s string) string {
	sum := sha256.Sum256([]byte(s))
	return prefix + hex.EncodeToString(sum[:16])
}

func userKey(name string) string { return hashKey("user.", strings.ToLower(name)) }

// NormalizeUsername lower-cases a name and checks it.
func NormalizeUsername(name string) (string, error) {
	n := strings.ToLower(strings.TrimSpace(name))
	if !reUsername.MatchString(n) {
		return "", ErrBadUsername
	}
	return n, nil
}

// checkRole checks a role with its organisation and scope.
func checkRole(role Role, org, scope string) error {
	switch {
	case !role.Valid():
		return ErrBadRole
	case role.Refers() && !events.IsOrgID(org):
		return ErrBadRole
	case role == RoleCoordinator && scope != "eu" && (len(scope) != 2 || strings.ToLower(scope) != scope):
		return ErrBadRole
	}
	return nil
}

// NewStaffRef returns a fresh pseudonymous staff id for org: the letters
// of the organisation's short name and random characters, such as
// apav-k3x9q2m7d1.
func NewStaffRef(org string) string {
	_, short, _ := strings.Cut(org, ".")
	var b strings.Builder
	for _, c := range short {
		if c >= 'a' && c <= 'z' && b.Len() < 8 {
			b.WriteRune(c)
		}
	}
	for b.Len() < 2 {
		b.WriteByte('s')
	}
	b.WriteByte('-')
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	for i := range 10 {
		n, _ := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		c := alphabet[n.Int64()]
		switch i {
		case 0:
			c = "0123456789"[n.Int64()%10] // a digit and a letter, as IsStaffRef asks
		case 1:
			c = alphabet[n.Int64()%26]
		}
		b.WriteByte(c)
	}
	return b.String()
}

// Get returns the user of name, or ErrUserNotFound.
func (a *Accounts) Get(ctx context.Context, name string) (*User, error) {
	b, err := a.st.Get(ctx, userKey(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrUserNotFound
	}
	if err != nil {
		return nil, err
	}
	var u User
	if err := json.Unmarshal(b, &u); err != nil {
		return nil, fmt.Errorf("console: user record: %w", err)
	}
	return &u, nil
}

func (a *Accounts) put(ctx context.Context, u *User) error {
	b, err := json.Marshal(u)
	if err != nil {
		return err
	}
	return a.st.Put(ctx, userKey(u.Username), b)
}

// Add creates an account with a password (empty: the person cannot sign
// in until a password is set by an invitation). It returns
// ErrBadUsername, ErrBadRole, ErrWeakPassword or ErrUserExists.
func (a *Accounts) Add(ctx context.Context, name string, role Role, org, scope, password string) (*User, error) {
	n, err := NormalizeUsername(name)
	if err != nil {
		return nil, err
	}
	if err := checkRole(role, org, scope); err != nil {
		return nil, err
	}
	u := &User{Username: n, Org: org, Role: role, Scope: scope, CreatedAt: a.cfg.Now().UTC()}
	if role.Refers() || org != "" {
		u.StaffRef = NewStaffRef(org)
	} else {
		u.StaffRef = NewStaffRef("x." + string(role))
	}
	if password != "" {
		if len([]rune(password)) < MinPasswordLength {
			return nil, ErrWeakPassword
		}
		u.PasswordHash = HashPassword(password)
	}
	b, err := json.Marshal(u)
	if err != nil {
		return nil, err
	}
	if err := a.st.Create(ctx, userKey(n), b); errors.Is(err, fs.ErrExist) {
		return nil, ErrUserExists
	} else if err != nil {
		return nil, err
	}
	return u, nil
}

// List returns every account, sorted by name; with org set, those of org.
func (a *Accounts) List(ctx context.Context, org string) ([]*User, error) {
	keys, err := a.st.Keys(ctx, "user.")
	if err != nil {
		return nil, err
	}
	var out []*User
	for _, k := range keys {
		b, err := a.st.Get(ctx, k)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		var u User
		if err := json.Unmarshal(b, &u); err != nil {
			return nil, fmt.Errorf("console: user record: %w", err)
		}
		if org == "" || u.Org == org {
			out = append(out, &u)
		}
	}
	slices.SortFunc(out, func(x, y *User) int { return strings.Compare(x.Username, y.Username) })
	return out, nil
}

// Disable stops an account: it can no longer sign in and its sessions end.
func (a *Accounts) Disable(ctx context.Context, name string) (*User, error) {
	u, err := a.Get(ctx, name)
	if err != nil {
		return nil, err
	}
	u.Disabled = true
	u.Epoch++
	return u, a.put(ctx, u)
}

// EndSessions ends every session of the person (sign out everywhere).
func (a *Accounts) EndSessions(ctx context.Context, name string) error {
	u, err := a.Get(ctx, name)
	if err != nil {
		return err
	}
	u.Epoch++
	return a.put(ctx, u)
}

// SetLang remembers the person's language.
func (a *Accounts) SetLang(ctx context.Context, name, lang string) error {
	u, err := a.Get(ctx, name)
	if err != nil {
		return err
	}
	u.Lang = lang
	return a.put(ctx, u)
}

// CheckPassword checks a name and password. A disabled, unknown or
// password-less account fails like a wrong password; a locked one
// returns ErrLocked. Failures count towards the lock.
func (a *Accounts) CheckPassword(ctx context.Context, name, password string) (*User, error) {
	n, err := NormalizeUsername(name)
	if err != nil {
		verifyPassword(password, dummyHash) // the same time as a real check
		return nil, ErrBadCredentials
	}
	u, err := a.Get(ctx, n)
	if errors.Is(err, ErrUserNotFound) {
		verifyPassword(password, dummyHash)
		return nil, ErrBadCredentials
	}
	if err != nil {
		return nil, err
	}
	now := a.cfg.Now()
	if now.Before(u.LockedUntil) {
		return nil, ErrLocked
	}
	if u.Disabled || u.PasswordHash == "" || !verifyPassword(password, u.PasswordHash) {
		return nil, a.fail(ctx, u)
	}
	if u.Failures > 0 {
		u.Failures = 0
		if err := a.put(ctx, u); err != nil {
			return nil, err
		}
	}
	return u, nil
}

// fail counts a failed attempt and locks the account after LockAfter.
func (a *Accounts) fail(ctx context.Context, u *User) error {
	u.Failures++
	if u.Failures >= a.cfg.LockAfter {
		u.Failures = 0
		u.LockedUntil = a.cfg.Now().Add(a.cfg.LockFor).UTC()
	}
	if err := a.put(ctx, u); err != nil {
		return err
	}
	return ErrBadCredentials
}

// totpOpts are the second factor's parameters: RFC 6238 defaults, one
// step of clock skew either way.
var totpOpts = totp.ValidateOpts{Period: 30, Skew: 1, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

// CheckCode checks a second-factor code against secret (the enrolled one
// when secret is empty); a code is accepted once. On success with a new
// secret, the secret is enrolled.
func (a *Accounts) CheckCode(ctx context.Context, name, secret, code string) (*User, error) {
	u, err := a.Get(ctx, name)
	if err != nil {
		return nil, err
	}
	now := a.cfg.Now()
	if now.Before(u.LockedUntil) {
		return nil, ErrLocked
	}
	enrol := secret != ""
	if !enrol {
		secret = u.TOTPSecret
	}
	code = strings.ReplaceAll(strings.TrimSpace(code), " ", "")
	step := now.Unix() / 30
	matched := int64(-1)
	for _, d := range []int64{0, -1, 1} {
		want, err := totp.GenerateCodeCustom(secret, time.Unix((step+d)*30, 0), totpOpts)
		if err == nil && subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			matched = step + d
		}
	}
	if u.Disabled || secret == "" || matched < 0 || matched <= u.TOTPLast {
		return nil, a.fail(ctx, u)
	}
	u.TOTPLast, u.Failures = matched, 0
	if enrol {
		u.TOTPSecret = secret
	}
	return u, a.put(ctx, u)
}

// NewTOTPKey makes a fresh second-factor key for a person.
func NewTOTPKey(name string) (*otp.Key, error) {
	return totp.Generate(totp.GenerateOpts{Issuer: "INVICTUS", AccountName: name})
}

// CreateInvite stores an invitation and returns its secret, the last part
// of the link /console/invite/<secret>.
func (a *Accounts) CreateInvite(ctx context.Context, inv Invite) (string, error) {
	if err := checkRole(inv.Role, inv.Org, inv.Scope); err != nil {
		return "", err
	}
	if inv.Username != "" {
		n, err := NormalizeUsername(inv.Username)
		if err != nil {
			return "", err
		}
		inv.Username = n
	}
	inv.ExpiresAt = a.cfg.Now().Add(a.cfg.InviteTTL).UTC()
	secret := newToken(24)
	b, err := json.Marshal(inv)
	if err != nil {
		return "", err
	}
	return secret, a.st.Create(ctx, hashKey("invite.", secret), b)
}

// PeekInvite returns a usable invitation, or ErrInviteInvalid.
func (a *Accounts) PeekInvite(ctx context.Context, secret string) (*Invite, error) {
	if secret == "" || len(secret) > 64 {
		return nil, ErrInviteInvalid
	}
	b, err := a.st.Get(ctx, hashKey("invite.", secret))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrInviteInvalid
	}
	if err != nil {
		return nil, err
	}
	var inv Invite
	if err := json.Unmarshal(b, &inv); err != nil {
		return nil, fmt.Errorf("console: invitation record: %w", err)
	}
	if !a.cfg.Now().Before(inv.ExpiresAt) {
		return nil, ErrInviteInvalid
	}
	return &inv, nil
}

// RedeemInvite creates the account of an invitation and deletes the
// invitation.
func (a *Accounts) RedeemInvite(ctx context.Context, secret, name, password string) (*User, error) {
	inv, err := a.PeekInvite(ctx, secret)
	if err != nil {
		return nil, err
	}
	if inv.Username != "" {
		name = inv.Username
	}
	if len([]rune(password)) < MinPasswordLength {
		return nil, ErrWeakPassword
	}
	u, err := a.Add(ctx, name, inv.Role, inv.Org, inv.Scope, password)
	if err != nil {
		return nil, err
	}
	return u, a.st.Delete(ctx, hashKey("invite.", secret))
}

// argon2id parameters (RFC 9106's second recommended option, with less
// memory: 19 MiB, as OWASP advises for a server).
const (
	argonTime    = 2
	argonMemory  = 19 * 1024
	argonThreads = 1
	argonKeyLen  = 32
)

// HashPassword returns the argon2id hash of password in the PHC format
// ($argon2id$v=19$m=...,t=...,p=...$salt$hash).
func HashPassword(password string) string {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		panic(err)
	}
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads, enc.EncodeToString(salt), enc.EncodeToString(key))
}

// dummyHash makes a check of an unknown name take as long as a real one.
var dummyHash = HashPassword("invictus-no-such-person")

// verifyPassword checks password against a PHC argon2id hash.
func verifyPassword(password, hash string) bool {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || m > 256*1024 || t > 16 || p == 0 {
		return false
	}
	enc := base64.RawStdEncoding
	salt, err1 := enc.DecodeString(parts[4])
	want, err2 := enc.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 {
		return false
	}
	got := argon2.IDKey([]byte(password), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}
