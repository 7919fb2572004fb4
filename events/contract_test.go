package events_test

// The contract tests keep the Go payload structs (the source of the wire
// contract), the JSON Schemas, the taxonomy, the golden examples and the
// AsyncAPI document of package schemas in step. Run them with
// go test -run Contract ./events/.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"

	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/schemas"
)

// contractSchemas compiles every payload schema once, with format
// assertion on (date-time and date are checked, not just annotated).
var contractSchemas = sync.OnceValues(func() (map[string]*jsonschema.Schema, error) {
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	for _, name := range append([]string{schemas.DefsFile}, payloadFiles()...) {
		b, err := fs.ReadFile(schemas.FS(), name)
		if err != nil {
			return nil, err
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
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

func payloadFiles() []string {
	var out []string
	for _, s := range schemas.PayloadTypes() {
		out = append(out, schemas.FileName(s))
	}
	return out
}

// validateData validates a payload (JSON) against the schema of eventType.
func validateData(t *testing.T, eventType string, data []byte) error {
	t.Helper()
	all, err := contractSchemas()
	if err != nil {
		t.Fatalf("compile schemas: %v", err)
	}
	s, ok := all[schemas.ShortType(eventType)]
	if !ok {
		t.Fatalf("no schema for %s", eventType)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("parse data: %v", err)
	}
	return s.Validate(v)
}

// schemaFailures returns the instance locations (JSON pointers into data)
// of the innermost errors of a schema validation error.
func schemaFailures(err error) []string {
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return nil
	}
	var out []string
	var walk func(*jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			var b strings.Builder
			for _, tok := range e.InstanceLocation {
				b.WriteString("/" + strings.ReplaceAll(strings.ReplaceAll(tok, "~", "~0"), "/", "~1"))
			}
			out = append(out, b.String())
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	return out
}

// sentinels maps the names used in expectations.json to the error classes.
var sentinels = map[string]error{
	"ErrInvalid":          events.ErrInvalid,
	"ErrUnknownType":      events.ErrUnknownType,
	"ErrMissingAttribute": events.ErrMissingAttribute,
	"ErrContentType":      events.ErrContentType,
	"ErrInvalidUTF8":      events.ErrInvalidUTF8,
	"ErrTooLarge":         events.ErrTooLarge,
	"ErrUnknownField":     events.ErrUnknownField,
	"ErrMalformedJSON":    events.ErrMalformedJSON,
}

type goldenExample struct {
	short string // folder: the short type
	name  string // file name
	raw   []byte
}

func (g goldenExample) rel() string { return g.short + "/" + g.name }

func (g goldenExample) message() events.Message {
	return events.Message{
		Subject: "in.pt.apav",
		Header:  map[string][]string{"Content-Type": {"application/cloudevents+json"}},
		Data:    g.raw,
	}
}

// data returns the example's data member.
func (g goldenExample) data(t *testing.T) []byte {
	t.Helper()
	var e struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(g.raw, &e); err != nil {
		t.Fatalf("%s: %v", g.rel(), err)
	}
	return e.Data
}

// goldenExamples returns the examples whose name starts with prefix.
func goldenExamples(t *testing.T, prefix string) []goldenExample {
	t.Helper()
	var out []goldenExample
	for _, short := range schemas.PayloadTypes() {
		dir := path.Join(schemas.ExamplesDir, short)
		entries, err := fs.ReadDir(schemas.FS(), dir)
		if err != nil {
			t.Fatalf("examples of %s: %v", short, err)
		}
		for _, e := range entries {
			if !strings.HasPrefix(e.Name(), prefix) {
				continue
			}
			b, err := fs.ReadFile(schemas.FS(), path.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, goldenExample{short: short, name: e.Name(), raw: b})
		}
	}
	if len(out) == 0 {
		t.Fatalf("no %s* examples", prefix)
	}
	return out
}

// jsonEqual reports whether a and b hold the same JSON value.
func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		t.Fatal(err)
	}
	return reflect.DeepEqual(va, vb)
}

// TestContractValidExamples decodes every valid golden example with Decode
// (structured mode), validates its data against the JSON Schema, checks
// that the decoded payload encodes back to the same JSON, and round-trips
// the event through the binary mode.
func TestContractValidExamples(t *testing.T) {
	t.Parallel()
	for _, g := range goldenExamples(t, "valid") {
		t.Run(g.rel(), func(t *testing.T) {
			t.Parallel()
			env, err := events.Decode(g.message())
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if got := schemas.ShortType(env.Event.Type()); got != g.short {
				t.Fatalf("type %s, example is in folder %s", env.Event.Type(), g.short)
			}
			data := g.data(t)
			if err := validateData(t, env.Event.Type(), data); err != nil {
				t.Errorf("data fails its schema: %v", err)
			}
			again, err := json.Marshal(env.Payload)
			if err != nil {
				t.Fatal(err)
			}
			if !jsonEqual(t, data, again) && !strings.Contains(g.name, "rounded") {
				t.Errorf("decoded payload encodes to\n%s\nwant\n%s", again, data)
			}
			m, err := events.ToNATS("in.pt.apav", env.Event)
			if err != nil {
				t.Fatalf("ToNATS: %v", err)
			}
			back, err := events.Decode(m)
			if err != nil {
				t.Fatalf("Decode(binary): %v", err)
			}
			if !reflect.DeepEqual(back.Payload, env.Payload) || back.Event.ID() != env.Event.ID() || !back.Event.Time().Equal(env.Event.Time()) {
				t.Errorf("binary round trip changed the event: %+v, want %+v", back.Payload, env.Payload)
			}
		})
	}
}

type contractExpectation struct {
	Class          string  `json:"class"`
	Pointer        string  `json:"pointer"`
	Code           string  `json:"code"`
	SchemaLocation *string `json:"schema_location"`
	Rule           string  `json:"rule"`
}

// TestContractInvalidExamples decodes every invalid golden example and
// checks the error class and one problem (pointer and code) that
// expectations.json records; payload errors must also fail the JSON Schema
// at the recorded location, and attribute errors must leave the data valid.
func TestContractInvalidExamples(t *testing.T) {
	t.Parallel()
	var exp struct {
		Invalid map[string]contractExpectation `json:"invalid"`
	}
	b, err := fs.ReadFile(schemas.FS(), schemas.ExpectationsFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &exp); err != nil {
		t.Fatal(err)
	}
	examples := goldenExamples(t, "invalid-")
	if len(examples) != len(exp.Invalid) {
		t.Errorf("%d invalid examples, %d expectations", len(examples), len(exp.Invalid))
	}
	for _, g := range examples {
		x, ok := exp.Invalid[g.rel()]
		if !ok {
			t.Errorf("%s: no expectation", g.rel())
			continue
		}
		t.Run(g.rel(), func(t *testing.T) {
			t.Parallel()
			class, ok := sentinels[x.Class]
			if !ok {
				t.Fatalf("unknown class %q in expectations", x.Class)
			}
			env, err := events.Decode(g.message())
			if err == nil {
				t.Fatalf("Decode accepted it (%T); want %s at %s (%s)", env.Payload, x.Class, x.Pointer, x.Rule)
			}
			var ve *events.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Decode error %T %v, want *events.ValidationError", err, err)
			}
			if !errors.Is(err, class) || ve.Class != class {
				t.Errorf("class %v, want %s", ve.Class, x.Class)
			}
			found := slices.ContainsFunc(ve.Problems, func(p events.Problem) bool {
				return p.Pointer == x.Pointer && p.Code == x.Code
			})
			if !found {
				t.Errorf("no problem {%s %s}; got %+v", x.Pointer, x.Code, ve.Problems)
			}
			serr := validateData(t, schemas.TypePrefix+g.short, g.data(t))
			switch {
			case x.SchemaLocation == nil && serr != nil:
				t.Errorf("only an attribute is broken, but the data fails its schema: %v", serr)
			case x.SchemaLocation != nil && serr == nil:
				t.Errorf("data passes its schema; want a failure at %q", *x.SchemaLocation)
			case x.SchemaLocation != nil && !slices.Contains(schemaFailures(serr), *x.SchemaLocation):
				t.Errorf("schema fails at %q, want %q: %v", schemaFailures(serr), *x.SchemaLocation, serr)
			}
		})
	}
}

// TestContractSamplePayloadsMatchSchemas checks that what the Go code
// writes (SamplePayload encoded by encoding/json) is valid against the
// schemas, and so are zero-length optional lists encoded as null.
func TestContractSamplePayloadsMatchSchemas(t *testing.T) {
	t.Parallel()
	for _, typ := range events.Types() {
		p := events.SamplePayload(typ)
		if err := events.ValidatePayload(p); err != nil {
			t.Fatalf("%s: sample payload invalid: %v", typ, err)
		}
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := validateData(t, typ, b); err != nil {
			t.Errorf("%s: Go-encoded sample payload fails its schema: %v\n%s", typ, err, b)
		}
	}
	// Fields without omitempty and without a required rule encode as null
	// when nil; the schema must accept what the Go code writes.
	planned := &events.Planned{DirectoryRevision: 7, Unmatched: []events.UnmatchedNeed{{Need: events.NeedSafetyShelter, Reason: "no_service"}}}
	planned.Groups = nil
	if err := events.ValidatePayload(planned); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(planned)
	if err := validateData(t, events.TypeReferralPlanned, b); err != nil {
		t.Errorf("plan without groups %s: %v", b, err)
	}
}

// TestContractSchemasMatchStructs walks every payload struct by reflection
// and compares it with its schema, recursively: member names (json tags,
// embedded structs inlined), required members (no omitempty),
// additionalProperties false, JSON types, and every validate rule that a
// schema can state (enums, taxonomy codes, identifiers, lengths, ranges,
// uniqueness, formats, coordinate precision, consent, required_with).
func TestContractSchemasMatchStructs(t *testing.T) {
	t.Parallel()
	docs := loadSchemaDocs(t)
	for _, typ := range events.Types() {
		p, _ := events.NewPayload(typ)
		short := schemas.ShortType(typ)
		c := &structChecker{t: t, docs: docs}
		c.object(reflect.TypeOf(p).Elem(), node{file: schemas.FileName(short), m: docs[schemas.FileName(short)]}, short)
	}
}

// node is a schema object and the file it belongs to (for $ref resolution).
type node struct {
	file string
	m    map[string]any
	// defs lists the $defs names the $ref chain that led here went through.
	defs []string
}

func loadSchemaDocs(t *testing.T) map[string]map[string]any {
	t.Helper()
	docs := map[string]map[string]any{}
	for _, name := range append([]string{schemas.DefsFile}, payloadFiles()...) {
		b, err := fs.ReadFile(schemas.FS(), name)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		docs[name] = m
	}
	return docs
}

type structChecker struct {
	t    *testing.T
	docs map[string]map[string]any
}

func (c *structChecker) errorf(at, format string, args ...any) {
	c.t.Helper()
	c.t.Errorf("%s: %s", at, fmt.Sprintf(format, args...))
}

// resolve follows $ref (only "file#/$defs/name" and "#/$defs/name"
// references are used by the schemas).
func (c *structChecker) resolve(n node, at string) node {
	for range 10 {
		ref, ok := n.m["$ref"].(string)
		if !ok {
			return n
		}
		file, frag, _ := strings.Cut(ref, "#")
		if file == "" {
			file = n.file
		} else if f, ok := schemas.FileOfURI(file); ok {
			file = f
		}
		name, ok := strings.CutPrefix(frag, "/$defs/")
		doc, okDoc := c.docs[file]
		defs, _ := doc["$defs"].(map[string]any)
		m, okDef := defs[name].(map[string]any)
		if !ok || !okDoc || !okDef {
			c.errorf(at, "cannot resolve $ref %q", ref)
			return node{file: n.file, m: map[string]any{}}
		}
		n = node{file: file, m: m, defs: append(slices.Clone(n.defs), name)}
	}
	c.errorf(at, "$ref chain too long")
	return n
}

func (c *structChecker) types(n node) []string {
	switch v := n.m["type"].(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, x := range v {
			out = append(out, x.(string))
		}
		return out
	}
	return nil
}

// jsonMembers returns the JSON members of struct t in order, inlining
// untagged embedded structs as encoding/json does.
type member struct {
	name      string
	goName    string
	omitempty bool
	field     reflect.StructField
}

func jsonMembers(t reflect.Type) []member {
	var out []member
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" && opts == "" {
			continue
		}
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			out = append(out, jsonMembers(f.Type)...)
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out = append(out, member{name: name, goName: f.Name, omitempty: slices.Contains(strings.Split(opts, ","), "omitempty"), field: f})
	}
	return out
}

func (c *structChecker) object(t reflect.Type, n node, at string) {
	c.t.Helper()
	n = c.resolve(n, at)
	if !slices.Contains(c.types(n), "object") {
		c.errorf(at, "schema type %v, want object for %s", n.m["type"], t)
	}
	if ap, ok := n.m["additionalProperties"]; !ok || ap != false {
		c.errorf(at, "additionalProperties = %v, want false", ap)
	}
	props, _ := n.m["properties"].(map[string]any)
	var required []string
	if rs, ok := n.m["required"].([]any); ok {
		for _, r := range rs {
			required = append(required, r.(string))
		}
	}
	members := jsonMembers(t)
	byGo := map[string]string{}
	for _, m := range members {
		byGo[m.goName] = m.name
	}
	seen := map[string]bool{}
	for _, m := range members {
		seen[m.name] = true
		mat := at + "/" + m.name
		ps, ok := props[m.name].(map[string]any)
		if !ok {
			c.errorf(mat, "%s.%s has no property in the schema", t.Name(), m.goName)
			continue
		}
		if req := slices.Contains(required, m.name); req == m.omitempty {
			c.errorf(mat, "required in schema = %v, but omitempty = %v", req, m.omitempty)
		}
		tag := m.field.Tag.Get("validate")
		c.value(m.field.Type, tag, node{file: n.file, m: ps, defs: nil}, mat)
		// A nil slice or map without omitempty encodes as null; unless a
		// required rule forbids nil, the schema must accept what Go writes.
		if k := m.field.Type.Kind(); (k == reflect.Slice || k == reflect.Map) && !m.omitempty && !slices.Contains(strings.Split(tag, ","), "required") {
			if !slices.Contains(c.types(c.resolve(node{file: n.file, m: ps}, mat)), "null") {
				c.errorf(mat, "Go encodes a nil %s as null: the schema type must allow null", m.field.Type)
			}
		}
		// required_with=X on field F: F is required when X is present.
		for _, rule := range strings.Split(tag, ",") {
			other, ok := strings.CutPrefix(rule, "required_with=")
			if !ok {
				continue
			}
			dr, _ := n.m["dependentRequired"].(map[string]any)
			deps, _ := dr[byGo[other]].([]any)
			if !slices.Contains(deps, any(m.name)) {
				c.errorf(mat, "required_with=%s: want dependentRequired %q: [%q], got %v", other, byGo[other], m.name, dr)
			}
		}
	}
	for name := range props {
		if !seen[name] {
			c.errorf(at+"/"+name, "schema property has no field in %s", t)
		}
	}
	for _, r := range required {
		if !seen[r] {
			c.errorf(at, "schema requires %q, which %s does not have", r, t)
		}
	}
}

var timeType = reflect.TypeFor[time.Time]()

// splitRules splits a validate tag into the rules of the value itself,
// of the map keys and of the elements (after dive).
func splitRules(tag string) (self, keys, elem []string, hasDive bool) {
	if tag == "" {
		return nil, nil, nil, false
	}
	parts := strings.Split(tag, ",")
	i := slices.Index(parts, "dive")
	if i < 0 {
		return parts, nil, nil, false
	}
	self, rest := parts[:i], parts[i+1:]
	if len(rest) > 0 && rest[0] == "keys" {
		j := slices.Index(rest, "endkeys")
		keys, rest = rest[1:j], rest[j+1:]
	}
	return self, keys, rest, true
}

func (c *structChecker) value(t reflect.Type, tag string, n node, at string) {
	c.t.Helper()
	n = c.resolve(n, at)
	self, keys, elem, _ := splitRules(tag)
	types := c.types(n)
	wantType := func(want string, nullable bool) {
		if !slices.Contains(types, want) {
			// const true stands for a boolean.
			if !(want == "boolean" && n.m["const"] == true) {
				c.errorf(at, "schema type %v, want %s for %s", n.m["type"], want, t)
			}
		}
		if slices.Contains(types, "null") && !nullable {
			c.errorf(at, "schema allows null for %s", t)
		}
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	required := slices.Contains(self, "required")
	switch {
	case t == timeType:
		wantType("string", false)
		if n.m["format"] != "date-time" {
			c.errorf(at, "format %v, want date-time", n.m["format"])
		}
	case t.Kind() == reflect.Struct:
		c.object(t, n, at)
	case t.Kind() == reflect.Slice:
		wantType("array", !required)
		items, ok := n.m["items"].(map[string]any)
		if !ok {
			c.errorf(at, "array schema without items")
			break
		}
		c.value(t.Elem(), strings.Join(elem, ","), node{file: n.file, m: items}, at+"/items")
	case t.Kind() == reflect.Map:
		wantType("object", !required)
		if n.m["additionalProperties"] != false {
			c.errorf(at, "map schema: additionalProperties %v, want false with patternProperties", n.m["additionalProperties"])
		}
		pp, _ := n.m["patternProperties"].(map[string]any)
		if len(pp) != 1 {
			c.errorf(at, "map schema: want one patternProperties entry, got %v", pp)
			break
		}
		for pattern, v := range pp {
			c.keyRules(keys, pattern, at)
			c.value(t.Elem(), strings.Join(elem, ","), node{file: n.file, m: v.(map[string]any)}, at+"/"+pattern)
		}
	case t.Kind() == reflect.String:
		wantType("string", false)
	case t.Kind() == reflect.Bool:
		wantType("boolean", false)
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Int64:
		wantType("integer", false)
	case t.Kind() >= reflect.Uint && t.Kind() <= reflect.Uint64:
		wantType("integer", false)
		if min, ok := number(n.m["minimum"]); !ok || min < 0 {
			c.errorf(at, "unsigned %s: minimum %v, want >= 0", t, n.m["minimum"])
		}
	case t.Kind() == reflect.Float64 || t.Kind() == reflect.Float32:
		wantType("number", false)
	default:
		c.errorf(at, "no JSON mapping for %s", t)
	}
	c.rules(t, self, n, at)
}

func number(v any) (float64, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	f, err := n.Float64()
	return f, err == nil
}

// defFor names the defs.json entry that a custom validate tag stands for.
var defFor = map[string]string{
	"need": "need", "crime": "crime", "flag": "flag", "lang": "language", "country": "countryCode",
	"orgid": "orgId", "svcid": "serviceId", "placement": "placementId", "nuts": "nuts", "lau": "lau",
	"staffref": "staffRef", "agerecipient": "ageRecipient", "pasttime": "consentTime",
	"latitude": "latitude", "longitude": "longitude",
	"channel": "channel", "accessibility": "accessibility", "ageband": "ageBand", "gender": "gender",
}

// codeLists are the Go lists behind the taxonomy tags.
var codeLists = map[string][]string{
	"need": events.Needs, "crime": events.Crimes, "flag": events.Flags,
	"lang": events.Languages, "country": events.Countries,
	"channel": events.Channels, "accessibility": events.Accessibility, "ageband": events.AgeBands, "gender": events.Genders,
}

func (c *structChecker) rules(t reflect.Type, rules []string, n node, at string) {
	c.t.Helper()
	isLen := t.Kind() == reflect.String || t.Kind() == reflect.Slice || t.Kind() == reflect.Map
	lenKey := map[reflect.Kind][2]string{
		reflect.String: {"minLength", "maxLength"},
		reflect.Slice:  {"minItems", "maxItems"},
		reflect.Map:    {"minProperties", "maxProperties"},
	}[t.Kind()]
	wantNum := func(key string, param string) {
		want, err := strconv.ParseFloat(param, 64)
		if err != nil {
			c.errorf(at, "bad rule parameter %q", param)
			return
		}
		if got, ok := number(n.m[key]); !ok || got != want {
			c.errorf(at, "%s = %v, want %v", key, n.m[key], param)
		}
	}
	for _, rule := range rules {
		name, param, _ := strings.Cut(rule, "=")
		switch name {
		case "", "omitempty", "required_with":
			// required_with is checked on the parent object.
		case "required":
			if t.Kind() == reflect.String {
				if min, _ := number(n.m["minLength"]); min < 1 && n.m["enum"] == nil && n.m["pattern"] == nil && n.m["format"] == nil {
					c.errorf(at, "required string: want minLength >= 1, an enum, a pattern or a format")
				}
			}
			// Slices and maps: null is refused (see value); structs and
			// times: checked by their own schemas.
		case "min", "max":
			key := "minimum"
			if name == "max" {
				key = "maximum"
			}
			if isLen {
				key = lenKey[0]
				if name == "max" {
					key = lenKey[1]
				}
			}
			wantNum(key, param)
		case "gte":
			wantNum("minimum", param)
		case "lte":
			wantNum("maximum", param)
		case "unique":
			if n.m["uniqueItems"] != true {
				c.errorf(at, "unique: want uniqueItems true")
			}
		case "oneof":
			c.enum(at, n, strings.Fields(param))
		case "istrue":
			if n.m["const"] != true {
				c.errorf(at, "istrue: want const true")
			}
		case "datetime":
			if param != "2006-01-02" || n.m["format"] != "date" {
				c.errorf(at, "datetime=%s: want format date, got %v", param, n.m["format"])
			}
		case "coord2":
			// Decode rounds coordinates to 0.01 before validating, so the
			// schema states a range only: multipleOf 0.01 is evaluated in
			// floating point by most validators and refuses valid values.
			if _, ok := n.m["multipleOf"]; ok {
				c.errorf(at, "coord2: want no multipleOf (the server rounds), got %v", n.m["multipleOf"])
			}
		case "latitude", "longitude":
			lim := "90"
			if name == "longitude" {
				lim = "180"
			}
			wantNum("minimum", "-"+lim)
			wantNum("maximum", lim)
			fallthrough
		default:
			def, ok := defFor[name]
			if !ok {
				c.errorf(at, "validate rule %q has no known schema counterpart; teach this test about it", rule)
				continue
			}
			if !slices.Contains(n.defs, def) {
				c.errorf(at, "rule %s: want a $ref to defs.json#/$defs/%s, went through %v", name, def, n.defs)
			}
			if list, ok := codeLists[name]; ok {
				c.enum(at, n, list)
			}
		}
	}
}

func (c *structChecker) enum(at string, n node, want []string) {
	c.t.Helper()
	raw, _ := n.m["enum"].([]any)
	var got []string
	for _, v := range raw {
		s, _ := v.(string)
		got = append(got, s)
	}
	if !slices.Equal(got, want) {
		c.errorf(at, "enum %v, want %v", got, want)
	}
}

// keyRules checks the pattern that map keys must match against the keys
// rules of the validate tag.
func (c *structChecker) keyRules(keys []string, pattern, at string) {
	c.t.Helper()
	want := map[string]string{"component": "^[a-z_]{1,32}$"}
	for _, k := range keys {
		p, ok := want[k]
		if !ok {
			c.errorf(at, "map key rule %q has no known schema counterpart", k)
			continue
		}
		if pattern != p {
			c.errorf(at, "map key rule %s: pattern %q, want %q", k, pattern, p)
		}
	}
}

// TestContractTaxonomy checks that taxonomy.json lists exactly the codes of
// the Go lists, in the same order, each with labels in all its languages.
func TestContractTaxonomy(t *testing.T) {
	t.Parallel()
	tax, err := schemas.LoadTaxonomy()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"needs": events.Needs, "crimes": events.Crimes, "flags": events.Flags,
		"urgencies": events.Urgencies, "age_bands": events.AgeBands, "genders": events.Genders,
		"channels": events.Channels, "accessibility": events.Accessibility,
		"consent_methods": events.ConsentMethods, "decline_reasons": events.DeclineReasons,
		"outcomes": events.Outcomes, "withdraw_reasons": events.WithdrawReasons,
		"capacity_statuses": events.CapacityStatuses,
	}
	sections := tax.Sections()
	for name, codes := range want {
		var got []string
		for _, term := range sections[name] {
			got = append(got, term.Code)
			for _, lang := range []string{"en", "bg", "hr", "fi", "fr", "it", "nl", "pt"} {
				if strings.TrimSpace(term.Labels[lang]) == "" {
					t.Errorf("%s %s: no %s label", name, term.Code, lang)
				}
			}
		}
		if !slices.Equal(got, codes) {
			t.Errorf("taxonomy.json %s = %v, want the Go list %v", name, got, codes)
		}
	}
	for name := range sections {
		if _, ok := want[name]; !ok {
			t.Errorf("taxonomy.json section %s has no Go list", name)
		}
	}
	for _, need := range tax.Needs {
		if need.Code != events.NeedHealthMedical && len(need.DirectiveArticles) == 0 {
			t.Errorf("need %s cites no article of Directive 2012/29/EU", need.Code)
		}
	}
	if len(tax.Needs) != len(events.Needs) || !events.IsNeed(tax.Needs[0].Code) {
		t.Error("needs do not match")
	}
}

// TestContractIdentifierPatterns compares the identifier patterns of
// defs.json with the Go predicates on a table of near misses.
func TestContractIdentifierPatterns(t *testing.T) {
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
	def := func(name string) *jsonschema.Schema {
		return c.MustCompile(schemas.URI(schemas.DefsName) + "#/$defs/" + name)
	}
	candidates := []string{
		"", "pt", "pt.", "pt.apav", "pt.apav.", "pt.apav.gav-lisboa", "pt.apav.gav-lisboa.x", "PT.apav", "pt.Apav",
		"us.apav", "fr.france-victimes-75", "fr.france_victimes", "xk.a", "gr.a.b", "el.a", "pt.apav.gav lisboa",
		"pt." + strings.Repeat("a", 48), "pt." + strings.Repeat("a", 49), "pt.a." + strings.Repeat("b", 48), "pt.a." + strings.Repeat("b", 49),
		"p1", "p-1", "P1", "p_1", strings.Repeat("p", 16), strings.Repeat("p", 17), "pt.apav\n", " pt.apav",
	}
	preds := map[string]func(string) bool{"orgId": events.IsOrgID, "serviceId": events.IsServiceID, "placementId": events.IsPlacementID}
	for name, pred := range preds {
		s := def(name)
		for _, v := range candidates {
			if got, want := s.Validate(v) == nil, pred(v); got != want {
				t.Errorf("%s %q: schema accepts = %v, Go accepts = %v", name, v, got, want)
			}
		}
	}
}

// TestContractLocationRegion checks the schema's NUTS-prefix rule for every
// accepted country against the Go validation of a profile.
func TestContractLocationRegion(t *testing.T) {
	t.Parallel()
	base := events.SamplePayload(events.TypeReferralRequested).(*events.Requested)
	for _, cc := range events.Countries {
		regions := []string{events.NUTSCountry(cc) + "1", events.NUTSCountry(cc) + "12A", "ZZ1", strings.ToUpper(cc) + "3"}
		if cc == "pt" {
			// Both NUTS versions, and near misses of tabulated codes.
			regions = append(regions, "PT17", "PT170", "PT1A", "PT1B0", "PT1D3", "PT16I", "PT71", "PT99", "PT1E", "PT1A1", "PT176")
		}
		for _, region := range regions {
			p := *base
			p.Location = events.Location{Country: cc, Region: region}
			goErr := events.ValidatePayload(&p)
			b, _ := json.Marshal(&p)
			schemaErr := validateData(t, events.TypeReferralRequested, b)
			if (goErr == nil) != (schemaErr == nil) {
				t.Errorf("country %s region %s: Go error %v, schema error %v", cc, region, goErr, schemaErr)
			}
		}
	}
}

// TestContractAsyncAPI checks that asyncapi.yaml has a message for every
// event type, whose payload is the type's schema.
func TestContractAsyncAPI(t *testing.T) {
	t.Parallel()
	var doc struct {
		Channels map[string]struct {
			Address  string         `yaml:"address"`
			Messages map[string]any `yaml:"messages"`
		} `yaml:"channels"`
		Components struct {
			Messages map[string]struct {
				Name    string `yaml:"name"`
				Payload struct {
					Schema struct {
						Ref string `yaml:"$ref"`
					} `yaml:"schema"`
				} `yaml:"payload"`
			} `yaml:"messages"`
		} `yaml:"components"`
	}
	if err := yaml.Unmarshal(schemas.AsyncAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	byType := map[string]string{}
	for key, m := range doc.Components.Messages {
		byType[m.Name] = key
		if ref := m.Payload.Schema.Ref; strings.HasPrefix(m.Name, schemas.TypePrefix) && ref != "./"+schemas.FileName(schemas.ShortType(m.Name)) {
			t.Errorf("message %s (%s): payload $ref %q", key, m.Name, ref)
		}
	}
	for _, typ := range events.Types() {
		key, ok := byType[typ]
		if !ok {
			t.Errorf("asyncapi.yaml has no message named %s", typ)
			continue
		}
		inChannel := false
		for _, ch := range doc.Channels {
			if _, ok := ch.Messages[key]; ok {
				inChannel = true
			}
		}
		if !inChannel {
			t.Errorf("message %s (%s) is on no channel", key, typ)
		}
	}
	want := []string{"in.{cc}.{org}", "referral.{cc}.{referralId}", "out.{cc}.{org}.{referralId}", "timer.{referralId}.{placement}", "timer.fire.{referralId}.{placement}", "dlq.{reason}"}
	var got []string
	for _, ch := range doc.Channels {
		got = append(got, ch.Address)
	}
	for _, a := range want {
		if !slices.Contains(got, a) {
			t.Errorf("asyncapi.yaml has no channel %s", a)
		}
	}
}
