package console_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/invictus-network/invictus/adapters/web"
	"github.com/invictus-network/invictus/adapters/web/console"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/routing"
)

func readCatalog(t *testing.T, lang string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("translations", lang+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", lang, err)
	}
	return m
}

var reVerb = regexp.MustCompile(`%[-+# 0]*[0-9.]*[a-zA-Z%]`)

func verbs(v any) []string {
	switch v := v.(type) {
	case string:
		return reVerb.FindAllString(v, -1)
	case []any:
		if len(v) > 0 {
			s, _ := v[len(v)-1].(string)
			return reVerb.FindAllString(s, -1)
		}
	}
	return nil
}

// pluralForms is CLDR's number of cardinal forms the catalogs use.
var pluralForms = map[string]int{"en": 2, "bg": 2, "hr": 3, "fi": 2, "fr": 2, "it": 2, "nl": 2, "pt": 2}

// TestCatalogs: every language has every English message, with the
// same format verbs and the right number of plural forms, and the English
// catalog holds every key the templates and handlers use. (A message a
// language lacked would fall back to English; none may.)
func TestCatalogs(t *testing.T) {
	en := readCatalog(t, "en")
	for _, lang := range web.Languages {
		m := readCatalog(t, lang)
		if m["_review_status"] == nil {
			t.Errorf("%s: no _review_status", lang)
		}
		n := 0
		for k, v := range m {
			if k == "_review_status" {
				continue
			}
			n++
			ev, ok := en[k]
			if !ok {
				t.Errorf("%s: key %q is not in English", lang, k)
				continue
			}
			if got, want := strings.Join(verbs(v), " "), strings.Join(verbs(ev), " "); got != want {
				t.Errorf("%s: %q has verbs %q, English %q", lang, k, got, want)
			}
			if forms, ok := v.([]any); ok && len(forms) != pluralForms[lang] {
				t.Errorf("%s: plural %q has %d forms, want %d", lang, k, len(forms), pluralForms[lang])
			} else if _, isPlural := ev.([]any); isPlural && !ok {
				t.Errorf("%s: %q must be a plural", lang, k)
			}
		}
		for k := range en {
			if _, ok := m[k]; !ok {
				t.Errorf("%s lacks %q: every language has every message", lang, k)
			}
		}
		t.Logf("%s: %d of %d messages (%v)", lang, n, len(en)-1, m["_review_status"])
	}
	// Every literal key in the templates and the Go code.
	re := regexp.MustCompile(`(?:\{\{-?\s*(?:t|tn)\s+|\(t\s+|\(tn\s+|\.T\(|\.N\()"([a-z_0-9]+\.[a-z_0-9.]+)"`)
	files, _ := filepath.Glob("templates/*/*.html")
	gofiles, _ := filepath.Glob("*.go")
	for _, f := range append(files, gofiles...) {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			if _, ok := en[m[1]]; !ok {
				t.Errorf("%s uses %q, which English lacks", f, m[1])
			}
		}
	}
	// The keys made from codes.
	need := []string{}
	for _, r := range console.Roles {
		need = append(need, "role."+string(r))
	}
	for _, c := range []string{routing.ComponentNeeds, routing.ComponentSpecialisation, routing.ComponentLanguage, routing.ComponentDistance,
		routing.ComponentChannel, routing.ComponentAccessibility, routing.ComponentLoad, routing.ComponentAcceptance, routing.ComponentResponseTime, routing.ComponentResidence} {
		need = append(need, "why."+c, "notmet."+c)
	}
	for _, m := range events.FeedbackMissing {
		need = append(need, "missing."+m)
	}
	for _, typ := range events.Types() {
		if short, ok := strings.CutPrefix(typ, "invictus.referral."); ok {
			need = append(need, "event."+strings.TrimSuffix(short, ".v1"))
		}
	}
	for _, k := range need {
		if _, ok := en[k]; !ok {
			t.Errorf("English lacks %q", k)
		}
	}
}
