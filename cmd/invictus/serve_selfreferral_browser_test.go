package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/invictus-network/invictus/directory"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/internal/browsertest"
	"github.com/invictus-network/invictus/seal"
)

// recorder is a reverse proxy in front of the node that keeps every
// request it passes on, with its body: what the node received.
type recorder struct {
	mu   sync.Mutex
	reqs []string
}

func (rc *recorder) all() string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return strings.Join(rc.reqs, "\n----\n")
}

func recordingProxy(t *testing.T, target string) (*recorder, string) {
	t.Helper()
	u, err := url.Parse("http://" + target)
	if err != nil {
		t.Fatal(err)
	}
	rc := &recorder{}
	proxy := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(u) }}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.reqs = append(rc.reqs, r.Method+" "+r.URL.String()+"\n"+string(b))
		rc.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(b))
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	return rc, ts.URL
}

// TestBrowserSelfReferralNode: a victim, in a real browser against a real
// demo node, finds a service, opens its request form, is told what is
// missing, fills in her contact details and sends them; the page seals
// them with age.js to the organisation's key and solves the proof of
// work, all with the keyboard alone. The request arrives as an offer in that organisation's inbox; it
// accepts, and the handover opens with its key to her exact words, and
// not with another organisation's. Her words are in no request the node
// received, in no line of its log, in no message of any stream or bucket
// and in no file of its data directory. axe-core finds nothing on the
// pages she saw.
func TestBrowserSelfReferralNode(t *testing.T) {
	tab := browsertest.Tab(t)
	data := t.TempDir()
	p := serveInProcess(t, nil, "--data", data, "--demo")
	rec, base := recordingProxy(t, p.HTTP)
	dir, err := directory.Demo(serveDemoSeedDefault)
	if err != nil {
		t.Fatal(err)
	}
	checkAxe := func(state string) {
		t.Helper()
		for _, v := range browsertest.Axe(t, tab) {
			t.Errorf("axe on %s: %s (%s) at %v", state, v.ID, v.Impact, v.Nodes)
		}
	}

	// She searches her country and picks the first service that takes
	// requests here.
	browsertest.Do(t, tab, chromedp.Navigate(base+"/en/find?country=pt"))
	browsertest.WaitFor(t, tab, `document.querySelector('a[href*="/en/ask?service="]')`)
	checkAxe("find")
	href := browsertest.Eval[string](t, tab, `document.querySelector('a[href*="/en/ask?service="]').getAttribute('href')`)
	u, err := url.Parse(href)
	if err != nil {
		t.Fatal(err)
	}
	svc := dir.Service(u.Query().Get("service"))
	if svc == nil {
		t.Fatalf("the link %s names no demo service", href)
	}
	org := svc.Organisation
	browsertest.Do(t, tab, chromedp.Click(`a[href="`+href+`"]`))
	browsertest.WaitFor(t, tab, `document.querySelector('#f-contact') && document.querySelector('form.ask[data-pow]')`)
	checkAxe("ask")

	// Sent empty: the browser solves the proof of work, the node checks
	// the fields and says what is missing, next to each; nothing is sent.
	browsertest.Do(t, tab, chromedp.Click("form.ask button.primary"))
	browsertest.WaitFor(t, tab, `document.querySelector('#error-summary')`)
	if browsertest.Eval[bool](t, tab, `document.querySelector('#err-pow') !== null`) {
		t.Fatalf("the browser's proof of work was refused: %s", browsertest.Eval[string](t, tab, `document.querySelector('#err-pow').dataset.code`))
	}
	for _, field := range []string{"needs", "contact", "consent"} {
		if !browsertest.Eval[bool](t, tab, `document.querySelector('#err-`+field+`') !== null`) {
			t.Errorf("no error next to %s", field)
		}
	}
	checkAxe("ask with errors")

	const contact = "Ana Canary-5c2e, +351 913 555 024, after 19:00, not by e-mail"
	// With the keyboard alone: Tab to each field, Space to tick, the
	// arrows to move in a group of radio buttons, Enter to send.
	tabTo := func(sel string) {
		t.Helper()
		for range 200 {
			if browsertest.Eval[bool](t, tab, `document.activeElement !== null && document.activeElement.matches(`+strconv.Quote(sel)+`)`) {
				return
			}
			browsertest.Do(t, tab, chromedp.KeyEvent(kb.Tab))
		}
		t.Fatalf("Tab never reaches %s", sel)
	}
	tabTo(`input[name="need"]`)
	browsertest.Do(t, tab, chromedp.KeyEvent(" "))
	tabTo(`input[name="channel"]`)
	browsertest.Do(t, tab, chromedp.KeyEvent(" "))
	tabTo(`input[name="ageband"]`)
	for !browsertest.Eval[bool](t, tab, `document.querySelector('#ageband-adult').checked`) {
		browsertest.Do(t, tab, chromedp.KeyEvent(kb.ArrowDown))
	}
	tabTo(`#f-contact`)
	browsertest.Do(t, tab, chromedp.KeyEvent(contact))
	tabTo(`#f-consent`)
	browsertest.Do(t, tab, chromedp.KeyEvent(" "))
	tabTo(`form.ask button.primary`)
	if !browsertest.Eval[bool](t, tab, `document.querySelectorAll('input[name="need"]:checked').length === 1 && document.querySelector('input[name="channel"]:checked') !== null && document.querySelector('#f-consent').checked`) {
		t.Fatal("the keyboard did not fill in the form")
	}
	start := time.Now()
	// The page with the errors is marked, to wait for the next one.
	browsertest.Do(t, tab, chromedp.Evaluate[chromedp.Void](`window.invictusOld = true`), chromedp.KeyEvent(kb.Enter))
	browsertest.WaitFor(t, tab, `!window.invictusOld && (document.querySelector('#ask-sent') || document.querySelector('.error-summary'))`)
	t.Logf("sealed, solved and sent in %s (page to page)", time.Since(start).Round(time.Millisecond))
	if !browsertest.Eval[bool](t, tab, `document.querySelector('#ask-sent') !== null`) {
		t.Fatalf("not sent: %s", browsertest.Eval[string](t, tab, `document.body.innerText`))
	}
	checkAxe("sent")

	// The organisation finds the offer from the public intake, accepts,
	// and opens the handover with its key.
	tokens := demoTokens(t, data)
	var offered events.Offered
	var referral string
	waitFor(t, "the offer in "+org+"'s inbox", func() bool {
		dl, ok := findDelivery(t, p.HTTP, tokens[org], events.TypeReferralOffered)
		if ok {
			referral = dl.Referral
			offered = decodeData[events.Offered](t, dl.Event)
		}
		return ok
	})
	if offered.Referrer != demoPublicIntake || offered.Organisation != org || len(offered.Needs) != 1 || !slices.Contains(svc.Needs, offered.Needs[0]) {
		t.Fatalf("offered %+v", offered)
	}
	postCommand(t, p.HTTP, tokens[org], org, referral, &events.Accepted{Placement: offered.Placement})
	var handover events.Handover
	waitFor(t, "the handover in "+org+"'s inbox", func() bool {
		dl, ok := findDelivery(t, p.HTTP, tokens[org], events.TypeReferralHandover)
		if ok {
			handover = decodeData[events.Handover](t, dl.Event)
		}
		return ok
	})
	identity, _ := demoOrgKey(t, data, org)
	got, err := seal.Open(identity, handover.Envelope)
	if err != nil || string(got) != contact {
		t.Fatalf("%s opened %q, %v", org, got, err)
	}
	for _, other := range dir.Organisations {
		if other.ID == org {
			continue
		}
		if _, err := os.Stat(filepath.Join(data, demoDir, demoKeysDir, other.ID+demoKeyExt)); err != nil {
			continue
		}
		otherID, _ := demoOrgKey(t, data, other.ID)
		if _, err := seal.Open(otherID, handover.Envelope); err == nil {
			t.Fatalf("%s's key opens %s's handover", other.ID, org)
		}
		break
	}

	// Her words reached nothing the node can read.
	secrets := []string{contact, "Canary-5c2e", "913 555", "913+555"}
	for _, s := range secrets {
		if strings.Contains(rec.all(), s) {
			t.Errorf("a request the node received holds %q", s)
		}
		for _, log := range []string{p.out.String(), p.errOut.String()} {
			if strings.Contains(log, s) {
				t.Errorf("the node's log holds %q", s)
			}
		}
	}
	if !strings.Contains(rec.all(), "envelope=-----BEGIN+AGE+ENCRYPTED+FILE") || !strings.Contains(rec.all(), "pow-solution=") {
		t.Fatal("no envelope or no proof of work was posted")
	}
	nc := connectAdmin(t, p.NATS, data)
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	msgs := 0
	names := js.StreamNames(t.Context())
	for name := range names.Name() {
		msgs += scanStream(t, js, name, secrets)
	}
	if err := names.Err(); err != nil {
		t.Fatal(err)
	}
	if msgs == 0 {
		t.Fatal("no stream message was read")
	}
	t.Logf("%d stream messages read, none holds her words", msgs)
	walkErr := filepath.WalkDir(data, func(path string, d os.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil // a file the node removed while the walk ran
		}
		if err != nil || d.IsDir() {
			return err
		}
		b, readErr := os.ReadFile(path)
		if readErr != nil {
			t.Logf("skipping %s, which the node is rewriting: %v", path, readErr)
			return nil
		}
		for _, s := range secrets {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%s holds %q", path, s)
			}
		}
		return nil
	})
	if walkErr != nil {
		t.Fatalf("reading the data directory: %v", walkErr)
	}
}

// scanStream reads every message of a stream and fails the test if one
// holds a secret in its subject, headers or data; it returns how many it
// read.
func scanStream(t *testing.T, js jetstream.JetStream, name string, secrets []string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	st, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			continue // deleted
		}
		n++
		all := m.Subject + "\n" + string(m.Data)
		for k, v := range m.Header {
			all += "\n" + k + ": " + strings.Join(v, ",")
		}
		for _, s := range secrets {
			if strings.Contains(all, s) {
				t.Errorf("stream %s message %d holds %q", name, seq, s)
			}
		}
	}
	return n
}

// decodeData returns the data of a CloudEvent in structured JSON.
func decodeData[T any](t *testing.T, ev []byte) T {
	t.Helper()
	var e struct {
		Data T `json:"data"`
	}
	if err := json.Unmarshal(ev, &e); err != nil {
		t.Fatal(err)
	}
	return e.Data
}
