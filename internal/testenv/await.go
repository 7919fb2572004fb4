package testenv

import (
	"context"
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
	giveUp, _ := giveUpAt(t)
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

// giveUpAt returns when waits give up: awaitMargin before the test
// binary's timeout, if it has one.
func giveUpAt(t testing.TB) (time.Time, bool) {
	if d, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if at, ok := d.Deadline(); ok {
			return at.Add(-awaitMargin), true
		}
	}
	return time.Time{}, false
}

// Context returns the test's context (t.Context) with a deadline where
// [Await] gives up, for calls that wait on a server's work. It has a
// deadline, even without a test binary timeout (a day, then), because
// clients such as jetstream put a short one of their own (5 s) on a
// context that has none, and a loaded machine can miss that.
func Context(t testing.TB) context.Context { return ContextFrom(t, t.Context()) }

// ContextFrom is [Context] derived from parent (a browser tab's, say).
// It ends at the end of the test.
func ContextFrom(t testing.TB, parent context.Context) context.Context {
	at, ok := giveUpAt(t)
	if !ok {
		at = time.Now().Add(24 * time.Hour)
	}
	ctx, cancel := context.WithDeadline(parent, at)
	t.Cleanup(cancel)
	return ctx
}
