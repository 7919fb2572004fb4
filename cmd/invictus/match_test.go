package main

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/invictus-network/invictus/directory"
	"github.com/invictus-network/invictus/events"
)

// lisbonProfile is a domestic-violence victim in Lisbon who needs a safe
// place, emotional support and an interpreter nobody offers.
const lisbonProfile = `{"needs":["safety.shelter","support.emotional","comm.interpretation"],
 "crimes":["domestic_violence"],"urgency":"urgent",
 "location":{"country":"pt","region":"PT170","lat":38.72,"lon":-9.14},
 "languages":["pt"],"age_band":"adult","gender":"female","channels":["in_person","phone"]}`

func planOf(t *testing.T, out string) events.Planned {
	t.Helper()
	var p events.Planned
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatalf("output is not a planned payload: %v\n%s", err, out)
	}
	if err := events.ValidatePayload(p); err != nil {
		t.Fatalf("planned payload invalid: %v", err)
	}
	return p
}

func TestMatchCommandOnTheDemo(t *testing.T) {
	t.Parallel()
	profile := writeFile(t, "profile.json", []byte(lisbonProfile))
	code, out, errOut := cliRun(t, "match", profile, "--demo")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"PLACEMENT", "RANK", "SERVICE", "SCORE", "WHY",
		"p1", "Shelter or safe accommodation, Emotional support", "Covers shelter or safe accommodation and emotional support", "Speaks Portuguese",
		// Service and organisation names with the service's id.
		"AMCV victim support — Associação de Mulheres Contra a Violência (pt.amcv.support)",
		// Interpretation is offered in every demo country now.
		"p2", "Interpretation and translation",
		"Excluded by hard constraints: Only for other ages or genders [eligibility] 1;",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}

	code, out, errOut = cliRun(t, "match", profile, "--demo", "--json", "--fallbacks", "1")
	if code != exitOK {
		t.Fatalf("--json: exit %d: %s", code, errOut)
	}
	p := planOf(t, out)
	if len(p.Groups) != 2 || len(p.Groups[0].Candidates) != 2 || p.Groups[0].Placement != "p1" || len(p.Unmatched) != 0 {
		t.Errorf("plan %+v, unmatched %v: want two groups, the first of a primary and one fallback", p.Groups, p.Unmatched)
	}

	// A victim who speaks only Swahili and refuses an interpreter: the
	// table says what removed the services, need by need.
	swahili := strings.Replace(lisbonProfile, `"languages":["pt"]`, `"languages":["sw"]`, 1)
	code, out, errOut = cliRun(t, "match", writeFile(t, "sw.json", []byte(swahili)), "--demo")
	if code != exitOK {
		t.Fatalf("swahili: exit %d: %s", code, errOut)
	}
	for _, want := range []string{"Not covered:", "[safety.shelter]: Services offering it: 3; none passes every constraint (No shared language, and the victim does not want an interpreter: 3)"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}

	// In each language of the taxonomy, in its words: no code, no
	// placeholder left.
	for lang, want := range map[string]string{
		"bg": "Покрива", "hr": "Pokriva", "fi": "Kattaa", "fr": "Couvre", "it": "Copre", "nl": "Dekt", "pt": "Cobre",
	} {
		code, out, errOut = cliRun(t, "match", profile, "--demo", "--lang", lang)
		if code != exitOK {
			t.Fatalf("--lang %s: exit %d: %s", lang, code, errOut)
		}
		if !strings.Contains(out, want) || strings.ContainsAny(out, "{}") || strings.Contains(out, "Covers") {
			t.Errorf("--lang %s: want %q, no placeholder and no English:\n%s", lang, want, out)
		}
	}
	code, _, errOut = cliRun(t, "match", profile, "--demo", "--lang", "de")
	if code != exitUsage || !strings.Contains(errOut, "--lang") {
		t.Errorf("--lang de: exit %d, %s", code, errOut)
	}
}

func TestMatchCommandInputs(t *testing.T) {
	t.Parallel()
	_, want, _ := cliRun(t, "match", writeFile(t, "p.json", []byte(lisbonProfile)), "--demo", "--json")
	yamlProfile := `needs: [safety.shelter, support.emotional, comm.interpretation]
crimes: [domestic_violence]
urgency: urgent
location: {country: pt, region: PT170, lat: 38.72, lon: -9.14}
languages: [pt]
age_band: adult
gender: female
channels: [in_person, phone]
`
	requested := strings.TrimSuffix(lisbonProfile, "}") +
		`,"consent":{"referral":true,"share_data":true,"given_at":"2026-11-26T10:00:00Z","method":"verbal","recorded_by":"staff-s017"}}`
	for name, args := range map[string][]string{
		"yaml":      {"match", writeFile(t, "p.yaml", []byte(yamlProfile)), "--demo", "--json"},
		"requested": {"match", writeFile(t, "r.json", []byte(requested)), "--demo", "--json"},
	} {
		code, out, errOut := cliRun(t, args...)
		if code != exitOK {
			t.Errorf("%s: exit %d: %s", name, code, errOut)
			continue
		}
		if out != want {
			t.Errorf("%s: plan differs from the JSON profile's:\n%s\nwant\n%s", name, out, want)
		}
	}

	var out, errOut syncBuffer
	root := newRootCmd(&out, &errOut)
	root.SetArgs([]string{"match", "-", "--demo", "--json"})
	root.SetIn(strings.NewReader(lisbonProfile))
	if err := root.ExecuteContext(t.Context()); err != nil || out.String() != want {
		t.Errorf("profile on stdin: %v\n%s", err, out.String())
	}
}

// The same directory through a file, a stopped server's data directory and
// the demo flag gives the same plan.
func TestMatchCommandDirectorySources(t *testing.T) {
	t.Parallel()
	d, err := directory.Demo(matchDemoSeedDefault)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	dirFile := writeFile(t, "demo.json", raw)
	profile := writeFile(t, "p.json", []byte(lisbonProfile))
	_, demoOut, _ := cliRun(t, "match", profile, "--demo", "--json")
	want := planOf(t, demoOut)

	code, out, errOut := cliRun(t, "match", profile, "--directory", dirFile, "--json")
	if code != exitOK {
		t.Fatalf("--directory: exit %d: %s", code, errOut)
	}
	if got := planOf(t, out); !reflect.DeepEqual(got, want) {
		t.Errorf("--directory plan differs from --demo's:\n%+v\n%+v", got, want)
	}

	data := t.TempDir()
	if code, _, errOut := cliRun(t, "directory", "import", "--data", data, "--format", "json", dirFile); code != exitOK {
		t.Fatalf("import: exit %d: %s", code, errOut)
	}
	code, out, errOut = cliRun(t, "match", profile, "--data", data, "--json")
	if code != exitOK {
		t.Fatalf("--data: exit %d: %s", code, errOut)
	}
	got := planOf(t, out)
	if got.DirectoryRevision == 0 {
		t.Errorf("--data plan has no directory revision")
	}
	got.DirectoryRevision = want.DirectoryRevision
	if !reflect.DeepEqual(got, want) {
		t.Errorf("--data plan differs from --demo's:\n%+v\n%+v", got, want)
	}
}

func TestMatchCommandErrors(t *testing.T) {
	t.Parallel()
	good := writeFile(t, "p.json", []byte(lisbonProfile))
	for _, tt := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"unknown need", []string{"match", writeFile(t, "bad.json", []byte(strings.Replace(lisbonProfile, "safety.shelter", "support.magic", 1))), "--demo"}, exitError, `/needs/0 invalid_code: "support.magic" is not a known need code`},
		{"unknown field", []string{"match", writeFile(t, "typo.json", []byte(strings.Replace(lisbonProfile, `"needs"`, `"need"`, 1))), "--demo"}, exitError, `/need unknown_field: "need" is not a field`},
		{"no consent", []string{"match", writeFile(t, "nc.json", []byte(strings.TrimSuffix(lisbonProfile, "}")+`,"consent":{"referral":false,"given_at":"2026-11-26T10:00:00Z","method":"verbal","recorded_by":"staff-s001"}}`)), "--demo"}, exitError, "consent"},
		{"missing file", []string{"match", "/nonexistent/profile.json", "--demo"}, exitError, "no such file"},
		{"two directories", []string{"match", good, "--demo", "--data", t.TempDir()}, exitUsage, "choose one directory"},
		{"bad time", []string{"match", good, "--demo", "--at", "tomorrow"}, exitUsage, "--at"},
		{"too many fallbacks", []string{"match", good, "--demo", "--fallbacks", "40"}, exitUsage, "--fallbacks"},
		{"no profile", []string{"match", "--demo"}, exitUsage, "accepts 1 arg"},
	} {
		code, _, errOut := cliRun(t, tt.args...)
		if code != tt.code || !strings.Contains(errOut, tt.want) {
			t.Errorf("%s: exit %d, stderr %q; want exit %d mentioning %q", tt.name, code, errOut, tt.code, tt.want)
		}
	}
}

func TestMatchCommandEmergency(t *testing.T) {
	t.Parallel()
	profile := strings.Replace(lisbonProfile, `"urgent"`, `"emergency"`, 1)
	code, out, errOut := cliRun(t, "match", writeFile(t, "e.json", []byte(profile)), "--demo", "--at", "2026-11-27T03:00:00+00:00")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "call 112") || !strings.Contains(out, "24/7") {
		t.Errorf("emergency table lacks the 112 advice or 24/7 services:\n%s", out)
	}
}

func TestMatchHelpHasExamples(t *testing.T) {
	t.Parallel()
	code, out, _ := cliRun(t, "match", "--help")
	if code != exitOK || !strings.Contains(out, "Examples:") || !strings.Contains(out, "invictus match profile.json --demo") {
		t.Errorf("match --help: exit %d:\n%s", code, out)
	}
}
