package web

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/age"
	"filippo.io/age/armor"
	"github.com/chromedp/chromedp"

	"github.com/invictus-network/invictus/seal"
)

// canary is the victim's contact details in the tests: it must reach the
// organisation's key and nothing else.
const canary = "Maria Canary-7f3a, +351 912 000 777, call after 18:00"

// recordingIntake is the test's [Intake]: it keeps what the page hands
// over, as the node's intake would publish it.
type recordingIntake struct {
	mu   sync.Mutex
	refs []SelfReferral
}

func (r *recordingIntake) Refer(_ context.Context, sr SelfReferral) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refs = append(r.refs, sr)
	return "0195f0c1-2d4b-7c3a-8e5f-6a7b8c9d0e1f", nil
}

func (r *recordingIntake) all() []SelfReferral {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]SelfReferral(nil), r.refs...)
}

// sealSite is a site whose directory gives one organisation an age key,
// that records every request body the server receives and every log
// line, and that answers /v1/keys/identity as the API does (GET and PUT
// for the organisation's token) so that the opener page can be driven
// here; adapters/httpapi tests the endpoint itself.
type sealSite struct {
	*browserSite
	key     seal.Key
	org     string
	service string
	intake  *recordingIntake
	logs    *bytes.Buffer

	mu      sync.Mutex
	bodies  []string
	wrapped string
}

const sealToken = "inv_test-token-of-the-organisation"

func newSealSite(t *testing.T) *sealSite {
	t.Helper()
	ctx := browser(t)
	v, d, key, svc := keyedView(t)
	logs := &bytes.Buffer{}
	intake := &recordingIntake{}
	srv, err := New(Deps{Directory: v, Intake: intake}, Config{Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	s := &sealSite{key: key, org: svc.Organisation, service: svc.ID, intake: intake, logs: logs}
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/keys/identity", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+sealToken {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		switch r.Method {
		case http.MethodPut:
			var in struct {
				WrappedIdentity string `json:"wrapped_identity"`
			}
			if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			s.wrapped = in.WrappedIdentity
			fmt.Fprintf(w, `{"wrapped_identity":%q}`, s.wrapped)
		default:
			if s.wrapped == "" {
				w.WriteHeader(http.StatusNotFound)
				return
			}
			fmt.Fprintf(w, `{"wrapped_identity":%q}`, s.wrapped)
		}
	})
	mux.Handle("/", srv)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.bodies = append(s.bodies, r.Method+" "+r.URL.String()+"\n"+string(b))
		s.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(b))
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	s.browserSite = &browserSite{bundle: &bundle{srv: srv, view: v, dir: d}, url: ts.URL, ctx: ctx}
	return s
}

// received returns every request the server received, with its body.
func (s *sealSite) received() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.bodies, "\n----\n")
}

// TestBrowserSealsSelfReferral: a victim asks a service to contact her;
// her contact details are sealed in the browser to the organisation's
// recipient, the organisation's identity opens them with filippo.io/age,
// and the plaintext is in no request the server received and in no log.
func TestBrowserSealsSelfReferral(t *testing.T) {
	s := newSealSite(t)
	s.do(t,
		chromedp.Navigate(s.url+"/en/ask?service="+s.service),
		chromedp.WaitVisible("#f-contact"),
	)
	// Sent without anything: every error at once, next to its field.
	s.do(t, chromedp.Click("form.ask button.primary"))
	s.waitFor(t, `document.querySelector('#error-summary')`)
	for _, field := range []string{"needs", "channel", "ageband", "contact", "consent"} {
		if n := eval[int](t, s.browserSite, `document.querySelectorAll('#err-`+field+`').length`); n != 1 {
			t.Errorf("no error next to %s", field)
		}
	}
	if len(s.intake.all()) != 0 {
		t.Fatal("an invalid request was handed over")
	}
	s.do(t,
		chromedp.Click(`input[name="need"]`),
		chromedp.Click(`#channel-phone`),
		chromedp.Click(`#ageband-adult`),
		chromedp.SendKeys("#f-contact", canary),
		chromedp.Click("#f-consent"),
		chromedp.Click("form.ask button.primary"),
	)
	s.waitFor(t, `document.querySelector('#ask-sent')`)
	refs := s.intake.all()
	if len(refs) != 1 {
		t.Fatalf("%d requests handed over", len(refs))
	}
	r := refs[0]
	if r.Service != s.service || r.Organisation != s.org || r.Recipient != s.key.Recipient || r.Channel != "phone" || r.AgeBand != "adult" || len(r.Needs) != 1 {
		t.Errorf("handed over %+v", r)
	}
	got, err := seal.Open(s.key.Identity, r.Envelope)
	if err != nil {
		t.Fatalf("the organisation cannot open the envelope: %v", err)
	}
	if string(got) != canary {
		t.Fatalf("opened %q", got)
	}
	other, _ := seal.GenerateKey()
	if _, err := seal.Open(other.Identity, r.Envelope); err == nil {
		t.Fatal("another organisation's key opens the envelope")
	}
	all := s.received()
	if !strings.Contains(all, "envelope=-----BEGIN+AGE+ENCRYPTED+FILE") {
		t.Fatalf("no envelope was posted:\n%s", all)
	}
	for _, part := range []string{canary, "Canary-7f3a", "912", "Canary"} {
		if strings.Contains(all, part) || strings.Contains(s.logs.String(), part) {
			t.Errorf("%q reached the server or its log", part)
		}
	}
	// The textarea has no name: the browser itself would never post it.
	if eval[bool](t, s.browserSite, `document.querySelector('[data-seal-source]') !== null`) {
		t.Error("the form is still shown after sending")
	}
}

// TestBrowserOpensSealedFile: an administrator stores the organisation's
// key, wrapped in the browser; a caseworker unlocks it with the
// passphrase and opens a case file Go sealed. A wrong passphrase, a
// missing key, a bad token and a file for another organisation are
// explained; the key and the plaintext never reach the server.
func TestBrowserOpensSealedFile(t *testing.T) {
	s := newSealSite(t)
	const pass = "a long organisation passphrase"
	envelope, err := seal.Seal(s.key.Recipient, []byte(canary))
	if err != nil {
		t.Fatal(err)
	}
	status := func(id string) string {
		return eval[string](t, s.browserSite, `document.getElementById('`+id+`').textContent`)
	}
	waitStatus := func(id, want string) {
		t.Helper()
		s.waitFor(t, `document.getElementById('`+id+`').textContent.includes(`+jsString(want)+`)`)
	}
	s.do(t, chromedp.Navigate(s.url+"/en/open"), chromedp.WaitVisible("#o-pass"))

	// Missing key: explained.
	s.do(t, chromedp.SendKeys("#o-token", sealToken), chromedp.SendKeys("#o-pass", pass), chromedp.Click("#unlock-button"))
	waitStatus("unlock-status", "No key is stored for your organisation yet")
	// Opening before unlocking: explained.
	s.do(t, chromedp.SetValue("#o-envelope", envelope), chromedp.Click("#open-button"))
	waitStatus("open-status", "Unlock your organisation's key first")

	// The administrator stores the key: wrapped here, then sent.
	s.do(t,
		chromedp.SetValue("#i-identity", string(s.key.File())),
		chromedp.SendKeys("#i-pass", pass),
		chromedp.SendKeys("#i-token", sealToken),
		chromedp.Click("#import-button"),
	)
	waitStatus("import-status", "The key is stored")
	s.mu.Lock()
	wrapped := s.wrapped
	s.mu.Unlock()
	id, err := age.NewScryptIdentity(pass)
	if err != nil {
		t.Fatal(err)
	}
	rd, err := age.Decrypt(armor.NewReader(strings.NewReader(wrapped)), id)
	if err != nil {
		t.Fatalf("the stored key does not open with the passphrase: %v", err)
	}
	file, _ := io.ReadAll(rd)
	if got, err := seal.ParseIdentityFile(file); err != nil || got != s.key.Identity {
		t.Fatalf("the stored key is %q, %v", got, err)
	}

	// A caseworker on another device: nothing kept, a wrong passphrase.
	s.do(t, chromedp.Navigate(s.url+"/en/open"), chromedp.WaitVisible("#o-pass"), chromedp.Click("#forget-button"))
	s.do(t, chromedp.SendKeys("#o-token", "inv_wrong"), chromedp.SendKeys("#o-pass", pass), chromedp.Click("#unlock-button"))
	waitStatus("unlock-status", "The API token was not accepted")
	s.do(t, chromedp.SetValue("#o-token", sealToken), chromedp.SetValue("#o-pass", "not the passphrase"), chromedp.Click("#unlock-button"))
	waitStatus("unlock-status", "Wrong passphrase")
	s.do(t, chromedp.SetValue("#o-token", sealToken), chromedp.SetValue("#o-pass", pass), chromedp.Click("#unlock-button"))
	waitStatus("unlock-status", "unlocked")

	// A file for another organisation, then not a sealed file, then hers.
	other, _ := seal.GenerateKey()
	foreign, _ := seal.Seal(other.Recipient, []byte("someone else's"))
	s.do(t, chromedp.SetValue("#o-envelope", foreign), chromedp.Click("#open-button"))
	waitStatus("open-status", "another organisation's key")
	s.do(t, chromedp.SetValue("#o-envelope", "hello"), chromedp.Click("#open-button"))
	waitStatus("open-status", "not a sealed case file")
	s.do(t, chromedp.SetValue("#o-envelope", envelope), chromedp.Click("#open-button"))
	s.waitFor(t, `document.getElementById('plaintext').textContent.length > 0`)
	if got := status("plaintext"); got != canary {
		t.Fatalf("opened %q", got)
	}

	// The unlocked key stays on the device, wrapped: a reload unlocks
	// with the passphrase alone.
	s.do(t, chromedp.Navigate(s.url+"/en/open"), chromedp.WaitVisible("#o-pass"), chromedp.SendKeys("#o-pass", pass), chromedp.Click("#unlock-button"))
	waitStatus("unlock-status", "unlocked")
	kept := eval[string](t, s.browserSite, `localStorage.getItem('invictus.wrapped-identity')`)
	if kept != wrapped || strings.Contains(kept, "AGE-SECRET-KEY") {
		t.Errorf("the device keeps %q", kept)
	}

	all := s.received()
	for _, secret := range []string{canary, "Canary-7f3a", s.key.Identity, strings.ToLower(s.key.Identity), pass} {
		if strings.Contains(all, secret) || strings.Contains(s.logs.String(), secret) {
			t.Errorf("a secret reached the server or its log: %.20q…", secret)
		}
	}
}

// TestBrowserSealAxe: axe-core on the self-referral and opener pages, in
// two languages, with their screenshots.
func TestBrowserSealAxe(t *testing.T) {
	s := newSealSite(t)
	for _, lang := range []string{"en", "pt"} {
		for _, p := range []struct{ name, path, wait string }{
			{"ask", "/%s/ask?service=" + s.service, "#f-contact"},
			{"ask-errors", "", "#error-summary"},
			{"open", "/%s/open", "#o-pass"},
		} {
			if p.path != "" {
				s.do(t, chromedp.Navigate(s.url+fmt.Sprintf(p.path, lang)), chromedp.WaitVisible(p.wait))
			} else {
				s.do(t, chromedp.Click("form.ask button.primary"))
				s.waitFor(t, `document.querySelector('`+p.wait+`')`)
			}
			var bad []string
			for _, v := range s.axe(t).Violations {
				t.Logf("%s %s: %s (%s) %d nodes", lang, p.name, v.ID, v.Impact, len(v.Nodes))
				if v.Impact == "serious" || v.Impact == "critical" {
					bad = append(bad, v.ID)
				}
			}
			if len(bad) > 0 {
				t.Errorf("%s %s: axe-core %s found serious or critical violations: %v", lang, p.name, axeVersion, bad)
			}
			s.screenshot(t, p.name+"-"+lang)
		}
	}
}

// jsString quotes s as a JavaScript string.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
