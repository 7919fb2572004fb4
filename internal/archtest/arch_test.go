package archtest

import (
	"bufio"
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// domainImports lists, for each domain package, the module's packages its
// non-test files may import (DESIGN.md section 2, "may import"). A domain
// package's test files may import any domain package, but never an adapter:
// the domain is tested without infrastructure.
var domainImports = map[string][]string{
	"events":    {},
	"schemas":   {},
	"directory": {"events", "schemas"},
	"referral":  {"events"},
	"routing":   {"events", "directory", "referral"},
	"reports":   {"events"},
	"seal":      {},
}

// clientImports are the module's packages the client's non-test files may
// import: it is what organisations build on, so it carries neither the
// server (adapters, routing, referral, directory) nor cmd.
var clientImports = []string{"events", "seal", "internal"}

// infrastructure lists the imports from outside the module that no domain
// package's non-test files may use (DESIGN.md section 2: the domain has
// real ports, not a NATS, SQL, metrics or HTTP client), each with the
// domain packages allowed it. events holds the CloudEvents codec for HTTP
// too, so it may import net/http.
var infrastructure = []struct {
	prefix string
	what   string
	allow  []string
}{
	{"github.com/nats-io/", "NATS", nil},
	{"github.com/jackc/pgx", "pgx", nil},
	{"github.com/prometheus/", "Prometheus", nil},
	{"net/http", "net/http", []string{"events"}},
}

// violation is one import that breaks a rule.
type violation struct {
	file     string // relative to the module root
	imported string // import path
	rule     string
}

func (v violation) String() string {
	return fmt.Sprintf("%s imports %s: %s", v.file, v.imported, v.rule)
}

// TestArchitecture checks the module this package belongs to.
func TestArchitecture(t *testing.T) {
	t.Parallel()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	module, err := modulePath(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	vs, err := check(root, module)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		t.Error(v)
	}
}

// TestCheckFindsViolations runs the checker on a small module with one
// breach of each rule, so that a checker that finds nothing cannot pass.
func TestCheckFindsViolations(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	const m = "example.com/m"
	files := map[string]string{
		"go.mod":                          "module " + m + "\n",
		"events/e.go":                     `package events; import _ "` + m + `/adapters/natsjs"`,
		"events/e_test.go":                `package events_test; import _ "` + m + `/adapters/natsjs"`,
		"referral/r.go":                   `package referral; import ( _ "` + m + `/events"; _ "` + m + `/routing" )`,
		"referral/r_test.go":              `package referral_test; import _ "` + m + `/routing"`,
		"routing/sub/s.go":                `package sub; import _ "` + m + `/adapters/postgres/migrations"`,
		"adapters/natsjs/n.go":            `package natsjs; import ( _ "` + m + `/events"; _ "` + m + `/adapters/postgres"; _ "` + m + `/adapters/natsjs/internal/x" )`,
		"adapters/natsjs/internal/x/x.go": `package x; import _ "fmt"`,
		"adapters/postgres/p_test.go":     `package postgres_test; import _ "` + m + `/adapters/natsjs"`,
		"adapters/httpapi/h.go":           `package httpapi; import _ "` + m + `/cmd/invictus"`,
		"cmd/invictus/main.go":            `package main; import ( _ "` + m + `/adapters/natsjs"; _ "` + m + `/routing" )`,
		"testdata/bad.go":                 `package bad; import _ "` + m + `/adapters/natsjs"`,
		// Infrastructure in the domain, and the client reaching the server.
		"routing/nats.go":       `package routing; import _ "github.com/nats-io/nats.go/jetstream"`,
		"referral/sql.go":       `package referral; import _ "github.com/jackc/pgx/v5/pgxpool"`,
		"reports/metrics.go":    `package reports; import _ "github.com/prometheus/client_golang/prometheus"`,
		"directory/web.go":      `package directory; import _ "net/http"`,
		"seal/nats.go":          `package seal; import _ "github.com/nats-io/nats.go"`,
		"seal/s.go":             `package seal; import _ "` + m + `/events"`,
		"events/http.go":        `package events; import _ "net/http"`,
		"events/nats_test.go":   `package events_test; import _ "github.com/nats-io/nats-server/v2/server"`,
		"client/c.go":           `package client; import ( _ "` + m + `/events"; _ "` + m + `/seal"; _ "` + m + `/internal/wire"; _ "` + m + `/routing"; _ "github.com/nats-io/nats.go" )`,
		"client/c_test.go":      `package client_test; import _ "` + m + `/adapters/natsjs"`,
		"adapters/natsjs/ok.go": `package natsjs; import _ "github.com/nats-io/nats.go"`,
	}
	for name, text := range files {
		path := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	vs, err := check(root, m)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range vs {
		got = append(got, v.file+" -> "+v.imported)
	}
	want := []string{
		"adapters/httpapi/h.go -> " + m + "/cmd/invictus",
		"adapters/natsjs/n.go -> " + m + "/adapters/postgres",
		"client/c.go -> " + m + "/routing",
		"directory/web.go -> net/http",
		"events/e.go -> " + m + "/adapters/natsjs",
		"events/e_test.go -> " + m + "/adapters/natsjs",
		"referral/r.go -> " + m + "/routing",
		"referral/sql.go -> github.com/jackc/pgx/v5/pgxpool",
		"reports/metrics.go -> github.com/prometheus/client_golang/prometheus",
		"routing/nats.go -> github.com/nats-io/nats.go/jetstream",
		"routing/sub/s.go -> " + m + "/adapters/postgres/migrations",
		"seal/nats.go -> github.com/nats-io/nats.go",
		"seal/s.go -> " + m + "/events",
	}
	if !slices.Equal(got, want) {
		t.Errorf("violations:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// check parses the imports of every Go file under root (skipping testdata,
// vendor, node_modules and hidden directories) and returns the imports that
// break a rule, sorted by file.
func check(root, module string) ([]violation, error) {
	var vs []violation
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != root && (name == "testdata" || name == "vendor" || name == "node_modules" ||
				strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		for _, spec := range f.Imports {
			imported, err := strconv.Unquote(spec.Path.Value)
			if err != nil {
				return fmt.Errorf("%s: %w", rel, err)
			}
			target, ok := strings.CutPrefix(imported, module+"/")
			if !ok {
				if rule := brokenExternal(rel, imported); rule != "" {
					vs = append(vs, violation{file: rel, imported: imported, rule: rule})
				}
				continue
			}
			if rule := broken(rel, target); rule != "" {
				vs = append(vs, violation{file: rel, imported: imported, rule: rule})
			}
		}
		return nil
	})
	slices.SortFunc(vs, func(a, b violation) int { return strings.Compare(a.file+a.imported, b.file+b.imported) })
	return vs, err
}

// brokenExternal returns the rule that file (relative to the module root)
// breaks by importing path, from outside the module, or "".
func brokenExternal(file, path string) string {
	from := strings.Split(filepath.ToSlash(filepath.Dir(file)), "/")
	if _, domain := domainImports[from[0]]; !domain || strings.HasSuffix(file, "_test.go") {
		return ""
	}
	for _, in := range infrastructure {
		if strings.HasPrefix(path, in.prefix) && !slices.Contains(in.allow, from[0]) {
			return fmt.Sprintf("a domain package never imports %s", in.what)
		}
	}
	return ""
}

// broken returns the rule that file (relative to the module root) breaks by
// importing target (a path inside the module), or "".
func broken(file, target string) string {
	from := strings.Split(filepath.ToSlash(filepath.Dir(file)), "/")
	to := strings.Split(target, "/")
	isTest := strings.HasSuffix(file, "_test.go")

	if to[0] == "cmd" && from[0] != "cmd" {
		return "cmd is the top of the graph; nothing imports it"
	}
	if allowed, ok := domainImports[from[0]]; ok {
		if to[0] == "adapters" {
			return "a domain package never imports an adapter"
		}
		if _, toDomain := domainImports[to[0]]; toDomain && to[0] != from[0] && !isTest && !slices.Contains(allowed, to[0]) {
			return fmt.Sprintf("%s may import only %v of the domain packages", from[0], allowed)
		}
	}
	if from[0] == "client" && !isTest && !slices.Contains(clientImports, to[0]) {
		return fmt.Sprintf("client may import only %v of the module", clientImports)
	}
	// An adapter's tests may use another adapter as a real fixture (the
	// postgres relay tests run an embedded NATS server from natsjs); the
	// compiled adapters stay independent.
	if from[0] == "adapters" && len(from) > 1 && to[0] == "adapters" && len(to) > 1 && from[1] != to[1] && !isTest {
		return "adapters never import each other"
	}
	return ""
}

// moduleRoot is the nearest directory above the working directory holding
// a go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// modulePath reads the module directive of a go.mod file.
func modulePath(gomod string) (string, error) {
	f, err := os.Open(gomod)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "module "); ok {
			return strings.Trim(strings.TrimSpace(rest), `"`), nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", fmt.Errorf("%s: no module directive", gomod)
}
