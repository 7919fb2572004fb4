package httpapi

import (
	"io/fs"
	"net/http"
	"path"
	"strings"

	"github.com/invictus-network/invictus/schemas"
)

// schemaFile serves GET /schemas/{file...}: the payload JSON Schemas (the
// events' dataschema), defs.json, taxonomy.json, asyncapi.yaml,
// openapi.yaml and the golden examples, from the schemas package.
func (s *Server) schemaFile(w http.ResponseWriter, r *http.Request, _ Token) error {
	name := r.PathValue("file")
	fsys := schemas.FS()
	if name == "" || !fs.ValidPath(name) || strings.HasSuffix(name, "/") {
		return errorf(http.StatusNotFound, CodeNotFound, "no schema file %q", name)
	}
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		return errorf(http.StatusNotFound, CodeNotFound, "no schema file %q", name)
	}
	h := w.Header()
	switch {
	case path.Ext(name) == ".yaml":
		h.Set("Content-Type", "application/yaml")
	case path.Dir(name) == "." && name != schemas.TaxonomyFile:
		h.Set("Content-Type", "application/schema+json")
	default:
		h.Set("Content-Type", "application/json")
	}
	h.Set("Cache-Control", "public, max-age=3600")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(b)
	}
	return nil
}

// openAPI serves GET /v1/openapi.json: schemas/openapi.yaml as JSON.
func (s *Server) openAPI(w http.ResponseWriter, r *http.Request, _ Token) error {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "public, max-age=3600")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(s.openapi)
	}
	return nil
}
