package web

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Languages are the languages of the pages, in the order of the language
// switcher: those of the taxonomy (schemas/taxonomy.json), English first.
var Languages = []string{"en", "bg", "hr", "fi", "fr", "it", "nl", "pt"}

// DefaultLanguage is the language of a visitor whose Accept-Language names
// none of [Languages].
const DefaultLanguage = "en"

// LangLink is one entry of the language switcher: the same page in
// another language.
type LangLink struct {
	Code, Name, URL string
	Current         bool
}

// languageNames are the languages' own names, for the switcher.
var languageNames = map[string]string{
	"en": "English", "bg": "Български", "hr": "Hrvatski", "fi": "Suomi",
	"fr": "Français", "it": "Italiano", "nl": "Nederlands", "pt": "Português",
}

// LangLinks returns the language switcher of the page at path, served
// under prefix+lang ("/pt/find", "/console/pt/people"): the same page
// under prefix+<language> for each of [Languages], with suffix (a query,
// or "") appended. A path that is prefix+lang itself, or not followed by
// a "/" ("", "/console/ptx"), links to each language's home.
func LangLinks(prefix, lang, path, suffix string) []LangLink {
	rest := strings.TrimPrefix(path, prefix+lang)
	if !strings.HasPrefix(rest, "/") {
		rest = "/"
	}
	out := make([]LangLink, 0, len(Languages))
	for _, l := range Languages {
		out = append(out, LangLink{Code: l, Name: languageNames[l], URL: prefix + l + rest + suffix, Current: l == lang})
	}
	return out
}

//go:embed translations/*.json
var translationFiles embed.FS

// reviewKey is the catalog entry that says whether a language's
// translation has been reviewed by a native speaker: "reference" (English),
// "draft" or "reviewed".
const reviewKey = "_review_status"

// pluralForms is the number of plural forms of each language: CLDR's
// cardinal categories used by the catalogs (one/other; Croatian has
// one/few/other).
var pluralForms = map[string]int{"en": 2, "bg": 2, "hr": 3, "fi": 2, "fr": 2, "it": 2, "nl": 2, "pt": 2}

// Catalog holds the translated messages of every language. Keys are
// English-like identifiers; a value is a string (a fmt format) or, for a
// plural, a list of one format per plural form of the language.
type Catalog struct {
	msgs   map[string]map[string]any
	review map[string]string
}

// LoadCatalog parses the embedded translations/<lang>.json files. It
// returns an error naming the file and key of a malformed message.
func LoadCatalog() (*Catalog, error) { return loadCatalog(translationFiles, "translations") }

// LoadCatalogFS parses the catalogs <dir>/<lang>.json of fsys, one per
// language of [Languages], with the rules of [LoadCatalog]: the web
// console keeps its own messages this way.
func LoadCatalogFS(fsys fs.FS, dir string) (*Catalog, error) { return loadCatalog(fsys, dir) }

func loadCatalog(fsys fs.FS, dir string) (*Catalog, error) {
	c := &Catalog{msgs: map[string]map[string]any{}, review: map[string]string{}}
	for _, lang := range Languages {
		name := dir + "/" + lang + ".json"
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("web: catalog: %w", err)
		}
		var raw map[string]any
		if err := json.Unmarshal(b, &raw); err != nil {
			return nil, fmt.Errorf("web: catalog %s: %w", name, err)
		}
		m := make(map[string]any, len(raw))
		for k, v := range raw {
			switch v := v.(type) {
			case string:
				if k == reviewKey {
					c.review[lang] = v
					continue
				}
				m[k] = v
			case []any:
				forms := make([]string, len(v))
				for i, f := range v {
					s, ok := f.(string)
					if !ok {
						return nil, fmt.Errorf("web: catalog %s: %q: plural form %d is not a string", name, k, i)
					}
					forms[i] = s
				}
				m[k] = forms
			default:
				return nil, fmt.Errorf("web: catalog %s: %q is neither a string nor a list of plural forms", name, k)
			}
		}
		c.msgs[lang] = m
	}
	return c, nil
}

// Draft reports whether the language's translation is a draft that no
// native speaker has reviewed yet; pages in it say so.
func (c *Catalog) Draft(lang string) bool {
	return c.review[lang] != "reference" && c.review[lang] != "reviewed"
}

// Keys returns the sorted keys of a language.
func (c *Catalog) Keys(lang string) []string {
	keys := make([]string, 0, len(c.msgs[lang]))
	for k := range c.msgs[lang] {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Printer returns the translation functions of one language.
func (c *Catalog) Printer(lang string) Printer { return Printer{lang: lang, c: c} }

// Printer translates into one language, falling back to English and then
// to the key itself, so that a page always shows something.
type Printer struct {
	lang string
	c    *Catalog
}

// Lang returns the printer's language.
func (p Printer) Lang() string { return p.lang }

func (p Printer) lookup(key string) any {
	if v, ok := p.c.msgs[p.lang][key]; ok {
		return v
	}
	if v, ok := p.c.msgs[DefaultLanguage][key]; ok {
		return v
	}
	return nil
}

// T returns the message of key, formatted with args (fmt verbs).
func (p Printer) T(key string, args ...any) string {
	switch v := p.lookup(key).(type) {
	case string:
		if len(args) == 0 {
			return v
		}
		return fmt.Sprintf(v, args...)
	case []string:
		return p.N(key, 1, args...)
	}
	return key
}

// N returns the plural form of key for the count n, formatted with n and
// then args.
func (p Printer) N(key string, n int, args ...any) string {
	forms, ok := p.lookup(key).([]string)
	if !ok || len(forms) == 0 {
		return p.T(key, append([]any{n}, args...)...)
	}
	i := min(pluralIndex(p.lang, n), len(forms)-1)
	return fmt.Sprintf(forms[i], append([]any{n}, args...)...)
}

// pluralIndex returns the plural form of n in lang: CLDR's rules for
// integers.
func pluralIndex(lang string, n int) int {
	switch lang {
	case "hr": // one: n%10=1 and n%100!=11; few: n%10=2..4 and n%100 not 12..14
		switch {
		case n%10 == 1 && n%100 != 11:
			return 0
		case n%10 >= 2 && n%10 <= 4 && (n%100 < 12 || n%100 > 14):
			return 1
		}
		return 2
	case "fr", "pt": // one: 0 and 1
		if n == 0 || n == 1 {
			return 0
		}
		return 1
	}
	if n == 1 {
		return 0
	}
	return 1
}

// Negotiate returns the best of [Languages] for an Accept-Language header
// value (RFC 9110: q-values, primary subtags, "*"), or DefaultLanguage.
func Negotiate(header string) string {
	type choice struct {
		lang string
		q    float64
		pos  int
	}
	var cs []choice
	for i, part := range strings.Split(header, ",") {
		tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || f < 0 || f > 1 {
				continue
			}
			q = f
		}
		primary, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(tag)), "-")
		if q == 0 || primary == "" {
			continue
		}
		if primary == "*" {
			primary = DefaultLanguage
		}
		if slices.Contains(Languages, primary) {
			cs = append(cs, choice{primary, q, i})
		}
	}
	if len(cs) == 0 {
		return DefaultLanguage
	}
	slices.SortStableFunc(cs, func(a, b choice) int {
		switch {
		case a.q > b.q:
			return -1
		case a.q < b.q:
			return 1
		}
		return a.pos - b.pos
	})
	return cs[0].lang
}
