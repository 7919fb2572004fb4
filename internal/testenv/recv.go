package testenv

import "testing"

// Recv waits for a value on ch and returns it (the zero value when ch is
// closed). Like [Await], no clock of its own bounds the wait, only the
// test binary's timeout, shortly before which it fails naming what.
func Recv[T any](t testing.TB, what string, ch <-chan T, explain ...func() string) T {
	t.Helper()
	var v T
	Await(t, what, func() bool {
		select {
		case v = <-ch:
			return true
		default:
			return false
		}
	}, explain...)
	return v
}
