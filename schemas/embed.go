package schemas

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
)

// files holds every schema, the taxonomy, the AsyncAPI and OpenAPI
// documents and the golden examples (files whose names start with "." or
// "_" are left out).
//
//go:embed *.json *.yaml examples
var files embed.FS

// ErrNotFound is returned for a type, or a file, that has no schema here.
var ErrNotFound = errors.New("schemas: not found")

// TypePrefix starts every CloudEvents type of the contract; the short type
// that names a payload schema is the type without it.
const TypePrefix = "invictus."

// Well-known file names of the folder.
const (
	// DefsFile holds the $defs shared by the payload schemas.
	DefsFile = "defs.json"
	// TaxonomyFile holds every code with its labels.
	TaxonomyFile = "taxonomy.json"
	// AsyncAPIFile is the AsyncAPI 3.0 document of the NATS contract.
	AsyncAPIFile = "asyncapi.yaml"
	// ExamplesDir holds the golden examples, one folder per short type.
	ExamplesDir = "examples"
	// ExpectationsFile, under ExamplesDir, records what each invalid example breaks.
	ExpectationsFile = "examples/expectations.json"
)

// URNPrefix starts the "$id" of every schema: a schema's $id is URNPrefix +
// its file name without ".json" ("urn:invictus:schema:referral.requested.v1",
// "urn:invictus:schema:defs"), and the payload schemas reach the shared
// definitions with absolute references ("urn:invictus:schema:defs#/$defs/need").
// The $id of a payload schema is also the CloudEvents dataschema of its
// events. A URN names a schema the same way on every node, whatever
// address the node is reached at, and for as long as events are kept; the
// HTTP API serves the document of URNPrefix + name at /schemas/<name>.json.
const URNPrefix = "urn:invictus:schema:"

// DefsName is the name of defs.json in URIs: URI(DefsName) is its $id.
const DefsName = "defs"

// URI returns the $id of the schema called name: a short type
// ("referral.requested.v1"; the full type is accepted too) or DefsName.
func URI(name string) string { return URNPrefix + ShortType(name) }

// FileOfURI returns the file name of the schema whose $id is uri
// ("urn:invictus:schema:defs" gives "defs.json"), and false when uri is
// not URNPrefix followed by a name.
func FileOfURI(uri string) (string, bool) {
	name, ok := strings.CutPrefix(uri, URNPrefix)
	if !ok || name == "" || strings.ContainsAny(name, "/#?:") {
		return "", false
	}
	return FileName(name), true
}

// FS returns the whole folder: payload schemas (<short type>.json),
// defs.json, taxonomy.json, asyncapi.yaml and examples/. It is read-only
// and safe for concurrent use.
func FS() fs.FS { return files }

// ShortType returns the short type of a CloudEvents type:
// "invictus.referral.requested.v1" gives "referral.requested.v1". A string
// without the prefix is returned unchanged.
func ShortType(eventType string) string { return strings.TrimPrefix(eventType, TypePrefix) }

// FileName returns the file name of the payload schema of a short type,
// e.g. "referral.requested.v1.json". It is also the last element of the
// event's dataschema.
func FileName(shortType string) string { return shortType + ".json" }

// Payload returns the JSON Schema (2020-12) of the payload of shortType,
// e.g. "referral.requested.v1". The full type ("invictus.referral.requested.v1")
// is accepted too. It returns an error wrapping ErrNotFound when the type
// has no schema.
func Payload(shortType string) ([]byte, error) {
	short := ShortType(shortType)
	if !slices.Contains(PayloadTypes(), short) {
		return nil, fmt.Errorf("payload schema of %q: %w", shortType, ErrNotFound)
	}
	return mustRead(FileName(short)), nil
}

// PayloadTypes returns the short types that have a payload schema, sorted.
func PayloadTypes() []string {
	entries, err := fs.ReadDir(files, ".")
	if err != nil {
		panic(err) // the embedded root always exists
	}
	var out []string
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || path.Ext(name) != ".json" || name == DefsFile || name == TaxonomyFile {
			continue
		}
		out = append(out, strings.TrimSuffix(name, ".json"))
	}
	return out // ReadDir sorts by name
}

// Defs returns defs.json, the definitions the payload schemas share.
func Defs() []byte { return mustRead(DefsFile) }

// AsyncAPI returns the AsyncAPI 3.0 document (YAML) of the NATS contract.
// Its payload $refs are relative file names of this folder.
func AsyncAPI() []byte { return mustRead(AsyncAPIFile) }

// OpenAPI returns the OpenAPI 3.1 document (YAML) of the HTTP API; the
// API serves it as JSON at /v1/openapi.json.
func OpenAPI() []byte { return mustRead("openapi.yaml") }

// TaxonomyJSON returns taxonomy.json as stored; see LoadTaxonomy for the
// parsed form.
func TaxonomyJSON() []byte { return mustRead(TaxonomyFile) }

// mustRead reads a file that go:embed guarantees to exist.
func mustRead(name string) []byte {
	b, err := files.ReadFile(name)
	if err != nil {
		panic(fmt.Sprintf("schemas: embedded %s missing: %v", name, err))
	}
	return b
}
