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
			fmt.Sscan(g.Sol, &h)
			hashes += h + 1
			ms = append(ms, time.Duration(g.MS*float64(time.Millisecond)))
		}
		slices.Sort(ms)
		t.Logf("pow.js at %d bits, CPU slowed %g×: %d challenges, %.0f hashes each on average; solve p50 %s, p90 %s, max %s",
			WorkBitsDefault, rate, n, float64(hashes)/n, ms[n/2].Round(time.Millisecond), ms[n*9/10].Round(time.Millisecond), ms[n-1].Round(time.Millisecond))
	}
}
