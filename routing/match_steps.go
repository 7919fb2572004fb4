package routing

import (
	"math"
	"math/bits"
)

// The steps of [Matcher.Match] after the index has returned the
// candidates: [query.constrain] checks the hard constraints that depend on
// codes alone on words of 64 candidates with the chunks' bitsets, and
// [ranker.rank] checks the rest on the candidates left, scores them and
// keeps the best of each class; [scratch.plan] then groups the classes
// into placements.
//
// A big city gives thousands of candidates, so the loop of rank is written
// for speed: in the commonest case (no accessibility needs, no emergency,
// no statistics, no preferred organisation; in a cross-border case, a
// service serving countries with dense ids) it reads the score's inputs
// but for the distance from the chunk's bitsets alone (ranker.fromMasks),
// otherwise from the service's features (ranker.fromFeatures). Both put the score together with the same
// functions ([query.baseScore], [query.distanceAt], [query.observedScore]
// and [total]), which Assess and the explanations use too.
//
// The index numbers services by place (directory.PlaceOrder), so a word
// of 64 candidates lies in a small box. Match ranks the words near the
// victim first, nearest first (scratch.nearestFirst); then, for each
// word, the distance at the nearest point of its box and the best
// language, channels and specialisation among its candidates bound their
// ranking keys (ranker.keyMax), and a candidate
// whose class's ranking is full of better keys is counted but not scored.
// ranker.prune makes that test for whole classes of a word at once: the
// bitsets of the profile's needs (and countries) split the word's
// candidates by class, and the bitsets of their language levels,
// specialisations and waiting lists tell which of them could still reach
// the worst key of a full ranking (a class that even the best combo
// cannot get into is skipped before they are read); the others are only
// counted.
// Accessibility and, in an emergency, open now are decided for the word
// from the bitsets too (ranker.access, chunk.openAt), so that counting
// the candidates skipped reads no service in the common case. None of
// this changes a plan: the tests compare the plans with those of the
// reference path (NewUnboundedMatcher in the tests: every eligible
// candidate scored, every constraint checked one by one by
// query.failures).

// tally counts what a match saw, for the plan.
type tally struct {
	// excluded counts the candidates excluded by each hard constraint,
	// each under the first it failed.
	excluded [numConstraints]int
	// offered are the needs that some candidate offers.
	offered uint64
	// considered counts the candidates; eligible those that passed every
	// hard constraint; pruned those ranker.prune skipped.
	considered, eligible, pruned int
}

// word is a word of 64 candidates after the hard constraints that
// depend on codes alone.
type word struct {
	c    *chunk
	cw   int   // word in the chunk
	base int32 // service number of bit 0
	// first speak the victim's first language, other another of hers
	// (and not the first), provided none but bring an interpreter she
	// accepts.
	first, other, provided uint64
	// slowLang speak a language without a bit while the profile has
	// one: their language and channels are checked one by one.
	slowLang uint64
	// todo passed every constraint checked here, or are in slowLang.
	todo uint64
	// Of a cross-border case: here serve the country of the crime, home
	// the residence country, by the dense country bits; countrySlow are
	// read one by one (query.where).
	here, home, countrySlow uint64
	// dist is the most the distance can add for a candidate of the word
	// with one location (query.distanceBound of its first locations),
	// distMulti for one with several (of all their locations, at least
	// dist); keyMax and keyMulti the most the ranking key of each can be
	// but for the needs component (ranker.bound).
	dist, distMulti, keyMax, keyMulti float64
}

// level is the language level of the candidate at bit bi (one of first,
// other, provided, or else an interpreter to be arranged).
func (wd *word) level(bi int) int {
	return langInterpreter + int(wd.provided>>bi&1) + 2*int(wd.other>>bi&1) + 3*int(wd.first>>bi&1)
}

// eligibleWord is the part of w, a word of chunk masks mk at cw, whose
// age and gender restrictions the profile meets: a service only for some
// age bands or genders needs the profile to state one of them.
func (q *query) eligibleWord(mk *masks, cw int, w uint64) uint64 {
	if q.ageIdx >= 0 {
		w &= mk.ages[q.ageIdx][cw]
	} else {
		w &= mk.anyAge[cw]
	}
	if q.genderIdx >= 0 {
		w &= mk.genders[q.genderIdx][cw]
	} else {
		w &= mk.anyGender[cw]
	}
	return w
}

// constrain checks the hard constraints that depend on codes alone
// (activity, eligibility, capacity, language, channel) on the word wi of
// the candidate bitset, w, and counts what it excludes in t.
func (q *query) constrain(wi int, w uint64, t *tally) word {
	t.considered += bits.OnesCount64(w)
	c := q.t.chunks[wi>>(chunkBits-6)]
	cw := wi & (chunkWords - 1)
	mk := &c.m
	// Candidates without a needed code (none in practice: the index
	// returns only services offering one) are skipped uncounted.
	var has uint64
	for n, k := range q.needCode {
		nw := mk.needs[k][cw]
		if w&nw != 0 {
			t.offered |= 1 << n
		}
		has |= nw
	}
	w &= has & mk.present[cw]
	act := w & mk.active[cw]
	t.excluded[cInactive] += bits.OnesCount64(w &^ act)
	if len(q.own) > 0 {
		own := act & q.ownWord(wi)
		t.excluded[cOwn] += bits.OnesCount64(own)
		act &^= own
	}
	el := q.eligibleWord(mk, cw, act)
	t.excluded[cEligibility] += bits.OnesCount64(act &^ el)
	open := el &^ mk.full[cw]
	t.excluded[cCapacity] += bits.OnesCount64(el &^ open)
	// Services speaking a language without a bit, when the profile has
	// such a language, are checked one by one.
	var slowLang uint64
	if q.langUnknown {
		slowLang = open & mk.langSlow[cw]
	}
	fast := open &^ slowLang
	var first, other uint64
	if q.langDense1 >= 0 {
		first = fast & mk.langs[q.langDense1][cw]
	}
	for _, id := range q.langDenseRest {
		other |= mk.langs[id][cw]
	}
	other &= fast &^ first
	// Without a shared language, only with an interpreter, and only if
	// the victim accepts one: her refusal binds.
	viaInterp := fast &^ (first | other)
	if !q.interp {
		viaInterp = 0
	}
	provided := viaInterp & mk.interp[cw]
	spoken := first | other | viaInterp
	t.excluded[cLanguage] += bits.OnesCount64(fast &^ spoken)
	var reach uint64
	for _, k := range q.chanCode {
		reach |= mk.channels[k][cw]
	}
	t.excluded[cChannel] += bits.OnesCount64(spoken &^ reach)
	wd := word{c: c, cw: cw, base: int32(wi << 6), first: first, other: other, provided: provided, slowLang: slowLang, todo: spoken&reach | slowLang}
	if q.cross {
		wd.countrySlow = mk.countrySlow[cw]
		if q.countryBit != 0 {
			wd.here = mk.country[bits.TrailingZeros32(q.countryBit)][cw]
		}
		if q.residenceBit != 0 {
			wd.home = mk.country[bits.TrailingZeros32(q.residenceBit)][cw]
		}
	}
	return wd
}

// ownWord returns the bits of the referrer's services in word wi of the
// candidate bitset; words must come in increasing order.
func (q *query) ownWord(wi int) uint64 {
	for q.ownAt < len(q.own) && int(q.own[q.ownAt]>>6) < wi {
		q.ownAt++
	}
	var m uint64
	for k := q.ownAt; k < len(q.own) && int(q.own[k]>>6) == wi; k++ {
		m |= 1 << (q.own[k] & 63)
	}
	return m
}

// ranker scores the candidates of one match and keeps the best k of each
// class.
type ranker struct {
	sc *scratch
	q  *query
	k  int
	// slow: constraints remain to check one by one (accessibility, open
	// now); bonusOn: the ranking key adds a bonus (emergency, preferred
	// organisation).
	slow, bonusOn bool
	// dense: classes are found by compact cover (query.denseClasses);
	// skips: candidates of a word are skipped on bitsets (ranker.prune).
	dense, skips bool
	// Of the word prune reads: bitsets of its candidates by language
	// level and by waiting list (and scratch.specM by specialisation).
	langM [langFirst + 1]uint64
	waitM [2]uint64
	// Of prune for the current word: levels read, the candidates to skip,
	// what the key may add but for the combos and needs, the candidates
	// of the 24/7 bonus.
	ready, leveled bool
	skip, always   uint64
	extra          float64
	// maskPath: read the inputs of the score from the bitsets (see the
	// comment at the top of the file).
	maskPath bool
	// last is the class of lastCover and lastProper, -1 none.
	last                  int
	lastCover, lastProper uint64

	// Of the bitset path, for the current word: the bitsets of the
	// profile's needs, channels, crimes and flags, and of the features
	// the score reads (those of its channels, crimes and flags in
	// scratch.chanW, crimeW, flagW).
	needW                               [maxDenseNeeds]uint64
	waitW, specW, locW, multiW, remoteW uint64

	// distMax is the most the distance can add for a candidate of the
	// current word with one location (query.distanceBound); keyMax the
	// most the ranking key of one of them can be, but for the needs
	// component: a candidate whose class's worst is above it plus its
	// needs component cannot enter the ranking and is not scored.
	// distMulti and keyMulti are the same for the candidates with
	// several locations, multi.
	distMax, keyMax, distMulti, keyMulti float64
	multi                                uint64
	// Of the current word: the candidates whose accessibility needs are
	// met, of them those met through a remote channel, and those to
	// check one by one (see access).
	accOK, accWaived, accSlow uint64
	// Of the current word in an emergency: the candidates open now, and
	// those to judge one by one (see chunk.openAt).
	openW, openSlow uint64
}

// ranker returns the ranker of the match compiled in sc.q.
func (sc *scratch) ranker(q *query, k int) ranker {
	r := ranker{
		sc: sc, q: q, k: k, last: -1,
		slow:    q.acc != 0 || q.emergency,
		bonusOn: q.emergency || q.preferred != "",
		dense:   q.denseClasses(),
	}
	r.maskPath = q.acc == 0 && r.dense && !r.slow && !r.bonusOn && q.stats == nil
	r.skips = r.dense && !q.unbounded && len(q.combos) > 0
	return r
}

// bound is the most the ranking key of a candidate of wd can be but for
// its needs component, of one with one location and of one with several:
// the best of the word's candidates in language, channels and
// specialisation (wordMax), the distance at the nearest point of its box
// (wd.dist, wd.distMulti), the most the observed components add, and the
// bonus of 24/7 services only if one of them is among its candidates.
func (r *ranker) bound(wd *word) (one, multi float64) {
	q := r.q
	bonus := 0.0
	if q.emergency && wd.todo&wd.c.m.always[wd.cw] != 0 {
		bonus += 4
	}
	if q.preferred != "" {
		bonus += 2
	}
	v := r.wordMax(wd)
	return v + wd.dist + q.obsMax + bonus + boundSlack, v + wd.distMulti + q.obsMax + bonus + boundSlack
}

// rank checks the remaining constraints on the candidates of wd, scores
// those that pass and offers them to their class's ranking.
func (r *ranker) rank(wd *word, t *tally) {
	if wd.todo == 0 {
		return
	}
	q := r.q
	if r.maskPath {
		r.load(wd)
	} else if r.skips {
		r.loadNeeds(wd)
	}
	r.distMax, r.keyMax, r.distMulti, r.keyMulti = wd.dist, math.Inf(1), wd.distMulti, math.Inf(1)
	r.multi = wd.c.m.multiLoc[wd.cw]
	if !q.unbounded {
		r.keyMax, r.keyMulti = wd.keyMax, wd.keyMulti
	}
	// The constraints left, accessibility and open now, are decided
	// for the word from the bitsets (but for some candidates, see
	// access and chunk.openAt).
	wordSlow := r.slow && !q.unbounded
	if wordSlow && q.acc != 0 {
		r.access(wd)
	}
	if wordSlow && q.emergency {
		r.openW, r.openSlow = wd.c.openAt(wd.cw, q), wd.c.m.openSlow[wd.cw]
	}
	todo := wd.todo
	if r.skips && bits.OnesCount64(todo) >= pruneMin {
		// The candidates of the word that cannot enter their classes'
		// full rankings: counted, not scored.
		if skip := r.prune(wd); skip != 0 {
			t.pruned += bits.OnesCount64(skip)
			todo &^= skip
			r.count(wd, skip, t)
		}
	}
	for ; todo != 0; todo &= todo - 1 {
		bi := bits.TrailingZeros64(todo)
		if r.maskPath && (wd.slowLang|wd.countrySlow)>>bi&1 == 0 {
			t.eligible++
			r.fromMasks(wd, bi)
			continue
		}
		j := (wd.base + int32(bi)) & chunkMask
		f := &wd.c.f[j]
		lang := wd.level(bi)
		// The channels shared with the profile, once per candidate: the
		// constraints, the score and the distance all read them.
		shared := r.q.sharedOf(wd.c, j)
		var code int
		var waived bool
		if wordSlow && wd.slowLang>>bi&1 == 0 {
			code, waived = r.checkLast(wd, bi, f, j, shared)
		} else {
			code, lang, waived = r.q.checkRest(f, wd.c, j, shared, lang, wd.slowLang>>bi&1 != 0, r.slow)
		}
		if code != cNone {
			t.excluded[code]++
			continue
		}
		t.eligible++
		r.fromFeatures(wd, bi, shared, lang, waived)
	}
}

// pruneMin is the fewest candidates of a word for which rank tries
// prune: for fewer, the test of each candidate costs less.
const pruneMin = 16

// prune returns the candidates of wd (but for those of slowLang and
// countrySlow) that cannot enter their class's ranking, full of keys
// above anything they can reach: the tests of fromMasks and fromFeatures,
// made for whole classes at once on bitsets. The candidates are split
// into their classes by the bitsets of the profile's needs (and, in a
// cross-border case, of its countries); the most a key can be is the
// value of the candidate's language level, specialisation and waiting
// list, which take few values (query.combos, best first), with the best
// channels of the word, the distance at the nearest point of its box, the
// most accessibility can add, the residence component of the class (of
// its cover and proper needs) and its bonus.
func (r *ranker) prune(wd *word) uint64 {
	cand := wd.todo &^ (wd.slowLang | wd.countrySlow)
	if cand == 0 {
		return 0
	}
	r.ready, r.leveled, r.skip = false, false, 0
	r.split(wd, cand, 0, 0)
	return r.skip
}

// split splits the candidates m, which meet exactly the needs cover of
// the first n of the profile's, by the next need, and judges each class
// at the end.
func (r *ranker) split(wd *word, m uint64, n int, cover uint64) {
	q := r.q
	if n < len(q.needBits) {
		if a := m & r.needW[n]; a != 0 {
			r.split(wd, a, n+1, cover|1<<n)
		}
		if b := m &^ r.needW[n]; b != 0 {
			r.split(wd, b, n+1, cover)
		}
		return
	}
	if !q.cross {
		r.judge(wd, m, cover, cover)
		return
	}
	// proper: the needs but the ongoing ones where it serves the crime's
	// country, the ongoing ones where it serves the residence country
	// (query.proper).
	here, home := cover&^q.ongoing, cover&q.ongoing
	parts := [2]struct{ m, proper uint64 }{{m, 0}}
	if here != 0 {
		parts = [2]struct{ m, proper uint64 }{{m & wd.here, here}, {m &^ wd.here, 0}}
	}
	for _, pt := range parts {
		switch {
		case pt.m == 0:
		case home == 0:
			r.judge(wd, pt.m, cover, pt.proper)
		default:
			if a := pt.m & wd.home; a != 0 {
				r.judge(wd, a, cover, pt.proper|home)
			}
			if b := pt.m &^ wd.home; b != 0 {
				r.judge(wd, b, cover, pt.proper)
			}
		}
	}
}

// judge adds to r.skip the candidates m of the class of cover and proper
// that cannot enter its ranking.
func (r *ranker) judge(wd *word, m, cover, proper uint64) {
	q, sc := r.q, r.sc
	ck := cover
	if q.cross {
		ck |= proper << len(q.needBits)
	}
	ci := sc.classIdx[ck]
	if ci < 0 {
		return
	}
	cl := &sc.classes[ci]
	if cl.n < r.k {
		return // not full: any candidate enters
	}
	mk, cw := &wd.c.m, wd.cw
	if !r.ready {
		r.ready = true
		var union uint64
		for n, k := range q.chanCode {
			if mk.channels[k][cw]&wd.todo != 0 {
				union |= 1 << n
			}
		}
		r.extra = r.distMax + q.chanWeight(union) + q.restMax + boundSlack
		if q.cross {
			// Residence is the class's own (below), not its most.
			r.extra -= q.w[compResidence]
		}
		if q.preferred != "" {
			r.extra += 2
		}
		r.always = 0
		if q.emergency {
			r.always = mk.always[cw]
		}
	}
	need := cl.worst - q.wNeeds[bits.OnesCount64(cover)] - r.extra
	if q.cross {
		// The residence component of every candidate of the class.
		need -= q.w[compResidence] * residenceValue(cover, proper)
	}
	// Decided without the word's levels: the best combo cannot reach
	// the lowest key asked of a candidate (all skipped), or the worst
	// reaches the highest (none).
	cs, lowest := q.combos, need
	if dd := r.distMulti - r.distMax; dd > 0 && m&r.multi != 0 {
		lowest -= dd
	}
	if m&r.always != 0 {
		lowest -= 4
	}
	if lowest > cs[0].v {
		r.skip |= m
		return
	}
	if need <= cs[len(cs)-1].v {
		return
	}
	if !r.leveled {
		r.leveled = true
		r.levels(wd, wd.todo)
	}
	keep := r.keep(m, need)
	if a := m & r.always; a != 0 {
		keep = keep&^r.always | r.keep(a, need-4)&r.always
	}
	r.skip |= m &^ keep
}

// keep returns the candidates of m that may reach need (above), those
// with several locations by their own distance bound.
func (r *ranker) keep(m uint64, need float64) uint64 {
	keep := r.above(need)
	if dd := r.distMulti - r.distMax; dd > 0 && m&r.multi != 0 {
		keep = keep&^r.multi | r.above(need-dd)&r.multi
	}
	return keep
}

// levels fills the bitsets of the word's candidates (of cand) by language
// level, specialisation (index in wSpec) and waiting list, for above, and
// forgets the unions above made of the previous word's.
func (r *ranker) levels(wd *word, cand uint64) {
	r.split3(wd, cand)
	r.sc.aboveM = r.sc.aboveM[:0]
}

// split3 fills the bitsets of levels by language level, specialisation
// and waiting list.
func (r *ranker) split3(wd *word, cand uint64) {
	q, sc, mk, cw := r.q, r.sc, &wd.c.m, wd.cw
	r.langM[langFirst], r.langM[langOther], r.langM[langProvided] = wd.first, wd.other, wd.provided
	r.langM[langInterpreter] = cand &^ (wd.first | wd.other | wd.provided)
	r.waitM[1] = mk.waitlist[cw]
	r.waitM[0] = ^r.waitM[1]
	if len(q.wSpec) == 0 {
		sc.specM = append(sc.specM[:0], ^uint64(0))
		return
	}
	// The numbers of the profile's crimes and flags each candidate
	// lists, as bit slices.
	var crimes, flags counter
	if q.nCrimes > 0 {
		for _, k := range q.crimeCode {
			crimes.add(mk.crimes[k][cw])
		}
	}
	for _, k := range q.flagCode {
		flags.add(mk.flags[k][cw])
	}
	specialist := ^uint64(0)
	if q.nCrimes > 0 {
		specialist = mk.specialist[cw]
	}
	sc.specM = sc.specM[:0]
	for state := range q.nCrimes + 2 {
		var sm uint64
		switch {
		case state == 0:
			sm = ^specialist
			if q.nCrimes == 0 {
				sm = ^uint64(0)
			}
		default:
			sm = specialist & crimes.equal(state-1)
		}
		for fm := range q.nFlags + 1 {
			sc.specM = append(sc.specM, sm&flags.equal(fm))
		}
	}
}

// above returns the candidates (of those levels read) whose language
// level, specialisation and waiting list may add up to v or more: the
// union of the combos of value v or more, a prefix of query.combos (best
// first). The unions of the prefixes are kept in scratch.aboveM for the
// other classes of the word, and made only as far as asked.
func (r *ranker) above(v float64) uint64 {
	cs := r.q.combos
	if v <= cs[len(cs)-1].v {
		return ^uint64(0)
	}
	n := 0 // the number of combos of value v or more
	for n < len(cs) && cs[n].v >= v {
		n++
	}
	if n == 0 {
		return 0
	}
	sc := r.sc
	for k := len(sc.aboveM); k < n; k++ {
		c := cs[k]
		m := r.langM[c.lang] & sc.specM[c.spec] & r.waitM[c.wait]
		if k > 0 {
			m |= sc.aboveM[k-1]
		}
		sc.aboveM = append(sc.aboveM, m)
	}
	return sc.aboveM[n-1]
}

// counter counts, for each of 64 candidates, up to 15 bitsets they are
// in, as bit slices.
type counter [4]uint64

func (c *counter) add(w uint64) {
	for b := range c {
		c[b], w = c[b]^w, c[b]&w
		if w == 0 {
			return
		}
	}
}

// equal returns the candidates counted n times.
func (c *counter) equal(n int) uint64 {
	m := ^uint64(0)
	for b := range c {
		if n>>b&1 != 0 {
			m &= c[b]
		} else {
			m &^= c[b]
		}
	}
	return m
}

// count counts the candidates of skip, which cannot enter a ranking,
// as rank would: eligible, or excluded by the constraints rank checks one
// by one (accessibility, open now), on the word's bitsets where they
// decide.
func (r *ranker) count(wd *word, skip uint64, t *tally) {
	if !r.slow {
		t.eligible += bits.OnesCount64(skip)
		return
	}
	q := r.q
	one := uint64(0) // to check one by one
	rest := skip
	if q.acc != 0 {
		one = skip & r.accSlow
		fail := skip &^ (r.accOK | r.accSlow)
		t.excluded[cAccessibility] += bits.OnesCount64(fail)
		rest &^= one | fail
	}
	if q.emergency {
		one |= rest & r.openSlow
		rest &^= r.openSlow
		closed := rest &^ r.openW
		t.excluded[cOpenNow] += bits.OnesCount64(closed)
		rest &^= closed
	}
	t.eligible += bits.OnesCount64(rest)
	for ; one != 0; one &= one - 1 {
		bi := bits.TrailingZeros64(one)
		j := (wd.base + int32(bi)) & chunkMask
		var shared uint64
		if q.acc != 0 {
			shared = q.sharedOf(wd.c, j)
		}
		if code, _ := r.checkLast(wd, bi, &wd.c.f[j], j, shared); code != cNone {
			t.excluded[code]++
			continue
		}
		t.eligible++
	}
}

// access finds, for the word's candidates, those whose accessibility
// needs are met (accOK, of which accWaived through a remote channel) and
// those with several locations to check one by one (accSlow), from the
// chunk's bitsets (query.accessWord).
func (r *ranker) access(wd *word) {
	r.accOK, r.accWaived, r.accSlow = r.q.accessWord(&wd.c.m, wd.cw)
}

// accessWord returns, for the services of word cw of a chunk with masks
// mk, those whose accessibility needs are met (ok, of which waived through
// a remote channel) and those with several locations to check one by one
// (slow), as query.access decides for one service.
func (q *query) accessWord(mk *masks, cw int) (ok, waived, slow uint64) {
	// With one need of the place, a location that meets it is one of
	// the service's locations that does (accAny); with more, the first
	// location is read from the bitsets and the others one by one.
	onePlace := bits.OnesCount64(q.place) == 1
	commFail, placeOK := uint64(0), ^uint64(0)
	for n, k := range q.accCode {
		own := mk.acc[k][cw]
		switch {
		case q.place>>n&1 == 0:
			commFail |= ^(own | mk.accAny[k][cw])
		case onePlace:
			placeOK &= own | mk.accAny[k][cw]
		default:
			placeOK &= own | mk.acc0[k][cw]
		}
	}
	var reach uint64
	for n, k := range q.chanCode {
		if q.remote>>n&1 != 0 {
			reach |= mk.channels[k][cw]
		}
	}
	rest := ^commFail &^ placeOK
	if !onePlace {
		slow = rest & mk.multiLoc[cw]
	}
	waived = rest &^ slow & reach
	return ^commFail&placeOK | waived, waived, slow
}

// checkLast is query.checkLast for the candidate at bit bi of wd, with the
// accessibility found by access and the services open now found by
// chunk.openAt.
func (r *ranker) checkLast(wd *word, bi int, f *features, j int32, shared uint64) (code int, waived bool) {
	q := r.q
	if q.acc != 0 {
		switch {
		case r.accOK>>bi&1 != 0:
			waived = r.accWaived>>bi&1 != 0
		case r.accSlow>>bi&1 != 0:
			var ok bool
			if ok, waived = q.access(f, wd.c, j, shared); !ok {
				return cAccessibility, false
			}
		default:
			return cAccessibility, false
		}
	}
	if q.emergency {
		open := r.openW>>bi&1 != 0
		if r.openSlow>>bi&1 != 0 {
			open = q.openNow(f, wd.c, j)
		}
		if !open {
			return cOpenNow, waived
		}
	}
	return cNone, waived
}

// wordMax is the most the language, channel, specialisation,
// accessibility and residence components can add for a candidate of wd:
// the best language level and the union of the profile's channels among
// its candidates, the best specialisation unless none of them matches a
// crime or flag of the profile.
func (r *ranker) wordMax(wd *word) float64 {
	q, mk, cw, todo := r.q, &wd.c.m, wd.cw, wd.todo
	lang := q.langMax
	if wd.slowLang == 0 {
		lang = 0
		if todo&wd.first != 0 {
			lang = max(lang, q.wLang[langFirst])
		}
		if todo&wd.other != 0 {
			lang = max(lang, q.wLang[langOther])
		}
		if todo&wd.provided != 0 {
			lang = max(lang, q.wLang[langProvided])
		}
		if todo&^(wd.first|wd.other|wd.provided) != 0 {
			lang = max(lang, q.wLang[langInterpreter])
		}
	}
	var union uint64
	for n, k := range q.chanCode {
		if mk.channels[k][cw]&todo != 0 {
			union |= 1 << n
		}
	}
	v := q.restMax + lang + q.chanWeight(union)
	if len(q.wSpec) > 0 {
		var any uint64
		for _, k := range q.crimeCode {
			any |= mk.crimes[k][cw]
		}
		for _, k := range q.flagCode {
			any |= mk.flags[k][cw]
		}
		if any&todo != 0 {
			v += q.specMax
		} else {
			v += q.specNone
		}
	}
	return v
}

// checkRest checks the constraints constrain left: language and channel
// of a service speaking a language without a bit (slowLang), and when
// slow, the constraints constrain does not check (accessibility, open
// now), or all of them for a service of slowLang. lang is the language level constrain found,
// shared the service's channels the profile accepts.
func (q *query) checkRest(f *features, c *chunk, j int32, shared uint64, lang int, slowLang, slow bool) (code, level int, waived bool) {
	switch {
	case slowLang:
		if lang = q.language(f, c, j); lang == langNone {
			return cLanguage, lang, false
		}
		if shared == 0 {
			return cChannel, lang, false
		}
		if slow {
			return q.check(f, c, j, shared)
		}
	case slow && q.unbounded:
		return q.check(f, c, j, shared)
	case slow:
		// constrain has checked every constraint before accessibility
		// and open now on the word's bitsets.
		code, waived := q.checkLast(f, c, j, shared)
		return code, lang, waived
	}
	return cNone, lang, false
}

// loadNeeds reads the bitsets of the profile's needs for the word.
func (r *ranker) loadNeeds(wd *word) {
	mk, cw := &wd.c.m, wd.cw
	for n, k := range r.q.needCode {
		r.needW[n] = mk.needs[k][cw]
	}
}

// load reads the bitsets of the word the bitset path needs.
func (r *ranker) load(wd *word) {
	q, mk, cw := r.q, &wd.c.m, wd.cw
	r.loadNeeds(wd)
	for n, k := range q.chanCode {
		r.sc.chanW[n] = mk.channels[k][cw]
	}
	for n, k := range q.crimeCode {
		r.sc.crimeW[n] = mk.crimes[k][cw]
	}
	for n, k := range q.flagCode {
		r.sc.flagW[n] = mk.flags[k][cw]
	}
	r.waitW, r.specW = mk.waitlist[cw], mk.specialist[cw]
	r.locW, r.multiW, r.remoteW = mk.hasLoc[cw], mk.multiLoc[cw], mk.remote[cw]
}

// fromMasks scores the eligible candidate at bit bi of wd from the
// bitsets loaded by load.
func (r *ranker) fromMasks(wd *word, bi int) {
	q, sc := r.q, r.sc
	i := wd.base + int32(bi)
	compact := 0
	for n := range q.needBits {
		compact |= int(r.needW[n]>>bi&1) << n
	}
	cover := uint64(compact)
	proper := cover
	if q.cross {
		// As fromFeatures finds them (none serves a country without a
		// dense id: those are scored there).
		proper = 0
		if wd.here>>bi&1 != 0 {
			proper |= cover &^ q.ongoing
		}
		if wd.home>>bi&1 != 0 {
			proper |= cover & q.ongoing
		}
		compact |= int(proper) << len(q.needBits)
	}
	ci := int(sc.classIdx[compact])
	if ci < 0 {
		ci = sc.class(q, cover, proper, r.k)
		r.last = -1 // sc.classes may have moved
	}
	cl := &sc.classes[ci]
	met := bits.OnesCount64(cover)
	keyMax, distMax := r.keyMax, r.distMax
	if r.multiW>>bi&1 != 0 {
		keyMax, distMax = r.keyMulti, r.distMulti
	}
	// Each bound keeps a candidate whose key may equal the worst ranked:
	// a tie is broken by name and id (query.better), so it may still
	// enter, and a bound summed in another order than the key can be a
	// rounding error below it (boundSlack).
	if q.wNeeds[met]+keyMax+boundSlack < cl.worst {
		return // cannot enter the ranking: the word is too far
	}
	var chm uint64
	for n, w := range sc.chanW {
		chm |= (w >> bi & 1) << n
	}
	in := inputs{
		met:    met,
		lang:   wd.level(bi),
		chans:  chm,
		cover:  cover,
		proper: proper,
	}
	if len(q.wSpec) > 0 {
		state := 0
		if q.nCrimes > 0 && r.specW>>bi&1 != 0 {
			state = 1
			for _, w := range sc.crimeW {
				state += int(w >> bi & 1)
			}
		}
		fm := 0
		for _, w := range sc.flagW {
			fm += int(w >> bi & 1)
		}
		in.spec = state*(q.nFlags+1) + fm
	}
	base := q.baseScore(&in)
	obs := q.wObs[r.waitW>>bi&1]
	if base+distMax+obs+boundSlack < cl.worst {
		return // cannot enter the ranking, however near in its word
	}
	dist := 0.0
	if q.hasPoint {
		dist = q.w[compDistance] * q.distanceAt(wd.c, i&chunkMask, r.locW>>bi&1 != 0, r.multiW>>bi&1 != 0, r.remoteW>>bi&1 != 0, chm)
	}
	score := total(base, dist, obs)
	if score >= cl.worst {
		sc.offer(q, cl, entry{i: i, score: score, key: score}, r.k)
	}
}

// fromFeatures scores the eligible candidate at bit bi of wd; shared are
// its channels the profile accepts, lang and waived what the constraints
// found. It reads what it can from the chunk's bitsets, and the service's
// features (a cache miss for most candidates) only for the few whose
// score needs them: those serving a country without a dense id, with
// statistics, and the distance of those with several locations.
func (r *ranker) fromFeatures(wd *word, bi int, shared uint64, lang int, waived bool) {
	q, sc, c := r.q, r.sc, wd.c
	mk, cw := &c.m, wd.cw
	i := wd.base + int32(bi)
	j := i & chunkMask
	var cover uint64
	if r.skips || r.maskPath {
		// The bitsets of the word's needs are loaded.
		for n := range q.needBits {
			cover |= (r.needW[n] >> bi & 1) << n
		}
	} else {
		cover = q.coverOf(c, j)
	}
	proper := cover
	if q.cross {
		if wd.countrySlow>>bi&1 != 0 {
			proper = q.proper(&c.f[j], c, j, cover)
		} else {
			proper = 0
			if wd.here>>bi&1 != 0 {
				proper |= cover &^ q.ongoing
			}
			if wd.home>>bi&1 != 0 {
				proper |= cover & q.ongoing
			}
		}
	}
	cl := r.classOf(cover, proper)
	multi := mk.multiLoc[cw]>>bi&1 != 0
	keyMax, distMax := r.keyMax, r.distMax
	if multi {
		keyMax, distMax = r.keyMulti, r.distMulti
	}
	if q.wNeeds[bits.OnesCount64(cover)]+keyMax+boundSlack < cl.worst {
		return // cannot enter the ranking: the word is too far
	}
	in := q.inputs(c, j, cover, proper, shared, lang, waived)
	base := q.baseScore(&in)
	bonus := 0.0
	if r.bonusOn {
		bonus = q.bonusOf(mk.always[cw]>>bi&1 != 0, c, j)
	}
	obs := q.observedMax(mk.waitlist[cw]>>bi&1 != 0)
	if bonus+base+distMax+obs+boundSlack < cl.worst {
		return // cannot enter the ranking, however near and responsive
	}
	dist := 0.0
	if q.hasPoint {
		dist = q.w[compDistance] * q.distanceAt(c, j, mk.hasLoc[cw]>>bi&1 != 0, multi, mk.remote[cw]>>bi&1 != 0, shared)
	}
	e := entry{i: i}
	if q.stats != nil {
		e.st, e.known = q.stats.ServiceStats(c.svc[j].ID)
		obs = q.observedScore(&c.f[j], c, j, e.st, e.known)
	}
	e.score = total(base, dist, obs)
	e.key = bonus + e.score
	if e.key >= cl.worst {
		sc.offer(q, cl, e, r.k)
	}
}

// classOf returns the class of the candidates meeting exactly cover (and
// proper), creating it when new.
func (r *ranker) classOf(cover, proper uint64) *class {
	sc, q := r.sc, r.q
	if r.last >= 0 && cover == r.lastCover && proper == r.lastProper {
		return &sc.classes[r.last]
	}
	r.last = -1
	if r.dense {
		ck := cover
		if q.cross {
			ck |= proper << len(q.needBits)
		}
		r.last = int(sc.classIdx[ck])
	}
	if r.last < 0 {
		r.last = sc.class(q, cover, proper, r.k)
	}
	r.lastCover, r.lastProper = cover, proper
	return &sc.classes[r.last]
}
