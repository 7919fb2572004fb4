package console_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/invictus-network/invictus/adapters/web/console"
)

// PageBudget is the most a page may take over the wire (issue 10:
// about 150 KB), its style sheet and script included.
const PageBudget = 150 << 10

// transfer returns the bytes a browser receives for a page: gzip, as
// every browser asks.
func (c *client) transfer(method, path string, form url.Values) (int, string) {
	c.b.t.Helper()
	var body io.Reader
	if form != nil {
		form.Set("csrf", c.csrf)
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(c.b.t.Context(), method, c.b.url+path, body)
	if err != nil {
		c.b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := c.hc.Do(req)
	if err != nil {
		c.b.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return len(b), resp.Header.Get("Content-Encoding")
}

// TestPageSizes: every page, with its style sheet and script, fits the
// budget over the wire.
func TestPageSizes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a := b.addPerson("ana", console.RoleOrgAdmin, "pt.apav")
	c := b.client()
	c.signIn(a)
	id, _ := refer(t, b, c)
	assets := 0
	for _, f := range []string{"console.css", "console.js"} {
		n, _ := c.transfer(http.MethodGet, console.Prefix+"static/"+f, nil)
		assets += n
	}
	largest, name := 0, ""
	for _, p := range []struct {
		name, method, path string
		form               url.Values
	}{
		{"signin", http.MethodGet, "/console/en/signin", nil},
		{"home", http.MethodGet, "/console/en/", nil},
		{"assess", http.MethodGet, "/console/en/assess", nil},
		{"assess-errors", http.MethodPost, "/console/en/assess", url.Values{}},
		{"plan", http.MethodPost, "/console/en/assess", validAssessment()},
		{"referral", http.MethodGet, "/console/en/referrals/" + id, nil},
		{"people", http.MethodGet, "/console/en/people", nil},
		{"audit", http.MethodGet, "/console/en/audit", nil},
	} {
		c.get(p.path) // a fresh CSRF token
		n, enc := c.transfer(p.method, p.path, p.form)
		t.Logf("%-14s %6d bytes (%s) + %d of style and script", p.name, n, enc, assets)
		if n+assets > PageBudget {
			t.Errorf("%s: %d bytes over the wire, budget %d", p.name, n+assets, PageBudget)
		}
		if n > largest {
			largest, name = n, p.name
		}
	}
	t.Logf("largest page: %s, %d bytes + %d", name, largest, assets)
}
