package web

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// TestBrowserWorkCost: static/pow.js, run in the browser as the page runs
// it, solves challenges the node issued at the default difficulty, and
// the node accepts every solution. It prints what solving cost, as is
// and with the CPU slowed six times (Chrome's emulation of a cheap
// phone): figures to read, not to assert (the machine may be loaded).
func TestBrowserWorkCost(t *testing.T) {
	s := newSite(t, Config{})
	src, err := staticFiles.ReadFile("static/pow.js")
	if err != nil {
		t.Fatal(err)
	}
	// The module's own code, as a script: the same solve().
	script := strings.ReplaceAll(string(src), "export async function", "async function")
	s.do(t, chromedp.Navigate(s.url+"/en/"), chromedp.WaitVisible("#quick-exit"))
	const n = 24
	for _, rate := range []float64{1, 6} {
		if _, err := chromedp.Call(s.ctx, emulation.SetCPUThrottlingRate, emulation.SetCPUThrottlingRateParams{Rate: rate}); err != nil {
			t.Fatal(err)
		}
		var list [][2]any
		cs := make([]Challenge, n)
		for i := range cs {
			cs[i] = s.srv.work.Issue("ask/cost")
			list = append(list, [2]any{cs[i].Token, cs[i].Bits})
		}
		in, _ := json.Marshal(list)
		expr := `(async () => {` + script + `
const out = [];
for (const [tok, bits] of ` + string(in) + `) {
  const t0 = performance.now();
  const sol = await solve(tok, bits);
  out.push({ms: performance.now() - t0, sol});
}
return JSON.stringify(out);
})()`
		str := get(t, s, chromedp.Evaluate[string](expr, func(p *runtime.EvaluateParams) { yes := true; p.AwaitPromise = &yes }))
		var got []struct {
			MS  float64 `json:"ms"`
			Sol string  `json:"sol"`
		}
		if err := json.Unmarshal([]byte(str), &got); err != nil || len(got) != n {
			t.Fatalf("%v: %s", err, str)
		}
		var ms []time.Duration
		hashes := 0
		for i, g := range got {
			if err := s.srv.work.Verify("ask/cost", cs[i].Token, g.Sol); err != nil {
				t.Fatalf("the node refuses the browser's solution %s: %v", g.Sol, err)
			}
			var h int
			if _, err := fmt.Sscan(g.Sol, &h); err != nil {
				t.Fatalf("the browser's solution %q is not a number: %v", g.Sol, err)
			}
			hashes += h + 1
			ms = append(ms, time.Duration(g.MS*float64(time.Millisecond)))
		}
		slices.Sort(ms)
		// The raw baseline, in the same tab and run: 2^bits SubtleCrypto
		// digests of the same length, in the same batches, checking nothing.
		raw := get(t, s, chromedp.Evaluate[float64](`(async () => {
const enc = new TextEncoder(), tok = `+jsString(cs[0].Token)+`, t0 = performance.now();
for (let start = 0; start < `+fmt.Sprint(1<<WorkBitsDefault)+`; start += 128) {
  const sums = [];
  for (let i = start; i < start + 128; i++) { sums.push(crypto.subtle.digest('SHA-256', enc.encode(tok + '.' + i))); }
  await Promise.all(sums);
}
return performance.now() - t0;
})()`, func(p *runtime.EvaluateParams) { yes := true; p.AwaitPromise = &yes }))
		t.Logf("pow.js at %d bits, CPU slowed %g×: %d challenges, %.0f hashes each on average; solve p50 %s, p90 %s, max %s; raw baseline: %d digests in %.0f ms (%.1f µs each)",
			WorkBitsDefault, rate, n, float64(hashes)/n, ms[n/2].Round(time.Millisecond), ms[n*9/10].Round(time.Millisecond), ms[n-1].Round(time.Millisecond),
			1<<WorkBitsDefault, raw, raw*1000/float64(int(1)<<WorkBitsDefault))
	}
}

// TestBrowserAskWithoutJavaScript: with JavaScript off, the form says
// before anything is written that it cannot be sent from this browser,
// and why, with the service's phone and the helplines; sent anyway, the
// node refuses it as pow-missing, says so in the visitor's language and
// hands nothing over. axe-core finds nothing serious on either page.
func TestBrowserAskWithoutJavaScript(t *testing.T) {
	s := newSealSite(t)
	for _, lang := range []string{"en", "pt"} {
		if _, err := chromedp.Call(s.ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
			t.Fatal(err)
		}
		s.do(t, chromedp.Navigate(s.url+"/"+lang+"/ask?service="+s.service), chromedp.WaitVisible("#ask-noscript"),
			chromedp.Click(`input[name="need"]`), chromedp.Click("#f-consent"), chromedp.Click("form.ask button.primary"),
			chromedp.WaitVisible("#err-pow"))
		if _, err := chromedp.Call(s.ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: false}); err != nil {
			t.Fatal(err)
		}
		if code := eval[string](t, s.browserSite, `document.querySelector('#err-pow').dataset.code`); code != "pow-missing" {
			t.Errorf("%s: refused as %q, want pow-missing", lang, code)
		}
		text := eval[string](t, s.browserSite, `document.querySelector('#err-pow').innerText`)
		for _, want := range map[string][]string{"en": {"it needs JavaScript", "The helplines at the top"}, "pt": {"precisa de JavaScript", "As linhas de apoio no topo"}}[lang] {
			if !strings.Contains(text, want) {
				t.Errorf("%s: the refusal says %q, without %q", lang, text, want)
			}
		}
		if !eval[bool](t, s.browserSite, `document.querySelector('input[name="need"]').checked`) {
			t.Errorf("%s: her choices were lost", lang)
		}
		for _, v := range s.axe(t).Violations {
			t.Logf("%s ask-nojs: %s (%s) %d nodes", lang, v.ID, v.Impact, len(v.Nodes))
			if v.Impact == "serious" || v.Impact == "critical" {
				t.Errorf("%s ask-nojs: axe-core %s found %s", lang, axeVersion, v.ID)
			}
		}
		s.screenshot(t, "ask-nojs-"+lang)
	}
	if n := len(s.intake.all()); n != 0 {
		t.Fatalf("%d requests handed over without a proof of work", n)
	}
}
