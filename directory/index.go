package directory

import (
	"cmp"
	"maps"
	"math"
	"math/bits"
	"slices"
	"sync"

	"github.com/invictus-network/invictus/events"
)

// The search index.
//
// An [Index] is an immutable snapshot of the directory at one revision,
// built for the matcher: every query reads posting lists (sorted slices of
// service numbers) and a spatial grid, never the whole directory. Services
// are addressed by a dense int32 number, valid within the snapshot and its
// descendants made by [Index.With] until the next rebuild.
//
// Updates are copy-on-write. [Index.With] gives a new snapshot that shares
// the posting lists of its parent and keeps the changed services in a small
// overlay of "pending" service numbers; queries ignore the base postings of
// pending services and test them one by one with [Query.Matches]. When the
// overlay grows past [IndexRebuildMin] (or Len()/[IndexRebuildRatio],
// whichever is larger), With rebuilds the postings from scratch. A change
// that touches nothing the postings use (a capacity update, a new
// description) replaces the service in place and adds nothing to the
// overlay.

// Rebuild policy of [Index.With].
const (
	// IndexRebuildMin is the overlay size below which With never rebuilds.
	IndexRebuildMin = 256
	// IndexRebuildRatio: With rebuilds when the overlay exceeds
	// Len()/IndexRebuildRatio services (and IndexRebuildMin).
	IndexRebuildRatio = 64
)

// Spatial grid parameters.
const (
	// GridCellDeg is the side of a grid cell in degrees of latitude and
	// longitude.
	GridCellDeg = 0.25
	// GridWideKm: locations of services whose area radius exceeds it are kept
	// in a short list checked on every point query instead of the grids, so
	// that one service with a huge radius does not widen every grid search.
	GridWideKm = 100.0
)

// radiusClasses are the upper bounds of the area radii of the area grids:
// each grid is searched only as far as its own largest radius, so that
// services with a small radius cost nothing for points far from them.
var radiusClasses = [...]float64{12.5, 25, 50, GridWideKm}

// countryBit maps a country code to its bit in a country mask: its
// position in events.Countries; read-only. Unknown codes share bit 63.
var countryBit = func() map[string]uint64 {
	m := make(map[string]uint64, len(events.Countries))
	for i, cc := range events.Countries {
		m[cc] = 1 << uint(i)
	}
	return m
}()

// otherCountry is the mask bit of countries not in events.Countries.
const otherCountry = uint64(1) << 63

func countryMask(ccs []string) uint64 {
	var m uint64
	for _, cc := range ccs {
		if b, ok := countryBit[cc]; ok {
			m |= b
		} else {
			m |= otherCountry
		}
	}
	return m
}

// chunkShift sets the size of the chunks of service pointers (1024), the
// unit a copy-on-write update copies.
const (
	chunkShift = 10
	chunkSize  = 1 << chunkShift
	chunkMask  = chunkSize - 1
)

// needIndex maps a need code to its position in events.Needs; read-only.
var needIndex = func() map[string]int {
	m := make(map[string]int, len(events.Needs))
	for i, n := range events.Needs {
		m[n] = i
	}
	return m
}()

// numNeeds is the number of need codes: the taxonomy may list any number.
var numNeeds = len(events.Needs)

// needFold returns the need codes of codes folded into 64 bits: bit i%64
// for the need at position i of events.Needs. Two lists share a need only
// if their folds intersect; with at most 64 need codes (exactFold) the
// folds are exact and the converse holds too.
func needFold(codes []string) uint64 {
	var m uint64
	for _, c := range codes {
		if i, ok := needIndex[c]; ok {
			m |= 1 << (uint(i) & 63)
		}
	}
	return m
}

// exactFold reports whether needFold is exact: at most 64 need codes.
func exactFold() bool { return numNeeds <= 64 }

// hasKnownNeed reports whether codes holds a need code.
func hasKnownNeed(codes []string) bool {
	for _, c := range codes {
		if _, ok := needIndex[c]; ok {
			return true
		}
	}
	return false
}

// sharesNeed reports whether the lists have a need code in common.
func sharesNeed(a, b []string) bool {
	for _, c := range a {
		if _, ok := needIndex[c]; ok && slices.Contains(b, c) {
			return true
		}
	}
	return false
}

// needIndices appends to dst the distinct positions in events.Needs of
// the need codes in codes.
func needIndices(dst []int, codes []string) []int {
	for _, c := range codes {
		if i, ok := needIndex[c]; ok && !slices.Contains(dst, i) {
			dst = append(dst, i)
		}
	}
	return dst
}

// Query asks for the candidate services of a needs profile. A service is a
// candidate when it is active, offers at least one of Needs, and at least
// one of these holds:
//
//   - its area covers the victim: [Service.Covers] for Country, Region and
//     the point Lat/Lon (a region, the whole country, a radius around one
//     of its locations, or remote service in Country);
//   - it is remote (Area.Remote) in one of RemoteCountries;
//   - RadiusKm > 0 and one of its locations lies within RadiusKm of the
//     point, whatever its area says.
//
// [Query.Matches] is this definition applied to one service;
// [Index.Candidates] returns exactly the services that match, without
// scanning the directory.
type Query struct {
	// Needs are need codes; unknown codes match nothing.
	Needs []string
	// Country is the victim's country, ISO 3166-1 alpha-2 lower case; empty
	// means no area test (only RemoteCountries and RadiusKm apply).
	Country string
	// Region is the victim's NUTS region, the most specific known (e.g.
	// PT11A). It is ignored unless it lies in Country.
	Region string
	// Lat and Lon are the victim's point, both or neither.
	Lat, Lon *float64
	// RadiusKm widens the search to every location within this distance of
	// the point; 0 keeps to the services' own areas.
	RadiusKm float64
	// RemoteCountries are countries where remote services are wanted too,
	// e.g. the residence country of a cross-border case.
	RemoteCountries []string
}

// region returns the query's region if it lies in its country, else "".
func (q *Query) region() string {
	if q.Region == "" || q.Country == "" {
		return ""
	}
	if cc := nutsPrefix(q.Country); len(q.Region) < 2 || q.Region[0] != cc[0] || q.Region[1] != cc[1] {
		return ""
	}
	return q.Region
}

// nutsPrefix is events.NUTSCountry for two-letter codes, without
// allocating: the upper-cased code, with EL for gr and UK for gb.
func nutsPrefix(cc string) [2]byte {
	switch cc {
	case "gr":
		return [2]byte{'E', 'L'}
	case "gb":
		return [2]byte{'U', 'K'}
	}
	var b [2]byte
	for i := 0; i < 2 && i < len(cc); i++ {
		c := cc[i]
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		b[i] = c
	}
	return b
}

// point returns the query's point and whether it has one.
func (q *Query) point() (lat, lon float64, ok bool) {
	if q.Lat == nil || q.Lon == nil {
		return 0, 0, false
	}
	return *q.Lat, *q.Lon, true
}

// Matches reports whether s is a candidate for q (see [Query]). It is the
// reference definition that [Index.Candidates] implements with postings.
func (q *Query) Matches(s *Service) bool {
	if s == nil || !s.Active() || !sharesNeed(s.Needs, q.Needs) {
		return false
	}
	lat, lon, hasPoint := q.point()
	if q.Country != "" && s.Covers(q.Country, q.region(), lat, lon, hasPoint) {
		return true
	}
	if s.Area.Remote {
		for _, cc := range q.RemoteCountries {
			if slices.Contains(s.Area.Countries, cc) {
				return true
			}
		}
	}
	if hasPoint && q.RadiusKm > 0 {
		for _, l := range s.Locations {
			if DistanceKm(lat, lon, l.Lat, l.Lon) <= q.RadiusKm {
				return true
			}
		}
	}
	return false
}

// spEntry is one service location in a spatial grid. Distances are first
// compared as chords between points on the unit sphere (a few
// multiplications); only a location within rounding error of the limit is
// measured again with DistanceKm, so results equal [Service.Covers]'s.
type spEntry struct {
	x, y, z   float32 // the location on the unit sphere
	chord     float32 // unit-sphere chord of the area radius (area grids)
	countries uint64  // mask of the service's Area.Countries
	svc       int32
	needs     uint64 // the service's needs, folded (needFold)
	loc       int32  // index in the service's Locations
}

// unitVector returns the point on the unit sphere at lat, lon.
func unitVector(lat, lon float64) (x, y, z float64) {
	const rad = math.Pi / 180
	sinLat, cosLat := math.Sincos(lat * rad)
	sinLon, cosLon := math.Sincos(lon * rad)
	return cosLat * cosLon, cosLat * sinLon, sinLat
}

// chordOf returns the unit-sphere chord of a great-circle distance in km.
func chordOf(km float64) float64 { return 2 * math.Sin(min(km/earthRadiusKm, math.Pi)/2) }

// probe is a query point prepared for chord comparisons.
type probe struct {
	lat, lon, x, y, z float64
}

func newProbe(lat, lon float64) probe {
	x, y, z := unitVector(lat, lon)
	return probe{lat, lon, x, y, z}
}

// Results of probe.compare.
const (
	outside = iota
	inside
	boundary // too close to call: measure with DistanceKm
)

// compare tells whether e's location lies within the distance whose
// unit-sphere chord is chord, or is too close to the limit to tell.
func (p *probe) compare(e *spEntry, chord float64) int {
	dx, dy, dz := p.x-float64(e.x), p.y-float64(e.y), p.z-float64(e.z)
	c2 := dx*dx + dy*dy + dz*dz
	t := chord * chord
	// Rounding the coordinates and the chord to float32 moves a squared
	// chord by less than 2.5e-7 times the chord; the margin covers it
	// with room to spare.
	m := 6e-7*chord + 1e-12
	switch {
	case c2 <= t-m:
		return inside
	case c2 > t+m:
		return outside
	}
	return boundary
}

// exactly reports whether DistanceKm from the probe to e's location is at
// most km, as Service.Covers computes it.
func (p *probe) exactly(e *spEntry, km float64, svcs []*Service) bool {
	l := &svcs[e.svc].Locations[e.loc]
	return DistanceKm(p.lat, p.lon, l.Lat, l.Lon) <= km
}

// grid is a spatial index of locations in cells of GridCellDeg.
type grid struct {
	cells     map[uint64][]spEntry
	maxRadius float64 // the largest area radius of its entries
}

func (g *grid) add(e spEntry, lat, lon float64) {
	if g.cells == nil {
		g.cells = make(map[uint64][]spEntry)
	}
	k := cellKey(cellOf(lat), cellOf(lon))
	g.cells[k] = append(g.cells[k], e)
}

// scan calls test with the entries of every cell that may hold a location
// within km of the point (a cell at a time, so that the test of an entry
// is a loop, not a call).
func (g *grid) scan(lat, lon, km float64, test func([]spEntry)) {
	if len(g.cells) == 0 || !(km > 0) {
		return
	}
	// The cells of the cap of angular radius delta around the point: its
	// latitudes, and (unless it holds a pole) its longitudes, whose largest
	// deviation is asin(sin delta / cos lat). Margins absorb rounding.
	const deg = 180 / math.Pi
	delta := km / earthRadiusKm
	dLat := delta*deg*(1+1e-9) + 1e-9
	la0, la1 := cellOf(max(lat-dLat, -90)), cellOf(min(lat+dLat, 90))
	allLon := math.Abs(lat)+dLat >= 89.999 || delta >= math.Pi/2
	var lo0, lo1 int32
	if !allLon {
		dLon := math.Asin(min(1, math.Sin(delta)/math.Cos(lat/deg)))*deg*(1+1e-9) + 1e-9
		if lon-dLon < -180 || lon+dLon > 180 {
			allLon = true
		} else {
			lo0, lo1 = cellOf(lon-dLon), cellOf(lon+dLon)
		}
	}
	if allLon || int64(la1-la0+1)*int64(lo1-lo0+1) > int64(len(g.cells)) {
		// Fewer occupied cells than cells in range: walk the occupied ones.
		for key, es := range g.cells {
			if la := int32(uint32(key >> 32)); la < la0 || la > la1 {
				continue
			}
			test(es)
		}
		return
	}
	for la := la0; la <= la1; la++ {
		for lo := lo0; lo <= lo1; lo++ {
			if es := g.cells[cellKey(la, lo)]; len(es) > 0 {
				test(es)
			}
		}
	}
}

// postings is the immutable part of an index, built once by build and
// shared by every snapshot derived from it with With.
type postings struct {
	n    int32      // services numbered 0..n-1 at build time
	svcs []*Service // the services at build time, by number; never modified
	ids  map[string]int32
	orgs map[string]*Organisation

	needs    [][]int32        // [need] -> services
	regionID map[string]int32 // NUTS code (level 0..3) -> dense id
	regions  [][]wordList     // [need][region id] -> services
	country  map[string]int32 // country code -> dense id
	remote   [][]wordList     // [need][country id] -> remote services
	langs    map[string][]int32
	channels map[string][]int32

	// areas hold the locations of services with an area radius, by
	// radius class; wide those with a radius above GridWideKm; all every
	// location, for queries with a radius of their own.
	areas [len(radiusClasses)]grid
	wide  []spEntry
	all   grid

	bitsets sync.Pool // *[]uint64 scratch sets for Candidates
}

// Index is an immutable snapshot of the directory's search index at one
// revision. It is safe for concurrent use; every method is read-only.
type Index struct {
	rev    uint64
	n      int32
	chunks [][]*Service
	p      *postings

	// pending are the service numbers (sorted) whose base postings are out
	// of date: changed, deleted or added since the postings were built.
	pending []int32
	// ids maps services added or deleted since the build: number, or -1.
	ids map[string]int32
	// orgs holds organisations changed since the build; nil means deleted.
	orgs map[string]*Organisation
}

// NewIndex builds the index of d at the given revision. Services are
// numbered by place (see [PlaceOrder]), so that neighbours have near
// numbers. The index keeps pointers into d's
// slices: d must not be modified afterwards. When an id appears twice the
// first wins. Inactive services are numbered (Service and Lookup find
// them) but are never candidates.
func NewIndex(d *Directory, revision uint64) *Index {
	var svcs []*Service
	var orgs []*Organisation
	if d != nil {
		svcs = make([]*Service, 0, len(d.Services))
		for i := range d.Services {
			svcs = append(svcs, &d.Services[i])
		}
		orgs = make([]*Organisation, 0, len(d.Organisations))
		for i := range d.Organisations {
			orgs = append(orgs, &d.Organisations[i])
		}
	}
	return build(svcs, orgs, revision)
}

// build numbers svcs by place (dropping later duplicates of an id, and
// nils) and builds the postings.
func build(svcs []*Service, orgList []*Organisation, revision uint64) *Index {
	svcs = slices.DeleteFunc(svcs, func(s *Service) bool { return s == nil })
	slices.SortStableFunc(svcs, func(a, b *Service) int { return cmp.Compare(a.ID, b.ID) })
	svcs = slices.CompactFunc(svcs, func(a, b *Service) bool { return a.ID == b.ID })
	svcs = PlaceOrder(svcs)

	p := &postings{
		n:        int32(len(svcs)),
		svcs:     svcs,
		ids:      make(map[string]int32, len(svcs)),
		orgs:     make(map[string]*Organisation, len(orgList)),
		needs:    make([][]int32, numNeeds),
		regionID: make(map[string]int32),
		regions:  make([][]wordList, numNeeds),
		country:  make(map[string]int32),
		remote:   make([][]wordList, numNeeds),
		langs:    make(map[string][]int32),
		channels: make(map[string][]int32),
	}
	for _, o := range orgList {
		if o == nil {
			continue
		}
		if _, dup := p.orgs[o.ID]; !dup {
			p.orgs[o.ID] = o
		}
	}
	unlisted := func(s *Service) bool { o := p.orgs[s.Organisation]; return o != nil && o.Pending }

	// First pass: sizes, so that posting lists are allocated once.
	needCount := make([]int, numNeeds)
	for _, s := range svcs {
		if !s.Active() || unlisted(s) {
			continue
		}
		for _, c := range s.Needs {
			if ni, ok := needIndex[c]; ok {
				needCount[ni]++
			}
		}
	}
	for ni := range p.needs {
		p.needs[ni] = make([]int32, 0, needCount[ni])
	}

	regionIDs := make([]int32, 0, 8)
	countryIDs := make([]int32, 0, 4)
	nis := make([]int, 0, 8)
	for i32, s := range svcs {
		i := int32(i32)
		p.ids[s.ID] = i
		if !s.Active() || unlisted(s) {
			continue
		}
		nis = needIndices(nis[:0], s.Needs)
		if len(nis) == 0 {
			continue
		}
		fold := needFold(s.Needs)
		// Regions of the area that lie in one of its countries, as Covers
		// requires.
		regionIDs = regionIDs[:0]
		for _, r := range s.Area.Regions {
			if len(r) < 2 || !slices.ContainsFunc(s.Area.Countries, func(cc string) bool { return events.NUTSCountry(cc) == r[:2] }) {
				continue
			}
			id, ok := p.regionID[r]
			if !ok {
				id = int32(len(p.regionID))
				p.regionID[r] = id
			}
			if !slices.Contains(regionIDs, id) {
				regionIDs = append(regionIDs, id)
			}
		}
		countryIDs = countryIDs[:0]
		if s.Area.Remote {
			for _, cc := range s.Area.Countries {
				id, ok := p.country[cc]
				if !ok {
					id = int32(len(p.country))
					p.country[cc] = id
				}
				if !slices.Contains(countryIDs, id) {
					countryIDs = append(countryIDs, id)
				}
			}
		}
		for _, ni := range nis {
			p.needs[ni] = append(p.needs[ni], i)
			if len(regionIDs) > 0 {
				p.regions[ni] = appendAt(p.regions[ni], regionIDs, i)
			}
			if len(countryIDs) > 0 {
				p.remote[ni] = appendAt(p.remote[ni], countryIDs, i)
			}
		}
		for _, l := range uniq(s.Languages) {
			p.langs[l] = append(p.langs[l], i)
		}
		for _, c := range uniq(s.Channels) {
			p.channels[c] = append(p.channels[c], i)
		}
		cmask := countryMask(s.Area.Countries)
		radius := s.Area.RadiusKm
		for li, l := range s.Locations {
			if !(l.Lat >= -90 && l.Lat <= 90 && l.Lon >= -180 && l.Lon <= 180) {
				continue
			}
			ux, uy, uz := unitVector(l.Lat, l.Lon)
			e := spEntry{
				x: float32(ux), y: float32(uy), z: float32(uz), countries: cmask,
				svc: i, needs: fold, loc: int32(li),
			}
			p.all.add(e, l.Lat, l.Lon)
			e.chord = float32(chordOf(radius))
			switch {
			case !(radius > 0):
			case radius > GridWideKm:
				p.wide = append(p.wide, e)
			default:
				c := 0
				for radius > radiusClasses[c] {
					c++
				}
				p.areas[c].add(e, l.Lat, l.Lon)
				p.areas[c].maxRadius = max(p.areas[c].maxRadius, radius)
			}
		}
	}
	x := &Index{rev: revision, n: p.n, p: p}
	x.chunks = make([][]*Service, (len(svcs)+chunkMask)>>chunkShift)
	for c := range x.chunks {
		lo, hi := c<<chunkShift, min((c+1)<<chunkShift, len(svcs))
		x.chunks[c] = svcs[lo:hi:hi] // capacity capped: an append copies
	}
	return x
}

// wordList is a posting list as the words of a bitset of service
// numbers: the words that are not zero, in increasing order. The
// services of a region are numbered close together (PlaceOrder), so that
// a word holds many of them, and marking a list in a candidate set costs
// one OR per word instead of one per service.
type wordList []wordBits

// wordBits is word w of a bitset of service numbers: bit b is service
// w*64+b.
type wordBits struct {
	w int32
	b uint64
}

// appendAt adds i, which is above every number added before, to lists[id]
// for every id, growing lists as needed.
func appendAt(lists []wordList, ids []int32, i int32) []wordList {
	w, b := i>>6, uint64(1)<<(uint(i)&63)
	for _, id := range ids {
		for int(id) >= len(lists) {
			lists = append(lists, nil)
		}
		if l := lists[id]; len(l) > 0 && l[len(l)-1].w == w {
			l[len(l)-1].b |= b
		} else {
			lists[id] = append(l, wordBits{w, b})
		}
	}
	return lists
}

// uniq returns list without repeated values; list is not modified.
func uniq(list []string) []string {
	for i := 1; i < len(list); i++ {
		if slices.Contains(list[:i], list[i]) {
			out := slices.Clone(list)
			slices.Sort(out)
			return slices.Compact(out)
		}
	}
	return list
}

// PlaceOrder sorts svcs, whose ids are distinct, in the order the index
// numbers them, and returns it: services with a location first, those
// that are not remote before the remote ones, each by the Z-order
// (Morton) curve of their first location on a grid of 1/65536 of the
// ranges of latitude and longitude (about 300 m by 600 m), then
// the services without a location; ties by id. Services numbered close
// together then lie close together, so that a block of 64 numbers (a word
// of a candidate bitset) covers a small area, and the matcher can bound
// the distance of a whole block from the victim and skip blocks that
// cannot enter a ranking.
func PlaceOrder(svcs []*Service) []*Service {
	type keyed struct {
		key uint64
		s   *Service
	}
	ks := make([]keyed, len(svcs))
	for i, s := range svcs {
		ks[i] = keyed{placeKey(s), s}
	}
	slices.SortFunc(ks, func(a, b keyed) int {
		if c := cmp.Compare(a.key, b.key); c != 0 {
			return c
		}
		return cmp.Compare(a.s.ID, b.s.ID)
	})
	for i := range ks {
		svcs[i] = ks[i].s
	}
	return svcs
}

// placeKey is the sort key of PlaceOrder: the group (located, located and
// remote, without a location) in the top bits, then the Z-order of the
// first location's latitude and longitude, 16 bits each.
func placeKey(s *Service) uint64 {
	if len(s.Locations) == 0 {
		return 2 << 32
	}
	l := &s.Locations[0]
	q := func(v, lo, span float64) uint64 {
		if !(v > lo) { // also NaN
			return 0
		}
		return uint64(min((v-lo)/span*65535, 65535))
	}
	la, lo := q(l.Lat, -90, 180), q(l.Lon, -180, 360)
	var z uint64
	for b := range 16 {
		z |= (la>>b&1)<<(2*b+1) | (lo>>b&1)<<(2*b)
	}
	if s.Area.Remote {
		z |= 1 << 32
	}
	return z
}

func cellOf(deg float64) int32 { return int32(math.Floor(deg / GridCellDeg)) }

func cellKey(la, lo int32) uint64 { return uint64(uint32(la))<<32 | uint64(uint32(lo)) }

// Revision returns the directory revision the snapshot reflects: the last
// KV revision applied, or what NewIndex was given.
func (x *Index) Revision() uint64 { return x.rev }

// Len returns the number of service numbers in use: valid numbers are 0 to
// Len()-1. A number may refer to a service deleted since the last rebuild,
// for which Service returns nil.
func (x *Index) Len() int { return int(x.n) }

// Service returns the service numbered i, or nil if i is out of range or
// the service was deleted. The service must not be modified.
func (x *Index) Service(i int32) *Service {
	if i < 0 || i >= x.n {
		return nil
	}
	return x.chunks[i>>chunkShift][i&chunkMask]
}

// Capacity returns the capacity status of service i (accepting, waitlist
// or full), or "" if there is no such service.
func (x *Index) Capacity(i int32) string {
	if s := x.Service(i); s != nil {
		return s.Capacity.Status
	}
	return ""
}

// Lookup returns the number of the service with the id, and false if the
// snapshot has no such service.
func (x *Index) Lookup(id string) (int32, bool) {
	if x.ids != nil {
		if i, ok := x.ids[id]; ok {
			return i, i >= 0
		}
	}
	i, ok := x.p.ids[id]
	return i, ok
}

// ServiceByID returns the service with the id, or nil.
func (x *Index) ServiceByID(id string) *Service {
	if i, ok := x.Lookup(id); ok {
		return x.Service(i)
	}
	return nil
}

// Organisation returns the organisation with the id, or nil. It must not be
// modified.
func (x *Index) Organisation(id string) *Organisation {
	if x.orgs != nil {
		if o, ok := x.orgs[id]; ok {
			return o
		}
	}
	return x.p.orgs[id]
}

// NumOrganisations returns the number of organisations in the snapshot.
func (x *Index) NumOrganisations() int {
	n := len(x.p.orgs)
	for id, o := range x.orgs {
		_, inBase := x.p.orgs[id]
		switch {
		case o == nil && inBase:
			n--
		case o != nil && !inBase:
			n++
		}
	}
	return n
}

// NumServices returns the number of services in the snapshot (Len minus
// the deleted numbers).
func (x *Index) NumServices() int {
	n := int(x.n)
	for _, i := range x.pending {
		if x.Service(i) == nil {
			n--
		}
	}
	return n
}

// Listed reports whether s may be proposed to anyone: it exists, is
// active, and its organisation is not waiting for a directory
// administrator's approval ([Organisation.Pending]). Candidates, ByNeed,
// ByLanguage and ByChannel return only listed services; a reader that
// walks every number (Service(i) for i below Len) asks Listed itself.
func (x *Index) Listed(s *Service) bool {
	if s == nil || !s.Active() {
		return false
	}
	o := x.Organisation(s.Organisation)
	return o == nil || !o.Pending
}

// PendingOrganisations returns the organisations waiting for a directory
// administrator's approval, sorted by id. They must not be modified.
func (x *Index) PendingOrganisations() []*Organisation {
	var out []*Organisation
	for id, o := range x.p.orgs {
		if ov, changed := x.orgs[id]; changed {
			o = ov
		}
		if o != nil && o.Pending {
			out = append(out, o)
		}
	}
	for id, o := range x.orgs {
		if _, inBase := x.p.orgs[id]; !inBase && o != nil && o.Pending {
			out = append(out, o)
		}
	}
	slices.SortFunc(out, func(a, b *Organisation) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// ServicesOf returns the services of the organisation, sorted by id. They
// must not be modified.
func (x *Index) ServicesOf(org string) []*Service {
	var out []*Service
	for i := range x.n {
		if s := x.Service(i); s != nil && s.Organisation == org {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b *Service) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// Pending returns the number of services in the overlay: changed since the
// postings were last built and tested one by one by every query.
func (x *Index) Pending() int { return len(x.pending) }

// Directory returns a copy of the snapshot as a Directory sorted by id.
func (x *Index) Directory() *Directory {
	d := &Directory{
		Organisations: make([]Organisation, 0, x.NumOrganisations()),
		Services:      make([]Service, 0, x.NumServices()),
	}
	for id, o := range x.p.orgs {
		if ov, changed := x.orgs[id]; changed {
			o = ov
		}
		if o != nil {
			d.Organisations = append(d.Organisations, *o)
		}
	}
	for id, o := range x.orgs {
		if _, inBase := x.p.orgs[id]; !inBase && o != nil {
			d.Organisations = append(d.Organisations, *o)
		}
	}
	for i := range x.n {
		if s := x.Service(i); s != nil {
			d.Services = append(d.Services, *s)
		}
	}
	d.Sort()
	return d
}

// NearestKm returns the distance in km from the point to the nearest
// location of service i, or +Inf if it has none (or there is no service i).
func (x *Index) NearestKm(i int32, lat, lon float64) float64 {
	best := math.Inf(1)
	if s := x.Service(i); s != nil {
		for _, l := range s.Locations {
			best = min(best, DistanceKm(lat, lon, l.Lat, l.Lon))
		}
	}
	return best
}

// ByNeed returns the sorted numbers of the active services that offer the
// need code. The slice is shared: it must not be modified.
func (x *Index) ByNeed(code string) []int32 {
	ni, ok := needIndex[code]
	if !ok {
		return nil
	}
	return x.merged(x.p.needs[ni], func(s *Service) bool { return slices.Contains(s.Needs, code) })
}

// ByLanguage returns the sorted numbers of the active services (offering at
// least one known need) that work in the language. The slice is shared: it
// must not be modified.
func (x *Index) ByLanguage(code string) []int32 {
	return x.merged(x.p.langs[code], func(s *Service) bool { return slices.Contains(s.Languages, code) })
}

// ByChannel returns the sorted numbers of the active services (offering at
// least one known need) delivered through the channel. The slice is
// shared: it must not be modified.
func (x *Index) ByChannel(code string) []int32 {
	return x.merged(x.p.channels[code], func(s *Service) bool { return slices.Contains(s.Channels, code) })
}

// Intersect returns the numbers in both sorted lists (as ByNeed,
// ByLanguage and ByChannel return them), in a new slice.
func Intersect(a, b []int32) []int32 {
	out := make([]int32, 0, min(len(a), len(b)))
	for i, j := 0, 0; i < len(a) && j < len(b); {
		switch {
		case a[i] < b[j]:
			i++
		case a[i] > b[j]:
			j++
		default:
			out = append(out, a[i])
			i++
			j++
		}
	}
	return out
}

// merged returns base without the pending numbers, plus the pending
// services that are active, offer a known need and satisfy pred.
func (x *Index) merged(base []int32, pred func(*Service) bool) []int32 {
	if len(x.pending) == 0 {
		return base
	}
	out := make([]int32, 0, len(base))
	for _, i := range base {
		if _, found := slices.BinarySearch(x.pending, i); !found {
			out = append(out, i)
		}
	}
	for _, i := range x.pending {
		if s := x.Service(i); x.Listed(s) && hasKnownNeed(s.Needs) && pred(s) {
			out = append(out, i)
		}
	}
	slices.Sort(out)
	return out
}

// Candidates appends to dst the sorted, distinct numbers of the services
// that match q (see [Query]) and returns the extended slice. It reads only
// the posting lists of q's needs and areas and the grid cells around q's
// point; with a reused dst and no new services it does not allocate.
func (x *Index) Candidates(q Query, dst []int32) []int32 {
	if !hasKnownNeed(q.Needs) || x.n == 0 {
		return dst
	}
	words := int(x.n+63) >> 6
	bp, _ := x.p.bitsets.Get().(*[]uint64)
	if bp == nil || cap(*bp) < words {
		b := make([]uint64, words)
		bp = &b
	}
	set := bitset{w: (*bp)[:words], lo: words, hi: -1}
	x.candidates(&q, &set)
	dst = set.appendTo(dst)
	x.p.bitsets.Put(bp)
	return dst
}

// CandidateBits returns the services that match q (see [Query]) as a
// bitset: bit i%64 of word i/64 is set when service number i is a
// candidate. It reuses dst's array when it is large enough (its content
// is overwritten) and returns a slice of (Len()+63)/64 words; it selects
// exactly the services Candidates returns, without allocating when dst is
// reused.
func (x *Index) CandidateBits(q Query, dst []uint64) []uint64 {
	words := int(x.n+63) >> 6
	if cap(dst) < words {
		dst = make([]uint64, words)
	}
	dst = dst[:words]
	clear(dst)
	if !hasKnownNeed(q.Needs) || x.n == 0 {
		return dst
	}
	set := bitset{w: dst, lo: words, hi: -1}
	x.candidates(&q, &set)
	return dst
}

// candidates marks the services that match q in set.
func (x *Index) candidates(q *Query, set *bitset) {
	var buf [16]int
	qneeds := needIndices(buf[:0], q.Needs)
	qfold := needFold(q.Needs)
	p := x.p
	region := q.region()
	var countryID int32 = -1
	if q.Country != "" {
		if id, ok := p.country[q.Country]; ok {
			countryID = id
		}
	}
	remoteIDs := make([]int32, 0, 4)
	for _, cc := range q.RemoteCountries {
		if id, ok := p.country[cc]; ok && id != countryID && !slices.Contains(remoteIDs, id) {
			remoteIDs = append(remoteIDs, id)
		}
	}
	// Region ids of the query's region and its parents up to the country.
	var regionIDs [4]int32
	nRegions := 0
	if q.Country != "" {
		if region == "" {
			cc := nutsPrefix(q.Country)
			if id, ok := p.regionID[string(cc[:])]; ok {
				regionIDs[0], nRegions = id, 1
			}
		} else {
			for l := 2; l <= len(region) && nRegions < len(regionIDs); l++ {
				if id, ok := p.regionID[region[:l]]; ok {
					regionIDs[nRegions] = id
					nRegions++
				}
			}
		}
	}
	for _, ni := range qneeds {
		if rs := p.regions[ni]; len(rs) > 0 {
			for _, id := range regionIDs[:nRegions] {
				if int(id) < len(rs) {
					set.markWords(rs[id])
				}
			}
		}
		if rs := p.remote[ni]; len(rs) > 0 {
			if countryID >= 0 && int(countryID) < len(rs) {
				set.markWords(rs[countryID])
			}
			for _, id := range remoteIDs {
				if int(id) < len(rs) {
					set.markWords(rs[id])
				}
			}
		}
	}
	if lat, lon, ok := q.point(); ok {
		x.markNear(set, q, qfold, lat, lon)
	}
	// The overlay: forget the stale postings, test the current services.
	for _, i := range x.pending {
		set.clear(i)
		if s := x.Service(i); x.Listed(s) && q.Matches(s) {
			set.mark1(i)
		}
	}
}

// markNear marks the services with a location near the point: within
// q.RadiusKm, or within their own area radius when q.Country is one of
// their countries.
func (x *Index) markNear(set *bitset, q *Query, qfold uint64, lat, lon float64) {
	p := x.p
	pr := newProbe(lat, lon)
	exact := exactFold()
	if q.Country != "" {
		cbit, known := countryBit[q.Country]
		if !known {
			cbit = otherCountry
		}
		inArea := func(es []spEntry) {
			for k := range es {
				e := &es[k]
				if e.needs&qfold == 0 || e.countries&cbit == 0 || set.has(e.svc) || !exact && !sharesNeed(p.svcs[e.svc].Needs, q.Needs) {
					continue
				}
				switch pr.compare(e, float64(e.chord)) {
				case outside:
					continue
				case boundary:
					if !pr.exactly(e, p.svcs[e.svc].Area.RadiusKm, p.svcs) {
						continue
					}
				}
				if known || slices.Contains(p.svcs[e.svc].Area.Countries, q.Country) {
					set.mark1(e.svc)
				}
			}
		}
		inArea(p.wide)
		for c := range p.areas {
			p.areas[c].scan(lat, lon, p.areas[c].maxRadius, inArea)
		}
	}
	if r := q.RadiusKm; r > 0 {
		chord := chordOf(r)
		p.all.scan(lat, lon, r, func(es []spEntry) {
			for k := range es {
				e := &es[k]
				if e.needs&qfold == 0 || set.has(e.svc) || !exact && !sharesNeed(p.svcs[e.svc].Needs, q.Needs) {
					continue
				}
				switch pr.compare(e, chord) {
				case inside:
					set.mark1(e.svc)
				case boundary:
					if pr.exactly(e, r, p.svcs) {
						set.mark1(e.svc)
					}
				}
			}
		})
	}
}

// bitset is the scratch set of Candidates: one bit per service number, with
// the range of words touched so that emitting does not scan the rest.
type bitset struct {
	w      []uint64
	lo, hi int
}

func (b *bitset) markWords(list wordList) {
	if len(list) == 0 {
		return
	}
	b.lo = min(b.lo, int(list[0].w))
	b.hi = max(b.hi, int(list[len(list)-1].w))
	w := b.w
	for _, e := range list {
		w[e.w] |= e.b
	}
}

func (b *bitset) mark1(i int32) {
	b.lo = min(b.lo, int(i>>6))
	b.hi = max(b.hi, int(i>>6))
	b.w[i>>6] |= 1 << (uint(i) & 63)
}

func (b *bitset) clear(i int32) { b.w[i>>6] &^= 1 << (uint(i) & 63) }

func (b *bitset) has(i int32) bool { return b.w[i>>6]&(1<<(uint(i)&63)) != 0 }

// appendTo appends the members in order and leaves the set empty.
func (b *bitset) appendTo(dst []int32) []int32 {
	for wi := b.lo; wi <= b.hi; wi++ {
		w := b.w[wi]
		for w != 0 {
			dst = append(dst, int32(wi<<6+bits.TrailingZeros64(w)))
			w &= w - 1
		}
		b.w[wi] = 0
	}
	return dst
}

// With returns a new snapshot with the changes applied in order, leaving x
// unchanged. Each change names its record by Key ([OrgKey], [ServiceKey]);
// a change with an unknown key is ignored. The revision becomes the largest
// of x's and the changes' revisions. The cost is that of copying two small
// arrays per service change, until the overlay is large enough for a
// rebuild (see [IndexRebuildMin]).
func (x *Index) With(changes ...Change) *Index {
	y := &Index{
		rev:     x.rev,
		n:       x.n,
		chunks:  slices.Clone(x.chunks),
		p:       x.p,
		pending: slices.Clone(x.pending),
		ids:     maps.Clone(x.ids),
		orgs:    maps.Clone(x.orgs),
	}
	copied := make(map[int]bool) // chunks already copied for y
	setSvc := func(i int32, s *Service) {
		c := int(i >> chunkShift)
		if c == len(y.chunks) {
			y.chunks = append(y.chunks, make([]*Service, 0, chunkSize))
			copied[c] = true
		}
		if !copied[c] {
			y.chunks[c] = append(make([]*Service, 0, chunkSize), y.chunks[c]...)
			copied[c] = true
		}
		if int(i&chunkMask) == len(y.chunks[c]) {
			y.chunks[c] = append(y.chunks[c], s)
		} else {
			y.chunks[c][i&chunkMask] = s
		}
	}
	addPending := func(i int32) {
		if k, found := slices.BinarySearch(y.pending, i); !found {
			y.pending = slices.Insert(y.pending, k, i)
		}
	}
	for _, ch := range changes {
		y.rev = max(y.rev, ch.Revision)
		kind, id, ok := ParseKey(ch.Key)
		if !ok {
			continue
		}
		switch kind {
		case KindOrganisation:
			if y.orgs == nil {
				y.orgs = make(map[string]*Organisation)
			}
			old := y.Organisation(id)
			if ch.Deleted || ch.Org == nil {
				y.orgs[id] = nil
			} else {
				y.orgs[id] = ch.Org
			}
			// An organisation approved, or waiting again: its services'
			// postings are out of date, so the overlay tests them.
			if (old != nil && old.Pending) != (y.orgs[id] != nil && y.orgs[id].Pending) {
				for i := range y.n {
					if s := y.Service(i); s != nil && s.Organisation == id {
						addPending(i)
					}
				}
			}
		case KindService:
			s := ch.Service
			if ch.Deleted {
				s = nil
			}
			i, exists := y.Lookup(id)
			switch {
			case exists && s == nil:
				setSvc(i, nil)
				addPending(i)
				if y.ids == nil {
					y.ids = make(map[string]int32)
				}
				y.ids[id] = -1
			case exists:
				old := y.Service(i)
				setSvc(i, s)
				if !sameIndexedFields(old, s) {
					addPending(i)
				}
			case s != nil:
				i = y.n
				y.n++
				setSvc(i, s)
				addPending(i)
				if y.ids == nil {
					y.ids = make(map[string]int32)
				}
				y.ids[id] = i
			}
		}
	}
	if len(y.pending) > max(IndexRebuildMin, int(y.n)/IndexRebuildRatio) || len(y.orgs) > IndexRebuildMin {
		return y.Rebuild()
	}
	return y
}

// Rebuild returns a snapshot of the same content and revision with fresh
// postings and an empty overlay. Service numbers change.
func (x *Index) Rebuild() *Index {
	svcs := make([]*Service, 0, x.n)
	for i := range x.n {
		if s := x.Service(i); s != nil {
			svcs = append(svcs, s)
		}
	}
	orgs := make([]*Organisation, 0, len(x.p.orgs)+len(x.orgs))
	for id, o := range x.p.orgs {
		if ov, changed := x.orgs[id]; changed {
			o = ov
		}
		if o != nil {
			orgs = append(orgs, o)
		}
	}
	for id, o := range x.orgs {
		if _, inBase := x.p.orgs[id]; !inBase && o != nil {
			orgs = append(orgs, o)
		}
	}
	return build(svcs, orgs, x.rev)
}

// sameIndexedFields reports whether a and b agree on everything the
// postings read, so that b can replace a without touching them.
func sameIndexedFields(a, b *Service) bool {
	if a == nil || b == nil {
		return a == b
	}
	if a.Active() != b.Active() || !slices.Equal(a.Needs, b.Needs) ||
		!slices.Equal(a.Languages, b.Languages) || !slices.Equal(a.Channels, b.Channels) ||
		!slices.Equal(a.Area.Countries, b.Area.Countries) || !slices.Equal(a.Area.Regions, b.Area.Regions) ||
		a.Area.RadiusKm != b.Area.RadiusKm || a.Area.Remote != b.Area.Remote ||
		len(a.Locations) != len(b.Locations) {
		return false
	}
	for k := range a.Locations {
		if a.Locations[k].Lat != b.Locations[k].Lat || a.Locations[k].Lon != b.Locations[k].Lon {
			return false
		}
	}
	return true
}
