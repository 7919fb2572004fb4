package routing

import (
	"testing"

	"github.com/invictus-network/invictus/directory"
)

// TestWordBoxes checks the boxes that bound the distance of a word's
// services (query.distanceBound): every service's first location lies in
// its word's box, and every location of a service with several in its
// word's multiBox. A tenth of the generated services have a second office,
// often in another city, so that nearly every word has one; the box of the
// first locations must still be small for most words (services are
// numbered by place): with the second offices in it, 5 of the 282 words
// of this directory had a box under a degree a side, and the bound of a
// word skipped almost nothing.
func TestWordBoxes(t *testing.T) {
	t.Parallel()
	snap := directory.NewIndex(directory.Generate(20000, 1), 1)
	tb := buildTable(snap, nil)
	in := func(b *wordBox, lat, lon float32) bool {
		return b.located && lat >= b.lat0 && lat <= b.lat1 && lon >= b.lon0 && lon <= b.lon1
	}
	var words, multi, small int
	for ci, c := range tb.chunks {
		for j, s := range c.svc {
			if s == nil || len(s.Locations) == 0 {
				continue
			}
			b, mb := &c.m.box[j>>6], &c.m.multiBox[j>>6]
			l := s.Locations[0]
			if !in(b, float32(l.Lat), float32(l.Lon)) {
				t.Fatalf("service %d (%s): its first location is outside its word's box %+v", ci<<chunkBits|j, s.ID, *b)
			}
			if len(s.Locations) > 1 {
				for _, l := range s.Locations {
					if !in(mb, float32(l.Lat), float32(l.Lon)) {
						t.Fatalf("service %d (%s): a location is outside its word's box of several %+v", ci<<chunkBits|j, s.ID, *mb)
					}
				}
			}
		}
		for cw := range chunkWords {
			b := &c.m.box[cw]
			if !b.located || c.m.remote[cw] != 0 {
				continue
			}
			words++
			if c.m.multiLoc[cw] != 0 {
				multi++
			}
			if b.lat1-b.lat0 < 1 && b.lon1-b.lon0 < 1 {
				small++
			}
		}
	}
	if words == 0 || multi < words/2 {
		t.Fatalf("%d of %d words have a service with several locations: the test proves little", multi, words)
	}
	if small < words*1/2 {
		t.Fatalf("%d of %d words have a box of first locations under a degree a side", small, words)
	}
	t.Logf("%d words, %d with a service with several locations, %d with a box under a degree a side", words, multi, small)
}
