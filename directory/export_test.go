package directory

import (
	"fmt"

	"github.com/invictus-network/invictus/events"
)

// PadNeeds numbers pad made-up need codes before every need of the
// taxonomy, so that the real needs have positions from pad on, for the
// indexes built and queried until restore is called. Tests calling it
// must not run in parallel with other index tests.
func PadNeeds(pad int) (restore func()) {
	oldIndex, oldNum := needIndex, numNeeds
	m := make(map[string]int, pad+len(events.Needs))
	for i := range pad {
		m[fmt.Sprintf("x.pad.%d", i)] = i
	}
	for i, n := range events.Needs {
		m[n] = pad + i
	}
	needIndex, numNeeds = m, pad+len(events.Needs)
	return func() { needIndex, numNeeds = oldIndex, oldNum }
}
