package web

import (
	"bufio"
	"bytes"
	"embed"
	"fmt"
	"slices"
	"strings"
)

// The rights texts: rights/<lang>.txt, one file per language so that an
// organisation can correct its language by pull request. Format:
//
//	status: draft            (reference, draft or reviewed)
//
//	## <slug> | <articles> | <title>
//	A paragraph, on one or more lines.
//
//	Another paragraph.
//
// Every language has the rights of English, in its order, with the same
// slugs and articles (a test checks it).
//
//go:embed rights/*.txt
var rightsFiles embed.FS

// rightsDoc is the rights texts of one language.
type rightsDoc struct {
	Status string
	Rights []*right
}

// right is one right: its slug (the address), the articles of Directive
// 2012/29/EU it comes from, a title and the plain text.
type right struct {
	Slug, Articles, Title string
	Paragraphs            []string
}

func loadRights() (map[string]*rightsDoc, error) {
	out := map[string]*rightsDoc{}
	for _, lang := range Languages {
		name := "rights/" + lang + ".txt"
		b, err := rightsFiles.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("web: rights: %w", err)
		}
		d, err := parseRights(b)
		if err != nil {
			return nil, fmt.Errorf("web: %s: %w", name, err)
		}
		out[lang] = d
	}
	en := out[DefaultLanguage]
	for _, lang := range Languages {
		d := out[lang]
		if len(d.Rights) != len(en.Rights) {
			return nil, fmt.Errorf("web: rights/%s.txt has %d rights, English has %d", lang, len(d.Rights), len(en.Rights))
		}
		for i, r := range d.Rights {
			if r.Slug != en.Rights[i].Slug || r.Articles != en.Rights[i].Articles {
				return nil, fmt.Errorf("web: rights/%s.txt: right %d is %s (%s), English has %s (%s)", lang, i+1, r.Slug, r.Articles, en.Rights[i].Slug, en.Rights[i].Articles)
			}
		}
	}
	return out, nil
}

func parseRights(b []byte) (*rightsDoc, error) {
	d := &rightsDoc{}
	var cur *right
	var para []string
	flush := func() {
		if cur != nil && len(para) > 0 {
			cur.Paragraphs = append(cur.Paragraphs, strings.Join(para, " "))
		}
		para = nil
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case cur == nil && strings.HasPrefix(line, "status:"):
			d.Status = strings.TrimSpace(strings.TrimPrefix(line, "status:"))
			if !slices.Contains([]string{"reference", "draft", "reviewed"}, d.Status) {
				return nil, fmt.Errorf("line %d: status %q is not reference, draft or reviewed", n, d.Status)
			}
		case strings.HasPrefix(line, "## "):
			flush()
			parts := strings.Split(strings.TrimPrefix(line, "## "), "|")
			if len(parts) != 3 {
				return nil, fmt.Errorf("line %d: a right starts with ## <slug> | <articles> | <title>", n)
			}
			cur = &right{Slug: strings.TrimSpace(parts[0]), Articles: strings.TrimSpace(parts[1]), Title: strings.TrimSpace(parts[2])}
			d.Rights = append(d.Rights, cur)
		case line == "":
			flush()
		case cur == nil:
			return nil, fmt.Errorf("line %d: text before the first right", n)
		default:
			para = append(para, line)
		}
	}
	flush()
	if d.Status == "" {
		return nil, fmt.Errorf("no status line")
	}
	for _, r := range d.Rights {
		if len(r.Paragraphs) == 0 {
			return nil, fmt.Errorf("right %s has no text", r.Slug)
		}
	}
	return d, sc.Err()
}

// Draft reports whether the texts still wait for a native speaker's review.
func (d *rightsDoc) Draft() bool { return d.Status == "draft" }

// find returns the right with the slug, or nil.
func (d *rightsDoc) find(slug string) *right {
	for _, r := range d.Rights {
		if r.Slug == slug {
			return r
		}
	}
	return nil
}
