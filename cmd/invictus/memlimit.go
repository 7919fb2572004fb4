package main

import (
	"math"
	"runtime/debug"
	"sync"
)

// memoryLimitDefault is serve's --memory-limit: the Go runtime's soft
// memory limit. Without one the runtime lets the heap grow to twice what
// is live before it collects, and returns what it freed to the system
// slowly: with 100,000 referrals open, `bench e2e --open` ended at 963
// MiB resident for a live heap of 290 MiB. Near the limit the runtime
// collects more often, which costs CPU; the limit is soft, so a node
// whose live data needs more still runs, collecting all the time (the
// runtime gives that at most about half the CPU). 256 MiB was measured
// too: with 100,000 open (a live heap of 230-340 MiB while they came in)
// the CPU per referral tripled.
const memoryLimitDefault = 512 << 20

// memoryLimitMin is the least --memory-limit: below it the runtime would
// collect all the time.
const memoryLimitMin = 64 << 20

// memoryLimits counts the commands running under a limit of theirs, so
// that the runtime's limit from before the first is put back after the
// last (tests run several in one process).
var memoryLimits struct {
	sync.Mutex
	users  int
	before int64
}

// applyMemoryLimit sets the runtime's soft memory limit from
// --memory-limit (limit; "unlimited", negative, for none) and returns the
// limit in force (math.MaxInt64 for none) and a function that puts back
// the one from before. When the flag was left at its default
// (fromDefault) and the environment sets GOMEMLIMIT (goMemLimit), the
// runtime's own limit from it stands: that variable is the operator's
// choice too.
func applyMemoryLimit(limit int64, fromDefault, goMemLimit bool) (int64, func()) {
	if fromDefault && goMemLimit {
		return debug.SetMemoryLimit(-1), func() {}
	}
	if limit <= 0 {
		limit = math.MaxInt64
	}
	memoryLimits.Lock()
	defer memoryLimits.Unlock()
	if memoryLimits.users == 0 {
		memoryLimits.before = debug.SetMemoryLimit(-1)
	}
	memoryLimits.users++
	debug.SetMemoryLimit(limit)
	var once sync.Once
	return limit, func() {
		once.Do(func() {
			memoryLimits.Lock()
			defer memoryLimits.Unlock()
			if memoryLimits.users--; memoryLimits.users == 0 {
				debug.SetMemoryLimit(memoryLimits.before)
			}
		})
	}
}
