package routing

import (
	"math"
	"math/bits"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/invictus-network/invictus/directory"
	"github.com/invictus-network/invictus/events"
)

// The feature table.
//
// Matching a profile in a dense city reads thousands of candidates, so
// each must cost a few nanoseconds: the matcher keeps, for every service of
// a directory snapshot, its codes as bit masks (channels, accessibility,
// languages; needs, crimes, flags, eligibility, channels and
// accessibility, lists of any length,
// only as the bitsets below), its first location and
// its opening hours as minute-of-week ranges. The table is derived from an
// index snapshot the first time the snapshot is matched and shared by all
// later matches; a snapshot derived from another with [directory.Index.With]
// reuses every chunk of 1024 services whose service values did not change
// (services are immutable values: an unchanged pointer is an unchanged
// service).
//
// Each chunk also holds the same codes transposed, as bitsets over its
// services (masks): Match checks the hard constraints that depend on codes
// alone on words of 64 candidates of the index's candidate bitset, and in
// the common case computes the score but for the distance from the words
// too, so that it reads a service's features only to measure the distance
// of those that may enter a ranking.

const (
	chunkBits = 10
	chunkLen  = 1 << chunkBits
	chunkMask = chunkLen - 1
	// tablesKept is how many snapshots' tables a Matcher keeps, so that
	// matches against the current and the previous snapshot do not rebuild
	// each other's table.
	tablesKept = 2
	// maxDenseLangs is the number of languages with a bit in a service's
	// language mask; services speaking rarer languages are checked slowly.
	maxDenseLangs = 64
	// maxDenseCountries is the number of countries with a bit in a
	// service's country mask.
	maxDenseCountries = 32
)

// Bits of features.bits.
const (
	fPresent     = 1 << iota // a service has this number
	fActive                  // status active
	fFull                    // capacity full
	fWaitlist                // capacity waitlist
	fAlways                  // open 24/7
	fRemote                  // area remote
	fInterp                  // interpreter available
	fLangSlow                // speaks a language without a dense id
	fCountrySlow             // serves a country without a dense id
	fLocSlow                 // locations not in the chunk: read the service
	fHasLoc                  // has a location
	fMultiLoc                // has more than one location
)

// features are the codes of one service as bit masks: what the hot loop
// of a match reads for every candidate, in 24 bytes. The rest is in cold;
// its needs, crimes and flags are only in the chunk's bitsets (masks).
type features struct {
	langs    uint64  // bit per dense language id
	lat, lon float32 // first location
	bits     uint16
}

// cold are the features read only for some profiles: accessibility needs,
// emergencies, cross-border cases, observed statistics.
type cold struct {
	countries uint32 // bit per dense country id of Area.Countries
	hOff      uint16 // offset of the opening ranges in chunk.hours
	locOff    uint16 // offset of the locations after the first in chunk.locs
	maxOpen   uint16 // Capacity.MaxOpen, capped
	zone      uint8  // 1 + the table's zone id; 0 = see Schedule.OpenAt
	hN        uint8  // number of opening ranges
	nLoc      uint8  // number of locations, capped at 255
}

// weekRange is an opening interval in minutes since Monday 00:00, local
// time: [lo, hi).
type weekRange struct{ lo, hi int16 }

// place is a location after the first of a service.
type place struct {
	lat, lon float32
	key      placeKey
}

// chunk holds the features of chunkLen consecutive service numbers.
type chunk struct {
	f     [chunkLen]features
	x     [chunkLen]cold
	svc   [chunkLen]*directory.Service
	hours []weekRange
	locs  []place
	// pos is the first location of each service (features.lat, lon),
	// eight to a cache line, for the distances of Match.
	pos [chunkLen][2]float32
	// key is the land and country of each service's first location, for
	// the crossing factors of the distance.
	key [chunkLen]placeKey
	// m holds the features as bitsets over the chunk's service numbers,
	// for the constraints Match checks a word (64 services) at a time.
	m masks
	// open are the services open in each week's interval, by time zone,
	// for emergencies (openTable).
	open []openTable
}

// openTable tells, for the services of a chunk in one time zone (not open
// 24/7), which are open in each interval of the week between the
// boundaries of their opening ranges: the open-now constraint of an
// emergency, a word at a time.
type openTable struct {
	zone uint8 // cold.zone: 1 + the table's zone id
	// at are the boundaries, ascending, at[0] = 0: interval i is
	// [at[i], at[i+1]) in minutes since Monday 00:00, local time.
	at []int16
	// open[i] are the services open in interval i.
	open [][chunkWords]uint64
}

// deriveOpen fills ch.open and ch.m.openSlow from the services' opening
// ranges, as query.openNow reads them.
func (ch *chunk) deriveOpen() {
	ch.open = nil
	for j := range ch.f {
		f, x := &ch.f[j], &ch.x[j]
		if f.bits&fPresent == 0 || f.bits&fAlways != 0 {
			continue
		}
		if x.zone == 0 {
			ch.m.openSlow[j>>6] |= 1 << (j & 63)
			continue
		}
		if !slices.ContainsFunc(ch.open, func(o openTable) bool { return o.zone == x.zone }) {
			ch.open = append(ch.open, openTable{zone: x.zone, at: []int16{0}})
		}
	}
	for k := range ch.open {
		o := &ch.open[k]
		for j := range ch.f {
			f, x := &ch.f[j], &ch.x[j]
			if f.bits&fPresent == 0 || f.bits&fAlways != 0 || x.zone != o.zone {
				continue
			}
			for _, r := range ch.hours[x.hOff : x.hOff+uint16(x.hN)] {
				o.at = append(o.at, r.lo, r.hi)
			}
		}
		slices.Sort(o.at)
		o.at = slices.Compact(o.at)
		o.open = make([][chunkWords]uint64, len(o.at))
		for j := range ch.f {
			f, x := &ch.f[j], &ch.x[j]
			if f.bits&fPresent == 0 || f.bits&fAlways != 0 || x.zone != o.zone {
				continue
			}
			for _, r := range ch.hours[x.hOff : x.hOff+uint16(x.hN)] {
				lo, _ := slices.BinarySearch(o.at, r.lo)
				for i := lo; i < len(o.at) && o.at[i] < r.hi; i++ {
					o.open[i][j>>6] |= 1 << (j & 63)
				}
			}
		}
	}
}

// openAt returns the services of word cw open at q.now (24/7 or by the
// open tables), but for those of openSlow, which it does not judge.
func (ch *chunk) openAt(cw int, q *query) uint64 {
	m := ch.m.always[cw]
	for k := range ch.open {
		o := &ch.open[k]
		mow := q.minuteOfWeek(o.zone - 1)
		i, found := slices.BinarySearch(o.at, mow)
		if !found {
			i--
		}
		if i >= 0 {
			m |= o.open[i][cw]
		}
	}
	return m
}

// chunkWords is the number of bitset words of a chunk.
const chunkWords = chunkLen / 64

// masks are bitsets of a chunk's services: bit j%64 of word j/64 for the
// service at position j.
type masks struct {
	present, active, full, interp, langSlow [chunkWords]uint64
	waitlist, specialist                    [chunkWords]uint64 // capacity waitlist; crimes listed
	// always are open 24/7 (fAlways); countrySlow serve a country
	// without a dense id (fCountrySlow), and country[id] the country of
	// dense id id (cold.countries): an emergency's bonus and a
	// cross-border case's countries, read a word at a time.
	always, countrySlow [chunkWords]uint64
	country             [maxDenseCountries][chunkWords]uint64
	// openSlow are judged by Schedule.OpenAt (cold.zone 0), one by one.
	openSlow                 [chunkWords]uint64
	hasLoc, multiLoc, remote [chunkWords]uint64 // fHasLoc, fMultiLoc, fRemote
	// crimes, flags and needs are indexed by the code's number in the
	// table's numbering, as many as the taxonomy has.
	crimes, flags, needs [][chunkWords]uint64
	// ages and genders are indexed by number: eligible for the age band,
	// gender (restricted to it, or unrestricted).
	ages, genders     [][chunkWords]uint64
	anyAge, anyGender [chunkWords]uint64   // without an age band, gender restriction
	channels          [][chunkWords]uint64 // by channel number
	// acc, accAny and acc0 are indexed by accessibility number: met by
	// the service itself, at one of its locations, at its first.
	acc, accAny, acc0 [][chunkWords]uint64
	langs             [maxDenseLangs][chunkWords]uint64
	// box bounds the first locations of each word's services, and
	// multiBox every location of those with several (multiLoc), for the
	// distance bound of a word (query.distanceBound): a tenth of the
	// services have a second office, often in another city, and a box of
	// all locations would span the country for nearly every word.
	box, multiBox [chunkWords]wordBox
}

// wordBox bounds the locations of the services of a word of a chunk: the
// float32 latitudes and longitudes the distance reads (the first
// location, c.locs, or the service's own for fLocSlow).
type wordBox struct {
	lat0, lat1, lon0, lon1 float32
	// located: some service has a location (the box is set); near: some
	// service has none or is remote, and may score DistanceNoLocation;
	// unbounded: a coordinate is not a finite number.
	located, near, unbounded bool
}

// add extends the box by a location.
func (b *wordBox) add(lat, lon float32) {
	if lat != lat || lon != lon || math.IsInf(float64(lat), 0) || math.IsInf(float64(lon), 0) {
		b.unbounded = true
		return
	}
	if !b.located {
		b.lat0, b.lat1, b.lon0, b.lon1, b.located = lat, lat, lon, lon, true
		return
	}
	b.lat0, b.lat1 = min(b.lat0, lat), max(b.lat1, lat)
	b.lon0, b.lon1 = min(b.lon0, lon), max(b.lon1, lon)
}

// bound adds the service at j to the boxes of its word: its first
// location to b, and every location of a service with several to multi.
func (ch *chunk) bound(b, multi *wordBox, j int) {
	f := &ch.f[j]
	if f.bits&fHasLoc == 0 || f.bits&fRemote != 0 {
		b.near = true
	}
	if f.bits&fHasLoc == 0 {
		return
	}
	b.add(f.lat, f.lon)
	if f.bits&fMultiLoc == 0 {
		return
	}
	b = multi
	if f.bits&fRemote != 0 {
		b.near = true
	}
	b.add(f.lat, f.lon)
	if f.bits&fLocSlow != 0 {
		for _, l := range ch.svc[j].Locations[1:] {
			b.add(float32(l.Lat), float32(l.Lon))
		}
		return
	}
	x := &ch.x[j]
	for _, l := range ch.locs[x.locOff : x.locOff+uint16(x.nLoc)-1] {
		b.add(l.lat, l.lon)
	}
}

// derive fills ch.m from ch.f and, for the codes of the lists of any
// length, from the services by the numbering num.
func (ch *chunk) derive(num *numbering) {
	m := &ch.m
	*m = masks{
		crimes:   make([][chunkWords]uint64, len(num.crime)),
		flags:    make([][chunkWords]uint64, len(num.flag)),
		needs:    make([][chunkWords]uint64, len(num.need)),
		ages:     make([][chunkWords]uint64, len(num.age)),
		genders:  make([][chunkWords]uint64, len(num.gender)),
		channels: make([][chunkWords]uint64, len(num.channel)),
		acc:      make([][chunkWords]uint64, len(num.acc)),
		accAny:   make([][chunkWords]uint64, len(num.acc)),
		acc0:     make([][chunkWords]uint64, len(num.acc)),
	}
	for j := range ch.f {
		f := &ch.f[j]
		if f.bits&fPresent == 0 {
			continue
		}
		w, bit := j>>6, uint64(1)<<(j&63)
		m.present[w] |= bit
		ch.pos[j] = [2]float32{f.lat, f.lon}
		ch.bound(&m.box[w], &m.multiBox[w], j)
		if f.bits&fHasLoc != 0 {
			m.hasLoc[w] |= bit
		}
		if f.bits&fMultiLoc != 0 {
			m.multiLoc[w] |= bit
		}
		if f.bits&fRemote != 0 {
			m.remote[w] |= bit
		}
		if f.bits&fActive != 0 {
			m.active[w] |= bit
		}
		if f.bits&fFull != 0 {
			m.full[w] |= bit
		}
		if f.bits&fInterp != 0 {
			m.interp[w] |= bit
		}
		if f.bits&fLangSlow != 0 {
			m.langSlow[w] |= bit
		}
		if f.bits&fWaitlist != 0 {
			m.waitlist[w] |= bit
		}
		if f.bits&fAlways != 0 {
			m.always[w] |= bit
		}
		if f.bits&fCountrySlow != 0 {
			m.countrySlow[w] |= bit
		}
		for b := ch.x[j].countries; b != 0; b &= b - 1 {
			m.country[bits.TrailingZeros32(b)][w] |= bit
		}
		s := ch.svc[j]
		for _, c := range s.Crimes {
			if k, ok := num.crime[c]; ok {
				m.crimes[k][w] |= bit
				m.specialist[w] |= bit
			}
		}
		for _, c := range s.Flags {
			if k, ok := num.flag[c]; ok {
				m.flags[k][w] |= bit
			}
		}
		for _, c := range s.Needs {
			if k, ok := num.need[c]; ok {
				m.needs[k][w] |= bit
			}
		}
		eligible(m.ages, &m.anyAge, s.Eligibility.AgeBands, num.age, w, bit)
		eligible(m.genders, &m.anyGender, s.Eligibility.Genders, num.gender, w, bit)
		for _, c := range s.Channels {
			if k, ok := num.channel[c]; ok {
				m.channels[k][w] |= bit
			}
		}
		set(m.acc, s.Accessibility, num.acc, w, bit)
		for k, l := range s.Locations {
			set(m.accAny, l.Accessibility, num.acc, w, bit)
			if k == 0 {
				set(m.acc0, l.Accessibility, num.acc, w, bit)
			}
		}
		for b := f.langs; b != 0; b &= b - 1 {
			m.langs[bits.TrailingZeros64(b)][w] |= bit
		}
	}
}

// set sets the service's bit (bit of word w) in the bitsets by of its
// codes.
func set(by [][chunkWords]uint64, codes []string, num map[string]int, w int, bit uint64) {
	for _, c := range codes {
		if k, ok := num[c]; ok {
			by[k][w] |= bit
		}
	}
}

// eligible sets the service's bit (bit of word w) in the bitsets by of the
// codes it is restricted to, or in all of them and in anyOf when it lists
// none the numbering num knows.
func eligible(by [][chunkWords]uint64, anyOf *[chunkWords]uint64, codes []string, num map[string]int, w int, bit uint64) {
	restricted := false
	for _, c := range codes {
		if k, ok := num[c]; ok {
			by[k][w] |= bit
			restricted = true
		}
	}
	if !restricted {
		anyOf[w] |= bit
		for k := range by {
			by[k][w] |= bit
		}
	}
}

// table is the feature table of one index snapshot. It is immutable once
// published.
type table struct {
	idx       *directory.Index
	num       *numbering // of needs, crimes and flags
	chunks    []*chunk
	langs     map[string]uint8 // dense language ids
	countries map[string]uint8 // dense country ids
	zoneID    map[string]uint8 // time zone name -> id
	zones     []*time.Location // by id

	orgsOnce sync.Once
	orgs     map[string][]int32 // organisation -> its service numbers, ascending

	// order are the service numbers sorted by name, then id; rank[i] is
	// the place of service i in order. Exact ties of the ranking key are
	// settled by rank (query.better): two ints, not two names.
	order, rank []int32
}

// organisationServices returns the numbers of the organisation's
// services, ascending; the map is built on first use.
func (t *table) organisationServices(org string) []int32 {
	t.orgsOnce.Do(func() {
		t.orgs = make(map[string][]int32)
		for ci, ch := range t.chunks {
			for j, s := range ch.svc {
				if s != nil {
					t.orgs[s.Organisation] = append(t.orgs[s.Organisation], int32(ci<<chunkBits|j))
				}
			}
		}
	})
	return t.orgs[org]
}

func (t *table) at(i int32) (*features, *chunk) {
	c := t.chunks[i>>chunkBits]
	return &c.f[i&chunkMask], c
}

// tableCache holds the tables of the last snapshots matched.
type tableCache struct {
	mu   sync.Mutex // serialises builds
	last atomic.Pointer[[]*table]
}

// get returns the table of snap, building it (from the most recent table
// when possible) on first use.
func (c *tableCache) get(snap *directory.Index) *table {
	if ts := c.last.Load(); ts != nil {
		for _, t := range *ts {
			if t.idx == snap {
				return t
			}
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var prev []*table
	if ts := c.last.Load(); ts != nil {
		prev = *ts
		for _, t := range prev {
			if t.idx == snap {
				return t
			}
		}
	}
	var base *table
	if len(prev) > 0 {
		base = prev[0]
	}
	t := buildTable(snap, base)
	next := append([]*table{t}, prev[:min(len(prev), tablesKept-1)]...)
	c.last.Store(&next)
	return t
}

// buildTable derives the table of snap, sharing the chunks of base whose
// services are unchanged.
func buildTable(snap *directory.Index, base *table) *table {
	n := snap.Len()
	t := &table{idx: snap, num: codeNumbering, chunks: make([]*chunk, (n+chunkMask)>>chunkBits)}
	if base != nil && base.num != t.num {
		base = nil // its bitsets are in another numbering
	}
	if base != nil {
		// Shared until the first addition (see own).
		t.langs, t.countries, t.zoneID, t.zones = base.langs, base.countries, base.zoneID, base.zones
	}
	ownMaps := false
	own := func() {
		if !ownMaps {
			t.langs = cloneMap(t.langs)
			t.countries = cloneMap(t.countries)
			t.zoneID = cloneMap(t.zoneID)
			t.zones = slices.Clone(t.zones)
			ownMaps = true
		}
	}
	for ci := range t.chunks {
		lo := ci << chunkBits
		hi := min(lo+chunkLen, n)
		var old *chunk
		if base != nil && ci < len(base.chunks) {
			old = base.chunks[ci]
		}
		if old != nil && sameChunk(old, snap, lo, hi) {
			t.chunks[ci] = old
			continue
		}
		ch := &chunk{}
		for i := lo; i < hi; i++ {
			j := i - lo
			s := snap.Service(int32(i))
			if s == nil {
				continue
			}
			ch.svc[j] = s
			if old != nil && old.svc[j] == s && old.f[j].bits&fLocSlow == 0 {
				ox := &old.x[j]
				x := *ox
				x.hOff = uint16(len(ch.hours))
				ch.hours = append(ch.hours, old.hours[ox.hOff:ox.hOff+uint16(ox.hN)]...)
				if x.nLoc > 1 {
					x.locOff = uint16(len(ch.locs))
					ch.locs = append(ch.locs, old.locs[ox.locOff:ox.locOff+uint16(x.nLoc)-1]...)
				}
				ch.f[j], ch.x[j], ch.key[j] = old.f[j], x, old.key[j]
				continue
			}
			t.compute(ch, j, s, own)
		}
		ch.derive(t.num)
		ch.deriveOpen()
		t.chunks[ci] = ch
	}
	if t.langs == nil {
		own()
	}
	t.rankNames(snap, base)
	return t
}

// rankNames fills t.order and t.rank. With a base table, the services of
// the chunks it shares keep their order, and only those of the other
// chunks are sorted and merged in, so that a snapshot with a few changes
// does not sort every name again.
func (t *table) rankNames(snap *directory.Index, base *table) {
	n := snap.Len()
	var kept []int32
	var added []named
	if base == nil || base.order == nil {
		added = make([]named, 0, n)
		for i := range int32(n) {
			if s := snap.Service(i); s != nil {
				added = append(added, named{s.Name, s.ID, i})
			}
		}
	} else {
		// The services of a changed chunk are sorted again, the others
		// keep their order.
		changed := func(ci int) bool {
			return ci >= len(t.chunks) || ci >= len(base.chunks) || t.chunks[ci] != base.chunks[ci]
		}
		kept = make([]int32, 0, len(base.order))
		for _, o := range base.order {
			if !changed(int(o >> chunkBits)) {
				kept = append(kept, o)
			}
		}
		for ci, ch := range t.chunks {
			if !changed(ci) {
				continue
			}
			for j, s := range ch.svc {
				if s != nil {
					added = append(added, named{s.Name, s.ID, int32(ci<<chunkBits | j)})
				}
			}
		}
	}
	// Sorted as copies of the names, not through the services: a sort
	// of 100,000 reads them about 1.7 million times.
	slices.SortFunc(added, compareNamed)
	t.order = make([]int32, 0, len(kept)+len(added))
	for _, a := range added {
		// The kept services before a, found by binary search: a few
		// changes cost a few searches, not a comparison per service.
		k, _ := slices.BinarySearchFunc(kept, a, func(o int32, a named) int {
			s := snap.Service(o)
			return compareNamed(named{s.Name, s.ID, o}, a)
		})
		t.order = append(append(t.order, kept[:k]...), a.i)
		kept = kept[k:]
	}
	t.order = append(t.order, kept...)
	t.rank = make([]int32, n)
	for k, i := range t.order {
		t.rank[i] = int32(k)
	}
}

// named is a service's name and id, for table.rankNames.
type named struct {
	name, id string
	i        int32
}

func compareNamed(a, b named) int {
	if c := strings.Compare(a.name, b.name); c != 0 {
		return c
	}
	return strings.Compare(a.id, b.id)
}

// sameChunk reports whether old holds exactly the services lo..hi-1 of snap.
func sameChunk(old *chunk, snap *directory.Index, lo, hi int) bool {
	for i := lo; i < hi; i++ {
		if old.svc[i-lo] != snap.Service(int32(i)) {
			return false
		}
	}
	for j := hi - lo; j < chunkLen; j++ {
		if old.svc[j] != nil {
			return false
		}
	}
	return true
}

// compute fills the features of service s at position j of ch. own is
// called before the table's maps are changed.
func (t *table) compute(ch *chunk, j int, s *directory.Service, own func()) {
	ch.svc[j] = s
	f, x := &ch.f[j], &ch.x[j]
	*f = features{bits: fPresent}
	*x = cold{hOff: uint16(len(ch.hours))}
	if s.Active() {
		f.bits |= fActive
	}
	switch s.Capacity.Status {
	case events.CapacityFull:
		f.bits |= fFull
	case events.CapacityWaitlist:
		f.bits |= fWaitlist
	}
	if s.Hours.Always {
		f.bits |= fAlways
	}
	if s.Area.Remote {
		f.bits |= fRemote
	}
	if s.InterpreterAvailable {
		f.bits |= fInterp
	}
	x.maxOpen = uint16(min(max(s.Capacity.MaxOpen, 0), math.MaxUint16))
	for _, l := range s.Languages {
		id, ok := t.langs[l]
		if !ok {
			if len(t.langs) >= maxDenseLangs {
				f.bits |= fLangSlow
				continue
			}
			own()
			id = uint8(len(t.langs))
			t.langs[l] = id
		}
		f.langs |= 1 << id
	}
	for _, cc := range s.Area.Countries {
		id, ok := t.countryID(cc, own)
		if !ok {
			f.bits |= fCountrySlow
			continue
		}
		x.countries |= 1 << id
	}
	x.nLoc = uint8(min(len(s.Locations), 255))
	switch {
	case len(s.Locations) > 1:
		f.bits |= fHasLoc | fMultiLoc
	case len(s.Locations) == 1:
		f.bits |= fHasLoc
	}
	if len(s.Locations) > 255 || len(ch.locs)+len(s.Locations) > math.MaxUint16 {
		f.bits |= fLocSlow
	}
	x.locOff = uint16(len(ch.locs))
	for k, l := range s.Locations {
		t.countryID(l.Country, own)
		switch {
		case k == 0:
			f.lat, f.lon = float32(l.Lat), float32(l.Lon)
			ch.key[j] = t.keyOf(l.Country, l.Region)
		case f.bits&fLocSlow == 0:
			ch.locs = append(ch.locs, place{lat: float32(l.Lat), lon: float32(l.Lon), key: t.keyOf(l.Country, l.Region)})
		}
	}
	if !s.Hours.Always && s.Hours.TimeZone != "" {
		id, ok := t.zoneID[s.Hours.TimeZone]
		if !ok && len(t.zones) < 255 {
			if loc, err := directory.LoadZone(s.Hours.TimeZone); err == nil {
				own()
				id = uint8(len(t.zones))
				t.zoneID[s.Hours.TimeZone] = id
				t.zones = append(t.zones, loc)
				ok = true
			}
		}
		// A schedule the table cannot hold (an unknown zone, more ranges
		// than a chunk has room for) keeps zone 0 and is judged by
		// Schedule.OpenAt.
		if ok && len(ch.hours)+len(s.Hours.Weekly) < math.MaxUint16 {
			x.zone = id + 1
			for _, h := range s.Hours.Weekly {
				d := slices.Index(directory.Days, h.Day)
				o, ok1 := directory.ParseClock(h.Opens)
				c, ok2 := directory.ParseClock(h.Closes)
				if d < 0 || !ok1 || !ok2 || c <= o || x.hN == math.MaxUint8 {
					continue
				}
				ch.hours = append(ch.hours, weekRange{int16(d*1440 + o), int16(d*1440 + c)})
				x.hN++
			}
		}
	}
}

// countryID returns the dense id of a country, giving it one while there
// is room; own is called before the table's maps are changed.
func (t *table) countryID(cc string, own func()) (uint8, bool) {
	id, ok := t.countries[cc]
	if ok || cc == "" {
		return id, ok
	}
	if len(t.countries) >= maxDenseCountries {
		return 0, false
	}
	own()
	id = uint8(len(t.countries))
	t.countries[cc] = id
	return id, true
}

func cloneMap[K comparable, V any](m map[K]V) map[K]V {
	out := make(map[K]V, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	return out
}

// numbering gives each need, crime, flag, age band, gender, channel and
// accessibility code of the taxonomy its number: the index of its bitset in a chunk's masks. These lists may grow
// to any length: a service's codes of them live only in the bitsets, and
// a match numbers the profile's own codes (its covers and classes are
// masks of the profile's needs, see query.needCode).
type numbering struct {
	need, crime, flag, age, gender, channel, acc        map[string]int
	needs, crimes, flags, ages, genders, channels, accs []string // by number
}

func newNumbering(needs, crimes, flags, ages, genders, channels, accs []string) *numbering {
	index := func(codes []string) (map[string]int, []string) {
		m := make(map[string]int, len(codes))
		var names []string
		for _, c := range codes {
			if _, ok := m[c]; !ok {
				m[c] = len(m)
				names = append(names, c)
			}
		}
		return m, names
	}
	n := &numbering{}
	n.need, n.needs = index(needs)
	n.crime, n.crimes = index(crimes)
	n.flag, n.flags = index(flags)
	n.age, n.ages = index(ages)
	n.gender, n.genders = index(genders)
	n.channel, n.channels = index(channels)
	n.acc, n.accs = index(accs)
	return n
}

// codeNumbering is the numbering of the taxonomy; a table keeps the one it
// was built with.
var codeNumbering = newNumbering(events.Needs, events.Crimes, events.Flags, events.AgeBands, events.Genders, events.Channels, events.Accessibility)

// placeAccess are the accessibility needs of a place (a room, a
// building): a service used remotely or at home need not meet them.
var placeAccess = []string{"wheelchair", "step_free", "hearing_loop", "quiet_space", "childcare"}
