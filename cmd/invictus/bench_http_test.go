package main

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

// `invictus bench http` starts a node and the baseline, drives both and
// prints a row and a JSON record for each.
func TestBenchHTTP(t *testing.T) {
	t.Parallel()
	bin := invictusBinary(t)
	cmd := exec.CommandContext(t.Context(), bin, "bench", "http", "--rate", "100", "--duration", "1s", "--log-level", "error")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("bench http: %v\n%s\n%s", err, out.String(), errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var results []benchHTTPResult
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &results); err != nil {
		t.Fatalf("last line is not the JSON record: %v\n%s", err, out.String())
	}
	if len(results) != 2 || results[0].Target != "net/http baseline" || results[1].Target != "invictus node" {
		t.Fatalf("targets: %+v", results)
	}
	for _, r := range results {
		if r.Sent < 50 || r.ByStatus["2xx"] == 0 || r.RSSPeakMiB <= 0 || r.GoroutinesMax <= 0 {
			t.Errorf("%s: %+v", r.Target, r)
		}
	}
	for _, col := range []string{"503", "p99 ms", "RSS peak MiB", "goroutines peak"} {
		if !strings.Contains(out.String(), col) {
			t.Errorf("no %q column:\n%s", col, out.String())
		}
	}
}
