package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/invictus-network/invictus/events"
)

// readJSON decodes the JSON body of r into v, refusing unknown members,
// trailing data and bodies over limit bytes. Errors are *Error: 415 for
// another content type, 413 too large, 400 malformed, 422 wrong shape.
func readJSON(r *http.Request, limit int64, v any) *Error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return errorf(http.StatusUnsupportedMediaType, events.CodeContentType, "the body must be application/json, not %q", ct)
		}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return errorf(http.StatusBadRequest, events.CodeMalformedJSON, "the body could not be read")
	}
	if int64(len(body)) > limit {
		return errorf(http.StatusRequestEntityTooLarge, events.CodeTooLarge, "the body is more than %d bytes", limit)
	}
	if !json.Valid(body) {
		return errorf(http.StatusBadRequest, events.CodeMalformedJSON, "the body is not well-formed JSON")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var ute *json.UnmarshalTypeError
		switch {
		case errors.As(err, &ute):
			ptr := "/" + strings.ReplaceAll(ute.Field, ".", "/")
			return &Error{Status: http.StatusUnprocessableEntity, Problems: []Problem{{Pointer: ptr, Code: events.CodeFormat,
				Message: fmt.Sprintf("%s must be %s, not a JSON %s", ptr, ute.Type.String(), ute.Value)}}}
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			name, _ := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
			return &Error{Status: http.StatusUnprocessableEntity, Problems: []Problem{{Pointer: "/" + name, Code: events.CodeUnknownField,
				Message: fmt.Sprintf("%q is not a member of this request", name)}}}
		}
		return errorf(http.StatusUnprocessableEntity, events.CodeFormat, "the body does not have the expected shape: %v", err)
	}
	return nil
}

// yamlToJSON converts a YAML document to JSON, keeping the order of
// mapping keys (json.Marshal of a map would sort them) and the types YAML
// resolved (numbers, booleans, null). When refBase is set, every "$ref"
// that is a relative file reference ("defs.json#/$defs/x") is prefixed
// with it, so that the references of a document served at another path
// still resolve.
func yamlToJSON(b []byte, refBase string) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if len(doc.Content) == 0 {
		return []byte("null"), nil
	}
	w := nodeWriter{buf: &buf, refBase: refBase}
	if err := w.write(doc.Content[0], 0); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// maxYAMLDepth bounds the nesting of the converted document (and alias
// expansion).
const maxYAMLDepth = 64

// nodeWriter writes YAML nodes as JSON.
type nodeWriter struct {
	buf     *bytes.Buffer
	refBase string
}

func (w nodeWriter) write(n *yaml.Node, depth int) error {
	buf := w.buf
	if depth > maxYAMLDepth {
		return errors.New("the document is nested too deeply")
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			buf.WriteString("null")
			return nil
		}
		return w.write(n.Content[0], depth+1)
	case yaml.AliasNode:
		return w.write(n.Alias, depth+1)
	case yaml.SequenceNode:
		buf.WriteByte('[')
		for i, c := range n.Content {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := w.write(c, depth+1); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
		return nil
	case yaml.MappingNode:
		buf.WriteByte('{')
		for i := 0; i+1 < len(n.Content); i += 2 {
			if i > 0 {
				buf.WriteByte(',')
			}
			key, val := n.Content[i].Value, n.Content[i+1]
			k, _ := json.Marshal(key)
			buf.Write(k)
			buf.WriteByte(':')
			if key == "$ref" && w.refBase != "" && val.Kind == yaml.ScalarNode && isRelativeRef(val.Value) {
				v, _ := json.Marshal(w.refBase + val.Value)
				buf.Write(v)
				continue
			}
			if err := w.write(val, depth+1); err != nil {
				return err
			}
		}
		buf.WriteByte('}')
		return nil
	case yaml.ScalarNode:
		var v any
		switch n.ShortTag() {
		case "!!null":
			buf.WriteString("null")
			return nil
		case "!!bool", "!!int", "!!float":
			if err := n.Decode(&v); err != nil {
				return fmt.Errorf("line %d: %w", n.Line, err)
			}
			if f, ok := v.(float64); ok && (math.IsInf(f, 0) || math.IsNaN(f)) {
				return fmt.Errorf("line %d: %s has no JSON form", n.Line, n.Value)
			}
		default:
			v = n.Value
		}
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("line %d: %w", n.Line, err)
		}
		buf.Write(b)
		return nil
	}
	return fmt.Errorf("line %d: unsupported YAML node", n.Line)
}

// isRelativeRef reports whether ref names another file by a relative
// path: not "#..." (this document), not absolute, not a URL.
func isRelativeRef(ref string) bool {
	return ref != "" && ref[0] != '#' && ref[0] != '/' && !strings.Contains(ref, "://")
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func sortedStrings(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}
