package events

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"strings"
	"unicode/utf8"

	"filippo.io/age"
	"filippo.io/age/armor"
)

// AgeArmorHeader starts every ASCII-armored age envelope.
const AgeArmorHeader = armor.Header

// MaxEnvelopeSize is the largest sealed envelope of a referral.handover, in
// bytes of armored text.
const MaxEnvelopeSize = 262144

// Structure of an age v1 file (age-encryption.org/v1): a text header (the
// version line, one stanza per recipient, the MAC line) and a binary
// payload of a 16-byte nonce followed by chunks of ciphertext, each with a
// 16-byte tag; even an empty plaintext makes one chunk.
const (
	ageIntro          = "age-encryption.org/v1\n"
	ageStanzaPrefix   = "-> "
	ageX25519         = "X25519"
	ageMinPayload     = 16 + 16
	ageX25519ShareLen = 32
	ageX25519BodyLen  = 32
)

// Reasons CheckEnvelope gives. None quotes the envelope: an envelope that
// is not one may be a case file sent unsealed by mistake.
var (
	errEnvelopeArmor    = errors.New("envelope must be an ASCII-armored age file (" + AgeArmorHeader + " ... -----END AGE ENCRYPTED FILE-----) with valid base64 lines; seal the case file first")
	errEnvelopeHeader   = errors.New("envelope is not an age v1 file: its header does not parse; seal the case file first")
	errEnvelopeX25519   = errors.New("envelope has no well-formed X25519 recipient stanza; seal it to the accepting organisation's age recipient")
	errEnvelopePayload  = errors.New("envelope has no encrypted payload after its header")
	errEnvelopeClear    = errors.New("envelope's payload is readable text, not ciphertext; seal the case file first")
	errEnvelopeTooLarge = errors.New("envelope is too large")
)

// CheckEnvelope reports whether s is structurally a sealed envelope, without
// opening it (no key is needed): an ASCII-armored age v1 file (armor as
// filippo.io/age/armor writes and reads it, strictly: canonical base64 in
// 64-column lines, nothing but white space after the end line), whose header
// parses with filippo.io/age's own parser and holds at least one X25519
// recipient stanza (one 32-byte ephemeral share, a 32-byte wrapped file key),
// followed by a payload of at least a nonce and one authenticated chunk
// that is not readable text.
//
// A plain text dressed in the armor lines, a header without recipients or
// payload, or anything else is refused. The error says which rule failed
// and never quotes s.
func CheckEnvelope(s string) error {
	if len(s) > MaxEnvelopeSize {
		return errEnvelopeTooLarge
	}
	if !strings.HasPrefix(s, AgeArmorHeader+"\n") && !strings.HasPrefix(s, AgeArmorHeader+"\r\n") {
		return errEnvelopeArmor
	}
	bin, err := io.ReadAll(armor.NewReader(strings.NewReader(s)))
	if err != nil {
		return errEnvelopeArmor
	}
	if !bytes.HasPrefix(bin, []byte(ageIntro)) {
		return errEnvelopeHeader
	}
	hdr, err := age.ExtractHeader(bytes.NewReader(bin))
	if err != nil || !bytes.HasPrefix(bin, hdr) {
		// ExtractHeader re-encodes the header it parsed; age's parser
		// accepts only the canonical encoding, so a header that parsed is
		// a prefix of the file.
		return errEnvelopeHeader
	}
	if !hasX25519Stanza(hdr) {
		return errEnvelopeX25519
	}
	if len(bin)-len(hdr) < ageMinPayload {
		return errEnvelopePayload
	}
	if looksLikeText(bin[len(hdr)+16:]) {
		return errEnvelopeClear
	}
	return nil
}

// looksLikeText reports whether b, which should be ciphertext, is text: valid
// UTF-8 of which at least 80% are printable ASCII bytes. Ciphertext is
// uniformly random, and random bytes pass only by a chance far below one
// in a million even at the shortest payload (16 bytes), while a case file
// pasted after a real header passes every time.
func looksLikeText(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	printable := 0
	for _, c := range b {
		if c >= 0x20 && c < 0x7f || c == '\n' || c == '\r' || c == '\t' {
			printable++
		}
	}
	return printable*5 >= len(b)*4
}

// hasX25519Stanza reports whether the canonical age header hdr (as
// age.ExtractHeader returns it) holds a well-formed X25519 stanza: the
// line "-> X25519 <share>", the share 32 bytes in unpadded base64, and a
// body of 32 bytes (one line of 43 characters, shorter than a full line,
// so it ends the stanza).
func hasX25519Stanza(hdr []byte) bool {
	lines := strings.Split(strings.TrimSuffix(string(hdr), "\n"), "\n")
	b64 := base64.RawStdEncoding.Strict()
	for i, line := range lines {
		args, ok := strings.CutPrefix(line, ageStanzaPrefix)
		if !ok {
			continue
		}
		f := strings.Split(args, " ")
		if len(f) != 2 || f[0] != ageX25519 || i+1 >= len(lines) {
			continue
		}
		share, err := b64.DecodeString(f[1])
		if err != nil || len(share) != ageX25519ShareLen {
			continue
		}
		body, err := b64.DecodeString(lines[i+1])
		if err == nil && len(body) == ageX25519BodyLen {
			return true
		}
	}
	return false
}
