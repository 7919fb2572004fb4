package testenv

import (
	"testing"
	"time"
)

// awaitMargin is how long before the test binary's own timeout (go test
// -timeout) Await gives up, leaving time to print what it waited for and
// to run the test's clean-ups.
const awaitMargin = 30 * time.Second

// Await polls cond until it holds. No clock of its own bounds the wait: a
// loaded 2-core machine running the whole suite may take minutes for what
// takes a second alone, so only the test binary's timeout ends it, shortly
// before that timeout, with a message naming what was awaited (and
// whatever more the optional explain returns). Await returns at once when
// cond already holds.
func Await(t testing.TB, what string, cond func() bool, explain ...func() string) {
	t.Helper()
	var giveUp time.Time
	if d, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if at, ok := d.Deadline(); ok {
			giveUp = at.Add(-awaitMargin)
		}
	}
	pause := time.Millisecond
	for !cond() {
		if !giveUp.IsZero() && time.Now().After(giveUp) {
			msg := "gave up, near the test binary's timeout, waiting for " + what
			for _, e := range explain {
				msg += "\n" + e()
			}
			t.Fatal(msg)
		}
		time.Sleep(pause) // polling a condition, not waiting out a clock
		pause = min(2*pause, 50*time.Millisecond)
	}
}
