package main

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
)

// TestServeReportPages opens the coordinators' pages through the real
// node: `invictus serve --demo --simulate` makes referrals, a national
// coordinator added with `invictus user add --role coordinator --scope
// pt` signs in with her second factor, and the overview comes to show
// the referrals the node's read model folded; the impact and gaps pages
// and a CSV answer, another country is refused, and the victims'
// questionnaire page is public.
func TestServeReportPages(t *testing.T) {
	t.Parallel()
	data := filepath.Join(t.TempDir(), "data")
	n := startNode(t, data, "--demo", "--simulate", "--simulate-rate", "300")
	base := "http://" + n.HTTP

	pwFile := filepath.Join(t.TempDir(), "pw")
	pw := "paula coordinates portugal"
	if err := os.WriteFile(pwFile, []byte(pw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runArgs(t, "user", "add", "paula", "--role", "coordinator", "--scope", "pt", "--password-file", pwFile, "--data", data); code != exitOK {
		t.Fatalf("user add: exit %d: %s", code, errOut)
	}
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	csrf := regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	var last string
	do := func(method, path string, form url.Values) (int, string) {
		t.Helper()
		var resp *http.Response
		var err error
		if form == nil {
			resp, err = hc.Get(base + path)
		} else {
			if m := csrf.FindStringSubmatch(last); m != nil {
				form.Set("csrf", m[1])
			}
			resp, err = hc.PostForm(base+path, form)
		}
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		last = string(b)
		return resp.StatusCode, last
	}
	do(http.MethodGet, "/console/en/signin", nil)
	status, body := do(http.MethodPost, "/console/en/signin", url.Values{"username": {"paula"}, "password": {pw}})
	secret := regexp.MustCompile(`id="totp-secret">([A-Z2-7 ]+)<`).FindStringSubmatch(body)
	if status != http.StatusOK || secret == nil {
		t.Fatalf("sign-in did not lead to the second factor's set-up: %d", status)
	}
	otpCode, err := totp.GenerateCode(strings.ReplaceAll(secret[1], " ", ""), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if status, _ := do(http.MethodPost, "/console/en/enrol", url.Values{"code": {otpCode}}); status != http.StatusOK {
		t.Fatalf("enrol: %d", status)
	}

	// The simulated referrals reach the overview through the stream and
	// the read model: at least 5 requested, so that the count shows.
	figure := regexp.MustCompile(`<span class="figure">([^<]+)</span> <span class="figure-label">Requested</span>`)
	waitFor(t, 90*time.Second, "the overview to show the simulated referrals", func() bool {
		status, body := do(http.MethodGet, "/console/en/reports/overview", nil)
		m := figure.FindStringSubmatch(body)
		if status != http.StatusOK || m == nil {
			return false
		}
		v, err := strconv.Atoi(m[1])
		return err == nil && v >= 5
	})
	if !strings.Contains(last, "Figures for <strong>PT</strong>") || !strings.Contains(last, `<svg class="trend-chart"`) {
		t.Errorf("overview: not the national scope, or no trend picture")
	}
	for _, page := range []string{"impact", "gaps", "flows", "organisations"} {
		if status, body := do(http.MethodGet, "/console/en/reports/"+page, nil); status != http.StatusOK || !strings.Contains(body, `id="csv"`) {
			t.Errorf("%s: status %d", page, status)
		}
	}
	if status, body := do(http.MethodGet, "/console/en/reports/impact-netherlands.csv", nil); status != http.StatusOK || !strings.HasPrefix(body, "Country,") {
		t.Errorf("impact-netherlands.csv: %d %.200s", status, body)
	}
	if status, body := do(http.MethodGet, "/console/en/reports/gaps?country=es", nil); status != http.StatusForbidden || strings.Contains(body, "<table") {
		t.Errorf("another country: status %d", status)
	}
	// The questionnaire is public: a client with no session opens it.
	resp, err := http.Get(base + "/console/pt/feedback")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `id="survey-code"`) {
		t.Errorf("questionnaire: status %d", resp.StatusCode)
	}
	if code := n.stop(); code != 0 {
		t.Errorf("exit code %d\n%s", code, n.stderr)
	}
}
