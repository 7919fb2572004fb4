package httpapi_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/invictus-network/invictus/adapters/httpapi"
	"github.com/invictus-network/invictus/events"
)

// receiver is a webhook receiver that answers the first fail requests
// with 503 and checks the signature of the others with VerifyWebhook.
type receiver struct {
	srv  *httptest.Server
	fail int

	mu       sync.Mutex
	secret   string
	requests []received
}

// received is one request the receiver got.
type received struct {
	header   http.Header
	body     []byte
	verified error
	answered int
}

func newReceiver(t *testing.T, fail int) *receiver {
	rc := &receiver{fail: fail}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		defer rc.mu.Unlock()
		rec := received{header: r.Header.Clone(), body: body, verified: httpapi.VerifyWebhook(rc.secret, r.Header, body, time.Minute)}
		switch {
		case len(rc.requests) < rc.fail:
			rec.answered = http.StatusServiceUnavailable
		case rec.verified != nil:
			rec.answered = http.StatusUnauthorized
		default:
			rec.answered = http.StatusNoContent
		}
		rc.requests = append(rc.requests, rec)
		w.WriteHeader(rec.answered)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) setSecret(s string) {
	rc.mu.Lock()
	rc.secret = s
	rc.mu.Unlock()
}

func (rc *receiver) got() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.requests...)
}

func TestWebhookDeliveryIsSignedAndRetried(t *testing.T) {
	t.Parallel()
	b := setup(t, options{router: true})
	rc := newReceiver(t, 1)
	tok := b.orgToken(orgA1)

	r := b.postJSON("/v1/webhooks", tok, map[string]string{"url": rc.srv.URL + "/hook", "description": "case system"})
	var hook httpapi.Webhook
	r.decode(t, &hook)
	if r.status != http.StatusCreated || !strings.HasPrefix(hook.Secret, "whsec_") || hook.Org != orgA1 ||
		r.header.Get("Location") != "/v1/webhooks/"+hook.ID {
		t.Fatalf("register: status %d %s", r.status, r.body)
	}
	rc.setSecret(hook.Secret)

	id := b.refer()
	b.eventually("a verified delivery", func() bool {
		got := rc.got()
		return len(got) >= 2 && got[1].answered == http.StatusNoContent
	})
	got := rc.got()
	first, second := got[0], got[1]
	if first.answered != http.StatusServiceUnavailable || second.verified != nil {
		t.Fatalf("first answered %d, second verified %v", first.answered, second.verified)
	}
	if a, b := first.header.Get("webhook-id"), second.header.Get("webhook-id"); a == "" || a != b {
		t.Fatalf("webhook-id %q then %q: a retry must keep the id", a, b)
	}
	h := second.header
	if h.Get("Ce-Type") != events.TypeReferralOffered || h.Get("Ce-Subject") != id || h.Get("Ce-Source") != events.SourceRouting ||
		!strings.HasPrefix(h.Get("Content-Type"), "application/json") || !strings.Contains(string(second.body), `"organisation":"pt.a1"`) {
		t.Fatalf("delivery is not the offer as a binary-mode CloudEvent: %v %s", h, second.body)
	}
	if !strings.HasPrefix(h.Get("webhook-signature"), "v1,") {
		t.Fatalf("webhook-signature %q", h.Get("webhook-signature"))
	}

	// A tampered body or another secret does not verify.
	tampered := append([]byte(nil), second.body...)
	tampered[0] = ' '
	if err := httpapi.VerifyWebhook(hook.Secret, h, tampered, time.Minute); err == nil {
		t.Fatal("a tampered body verifies")
	}
	other, _ := httpapi.NewWebhookSecret()
	if err := httpapi.VerifyWebhook(other, h, second.body, time.Minute); err == nil {
		t.Fatal("another secret verifies")
	}

	// The delivery log, newest first.
	var log struct {
		Deliveries []httpapi.WebhookAttempt `json:"deliveries"`
	}
	b.eventually("two log entries", func() bool {
		b.get("/v1/webhooks/"+hook.ID+"/deliveries", tok).decode(t, &log)
		return len(log.Deliveries) >= 2
	})
	d0, d1 := log.Deliveries[0], log.Deliveries[1]
	if d0.Result != httpapi.ResultDelivered || d0.Attempt != 2 || d0.StatusCode != http.StatusNoContent ||
		d1.Result != httpapi.ResultFailed || d1.Attempt != 1 || d1.StatusCode != http.StatusServiceUnavailable || d1.NextAttemptAt == nil ||
		d0.MessageID != d1.MessageID || d0.EventType != events.TypeReferralOffered || d0.Referral != id {
		t.Fatalf("log: %+v", log.Deliveries)
	}

	// List and read without the secret; another organisation sees nothing.
	r = b.get("/v1/webhooks", tok)
	var list struct {
		Webhooks []httpapi.Webhook `json:"webhooks"`
	}
	r.decode(t, &list)
	if len(list.Webhooks) != 1 || list.Webhooks[0].ID != hook.ID || list.Webhooks[0].Secret != "" || strings.Contains(string(r.body), "whsec_") {
		t.Fatalf("list: %s", r.body)
	}
	if r := b.get("/v1/webhooks/"+hook.ID, tok); r.status != http.StatusOK || strings.Contains(string(r.body), "whsec_") {
		t.Fatalf("get: status %d %s", r.status, r.body)
	}
	for _, path := range []string{"/v1/webhooks/" + hook.ID, "/v1/webhooks/" + hook.ID + "/deliveries"} {
		if r := b.get(path, b.orgToken(orgA2)); r.status != http.StatusNotFound {
			t.Errorf("a2 GET %s: status %d, want 404", path, r.status)
		}
	}
	if r := b.do(http.MethodDelete, "/v1/webhooks/"+hook.ID, b.orgToken(orgA2), nil, nil); r.status != http.StatusNotFound {
		t.Errorf("a2 DELETE: status %d, want 404", r.status)
	}

	// Deleted: gone from the list, its log too.
	if r := b.do(http.MethodDelete, "/v1/webhooks/"+hook.ID, tok, nil, nil); r.status != http.StatusNoContent {
		t.Fatalf("delete: status %d %s", r.status, r.body)
	}
	b.get("/v1/webhooks", tok).decode(t, &list)
	if len(list.Webhooks) != 0 {
		t.Fatalf("after delete: %+v", list.Webhooks)
	}
	if r := b.get("/v1/webhooks/"+hook.ID+"/deliveries", tok); r.status != http.StatusNotFound {
		t.Fatalf("log after delete: status %d", r.status)
	}
}

func TestWebhookGivesUpAfterBoundedAttempts(t *testing.T) {
	t.Parallel()
	b := setup(t, options{router: true, cfg: httpapi.Config{Webhooks: httpapi.WebhookConfig{Attempts: 3}}})
	rc := newReceiver(t, 1000) // never succeeds
	tok := b.orgToken(orgRef)
	var hook httpapi.Webhook
	b.postJSON("/v1/webhooks", tok, map[string]string{"url": rc.srv.URL}).decode(t, &hook)
	rc.setSecret(hook.Secret)

	b.refer() // the referrer receives planned, then its copy of the offer
	var log struct {
		Deliveries []httpapi.WebhookAttempt `json:"deliveries"`
	}
	b.eventually("both messages given up", func() bool {
		b.get("/v1/webhooks/"+hook.ID+"/deliveries", tok).decode(t, &log)
		return len(log.Deliveries) >= 6
	})
	// Oldest first: three attempts of planned, then three of the offer.
	n := len(log.Deliveries)
	byAge := log.Deliveries[n-6:]
	for i, j := 0, len(byAge)-1; i < j; i, j = i+1, j-1 {
		byAge[i], byAge[j] = byAge[j], byAge[i]
	}
	wantTypes := []string{events.TypeReferralPlanned, events.TypeReferralPlanned, events.TypeReferralPlanned,
		events.TypeReferralOffered, events.TypeReferralOffered, events.TypeReferralOffered}
	for i, a := range byAge {
		wantResult := httpapi.ResultFailed
		if i%3 == 2 {
			wantResult = httpapi.ResultGaveUp
		}
		if a.EventType != wantTypes[i] || a.Attempt != i%3+1 || a.Result != wantResult {
			t.Fatalf("attempt %d: %+v; want %s attempt %d %s", i, a, wantTypes[i], i%3+1, wantResult)
		}
	}
	if len(rc.got()) < 6 {
		t.Fatalf("receiver got %d requests, want 6", len(rc.got()))
	}
}

func TestWebhookRegistrationErrors(t *testing.T) {
	t.Parallel()
	b := setup(t, options{httpsOnly: true})
	tok := b.orgToken(orgA1)
	tests := []struct {
		name   string
		body   string
		ct     string
		status int
		ptr    string
	}{
		{"http URL", `{"url":"http://example.org/hook"}`, "application/json", 422, "/url"},
		{"no URL", `{}`, "application/json", 422, "/url"},
		{"relative URL", `{"url":"/hook"}`, "application/json", 422, "/url"},
		{"user in URL", `{"url":"https://a:b@example.org/"}`, "application/json", 422, "/url"},
		{"unknown member", `{"url":"https://example.org/","secret":"mine"}`, "application/json", 422, "/secret"},
		{"wrong type", `{"url":5}`, "application/json", 422, "/url"},
		{"malformed", `{"url":`, "application/json", 400, ""},
		{"not JSON", `url=https://example.org/`, "application/x-www-form-urlencoded", 415, ""},
		{"too large", `{"url":"https://example.org/","description":"` + strings.Repeat("x", 70<<10) + `"}`, "application/json", 413, ""},
	}
	for _, tc := range tests {
		r := b.do(http.MethodPost, "/v1/webhooks", tok, []byte(tc.body), http.Header{"Content-Type": {tc.ct}})
		if r.status != tc.status {
			t.Errorf("%s: status %d, want %d: %s", tc.name, r.status, tc.status, r.body)
			continue
		}
		if tc.ptr != "" && r.errors(t)[0].Pointer != tc.ptr {
			t.Errorf("%s: %s; want pointer %s", tc.name, r.body, tc.ptr)
		}
	}

	// At most five per organisation.
	for i := range httpapi.WebhooksPerOrgDefault {
		if r := b.postJSON("/v1/webhooks", tok, map[string]string{"url": "https://example.org/" + string(rune('a'+i))}); r.status != http.StatusCreated {
			t.Fatalf("webhook %d: status %d %s", i, r.status, r.body)
		}
	}
	if r := b.postJSON("/v1/webhooks", tok, map[string]string{"url": "https://example.org/f"}); r.status != http.StatusConflict || r.errors(t)[0].Code != httpapi.CodeConflict {
		t.Fatalf("sixth webhook: status %d %s; want 409", r.status, r.body)
	}
	if r := b.get("/v1/webhooks/wh_nope", tok); r.status != http.StatusNotFound {
		t.Fatalf("malformed id: status %d", r.status)
	}
}
