package console_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// The browser tests drive Debian's chromium through chromedp, as those of
// adapters/web do, with the axe-core vendored there. Outside CI they skip
// when no browser is installed; with CI=true they fail.

var browserPaths = []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}

func findBrowser(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("INVICTUS_CHROME"); p != "" {
		return p
	}
	for _, name := range browserPaths {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "no browser found (tried $INVICTUS_CHROME, " + strings.Join(browserPaths, ", ") + "); install one with: apt-get install -y chromium"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

var (
	rootOnce       sync.Once
	rootCtx        context.Context
	rootErr        error
	browserCleanup = func() {}
)

func TestMain(m *testing.M) {
	code := m.Run()
	browserCleanup()
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
	path := findBrowser(t)
	rootOnce.Do(func() {
		dir, err := os.MkdirTemp("", "invictus-console-chromium-")
		if err != nil {
			rootErr = err
			return
		}
		opts := []chromedp.ExecAllocatorOption{
			chromedp.ExecPath(path), chromedp.Flag("headless", true), chromedp.Flag("no-sandbox", true),
			chromedp.Flag("disable-gpu", true), chromedp.Flag("disable-background-networking", true),
			chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
			chromedp.Flag("no-first-run", true), chromedp.Flag("disable-dev-shm-usage", true),
			chromedp.UserDataDir(dir), chromedp.WindowSize(1100, 900),
		}
		alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
		ctx, cancelCtx := chromedp.NewContext(alloc)
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
	ctx, cancel := chromedp.NewContext(rootCtx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	// A generous bound for a loaded 2-core machine; every wait polls.
	ctx, cancel2 := context.WithTimeout(ctx, 5*time.Minute)
	t.Cleanup(cancel2)
	return &tab{t: t, b: b, ctx: ctx}
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
	b, err := os.ReadFile(filepath.Join("..", "testdata", "axe", "axe.min.js"))
	return string(b), err
})

// axeResults records the axe-core result of every page checked, for the
// report (go test -v prints it).
var axeResults sync.Map

// axe runs axe-core on the page and fails on a serious or critical
// violation; it records the page's findings.
func (s *tab) axe(name string) {
	s.t.Helper()
	src, err := axeSource()
	if err != nil {
		s.t.Fatal(err)
	}
	s.do(chromedp.Evaluate[chromedp.Void](src))
	str := get(s, chromedp.Evaluate[string](`axe.run(document, {resultTypes: ['violations']}).then(r => JSON.stringify({violations: r.violations}))`,
		func(p *runtime.EvaluateParams) { yes := true; p.AwaitPromise = &yes }))
	var res axeResult
	if err := json.Unmarshal([]byte(str), &res); err != nil {
		s.t.Fatal(err)
	}
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
	if os.Getenv("INVICTUS_SCREENSHOTS") != "1" {
		return
	}
	buf := get(s, chromedp.CaptureScreenshot())
	dir := filepath.Join("..", "..", "..", "docs", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		s.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "console-"+name+".png"), buf, 0o644); err != nil {
		s.t.Fatal(err)
	}
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
