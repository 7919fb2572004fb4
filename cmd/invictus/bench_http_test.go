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

// `invictus bench wait` sends commands with ?wait= to a node beside the
// baseline and counts the decided answers.
func TestBenchWait(t *testing.T) {
	t.Parallel()
	bin := invictusBinary(t)
	cmd := exec.CommandContext(t.Context(), bin, "bench", "wait", "--rate", "40", "--duration", "1s", "--wait", "10s", "--log-level", "error")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("bench wait: %v\n%s\n%s", err, out.String(), errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var results []benchHTTPResult
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &results); err != nil {
		t.Fatalf("last line is not the JSON record: %v\n%s", err, out.String())
	}
	if len(results) != 2 || results[0].Target != "net/http baseline" || results[1].Target != "invictus node" {
		t.Fatalf("targets: %+v", results)
	}
	if node := results[1]; node.Sent < 20 || node.ByStatus["accepted"] == 0 || node.Errors != 0 {
		t.Errorf("node: %+v, want commands accepted after their wait", node)
	}
	for _, col := range []string{"decided", "pending", "p99 ms"} {
		if !strings.Contains(out.String(), col) {
			t.Errorf("no %q column:\n%s", col, out.String())
		}
	}
}
