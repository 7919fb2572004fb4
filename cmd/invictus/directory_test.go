package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/invictus-network/invictus/adapters/natsjs"
	"github.com/invictus-network/invictus/directory"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/internal/testenv"
)

// cliRun runs the command line in process with buffers and returns the
// exit code, standard output and standard error.
func cliRun(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut syncBuffer
	code := run(t.Context(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// cliServer starts an embedded NATS server on a free port, as a running
// `invictus serve` would be, and returns its URL.
func cliServer(t *testing.T) string {
	t.Helper()
	ctx := testenv.Context(t)
	srv, err := natsjs.StartServer(ctx, natsjs.ServerConfig{StoreDir: t.TempDir(), Listen: "127.0.0.1:0"}, nil)
	if err != nil {
		t.Fatalf("StartServer: %v", err)
	}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), time.Minute) // against a hang only
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return srv.ClientURL()
}

// writeFile writes data to name in a temporary directory and returns the
// path.
func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func hsdsFile(t *testing.T, d *directory.Directory) string {
	t.Helper()
	data, err := directory.ExportHSDS(d)
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, "directory.hsds.json", data)
}

func TestDirectoryValidateCommand(t *testing.T) {
	t.Parallel()
	good := hsdsFile(t, directory.Generate(20, 1))
	code, out, errOut := cliRun(t, "directory", "validate", good)
	if code != exitOK || !strings.Contains(out, "valid:") {
		t.Fatalf("validate good file: exit %d, out %q, err %q", code, out, errOut)
	}

	template := filepath.Join("..", "..", "directory", "testdata", "form-template.csv")
	if code, out, errOut := cliRun(t, "directory", "validate", template); code != exitOK {
		t.Fatalf("validate the form template: exit %d, out %q, err %q", code, out, errOut)
	}

	bad := writeFile(t, "bad.csv", []byte(
		"org_id,org_name,country,service_name,needs,languages,channels,hours,capacity\n"+
			"pt.bad-org,Bad,pt,Line,support.emotionl,pt,phone,mo-fr 18:00-09:00,accepting\n"+
			"pt.bad-org,,,Office,info.rights,xx,in_person,24/7,sometimes\n"))
	code, out, _ = cliRun(t, "directory", "validate", bad)
	if code != exitError {
		t.Fatalf("validate bad file: exit %d, want %d", code, exitError)
	}
	for _, want := range []string{"support.emotionl", "row 2", "row 3", "column needs", "column languages", "column capacity"} {
		if !strings.Contains(out, want) {
			t.Errorf("validate output lacks %q:\n%s", want, out)
		}
	}
	if lines := strings.Count(out, "\n"); lines < 4 {
		t.Errorf("validate printed %d problems, want every one (at least 4):\n%s", lines, out)
	}

	if code, _, _ := cliRun(t, "directory", "validate", "--format", "xml", good); code != exitUsage {
		t.Errorf("--format xml: exit %d, want %d", code, exitUsage)
	}
	if code, _, _ := cliRun(t, "directory", "validate"); code != exitUsage {
		t.Errorf("validate without FILE: exit %d, want %d", code, exitUsage)
	}
}

func TestDirectoryImportExportStats(t *testing.T) {
	t.Parallel()
	url := cliServer(t)
	d := directory.Generate(120, 2)
	file := hsdsFile(t, d)

	code, out, errOut := cliRun(t, "directory", "import", "--nats-url", url, file)
	if code != exitOK || !strings.Contains(out, "created") {
		t.Fatalf("import: exit %d, out %q, err %q", code, out, errOut)
	}
	code, out, _ = cliRun(t, "directory", "import", "--nats-url", url, file)
	if code != exitOK || !strings.Contains(out, "0 created, 0 updated") {
		t.Errorf("second import is not a no-op: exit %d, %q", code, out)
	}

	// Export and re-read: the same directory.
	exported := filepath.Join(t.TempDir(), "export.json")
	if code, _, errOut := cliRun(t, "directory", "export", "--nats-url", url, "-o", exported); code != exitOK {
		t.Fatalf("export: exit %d, err %q", code, errOut)
	}
	data, err := os.ReadFile(exported)
	if err != nil {
		t.Fatal(err)
	}
	back, err := directory.ImportHSDS(data)
	if err != nil {
		t.Fatalf("the export does not import: %v", err)
	}
	if !reflect.DeepEqual(back, d) {
		t.Error("export after import differs from the imported directory")
	}
	code, out, _ = cliRun(t, "directory", "export", "--nats-url", url, "--format", "json")
	var native directory.Directory
	if code != exitOK || json.Unmarshal([]byte(out), &native) != nil || len(native.Services) != len(d.Services) {
		t.Errorf("export --format json: exit %d, %d services", code, len(native.Services))
	}

	// Stats count what was imported.
	code, out, errOut = cliRun(t, "directory", "stats", "--nats-url", url, "--json")
	if code != exitOK {
		t.Fatalf("stats: exit %d, err %q", code, errOut)
	}
	var st directoryStats
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("stats --json: %v\n%s", err, out)
	}
	want := statsOf(d, st.Revision)
	if !reflect.DeepEqual(st, want) {
		t.Errorf("stats = %+v, want %+v", st, want)
	}
	fr := 0
	for _, s := range d.Services {
		if s.Area.Countries[0] == "fr" {
			fr++
		}
	}
	if st.Countries["fr"] == nil || st.Countries["fr"].Services != fr || fr == 0 {
		t.Errorf("stats for fr: %+v, want %d services", st.Countries["fr"], fr)
	}
	code, out, _ = cliRun(t, "directory", "stats", "--nats-url", url)
	if code != exitOK || !strings.Contains(out, "country") || !strings.Contains(out, events.NeedInfoRights) || !strings.Contains(out, "fr") {
		t.Errorf("stats table: exit %d\n%s", code, out)
	}
	// The gaps are flagged: need codes no service offers.
	var unoffered []string
	for _, n := range events.Needs {
		if !slices.ContainsFunc(d.Services, func(s directory.Service) bool { return s.Active() && slices.Contains(s.Needs, n) }) {
			unoffered = append(unoffered, n)
		}
	}
	if !slices.Equal(st.Unoffered, unoffered) {
		t.Errorf("unoffered %v, want %v", st.Unoffered, unoffered)
	}
	if len(unoffered) > 0 && !strings.Contains(out, "Offered by no service anywhere: "+strings.Join(unoffered, ", ")) {
		t.Errorf("stats table does not flag %v:\n%s", unoffered, out)
	}
}

func TestDirectoryCommandsOnDataDir(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	template := filepath.Join("..", "..", "directory", "testdata", "form-template.csv")
	code, out, errOut := cliRun(t, "directory", "import", "--data", data, template)
	if code != exitOK {
		t.Fatalf("import --data: exit %d, out %q, err %q", code, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(data, "nats", "jetstream")); err != nil {
		t.Fatalf("no JetStream store under DIR/nats: %v", err)
	}
	// A second, separate run reads what the first stored.
	code, out, errOut = cliRun(t, "directory", "stats", "--data", data, "--json")
	if code != exitOK {
		t.Fatalf("stats --data: exit %d, err %q", code, errOut)
	}
	var st directoryStats
	if err := json.Unmarshal([]byte(out), &st); err != nil || st.Organisations == 0 || st.Countries["pt"] == nil {
		t.Fatalf("stats after import: %+v (%v)", st, err)
	}
}

func TestOrgCommands(t *testing.T) {
	t.Parallel()
	url := cliServer(t)
	d := directory.Generate(12, 5)
	org := d.Organisations[0]
	one := &directory.Directory{Organisations: []directory.Organisation{org}}
	var svcs []directory.Service
	for _, s := range d.ServicesOf(org.ID) {
		svcs = append(svcs, *s)
	}
	one.Services = svcs
	if len(svcs) == 0 {
		t.Fatal("the generated organisation has no service")
	}
	data, _ := json.Marshal(one)
	file := writeFile(t, "org.json", data)

	code, out, errOut := cliRun(t, "org", "add", "--nats-url", url, file)
	if code != exitOK || !strings.Contains(out, "added "+org.ID) || !strings.Contains(out, "invictus org approve "+org.ID) {
		t.Fatalf("org add: exit %d, out %q, err %q", code, out, errOut)
	}
	// The organisation waits for approval; rejecting or approving
	// anything else is refused, approving it twice too.
	pending := func() bool {
		t.Helper()
		code, out, _ := cliRun(t, "directory", "export", "--nats-url", url, "--format", "json")
		var got directory.Directory
		if code != exitOK || json.Unmarshal([]byte(out), &got) != nil || got.Organisation(org.ID) == nil {
			t.Fatalf("export: exit %d", code)
		}
		return got.Organisation(org.ID).Pending
	}
	if !pending() {
		t.Fatal("org add: the organisation is listed at once, want it waiting for approval")
	}
	if code, _, errOut := cliRun(t, "org", "approve", "--nats-url", url, "xx"); code != exitUsage {
		t.Errorf("org approve xx: exit %d, err %q", code, errOut)
	}
	if code, out, errOut := cliRun(t, "org", "approve", "--nats-url", url, org.ID); code != exitOK || !strings.Contains(out, "approved "+org.ID) || pending() {
		t.Fatalf("org approve: exit %d, out %q, err %q", code, out, errOut)
	}
	for _, verb := range []string{"approve", "reject"} {
		if code, _, errOut := cliRun(t, "org", verb, "--nats-url", url, org.ID); code != exitError || !strings.Contains(errOut, "not waiting for approval") {
			t.Errorf("org %s of a listed organisation: exit %d, err %q", verb, code, errOut)
		}
	}
	code, _, errOut = cliRun(t, "org", "add", "--nats-url", url, file)
	if code != exitError || !strings.Contains(errOut, "already exists") {
		t.Errorf("second org add: exit %d, err %q; want a conflict", code, errOut)
	}

	// Update: one service changed, one new, the rest pruned.
	one.Services = one.Services[:1]
	one.Services[0].Description = "updated by the CLI test"
	extra := one.Services[0]
	extra.ID, extra.Name = org.ID+".extra", "Extra"
	one.Services = append(one.Services, extra)
	data, _ = json.Marshal(one)
	file = writeFile(t, "org2.json", data)
	if code, _, errOut := cliRun(t, "org", "update", "--nats-url", url, "--expect-revision", "999999", file); code != exitError || !strings.Contains(errOut, "conflict") {
		t.Errorf("org update with a stale revision: exit %d, err %q", code, errOut)
	}
	code, out, errOut = cliRun(t, "org", "update", "--nats-url", url, "--prune", file)
	wantDeleted := len(svcs) - 1
	if code != exitOK || !strings.Contains(out, "1 services updated, 1 added") || !strings.Contains(out, fmt.Sprintf("%d deleted", wantDeleted)) {
		t.Fatalf("org update: exit %d, out %q, err %q", code, out, errOut)
	}

	code, out, errOut = cliRun(t, "org", "set-capacity", "--nats-url", url, extra.ID, events.CapacityFull)
	if code != exitOK || !strings.Contains(out, "full") {
		t.Fatalf("set-capacity: exit %d, out %q, err %q", code, out, errOut)
	}
	code, out, _ = cliRun(t, "directory", "export", "--nats-url", url, "--format", "json")
	var got directory.Directory
	if code != exitOK || json.Unmarshal([]byte(out), &got) != nil {
		t.Fatalf("export: exit %d", code)
	}
	if len(got.Services) != 2 || got.Service(extra.ID).Capacity.Status != events.CapacityFull ||
		got.Service(one.Services[0].ID).Description != "updated by the CLI test" {
		t.Errorf("stored after update and set-capacity: %+v", got.Services)
	}

	if code, _, _ := cliRun(t, "org", "set-capacity", "--nats-url", url, extra.ID, "maybe"); code != exitUsage {
		t.Errorf("set-capacity maybe: exit %d, want %d", code, exitUsage)
	}
	if code, _, errOut := cliRun(t, "org", "set-capacity", "--nats-url", url, org.ID+".nope", "full"); code != exitError || !strings.Contains(errOut, "not found") {
		t.Errorf("set-capacity of a missing service: exit %d, err %q", code, errOut)
	}
	if code, _, errOut := cliRun(t, "org", "update", "--nats-url", url, hsdsFile(t, d)); code != exitError || !strings.Contains(errOut, "exactly one") {
		t.Errorf("org update with several organisations: exit %d, err %q", code, errOut)
	}
}

func TestDirectoryHelpHasExamples(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"directory", "import"}, {"directory", "export"}, {"directory", "validate"}, {"directory", "stats"},
		{"org", "add"}, {"org", "update"}, {"org", "set-capacity"}, {"org", "approve"}, {"org", "reject"},
	} {
		code, out, _ := cliRun(t, append(args, "--help")...)
		if code != exitOK || !strings.Contains(out, "Examples:") || !strings.Contains(out, "invictus "+args[0]+" "+args[1]) {
			t.Errorf("%v --help: exit %d, no example:\n%s", args, code, out)
		}
	}
}

func TestDirectoryUnreachableServer(t *testing.T) {
	t.Parallel()
	code, _, errOut := cliRun(t, "directory", "stats", "--nats-url", "nats://127.0.0.1:1", "--timeout", "5s")
	if code != exitError || !strings.Contains(errOut, "--nats-url") {
		t.Errorf("stats against no server: exit %d, err %q", code, errOut)
	}
}

// TestDirectoryValidateEmailWithoutAddress: validate names each
// organisation that receives referrals by e-mail without an address.
func TestDirectoryValidateEmailWithoutAddress(t *testing.T) {
	t.Parallel()
	d := directory.Generate(20, 1)
	d.Organisations[1].ReferralChannel = directory.ReferralChannelEmail
	d.Organisations[1].ReferralContact.Email = ""
	d.Organisations[0].ReferralChannel = directory.ReferralChannelEmail
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	code, out, _ := cliRun(t, "directory", "validate", writeFile(t, "dir.json", b))
	if code != exitError {
		t.Fatalf("exit %d, want %d:\n%s", code, exitError, out)
	}
	want := "organisation " + d.Organisations[1].ID + " receives referrals by e-mail"
	if !strings.Contains(out, want) || !strings.Contains(out, "/organisations/1/referral_contact/email") || strings.Contains(out, "/organisations/0/") {
		t.Errorf("validate output, want only organisation 1 named (%q):\n%s", want, out)
	}
}

// Stats flag the need codes no service offers, anywhere and per country.
func TestDirectoryStatsFlagUnofferedNeeds(t *testing.T) {
	t.Parallel()
	d := &directory.Directory{Services: []directory.Service{
		{ID: "pt.a.s", Organisation: "pt.a", Status: directory.StatusActive, Needs: []string{events.NeedInfoRights}, Area: directory.ServiceArea{Countries: []string{"pt"}}},
		{ID: "fi.b.s", Organisation: "fi.b", Status: directory.StatusActive, Needs: []string{events.NeedInfoRights, events.NeedSafetyShelter}, Area: directory.ServiceArea{Countries: []string{"fi"}}},
	}}
	st := statsOf(d, 1)
	if slices.Contains(st.Unoffered, events.NeedInfoRights) || slices.Contains(st.Unoffered, events.NeedSafetyShelter) || !slices.Contains(st.Unoffered, events.NeedCrossborderAssistance) {
		t.Errorf("unoffered %v", st.Unoffered)
	}
	if !slices.Contains(st.UnofferedIn["pt"], events.NeedSafetyShelter) || slices.Contains(st.UnofferedIn["fi"], events.NeedSafetyShelter) {
		t.Errorf("unoffered in %v", st.UnofferedIn)
	}
	var b strings.Builder
	if err := writeStatsTable(&b, st); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "Offered by no service anywhere: info.case,") || !strings.Contains(b.String(), "Offered by no service in pt: ") ||
		strings.Contains(b.String(), "Offered by no service in fi: ") {
		t.Errorf("table:\n%s", b.String())
	}
}
