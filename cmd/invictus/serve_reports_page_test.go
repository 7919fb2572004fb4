package main

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
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
	c := newConsoleClient(t, base)
	do := c.do
	do(http.MethodGet, "/console/en/signin", nil)
	if status, _ := c.signInFirst("paula", pw); status != http.StatusOK {
		t.Fatalf("enrol: %d", status)
	}

	// The simulated referrals reach the overview through the stream and
	// the read model: at least 5 requested, so that the count shows.
	figure := regexp.MustCompile(`<span class="figure">([^<]+)</span> <span class="figure-label">Requested</span>`)
	waitFor(t, "the overview to show the simulated referrals", func() bool {
		status, body := do(http.MethodGet, "/console/en/reports/overview", nil)
		m := figure.FindStringSubmatch(body)
		if status != http.StatusOK || m == nil {
			return false
		}
		v, err := strconv.Atoi(m[1])
		return err == nil && v >= 5
	})
	if !strings.Contains(c.last, "Figures for <strong>PT</strong>") || !strings.Contains(c.last, `<svg class="trend-chart"`) {
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
