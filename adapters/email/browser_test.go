package email_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/invictus-network/invictus/adapters/email"
	"github.com/invictus-network/invictus/internal/testenv"
	"github.com/invictus-network/invictus/referral"
)

// The browser test drives Debian's chromium through chromedp, as the web
// pages' tests do (adapters/web), and checks the pages with the axe-core
// vendored there. Outside CI it skips when no browser is installed.

// tab starts a headless browser and returns a tab, closed at the test's
// end.
func tab(t *testing.T) context.Context {
	t.Helper()
	path := os.Getenv("INVICTUS_CHROME")
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if path != "" {
			break
		}
		path, _ = exec.LookPath(name)
	}
	if path == "" {
		msg := "no browser found (tried $INVICTUS_CHROME, chromium, chromium-browser, google-chrome); install one with: apt-get install -y chromium"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path), chromedp.Flag("headless", true), chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true), chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1000, 800))
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start the browser: %v", err)
	}
	// Bounded by the test binary's timeout only; every wait polls.
	return testenv.ContextFrom(t, ctx)
}

// axeViolations runs axe-core on the tab's page and returns the serious
// and critical violations.
func axeViolations(t *testing.T, ctx context.Context) []string {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("..", "web", "testdata", "axe", "axe.min.js"))
	if err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](string(src))); err != nil {
		t.Fatal(err)
	}
	str, err := chromedp.Run(ctx, chromedp.Evaluate[string](`axe.run(document, {resultTypes: ['violations']}).then(r => JSON.stringify(r.violations))`,
		func(p *runtime.EvaluateParams) { yes := true; p.AwaitPromise = &yes }))
	if err != nil {
		t.Fatal(err)
	}
	var vs []struct{ ID, Impact string }
	if err := json.Unmarshal([]byte(str), &vs); err != nil {
		t.Fatal(err)
	}
	var bad []string
	for _, v := range vs {
		t.Logf("axe: %s (%s)", v.ID, v.Impact)
		if v.Impact == "serious" || v.Impact == "critical" {
			bad = append(bad, v.ID)
		}
	}
	return bad
}

var reHref = regexp.MustCompile(`href="(https?://[^"]+/mail/link/[^"]+)"`)

// TestBrowserAcceptFromMail: the offer arrives in Mailpit, in French; a
// browser follows the accept link of its HTML part, sees the offer and a
// confirmation button (no change yet), confirms, and the referrer sees
// the acceptance. The same link again, an expired link, a link with one
// byte changed and another organisation's link show a clear refusal and
// change nothing. axe-core finds no serious or critical violation on the
// confirmation, done and refusal pages.
func TestBrowserAcceptFromMail(t *testing.T) {
	t.Parallel()
	ctx := tab(t)
	b := setup(t, email.Config{})
	in := b.start("a")
	id := b.refer(needsOffered...)
	offer := b.mail("pt.a1", "Nouvelle proposition d'orientation")
	hrefs := reHref.FindAllStringSubmatch(offer.HTML, -1)
	if len(hrefs) != 2 {
		t.Fatalf("want 2 links in the HTML part, found %d:\n%s", len(hrefs), offer.HTML)
	}
	accept := strings.ReplaceAll(hrefs[0][1], "&amp;", "&")

	text := func() string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text("main"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	// The confirmation page: the offer, a button, nothing changed.
	if err := chromedp.Do(ctx, chromedp.Navigate(accept), chromedp.WaitVisible("#confirm")); err != nil {
		t.Fatal(err)
	}
	if s := text(); !strings.Contains(s, "Soutien émotionnel") || !strings.Contains(s, id) {
		t.Errorf("the confirmation page lacks the offer:\n%s", s)
	}
	if bad := axeViolations(t, ctx); len(bad) > 0 {
		t.Errorf("axe on the confirmation page: %v", bad)
	}
	if st := b.state(id); st.Placements[0].Status != referral.PlacementOffered {
		t.Fatalf("after opening the link the placement is %s", st.Placements[0].Status)
	}
	before := len(b.state(id).SeenIDs)

	// Confirm.
	if err := chromedp.Do(ctx, chromedp.Click("#confirm"), chromedp.WaitVisible("#message")); err != nil {
		t.Fatal(err)
	}
	if s := text(); !strings.Contains(s, "Vous avez accepté") {
		t.Fatalf("after confirming:\n%s", s)
	}
	if bad := axeViolations(t, ctx); len(bad) > 0 {
		t.Errorf("axe on the done page: %v", bad)
	}
	st := b.state(id)
	if pl := st.Placements[0]; pl.Status != referral.PlacementAccepted || pl.AcceptedBy != "pt.a1" {
		t.Fatalf("after the confirmation: %+v", pl)
	}
	// The referrer sees the acceptance, in Portuguese.
	b.mail("pt.ref", "O seu encaminhamento foi aceite por Org pt.a1")

	// Refused links.
	pl := st.Placements[0]
	expired, _ := in.a.Links().Sign(email.Link{Action: email.ActionAccept, Org: "pt.a1", Referral: id, Placement: pl.ID,
		Attempt: pl.Offer.Attempt, Expires: time.Now().Add(-time.Minute)})
	other, _ := in.a.Links().Sign(email.Link{Action: email.ActionAccept, Org: "pt.a2", Referral: id, Placement: pl.ID,
		Attempt: pl.Offer.Attempt, Expires: pl.Offer.Deadline})
	changed := []byte(accept)
	changed[len(changed)-30] ^= 0x02
	base := accept[:strings.LastIndexByte(accept, '/')+1]
	for _, c := range []struct{ name, link, says string }{
		{"the same link again", accept, "déjà été utilisé"},
		{"an expired link", base + expired, "a expiré"},
		{"a changed byte", string(changed), "This link is not valid"},
		{"another organisation's link", base + other, "Dit aanbod staat niet meer open"},
	} {
		if err := chromedp.Do(ctx, chromedp.Navigate(c.link), chromedp.WaitVisible("#message")); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		s := text()
		if !strings.Contains(s, c.says) {
			t.Errorf("%s: the page does not say %q:\n%s", c.name, c.says, s)
		}
		n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#confirm').length`))
		if err != nil || n != 0 {
			t.Errorf("%s: a confirm button on a refused link (%d, %v)", c.name, n, err)
		}
		if c.name == "an expired link" {
			if bad := axeViolations(t, ctx); len(bad) > 0 {
				t.Errorf("axe on the refusal page: %v", bad)
			}
		}
	}
	if n := len(b.state(id).SeenIDs); n != before+1 {
		t.Errorf("the log grew by %d events, want 1 (the acceptance)", n-before)
	}
}
