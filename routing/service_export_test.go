package routing

import (
	"fmt"

	"github.com/invictus-network/invictus/events"
)

// NewUnboundedMatcher returns a matcher that scores every eligible
// candidate: without the distance bounds of words that skip those that
// cannot enter a ranking. Its plans must equal NewMatcher's.
func NewUnboundedMatcher(cfg Config) *Matcher {
	m := NewMatcher(cfg)
	m.unbounded = true
	return m
}

// Pruned returns the number of candidates m has skipped on bitsets
// (ranker.prune) in all its matches so far.
func Pruned(m *Matcher) int64 { return m.pruned.Load() }

// OwnEvent exposes ownEvent to the external tests.
var OwnEvent = ownEvent

// PadNumbering numbers pad made-up codes before every need, crime, flag,
// age band, gender, channel and accessibility need of the taxonomy, so that the real codes have numbers from pad on,
// for the tables built until restore is called. Tests calling it must not
// run in parallel.
func PadNumbering(pad int) (restore func()) {
	padded := func(codes []string) []string {
		out := make([]string, 0, pad+len(codes))
		for i := range pad {
			out = append(out, fmt.Sprintf("x.pad.%d", i))
		}
		return append(out, codes...)
	}
	old := codeNumbering
	codeNumbering = newNumbering(padded(events.Needs), padded(events.Crimes), padded(events.Flags), padded(events.AgeBands), padded(events.Genders), padded(events.Channels), padded(events.Accessibility))
	return func() { codeNumbering = old }
}
