package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The example of the Standard Webhooks specification: a secret, a message
// id, a timestamp, a body and the signature every implementation computes.
const (
	swSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	swID        = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	swTimestamp = 1614265330
	swBody      = `{"test": 2432232314}`
	swSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func TestSignWebhookMatchesTheSpecification(t *testing.T) {
	t.Parallel()
	h := http.Header{}
	at := time.Unix(swTimestamp, 0)
	if err := SignWebhook(h, swSecret, swID, at, []byte(swBody)); err != nil {
		t.Fatal(err)
	}
	if got := h.Get(HeaderWebhookSignature); got != swSignature {
		t.Fatalf("signature %q, want %q", got, swSignature)
	}
	if h.Get(HeaderWebhookID) != swID || h.Get(HeaderWebhookTimestamp) != "1614265330" {
		t.Fatalf("headers %v", h)
	}
}

func TestVerifyWebhook(t *testing.T) {
	t.Parallel()
	at := time.Unix(swTimestamp, 0)
	signed := func() http.Header {
		h := http.Header{}
		if err := SignWebhook(h, swSecret, swID, at, []byte(swBody)); err != nil {
			t.Fatal(err)
		}
		return h
	}
	other, err := NewWebhookSecret()
	if err != nil || !strings.HasPrefix(other, WebhookSecretPrefix) || len(other) != len(WebhookSecretPrefix)+44 {
		t.Fatalf("NewWebhookSecret: %q %v", other, err)
	}
	tests := []struct {
		name   string
		secret string
		header func() http.Header
		body   string
		now    time.Time
		want   error
	}{
		{"valid", swSecret, signed, swBody, at.Add(time.Minute), nil},
		{"valid among several signatures", swSecret, func() http.Header {
			h := signed()
			h.Set(HeaderWebhookSignature, "v1,bm90IHRoaXMgb25l "+h.Get(HeaderWebhookSignature))
			return h
		}, swBody, at, nil},
		{"tampered body", swSecret, signed, `{"test": 2432232315}`, at, ErrWebhookSignature},
		{"another secret", other, signed, swBody, at, ErrWebhookSignature},
		{"another id", swSecret, func() http.Header {
			h := signed()
			h.Set(HeaderWebhookID, "msg_other")
			return h
		}, swBody, at, ErrWebhookSignature},
		{"no signature", swSecret, func() http.Header {
			h := signed()
			h.Del(HeaderWebhookSignature)
			return h
		}, swBody, at, ErrWebhookSignature},
		{"too old", swSecret, signed, swBody, at.Add(6 * time.Minute), ErrWebhookTimestamp},
		{"from the future", swSecret, signed, swBody, at.Add(-6 * time.Minute), ErrWebhookTimestamp},
		{"timestamp not a number", swSecret, func() http.Header {
			h := signed()
			h.Set(HeaderWebhookTimestamp, "yesterday")
			return h
		}, swBody, at, ErrWebhookTimestamp},
		{"malformed secret", "secret", signed, swBody, at, ErrWebhookSecret},
	}
	for _, tc := range tests {
		err := verifyWebhookAt(tc.secret, tc.header(), []byte(tc.body), 0, tc.now)
		if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestYAMLToJSONKeepsOrderAndTypes(t *testing.T) {
	t.Parallel()
	in := `
b: 1
a:
  - true
  - null
  - 2.5
  - "3"
  - '200': ok
    $ref: 'defs.json#/$defs/x'
  - $ref: '#/components/x'
  - $ref: https://example.org/s.json
anchor: &x {k: v}
alias: *x
`
	got, err := yamlToJSON([]byte(in), "/schemas/")
	if err != nil {
		t.Fatal(err)
	}
	want := `{"b":1,"a":[true,null,2.5,"3",{"200":"ok","$ref":"/schemas/defs.json#/$defs/x"},{"$ref":"#/components/x"},{"$ref":"https://example.org/s.json"}],"anchor":{"k":"v"},"alias":{"k":"v"}}`
	if string(got) != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if !json.Valid(got) {
		t.Fatal("not valid JSON")
	}
	if _, err := yamlToJSON([]byte("a: .inf"), ""); err == nil {
		t.Fatal("infinity converted")
	}
	if _, err := yamlToJSON([]byte("a: [b"), ""); err == nil {
		t.Fatal("malformed YAML converted")
	}
}
