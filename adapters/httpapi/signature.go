package httpapi

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Standard Webhooks (https://www.standardwebhooks.com) headers and
// formats, as the API signs every webhook request.
const (
	// HeaderWebhookID is the message id, the same on every retry of one
	// message: receivers use it to drop duplicates.
	HeaderWebhookID = "webhook-id"
	// HeaderWebhookTimestamp is the time of the attempt, in Unix seconds.
	HeaderWebhookTimestamp = "webhook-timestamp"
	// HeaderWebhookSignature holds space-separated signatures
	// "v1,<base64 HMAC-SHA256>".
	HeaderWebhookSignature = "webhook-signature"
	// WebhookSecretPrefix starts every webhook secret; the rest is the
	// base64 of the HMAC key.
	WebhookSecretPrefix = "whsec_"
	// webhookSecretBytes is the size of a generated HMAC key.
	webhookSecretBytes = 32
	// WebhookToleranceDefault is the usual tolerance of VerifyWebhook:
	// how far a timestamp may be from the receiver's clock.
	WebhookToleranceDefault = 5 * time.Minute
)

// Errors of [VerifyWebhook].
var (
	// ErrWebhookSignature reports a missing or wrong signature, or a
	// request without the webhook headers.
	ErrWebhookSignature = errors.New("httpapi: webhook signature does not verify")
	// ErrWebhookTimestamp reports a timestamp outside the tolerance: a
	// replayed or delayed request.
	ErrWebhookTimestamp = errors.New("httpapi: webhook timestamp out of tolerance")
	// ErrWebhookSecret reports a secret that is not "whsec_<base64>".
	ErrWebhookSecret = errors.New("httpapi: malformed webhook secret")
)

// NewWebhookSecret returns a new random secret, "whsec_<base64 of 32 bytes>".
func NewWebhookSecret() (string, error) {
	var key [webhookSecretBytes]byte
	if _, err := rand.Read(key[:]); err != nil {
		return "", fmt.Errorf("httpapi: webhook secret: %w", err)
	}
	return WebhookSecretPrefix + base64.StdEncoding.EncodeToString(key[:]), nil
}

// webhookKey returns the HMAC key of a secret.
func webhookKey(secret string) ([]byte, error) {
	b64, ok := strings.CutPrefix(secret, WebhookSecretPrefix)
	if !ok {
		return nil, fmt.Errorf("%w: no %s prefix", ErrWebhookSecret, WebhookSecretPrefix)
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(key) == 0 {
		return nil, fmt.Errorf("%w: not base64 after the prefix", ErrWebhookSecret)
	}
	return key, nil
}

// signature returns "v1,<base64 HMAC-SHA256(key, id.timestamp.body)>".
func signature(key []byte, id string, ts int64, body []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write([]byte(strconv.FormatInt(ts, 10)))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// SignWebhook sets the Standard Webhooks headers of a request carrying
// body: webhook-id id, webhook-timestamp at, and webhook-signature
// "v1,<base64 HMAC-SHA256 of id.timestamp.body>" keyed with the
// base64-decoded part of secret after "whsec_". It returns an error
// wrapping ErrWebhookSecret for a malformed secret.
func SignWebhook(h http.Header, secret, id string, at time.Time, body []byte) error {
	key, err := webhookKey(secret)
	if err != nil {
		return err
	}
	ts := at.Unix()
	h.Set(HeaderWebhookID, id)
	h.Set(HeaderWebhookTimestamp, strconv.FormatInt(ts, 10))
	h.Set(HeaderWebhookSignature, signature(key, id, ts, body))
	return nil
}

// VerifyWebhook checks a webhook request as a receiver should, before
// acting on it: body is the raw request body, header its headers, secret
// the "whsec_..." secret given when the webhook was registered. It
// returns nil when one of the v1 signatures matches and the timestamp is
// within tolerance of the local clock (tolerance <= 0 means
// WebhookToleranceDefault). Errors wrap ErrWebhookSignature,
// ErrWebhookTimestamp or ErrWebhookSecret.
func VerifyWebhook(secret string, header http.Header, body []byte, tolerance time.Duration) error {
	return verifyWebhookAt(secret, header, body, tolerance, time.Now())
}

func verifyWebhookAt(secret string, header http.Header, body []byte, tolerance time.Duration, now time.Time) error {
	if tolerance <= 0 {
		tolerance = WebhookToleranceDefault
	}
	key, err := webhookKey(secret)
	if err != nil {
		return err
	}
	id := header.Get(HeaderWebhookID)
	tsText := header.Get(HeaderWebhookTimestamp)
	sigs := header.Get(HeaderWebhookSignature)
	if id == "" || tsText == "" || sigs == "" {
		return fmt.Errorf("%w: missing %s, %s or %s", ErrWebhookSignature, HeaderWebhookID, HeaderWebhookTimestamp, HeaderWebhookSignature)
	}
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %s %q is not Unix seconds", ErrWebhookTimestamp, HeaderWebhookTimestamp, tsText)
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: %s is %s away", ErrWebhookTimestamp, HeaderWebhookTimestamp, d.Round(time.Second))
	}
	want := []byte(signature(key, id, ts, body))
	for _, sig := range strings.Fields(sigs) {
		if hmac.Equal([]byte(sig), want) {
			return nil
		}
	}
	return fmt.Errorf("%w: no v1 signature matches", ErrWebhookSignature)
}
