package schemas

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"golang.org/x/text/language"
	"golang.org/x/text/language/display"
)

// Taxonomy is the parsed taxonomy.json: every code of the contract with its
// labels. Labels in languages whose ReviewStatus is "draft" have not yet been
// reviewed by native speakers.
type Taxonomy struct {
	// Title and Description say what the file is.
	Title       string `json:"title"`
	Description string `json:"description"`
	// Version is the version of the file's layout (1).
	Version int `json:"version"`
	// Languages lists the label languages (ISO 639-1); the first, "en", is
	// the reference.
	Languages []string `json:"languages"`
	// ReviewStatus is "reference", "draft" or "reviewed" per language.
	ReviewStatus map[string]string `json:"review_status"`
	// ReviewNote explains what draft labels are and how to review them.
	ReviewNote string `json:"review_note"`
	// Directive names Directive 2012/29/EU, whose articles needs cite.
	Directive string `json:"directive"`

	// The code lists, each in the order of the matching list of package
	// events (Needs, Crimes, Flags, Urgencies, AgeBands...).
	Needs            []Term `json:"needs"`
	Crimes           []Term `json:"crimes"`
	Flags            []Term `json:"flags"`
	Urgencies        []Term `json:"urgencies"`
	AgeBands         []Term `json:"age_bands"`
	Genders          []Term `json:"genders"`
	Channels         []Term `json:"channels"`
	Accessibility    []Term `json:"accessibility"`
	ConsentMethods   []Term `json:"consent_methods"`
	DeclineReasons   []Term `json:"decline_reasons"`
	Outcomes         []Term `json:"outcomes"`
	WithdrawReasons  []Term `json:"withdraw_reasons"`
	CapacityStatuses []Term `json:"capacity_statuses"`

	// Explanations are the words of a routing plan: not codes of the
	// contract but the labels that explain a plan to a caseworker.
	Explanations Explanations `json:"explanations"`
}

// Explanations are the labels of a routing plan's codes, which package
// routing defines (its Reason*, Constraint*, Unmatched* and Component*
// constants), and the words that put them together. A label of a reason
// may hold placeholders: {terms} (the labels it names, joined with "and"),
// {list} (the same, joined with commas), {n}, {m}, {k}, {e} (numbers),
// {km} (a distance) and {need} (a need's label).
type Explanations struct {
	// Reasons say why a candidate is proposed or what it does not meet.
	Reasons []Term `json:"reasons"`
	// Constraints name the hard constraints that exclude services.
	Constraints []Term `json:"constraints"`
	// UnmatchedReasons say why a need is not covered.
	UnmatchedReasons []Term `json:"unmatched_reasons"`
	// Components name the components of a candidate's score.
	Components []Term `json:"components"`
	// Words are the rest: "and", the decimal point, headings.
	Words []Term `json:"words"`
}

// Sections returns the explanation sections by name ("reasons",
// "constraints", "unmatched_reasons", "components", "words").
func (e *Explanations) Sections() map[string][]Term {
	return map[string][]Term{
		"reasons":           e.Reasons,
		"constraints":       e.Constraints,
		"unmatched_reasons": e.UnmatchedReasons,
		"components":        e.Components,
		"words":             e.Words,
	}
}

// Term is one code with its label per language.
type Term struct {
	// Code is the stable code, as it appears in payloads.
	Code string `json:"code"`
	// DirectiveArticles lists, for needs, the articles of Directive
	// 2012/29/EU the need comes from, e.g. "9(1)(a)"; empty when none.
	DirectiveArticles []string `json:"directive_articles,omitempty"`
	// Labels maps a language code to the label.
	Labels map[string]string `json:"labels"`
}

// Review statuses of a label language.
const (
	ReviewReference = "reference"
	ReviewDraft     = "draft"
	ReviewReviewed  = "reviewed"
)

// LoadTaxonomy parses the embedded taxonomy.json. Each call returns a new
// value that the caller may keep and modify. It fails only if the embedded
// file is not a valid taxonomy, which the package's tests rule out.
func LoadTaxonomy() (*Taxonomy, error) {
	dec := json.NewDecoder(bytes.NewReader(TaxonomyJSON()))
	dec.DisallowUnknownFields()
	var t Taxonomy
	if err := dec.Decode(&t); err != nil {
		return nil, fmt.Errorf("schemas: parse %s: %w", TaxonomyFile, err)
	}
	return &t, nil
}

// Sections returns every list of terms by its key in taxonomy.json
// ("needs", "crimes", "age_bands"...).
func (t *Taxonomy) Sections() map[string][]Term {
	return map[string][]Term{
		"needs":             t.Needs,
		"crimes":            t.Crimes,
		"flags":             t.Flags,
		"urgencies":         t.Urgencies,
		"age_bands":         t.AgeBands,
		"genders":           t.Genders,
		"channels":          t.Channels,
		"accessibility":     t.Accessibility,
		"consent_methods":   t.ConsentMethods,
		"decline_reasons":   t.DeclineReasons,
		"outcomes":          t.Outcomes,
		"withdraw_reasons":  t.WithdrawReasons,
		"capacity_statuses": t.CapacityStatuses,
	}
}

// Term returns the term of code in section, and false when there is none.
// The section is one of Sections or of Explanations.Sections.
func (t *Taxonomy) Term(section, code string) (Term, bool) {
	terms, ok := t.Sections()[section]
	if !ok {
		terms = t.Explanations.Sections()[section]
	}
	for _, term := range terms {
		if term.Code == code {
			return term, true
		}
	}
	return Term{}, false
}

// Label returns the label of code in section in language lang, falling
// back to English and then to the code itself, so that a caller always has
// something to show. Besides the sections of the file, "languages" names
// an ISO 639-1 language and "countries" a country of [events.Countries]
// (lower case), in lang, from the Unicode CLDR names that
// golang.org/x/text carries.
func (t *Taxonomy) Label(section, code, lang string) string {
	switch section {
	case "languages", "countries":
		return placeName(section, code, lang)
	}
	term, ok := t.Term(section, code)
	if !ok {
		return code
	}
	if l := term.Labels[lang]; l != "" {
		return l
	}
	if l := term.Labels["en"]; l != "" {
		return l
	}
	return code
}

// placeName is the CLDR name of a language or country code in lang, the
// code itself when CLDR has none.
func placeName(section, code, lang string) string {
	in, err := language.Parse(lang)
	if err != nil {
		in = language.English
	}
	var name string
	switch section {
	case "languages":
		if tag, err := language.Parse(code); err == nil {
			name = display.Tags(in).Name(tag)
		}
	case "countries":
		if r, err := language.ParseRegion(strings.ToUpper(code)); err == nil {
			name = display.Regions(in).Name(r)
		}
	}
	if name == "" {
		return code
	}
	return name
}
