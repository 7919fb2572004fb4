// Package seal seals and opens case envelopes: the names, contact details,
// safe-contact instructions and case notes that travel only in a
// referral.handover event, encrypted with age (X25519) to the public
// recipient that the accepting organisation publishes in the directory.
//
// The referring side calls [Seal]; the accepting side calls [Open] with the
// organisation's identity (private key). The routing service only forwards
// the ciphertext: it never holds an identity and never calls [Open].
package seal

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"filippo.io/age"
	"filippo.io/age/armor"
)

// MaxPlaintext is the largest case file that can be sealed. The armored
// ciphertext of this many bytes stays below the handover payload limit of
// the event contract (256 KiB).
const MaxPlaintext = 180 * 1024

// Errors returned by this package.
var (
	ErrRecipient = errors.New("seal: invalid age recipient")
	ErrIdentity  = errors.New("seal: invalid age identity")
	ErrTooLarge  = errors.New("seal: case file too large")
	ErrNotForYou = errors.New("seal: envelope is not sealed to this identity")
	ErrMalformed = errors.New("seal: malformed envelope")
)

// Key is an organisation's age key pair. Identity is secret ("AGE-SECRET-KEY-1..."),
// Recipient is public ("age1...") and goes into the directory.
type Key struct {
	Identity  string
	Recipient string
}

// GenerateKey returns a new X25519 key pair.
func GenerateKey() (Key, error) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return Key{}, fmt.Errorf("seal: generate key: %w", err)
	}
	return Key{Identity: id.String(), Recipient: id.Recipient().String()}, nil
}

// Seal encrypts plaintext to recipient and returns the ASCII-armored
// envelope. It returns ErrRecipient for a recipient that does not parse and
// ErrTooLarge for plaintext over MaxPlaintext.
func Seal(recipient string, plaintext []byte) (string, error) {
	if len(plaintext) > MaxPlaintext {
		return "", fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(plaintext), MaxPlaintext)
	}
	r, err := age.ParseX25519Recipient(strings.TrimSpace(recipient))
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrRecipient, err)
	}
	var buf bytes.Buffer
	aw := armor.NewWriter(&buf)
	w, err := age.Encrypt(aw, r)
	if err != nil {
		return "", fmt.Errorf("seal: encrypt: %w", err)
	}
	if _, err := w.Write(plaintext); err != nil {
		return "", fmt.Errorf("seal: encrypt: %w", err)
	}
	if err := w.Close(); err != nil {
		return "", fmt.Errorf("seal: encrypt: %w", err)
	}
	if err := aw.Close(); err != nil {
		return "", fmt.Errorf("seal: armor: %w", err)
	}
	return buf.String(), nil
}

// Open decrypts an armored envelope with identity. It returns ErrIdentity
// for an identity that does not parse, ErrNotForYou when the envelope was
// sealed to someone else, and ErrMalformed for anything that is not an
// age envelope.
func Open(identity, envelope string) ([]byte, error) {
	id, err := age.ParseX25519Identity(strings.TrimSpace(identity))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrIdentity, err)
	}
	r, err := age.Decrypt(armor.NewReader(strings.NewReader(envelope)), id)
	if err != nil {
		var noMatch *age.NoIdentityMatchError
		if errors.As(err, &noMatch) {
			return nil, ErrNotForYou
		}
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	out, err := io.ReadAll(io.LimitReader(r, MaxPlaintext+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if len(out) > MaxPlaintext {
		return nil, ErrTooLarge
	}
	return out, nil
}

// ParseIdentityFile reads an identity from the contents of an age key file
// (as written by age-keygen or [Key.File]): comment lines are skipped.
func ParseIdentityFile(b []byte) (string, error) {
	for line := range strings.Lines(string(b)) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if _, err := age.ParseX25519Identity(line); err != nil {
			return "", fmt.Errorf("%w: %w", ErrIdentity, err)
		}
		return line, nil
	}
	return "", fmt.Errorf("%w: no identity in file", ErrIdentity)
}

// File returns the key in age-keygen's file format, for writing with mode 0600.
func (k Key) File() []byte {
	return []byte("# public key: " + k.Recipient + "\n" + k.Identity + "\n")
}
