// Command hsds exports the demo directory (and optionally a generated one)
// as HSDS 3.0 JSON and validates every organization and service in it
// against the Open Referral HSDS 3.0 JSON Schemas with a JSON Schema
// validator (santhosh-tekuri/jsonschema, format assertions on). It is run
// by scripts/check-hsds.sh; it is not a unit test because the schemas live
// outside the repository.
//
// Usage: go run ./scripts/hsds -schemas ../shared/data/hsds-3.0 [-seed 1] [-generated 2000] [-out export.json]
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/invictus-network/invictus/directory"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("hsds", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("schemas", "../shared/data/hsds-3.0", "folder of the HSDS 3.0 schemas (with compiled/)")
	seed := fs.Int64("seed", 1, "seed of the demo directory")
	generated := fs.Int("generated", 0, "also check a generated directory of this many services")
	out := fs.String("out", "", "write the demo export to this file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	abs, err := filepath.Abs(*dir)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	schemas, err := compile(abs)
	if err != nil {
		fmt.Fprintln(stderr, "hsds:", err)
		return 2
	}
	demo, err := directory.Demo(*seed)
	if err != nil {
		fmt.Fprintln(stderr, "hsds:", err)
		return 2
	}
	dirs := []struct {
		name string
		d    *directory.Directory
	}{{fmt.Sprintf("demo (seed %d)", *seed), demo}}
	if *generated > 0 {
		dirs = append(dirs, struct {
			name string
			d    *directory.Directory
		}{fmt.Sprintf("generated (%d services)", *generated), directory.Generate(*generated, *seed)})
	}
	// Control: a deliberately broken export must fail, or the check
	// proves nothing.
	n := control(demo, schemas)
	if n < 4 {
		fmt.Fprintf(stdout, "control: a broken export gave %d schema errors, want at least 4: the validator is not checking\n", n)
		return 1
	}
	fmt.Fprintf(stdout, "control: a deliberately broken export gives %d schema errors, as it should\n", n)
	failed := false
	for i, x := range dirs {
		b, err := directory.ExportHSDS(x.d)
		if err != nil {
			fmt.Fprintln(stderr, "hsds:", err)
			return 2
		}
		if i == 0 && *out != "" {
			if err := os.WriteFile(*out, b, 0o644); err != nil {
				fmt.Fprintln(stderr, "hsds:", err)
				return 2
			}
		}
		if !check(x.name, b, schemas, stdout) {
			failed = true
		}
		// The export must also read back to the same directory.
		back, err := directory.ImportHSDS(b)
		if err != nil {
			fmt.Fprintf(stdout, "  import of the export failed: %v\n", err)
			failed = true
		} else if a, b := mustJSON(x.d), mustJSON(back); !bytes.Equal(a, b) {
			fmt.Fprintln(stdout, "  import of the export gives a different directory")
			failed = true
		} else {
			fmt.Fprintln(stdout, "  import of the export gives the same directory")
		}
	}
	if failed {
		return 1
	}
	return 0
}

type schemaSet struct {
	compiledOrg, compiledSvc, org *jsonschema.Schema
}

func compile(dir string) (*schemaSet, error) {
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	var s schemaSet
	var err error
	load := func(name string) *jsonschema.Schema {
		if err != nil {
			return nil
		}
		var sch *jsonschema.Schema
		sch, err = c.Compile("file://" + filepath.ToSlash(filepath.Join(dir, name)))
		return sch
	}
	s.compiledOrg = load("compiled/organization.json")
	s.compiledSvc = load("compiled/service.json")
	s.org = load("organization.json")
	if err != nil {
		return nil, fmt.Errorf("compile the HSDS schemas in %s: %w", dir, err)
	}
	return &s, nil
}

// check validates each organization of an export against the compiled
// organization schema and the modular organization.json, and each nested
// service against the compiled service schema.
func check(name string, export []byte, s *schemaSet, w io.Writer) bool {
	var orgs []any
	if err := json.Unmarshal(export, &orgs); err != nil {
		fmt.Fprintf(w, "%s: the export is not a JSON array: %v\n", name, err)
		return false
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(export))
	if err != nil {
		fmt.Fprintf(w, "%s: %v\n", name, err)
		return false
	}
	list := inst.([]any)
	var nSvc, nLoc, nAttr, bad int
	report := func(what string, err error) {
		bad++
		if bad <= 10 {
			var verr *jsonschema.ValidationError
			if errors.As(err, &verr) {
				fmt.Fprintf(w, "  %s: %s\n", what, strings.ReplaceAll(verr.Error(), "\n", "\n    "))
			} else {
				fmt.Fprintf(w, "  %s: %v\n", what, err)
			}
		}
	}
	for i, o := range list {
		om := o.(map[string]any)
		if err := s.compiledOrg.Validate(o); err != nil {
			report(fmt.Sprintf("organization %d (compiled/organization.json)", i), err)
		}
		if err := s.org.Validate(o); err != nil {
			report(fmt.Sprintf("organization %d (organization.json)", i), err)
		}
		svcs, _ := om["services"].([]any)
		locs, _ := om["locations"].([]any)
		nLoc += len(locs)
		nAttr += countAttributes(o)
		for j, sv := range svcs {
			nSvc++
			if err := s.compiledSvc.Validate(sv); err != nil {
				report(fmt.Sprintf("organization %d service %d (compiled/service.json)", i, j), err)
			}
		}
	}
	fmt.Fprintf(w, "%s: %d organizations, %d services, %d locations, %d attributes, %d bytes: %d schema errors\n",
		name, len(list), nSvc, nLoc, nAttr, len(export), bad)
	return bad == 0
}

// control breaks four things in the first organization of an export (a
// missing required name, a non-UUID id, an unknown service status, a
// non-numeric latitude) and returns how many schema errors it gets.
func control(d *directory.Directory, s *schemaSet) int {
	b, err := directory.ExportHSDS(d)
	if err != nil {
		return 0
	}
	var orgs []map[string]any
	if err := json.Unmarshal(b, &orgs); err != nil {
		return 0
	}
	var o map[string]any
	for _, x := range orgs {
		if locs, _ := x["locations"].([]any); len(locs) > 0 {
			o = x
			break
		}
	}
	if o == nil {
		return 0
	}
	delete(o, "name")
	o["id"] = "not-a-uuid"
	o["services"].([]any)[0].(map[string]any)["status"] = "open"
	o["locations"].([]any)[0].(map[string]any)["latitude"] = "north"
	raw, err := json.Marshal(o)
	if err != nil {
		return 0
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return 0
	}
	err = s.compiledOrg.Validate(inst)
	var verr *jsonschema.ValidationError
	if !errors.As(err, &verr) {
		return 0
	}
	return len(leaves(verr))
}

// leaves returns the innermost causes of a validation error.
func leaves(e *jsonschema.ValidationError) []*jsonschema.ValidationError {
	if len(e.Causes) == 0 {
		return []*jsonschema.ValidationError{e}
	}
	var out []*jsonschema.ValidationError
	for _, c := range e.Causes {
		out = append(out, leaves(c)...)
	}
	return out
}

func countAttributes(v any) int {
	n := 0
	switch x := v.(type) {
	case map[string]any:
		if a, ok := x["attributes"].([]any); ok {
			n += len(a)
		}
		for _, c := range x {
			n += countAttributes(c)
		}
	case []any:
		for _, c := range x {
			n += countAttributes(c)
		}
	}
	return n
}

func mustJSON(d *directory.Directory) []byte {
	b, err := json.Marshal(d)
	if err != nil {
		panic(err)
	}
	return b
}
