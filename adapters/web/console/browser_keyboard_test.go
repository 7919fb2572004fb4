package console_test

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/invictus-network/invictus/adapters/web/console"
)

// press sends key events to the focused element: kb.Tab, kb.Enter, " ",
// kb.ArrowDown, or text typed character by character.
func (s *tab) press(keys string) {
	s.t.Helper()
	s.do(chromedp.KeyEvent(keys))
}

// tabTo presses Tab until the focused element matches sel (at most 400
// times), and fails if an element focused on the way shows no focus
// indicator (an outline or a box shadow). It returns the number of Tabs.
func (s *tab) tabTo(sel string) int {
	s.t.Helper()
	for i := 1; i <= 400; i++ {
		s.press(kb.Tab)
		st := eval[string](s, `(() => {
  const e = document.activeElement;
  if (!e || e === document.body) { return 'miss'; }
  const cs = getComputedStyle(e);
  const shown = (cs.outlineStyle !== 'none' && parseFloat(cs.outlineWidth) > 0) || cs.boxShadow !== 'none';
  return (e.matches(`+jsString(sel)+`) ? 'hit' : 'miss') + (shown ? '' : ' no focus indicator on ' + e.outerHTML.slice(0, 120));
})()`)
		if strings.Contains(st, "no focus indicator") {
			s.t.Errorf("%s", st)
		}
		if strings.HasPrefix(st, "hit") {
			return i
		}
	}
	s.t.Fatalf("Tab never reached %s", sel)
	return 0
}

// keySubmit presses Enter on the focused element and waits for the next
// page.
func (s *tab) keySubmit() {
	s.t.Helper()
	eval[float64](s, `window.__page = Math.random()`)
	s.press(kb.Enter)
	s.waitFor(`window.__page === undefined`)
}

// TestBrowserKeyboardOnly: a caseworker signs in (enrolling her second
// factor), assesses, previews and sends a referral with the keyboard
// alone: Tab to move, Space to tick, Enter to submit or follow a link,
// arrows inside a radio group and typing in fields and lists. Every
// element that takes the focus on the way shows where it is.
func TestBrowserKeyboardOnly(t *testing.T) {
	b := setup(t)
	a := b.addPerson("ana", console.RoleCaseworker, "pt.apav")
	ta := b.tab(t)
	ta.open("/console/en/signin")
	tabs := ta.tabTo("#username")
	ta.press(a.name)
	tabs += ta.tabTo("#password")
	ta.press(a.password)
	ta.keySubmit()
	ta.waitFor(`document.querySelector('#totp-secret')`)
	a.secret = strings.ReplaceAll(ta.text("#totp-secret"), " ", "")
	tabs += ta.tabTo("#code")
	ta.press(b.code(a.secret))
	ta.keySubmit()
	ta.waitFor(`document.querySelector('#who')`)

	tabs += ta.tabTo(`nav a[href="/console/en/assess"]`)
	ta.keySubmit()
	ta.waitFor(`document.querySelector('#assess-form')`)
	tick := func(sel string) {
		t.Helper()
		tabs += ta.tabTo(sel)
		ta.press(" ")
		if !eval[bool](ta, `document.activeElement.checked`) {
			t.Fatalf("Space did not tick %s", sel)
		}
	}
	choose := func(sel, typed, want string) {
		t.Helper()
		tabs += ta.tabTo(sel)
		ta.press(typed)
		if got := eval[string](ta, `document.activeElement.value`); got != want {
			t.Fatalf("typing %q in %s chose %q, want %q", typed, sel, got, want)
		}
	}
	tick(`input[name=needs][value="support.emotional"]`)
	tick(`input[name=urgency][value="routine"]`)
	choose("#country", "Portugal", "pt")
	choose("#city", "Lisbon", lisbonID())
	tick(`input[name=languages][value="pt"]`)
	tabs += ta.tabTo(`input[name=age_band]`)
	for i := 0; i < 4 && eval[string](ta, `document.activeElement.value`) != "adult"; i++ {
		ta.press(kb.ArrowDown)
	}
	if !eval[bool](ta, `document.querySelector('input[name=age_band][value=adult]').checked`) {
		t.Fatal("the arrows did not choose the adult age band")
	}
	choose("#gender", "Female", "female")
	tick(`input[name=channels][value="phone"]`)
	tick(`input[name=consent_referral]`)
	tick(`input[name=consent_share_data]`)
	tick(`input[name=consent_method][value="verbal"]`)
	tabs += ta.tabTo("#preview")
	ta.keySubmit()
	ta.waitFor(`document.querySelector('#send-form')`)
	tick("#confirm")
	tabs += ta.tabTo("#send")
	ta.keySubmit()
	ta.waitFor(`document.querySelector('#sent-notice')`)
	t.Logf("signed in, assessed and sent with %d Tabs", tabs)
}

// TestBrowserZoom200: at 200% zoom (a 1280-pixel window seen as 640 CSS
// pixels, at twice the pixel density) no main page scrolls sideways and
// axe-core finds no serious or critical problem.
func TestBrowserZoom200(t *testing.T) {
	b := setupListing(t)
	olga := b.addPerson("olga", console.RoleOrgAdmin, "pt.apav")
	own, _ := servicesOf(t, b, "pt.apav")
	ta := b.tab(t)
	ta.do(chromedp.EmulateViewport(640, 800, chromedp.EmulateScale(2)))
	check := func(name string) {
		t.Helper()
		if w := eval[[]float64](ta, `[document.documentElement.scrollWidth, document.documentElement.clientWidth]`); w[0] > w[1] {
			t.Errorf("%s at 200%%: %v CSS pixels wide in a %v-pixel window: it scrolls sideways", name, w[0], w[1])
		}
		ta.axe("zoom-" + name)
	}
	ta.open("/console/en/signin")
	check("signin")
	// The check sees a page that is too wide, in a window of 640 CSS pixels.
	// (set through the CSSOM: the CSP refuses inline style attributes).
	ta.do(chromedp.Evaluate[chromedp.Void](`(() => { const d = document.createElement('div'); d.style.width = '1000px'; d.textContent = 'x'; document.body.append(d); })()`))
	if w := eval[[]float64](ta, `[document.documentElement.scrollWidth, document.documentElement.clientWidth]`); w[0] <= w[1] || w[1] > 640 {
		t.Fatalf("the sideways-scroll check sees %v in a %v-pixel window", w[0], w[1])
	}
	ta.signIn(olga, "en")
	for _, p := range []string{"", "assess", "people", "audit", "listing", "listing/edit?service=" + own[0], "key"} {
		ta.open("/console/en/" + p)
		name, _, _ := strings.Cut(strings.ReplaceAll(p, "/", "-"), "?")
		if name == "" {
			name = "home"
		}
		check(name)
	}
	ta.open("/console/en/assess")
	ta.fillAssessment()
	ta.submit("#preview")
	ta.waitFor(`document.querySelector('#send-form')`)
	check("plan")
	ta.screenshot("zoom200-plan-en")
}
