package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"github.com/invictus-network/invictus/internal/testenv"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The README's walk-through is a test: every fenced block opened with
// "```sh walkthrough" is run, in order, by one bash process (so that
// variables and the background node carry over), and its standard output
// is compared with the "```output" block that follows it, in which "..."
// stands for any text within a line.

const (
	// walkFence opens a block of commands; outputFence the expected output
	// of the block before it.
	walkFence   = "```sh walkthrough"
	outputFence = "```output"
	// walkMarker ends the output of each step.
	walkMarker = "@@invictus-walkthrough-step-%d@@"
)

// walkStep is one block of the walk-through.
type walkStep struct {
	line    int    // of the fence in README.md
	script  string // the commands
	want    string // the expected output
	hasWant bool
}

// readWalkthrough returns the walk-through blocks of the Markdown file.
func readWalkthrough(path string) ([]walkStep, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var steps []walkStep
	var block *strings.Builder
	kind, start, n := "", 0, 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		n++
		line := sc.Text()
		switch {
		case block == nil && (line == walkFence || line == outputFence):
			block, kind, start = &strings.Builder{}, line, n
		case block != nil && line == "```":
			switch {
			case kind == walkFence:
				steps = append(steps, walkStep{line: start, script: block.String()})
			case len(steps) == 0 || steps[len(steps)-1].hasWant:
				return nil, fmt.Errorf("%s:%d: an output block that follows no walkthrough block", path, start)
			default:
				steps[len(steps)-1].want, steps[len(steps)-1].hasWant = block.String(), true
			}
			block = nil
		case block != nil:
			block.WriteString(line + "\n")
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if block != nil {
		return nil, fmt.Errorf("%s:%d: unterminated block", path, start)
	}
	return steps, nil
}

// outputMatches reports whether got matches want line by line, "..." in
// want matching any text; trailing spaces and blank lines do not count.
// It returns the first line that differs, for the message.
func outputMatches(want, got string) (bool, string) {
	wl, gl := splitLines(want), splitLines(got)
	for i := range max(len(wl), len(gl)) {
		switch {
		case i >= len(wl):
			return false, fmt.Sprintf("line %d: unexpected %q", i+1, gl[i])
		case i >= len(gl):
			return false, fmt.Sprintf("line %d: missing %q", i+1, wl[i])
		}
		parts := strings.Split(wl[i], "...")
		for j, p := range parts {
			parts[j] = regexp.QuoteMeta(p)
		}
		if !regexp.MustCompile("^" + strings.Join(parts, ".*") + "$").MatchString(gl[i]) {
			return false, fmt.Sprintf("line %d:\n  want %q\n  got  %q", i+1, wl[i], gl[i])
		}
	}
	return true, ""
}

func splitLines(s string) []string {
	lines := strings.Split(strings.TrimRight(s, " \t\n"), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " \t")
	}
	return lines
}

func TestOutputMatches(t *testing.T) {
	t.Parallel()
	tests := []struct {
		want, got string
		ok        bool
	}{
		{"a ... c\n", "a b c\n", true},
		{"a ... c", "a  c", true},
		{`{"id":"...","status":"accepted"}`, `{"id":"0195","status":"accepted"}` + "\n\n", true},
		{`{"id":"...","status":"accepted"}`, `{"id":"0195","status":"rejected"}`, false},
		{"one\ntwo", "one", false},
		{"one", "one\ntwo", false},
		{"x.y", "xzy", false}, // no regexp in the text
	}
	for _, tt := range tests {
		if ok, msg := outputMatches(tt.want, tt.got); ok != tt.ok {
			t.Errorf("outputMatches(%q, %q) = %v (%s), want %v", tt.want, tt.got, ok, msg, tt.ok)
		}
	}
}

func TestWalkthrough(t *testing.T) {
	t.Parallel()
	bin := invictusBinary(t)
	for _, tool := range []string{"bash", "curl", "jq"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("the walk-through needs %s: %v", tool, err)
			}
			t.Skipf("the walk-through needs %s: %v", tool, err)
		}
	}
	readme := filepath.Join("..", "..", "README.md")
	steps, err := readWalkthrough(readme)
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) < 10 {
		t.Fatalf("README.md has %d walkthrough blocks; the walk-through has at least 10", len(steps))
	}

	// One script: each step, then a marker line.
	var script strings.Builder
	script.WriteString("set -euo pipefail\n")
	for i, s := range steps {
		if !s.hasWant {
			t.Errorf("README.md:%d: a walkthrough block without an output block after it", s.line)
		}
		fmt.Fprintf(&script, "# README.md:%d\n%s\nprintf '\\n%s\\n'\n", s.line, s.script, fmt.Sprintf(walkMarker, i))
	}
	work, tmp := t.TempDir(), t.TempDir()
	scriptFile := filepath.Join(t.TempDir(), "walkthrough.sh")
	if err := os.WriteFile(scriptFile, []byte(script.String()), 0o600); err != nil {
		t.Fatal(err)
	}

	ctx := testenv.Context(t)
	cmd := exec.CommandContext(ctx, "bash", scriptFile)
	cmd.Dir = work
	cmd.Env = append(cleanEnv(), "PATH="+filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"), "TMPDIR="+tmp)
	// The script and the node it starts in the background form one process
	// group, ended as a whole if the test gives up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	t.Cleanup(func() {
		if cmd.Process != nil {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // fails harmlessly when all have ended
		}
	})
	runErr := cmd.Run()

	out := stdout.String()
	for i, s := range steps {
		marker := "\n" + fmt.Sprintf(walkMarker, i) + "\n"
		got, rest, found := strings.Cut(out, marker)
		if !found {
			t.Fatalf("README.md:%d: the step did not finish (%v)\n--- its output:\n%s\n--- stderr:\n%s\n--- the node's log:\n%s",
				s.line, runErr, out, stderr.String(), nodeLog(tmp))
		}
		out = rest
		if ok, diff := outputMatches(s.want, got); !ok {
			t.Errorf("README.md:%d: the output differs from README.md's, %s\n--- got:\n%s", s.line, diff, got)
		}
	}
	if runErr != nil {
		var exitErr *exec.ExitError
		if !errors.As(runErr, &exitErr) {
			t.Fatal(runErr)
		}
		t.Errorf("the walk-through ended with %v\n%s", runErr, stderr.String())
	}
	if t.Failed() {
		t.Logf("stderr:\n%s\n--- the node's log:\n%s", stderr.String(), nodeLog(tmp))
	}
}

// nodeLog returns the serve.log of the walk-through's data directory under
// tmp, for failure messages.
func nodeLog(tmp string) string {
	files, _ := filepath.Glob(filepath.Join(tmp, "*", "serve.log"))
	var b strings.Builder
	for _, f := range files {
		data, _ := os.ReadFile(f)
		b.Write(data)
	}
	return b.String()
}
