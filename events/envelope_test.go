package events_test

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"filippo.io/age"
	"filippo.io/age/armor"

	"github.com/invictus-network/invictus/events"
)

// seal encrypts plaintext to recipients and returns the armored file, or
// the binary file when armored is false.
func sealFor(t testing.TB, plaintext string, armored bool, recipients ...age.Recipient) string {
	t.Helper()
	var buf bytes.Buffer
	var dst io.WriteCloser = nopCloser{&buf}
	if armored {
		dst = armor.NewWriter(&buf)
	}
	w, err := age.Encrypt(dst, recipients...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(w, plaintext); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// armorOf armors b as filippo.io/age/armor does.
func armorOf(t testing.TB, b []byte) string {
	t.Helper()
	var buf bytes.Buffer
	w := armor.NewWriter(&buf)
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// envelopeAttacks are handovers that are not sealed envelopes, each with
// the case file in clear somewhere, and the valid envelopes they are made
// from. The same table runs over NATS and HTTP in adapters/natsjs.
func envelopeAttacks(t testing.TB) (valid []string, attacks map[string]string) {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	const caseFile = "Name: Ana Exemplo\nPhone: +351 900 000 000\nSafe to call after 18:00\n"
	sealed := sealFor(t, caseFile, false, id.Recipient())
	hdr, err := age.ExtractHeader(strings.NewReader(sealed))
	if err != nil {
		t.Fatal(err)
	}
	scrypt, err := age.NewScryptRecipient("correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	scrypt.SetWorkFactor(10)
	second, _ := age.GenerateX25519Identity()
	valid = []string{
		sealFor(t, caseFile, true, id.Recipient()),
		sealFor(t, "", true, id.Recipient()),
		sealFor(t, caseFile, true, id.Recipient(), second.Recipient()),
		sealFor(t, strings.Repeat("x", 100_000), true, id.Recipient()),
	}
	good := valid[0]
	attacks = map[string]string{
		"plain text in the armor lines":       events.AgeArmorHeader + "\n" + caseFile + "-----END AGE ENCRYPTED FILE-----\n",
		"armor header then plain text":        events.AgeArmorHeader + "\n" + caseFile,
		"armored plain text":                  armorOf(t, []byte(caseFile)),
		"armored intro then plain text":       armorOf(t, []byte("age-encryption.org/v1\n"+caseFile)),
		"header without payload":              armorOf(t, []byte(hdr)),
		"header and a short payload":          armorOf(t, append([]byte(hdr), "0123456789abcdef0123"...)),
		"header then plain text":              armorOf(t, append([]byte(hdr), caseFile...)[:len(hdr)+len(caseFile)]),
		"passphrase-sealed, no X25519 stanza": sealFor(t, caseFile, true, scrypt),
		"binary age file, not armored":        sealed,
		"plain text before the armor":         caseFile + good,
		"plain text after the armor":          good + caseFile,
		"leading white space":                 "\n" + good,
		"no end line":                         strings.TrimSuffix(good, "-----END AGE ENCRYPTED FILE-----\n"),
		"a line too long":                     strings.Replace(good, "\n", "", 2),
		"base64 with white space":             strings.Replace(good, "\n", " \n", 3),
		"empty":                               "",
		"too large":                           events.AgeArmorHeader + "\n" + strings.Repeat(caseFile, events.MaxEnvelopeSize/len(caseFile)+1),
	}
	return valid, attacks
}

func TestCheckEnvelope(t *testing.T) {
	t.Parallel()
	valid, attacks := envelopeAttacks(t)
	valid = append(valid, events.SamplePayload(events.TypeReferralHandover).(*events.Handover).Envelope)
	for i, env := range valid {
		if err := events.CheckEnvelope(env); err != nil {
			t.Errorf("valid envelope %d refused: %v", i, err)
		}
	}
	refused := 0
	for name, env := range attacks {
		err := events.CheckEnvelope(env)
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		refused++
		if strings.Contains(err.Error(), "Ana") || strings.Contains(err.Error(), "900") {
			t.Errorf("%s: the error quotes the case file: %v", name, err)
		}
		// Decode refuses the handover with the reason, at /data/envelope.
		h := &events.Handover{Placement: "p1", Recipient: "age13wswxm896mvzulrrqqymgpr3ts452928df5969pcjuw06f6ur35q0kdcky", Envelope: env}
		ve := wantProblem(t, events.ValidatePayload(h), events.ErrInvalid, "/data/envelope")
		if b, _ := json.Marshal(ve); bytes.Contains(b, []byte("Ana")) {
			t.Errorf("%s: the problem quotes the case file: %s", name, b)
		}
	}
	t.Logf("envelope attacks: %d tried, %d refused; %d valid envelopes accepted", len(attacks), refused, len(valid))
}

// FuzzCheckEnvelope: CheckEnvelope never panics, never quotes its input,
// and accepts only what age's own armor reader and header parser accept,
// with a payload after the header.
func FuzzCheckEnvelope(f *testing.F) {
	valid, attacks := envelopeAttacks(f)
	for _, v := range valid[:2] {
		f.Add(v)
	}
	// The reasons CheckEnvelope gives: fixed texts, quoting nothing.
	reasons := map[string]bool{}
	for _, a := range attacks {
		f.Add(a)
		reasons[events.CheckEnvelope(a).Error()] = true
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := events.CheckEnvelope(s)
		if err != nil {
			if !reasons[err.Error()] {
				t.Fatalf("a reason outside the fixed set (does it quote the input?): %v", err)
			}
			return
		}
		bin, rerr := io.ReadAll(armor.NewReader(strings.NewReader(s)))
		if rerr != nil {
			t.Fatalf("accepted, but the armor does not decode: %v", rerr)
		}
		hdr, herr := age.ExtractHeader(bytes.NewReader(bin))
		if herr != nil || len(bin) < len(hdr)+32 || !bytes.Contains(hdr, []byte("\n-> X25519 ")) {
			t.Fatalf("accepted, but header %q (%v) and %d bytes", hdr, herr, len(bin))
		}
	})
}
