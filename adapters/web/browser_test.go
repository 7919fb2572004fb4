package web

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/invictus-network/invictus/internal/browsertest"
	"github.com/invictus-network/invictus/internal/testenv"
)

// The browser tests drive Debian's chromium through chromedp (found by
// internal/browsertest). Outside CI they skip when no browser is
// installed; with CI=true they fail.

// axeVersion is the version of testdata/axe/axe.min.js.
const axeVersion = browsertest.AxeVersion

// browserSite is a running site for the browser tests: the pages over the
// demo directory, and a neutral page for the quick exit.
type browserSite struct {
	*bundle
	url     string
	exitURL string
	ctx     context.Context // a tab
}

// browser returns a new tab of the shared headless browser, closed at the
// test's end.
func browser(t *testing.T) context.Context {
	t.Helper()
	// Bounded by the test binary's timeout only (a loaded 2-core machine
	// can take minutes); every wait inside polls a condition.
	return testenv.ContextFrom(t, browsertest.SharedTab(t))
}

func TestMain(m *testing.M) {
	code := m.Run()
	browsertest.Stop()
	os.Exit(code)
}

// newSite serves the demo pages on a local port and returns a tab.
func newSite(t *testing.T, cfg Config) *browserSite {
	t.Helper()
	ctx := browser(t)
	neutral := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<!doctype html><html lang="en"><title>Weather</title><h1>Weather today</h1></html>`)
	}))
	t.Cleanup(neutral.Close)
	cfg.ExitURL = neutral.URL + "/weather"
	b := setup(t, cfg)
	ts := httptest.NewServer(b.srv)
	t.Cleanup(ts.Close)
	return &browserSite{bundle: b, url: ts.URL, exitURL: neutral.URL + "/weather", ctx: ctx}
}

// do runs chromedp actions in the site's tab.
func (s *browserSite) do(t *testing.T, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(s.ctx, actions...); err != nil {
		t.Fatal(err)
	}
}

// get runs one chromedp action that returns a value.
func get[T any](t *testing.T, s *browserSite, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(s.ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// eval evaluates a JavaScript expression in the tab.
func eval[T any](t *testing.T, s *browserSite, expr string) T {
	t.Helper()
	return get(t, s, chromedp.Evaluate[T](expr))
}

// axeResult is the part of axe-core's results the tests read.
type axeResult struct {
	Violations []browsertest.Violation
}

// axe runs axe-core on the page loaded in the tab and returns its
// violations by impact.
func (s *browserSite) axe(t *testing.T) axeResult {
	t.Helper()
	return axeResult{Violations: browsertest.Axe(t, s.ctx)}
}

// screenshot saves the top of the page (the browser's 1100×900 window)
// as docs/screenshots/<name>.png when
// INVICTUS_SCREENSHOTS=1, so that ordinary runs do not rewrite them.
func (s *browserSite) screenshot(t *testing.T, name string) {
	t.Helper()
	browsertest.Screenshot(t, s.ctx, name)
}
