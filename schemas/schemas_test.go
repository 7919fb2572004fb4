package schemas_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"

	"github.com/invictus-network/invictus/schemas"
)

const draft2020 = "https://json-schema.org/draft/2020-12/schema"

// compiled holds every payload schema compiled once with formats asserted.
var compiled = sync.OnceValues(func() (map[string]*jsonschema.Schema, error) {
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	names := append([]string{schemas.DefsFile}, fileNames(schemas.PayloadTypes())...)
	for _, name := range names {
		b, err := fs.ReadFile(schemas.FS(), name)
		if err != nil {
			return nil, err
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			return nil, err
		}
		if err := c.AddResource(schemas.URI(strings.TrimSuffix(name, ".json")), doc); err != nil {
			return nil, err
		}
	}
	out := map[string]*jsonschema.Schema{}
	for _, short := range schemas.PayloadTypes() {
		s, err := c.Compile(schemas.URI(short))
		if err != nil {
			return nil, err
		}
		out[short] = s
	}
	return out, nil
})

func fileNames(shorts []string) []string {
	out := make([]string, len(shorts))
	for i, s := range shorts {
		out[i] = schemas.FileName(s)
	}
	return out
}

func schemaOf(t *testing.T, short string) *jsonschema.Schema {
	t.Helper()
	all, err := compiled()
	if err != nil {
		t.Fatalf("compile schemas: %v", err)
	}
	s, ok := all[short]
	if !ok {
		t.Fatalf("no schema for %q", short)
	}
	return s
}

// instance parses JSON for jsonschema, keeping numbers exact (json.Number).
func instance(t *testing.T, b []byte) any {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("parse instance: %v", err)
	}
	return v
}

// failureLocations returns the instance locations (JSON pointers) of the
// innermost errors of err.
func failureLocations(err error) []string {
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return nil
	}
	var out []string
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			out = append(out, pointer(e.InstanceLocation))
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	return out
}

func pointer(tokens []string) string {
	var b strings.Builder
	for _, t := range tokens {
		b.WriteByte('/')
		b.WriteString(strings.ReplaceAll(strings.ReplaceAll(t, "~", "~0"), "/", "~1"))
	}
	return b.String()
}

func TestPayloadSchemasCompileAndDeclareThemselves(t *testing.T) {
	t.Parallel()
	if _, err := compiled(); err != nil {
		t.Fatalf("compile: %v", err)
	}
	for _, name := range append([]string{schemas.DefsFile}, fileNames(schemas.PayloadTypes())...) {
		var doc map[string]any
		if err := json.Unmarshal(mustRead(t, name), &doc); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if doc["$schema"] != draft2020 {
			t.Errorf("%s: $schema = %v, want %s", name, doc["$schema"], draft2020)
		}
		if want := schemas.URI(strings.TrimSuffix(name, ".json")); doc["$id"] != want {
			t.Errorf("%s: $id = %v, want %s", name, doc["$id"], want)
		}
		for _, k := range []string{"title", "description"} {
			if s, _ := doc[k].(string); s == "" {
				t.Errorf("%s: no %s", name, k)
			}
		}
		walkSchemas(doc, name, func(s map[string]any, at string) {
			props, hasProps := s["properties"]
			if !hasProps && !typeIs(s, "object") {
				return
			}
			ap, ok := s["additionalProperties"]
			switch {
			case !ok:
				t.Errorf("%s: object schema without additionalProperties", at)
			case hasProps && ap != false:
				t.Errorf("%s: additionalProperties = %v, want false next to properties", at, ap)
			}
			if m, ok := props.(map[string]any); ok {
				req, _ := s["required"].([]any)
				for _, r := range req {
					if _, ok := m[r.(string)]; !ok {
						t.Errorf("%s: required %q is not a property", at, r)
					}
				}
			}
		})
	}
	if n := len(schemas.PayloadTypes()); n != 21 {
		t.Errorf("PayloadTypes has %d types, want 21", n)
	}
}

// walkSchemas calls fn for every subschema of doc that sits where the
// property list, items or $defs put schemas (not inside if/then, whose
// partial schemas deliberately leave other members to their parent).
func walkSchemas(v any, at string, fn func(map[string]any, string)) {
	s, ok := v.(map[string]any)
	if !ok {
		return
	}
	fn(s, at)
	for _, k := range []string{"$defs", "properties"} {
		if m, ok := s[k].(map[string]any); ok {
			for name, sub := range m {
				walkSchemas(sub, at+"/"+k+"/"+name, fn)
			}
		}
	}
	for _, k := range []string{"items", "additionalProperties"} {
		if sub, ok := s[k].(map[string]any); ok {
			walkSchemas(sub, at+"/"+k, fn)
		}
	}
}

func typeIs(s map[string]any, want string) bool {
	switch t := s["type"].(type) {
	case string:
		return t == want
	case []any:
		return slices.Contains(t, any(want))
	}
	return false
}

func mustRead(t *testing.T, name string) []byte {
	t.Helper()
	b, err := fs.ReadFile(schemas.FS(), name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPayload(t *testing.T) {
	t.Parallel()
	want := mustRead(t, "referral.requested.v1.json")
	for _, name := range []string{"referral.requested.v1", "invictus.referral.requested.v1"} {
		got, err := schemas.Payload(name)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("Payload(%q) = %d bytes, %v; want referral.requested.v1.json", name, len(got), err)
		}
	}
	for _, name := range []string{"", "defs", "taxonomy", "asyncapi", "referral.requested.v2", "../referral.requested.v1", "examples/expectations", "referral.requested.v1.json"} {
		if _, err := schemas.Payload(name); !errors.Is(err, schemas.ErrNotFound) {
			t.Errorf("Payload(%q) error = %v, want ErrNotFound", name, err)
		}
	}
	if got := schemas.ShortType("invictus.command.rejected.v1"); got != "command.rejected.v1" {
		t.Errorf("ShortType = %q", got)
	}
	if !bytes.HasPrefix(schemas.AsyncAPI(), []byte("asyncapi: 3.0.0")) {
		t.Error("AsyncAPI() does not start with the AsyncAPI version")
	}
	if !json.Valid(schemas.Defs()) || !json.Valid(schemas.TaxonomyJSON()) {
		t.Error("Defs or TaxonomyJSON is not JSON")
	}
}

// TestCoordinateRange checks that the coordinate schemas state a range
// only: every latitude and longitude with two decimals is accepted, finer
// ones too (the node rounds them to 0.01 on receipt, which a multipleOf
// 0.01 evaluated in floating point cannot express portably), and values
// out of range are refused.
func TestCoordinateRange(t *testing.T) {
	t.Parallel()
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schemas.Defs()))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.AddResource(schemas.URI(schemas.DefsName), doc); err != nil {
		t.Fatal(err)
	}
	lon := c.MustCompile(schemas.URI(schemas.DefsName) + "#/$defs/longitude")
	lat := c.MustCompile(schemas.URI(schemas.DefsName) + "#/$defs/latitude")
	num := func(f string) any { return json.Number(f) }
	for i := -18000; i <= 18000; i++ {
		f := strconv.FormatFloat(float64(i)/100, 'f', -1, 64)
		if err := lon.Validate(num(f)); err != nil {
			t.Fatalf("longitude %s rejected: %v", f, err)
		}
		if i >= -9000 && i <= 9000 {
			if err := lat.Validate(num(f)); err != nil {
				t.Fatalf("latitude %s rejected: %v", f, err)
			}
		}
	}
	for _, f := range []string{"180.01", "-180.001", "1e3"} {
		if lon.Validate(num(f)) == nil {
			t.Errorf("longitude %s accepted", f)
		}
	}
	for _, f := range []string{"90.01", "-90.01"} {
		if lat.Validate(num(f)) == nil {
			t.Errorf("latitude %s accepted", f)
		}
	}
	for _, f := range []string{"38.7200", "3.872e1", "-0.0", "90", "38.725", "-9.1391"} {
		if err := lat.Validate(num(f)); err != nil {
			t.Errorf("latitude %s rejected: %v", f, err)
		}
	}
}

// expectations mirrors examples/expectations.json.
type expectations struct {
	Description string                 `json:"description"`
	Invalid     map[string]expectation `json:"invalid"`
}

type expectation struct {
	Class          string  `json:"class"`
	Pointer        string  `json:"pointer"`
	Code           string  `json:"code"`
	SchemaLocation *string `json:"schema_location"`
	Rule           string  `json:"rule"`
}

func loadExpectations(t *testing.T) expectations {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(mustRead(t, schemas.ExpectationsFile)))
	dec.DisallowUnknownFields()
	var e expectations
	if err := dec.Decode(&e); err != nil {
		t.Fatalf("%s: %v", schemas.ExpectationsFile, err)
	}
	return e
}

// TestExamplesAgainstSchemas validates the data of every golden example
// against its payload schema: valid examples pass; invalid ones fail at the
// recorded location, or pass when they break only an attribute.
func TestExamplesAgainstSchemas(t *testing.T) {
	t.Parallel()
	exp := loadExpectations(t)
	seen := map[string]bool{}
	for _, short := range schemas.PayloadTypes() {
		dir := path.Join(schemas.ExamplesDir, short)
		entries, err := fs.ReadDir(schemas.FS(), dir)
		if err != nil {
			t.Errorf("%s: no examples: %v", short, err)
			continue
		}
		var nValid, nInvalid int
		for _, e := range entries {
			name := e.Name()
			rel := short + "/" + name
			var event struct {
				Type       string          `json:"type"`
				DataSchema string          `json:"dataschema"`
				Data       json.RawMessage `json:"data"`
			}
			if err := json.Unmarshal(mustRead(t, path.Join(dir, name)), &event); err != nil {
				t.Errorf("%s: %v", rel, err)
				continue
			}
			err := schemaOf(t, short).Validate(instance(t, event.Data))
			switch {
			case strings.HasPrefix(name, "valid") && path.Ext(name) == ".json":
				nValid++
				if err != nil {
					t.Errorf("%s: valid example fails its schema: %v", rel, err)
				}
				if event.Type != schemas.TypePrefix+short || event.DataSchema != schemas.URI(short) {
					t.Errorf("%s: type %q, dataschema %q do not match the folder", rel, event.Type, event.DataSchema)
				}
			case strings.HasPrefix(name, "invalid-") && path.Ext(name) == ".json":
				nInvalid++
				seen[rel] = true
				x, ok := exp.Invalid[rel]
				if !ok {
					t.Errorf("%s: no expectation in %s", rel, schemas.ExpectationsFile)
					continue
				}
				if x.SchemaLocation == nil {
					if err != nil {
						t.Errorf("%s breaks only an attribute, but its data fails the schema: %v", rel, err)
					}
					continue
				}
				if err == nil {
					t.Errorf("%s: data passes the schema; want a failure at %q (%s)", rel, *x.SchemaLocation, x.Rule)
					continue
				}
				if locs := failureLocations(err); !slices.Contains(locs, *x.SchemaLocation) {
					t.Errorf("%s: schema fails at %q, want %q:\n%v", rel, locs, *x.SchemaLocation, err)
				}
			default:
				t.Errorf("%s: example names start with valid or invalid- and end in .json", rel)
			}
		}
		if nValid < 1 || nInvalid < 2 {
			t.Errorf("%s: %d valid and %d invalid examples; want at least 1 and 2", short, nValid, nInvalid)
		}
	}
	for rel := range exp.Invalid {
		if !seen[rel] {
			t.Errorf("%s: expectation for a file that does not exist", rel)
		}
	}
}

func TestTaxonomyLabels(t *testing.T) {
	t.Parallel()
	tax, err := schemas.LoadTaxonomy()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"en", "bg", "hr", "fi", "fr", "it", "nl", "pt"}
	if !slices.Equal(tax.Languages, want) {
		t.Fatalf("languages = %v, want %v", tax.Languages, want)
	}
	for _, l := range want {
		st := tax.ReviewStatus[l]
		switch {
		case l == "en" && st != schemas.ReviewReference:
			t.Errorf("review_status[en] = %q, want reference", st)
		case l != "en" && st != schemas.ReviewDraft && st != schemas.ReviewReviewed:
			t.Errorf("review_status[%s] = %q, want draft or reviewed", l, st)
		}
	}
	if len(tax.ReviewStatus) != len(want) {
		t.Errorf("review_status has %d languages, want %d", len(tax.ReviewStatus), len(want))
	}
	for section, terms := range tax.Sections() {
		if len(terms) == 0 {
			t.Errorf("section %s is empty", section)
		}
		seen := map[string]bool{}
		for _, term := range terms {
			if seen[term.Code] {
				t.Errorf("%s: %s listed twice", section, term.Code)
			}
			seen[term.Code] = true
			if len(term.Labels) != len(want) {
				t.Errorf("%s %s: %d labels, want %d", section, term.Code, len(term.Labels), len(want))
			}
			for _, l := range want {
				if lab := term.Labels[l]; strings.TrimSpace(lab) == "" || lab != strings.TrimSpace(lab) {
					t.Errorf("%s %s: label[%s] = %q", section, term.Code, l, lab)
				}
			}
			// Needs state their articles (an empty list when none applies);
			// other terms have none.
			if hasArticles := term.DirectiveArticles != nil; hasArticles != (section == "needs") {
				t.Errorf("%s %s: directive_articles = %v", section, term.Code, term.DirectiveArticles)
			}
		}
	}
	if got := tax.Label("needs", "safety.shelter", "fi"); got != "Turvakoti tai turvallinen majoitus" {
		t.Errorf("Label fi = %q", got)
	}
	if got := tax.Label("needs", "safety.shelter", "de"); got != "Shelter or safe accommodation" {
		t.Errorf("Label falls back to %q, want English", got)
	}
	if got := tax.Label("needs", "no.such", "fr"); got != "no.such" {
		t.Errorf("Label of unknown code = %q, want the code", got)
	}
}

// TestAsyncAPIRefs checks that every payload $ref of asyncapi.yaml names a
// schema of this folder and that every payload schema has its message.
func TestAsyncAPIRefs(t *testing.T) {
	t.Parallel()
	var doc struct {
		AsyncAPI   string `yaml:"asyncapi"`
		Components struct {
			Messages map[string]struct {
				Name    string `yaml:"name"`
				Payload struct {
					SchemaFormat string `yaml:"schemaFormat"`
					Schema       struct {
						Ref string `yaml:"$ref"`
					} `yaml:"schema"`
				} `yaml:"payload"`
			} `yaml:"messages"`
		} `yaml:"components"`
	}
	if err := yaml.Unmarshal(schemas.AsyncAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.AsyncAPI != "3.0.0" {
		t.Errorf("asyncapi = %q", doc.AsyncAPI)
	}
	covered := map[string]bool{}
	for key, m := range doc.Components.Messages {
		ref := m.Payload.Schema.Ref
		if ref == "" {
			continue
		}
		short := strings.TrimSuffix(strings.TrimPrefix(ref, "./"), ".json")
		if _, err := schemas.Payload(short); err != nil {
			t.Errorf("message %s: payload $ref %q: %v", key, ref, err)
		}
		if m.Name != schemas.TypePrefix+short {
			t.Errorf("message %s: name %q, want %q", key, m.Name, schemas.TypePrefix+short)
		}
		if m.Payload.SchemaFormat != "application/schema+json;version=draft-2020-12" {
			t.Errorf("message %s: schemaFormat %q", key, m.Payload.SchemaFormat)
		}
		covered[short] = true
	}
	for _, short := range schemas.PayloadTypes() {
		if !covered[short] {
			t.Errorf("%s: no message in asyncapi.yaml", short)
		}
	}
}
