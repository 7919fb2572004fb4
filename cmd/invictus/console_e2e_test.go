package main

import (
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestServeConsole is the README's console walk-through on the real
// binary: an administrator invites a caseworker with `invictus user add`
// on the running node, the caseworker opens the link, chooses her
// password, signs in, sets up her second factor and reaches the
// assessment form.
func TestServeConsole(t *testing.T) {
	t.Parallel()
	data := filepath.Join(t.TempDir(), "data")
	n := startNode(t, data)
	base := "http://" + n.HTTP

	get := consoleAs(t, base, data, "ana", "pt.apav", "caseworker")
	if status, body := get("/console/en/assess"); status != http.StatusOK || !strings.Contains(body, `id="assess-form"`) {
		t.Fatalf("assess: %d", status)
	}
	code, out, _ := runArgs(t, "user", "list", "--data", data)
	if code != exitOK || !strings.Contains(out, "ana") || !strings.Contains(out, "yes") {
		t.Errorf("user list after the first sign-in: %s", out)
	}
	if code := n.stop(); code != 0 {
		t.Errorf("exit code %d\n%s", code, n.stderr)
	}
}

// consoleAs invites name to org's console with `invictus user add` on the
// running node at base, takes the invitation, signs in with a second
// factor and returns a GET of console paths as that person.
func consoleAs(t *testing.T, base, data, name, org, role string) func(path string) (int, string) {
	t.Helper()
	code, out, errOut := runArgs(t, "user", "add", name, "--org", org, "--role", role, "--data", data, "--base-url", base)
	if code != exitOK {
		t.Fatalf("user add %s: exit %d: %s", name, code, errOut)
	}
	link := regexp.MustCompile(`https?://\S+/console/invite/\S+`).FindString(out)
	if link == "" {
		t.Fatalf("no invitation link in %q", out)
	}
	c := newConsoleClient(t, base)
	if status, _ := c.do(http.MethodGet, link, nil); status != http.StatusOK {
		t.Fatalf("invitation page of %s: %d", name, status)
	}
	pw := "a sentence " + name + " remembers"
	if status, body := c.do(http.MethodPost, "/console/en/invite/"+link[strings.LastIndex(link, "/")+1:], url.Values{"password": {pw}, "password2": {pw}}); status != http.StatusOK || !strings.Contains(body, `id="signin-form"`) {
		t.Fatalf("redeem of %s: %d", name, status)
	}
	if status, body := c.signInFirst(name, pw); status != http.StatusOK || !strings.Contains(body, `id="who"`) {
		t.Fatalf("enrol of %s: %d", name, status)
	}
	return func(path string) (int, string) { return c.do(http.MethodGet, path, nil) }
}
