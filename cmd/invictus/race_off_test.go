//go:build !race

package main

// raceEnabled reports whether the tests run with the race detector, which
// makes them several times slower.
const raceEnabled = false
