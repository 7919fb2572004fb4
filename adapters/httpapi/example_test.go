package httpapi_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/invictus-network/invictus/adapters/httpapi"
)

// A webhook receiver checks every request before acting on it, with the
// secret it was given when it registered the webhook.
func ExampleVerifyWebhook() {
	secret, _ := httpapi.NewWebhookSecret() // from POST /v1/webhooks

	receive := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if err := httpapi.VerifyWebhook(secret, r.Header, body, 5*time.Minute); err != nil {
			w.WriteHeader(http.StatusUnauthorized) // not from the network: drop it
			return
		}
		// Drop duplicates by the webhook-id header, then handle the
		// CloudEvent: its type is the Ce-Type header, its payload the body.
		fmt.Println("verified", r.Header.Get("Ce-Type"))
		w.WriteHeader(http.StatusNoContent)
	})

	// What the dispatcher sends, signed with the same secret.
	body := `{"placement":"p1"}`
	req := httptest.NewRequest(http.MethodPost, "/hook", strings.NewReader(body))
	req.Header.Set("Ce-Type", "invictus.referral.accepted.v1")
	_ = httpapi.SignWebhook(req.Header, secret, "0195f0c2-7a3e-7b41-9c2d-5e8f1a2b3c4d", time.Now(), []byte(body))
	rec := httptest.NewRecorder()
	receive.ServeHTTP(rec, req)

	// The same request with another body is refused.
	forged := httptest.NewRequest(http.MethodPost, "/hook", strings.NewReader(`{"placement":"p2"}`))
	forged.Header = req.Header.Clone()
	rec2 := httptest.NewRecorder()
	receive.ServeHTTP(rec2, forged)
	fmt.Println(rec.Code, rec2.Code)
	// Output:
	// verified invictus.referral.accepted.v1
	// 204 401
}
