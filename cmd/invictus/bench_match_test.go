package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/invictus-network/invictus/internal/testenv"
)

func TestBenchMatchWithoutPostgres(t *testing.T) {
	t.Parallel()
	code, out, errOut := cliRun(t, "bench", "match", "--sizes", "300,600", "--matches", "200", "--profiles", "50")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"PostgreSQL: skipped: no --postgres URL", "medians of 3 runs", "match p50", "match p99", "allocs/op", "300", "600"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	code, out, errOut = cliRun(t, "bench", "match", "--sizes", "300", "--matches", "100", "--profiles", "20", "--json")
	if code != exitOK {
		t.Fatalf("--json: exit %d: %s", code, errOut)
	}
	var rep benchMatchReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("--json output: %v\n%s", err, out)
	}
	if len(rep.Results) != 1 || rep.Results[0].Services != 300 || rep.Results[0].MatchP50 <= 0 ||
		rep.Results[0].MatchP99 < rep.Results[0].MatchP50 || rep.Results[0].Postgres != nil || rep.Results[0].CandidatesP50 == 0 {
		t.Errorf("report %+v", rep)
	}
}

func TestBenchMatchWithPostgres(t *testing.T) {
	t.Parallel()
	url := testenv.DatabaseURL(t)
	code, out, errOut := cliRun(t, "bench", "match", "--sizes", "800", "--matches", "200", "--queries", "30", "--check", "40",
		"--profiles", "60", "--postgres", url, "--json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var rep benchMatchReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("--json output: %v\n%s", err, out)
	}
	pg := rep.Results[0].Postgres
	if pg == nil || pg.Checked != 40 || pg.Queries != 30 || pg.P50 <= 0 || pg.RatioP50 <= 0 || !strings.HasPrefix(pg.Schema, "bench_") {
		t.Fatalf("PostgreSQL figures %+v", pg)
	}
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	var n int
	if err := conn.QueryRow(t.Context(), "SELECT count(*) FROM pg_namespace WHERE nspname = $1", pg.Schema).Scan(&n); err != nil || n != 0 {
		t.Errorf("schema %s left behind (%d, %v)", pg.Schema, n, err)
	}
}

func TestBenchMatchUsage(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"bench", "match", "--matches", "0"}, exitUsage, "--matches"},
		{[]string{"bench", "match", "--sizes", "0"}, exitUsage, "--sizes"},
		{[]string{"bench", "match", "--runs", "0"}, exitUsage, "--runs"},
		{[]string{"bench", "match", "--sizes", "100", "--matches", "10", "--postgres", "postgres://nobody@127.0.0.1:1/none?connect_timeout=2"}, exitError, "--postgres"},
	} {
		code, _, errOut := cliRun(t, tt.args...)
		if code != tt.code || !strings.Contains(errOut, tt.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d mentioning %q", tt.args, code, errOut, tt.code, tt.want)
		}
	}
	code, out, _ := cliRun(t, "bench", "match", "--help")
	if code != exitOK || !strings.Contains(out, "invictus bench match --postgres") {
		t.Errorf("bench match --help: exit %d\n%s", code, out)
	}
}
