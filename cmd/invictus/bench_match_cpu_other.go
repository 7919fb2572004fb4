//go:build !linux

package main

import "time"

// threadCPU reports false: only Linux tells a thread's CPU time here.
func threadCPU() (time.Duration, bool) { return 0, false }
