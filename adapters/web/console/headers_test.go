package console_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestSecurityHeaders: every response of the console, a page or not,
// carries the security headers it shares with the public pages, with no
// geolocation, and is never stored.
func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, path := range []string{"/console/en/signin", "/console/static/none.js"} {
		res, err := http.Get(b.url + path)
		if err != nil {
			t.Fatal(err)
		}
		_ = res.Body.Close()
		h := res.Header
		for name, want := range map[string]string{
			"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY",
			"Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Resource-Policy": "same-origin", "Cache-Control": "no-store",
		} {
			if got := h.Get(name); got != want {
				t.Errorf("%s: %s %q, want %q", path, name, got, want)
			}
		}
		if p := h.Get("Permissions-Policy"); !strings.HasPrefix(p, "geolocation=(), camera=()") {
			t.Errorf("%s: Permissions-Policy %q", path, p)
		}
		if c := h.Get("Content-Security-Policy"); !strings.Contains(c, "default-src 'none'") || !strings.Contains(c, "frame-ancestors 'none'") {
			t.Errorf("%s: Content-Security-Policy %q", path, c)
		}
	}
}
