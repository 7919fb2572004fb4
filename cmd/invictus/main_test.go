package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/invictus-network/invictus/internal/testenv"
)

// binDir holds the binary that the end-to-end tests build once.
var binDir string

// TestMain makes a directory for the built binary and fails the run if a
// goroutine outlives the tests (the in-process tests start NATS servers).
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "invictus-cmd-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// syncBuffer is a buffer safe for concurrent writes.
type syncBuffer = testenv.SyncBuffer

// runArgs runs the command line in process and returns the exit code,
// standard output and standard error.
func runArgs(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut syncBuffer
	code := run(t.Context(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"bogus"}, `unknown command "bogus"`},
		{[]string{"serve", "--nope"}, "unknown flag: --nope"},
		{[]string{"serve", "extra"}, `unknown command "extra"`},
		{[]string{"version", "extra"}, `unknown command "extra"`},
		{[]string{"serve", "--log-format", "xml"}, `--log-format "xml"`},
		{[]string{"serve", "--log-level", "loud"}, `--log-level "loud"`},
		{[]string{"serve", "--shutdown-timeout", "0s"}, "--shutdown-timeout 0s"},
		{[]string{"serve", "--memory-limit", "1MiB"}, "--memory-limit 1048576: want at least 64 MiB"},
		{[]string{"serve", "--memory-limit", "lots"}, `invalid argument "lots" for "--memory-limit"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			code, _, errOut := runArgs(t, tt.args...)
			if code != exitUsage {
				t.Errorf("exit code %d, want %d", code, exitUsage)
			}
			if !strings.Contains(errOut, tt.want) {
				t.Errorf("stderr %q does not contain %q", errOut, tt.want)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	t.Parallel()
	code, out, _ := runArgs(t)
	if code != exitOK {
		t.Fatalf("exit code %d", code)
	}
	for _, sub := range []string{"serve", "version"} {
		if !strings.Contains(out, sub) {
			t.Errorf("help does not list %q:\n%s", sub, out)
		}
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	code, out, _ := runArgs(t, "version")
	if code != exitOK {
		t.Fatalf("exit code %d", code)
	}
	if !strings.HasPrefix(out, "invictus ") || !strings.Contains(out, runtime.Version()) {
		t.Errorf("version printed %q, want the name and %s", out, runtime.Version())
	}

	code, out, _ = runArgs(t, "version", "--json")
	if code != exitOK {
		t.Fatalf("exit code %d", code)
	}
	var bi buildInfo
	if err := json.Unmarshal([]byte(out), &bi); err != nil {
		t.Fatalf("version --json printed %q: %v", out, err)
	}
	if bi.Go != runtime.Version() || bi.Version == "" || bi.Commit == "" {
		t.Errorf("version --json = %+v", bi)
	}
}

func TestReadyz(t *testing.T) {
	t.Parallel()
	var thingErr error
	r := &readiness{}
	r.add("thing", func(context.Context) error { return thingErr })
	mux := newProbeMux(r)

	probe := func(path string) (int, probeReport) {
		t.Helper()
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		var rep probeReport
		if err := json.Unmarshal(rec.Body.Bytes(), &rep); err != nil {
			t.Fatalf("%s body %q: %v", path, rec.Body.String(), err)
		}
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s Content-Type %q", path, ct)
		}
		return rec.Code, rep
	}

	if code, rep := probe("/healthz"); code != http.StatusOK || rep.Status != "alive" {
		t.Errorf("/healthz = %d %+v, want 200 alive even before serving", code, rep)
	}
	if code, rep := probe("/readyz"); code != http.StatusServiceUnavailable || rep.Checks["serve"] == "ok" || rep.Status != "not_ready" {
		t.Errorf("/readyz before serving = %d %+v, want 503 with serve not ok", code, rep)
	}

	r.serving.Store(true)
	if code, rep := probe("/readyz"); code != http.StatusOK || rep.Status != "ready" || rep.Checks["thing"] != "ok" {
		t.Errorf("/readyz serving = %d %+v, want 200 ready", code, rep)
	}

	thingErr = errors.New("thing is down")
	if code, rep := probe("/readyz"); code != http.StatusServiceUnavailable || rep.Checks["thing"] != "thing is down" || rep.Checks["serve"] != "ok" {
		t.Errorf("/readyz with a failing check = %d %+v, want 503 naming the check", code, rep)
	}
}
