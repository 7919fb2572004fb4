package console_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// A European coordinator signs in and reads every report page, in two
// languages, checked with axe-core; the pages print without the filters
// and the navigation, and the browser prints them to PDF.
func TestBrowserReports(t *testing.T) {
	b, _ := setupReports(t, 300)
	elena := b.addCoordinator("elena", "eu")
	ta := b.tab(t)
	ta.signIn(elena, "en")
	ta.open("/console/en/")
	ta.waitFor(`document.querySelector('a[href="/console/en/reports/overview"]')`)
	for _, lang := range []string{"en", "pt"} {
		for _, page := range []string{"overview", "flows", "organisations", "gaps", "impact"} {
			ta.open("/console/" + lang + "/reports/" + page)
			ta.waitFor(`document.querySelector('#csv')`)
			if got := ta.text("h1"); got == "" {
				t.Errorf("%s/%s: no heading", lang, page)
			}
			ta.axe("reports-" + page + "-" + lang)
			ta.screenshot("reports-" + page + "-" + lang)
		}
	}
	ta.open("/console/en/reports/overview")
	if !strings.Contains(ta.text("#headline"), "Requested") {
		t.Errorf("overview headline %q", ta.text("#headline"))
	}
	if ta.text("#trend tbody th") == "" {
		t.Error("overview without a trend by month")
	}
	if n := eval[float64](ta, `document.querySelectorAll('svg.trend-chart circle').length`); n == 0 {
		t.Error("overview without the trend picture")
	}
	ta.open("/console/en/reports/impact")
	if got := ta.text("#impact-netherlands tbody tr td"); got != "NL" {
		t.Errorf("impact comparison starts with %q, want NL", got)
	}

	// A bad filter: the error, announced, and no figure.
	ta.open("/console/en/reports/flows?from=2026-03-01&to=2026-02-01")
	ta.waitFor(`document.querySelector('#report-errors')`)
	if eval[bool](ta, `!!document.querySelector('table')`) {
		t.Error("a table beside a filter error")
	}
	ta.axe("reports-error-en")

	// Print: the filters, tabs and header are hidden, the tables stay.
	ta.open("/console/en/reports/flows")
	if _, err := chromedp.Call(ta.ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Media: "print"}); err != nil {
		t.Fatal(err)
	}
	for sel, want := range map[string]string{"#report-filters": "none", "header": "none", ".no-print": "none", "#matrix": "table"} {
		if got := eval[string](ta, `getComputedStyle(document.querySelector(`+jsString(sel)+`)).display`); got != want {
			t.Errorf("print: %s display %q, want %q", sel, got, want)
		}
	}
	pdf := get(ta, chromedp.PrintToPDF())
	if !bytes.HasPrefix(pdf, []byte("%PDF-")) || len(pdf) < 1000 {
		t.Errorf("print to PDF: %d bytes", len(pdf))
	}
}
