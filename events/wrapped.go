package events

import (
	"bytes"
	"errors"
	"io"
	"strings"

	"filippo.io/age"
	"filippo.io/age/armor"
)

// WrappedIdentityMax bounds an organisation's armored, passphrase-wrapped
// age identity.
const WrappedIdentityMax = 4 << 10

// CheckWrappedIdentity returns nil when s is an ASCII-armored age file of
// at most [WrappedIdentityMax] bytes whose one recipient stanza is a
// passphrase (scrypt): an organisation's identity wrapped so that the
// node that keeps it cannot open it. Otherwise the error says what is
// wrong. It never opens the file.
func CheckWrappedIdentity(s string) error {
	switch {
	case s == "":
		return errors.New("wrapped_identity is required")
	case len(s) > WrappedIdentityMax:
		return errors.New("wrapped_identity is too large for a wrapped key file")
	case strings.Contains(strings.ToUpper(s), "AGE-SECRET-KEY-"):
		return errors.New("this is a plain identity: wrap it with a passphrase in the browser first; the server never takes an identity it could read")
	}
	bin, err := io.ReadAll(armor.NewReader(strings.NewReader(strings.TrimSpace(s))))
	if err != nil {
		return errors.New("wrapped_identity must be an ASCII-armored age file (-----BEGIN AGE ENCRYPTED FILE-----)")
	}
	hdr, err := age.ExtractHeader(bytes.NewReader(bin))
	if err != nil {
		return errors.New("wrapped_identity is not an age file")
	}
	var stanzas []string
	for line := range strings.Lines(string(hdr)) {
		if rest, ok := strings.CutPrefix(line, "-> "); ok {
			typ, _, _ := strings.Cut(strings.TrimSpace(rest), " ")
			stanzas = append(stanzas, typ)
		}
	}
	if len(stanzas) != 1 || stanzas[0] != "scrypt" {
		return errors.New("wrapped_identity must be encrypted with a passphrase only (one scrypt stanza), not to a recipient")
	}
	if len(bin)-len(hdr) < 16+16 {
		return errors.New("wrapped_identity has no payload")
	}
	return nil
}
