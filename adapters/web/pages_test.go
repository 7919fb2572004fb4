package web

import (
	"compress/gzip"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/invictus-network/invictus/events"
)

// pagePaths are the public pages every header test walks.
var pagePaths = []string{"/en/", "/pt/", "/en/find", "/en/find?country=pt&need=support.emotional", "/fr/find?country=xx",
	"/en/map", "/hr/map?country=hr", "/en/rights", "/bg/rights/support", "/fi/safety", "/nl/nope"}

// TestCSPHeader: every page carries a Content-Security-Policy header with
// default-src 'none', no 'unsafe-inline', and a fresh nonce that its
// script tags carry; no inline script or style exists without it.
func TestCSPHeader(t *testing.T) {
	b := setup(t, Config{})
	nonceRe := regexp.MustCompile(`script-src 'nonce-([A-Za-z0-9_-]+)'`)
	seen := map[string]bool{}
	for _, p := range pagePaths {
		res, body := b.do(t, "GET", p, nil, nil)
		csp := res.Header.Get("Content-Security-Policy")
		if !strings.HasPrefix(csp, "default-src 'none';") {
			t.Errorf("%s: CSP %q does not start with default-src 'none'", p, csp)
		}
		for _, bad := range []string{"unsafe-inline", "unsafe-eval", "*", "http:", "https:"} {
			if strings.Contains(csp, bad) {
				t.Errorf("%s: CSP %q allows %s", p, csp, bad)
			}
		}
		m := nonceRe.FindStringSubmatch(csp)
		if m == nil {
			t.Fatalf("%s: CSP %q has no script nonce", p, csp)
		}
		if seen[m[1]] {
			t.Errorf("%s: nonce %s used twice", p, m[1])
		}
		seen[m[1]] = true
		scripts := regexp.MustCompile(`<script[^>]*>`).FindAllString(body, -1)
		if len(scripts) == 0 {
			t.Errorf("%s: no script (the quick exit needs one)", p)
		}
		for _, s := range scripts {
			if !strings.Contains(s, `nonce="`+m[1]+`"`) || !strings.Contains(s, `src="/static/`) {
				t.Errorf("%s: script %s lacks the nonce or is not a static file", p, s)
			}
		}
		if strings.Contains(body, " style=") || strings.Contains(body, "<style") || regexp.MustCompile(` on[a-z]+=`).MatchString(body) {
			t.Errorf("%s: inline style or event handler, which the CSP forbids", p)
		}
	}
}

// TestNothingAboutTheVisitor: no page sets a cookie or lets itself be
// cached, and every page carries the security headers.
func TestNothingAboutTheVisitor(t *testing.T) {
	b := setup(t, Config{})
	for _, p := range pagePaths {
		for _, method := range []string{"GET", "POST"} {
			var form url.Values
			if method == "POST" {
				form = url.Values{"country": {"pt"}, "need": {"support.emotional"}}
			}
			res, _ := b.do(t, method, p, form, map[string]string{"Accept-Language": "pt"})
			if c := res.Header.Values("Set-Cookie"); len(c) > 0 {
				t.Errorf("%s %s sets cookies %v", method, p, c)
			}
			want := map[string]string{
				"Cache-Control":          "no-store",
				"X-Content-Type-Options": "nosniff",
				"Referrer-Policy":        "no-referrer",
				"X-Frame-Options":        "DENY",
			}
			for k, v := range want {
				if got := res.Header.Get(k); got != v {
					t.Errorf("%s %s: %s = %q, want %q", method, p, k, got, v)
				}
			}
			if !strings.Contains(res.Header.Get("Permissions-Policy"), "geolocation=(self)") {
				t.Errorf("%s %s: Permissions-Policy %q", method, p, res.Header.Get("Permissions-Policy"))
			}
		}
	}
}

func TestRootFollowsAcceptLanguage(t *testing.T) {
	b := setup(t, Config{})
	for h, want := range map[string]string{"": "/en/", "fi-FI,fi;q=0.9": "/fi/", "de, hr;q=0.5": "/hr/"} {
		res, _ := b.do(t, "GET", "/", nil, map[string]string{"Accept-Language": h})
		if res.StatusCode != http.StatusFound || res.Header.Get("Location") != want {
			t.Errorf("Accept-Language %q: %d %q, want 302 %q", h, res.StatusCode, res.Header.Get("Location"), want)
		}
		if res.Header.Get("Vary") != "Accept-Language" {
			t.Errorf("Vary = %q", res.Header.Get("Vary"))
		}
	}
	// An unknown page answers in the visitor's language.
	res, body := b.do(t, "GET", "/nowhere", nil, map[string]string{"Accept-Language": "it"})
	if res.StatusCode != http.StatusNotFound || !strings.Contains(body, `<html lang="it">`) || !strings.Contains(body, "Questa pagina non esiste") {
		t.Errorf("unknown page: %d, not the Italian page", res.StatusCode)
	}
}

// TestLanguageSwitch: the switcher links to the same page in every
// language; a posted search is not copied into the links.
func TestLanguageSwitch(t *testing.T) {
	b := setup(t, Config{})
	_, body := b.do(t, "GET", "/en/map?country=pt", nil, nil)
	for _, l := range Languages {
		if !strings.Contains(body, `href="/`+l+`/map?country=pt" hreflang="`+l+`"`) {
			t.Errorf("no link to the %s map of pt", l)
		}
	}
	_, body = b.do(t, "POST", "/pt/find", url.Values{"country": {"pt"}, "crime": {"domestic_violence"}}, nil)
	if strings.Contains(body, `hreflang="en"`) && !strings.Contains(body, `href="/en/find" hreflang="en"`) {
		t.Error("the English link of a posted search is not the plain search page")
	}
	if strings.Contains(body, "crime=domestic_violence") {
		t.Error("a posted search was copied into a link")
	}
	// Drafts are marked; English is not.
	_, en := b.do(t, "GET", "/en/", nil, nil)
	_, pt := b.do(t, "GET", "/pt/", nil, nil)
	if strings.Contains(en, `id="draft-notice"`) || !strings.Contains(pt, `id="draft-notice"`) {
		t.Error("the draft notice is not on the Portuguese page only")
	}
}

// TestSearchLeavesNoTrace: the title of a results page, which browsers
// keep in their history, names neither the place nor what was looked
// for; the printable list has every result and no script.
func TestSearchLeavesNoTrace(t *testing.T) {
	b := setup(t, Config{PerPage: 2})
	form := url.Values{"country": {"pt"}, "city": {"Porto"}, "crime": {"domestic_violence"}, "need": {"safety.shelter"}}
	_, body := b.do(t, "POST", "/en/find", form, nil)
	title := regexp.MustCompile(`<title>([^<]*)</title>`).FindStringSubmatch(body)[1]
	if title != "Find support · Victim support finder" {
		t.Errorf("title %q", title)
	}
	if !strings.Contains(body, "for Porto") {
		t.Error("the results do not say where they are for")
	}
	form.Set("print", "1")
	_, printed := b.do(t, "POST", "/en/find", form, nil)
	if n := len(resultIDs(printed)); n <= 2 || strings.Contains(printed, "<script") || !strings.Contains(printed, "116 006") {
		t.Errorf("printable list: %d results (want all, more than a page of 2), script or no helplines", n)
	}
}

// resultIDs returns the service ids of a results page, in order.
func resultIDs(body string) []string {
	var out []string
	for _, m := range regexp.MustCompile(`<li class="service" id="svc-[^"]+" data-id="([^"]+)"`).FindAllStringSubmatch(body, -1) {
		out = append(out, m[1])
	}
	return out
}

func TestFindByCityAndNeed(t *testing.T) {
	b := setup(t, Config{PerPage: 200})
	res, body := b.do(t, "POST", "/pt/find", url.Values{"country": {"pt"}, "city": {"porto"}, "need": {"justice.legal_aid"}}, nil)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d", res.StatusCode)
	}
	ids := resultIDs(body)
	if len(ids) == 0 {
		t.Fatal("no result for legal aid in Porto")
	}
	for _, id := range ids {
		sv := b.dir.Service(id)
		if !slices.Contains(sv.Needs, "justice.legal_aid") {
			t.Errorf("%s does not offer legal aid", id)
		}
	}
	if !slices.Contains(ids, "pt.local-porto.legal") {
		t.Errorf("the Porto office's legal service is missing from %v", ids)
	}
	if !strings.Contains(body, "Apoio judiciário") {
		t.Error("need labels are not in Portuguese")
	}
	// Distances go up.
	kms := regexp.MustCompile(`<span class="distance">a ([0-9.]+) km</span>`).FindAllStringSubmatch(body, -1)
	if len(kms) == 0 {
		t.Fatal("no distance shown")
	}
	if kms[0][1] != "0.0" {
		t.Errorf("the nearest place is %s km from Porto, want 0.0 (the Porto office)", kms[0][1])
	}
}

func TestFindErrorsOfferChoices(t *testing.T) {
	b := setup(t, Config{})
	for _, tc := range []struct {
		name   string
		form   url.Values
		field  string
		says   string
		choice string
	}{
		{"need", url.Values{"country": {"fr"}, "need": {"shelter"}}, "need", "« shelter » n'est pas un type d'aide", "safety.shelter"},
		{"crime", url.Values{"country": {"fr"}, "crime": {"theft"}}, "crime", "« theft »", "burglary_theft"},
		{"language", url.Values{"country": {"fr"}, "language": {"xx"}}, "language", "« xx »", `<code>ar</code>`},
		{"region", url.Values{"country": {"fr"}, "region": {"PT11"}}, "region", "« PT11 »", "FR10"},
		{"country", url.Values{"country": {"zz"}}, "country", "« zz »", "<code>pt</code>"},
		{"city", url.Values{"country": {"fr"}, "city": {"Atlantis"}}, "city", "« Atlantis »", "Marseille"},
		{"place", url.Values{"need": {"support.emotional"}}, "country", "Choisissez un pays", "<code>fi</code>"},
		{"channel", url.Values{"country": {"fr"}, "channel": {"fax"}}, "channel", "« fax »", "in_person"},
	} {
		res, body := b.do(t, "POST", "/fr/find", tc.form, nil)
		if res.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400", tc.name, res.StatusCode)
		}
		i := strings.Index(body, `id="err-`+tc.field+`"`)
		if i < 0 {
			t.Errorf("%s: no error next to the %s field", tc.name, tc.field)
			continue
		}
		near := body[i:min(len(body), i+20000)]
		if !strings.Contains(near, html.EscapeString(tc.says)) || !strings.Contains(near, tc.choice) {
			t.Errorf("%s: the error does not say %q with the choice %q", tc.name, tc.says, tc.choice)
		}
		if !strings.Contains(body, `aria-describedby="err-`+tc.field+`"`) || !strings.Contains(body, `id="error-summary"`) {
			t.Errorf("%s: the field is not tied to its error, or no summary", tc.name)
		}
		if len(resultIDs(body)) > 0 {
			t.Errorf("%s: results shown for an invalid search", tc.name)
		}
	}
}

// TestFindRegionAndFilters: a region search keeps services serving the
// region or placed in it; crime, language and channel filter.
func TestFindRegionAndFilters(t *testing.T) {
	b := setup(t, Config{PerPage: 200})
	_, body := b.do(t, "GET", "/en/find?region=PT11&channel=phone&language=en&crime=stalking_harassment", nil, nil)
	ids := resultIDs(body)
	if len(ids) == 0 {
		t.Fatal("nothing found in PT11")
	}
	for _, id := range ids {
		sv := b.dir.Service(id)
		inRegion := sv.Covers("pt", "PT11", 0, 0, false)
		for _, l := range sv.Locations {
			inRegion = inRegion || strings.HasPrefix(l.Region, "PT11")
		}
		if !inRegion || !slices.Contains(sv.Channels, "phone") || !slices.Contains(sv.Languages, "en") ||
			(len(sv.Crimes) > 0 && !slices.Contains(sv.Crimes, "stalking_harassment")) {
			t.Errorf("%s does not match the search", id)
		}
	}
}

// mapIDs returns the service ids of the map's markers and of its text list.
func mapIDs(t *testing.T, body string) (svg, list []string) {
	t.Helper()
	i, j := strings.Index(body, "<svg"), strings.Index(body, "</svg>")
	if i < 0 || j < i {
		t.Fatal("no svg")
	}
	for _, m := range regexp.MustCompile(`data-ids="([^"]+)"`).FindAllStringSubmatch(body[i:j], -1) {
		svg = append(svg, strings.Fields(m[1])...)
	}
	k := strings.Index(body, `id="map-list"`)
	for _, m := range regexp.MustCompile(`<li id="svc-[^"]+" data-id="([^"]+)"`).FindAllStringSubmatch(body[k:], -1) {
		list = append(list, m[1])
	}
	slices.Sort(svg)
	slices.Sort(list)
	return slices.Compact(svg), list
}

// TestMapCountry: the map of a country shows exactly the country's
// services with a place in view, its list says the same, and together
// with the remote list they are the search's results.
func TestMapCountry(t *testing.T) {
	b := setup(t, Config{PerPage: 200})
	for _, cc := range []string{"pt", "fi", "hr"} {
		res, body := b.do(t, "GET", "/en/map?country="+cc, nil, nil)
		if res.StatusCode != 200 {
			t.Fatalf("%s: status %d", cc, res.StatusCode)
		}
		svg, list := mapIDs(t, body)
		if len(svg) == 0 || !slices.Equal(svg, list) {
			t.Errorf("%s: %d markers' services and %d listed differ", cc, len(svg), len(list))
		}
		var want []string
		for _, sv := range b.dir.Services {
			if sv.Active() && slices.Contains(sv.Area.Countries, cc) && len(sv.Locations) > 0 {
				v := b.srv.geo.viewOf(cc)
				if v.contains(sv.Locations[0].Lon, sv.Locations[0].Lat) {
					want = append(want, sv.ID)
				}
			}
		}
		slices.Sort(want)
		if !slices.Equal(svg, want) {
			t.Errorf("%s: map shows %d services, the directory has %d in view", cc, len(svg), len(want))
		}
		// Every country with services is a zoom link; its own is not.
		if strings.Contains(body, `href="/en/map?country=`+cc+`" aria-label=`) {
			t.Errorf("%s: the country zooms to itself", cc)
		}
	}
	// Europe: clusters that link to a country.
	_, body := b.do(t, "GET", "/pt/map", nil, nil)
	if !strings.Contains(body, `class="pt cluster" href="/pt/map?country=`) {
		t.Error("the map of Europe has no cluster linking to a country")
	}
	total := 0
	for _, sv := range b.dir.Services {
		if sv.Active() && len(sv.Locations) > 0 {
			total += len(sv.Locations)
		}
	}
	svg, _ := mapIDs(t, body)
	if len(svg) == 0 {
		t.Error("no point on the map of Europe")
	}
	// An unknown filter value is an error next to its field, on the map too.
	res, body := b.do(t, "GET", "/en/map?country=pt&need=nothing", nil, nil)
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, `id="err-need"`) {
		t.Errorf("map with an unknown need: %d", res.StatusCode)
	}
	_ = events.Needs
}

// TestStatic: static files are versioned, cached, compressed.
func TestStatic(t *testing.T) {
	b := setup(t, Config{})
	u, err := b.srv.staticURL("exit.js")
	if err != nil {
		t.Fatal(err)
	}
	res, body := b.do(t, "GET", u, nil, map[string]string{"Accept-Encoding": "gzip"})
	if res.Header.Get("Cache-Control") != "public, max-age=31536000, immutable" || res.Header.Get("Content-Encoding") != "gzip" {
		t.Errorf("headers %v", res.Header)
	}
	zr, err := gzip.NewReader(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	js, _ := io.ReadAll(zr)
	if !strings.Contains(string(js), "location.replace") {
		t.Error("exit.js does not replace the location")
	}
	res, _ = b.do(t, "GET", u, nil, map[string]string{"If-None-Match": res.Header.Get("ETag")})
	if res.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match: %d", res.StatusCode)
	}
	res, _ = b.do(t, "GET", "/static/nothing.js", nil, nil)
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("unknown file: %d", res.StatusCode)
	}
}

// TestRightsPages: each right cites its article, in the page's language,
// and a draft translation says so.
func TestRightsPages(t *testing.T) {
	b := setup(t, Config{})
	_, body := b.do(t, "GET", "/it/rights/compensation", nil, nil)
	if !strings.Contains(body, "Direttiva 2012/29/UE, articolo 16") || !strings.Contains(body, `id="draft-notice"`) {
		t.Error("the Italian compensation page does not cite Article 16 or is not marked draft")
	}
	_, body = b.do(t, "GET", "/en/rights", nil, nil)
	for _, slug := range []string{"understand", "information", "interpretation", "support", "protection", "compensation", "cross-border"} {
		if !strings.Contains(body, `href="/en/rights/`+slug+`"`) {
			t.Errorf("the rights index lacks %s", slug)
		}
	}
	if res, _ := b.do(t, "GET", "/en/rights/nothing", nil, nil); res.StatusCode != http.StatusNotFound {
		t.Errorf("unknown right: %d", res.StatusCode)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{{ExitURL: "javascript:alert(1)"}, {ExitURL: "/relative"}, {PerPage: 1000}, {NearRadiusKm: -1}} {
		if err := c.WithDefaults().Validate(); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	if _, err := New(Deps{}, Config{}); err == nil {
		t.Error("New without a directory succeeded")
	}
}

// TestSearchMatchesScan: the search through posting lists finds exactly
// the services that a scan of the whole directory with the same filters
// finds.
func TestSearchMatchesScan(t *testing.T) {
	b := setup(t, Config{})
	snap := b.view.Snapshot()
	p := b.srv.cat.Printer("en")
	for _, q := range []string{"country=pt", "country=fr&need=support.emotional&language=en", "region=PT11&channel=phone",
		"country=it&channel=phone&crime=fraud", "region=FI1B&need=safety.shelter", "country=nl&language=ar"} {
		vals, _ := url.ParseQuery(q)
		f, errs := b.srv.parseSearch(vals, p)
		if len(errs) > 0 {
			t.Fatalf("%s: %v", q, errs)
		}
		pl := b.srv.resolve(f, p)
		var got, want []string
		for _, h := range b.srv.search(snap, f, pl) {
			got = append(got, h.svc.ID)
		}
		for i := range int32(snap.Len()) {
			if sv := snap.Service(i); sv != nil && sv.Active() && b.srv.keep(sv, f, pl) {
				want = append(want, sv.ID)
			}
		}
		slices.Sort(got)
		slices.Sort(want)
		if len(want) == 0 || !slices.Equal(got, want) {
			t.Errorf("%s: search found %d, a scan %d", q, len(got), len(want))
		}
	}
}
