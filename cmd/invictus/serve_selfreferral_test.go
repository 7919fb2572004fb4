package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/invictus-network/invictus/adapters/httpapi"
	"github.com/invictus-network/invictus/adapters/web"
	"github.com/invictus-network/invictus/directory"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/seal"
)

// TestServeSelfReferral: on a demo node, a request to be contacted posted
// to the public page (with an envelope sealed as the page's script seals
// it) reaches the chosen organisation's inbox as an offer from the public
// intake; once it accepts, the handover brings the envelope, which its
// demo key opens. The node's log never holds the contact details.
func TestServeSelfReferral(t *testing.T) {
	data := t.TempDir()
	p := serveInProcess(t, nil, "--data", data, "--demo")
	const org = "pt.apav"
	d, err := directory.Demo(serveDemoSeedDefault)
	if err != nil {
		t.Fatal(err)
	}
	var svc *directory.Service
	for _, s := range d.ServicesOf(org) {
		if len(s.Channels) > 0 && len(s.Languages) > 0 && len(s.Area.Countries) > 0 {
			svc = s
			break
		}
	}
	if svc == nil {
		t.Fatalf("no service of %s in the demo directory", org)
	}
	identity, recipient := demoOrgKey(t, data, org)
	tokens := demoTokens(t, data)

	const contact = "Joana Canary-91ab, +351 914 000 321"
	envelope, err := seal.Seal(recipient, []byte(contact))
	if err != nil {
		t.Fatal(err)
	}
	// The form's proof of work, solved as the page's script solves it.
	askURL := "http://" + p.HTTP + "/en/ask?service=" + url.QueryEscape(svc.ID)
	status, code, page := postAsk(t, askURL, svc, envelope, pageChallenge(t, askURL))
	if status != http.StatusOK || code != "" || !strings.Contains(page, `id="ask-sent"`) {
		t.Fatalf("POST /en/ask: %d %q\n%s", status, code, page)
	}

	find := func(typ string) (httpapi.Delivery, bool) { return findDelivery(t, p.HTTP, tokens[org], typ) }
	var offered httpapi.Delivery
	waitFor(t, "the offer in the organisation's inbox", func() bool {
		var ok bool
		offered, ok = find(events.TypeReferralOffered)
		return ok
	})
	var ev struct {
		Data events.Offered `json:"data"`
	}
	if err := json.Unmarshal(offered.Event, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Data.Referrer != demoPublicIntake || ev.Data.Organisation != org || !slices.Contains(ev.Data.Needs, svc.Needs[0]) {
		t.Fatalf("offered %+v", ev.Data)
	}
	postCommand(t, p.HTTP, tokens[org], org, offered.Referral, &events.Accepted{Placement: ev.Data.Placement})
	var handover httpapi.Delivery
	waitFor(t, "the handover in the organisation's inbox", func() bool {
		var ok bool
		handover, ok = find(events.TypeReferralHandover)
		return ok
	})
	var hv struct {
		Data events.Handover `json:"data"`
	}
	if err := json.Unmarshal(handover.Event, &hv); err != nil {
		t.Fatal(err)
	}
	got, err := seal.Open(identity, hv.Data.Envelope)
	if err != nil || string(got) != contact {
		t.Fatalf("opened %q, %v", got, err)
	}
	for _, log := range []string{p.out.String(), p.errOut.String()} {
		if strings.Contains(log, "Canary-91ab") || strings.Contains(log, "914 000") {
			t.Error("the node's log holds the contact details")
		}
	}
}

// demoOrgKey returns the demo key of org that `serve --demo` wrote into
// data: its identity and its recipient.
func demoOrgKey(t *testing.T, data, org string) (identity, recipient string) {
	t.Helper()
	keyFile, err := os.ReadFile(filepath.Join(data, demoDir, demoKeysDir, org+demoKeyExt))
	if err != nil {
		t.Fatal(err)
	}
	if identity, err = seal.ParseIdentityFile(keyFile); err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(keyFile)) {
		if r, ok := strings.CutPrefix(line, "# public key: "); ok {
			recipient = strings.TrimSpace(r)
		}
	}
	if recipient == "" {
		t.Fatalf("the demo key of %s names no public key", org)
	}
	return identity, recipient
}

// demoTokens returns the demo organisations' API tokens.
func demoTokens(t *testing.T, data string) map[string]string {
	t.Helper()
	var tokens map[string]string
	b, err := os.ReadFile(filepath.Join(data, demoDir, demoTokensFile))
	if err != nil || json.Unmarshal(b, &tokens) != nil {
		t.Fatalf("demo tokens: %v", err)
	}
	return tokens
}

// findDelivery returns the first delivery of type typ in the inbox of
// the organisation whose token is given.
func findDelivery(t *testing.T, httpAddr, token, typ string) (httpapi.Delivery, bool) {
	t.Helper()
	var pg httpapi.InboxPage
	apiCall(t, http.MethodGet, "http://"+httpAddr+"/v1/inbox?limit=1000", token, "", nil, &pg)
	for _, dl := range pg.Deliveries {
		if dl.Type == typ {
			return dl, true
		}
	}
	return httpapi.Delivery{}, false
}

var pageWork = regexp.MustCompile(`data-pow="([^"]+)" data-pow-bits="(\d+)"`)

// pageChallenge reads the proof-of-work challenge of the form at url.
func pageChallenge(t *testing.T, url string) web.Challenge {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := pageWork.FindStringSubmatch(string(b))
	if resp.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("GET %s: %d, no challenge\n%s", url, resp.StatusCode, b)
	}
	bits, _ := strconv.Atoi(m[2])
	return web.Challenge{Token: m[1], Bits: bits}
}

// TestServeWorkKeyKept: the key that signs the public form's challenges
// is the node's, kept in its store, not its process's: a challenge the
// page gave before a restart (or that another node of the cluster gave)
// passes after it, and only once.
func TestServeWorkKeyKept(t *testing.T) {
	data := t.TempDir()
	p := serveInProcess(t, nil, "--data", data, "--demo", "--ask-work-bits", "4")
	d, err := directory.Demo(serveDemoSeedDefault)
	if err != nil {
		t.Fatal(err)
	}
	svc := d.ServicesOf("pt.apav")[0]
	if len(svc.Channels) == 0 || len(svc.Languages) == 0 || len(svc.Area.Countries) == 0 {
		t.Fatalf("%s has no channel, language or country", svc.ID)
	}
	askURL := "/en/ask?service=" + url.QueryEscape(svc.ID)
	work := pageChallenge(t, "http://"+p.HTTP+askURL)
	if work.Bits != 4 {
		t.Fatalf("the page asks for %d bits, --ask-work-bits 4", work.Bits)
	}
	if code := p.stop(); code != exitOK {
		t.Fatalf("serve exited %d", code)
	}
	p = serveInProcess(t, nil, "--data", data, "--demo", "--ask-work-bits", "4")
	_, recipient := demoOrgKey(t, data, "pt.apav")
	envelope, err := seal.Seal(recipient, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []struct {
		status int
		code   string
	}{{http.StatusOK, ""}, {http.StatusConflict, "pow-replayed"}} {
		if status, code, _ := postAsk(t, "http://"+p.HTTP+askURL, svc, envelope, work); status != want.status || code != want.code {
			t.Fatalf("post %d after the restart: %d %q, want %d %q", i+1, status, code, want.status, want.code)
		}
	}
}

// postAsk posts a request to be contacted for svc, with envelope and a
// solution of work, as the page's scripts would, and returns the status,
// the Invictus-Error header and the page.
func postAsk(t *testing.T, askURL string, svc *directory.Service, envelope string, work web.Challenge) (int, string, string) {
	t.Helper()
	form := url.Values{"need": {svc.Needs[0]}, "country": {svc.Area.Countries[0]}, "language": {svc.Languages[0]},
		"channel": {svc.Channels[0]}, "ageband": {"adult"}, "urgency": {"soon"}, "consent": {"yes"}, "envelope": {envelope},
		"pow": {work.Token}, "pow-solution": {web.SolveWork(work)}}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, askURL, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	page, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Invictus-Error"), string(page)
}
