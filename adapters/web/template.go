package web

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"path"
	"strings"
)

// The templates, as in miniflux: templates/common holds the layout and the
// parts shared by pages, templates/views one file per page (each defines
// "content" and "title" and is drawn inside "layout"), and
// templates/standalone the pages drawn without the layout (each defines a
// template named after its file, without .html).
//
//go:embed templates
var templateFiles embed.FS

// engine holds the parsed templates, once per language so that the
// translation function t of each set is bound to its language: a request
// picks the set of its language, and parsing happens once, at start.
type engine struct {
	views      map[string]map[string]*template.Template // lang -> view -> template
	standalone map[string]map[string]*template.Template
}

// newEngine parses every template for every language; funcs returns the
// functions of a language (t, tn, label...).
func newEngine(funcs func(lang string) template.FuncMap) (*engine, error) {
	e := &engine{views: map[string]map[string]*template.Template{}, standalone: map[string]map[string]*template.Template{}}
	views, err := fs.Glob(templateFiles, "templates/views/*.html")
	if err != nil {
		return nil, err
	}
	alone, err := fs.Glob(templateFiles, "templates/standalone/*.html")
	if err != nil {
		return nil, err
	}
	for _, lang := range Languages {
		common, err := template.New("common").Funcs(funcs(lang)).ParseFS(templateFiles, "templates/common/*.html")
		if err != nil {
			return nil, fmt.Errorf("web: templates/common: %w", err)
		}
		e.views[lang] = map[string]*template.Template{}
		e.standalone[lang] = map[string]*template.Template{}
		for _, set := range []struct {
			files []string
			into  map[string]*template.Template
		}{{views, e.views[lang]}, {alone, e.standalone[lang]}} {
			for _, f := range set.files {
				t, err := template.Must(common.Clone()).ParseFS(templateFiles, f)
				if err != nil {
					return nil, fmt.Errorf("web: %s: %w", f, err)
				}
				set.into[strings.TrimSuffix(path.Base(f), ".html")] = t
			}
		}
	}
	return e, nil
}

// render executes a view inside the layout, or a standalone page, into a
// buffer, so that a template error never sends half a page.
func (e *engine) render(lang, name string, data any) ([]byte, error) {
	var buf bytes.Buffer
	if t, ok := e.views[lang][name]; ok {
		if err := t.ExecuteTemplate(&buf, "layout", data); err != nil {
			return nil, fmt.Errorf("web: render %s/%s: %w", lang, name, err)
		}
		return buf.Bytes(), nil
	}
	if t, ok := e.standalone[lang][name]; ok {
		if err := t.ExecuteTemplate(&buf, name, data); err != nil {
			return nil, fmt.Errorf("web: render %s/%s: %w", lang, name, err)
		}
		return buf.Bytes(), nil
	}
	return nil, fmt.Errorf("web: no template %q", name)
}
