package email

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/invictus-network/invictus/events"
)

// Actions a link can carry.
const (
	ActionAccept  = "accept"
	ActionDecline = "decline"
)

// Limits of action links.
const (
	// LinkMaxLen bounds the length of a token; longer input is refused
	// before it is decoded.
	LinkMaxLen = 512
	// LinkKeySize is the size of the node secret that signs links.
	LinkKeySize = 32
	// linkMACSize is how many bytes of the HMAC-SHA256 a token carries
	// (128 bits).
	linkMACSize = 16
	// linkVersion is the first field of every token.
	linkVersion = "1"
	// linkContext separates link MACs from any other use of the key.
	linkContext = "invictus-mail-link-v1\x00"
)

// Errors of [Links.Verify]; each is refused with its own page.
var (
	// ErrLinkMalformed: not a token of this format (or one byte changed
	// in a way that breaks its shape).
	ErrLinkMalformed = errors.New("email: malformed link")
	// ErrLinkSignature: well formed, but not signed by this network's
	// key: forged or altered.
	ErrLinkSignature = errors.New("email: link signature does not match")
	// ErrLinkExpired: the offer's deadline has passed.
	ErrLinkExpired = errors.New("email: link expired")
)

// Link is what an action link says: organisation Org may take Action on
// placement Placement (offer attempt Attempt) of referral Referral until
// Expires. It is signed whole, so none of it can be changed.
type Link struct {
	Action    string
	Org       string
	Referral  string
	Placement string
	Attempt   int
	Expires   time.Time
}

// UseKey is the key under which the use of any link for the same offer
// is recorded: accept and decline links of one offer share it, so only
// one of them ever acts.
func (l Link) UseKey() string {
	sum := sha256.Sum256([]byte(l.Org + "|" + l.Referral + "|" + l.Placement + "|" + strconv.Itoa(l.Attempt)))
	return "link." + hex.EncodeToString(sum[:16])
}

// valid reports whether every field of l is well formed.
func (l Link) valid() bool {
	return (l.Action == ActionAccept || l.Action == ActionDecline) && events.IsOrgID(l.Org) &&
		events.IsReferralID(l.Referral) && events.IsPlacementID(l.Placement) &&
		l.Attempt >= 1 && l.Attempt <= 32 && l.Expires.Unix() > 0
}

// Links signs and verifies action-link tokens with the node secret.
//
// A token is base64url(payload) "." base64url(mac), where payload is
// "1|<action>|<org>|<referral>|<placement>|<attempt>|<expires unix>" and
// mac the first 16 bytes of HMAC-SHA256(key, context || payload).
type Links struct {
	key []byte
	now func() time.Time
}

// NewLinks returns a signer with key (at least [LinkKeySize] bytes) and
// clock now (time.Now when nil).
func NewLinks(key []byte, now func() time.Time) (*Links, error) {
	if len(key) < LinkKeySize {
		return nil, fmt.Errorf("email: link key of %d bytes, want at least %d", len(key), LinkKeySize)
	}
	if now == nil {
		now = time.Now
	}
	return &Links{key: append([]byte(nil), key...), now: now}, nil
}

func (s *Links) mac(payload []byte) []byte {
	h := hmac.New(sha256.New, s.key)
	h.Write([]byte(linkContext))
	h.Write(payload)
	return h.Sum(nil)[:linkMACSize]
}

// Sign returns the token of l, or an error when a field is not valid.
func (s *Links) Sign(l Link) (string, error) {
	if !l.valid() {
		return "", fmt.Errorf("%w: cannot sign %+v", ErrLinkMalformed, l)
	}
	payload := []byte(strings.Join([]string{linkVersion, l.Action, l.Org, l.Referral, l.Placement,
		strconv.Itoa(l.Attempt), strconv.FormatInt(l.Expires.Unix(), 10)}, "|"))
	enc := base64.RawURLEncoding
	return enc.EncodeToString(payload) + "." + enc.EncodeToString(s.mac(payload)), nil
}

// Verify decodes token and checks its signature and expiry. It returns
// the link with an error wrapping [ErrLinkMalformed], [ErrLinkSignature]
// or [ErrLinkExpired] (the link is returned with the last, so that the
// page can say what expired).
func (s *Links) Verify(token string) (Link, error) {
	if len(token) == 0 || len(token) > LinkMaxLen {
		return Link{}, ErrLinkMalformed
	}
	p64, m64, ok := strings.Cut(token, ".")
	if !ok {
		return Link{}, ErrLinkMalformed
	}
	enc := base64.RawURLEncoding.Strict()
	payload, err1 := enc.DecodeString(p64)
	mac, err2 := enc.DecodeString(m64)
	if err1 != nil || err2 != nil || len(mac) != linkMACSize {
		return Link{}, ErrLinkMalformed
	}
	if !hmac.Equal(mac, s.mac(payload)) {
		return Link{}, ErrLinkSignature
	}
	f := strings.Split(string(payload), "|")
	if len(f) != 7 || f[0] != linkVersion {
		return Link{}, ErrLinkMalformed
	}
	attempt, err1 := strconv.Atoi(f[5])
	exp, err2 := strconv.ParseInt(f[6], 10, 64)
	if err1 != nil || err2 != nil {
		return Link{}, ErrLinkMalformed
	}
	l := Link{Action: f[1], Org: f[2], Referral: f[3], Placement: f[4], Attempt: attempt, Expires: time.Unix(exp, 0).UTC()}
	if !l.valid() {
		return Link{}, ErrLinkMalformed
	}
	if !s.now().Before(l.Expires) {
		return l, ErrLinkExpired
	}
	return l, nil
}
