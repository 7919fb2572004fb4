package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strings"

	"github.com/invictus-network/invictus/schemas"
)

// OpenAPIDocument returns the OpenAPI 3.1 document of the HTTP API as the
// node serves it at /v1/openapi.json: schemas/openapi.yaml as JSON,
// bundled so that it stands alone. Every payload schema and every shared
// definition it uses becomes an entry of components.schemas (the payload
// of referral.requested.v1 is "referral.requested.v1", the definition
// "need" of defs.json is "defs.need") and every $ref points inside the
// document, so a saved copy resolves without the node (Redocly,
// openapi-typescript and other generators read it as it is).
func OpenAPIDocument() ([]byte, error) {
	raw, err := yamlToJSON(schemas.OpenAPI(), "")
	if err != nil {
		return nil, fmt.Errorf("httpapi: openapi.yaml: %w", err)
	}
	return bundle(raw)
}

// bundle inlines the schema files that doc refers to (by file name,
// "referral.requested.v1.json", or by $id, "urn:invictus:schema:defs#/$defs/need")
// into doc's components.schemas and points every $ref there.
func bundle(doc []byte) ([]byte, error) {
	var root map[string]any
	if err := decodeNumbers(doc, &root); err != nil {
		return nil, err
	}
	components, _ := root["components"].(map[string]any)
	if components == nil {
		components = map[string]any{}
		root["components"] = components
	}
	target, _ := components["schemas"].(map[string]any)
	if target == nil {
		target = map[string]any{}
		components["schemas"] = target
	}
	b := &bundler{out: target, files: map[string]map[string]any{}}
	if err := b.rewrite(root, ""); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(root); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// decodeNumbers unmarshals b keeping numbers as written (a revision's
// maximum, 18446744073709551615, does not survive a float64).
func decodeNumbers(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	return dec.Decode(v)
}

// bundler copies schema files into out, each once.
type bundler struct {
	out   map[string]any
	files map[string]map[string]any // parsed schema files by file name
	done  map[string]bool
}

// rewrite points every $ref under v inside the bundled document; file is
// the schema file v comes from ("" for the OpenAPI document itself).
func (b *bundler) rewrite(v any, file string) error {
	switch v := v.(type) {
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(v)) {
			if ref, ok := v[k].(string); ok && k == "$ref" {
				to, err := b.ref(ref, file)
				if err != nil {
					return err
				}
				v[k] = to
				continue
			}
			if err := b.rewrite(v[k], file); err != nil {
				return err
			}
		}
	case []any:
		for _, e := range v {
			if err := b.rewrite(e, file); err != nil {
				return err
			}
		}
	}
	return nil
}

// ref returns the bundled form of ref, found in file, copying what it
// names into the components.
func (b *bundler) ref(ref, file string) (string, error) {
	to, frag, _ := strings.Cut(ref, "#")
	switch {
	case to == "" && file == "":
		return ref, nil // already inside the OpenAPI document
	case to == "":
		to = file
	default:
		f, ok := schemas.FileOfURI(to)
		if !ok {
			if path.Ext(to) != ".json" || !fs.ValidPath(to) {
				return "", fmt.Errorf("httpapi: openapi: $ref %q names no schema of the contract", ref)
			}
			f = to
		}
		to = f
	}
	prefix := strings.TrimSuffix(to, ".json")
	switch {
	case frag == "":
		if err := b.add(to, prefix, nil); err != nil {
			return "", err
		}
		return "#/components/schemas/" + prefix, nil
	case strings.HasPrefix(frag, "/$defs/") && !strings.Contains(frag[len("/$defs/"):], "/"):
		name := frag[len("/$defs/"):]
		if err := b.add(to, prefix, &name); err != nil {
			return "", err
		}
		return "#/components/schemas/" + prefix + "." + name, nil
	}
	return "", fmt.Errorf("httpapi: openapi: $ref %q: only whole schemas and their $defs can be bundled", ref)
}

// add copies into the components the schema file (def nil), or its
// definition *def, under prefix or prefix + "." + *def.
func (b *bundler) add(file, prefix string, def *string) error {
	name := prefix
	if def != nil {
		name += "." + *def
	}
	if b.done == nil {
		b.done = map[string]bool{}
	}
	if b.done[name] {
		return nil
	}
	if _, clash := b.out[name]; clash {
		return fmt.Errorf("httpapi: openapi: component %q is defined twice", name)
	}
	b.done[name] = true
	doc, err := b.file(file)
	if err != nil {
		return err
	}
	var s any
	if def != nil {
		defs, _ := doc["$defs"].(map[string]any)
		d, ok := defs[*def]
		if !ok {
			return fmt.Errorf("httpapi: openapi: %s has no $defs/%s", file, *def)
		}
		s = d
	} else {
		whole := maps.Clone(doc)
		// The $id would change the base of the $refs inside; $schema is
		// the document's (OpenAPI 3.1 is JSON Schema 2020-12), and the
		// $defs are components of their own.
		delete(whole, "$id")
		delete(whole, "$schema")
		delete(whole, "$defs")
		s = whole
	}
	s = deepCopy(s)
	b.out[name] = s
	return b.rewrite(s, file)
}

// file returns the parsed schema file name of the schemas folder.
func (b *bundler) file(name string) (map[string]any, error) {
	if doc, ok := b.files[name]; ok {
		return doc, nil
	}
	raw, err := fs.ReadFile(schemas.FS(), name)
	if err != nil {
		return nil, fmt.Errorf("httpapi: openapi: %w", err)
	}
	var doc map[string]any
	if err := decodeNumbers(raw, &doc); err != nil {
		return nil, fmt.Errorf("httpapi: openapi: %s: %w", name, err)
	}
	b.files[name] = doc
	return doc, nil
}

func deepCopy(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = deepCopy(e)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = deepCopy(e)
		}
		return out
	}
	return v
}
