package main

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
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
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	csrf := regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	var last string
	do := func(target string, form url.Values) (int, string) {
		t.Helper()
		if !strings.HasPrefix(target, "http") {
			target = base + target
		}
		var resp *http.Response
		var err error
		if form == nil {
			resp, err = hc.Get(target)
		} else {
			if m := csrf.FindStringSubmatch(last); m != nil {
				form.Set("csrf", m[1])
			}
			resp, err = hc.PostForm(target, form)
		}
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		last = string(b)
		return resp.StatusCode, last
	}
	do(link, nil)
	pw := "a sentence " + name + " remembers"
	if status, _ := do("/console/en/invite/"+link[strings.LastIndex(link, "/")+1:], url.Values{"password": {pw}, "password2": {pw}}); status != http.StatusOK {
		t.Fatalf("redeem: %d", status)
	}
	_, body := do("/console/en/signin", url.Values{"username": {name}, "password": {pw}})
	secret := regexp.MustCompile(`id="totp-secret">([A-Z2-7 ]+)<`).FindStringSubmatch(body)
	if secret == nil {
		t.Fatalf("sign-in of %s did not lead to the second factor's set-up", name)
	}
	otpCode, err := totp.GenerateCode(strings.ReplaceAll(secret[1], " ", ""), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if status, body := do("/console/en/enrol", url.Values{"code": {otpCode}}); status != http.StatusOK || !strings.Contains(body, `id="who"`) {
		t.Fatalf("enrol of %s: %d", name, status)
	}
	return func(path string) (int, string) { return do(path, nil) }
}
