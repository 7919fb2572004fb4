package web

import (
	"io/fs"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// verbs returns the fmt verbs of a message, in order.
func verbs(s string) []string {
	return regexp.MustCompile(`%[a-z]`).FindAllString(strings.ReplaceAll(s, "%%", ""), -1)
}

// TestCatalogComplete fails when a key is missing from a language, a
// language has a key English lacks, a plural has the wrong number of
// forms, or a translation's fmt verbs differ from English's.
func TestCatalogComplete(t *testing.T) {
	c, err := LoadCatalog()
	if err != nil {
		t.Fatal(err)
	}
	en := c.Keys("en")
	if len(en) < 100 {
		t.Fatalf("the English catalog has %d keys; expected the whole site", len(en))
	}
	for _, lang := range Languages {
		keys := c.Keys(lang)
		for _, k := range en {
			if !slices.Contains(keys, k) {
				t.Errorf("%s: missing key %q", lang, k)
			}
		}
		for _, k := range keys {
			if !slices.Contains(en, k) {
				t.Errorf("%s: key %q is not in English", lang, k)
			}
		}
		for _, k := range keys {
			want, got := c.msgs["en"][k], c.msgs[lang][k]
			switch w := want.(type) {
			case string:
				g, ok := got.(string)
				if !ok {
					t.Errorf("%s: %q is a plural; English has one form", lang, k)
					continue
				}
				if !slices.Equal(verbs(w), verbs(g)) {
					t.Errorf("%s: %q has verbs %v, English %v", lang, k, verbs(g), verbs(w))
				}
				if strings.TrimSpace(g) == "" {
					t.Errorf("%s: %q is empty", lang, k)
				}
			case []string:
				g, ok := got.([]string)
				if !ok {
					t.Errorf("%s: %q must be a plural", lang, k)
					continue
				}
				if len(g) != pluralForms[lang] {
					t.Errorf("%s: %q has %d plural forms; %s has %d", lang, k, len(g), lang, pluralForms[lang])
				}
				for _, form := range g {
					if !slices.Equal(verbs(w[0]), verbs(form)) {
						t.Errorf("%s: %q form %q has verbs %v, English %v", lang, k, form, verbs(form), verbs(w[0]))
					}
				}
			}
		}
		if lang != "en" && !c.Draft(lang) {
			t.Errorf("%s: marked reviewed, but no native speaker has reviewed it yet", lang)
		}
	}
	if c.Draft("en") {
		t.Error("English is the reference, not a draft")
	}
}

// TestCatalogCoversTemplates fails when a template or the code uses a key
// that English lacks.
func TestCatalogCoversTemplates(t *testing.T) {
	c, err := LoadCatalog()
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`\b(?:t|tn) "([a-z0-9_.]+)"`)
	n := 0
	err = fs.WalkDir(templateFiles, "templates", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(templateFiles, p)
		if err != nil {
			return err
		}
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			n++
			if _, ok := c.msgs["en"][m[1]]; !ok {
				t.Errorf("%s uses %q, which the catalog lacks", p, m[1])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 50 {
		t.Fatalf("found only %d keys in the templates", n)
	}
	for _, d := range []string{"mo", "tu", "we", "th", "fr", "sa", "su"} {
		if _, ok := c.msgs["en"]["day."+d]; !ok {
			t.Errorf("missing day.%s", d)
		}
	}
}

func TestPlural(t *testing.T) {
	c, err := LoadCatalog()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		lang string
		n    int
		want string
	}{
		{"en", 1, "1 service"}, {"en", 0, "0 services"}, {"en", 2, "2 services"},
		{"fr", 0, "0 service"}, {"fr", 1, "1 service"}, {"fr", 2, "2 services"},
		{"hr", 1, "1 služba"}, {"hr", 21, "21 služba"}, {"hr", 3, "3 službe"}, {"hr", 12, "12 službi"}, {"hr", 5, "5 službi"},
		{"pt", 1, "1 serviço"}, {"pt", 7, "7 serviços"},
	} {
		if got := c.Printer(tc.lang).N("map.services", tc.n); got != tc.want {
			t.Errorf("%s %d: %q, want %q", tc.lang, tc.n, got, tc.want)
		}
	}
}

func TestNegotiate(t *testing.T) {
	for h, want := range map[string]string{
		"":                               "en",
		"pt-PT,pt;q=0.9,en;q=0.8":        "pt",
		"de-DE, fr;q=0.5, nl;q=0.7":      "nl",
		"hr;q=0, fi":                     "fi",
		"es, *;q=0.1":                    "en",
		"BG":                             "bg",
		"it;q=0.3, it-CH;q=0.9, fr;q=.5": "it",
		"xx;q=abc, fr":                   "fr",
	} {
		if got := Negotiate(h); got != want {
			t.Errorf("Negotiate(%q) = %q, want %q", h, got, want)
		}
	}
}

func TestRightsTexts(t *testing.T) {
	docs, err := loadRights()
	if err != nil {
		t.Fatal(err)
	}
	var arts []string
	for _, r := range docs["en"].Rights {
		arts = append(arts, r.Articles)
	}
	if want := []string{"3", "4", "7", "8, 9", "18, 22", "16", "17"}; !slices.Equal(arts, want) {
		t.Errorf("English rights cite articles %v, want %v", arts, want)
	}
	for _, lang := range Languages {
		d := docs[lang]
		if (lang == "en") == d.Draft() {
			t.Errorf("%s: status %q: English is the reference, every other language a draft until reviewed", lang, d.Status)
		}
		for i, r := range d.Rights {
			if r.Title == "" || len(r.Paragraphs) == 0 {
				t.Errorf("%s: right %s is empty", lang, r.Slug)
			}
			if en := docs["en"].Rights[i]; lang != "en" && (r.Title == en.Title || r.Paragraphs[0] == en.Paragraphs[0]) {
				t.Errorf("%s: right %s is the English text, not a translation", lang, r.Slug)
			}
		}
	}
	if _, err := parseRights([]byte("status: draft\n\nsome text\n")); err == nil {
		t.Error("text before the first right was accepted")
	}
	if _, err := parseRights([]byte("status: final\n")); err == nil {
		t.Error("an unknown status was accepted")
	}
}
