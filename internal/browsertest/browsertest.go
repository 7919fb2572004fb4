// Package browsertest starts Debian's chromium through chromedp for the
// tests of the pages, and runs axe-core in it. Only tests import it.
//
// Outside CI a test without a browser is skipped with instructions; with
// CI=true it fails. The browser is headless, with a throwaway profile,
// and is stopped when the test ends.
package browsertest

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/invictus-network/invictus/internal/testenv"
)

// AxeVersion is the version of adapters/web/testdata/axe/axe.min.js.
const AxeVersion = "4.14.1"

// Paths are the browsers tried, after $INVICTUS_CHROME.
var Paths = []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}

// Find returns the browser's path, or skips the test (fails it in CI).
func Find(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("INVICTUS_CHROME"); p != "" {
		return p
	}
	for _, name := range Paths {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "no browser found (tried $INVICTUS_CHROME, " + strings.Join(Paths, ", ") + "); install one with: apt-get install -y chromium"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// Tab starts a headless browser of its own for the test and returns its
// first tab, bounded only by the test binary's timeout (see
// testenv.ContextFrom): a loaded machine can take minutes for what takes
// seconds alone. The browser is stopped at cleanup.
func Tab(t *testing.T) context.Context {
	t.Helper()
	path := Find(t)
	dir := t.TempDir()
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), allocOptions(path, dir)...)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() {
		_ = chromedp.Cancel(ctx) // closes the browser and waits for it
		cancel()
		cancelAlloc()
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start the browser: %v", err)
	}
	return testenv.ContextFrom(t, ctx)
}

// Do runs chromedp actions in the tab, failing the test on an error.
func Do(t testing.TB, tab context.Context, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(tab, actions...); err != nil {
		t.Fatal(err)
	}
}

// Eval evaluates a JavaScript expression in the tab (awaiting it when it
// is a promise).
func Eval[T any](t testing.TB, tab context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(tab, chromedp.Evaluate[T](expr, func(p *cdpruntime.EvaluateParams) { yes := true; p.AwaitPromise = &yes }))
	if err != nil {
		t.Fatalf("evaluate %.80q: %v", expr, err)
	}
	return v
}

// WaitFor polls a JavaScript condition in the tab, across page loads,
// until it is true once the page has loaded.
func WaitFor(t testing.TB, tab context.Context, cond string) {
	t.Helper()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		ok, err := chromedp.Run(tab, chromedp.Evaluate[bool](`(() => { try { return document.readyState === 'complete' && !!(`+cond+`); } catch (e) { return false; } })()`))
		if err == nil && ok {
			return
		}
		if err != nil {
			last = err
		}
		select {
		case <-tab.Done():
			t.Fatalf("waiting for %s: %v (last error: %v)", cond, tab.Err(), last)
		case <-tick.C:
		}
	}
}

// Violation is one finding of axe-core.
type Violation struct {
	ID     string `json:"id"`
	Impact string `json:"impact"`
	Help   string `json:"help"`
	Nodes  []struct {
		Target []any `json:"target"`
	} `json:"nodes"`
}

var axeSource = sync.OnceValues(func() (string, error) {
	_, here, _, _ := runtime.Caller(0)
	b, err := os.ReadFile(filepath.Join(filepath.Dir(here), "..", "..", "adapters", "web", "testdata", "axe", "axe.min.js"))
	return string(b), err
})

// Axe runs axe-core on the page loaded in the tab and returns its
// violations (all impacts).
func Axe(t testing.TB, tab context.Context) []Violation {
	t.Helper()
	src, err := axeSource()
	if err != nil {
		t.Fatal(err)
	}
	Do(t, tab, chromedp.Evaluate[chromedp.Void](src))
	str := Eval[string](t, tab, `axe.run(document, {resultTypes: ['violations']}).then(r => JSON.stringify(r.violations))`)
	var v []Violation
	if err := json.Unmarshal([]byte(str), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

var (
	sharedOnce sync.Once
	sharedCtx  context.Context
	sharedErr  error
	stopShared = func() {}
)

// SharedTab opens a new tab of one headless browser that the tests of a
// binary share (started on first use, stopped by [Stop]), closed at the
// test's end; opts are chromedp's (chromedp.WithNewBrowserContext gives
// the tab cookies of its own). Unlike [Tab] it sets no deadline.
func SharedTab(t testing.TB, opts ...chromedp.ContextOption) context.Context {
	t.Helper()
	path := Find(t)
	sharedOnce.Do(func() {
		dir, err := os.MkdirTemp("", "invictus-chromium-")
		if err != nil {
			sharedErr = err
			return
		}
		alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), allocOptions(path, dir)...)
		ctx, cancelCtx := chromedp.NewContext(alloc)
		// The first Do starts the browser, bound to ctx: no timeout here.
		sharedErr = chromedp.Do(ctx)
		sharedCtx = ctx
		stopShared = func() {
			cancelCtx()
			cancelAlloc()
			os.RemoveAll(dir)
		}
	})
	if sharedErr != nil {
		t.Fatalf("start the browser: %v", sharedErr)
	}
	tab, cancel := chromedp.NewContext(sharedCtx, opts...)
	t.Cleanup(cancel)
	if err := chromedp.Do(tab); err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	return tab
}

// Stop stops the shared browser of [SharedTab], if it was started;
// TestMain calls it after the tests.
func Stop() { stopShared() }

// Screenshot saves the top of the page in the tab (the browser's
// 1100×900 window) as docs/screenshots/<name>.png when
// INVICTUS_SCREENSHOTS=1, so that ordinary runs do not rewrite them.
func Screenshot(t testing.TB, tab context.Context, name string) {
	t.Helper()
	if os.Getenv("INVICTUS_SCREENSHOTS") != "1" {
		return
	}
	buf, err := chromedp.Run(tab, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	_, here, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(here), "..", "..", "docs", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), buf, 0o644); err != nil {
		t.Fatal(err)
	}
}

// allocOptions are the options of a headless browser at path with its
// profile in dir.
func allocOptions(path, dir string) []chromedp.ExecAllocatorOption {
	return []chromedp.ExecAllocatorOption{
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
}
