package web

import (
	"fmt"
	"testing"

	"github.com/chromedp/chromedp"
)

// publicPages are the main public pages, by screenshot name.
var publicPages = []struct{ name, path string }{
	{"home", "/%s/"},
	{"find", "/%s/find?country=pt&city=Porto&need=support.emotional"},
	{"map-europe", "/%s/map"},
	{"map-country", "/%s/map?country=pt"},
	{"rights", "/%s/rights"},
	{"right", "/%s/rights/support"},
	{"safety", "/%s/safety"},
	{"find-errors", "/%s/find?country=pt&need=shelter&language=xx"},
}

func TestBrowserAxe(t *testing.T) {
	s := newSite(t, Config{})
	for _, lang := range []string{"en", "pt"} {
		for _, p := range publicPages {
			url := s.url + fmt.Sprintf(p.path, lang)
			s.do(t, chromedp.Navigate(url), chromedp.WaitReady("body"))
			res := s.axe(t)
			var bad []string
			for _, v := range res.Violations {
				t.Logf("%s %s: %s (%s) %d nodes %v", lang, p.name, v.ID, v.Impact, len(v.Nodes), v.Nodes[0].Target)
				if v.Impact == "serious" || v.Impact == "critical" {
					bad = append(bad, v.ID)
				}
			}
			if len(bad) > 0 {
				t.Errorf("%s: axe-core %s found serious or critical violations: %v", url, axeVersion, bad)
			}
			s.screenshot(t, p.name+"-"+lang)
		}
	}
}
