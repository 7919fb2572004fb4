package web

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/invictus-network/invictus/directory"
	"github.com/invictus-network/invictus/seal"
)

// TestAgeBundle: the committed age.js is the pinned age-encryption
// version, carries its licence, and has nothing the CSP forbids or that
// reaches another site: no eval, no Function constructor, no dynamic
// import, no fetch, no address.
func TestAgeBundle(t *testing.T) {
	var pkg struct {
		Dependencies map[string]string `json:"dependencies"`
	}
	b, err := os.ReadFile("../../scripts/agejs/package.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &pkg); err != nil {
		t.Fatal(err)
	}
	js, err := staticFiles.ReadFile("static/age.js")
	if err != nil {
		t.Fatal(err)
	}
	banner := "/*! age-encryption " + pkg.Dependencies["age-encryption"] + " (typage, BSD-3-Clause"
	if !strings.HasPrefix(string(js), banner) {
		t.Errorf("age.js does not start with %q: rebuild it with scripts/build-agejs.sh", banner)
	}
	for _, bad := range []*regexp.Regexp{
		regexp.MustCompile(`\beval\s*\(`), regexp.MustCompile(`\bFunction\s*\(`), regexp.MustCompile(`\bimport\s*\(`),
		regexp.MustCompile(`\bfetch\s*\(`), regexp.MustCompile(`XMLHttpRequest|WebSocket|https?://`),
	} {
		if loc := bad.FindIndex(js); loc != nil {
			t.Errorf("age.js has %q at %d", js[loc[0]:loc[1]], loc[0])
		}
	}
	lic, err := staticFiles.ReadFile("static/age.js.LICENSE.txt")
	if err != nil || !strings.Contains(string(lic), "==== age-encryption "+pkg.Dependencies["age-encryption"]) {
		t.Errorf("age.js.LICENSE.txt lacks the licence of age-encryption: %v", err)
	}
}

// keyedSite returns a server whose first service's organisation has an
// age key, with intake as its Intake (none when nil).
func keyedSite(t *testing.T, intake Intake, cfg Config) (*bundle, seal.Key, directory.Service) {
	t.Helper()
	v, d, key, svc := keyedView(t)
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return testNow }
	}
	deps := Deps{Directory: v}
	if intake != nil {
		deps.Intake = intake
	}
	s, err := New(deps, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &bundle{srv: s, view: v, dir: d}, key, svc
}

// keyedView returns a view of the demo directory in which the first
// service's organisation has an age key, the directory, the key and the
// service.
func keyedView(t *testing.T) (*directory.View, *directory.Directory, seal.Key, directory.Service) {
	t.Helper()
	key, err := seal.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	d := *demoDir()
	d.Organisations = append([]directory.Organisation(nil), d.Organisations...)
	svc := d.Services[0]
	for i := range d.Organisations {
		if d.Organisations[i].ID == svc.Organisation {
			d.Organisations[i].AgeRecipient = key.Recipient
		}
	}
	v := directory.NewView()
	v.Load(&d, 1)
	return v, &d, key, svc
}

// TestSealPagesCSP: the sealing pages load their ES modules with the
// page's nonce (the modules they import inherit it), and only the opener
// may connect, to this node only.
func TestSealPagesCSP(t *testing.T) {
	b, _, svc := keyedSite(t, &recordingIntake{}, Config{PerPage: 200})
	for path, connect := range map[string]bool{"/en/ask?service=" + svc.ID: false, "/pt/open": true, "/en/find": false} {
		res, body := b.do(t, "GET", path, nil, nil)
		csp := res.Header.Get("Content-Security-Policy")
		if res.StatusCode != http.StatusOK || strings.Contains(csp, "connect-src 'self'") != connect {
			t.Errorf("%s: status %d, CSP %q", path, res.StatusCode, csp)
		}
		if strings.Contains(csp, "unsafe") || strings.Contains(csp, "strict-dynamic") {
			t.Errorf("%s: CSP %q", path, csp)
		}
		nonce := regexp.MustCompile(`'nonce-([^']+)'`).FindStringSubmatch(csp)[1]
		if path != "/en/find" && !regexp.MustCompile(`<script type="module" src="/static/(seal|open)\.js\?v=[0-9a-f]+" nonce="`+nonce+`">`).MatchString(body) {
			t.Errorf("%s: no nonce'd module script", path)
		}
	}
	// The search results link to the self-referral of a keyed service only.
	_, body := b.do(t, "GET", "/en/find?country="+svc.Area.Countries[0], nil, nil)
	if !strings.Contains(body, `/en/ask?service=`+svc.ID) {
		t.Error("the keyed service has no link to ask to be contacted")
	}
	for _, m := range regexp.MustCompile(`/en/ask\?service=([^"&]+)`).FindAllStringSubmatch(body, -1) {
		if sv := b.dir.Service(m[1]); sv == nil || sv.Organisation != svc.Organisation {
			t.Errorf("service %s links to the self-referral; only %s has a key", m[1], svc.Organisation)
		}
	}
}

// TestAskRefusesUnsealed: a form posted without a sealed envelope (no
// JavaScript), with text instead of an envelope, or without consent is
// answered with every error next to its field and hands nothing over;
// an organisation without a key and a node without intake are explained.
func TestAskRefusesUnsealed(t *testing.T) {
	in := &recordingIntake{}
	b, key, svc := keyedSite(t, in, Config{AskBurst: 100})
	sealed, err := seal.Seal(key.Recipient, []byte(canary))
	if err != nil {
		t.Fatal(err)
	}
	good := url.Values{"need": {svc.Needs[0]}, "country": {svc.Area.Countries[0]}, "language": {svc.Languages[0]},
		"channel": {"phone"}, "ageband": {"adult"}, "urgency": {"soon"}, "consent": {"yes"}, "envelope": {sealed}}
	with := func(k, v string) url.Values {
		f := url.Values{}
		for kk, vv := range good {
			f[kk] = vv
		}
		if v == "" {
			f.Del(k)
		} else {
			f.Set(k, v)
		}
		return f
	}
	for name, tc := range map[string]struct {
		form  url.Values
		field string
	}{
		"no envelope":        {with("envelope", ""), "contact"},
		"text, not sealed":   {with("envelope", "-----BEGIN AGE ENCRYPTED FILE-----\n"+canary), "contact"},
		"no consent":         {with("consent", ""), "consent"},
		"unknown need":       {with("need", "shelter.nope"), "needs"},
		"unknown channel":    {with("channel", "pigeon"), "channel"},
		"language not there": {with("language", "xx"), "language"},
	} {
		res, body := b.do(t, "POST", "/en/ask?service="+svc.ID, b.solved(svc.ID, tc.form), nil)
		if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, `id="err-`+tc.field+`"`) {
			t.Errorf("%s: status %d, no error next to %s", name, res.StatusCode, tc.field)
		}
		if strings.Contains(body, canary) {
			t.Errorf("%s: the page repeats the text", name)
		}
	}
	if n := len(in.all()); n != 0 {
		t.Fatalf("%d invalid requests handed over", n)
	}
	res, _ := b.do(t, "POST", "/en/ask?service="+svc.ID, b.solved(svc.ID, good), nil)
	if res.StatusCode != http.StatusOK || len(in.all()) != 1 {
		t.Fatalf("a valid request: status %d, %d handed over", res.StatusCode, len(in.all()))
	}

	// A service whose organisation publishes no key, and a node without
	// intake, say so instead of showing a form that cannot work.
	var unkeyed string
	for _, s := range b.dir.Services {
		if o := b.dir.Organisation(s.Organisation); o != nil && o.AgeRecipient == "" {
			unkeyed = s.ID
			break
		}
	}
	if _, body := b.do(t, "GET", "/en/ask?service="+unkeyed, nil, nil); !strings.Contains(body, "cannot receive requests through this site yet") {
		t.Error("a service without a key is not explained")
	}
	nb, _, _ := keyedSite(t, nil, Config{})
	if res, body := nb.do(t, "POST", "/en/ask?service="+svc.ID, nb.solved(svc.ID, good), nil); res.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "does not send requests to be contacted") {
		t.Errorf("a node without intake: status %d", res.StatusCode)
	}
	if res, _ := b.do(t, "GET", "/en/ask?service=nope", nil, nil); res.StatusCode != http.StatusNotFound {
		t.Errorf("an unknown service: status %d", res.StatusCode)
	}
}

// TestSearchRateLimit: an address that searches too often gets 429 with
// Retry-After and a page in its language, counted by page; another
// address is not slowed.
func TestSearchRateLimit(t *testing.T) {
	reg := prometheus.NewRegistry()
	b, key, svc := keyedSite(t, &recordingIntake{}, Config{SearchRate: 0.001, SearchBurst: 2, AskRate: 0.001, AskBurst: 1, Registerer: reg})
	do := func(path, addr string, form url.Values) (response, string) {
		method := "GET"
		if form != nil {
			method = "POST"
		}
		return b.doFrom(t, method, path, form, addr)
	}
	for i := range 2 {
		if res, _ := do("/pt/find?country=pt", "192.0.2.1:1000", nil); res.StatusCode != http.StatusOK {
			t.Fatalf("search %d: status %d", i+1, res.StatusCode)
		}
	}
	res, body := do("/pt/map", "192.0.2.1:1001", nil)
	if res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("third search: status %d", res.StatusCode)
	}
	if ra, err := strconv.Atoi(res.Header.Get("Retry-After")); err != nil || ra < 1 {
		t.Errorf("Retry-After %q", res.Header.Get("Retry-After"))
	}
	if !strings.Contains(body, "Demasiados pedidos") || !strings.Contains(body, "tel:112") {
		t.Error("the 429 page is not in the visitor's language, or lacks the emergency number")
	}
	if res, _ := do("/pt/find?country=pt", "198.51.100.7:1000", nil); res.StatusCode != http.StatusOK {
		t.Errorf("another address: status %d", res.StatusCode)
	}
	sealed, _ := seal.Seal(key.Recipient, []byte("x"))
	form := url.Values{"need": {svc.Needs[0]}, "country": {svc.Area.Countries[0]}, "language": {svc.Languages[0]},
		"channel": {"phone"}, "ageband": {"adult"}, "urgency": {"soon"}, "consent": {"yes"}, "envelope": {sealed}}
	if res, _ := do("/en/ask?service="+svc.ID, "192.0.2.9:1", b.solved(svc.ID, form)); res.StatusCode != http.StatusOK {
		t.Fatalf("first request to be contacted: status %d", res.StatusCode)
	}
	if res, _ := do("/en/ask?service="+svc.ID, "192.0.2.9:2", b.solved(svc.ID, form)); res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("second request to be contacted: status %d", res.StatusCode)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "invictus_web_rate_limited_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			got[labelOf(m, "page")] = m.GetCounter().GetValue()
		}
	}
	want := map[string]float64{"find": 0, "map": 1, "ask": 1}
	if len(got) != len(want) {
		t.Errorf("invictus_web_rate_limited_total has the series %v; want the closed set %v", got, want)
	}
	for page, w := range want {
		if got[page] != w {
			t.Errorf("rate limited %s: %g, want %g", page, got[page], w)
		}
	}
}

func labelOf(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
