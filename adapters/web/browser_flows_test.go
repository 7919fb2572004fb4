package web

import (
	"slices"
	"strings"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// waitFor polls a JavaScript condition until it is true on a page that
// has finished loading, across page loads (an evaluation that meets a
// page being replaced is retried); the tab's deadline bounds it.
func (s *browserSite) waitFor(t *testing.T, cond string) {
	t.Helper()
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
			t.Fatalf("waiting for %s: %v (last error: %v)", cond, s.ctx.Err(), last)
		case <-tick.C:
		}
	}
}

// pageIDs returns the data-id of the elements that match a selector.
func pageIDs(t *testing.T, s *browserSite, sel string) []string {
	t.Helper()
	ids := eval[[]string](t, s, `Array.from(document.querySelectorAll('`+sel+`')).map(e => e.dataset.id)`)
	slices.Sort(ids)
	return ids
}

// TestBrowserSearchTwoLanguages: a person picks a place and a need on the
// start page, in English and in Portuguese, and reads the results.
func TestBrowserSearchTwoLanguages(t *testing.T) {
	s := newSite(t, Config{})
	for _, tc := range []struct{ lang, heading, need string }{
		{"en", "services for Porto", "Emotional support"},
		{"pt", "serviços para Porto", "Apoio emocional"},
	} {
		s.do(t,
			chromedp.Navigate(s.url+"/"+tc.lang+"/"),
			chromedp.WaitVisible("#f-country"),
			chromedp.SetValue("#f-country", "pt"),
			chromedp.SendKeys("#f-city", "Porto"),
			chromedp.SetValue("#f-need", "support.emotional"),
			chromedp.Click("form.search button.primary"),
			chromedp.WaitVisible("#results-heading"),
		)
		heading := get(t, s, chromedp.Text("#results-heading"))
		if !strings.Contains(heading, tc.heading) {
			t.Errorf("%s: heading %q lacks %q", tc.lang, heading, tc.heading)
		}
		ids := pageIDs(t, s, "li.service")
		if len(ids) == 0 {
			t.Fatalf("%s: no result", tc.lang)
		}
		for _, id := range ids {
			if sv := s.dir.Service(id); !slices.Contains(sv.Needs, "support.emotional") {
				t.Errorf("%s: %s does not offer emotional support", tc.lang, id)
			}
		}
		offers := get(t, s, chromedp.Text("li.service dd"))
		if !strings.Contains(offers, tc.need) {
			t.Errorf("%s: the first result's offer %q does not name %q", tc.lang, offers, tc.need)
		}
		// The search was posted: nothing of it is in the address.
		if loc := get(t, s, chromedp.Location()); loc != s.url+"/"+tc.lang+"/find" {
			t.Errorf("%s: the address after a search is %s", tc.lang, loc)
		}
	}
}

// TestBrowserMapAgreesWithList: zooming to Portugal on the map shows
// Portugal's services; the markers, the list under the map and the search
// results for Portugal name the same services.
func TestBrowserMapAgreesWithList(t *testing.T) {
	s := newSite(t, Config{PerPage: 15})
	s.do(t,
		chromedp.Navigate(s.url+"/en/map"),
		chromedp.WaitVisible("svg.map"),
		chromedp.Evaluate[chromedp.Void](`document.querySelector('svg.map a[href*="country=pt"]').dispatchEvent(new MouseEvent('click', {bubbles: true}))`),
	)
	s.waitFor(t, `location.search === '?country=pt' && !!document.querySelector('svg.map')`)
	marked := eval[[]string](t, s, `Array.from(document.querySelectorAll('svg.map a.pt')).flatMap(a => a.dataset.ids.split(' '))`)
	slices.Sort(marked)
	marked = slices.Compact(marked)
	listed := pageIDs(t, s, "#map-list .group li")
	if len(marked) == 0 || !slices.Equal(marked, listed) {
		t.Fatalf("map markers (%d services) and list (%d) differ", len(marked), len(listed))
	}
	remote := pageIDs(t, s, "#map-list li[data-remote]")
	outside := pageIDs(t, s, "#map-list li[data-outside]")
	for _, id := range marked {
		if sv := s.dir.Service(id); !slices.Contains(sv.Area.Countries, "pt") || sv.Locations[0].Country != "pt" {
			t.Errorf("%s on the map of Portugal is not a Portuguese service", id)
		}
	}
	onMap := slices.Sorted(slices.Values(slices.Concat(marked, remote, outside)))
	// The search for Portugal, every page.
	var found []string
	s.do(t, chromedp.Navigate(s.url+"/en/find?country=pt"), chromedp.WaitVisible("#results-heading"))
	for {
		found = append(found, pageIDs(t, s, "li.service")...)
		page := get(t, s, chromedp.Text(".pager p"))
		if eval[int](t, s, `Array.from(document.querySelectorAll('.pager button')).filter(b => b.textContent === 'Next page').length`) == 0 {
			break
		}
		s.do(t, chromedp.Evaluate[chromedp.Void](`Array.from(document.querySelectorAll('.pager button')).find(b => b.textContent === 'Next page').click()`))
		s.waitFor(t, `!!document.querySelector('.pager p') && document.querySelector('.pager p').textContent !== '`+page+`'`)
		if len(found) > 2000 {
			t.Fatal("the pages do not end")
		}
	}
	slices.Sort(found)
	if !slices.Equal(onMap, found) {
		t.Errorf("the map lists %d services (%d on it, %d remote, %d outside the view), the search %d", len(onMap), len(marked), len(remote), len(outside), len(found))
	}
	// A marker leads to its entry in the list.
	s.do(t, chromedp.Navigate(s.url+"/en/map?country=pt"), chromedp.WaitVisible("svg.map"))
	s.do(t, chromedp.Evaluate[chromedp.Void](`document.querySelector('svg.map a.pt').dispatchEvent(new MouseEvent('click', {bubbles: true}))`))
	s.waitFor(t, `location.hash.startsWith('#grp-') && document.querySelector(location.hash) !== null`)
}

// TestBrowserQuickExit: the button leaves for the neutral page and the
// page it was pressed on is gone from the history; Escape twice does the
// same.
func TestBrowserQuickExit(t *testing.T) {
	s := newSite(t, Config{})
	for _, how := range []string{"button", "escape"} {
		s.do(t,
			chromedp.Navigate(s.url+"/en/"),
			chromedp.Navigate(s.url+"/en/rights"),
			chromedp.WaitVisible("#quick-exit"),
		)
		if how == "button" {
			s.do(t, chromedp.Click("#quick-exit"))
		} else {
			s.do(t, chromedp.KeyEvent("\x1b"), chromedp.KeyEvent("\x1b"))
		}
		s.waitFor(t, `location.href === '`+s.exitURL+`'`)
		hist := get(t, s, chromedp.NavigationEntries())
		for _, e := range hist.Entries {
			if strings.HasSuffix(e.URL, "/en/rights") {
				t.Errorf("%s: the page left is still in the history: %s", how, e.URL)
			}
		}
		s.do(t, chromedp.Evaluate[chromedp.Void](`history.back()`))
		s.waitFor(t, `location.pathname === '/en/'`)
	}
}

// TestBrowserKeyboard: the quick exit is the first thing a Tab reaches
// after the skip link; the search works with the keyboard alone; a map
// marker is reachable and opens its list entry with Enter.
func TestBrowserKeyboard(t *testing.T) {
	s := newSite(t, Config{})
	s.do(t, chromedp.Navigate(s.url+"/en/"), chromedp.WaitVisible("#f-country"))
	var order []string
	for range 3 {
		s.do(t, chromedp.KeyEvent("\t"))
		order = append(order, eval[string](t, s, `document.activeElement.id || document.activeElement.className || document.activeElement.textContent`))
	}
	if order[0] != "skip" || order[1] != "quick-exit" {
		t.Errorf("tab order starts %v; want the skip link, then the quick exit", order)
	}
	// Keyboard only: focus the country, type to choose, move on, submit.
	s.do(t,
		chromedp.Focus("#f-country"),
		chromedp.KeyEvent("Fin"),
	)
	s.waitFor(t, `document.querySelector('#f-country').value === 'fi'`)
	s.do(t, chromedp.Focus("#f-city"), chromedp.KeyEvent("Tampere"), chromedp.Focus("form.search button.primary"), chromedp.KeyEvent("\r"))
	s.waitFor(t, `!!document.querySelector('#results-heading')`)
	if h := get(t, s, chromedp.Text("#results-heading")); !strings.Contains(h, "Tampere") {
		t.Errorf("keyboard search: heading %q", h)
	}
	// The map: Tab until a marker has focus, then Enter.
	s.do(t, chromedp.Navigate(s.url+"/en/map?country=fi"), chromedp.WaitVisible("svg.map"))
	found := false
	for range 80 {
		s.do(t, chromedp.KeyEvent("\t"))
		if eval[bool](t, s, `document.activeElement.matches('svg.map a.pt')`) {
			found = true
			break
		}
	}
	if !found {
		t.Fatal("no map marker reached with Tab")
	}
	s.do(t, chromedp.KeyEvent("\r"))
	s.waitFor(t, `location.hash.startsWith('#grp-')`)
}

// TestBrowserNearMe: "Use my location" sends the browser's position,
// rounded, with the form, and the nearest service comes first.
func TestBrowserNearMe(t *testing.T) {
	s := newSite(t, Config{})
	lat, lon, acc := 41.1496, -8.6109, 10.0 // Porto
	if _, err := chromedp.CallBrowser(s.ctx, cdpbrowser.SetPermission, cdpbrowser.SetPermissionParams{
		Permission: &cdpbrowser.PermissionDescriptor{Name: "geolocation"}, Setting: cdpbrowser.PermissionSettingGranted, Origin: s.url,
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(s.ctx, emulation.SetGeolocationOverride, emulation.SetGeolocationOverrideParams{Latitude: &lat, Longitude: &lon, Accuracy: &acc}); err != nil {
		t.Fatal(err)
	}
	s.do(t, chromedp.Navigate(s.url+"/en/"), chromedp.WaitVisible("#near-button"), chromedp.Click("#near-button"))
	s.waitFor(t, `!!document.querySelector('#results-heading')`)
	if h := get(t, s, chromedp.Text("#results-heading")); !strings.Contains(h, "near you") {
		t.Errorf("heading %q", h)
	}
	if v := get(t, s, chromedp.Value("#f-lat")); v != "41.15" {
		t.Errorf("latitude sent: %q, want 41.15 (rounded)", v)
	}
	first := eval[string](t, s, `document.querySelector('li.service .distance') ? document.querySelector('li.service .distance').textContent : ''`)
	if !strings.HasPrefix(first, "0.") && !strings.HasPrefix(first, "1.") {
		t.Errorf("the first place is %q away; the Porto office is within 1 km", first)
	}
}
