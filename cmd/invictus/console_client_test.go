package main

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
)

// consoleClient is a person's browser without JavaScript on a node's
// console: cookies, and each form posted with the CSRF token of the last
// page read.
type consoleClient struct {
	t    *testing.T
	base string
	hc   *http.Client
	last string
}

var (
	csrfField  = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	totpSecret = regexp.MustCompile(`id="totp-secret">([A-Z2-7 ]+)<`)
)

func newConsoleClient(t *testing.T, base string) *consoleClient {
	jar, _ := cookiejar.New(nil)
	return &consoleClient{t: t, base: base, hc: &http.Client{Jar: jar, Timeout: time.Minute}}
}

// do gets target (a path of the node, or a whole URL), or posts form to
// it, and returns the status and the body it read.
func (c *consoleClient) do(method, target string, form url.Values) (int, string) {
	c.t.Helper()
	if !strings.HasPrefix(target, "http") {
		target = c.base + target
	}
	var resp *http.Response
	var err error
	if method == http.MethodGet {
		resp, err = c.hc.Get(target)
	} else {
		if m := csrfField.FindStringSubmatch(c.last); m != nil {
			form.Set("csrf", m[1])
		}
		resp, err = c.hc.PostForm(target, form)
	}
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	c.last = string(b)
	return resp.StatusCode, c.last
}

// signInFirst signs in for the first time: the password, then the
// second factor's set-up with a code of the secret the page shows. It
// returns the status and body of the set-up's answer.
func (c *consoleClient) signInFirst(name, password string) (int, string) {
	c.t.Helper()
	status, body := c.do(http.MethodPost, "/console/en/signin", url.Values{"username": {name}, "password": {password}})
	secret := totpSecret.FindStringSubmatch(body)
	if status != http.StatusOK || secret == nil {
		c.t.Fatalf("sign-in did not lead to the second factor's set-up: %d", status)
	}
	code, err := totp.GenerateCode(strings.ReplaceAll(secret[1], " ", ""), time.Now())
	if err != nil {
		c.t.Fatal(err)
	}
	return c.do(http.MethodPost, "/console/en/enrol", url.Values{"code": {code}})
}
