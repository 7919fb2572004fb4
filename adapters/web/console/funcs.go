package console

import (
	"html/template"
	"strings"
	"time"
)

// funcs are the template functions of a language.
func (s *Server) funcs(lang string) template.FuncMap {
	p := s.cat.Printer(lang)
	return template.FuncMap{
		"t":      p.T,
		"tn":     p.N,
		"static": s.staticURL,
		"label":  func(section, code string) string { return s.tax.Label(section, code, lang) },
		"errs": func(e fieldErrors, field string) []string {
			if e == nil {
				return nil
			}
			return e[field]
		},
		"when": func(t time.Time) string {
			if t.IsZero() {
				return ""
			}
			return t.UTC().Format("2006-01-02 15:04 UTC")
		},
		"iso": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"fe": func(e fieldErrors, field string) any {
			return struct {
				Field string
				Msgs  []string
			}{field, e[field]}
		},
		"lst": func(label, name, kind string, cs []choice, e fieldErrors) any {
			return struct {
				Label, Name, Kind string
				Choices           []choice
				Msgs              []string
			}{label, name, kind, cs, e[name]}
		},
		"field": func(label, name, kind, value, hint string, e fieldErrors) any {
			return struct {
				Label, Name, Kind, Value, Hint string
				Msgs                           []string
			}{label, name, kind, value, hint, e[name]}
		},
		"dict2": func(field string, msgs []string) any {
			return struct {
				Field string
				Msgs  []string
			}{field, msgs}
		},
		"join": func(xs []string) string { return strings.Join(xs, ", ") },
		"seq": func(n int) []int {
			out := make([]int, n)
			for i := range out {
				out[i] = i + 1
			}
			return out
		},
	}
}
