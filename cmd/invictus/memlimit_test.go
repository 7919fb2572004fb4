package main

import (
	"math"
	"runtime/debug"
	"strings"
	"testing"
)

// TestApplyMemoryLimit: the flag sets the runtime's soft limit, GOMEMLIMIT
// stands against the default only, "unlimited" lifts it, and the limit
// from before the first command comes back after the last, in whatever
// order they end.
func TestApplyMemoryLimit(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(before) })
	now := func() int64 { return debug.SetMemoryLimit(-1) }

	got, restore := applyMemoryLimit(memoryLimitDefault, true, false)
	if got != memoryLimitDefault || now() != memoryLimitDefault {
		t.Errorf("default: %d in force, runtime %d; want %d", got, now(), memoryLimitDefault)
	}
	restore()
	restore() // twice is once
	if now() != before {
		t.Errorf("after: runtime %d, want %d back", now(), before)
	}

	debug.SetMemoryLimit(1 << 30) // as GOMEMLIMIT=1GiB would
	got, restore = applyMemoryLimit(memoryLimitDefault, true, true)
	if got != 1<<30 || now() != 1<<30 {
		t.Errorf("default with GOMEMLIMIT: %d in force, runtime %d; want GOMEMLIMIT's %d", got, now(), 1<<30)
	}
	restore()
	got, restore = applyMemoryLimit(100<<20, false, true)
	if got != 100<<20 || now() != 100<<20 {
		t.Errorf("flag with GOMEMLIMIT: %d in force, runtime %d; want the flag's %d", got, now(), 100<<20)
	}
	restore()
	if now() != 1<<30 {
		t.Errorf("after the flag: runtime %d, want GOMEMLIMIT's back", now())
	}

	debug.SetMemoryLimit(math.MaxInt64)
	a, restoreA := applyMemoryLimit(-1, false, false)
	if a != math.MaxInt64 {
		t.Errorf("unlimited: %d in force, want none", a)
	}
	_, restoreB := applyMemoryLimit(200<<20, false, false)
	restoreA() // the first ends first: B's limit holds until B ends
	if now() != 200<<20 {
		t.Errorf("one of two ended: runtime %d, want the other's %d", now(), 200<<20)
	}
	restoreB()
	if now() != math.MaxInt64 {
		t.Errorf("both ended: runtime %d, want none back", now())
	}
}

// TestServeMemoryLimit: serve runs under --memory-limit and puts the
// runtime's limit back when it ends; config print shows the default. Not
// parallel: the limit is the process's.
func TestServeMemoryLimit(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	p := serveInProcess(t, fakeEnv(nil), "--data", t.TempDir(), "--memory-limit", "200MiB")
	if got := debug.SetMemoryLimit(-1); got != 200<<20 {
		t.Errorf("while serving: runtime limit %d, want %d", got, 200<<20)
	}
	if !strings.Contains(p.errOut.String(), "memory limit") {
		t.Errorf("no memory limit in the log:\n%s", p.errOut)
	}
	if code := p.stop(); code != exitOK {
		t.Fatalf("exit %d\n%s", code, p.errOut)
	}
	if got := debug.SetMemoryLimit(-1); got != before {
		t.Errorf("after: runtime limit %d, want %d back", got, before)
	}
	code, out, errOut := configPrint(t, nil)
	line := ""
	for l := range strings.Lines(out) {
		if strings.HasPrefix(l, "memory-limit ") {
			line = l
		}
	}
	if code != exitOK || !strings.Contains(line, " 512MiB ") {
		t.Errorf("config print: exit %d, want memory-limit 512MiB in:\n%s%s", code, out, errOut)
	}
}
