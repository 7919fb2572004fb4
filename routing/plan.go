package routing

import (
	"maps"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"time"

	"github.com/invictus-network/invictus/events"
)

// Reasons for unmatched needs (events.UnmatchedNeed.Reason).
const (
	// UnmatchedNoService: no service offering the need serves the victim's
	// location (or the residence country remotely); UnmatchedNeed.Nowhere
	// says when none offers it anywhere.
	UnmatchedNoService = "no_service"
	// UnmatchedExcluded: services offer the need there, but every one
	// failed a hard constraint (see Plan.Excluded).
	UnmatchedExcluded = "excluded"
)

// Limits of a candidate's explanation, as the planned event allows.
const (
	maxReasons   = 16
	maxReasonLen = 200
)

// Plan is the matcher's answer for one profile: need groups, each to be
// met by one placement with a primary candidate and ranked fallbacks, and
// the needs nothing covers. [Plan.Event] turns it into the payload of
// referral.planned.
type Plan struct {
	// Revision is the directory revision the plan was made from.
	Revision uint64
	// Urgency is the profile's urgency; for "emergency" only services open
	// now were considered, 24/7 services first, and the sender must be
	// told to call 112 as well.
	Urgency string
	// Groups are the placements in the order the greedy set cover chose
	// them; their Placement ids are p1, p2, ...
	Groups []Group
	// Unmatched are the needs no eligible candidate covers, in profile
	// order, with UnmatchedNoService or UnmatchedExcluded, the number of
	// services that offer each and how many each hard constraint removed.
	Unmatched []events.UnmatchedNeed
	// Relaxed are, for the unmatched needs, the services that fail only
	// one constraint the victim's own needs set (accessibility, channel,
	// open now): options a caseworker may discuss with the victim, apart
	// from Groups, never offered by the lifecycle.
	Relaxed []Relaxed
	// Excluded counts the candidates excluded by each hard constraint (the
	// Constraint* names), each under the first it failed; nil when none.
	Excluded map[string]int
	// Considered is the number of candidates the index returned;
	// Eligible the number that passed every hard constraint.
	Considered int
	Eligible   int
}

// Group is a set of needs to be met by one placement, with its candidates
// best first: each covers all of Needs and passes every hard constraint.
type Group struct {
	Placement  string
	Needs      []string
	Candidates []Candidate
}

// Candidate is one ranked service of a group with what explains its rank.
type Candidate struct {
	Service      string
	Organisation string
	// Name is the service's name, for display.
	Name string
	// Covers are the needs of the group it is planned for.
	Covers []string
	// Score is the weighted mean of Components, in [0, 1].
	Score float64
	// Components are the score components that apply to the profile (the
	// Component* names), each in [0, 1].
	Components map[string]float64
	// Reasons is a short explanation in codes and English, e.g. "covers
	// safety.shelter and support.emotional", "speaks pt and en", "3.4 km",
	// "accepting": what the referral.planned event carries.
	Reasons []string
	// Why are the same reasons in codes, to be put in the words of the
	// caseworker's language with [Reason.Words].
	Why []Reason
}

// Relaxed are the best services for an unmatched need that fail one
// hard constraint only, Constraint (a Constraint* name).
type Relaxed struct {
	Need       string
	Constraint string
	Candidates []Candidate
}

// relaxable are the constraints a plan may show relaxed: those that come
// from the victim's own needs of access, channel and time. The others
// (the service's eligibility, capacity, a language she has no interpreter
// for, her own organisation) are never relaxed.
const relaxable = 1<<cAccessibility | 1<<cChannel | 1<<cOpenNow

// Primary returns the first candidate of the group.
func (g Group) Primary() Candidate { return g.Candidates[0] }

// Event returns the plan as the payload of referral.planned. Scores and
// components are rounded to four decimals.
func (p *Plan) Event() events.Planned {
	ev := events.Planned{DirectoryRevision: p.Revision, Groups: make([]events.PlanGroup, 0, len(p.Groups))}
	for _, g := range p.Groups {
		ev.Groups = append(ev.Groups, events.PlanGroup{Placement: g.Placement, Needs: slices.Clone(g.Needs), Candidates: eventCandidates(g.Candidates)})
	}
	for _, u := range p.Unmatched {
		u.Excluded = maps.Clone(u.Excluded)
		ev.Unmatched = append(ev.Unmatched, u)
	}
	if len(p.Excluded) > 0 {
		ev.Excluded = maps.Clone(p.Excluded)
	}
	for _, r := range p.Relaxed {
		ev.Relaxed = append(ev.Relaxed, events.RelaxedGroup{Need: r.Need, Constraint: r.Constraint, Candidates: eventCandidates(r.Candidates)})
	}
	return ev
}

func eventCandidates(cs []Candidate) []events.Candidate {
	out := make([]events.Candidate, 0, len(cs))
	for _, c := range cs {
		comps := make(map[string]float64, len(c.Components))
		for k, v := range c.Components {
			comps[k] = round4(v)
		}
		out = append(out, events.Candidate{
			Service: c.Service, Organisation: c.Organisation, Covers: slices.Clone(c.Covers),
			Score: round4(c.Score), Components: comps, Reasons: slices.Clone(c.Reasons),
		})
	}
	return out
}

func round4(v float64) float64 { return math.Round(v*1e4) / 1e4 }

// plan groups the ranked classes into placements by greedy weighted set
// cover and explains the chosen candidates.
func (sc *scratch) plan(q *query, k int, t *tally) *Plan {
	p := &Plan{Revision: q.snap.Revision(), Urgency: q.urgency, Considered: t.considered, Eligible: t.eligible}
	for c := cNone + 1; c < numConstraints; c++ {
		if t.excluded[c] > 0 {
			if p.Excluded == nil {
				p.Excluded = make(map[string]int)
			}
			p.Excluded[constraintNames[c]] = t.excluded[c]
		}
	}
	var coverable, properly uint64
	for _, cl := range sc.classes {
		coverable |= cl.cover
		properly |= cl.proper
	}
	// In a cross-border case, the needs that services of their preferred
	// country can meet are planned with those services first. Every other
	// case has proper equal to cover, so this covers all it can.
	groups := sc.cover(q, nil, properly, true)
	// The rest of a cross-border case's needs: first added to a placement
	// whose primary meets them anyway, then covered by any service.
	rest := coverable &^ properly
	for _, b := range q.needBits {
		if rest&b == 0 {
			continue
		}
		for gi := range groups {
			if q.coverAt(groups[gi].primary.i)&b != 0 {
				groups[gi].any |= b
				rest &^= b
				break
			}
		}
	}
	groups = sc.cover(q, groups, rest, false)

	p.Groups = make([]Group, 0, len(groups))
	for _, g := range groups {
		needs := g.proper | g.any
		group := Group{Placement: "p" + strconv.Itoa(len(p.Groups)+1), Needs: q.codes(needs)}
		ranked := sc.ranking(q, g, k)
		group.Candidates = make([]Candidate, 0, len(ranked))
		q.explainN = len(ranked) // their reasons in one array
		for _, e := range ranked {
			group.Candidates = append(group.Candidates, q.candidate(e, needs, cNone))
		}
		p.Groups = append(p.Groups, group)
	}
	q.explainN = 0
	if gaps := q.needs &^ coverable; gaps != 0 {
		sc.gaps(q, p, gaps, k)
	}
	return p
}

// gapKey is a need of the profile (index in q.needBits) and a constraint.
type gapKey struct{ need, code int }

// gaps explains the needs of gaps, which no eligible candidate covers: it
// reads the candidates offering them again to count, need by need, those
// each hard constraint removed (under the first they fail), and to rank
// those that fail one relaxable constraint only. The constraints are
// decided a word of 64 candidates at a time on the chunks' bitsets, as
// query.constrain and ranker.rank decide them; only the candidates the
// bitsets leave open (a language without a bit, several locations to
// check for accessibility, opening hours without a table) and those
// ranked as relaxed options are read one by one, by query.failures.
func (sc *scratch) gaps(q *query, p *Plan, gaps uint64, k int) {
	if q.unbounded {
		sc.gapsOneByOne(q, p, gaps, k)
		return
	}
	nn := len(q.needBits)
	offered := make([]int, nn)
	excluded := make([][numConstraints]int, nn)
	relaxed := map[gapKey][]entry{}
	q.ownAt = 0 // ownWord reads words in increasing order
	var fail [numConstraints]uint64
	for wi, w := range sc.words {
		if w == 0 {
			continue
		}
		c := q.t.chunks[wi>>(chunkBits-6)]
		cw := wi & (chunkWords - 1)
		mk := &c.m
		var has uint64
		for n, b := range q.needBits {
			if gaps&b != 0 {
				has |= mk.needs[q.needCode[n]][cw]
			}
		}
		if w &= has & mk.present[cw]; w == 0 {
			continue
		}
		// fail[code]: the candidates failing the constraint, whatever
		// they fail before it.
		fail[cInactive] = w &^ mk.active[cw]
		fail[cOwn] = 0
		if len(q.own) > 0 {
			fail[cOwn] = w & q.ownWord(wi)
		}
		fail[cEligibility] = w &^ q.eligibleWord(mk, cw, w)
		fail[cCapacity] = w & mk.full[cw]
		// Read one by one: what the bitsets do not decide.
		var one uint64
		if q.langUnknown {
			one |= w & mk.langSlow[cw]
		}
		spoken := uint64(0)
		if q.interp {
			spoken = ^uint64(0)
		}
		if q.langDense1 >= 0 {
			spoken |= mk.langs[q.langDense1][cw]
		}
		for _, id := range q.langDenseRest {
			spoken |= mk.langs[id][cw]
		}
		fail[cLanguage] = w &^ spoken
		var reach uint64
		for _, ck := range q.chanCode {
			reach |= mk.channels[ck][cw]
		}
		fail[cChannel] = w &^ reach
		fail[cAccessibility], fail[cOpenNow] = 0, 0
		if q.acc != 0 {
			ok, _, slow := q.accessWord(mk, cw)
			one |= w & slow
			fail[cAccessibility] = w &^ (ok | slow)
		}
		if q.emergency {
			slow := mk.openSlow[cw]
			one |= w & slow
			fail[cOpenNow] = w &^ (c.openAt(cw, q) | slow)
		}
		// The first constraint each fails, and those that fail exactly
		// one, relaxable.
		var first [numConstraints]uint64
		var done, once, twice uint64
		for code := cNone + 1; code < numConstraints; code++ {
			first[code] = fail[code] &^ done
			done |= fail[code]
			twice |= once & fail[code]
			once |= fail[code]
		}
		first[cNone] = w &^ done
		ranked := once &^ twice & (fail[cAccessibility] | fail[cChannel] | fail[cOpenNow])
		fast := w &^ one
		for n, b := range q.needBits {
			if gaps&b == 0 {
				continue
			}
			nw := mk.needs[q.needCode[n]][cw] & fast
			if nw == 0 {
				continue
			}
			offered[n] += bits.OnesCount64(nw)
			for code := range first {
				excluded[n][code] += bits.OnesCount64(nw & first[code])
			}
		}
		for m := one | ranked&fast; m != 0; m &= m - 1 {
			sc.gapOne(q, c, int32(wi<<6+bits.TrailingZeros64(m)), gaps, one>>bits.TrailingZeros64(m)&1 != 0, offered, excluded, relaxed)
		}
	}
	sc.explainGaps(q, p, gaps, k, offered, func(n int) map[string]int {
		if offered[n] == 0 {
			return nil
		}
		m := make(map[string]int)
		for code, v := range excluded[n] {
			if v > 0 {
				m[constraintNames[code]] = v
			}
		}
		return m
	}, relaxed)
}

// judgeGap reads the candidate i of chunk c with query.failures: m the
// constraints it fails, cover the needs it offers, and, when it fails one
// relaxable constraint only (one), its entry scored as a relaxed option.
func (q *query) judgeGap(c *chunk, i int32) (m uint16, cover uint64, one bool, e entry) {
	j := i & chunkMask
	f := &c.f[j]
	m, lang, waived := q.failures(f, c, j, q.sharedOf(c, j), false)
	one = m&(m-1) == 0 && m&relaxable != 0
	cover = q.coverOf(c, j)
	if one {
		if q.stats != nil {
			e.st, e.known = q.stats.ServiceStats(c.svc[j].ID)
		}
		e.i = i
		e.score = total(q.fixedScore(f, c, j, cover, q.proper(f, c, j, cover), lang, waived), 0, q.observedScore(f, c, j, e.st, e.known))
		e.key = e.score
	}
	return m, cover, one, e
}

// gapOne reads the candidate i of chunk c offering a need of gaps with
// query.failures: counted when count (the bitsets left it undecided), and
// ranked in relaxed when it fails one relaxable constraint only.
func (sc *scratch) gapOne(q *query, c *chunk, i int32, gaps uint64, count bool, offered []int, excluded [][numConstraints]int, relaxed map[gapKey][]entry) {
	m, cover, one, e := q.judgeGap(c, i)
	for n, b := range q.needBits {
		if gaps&b == 0 || cover&b == 0 {
			continue
		}
		if count {
			offered[n]++
			excluded[n][firstConstraint(m)]++
		}
		if one {
			kk := gapKey{n, firstConstraint(m)}
			relaxed[kk] = append(relaxed[kk], e)
		}
	}
}

// gapsOneByOne is gaps reading every candidate offering a need of gaps
// with query.failures: the reference the tests hold gaps to
// (NewUnboundedMatcher).
func (sc *scratch) gapsOneByOne(q *query, p *Plan, gaps uint64, k int) {
	var (
		offered  = make([]int, len(q.needBits))
		excluded = make([]map[string]int, len(q.needBits))
		relaxed  = map[gapKey][]entry{}
	)
	for wi, w := range sc.words {
		if w == 0 {
			continue
		}
		c := q.t.chunks[wi>>(chunkBits-6)]
		cw := wi & (chunkWords - 1)
		var has uint64
		for n, b := range q.needBits {
			if gaps&b != 0 {
				has |= c.m.needs[q.needCode[n]][cw]
			}
		}
		for w &= has & c.m.present[cw]; w != 0; w &= w - 1 {
			i := int32(wi<<6 + bits.TrailingZeros64(w))
			m, cover, one, e := q.judgeGap(c, i)
			for n, b := range q.needBits {
				if gaps&b == 0 || cover&b == 0 {
					continue
				}
				offered[n]++
				if excluded[n] == nil {
					excluded[n] = make(map[string]int)
				}
				excluded[n][constraintNames[firstConstraint(m)]]++
				if one {
					kk := gapKey{n, firstConstraint(m)}
					relaxed[kk] = append(relaxed[kk], e)
				}
			}
		}
	}
	sc.explainGaps(q, p, gaps, k, offered, func(n int) map[string]int { return excluded[n] }, relaxed)
}

// explainGaps adds to p the unmatched needs of gaps with the counts gaps
// found, and their relaxed options, the best k of each.
func (sc *scratch) explainGaps(q *query, p *Plan, gaps uint64, k int, offered []int, excluded func(n int) map[string]int, relaxed map[gapKey][]entry) {
	for n, b := range q.needBits {
		if gaps&b == 0 {
			continue
		}
		u := events.UnmatchedNeed{Need: q.needList[n], Reason: UnmatchedNoService, Offered: offered[n], Excluded: excluded(n)}
		if offered[n] > 0 {
			u.Reason = UnmatchedExcluded
		} else {
			// "No service offers it here" or "nowhere".
			u.Nowhere = len(q.snap.ByNeed(u.Need)) == 0
		}
		p.Unmatched = append(p.Unmatched, u)
		for code := cNone + 1; code < numConstraints; code++ {
			es := relaxed[gapKey{n, code}]
			if len(es) == 0 {
				continue
			}
			slices.SortFunc(es, func(a, b entry) int {
				if q.better(&a, &b) {
					return -1
				}
				return 1
			})
			r := Relaxed{Need: q.needList[n], Constraint: constraintNames[code]}
			for _, e := range es[:min(k, len(es))] {
				r.Candidates = append(r.Candidates, q.candidate(e, b, code))
			}
			p.Relaxed = append(p.Relaxed, r)
		}
	}
}

// planGroup is a group being planned: its candidates must meet the needs
// of proper in their preferred country and those of any anywhere.
type planGroup struct {
	proper, any uint64
	primary     entry
}

// cover appends to groups those of a greedy weighted set cover of the
// needs of want: by the classes' proper needs when proper is true, else by
// all the needs they cover.
func (sc *scratch) cover(q *query, groups []planGroup, want uint64, proper bool) []planGroup {
	mask := func(cl *class) uint64 {
		if proper {
			return cl.proper
		}
		return cl.cover
	}
	for uncovered := want; uncovered != 0; {
		best, bestNew, bestCost := -1, 0, 0.0
		for ci := range sc.classes {
			cl := &sc.classes[ci]
			n := popcount(mask(cl) & uncovered)
			if n == 0 {
				continue
			}
			top := &sc.entries[cl.off]
			cost := (1 + CoverQuality*(1-top.score)) / float64(n)
			if best < 0 || cost < bestCost || (cost == bestCost && (n > bestNew ||
				(n == bestNew && q.better(top, &sc.entries[sc.classes[best].off])))) {
				best, bestNew, bestCost = ci, n, cost
			}
		}
		cl := &sc.classes[best]
		g := planGroup{primary: sc.entries[cl.off]}
		if proper {
			g.proper = cl.proper & uncovered
		} else {
			g.any = cl.cover & uncovered
		}
		uncovered &^= g.proper | g.any
		groups = append(groups, g)
	}
	return groups
}

// ranking returns the best k candidates of the group's needs, in
// scratch memory that the next call reuses.
func (sc *scratch) ranking(q *query, g planGroup, k int) []entry {
	out := sc.ranked[:0]
	for i := range sc.classes {
		cl := &sc.classes[i]
		if cl.proper&g.proper == g.proper && cl.cover&g.any == g.any {
			out = append(out, sc.entries[cl.off:cl.off+cl.n]...)
		}
	}
	slices.SortFunc(out, func(a, b entry) int {
		if q.better(&a, &b) {
			return -1
		}
		if q.better(&b, &a) {
			return 1
		}
		return 0
	})
	sc.ranked = out
	return out[:min(k, len(out))]
}

// coverAt returns the profile's needs service i offers.
func (q *query) coverAt(i int32) uint64 {
	return q.coverOf(q.t.chunks[i>>chunkBits], i&chunkMask)
}

// codes returns the profile's needs in mask, in profile order.
func (q *query) codes(mask uint64) []string {
	out := make([]string, 0, popcount(mask))
	for j, b := range q.needBits {
		if mask&b != 0 {
			out = append(out, q.needList[j])
		}
	}
	return out
}

// candidate explains the ranked entry e planned for the needs of group;
// relaxed is the one constraint it fails (cNone for a candidate of the
// plan's groups).
func (q *query) candidate(e entry, group uint64, relaxed int) Candidate {
	f, c := q.t.at(e.i)
	j := e.i & chunkMask
	s := c.svc[j]
	cover := q.coverOf(c, j)
	_, lang, waived := q.failures(f, c, j, q.sharedOf(c, j), false)
	comps := q.components(f, c, j, cover, q.proper(f, c, j, cover), lang, waived, e.st, e.known)
	// Sized for the components that apply: most profiles have at most
	// eight, which a map holds in one group, without a table.
	n := 0
	for _, w := range q.w {
		if w > 0 {
			n++
		}
	}
	m := make(map[string]float64, n)
	for i, w := range q.w {
		if w > 0 {
			m[componentNames[i]] = comps[i]
		}
	}
	why := q.reasons(f, c, j, &e, group, cover, lang, waived, relaxed)
	return Candidate{
		Service: s.ID, Organisation: s.Organisation, Name: s.Name, Covers: q.codes(group),
		Score: e.score, Components: m, Reasons: codeTexts(why), Why: why,
	}
}

// cut returns an empty slice with room for n, cut from the array of
// *pool (whose length counts what was cut before), which is replaced by a
// new one with room for batch such slices when it lacks room. The slice's
// capacity ends at n: an append past it copies.
func cut[T any](pool *[]T, n, batch int) []T {
	if cap(*pool)-len(*pool) < n {
		*pool = make([]T, 0, n*max(batch, 1))
	}
	at := len(*pool)
	*pool = (*pool)[:at+n]
	return (*pool)[at : at : at+n]
}

// reasons explains a candidate: what it meets and what it does not, in
// codes (see [Reason]).
func (q *query) reasons(f *features, c *chunk, j int32, e *entry, group, cover uint64, lang int, waived bool, relaxed int) []Reason {
	s := c.svc[j]
	r := cut(&q.reasonPool, 14, q.explainN)
	// The reasons' terms share one array, each reason a slice of it.
	arena, mark := cut(&q.termPool, 12, q.explainN), 0
	terms := func(grown []Term) []Term {
		arena = grown
		t := arena[mark:len(arena):len(arena)]
		mark = len(arena)
		return t
	}
	add := func(code string, ts []Term) *Reason {
		if len(r) == maxReasons {
			return &Reason{}
		}
		r = append(r, Reason{Code: code, Terms: ts})
		return &r[len(r)-1]
	}
	switch relaxed {
	case cAccessibility:
		own := q.accOf(c.m.acc, j)
		missing := q.acc &^ (own | q.accOf(c.m.accAny, j))
		if missing == 0 {
			missing = q.place &^ own
		}
		add(ReasonRelaxedAccessibility, terms(q.accTerms(arena, missing)))
	case cChannel:
		add(ReasonRelaxedChannel, terms(restrictedTerms(arena, "channels", q.t.num.channels, c.m.channels, false, j)))
	case cOpenNow:
		add(ReasonRelaxedOpenNow, nil)
	}
	add(ReasonCovers, terms(q.needTerms(arena, group)))
	if extra := cover &^ group; extra != 0 {
		add(ReasonAlsoOffers, terms(q.needTerms(arena, extra)))
	}
	if missing := q.needs &^ cover; missing != 0 {
		add(ReasonNotOffered, terms(q.needTerms(arena, missing)))
	}
	if q.preferred != "" && s.Organisation == q.preferred {
		add(ReasonPreferred, nil)
	}
	num := q.t.num
	spec := terms(codeTerms(codeTerms(arena, "crimes", num.crimes, q.crimeCode, c.m.crimes, j), "flags", num.flags, q.flagCode, c.m.flags, j))
	if len(spec) > 0 {
		add(ReasonSpecialised, spec)
	}
	if q.nCrimes > 0 && c.m.specialist[j>>6]>>(j&63)&1 != 0 && q.countBits(c.m.crimes, q.crimeCode, j) == 0 {
		add(ReasonOtherCrimes, terms(codeTerms(arena, "crimes", num.crimes, q.crimeCode, nil, j)))
	}
	switch lang {
	case langFirst, langOther:
		add(ReasonSpeaks, terms(langTerms(arena, q.langs, s.Languages)))
		if lang == langOther {
			add(ReasonNotFirstLanguage, terms(append(arena, Term{"languages", q.langs[0]})))
		}
	case langProvided:
		add(ReasonInterpreterProvided, nil)
	case langInterpreter:
		add(ReasonInterpreterArranged, nil)
	}
	shared := q.sharedOf(c, j)
	remote := shared & q.remote
	if q.hasPoint && f.bits&fHasLoc != 0 {
		_, km, key := q.nearest(f, c, j)
		add(ReasonDistance, nil).Km = km
		if key.land != 0 && q.land != 0 && key.land != q.land {
			add(ReasonAcrossWater, nil)
		}
		if key.country != 0 && q.countryKey != 0 && key.country != q.countryKey {
			add(ReasonAcrossBorder, nil)
		}
	}
	switch {
	case f.bits&fRemote != 0 && remote != 0:
		add(ReasonRemote, terms(q.chanTerms(arena, remote)))
	case f.bits&fHasLoc == 0:
		add(ReasonNoLocation, nil)
	}
	if shared != 0 {
		add(ReasonChannels, terms(q.chanTerms(arena, shared)))
	}
	if shared&q.first == 0 {
		add(ReasonNotFirstChannel, terms(q.chanTerms(arena, q.first)))
	}
	if q.acc != 0 {
		place := q.place
		met := q.acc
		if waived {
			met &^= place
		}
		if met != 0 {
			add(ReasonMeetsAccessibility, terms(q.accTerms(arena, met)))
		}
		if waived {
			add(ReasonAccessibilityWaived, terms(q.accTerms(arena, place)))
		}
	}
	if f.bits&fWaitlist != 0 {
		add(ReasonWaitingList, nil)
	} else {
		add(ReasonAccepting, nil)
	}
	if e.known && e.st.OpenOffers > 0 {
		add(ReasonOpenOffers, nil).N = e.st.OpenOffers
	}
	if f.bits&fAlways != 0 {
		add(ReasonAlwaysOpen, nil)
	} else if q.emergency {
		add(ReasonOpenNow, nil)
	}
	if w, bi := j>>6, j&63; (c.m.anyAge[w]&c.m.anyGender[w])>>bi&1 == 0 {
		who := restrictedTerms(arena, "age_bands", num.ages, c.m.ages, c.m.anyAge[w]>>bi&1 != 0, j)
		add(ReasonOnlyFor, terms(restrictedTerms(who, "genders", num.genders, c.m.genders, c.m.anyGender[w]>>bi&1 != 0, j)))
	}
	if _, home := q.where(f, c, j); q.cross && home {
		add(ReasonServesResidence, terms(append(arena, Term{"countries", q.residence})))
	}
	if e.known && e.st.Answered > 0 {
		a := add(ReasonAcceptedOf, nil)
		a.N, a.M = min(e.st.Accepted, e.st.Answered), e.st.Answered
		if e.st.ResponseTime > 0 {
			code, n := roundDuration(e.st.ResponseTime)
			add(code, nil).N = n
		}
	} else if s.ResponseHours > 0 {
		add(ReasonPromisesHours, nil).N = s.ResponseHours
	}
	return r
}

// formatKm writes a number of kilometres as "3.4" below 10, "27" above.
func formatKm(d float64) string { return string(appendKm(nil, d)) }

// appendKm appends d as formatKm writes it.
func appendKm(dst []byte, d float64) []byte {
	if d < 9.95 {
		return strconv.AppendFloat(dst, d, 'f', 1, 64)
	}
	return strconv.AppendFloat(dst, d, 'f', 0, 64)
}

// roundDuration rounds a response time to minutes, hours or days: the
// reason code of its unit and the number.
func roundDuration(d time.Duration) (string, int) {
	h := d.Hours()
	switch {
	case h < 1:
		return ReasonAnswersInMinutes, int(math.Max(1, math.Round(h*60)))
	case h < 47.5:
		return ReasonAnswersInHours, int(math.Round(h))
	}
	return ReasonAnswersInDays, int(math.Round(h / 24))
}
