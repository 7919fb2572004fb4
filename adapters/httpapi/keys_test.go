package httpapi_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"filippo.io/age"
	"filippo.io/age/armor"

	"github.com/invictus-network/invictus/adapters/httpapi"
	"github.com/invictus-network/invictus/seal"
)

// wrapKey encrypts a key file to r and armors it.
func wrapKey(t *testing.T, file []byte, r age.Recipient) string {
	t.Helper()
	var buf bytes.Buffer
	aw := armor.NewWriter(&buf)
	w, err := age.Encrypt(aw, r)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(file); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := aw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// TestWrappedIdentity: an organisation stores its identity wrapped by a
// passphrase and reads it back; the server refuses a plain identity or
// one sealed to a recipient (nothing is stored then), and another
// organisation reads nothing.
func TestWrappedIdentity(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	key, err := seal.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	pass, err := age.NewScryptRecipient("correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	pass.SetWorkFactor(10)
	wrapped := wrapKey(t, key.File(), pass)
	other, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	tokA, tokB := b.orgToken(orgA1), b.orgToken(orgA2)
	put := func(tok string, body any) response {
		raw, _ := json.Marshal(body)
		return b.do(http.MethodPut, "/v1/keys/identity", tok, raw, http.Header{"Content-Type": {"application/json"}})
	}

	if r := b.get("/v1/keys/identity", tokA); r.status != http.StatusNotFound || !strings.Contains(string(r.body), "PUT /v1/keys/identity") {
		t.Fatalf("before: status %d %s", r.status, r.body)
	}
	for name, body := range map[string]any{
		"plain identity":   map[string]string{"wrapped_identity": string(key.File())},
		"to a recipient":   map[string]string{"wrapped_identity": wrapKey(t, key.File(), other.Recipient())},
		"not armored":      map[string]string{"wrapped_identity": "hello"},
		"empty":            map[string]string{"wrapped_identity": ""},
		"unknown member":   map[string]string{"wrapped_identity": wrapped, "identity": key.Identity},
		"too large":        map[string]string{"wrapped_identity": strings.Repeat("A", httpapi.WrappedIdentityMax+1)},
		"identity in text": map[string]string{"wrapped_identity": "-----BEGIN AGE ENCRYPTED FILE-----\n" + strings.ToLower(key.Identity)},
	} {
		r := put(tokA, body)
		if r.status < 400 || r.status >= 500 {
			t.Errorf("%s: status %d %s", name, r.status, r.body)
			continue
		}
		if p := r.errors(t); p[0].Message == "" {
			t.Errorf("%s: no message", name)
		}
		if strings.Contains(string(r.body), key.Identity) {
			t.Errorf("%s: the answer repeats the identity", name)
		}
	}
	if r := b.get("/v1/keys/identity", tokA); r.status != http.StatusNotFound {
		t.Fatalf("a refused PUT stored something: status %d", r.status)
	}
	if r := b.get("/v1/keys/identity", ""); r.status != http.StatusUnauthorized {
		t.Fatalf("without a token: status %d", r.status)
	}

	if r := put(tokA, map[string]string{"wrapped_identity": wrapped}); r.status != http.StatusOK {
		t.Fatalf("put: status %d %s", r.status, r.body)
	}
	r := b.get("/v1/keys/identity", tokA)
	var got httpapi.WrappedIdentity
	r.decode(t, &got)
	if r.status != http.StatusOK || got.WrappedIdentity != wrapped || got.UpdatedAt.IsZero() || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("get: status %d %+v", r.status, got)
	}
	// What the server holds opens with the passphrase, and only with it.
	id, err := age.NewScryptIdentity("correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	rd, err := age.Decrypt(armor.NewReader(strings.NewReader(got.WrappedIdentity)), id)
	if err != nil {
		t.Fatal(err)
	}
	var file bytes.Buffer
	if _, err := file.ReadFrom(rd); err != nil {
		t.Fatal(err)
	}
	if opened, err := seal.ParseIdentityFile(file.Bytes()); err != nil || opened != key.Identity {
		t.Fatalf("unwrapped %q, %v", opened, err)
	}
	if r := b.get("/v1/keys/identity", tokB); r.status != http.StatusNotFound {
		t.Fatalf("another organisation: status %d %s", r.status, r.body)
	}
}
