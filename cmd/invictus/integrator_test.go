package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/invictus-network/invictus/schemas"
)

func TestVersionFlag(t *testing.T) {
	t.Parallel()
	code, out, errOut := cliRun(t, "--version")
	if code != exitOK || !strings.HasPrefix(out, "invictus ") || out != "invictus "+readBuildInfo().Version+"\n" {
		t.Errorf("--version: exit %d %q %q", code, out, errOut)
	}
}

func TestDidYouMean(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"refr"}, `did you mean "refer"?`},
		{[]string{"taxonmy"}, `did you mean "taxonomy"?`},
		{[]string{"org", "set-capacty"}, `did you mean "set-capacity"?`},
		{[]string{"profile", "templat"}, `did you mean "template"?`},
	} {
		code, _, errOut := cliRun(t, tt.args...)
		if code != exitUsage || !strings.Contains(errOut, tt.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and %s", tt.args, code, errOut, tt.want)
		}
	}
	// Nothing close: no suggestion.
	if code, _, errOut := cliRun(t, "xyzzy"); code != exitUsage || strings.Contains(errOut, "did you mean") {
		t.Errorf("xyzzy: exit %d %q", code, errOut)
	}
}

func TestTaxonomyCommand(t *testing.T) {
	t.Parallel()
	tax, err := schemas.LoadTaxonomy()
	if err != nil {
		t.Fatal(err)
	}
	code, out, errOut := cliRun(t, "taxonomy", "needs", "--lang", "pt")
	if code != exitOK {
		t.Fatalf("exit %d %s", code, errOut)
	}
	for _, n := range tax.Needs {
		if !strings.Contains(out, n.Code) || !strings.Contains(out, n.Labels["pt"]) {
			t.Errorf("taxonomy needs --lang pt lacks %s %q", n.Code, n.Labels["pt"])
		}
	}
	if strings.Contains(out, "domestic_violence") {
		t.Error("taxonomy needs lists crimes too")
	}
	if !strings.Contains(out, "drafts awaiting review") {
		t.Error("taxonomy --lang pt does not say the labels are drafts")
	}

	code, out, _ = cliRun(t, "taxonomy", "--json")
	var doc map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out), &doc); code != exitOK || err != nil {
		t.Fatalf("taxonomy --json: exit %d %v", code, err)
	}
	var crimes []taxonomyTerm
	if err := json.Unmarshal(doc["crimes"], &crimes); err != nil || len(crimes) != len(tax.Crimes) || crimes[0].Label != tax.Crimes[0].Labels["en"] {
		t.Errorf("taxonomy --json crimes: %v %+v", err, crimes)
	}

	if code, _, errOut := cliRun(t, "taxonomy", "--lang", "de"); code != exitUsage || !strings.Contains(errOut, "want one of en, bg") {
		t.Errorf("--lang de: exit %d %q", code, errOut)
	}
	if code, _, _ := cliRun(t, "taxonomy", "nedds"); code != exitUsage {
		t.Errorf("an unknown section: exit %d", code)
	}
}

// TestProfileTemplateAndCheck checks that the template is a valid profile
// as printed, and that check lists every problem of a bad one at once,
// with pointers, as text and as JSON.
func TestProfileTemplateAndCheck(t *testing.T) {
	t.Parallel()
	code, tmpl, errOut := cliRun(t, "profile", "template")
	if code != exitOK || !strings.Contains(tmpl, "needs:") || !strings.Contains(tmpl, "consent:") {
		t.Fatalf("template: exit %d %s", code, errOut)
	}
	dir := t.TempDir()
	good := filepath.Join(dir, "profile.yaml")
	if err := os.WriteFile(good, []byte(tmpl), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := cliRun(t, "profile", "check", good); code != exitOK || !strings.Contains(out, "a valid profile") {
		t.Fatalf("check of the template: exit %d %s%s", code, out, errOut)
	}
	// Uncommenting every optional line keeps it valid.
	full := filepath.Join(dir, "full.yaml")
	uncommented := regexp.MustCompile(`(?m)^( *)# ([a-z_]+:)`).ReplaceAllString(tmpl, "$1$2")
	if err := os.WriteFile(full, []byte(uncommented), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := cliRun(t, "profile", "check", full); code != exitOK {
		t.Fatalf("check of the template with every optional field: exit %d %s%s", code, out, errOut)
	}

	bad := filepath.Join(dir, "bad.yaml")
	broken := strings.NewReplacer(
		"needs: [support.emotional, safety.shelter]", "needs: [support.emotional, bogus]",
		"urgency: soon", "urgency: whenever",
		"referral: true", "referral: false",
	).Replace(tmpl) + "notes: the victim's name\n"
	if err := os.WriteFile(bad, []byte(broken), 0o600); err != nil {
		t.Fatal(err)
	}
	wantPointers := []string{"/needs/1", "/urgency", "/consent/referral", "/notes"}
	code, _, errOut = cliRun(t, "profile", "check", bad)
	if code != exitError {
		t.Errorf("check bad: exit %d", code)
	}
	for _, p := range wantPointers {
		if !strings.Contains(errOut, "\n  "+p+" ") {
			t.Errorf("check bad: no problem at %s in\n%s", p, errOut)
		}
	}

	code, out, errOut := cliRun(t, "profile", "check", "--json", bad)
	var body jsonErrorBody
	if err := json.Unmarshal([]byte(errOut), &body); code != exitError || out != "" || err != nil || body.ExitCode != exitError {
		t.Fatalf("check --json bad: exit %d, stdout %q, stderr %q: %v", code, out, errOut, err)
	}
	got := map[string]bool{}
	for _, p := range body.Errors {
		got[p.Pointer] = p.Code != "" && p.Message != ""
	}
	for _, p := range wantPointers {
		if !got[p] {
			t.Errorf("check --json bad: no problem at %s: %s", p, errOut)
		}
	}
}

// TestJSONErrors checks that a command run with --json reports its error
// as JSON on standard error, with the exit code.
func TestJSONErrors(t *testing.T) {
	t.Parallel()
	code, out, errOut := cliRun(t, "inbox", "--json", "--org", "nope")
	var body jsonErrorBody
	if err := json.Unmarshal([]byte(errOut), &body); err != nil || code != exitUsage || out != "" ||
		body.ExitCode != exitUsage || len(body.Errors) != 1 || body.Errors[0].Code != "usage" || !strings.Contains(body.Errors[0].Message, "--org") {
		t.Errorf("inbox --json --org nope: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	// Without --json the error stays text.
	if code, _, errOut := cliRun(t, "inbox", "--org", "nope"); code != exitUsage || !strings.HasPrefix(errOut, "invictus: --org") {
		t.Errorf("inbox --org nope: exit %d %q", code, errOut)
	}
}

// TestMissingCredentials checks that connecting without credentials to a
// server that wants them says that they are missing, not that they are
// wrong.
func TestMissingCredentials(t *testing.T) {
	t.Parallel()
	n := startCWNet(t)
	code, _, errOut := cliRun(t, "inbox", "--org", "pt.a1", "--nats-url", n.URL, "--creds", "")
	if code != exitUsage || !strings.Contains(errOut, "no credentials given") || !strings.Contains(errOut, "--creds FILE") || strings.Contains(errOut, "wrong key") {
		t.Errorf("inbox without creds: exit %d %q", code, errOut)
	}
	code, _, errOut = cliRun(t, "directory", "stats", "--nats-url", n.URL)
	if code != exitUsage || !strings.Contains(errOut, "no credentials given") || !strings.Contains(errOut, "--creds FILE") {
		t.Errorf("directory stats without creds: exit %d %q", code, errOut)
	}
	// The administrators' commands take --creds as the caseworkers' do,
	// and still --nats-creds.
	admin := filepath.Join(n.Data, "keys", "admin.nk")
	for _, flag := range []string{"--creds", "--nats-creds"} {
		if code, out, errOut := cliRun(t, "directory", "stats", "--nats-url", n.URL, flag, admin); code != exitOK || !strings.Contains(out, "3 organisations") {
			t.Errorf("directory stats %s: exit %d %s%s", flag, code, out, errOut)
		}
	}
}

// TestSetCapacityNotFound checks that a service id the directory lacks is
// reported with the services the organisation has.
func TestSetCapacityNotFound(t *testing.T) {
	t.Parallel()
	n := startCWNet(t)
	admin := filepath.Join(n.Data, "keys", "admin.nk")
	code, _, errOut := cliRun(t, "org", "set-capacity", "--nats-url", n.URL, "--creds", admin, "pt.a1.helpline", "full")
	if code != exitError || !strings.Contains(errOut, "no service pt.a1.helpline in the directory; the services of pt.a1 are pt.a1.support") {
		t.Errorf("set-capacity of a missing service: exit %d %q", code, errOut)
	}
	if code, out, errOut := cliRun(t, "org", "set-capacity", "--nats-url", n.URL, "--creds", admin, "pt.a1.support", "full"); code != exitOK || !strings.HasPrefix(out, "pt.a1.support: full") {
		t.Errorf("set-capacity: exit %d %s%s", code, out, errOut)
	}
}

func TestOpenAPICommand(t *testing.T) {
	t.Parallel()
	code, out, errOut := cliRun(t, "openapi")
	var doc struct {
		OpenAPI    string `json:"openapi"`
		Components struct {
			Schemas map[string]json.RawMessage `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal([]byte(out), &doc); code != exitOK || err != nil || doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi: exit %d %v %s", code, err, errOut)
	}
	if _, ok := doc.Components.Schemas["referral.requested.v1"]; !ok || strings.Contains(out, `"$ref": "urn:`) || strings.Contains(out, `.json"`) && strings.Contains(out, `"$ref": "defs.json`) {
		t.Error("openapi: not bundled")
	}
}
