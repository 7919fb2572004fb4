package console_test

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/invictus-network/invictus/internal/browsertest"
	"github.com/invictus-network/invictus/internal/testenv"
)

// The browser tests drive Debian's chromium through chromedp, as those of
// adapters/web do (internal/browsertest). Outside CI they skip when no
// browser is installed; with CI=true they fail.

func TestMain(m *testing.M) {
	code := m.Run()
	browsertest.Stop()
	os.Exit(code)
}

// tab is one person's browser: a tab in a browser context of its own, so
// that two people's cookies never mix.
type tab struct {
	t   *testing.T
	b   *bundle
	ctx context.Context
}

func (b *bundle) tab(t *testing.T) *tab {
	t.Helper()
	ctx := browsertest.SharedTab(t, chromedp.WithNewBrowserContext())
	// Bounded by the test binary's timeout only (a loaded 2-core machine
	// can take minutes); every wait polls.
	return &tab{t: t, b: b, ctx: testenv.ContextFrom(t, ctx)}
}

func (s *tab) do(actions ...chromedp.Action[chromedp.Void]) {
	s.t.Helper()
	if err := chromedp.Do(s.ctx, actions...); err != nil {
		s.t.Fatal(err)
	}
}

func get[T any](s *tab, a chromedp.Action[T]) T {
	s.t.Helper()
	v, err := chromedp.Run(s.ctx, a)
	if err != nil {
		s.t.Fatal(err)
	}
	return v
}

func eval[T any](s *tab, expr string) T {
	s.t.Helper()
	return get(s, chromedp.Evaluate[T](expr))
}

// open loads a console page and waits until it is complete.
func (s *tab) open(path string) {
	s.t.Helper()
	s.do(chromedp.Navigate(s.b.url + path))
	s.waitFor("true")
}

// waitFor polls a JavaScript condition on a complete page, across page
// loads; the tab's deadline bounds it.
func (s *tab) waitFor(cond string) {
	s.t.Helper()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		ok, err := chromedp.Run(s.ctx, chromedp.Evaluate[bool](`(() => { try { return document.readyState === 'complete' && !!(`+cond+`); } catch (e) { return false; } })()`))
		if err == nil && ok {
			return
		}
		if err != nil {
			last = err
		}
		select {
		case <-s.ctx.Done():
			s.t.Fatalf("waiting for %s: %v (last error: %v)", cond, s.ctx.Err(), last)
		case <-tick.C:
		}
	}
}

// submit clicks a button and waits for the next page.
func (s *tab) submit(sel string) {
	s.t.Helper()
	marker := eval[float64](s, `window.__page = Math.random()`)
	_ = marker
	s.do(chromedp.Click(sel))
	s.waitFor(`window.__page === undefined`)
}

type axeResult struct {
	Violations []browsertest.Violation
}

// axeResults records the axe-core result of every page checked, for the
// report (go test -v prints it).
var axeResults sync.Map

// axe runs axe-core on the page and fails on a serious or critical
// violation; it records the page's findings.
func (s *tab) axe(name string) {
	s.t.Helper()
	res := axeResult{Violations: browsertest.Axe(s.t, s.ctx)}
	var summary []string
	for _, v := range res.Violations {
		summary = append(summary, v.Impact+":"+v.ID)
		if v.Impact == "serious" || v.Impact == "critical" {
			s.t.Errorf("axe on %s: %s %s (%s) at %v", name, v.Impact, v.ID, v.Help, v.Nodes)
		}
	}
	s.t.Logf("axe %s: %d violations %v", name, len(res.Violations), summary)
	axeResults.Store(name, len(res.Violations))
}

// screenshot saves the page as docs/screenshots/console-<name>.png when
// INVICTUS_SCREENSHOTS=1.
func (s *tab) screenshot(name string) {
	s.t.Helper()
	browsertest.Screenshot(s.t, s.ctx, "console-"+name)
}

// text is the text of the first element that matches sel.
func (s *tab) text(sel string) string {
	s.t.Helper()
	return eval[string](s, `(document.querySelector(`+jsString(sel)+`) || {innerText: ''}).innerText`)
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// fill sets form fields by selector.
func (s *tab) set(sel, value string) {
	s.t.Helper()
	s.do(chromedp.SetValue(sel, value))
}

func (s *tab) check(sel string) {
	s.t.Helper()
	s.do(chromedp.Evaluate[chromedp.Void](`document.querySelector(` + jsString(sel) + `).checked = true`))
}

// signIn signs p in through the pages, enrolling the second factor the
// first time.
func (s *tab) signIn(p *person, lang string) {
	s.t.Helper()
	s.open("/console/" + lang + "/signin")
	s.set("#username", p.name)
	s.set("#password", p.password)
	s.submit("#signin-form button")
	if strings.HasSuffix(get(s, chromedp.Location()), "/enrol") {
		p.secret = strings.ReplaceAll(s.text("#totp-secret"), " ", "")
		s.set("#code", s.b.code(p.secret))
		s.submit("#enrol-form button")
	} else {
		s.set("#code", s.b.code(p.secret))
		s.submit("#code-form button")
	}
	s.waitFor(`document.querySelector('#who')`)
}
