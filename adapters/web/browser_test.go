package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/invictus-network/invictus/internal/browsertest"
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

var (
	rootOnce sync.Once
	rootCtx  context.Context
	rootErr  error
)

// browser returns a new tab of the shared headless browser, closed at the
// test's end.
func browser(t *testing.T) context.Context {
	t.Helper()
	path := browsertest.Find(t)
	rootOnce.Do(func() {
		dir, err := os.MkdirTemp("", "invictus-chromium-")
		if err != nil {
			rootErr = err
			return
		}
		opts := []chromedp.ExecAllocatorOption{
			chromedp.ExecPath(path),
			chromedp.Flag("headless", true),
			chromedp.Flag("no-sandbox", true),
			chromedp.Flag("disable-gpu", true),
			chromedp.Flag("disable-background-networking", true),
			chromedp.Flag("disable-component-update", true),
			chromedp.Flag("disable-sync", true),
			chromedp.Flag("no-first-run", true),
			chromedp.Flag("disable-dev-shm-usage", true),
			chromedp.UserDataDir(dir),
			chromedp.WindowSize(1100, 900),
		}
		alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
		ctx, cancelCtx := chromedp.NewContext(alloc)
		// The first Do starts the browser, bound to ctx: no timeout here.
		rootErr = chromedp.Do(ctx)
		rootCtx = ctx
		browserCleanup = func() {
			cancelCtx()
			cancelAlloc()
			os.RemoveAll(dir)
		}
	})
	if rootErr != nil {
		t.Fatalf("start the browser: %v", rootErr)
	}
	tab, cancel := chromedp.NewContext(rootCtx)
	t.Cleanup(cancel)
	if err := chromedp.Do(tab); err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	// A generous bound for a loaded 2-core machine; every wait inside
	// polls a condition.
	tab, cancel2 := context.WithTimeout(tab, 3*time.Minute)
	t.Cleanup(cancel2)
	return tab
}

// browserCleanup stops the shared browser; TestMain calls it.
var browserCleanup = func() {}

func TestMain(m *testing.M) {
	code := m.Run()
	browserCleanup()
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
	Violations []struct {
		ID     string `json:"id"`
		Impact string `json:"impact"`
		Help   string `json:"help"`
		Nodes  []struct {
			Target []any `json:"target"`
		} `json:"nodes"`
	} `json:"violations"`
}

var axeSource = sync.OnceValues(func() (string, error) {
	b, err := os.ReadFile(filepath.Join("testdata", "axe", "axe.min.js"))
	return string(b), err
})

// axe runs axe-core on the page loaded in the tab and returns its
// violations by impact.
func (s *browserSite) axe(t *testing.T) axeResult {
	t.Helper()
	src, err := axeSource()
	if err != nil {
		t.Fatal(err)
	}
	s.do(t, chromedp.Evaluate[chromedp.Void](src))
	str := get(t, s, chromedp.Evaluate[string](`axe.run(document, {resultTypes: ['violations']}).then(r => JSON.stringify({violations: r.violations}))`,
		func(p *runtime.EvaluateParams) { yes := true; p.AwaitPromise = &yes }))
	var res axeResult
	if err := json.Unmarshal([]byte(str), &res); err != nil {
		t.Fatal(err)
	}
	return res
}

// screenshot saves the top of the page (the browser's 1100×900 window)
// as docs/screenshots/<name>.png when
// INVICTUS_SCREENSHOTS=1, so that ordinary runs do not rewrite them.
func (s *browserSite) screenshot(t *testing.T, name string) {
	t.Helper()
	if os.Getenv("INVICTUS_SCREENSHOTS") != "1" {
		return
	}
	buf := get(t, s, chromedp.CaptureScreenshot())
	dir := filepath.Join("..", "..", "docs", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), buf, 0o644); err != nil {
		t.Fatal(err)
	}
}
