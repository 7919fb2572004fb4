package routing

import (
	"math"
	"math/bits"
	"slices"
	"time"

	"github.com/invictus-network/invictus/directory"
	"github.com/invictus-network/invictus/events"
)

// Score components: the keys of [Candidate.Components] and of the
// components of the referral.planned event. Each value lies in [0, 1]; the
// score is their weighted mean (see [Weights]) over the components that
// apply to the profile.
const (
	// ComponentNeeds is the share of the profile's needs the service meets.
	ComponentNeeds = "needs"
	// ComponentSpecialisation rates the service's specialisation in the
	// profile's crime types and flags: for crimes, a specialist in one of
	// them scores 0.5 plus half the share of the profile's crimes it
	// covers, a generalist (no crimes listed) [SpecialisationGeneralist],
	// a specialist in other crimes [SpecialisationOther]; for flags, the
	// share of the profile's flags it is specialised for. Both parts are
	// averaged. It applies when the profile has crimes or flags.
	ComponentSpecialisation = "specialisation"
	// ComponentLanguage is [LanguageFirst] when the service speaks the
	// victim's first language, [LanguageOther] for another of the victim's
	// languages; without a shared language (only when the victim accepts
	// an interpreter) [LanguageInterpreterProvided] when the service
	// provides the interpreter, [LanguageInterpreter] when one must be
	// arranged.
	ComponentLanguage = "language"
	// ComponentDistance decays with the distance from the victim to the
	// service's nearest location: exp(-d/scale), scale
	// [Config.DistanceScaleKm]. A service without a location (a helpline,
	// a safe house whose address is not public) scores
	// [DistanceNoLocation], and so at least does a remote service reachable
	// through a remote channel the victim accepts. It applies when the
	// profile has coordinates.
	ComponentDistance = "distance"
	// ComponentChannel rates the channels: half for offering the victim's
	// first (preferred) channel, half for the share of the victim's
	// acceptable channels it offers.
	ComponentChannel = "channel"
	// ComponentAccessibility is the share of the victim's accessibility
	// needs that the service or one of its locations meets; a need of the
	// place (wheelchair, step_free, hearing_loop, quiet_space, childcare)
	// that does not arise because the service can be used remotely or at
	// home counts [AccessibilityWaived]. It applies when the profile has
	// accessibility needs.
	ComponentAccessibility = "accessibility"
	// ComponentLoad is the free share of the service's capacity: 1 minus
	// its open offers over Capacity.MaxOpen ([LoadAssumedMaxOpen] when
	// unknown), times [LoadWaitlist] when it has a waiting list.
	ComponentLoad = "load"
	// ComponentAcceptance is the observed share of offers the service
	// accepted, smoothed towards [PriorScore] with [PriorWeight]
	// pseudo-offers: [PriorScore] until there is data.
	ComponentAcceptance = "acceptance"
	// ComponentResponseTime rates the observed time to answer an offer:
	// 1/(1+t/scale) with the scale of the profile's urgency
	// ([ResponseScaleRoutine] ...), smoothed like acceptance.
	ComponentResponseTime = "response_time"
	// ComponentResidence applies to cross-border cases (a residence
	// country other than the location's): the share of the needs the
	// service meets for which it serves the preferred country, the
	// residence country for ongoing support (emotional, psychological,
	// trauma and financial support, compensation, family support,
	// cross-border assistance) and the country of the location for the
	// rest.
	ComponentResidence = "residence"
)

// Hard constraints: the keys of [Plan.Excluded]. A service failing one is
// never in a plan; it is counted under the first it fails, in this order.
const (
	// ConstraintInactive: the service does not take referrals.
	ConstraintInactive = "inactive"
	// ConstraintOwnOrganisation: the service belongs to the organisation
	// that refers the victim (see [WithReferrer]): a referral goes to
	// another organisation.
	ConstraintOwnOrganisation = "own_organisation"
	// ConstraintEligibility: the service is only for some age bands or
	// genders, and the profile does not state one of them (an unstated
	// gender does not meet a service only for women).
	ConstraintEligibility = "eligibility"
	// ConstraintCapacity: the service's capacity status is full.
	ConstraintCapacity = "capacity"
	// ConstraintLanguage: the service speaks none of the victim's
	// languages and she does not accept an interpreter
	// (Profile.InterpreterOK false): her choice binds, whether or not the
	// service could provide one.
	ConstraintLanguage = "language"
	// ConstraintChannel: the service offers none of the victim's
	// acceptable channels.
	ConstraintChannel = "channel"
	// ConstraintAccessibility: an accessibility need is met neither by the
	// service nor at one of its locations (needs of the place do not arise
	// when the service can be used through a channel other than in person).
	ConstraintAccessibility = "accessibility"
	// ConstraintOpenNow: for an emergency, the service is not open now in
	// its own time zone.
	ConstraintOpenNow = "open_now"
)

// Scoring constants. See the Component constants for how each is used.
const (
	LanguageFirst = 1.0
	LanguageOther = 0.6
	// LanguageInterpreter: an interpreter must be arranged.
	LanguageInterpreter = 0.15
	// LanguageInterpreterProvided: the service brings the interpreter,
	// which beats one the referrer must arrange.
	LanguageInterpreterProvided = 0.25

	DistanceNoLocation = 0.5

	// SpecialisationGeneralist is a service for every crime (no crimes
	// listed); SpecialisationOther a specialist in other crimes than the
	// victim's: not a neutral choice but a cost (a safe house for
	// domestic violence is not the place for a street assault).
	SpecialisationGeneralist = 0.5
	SpecialisationOther      = 0

	AccessibilityWaived = 0.5

	LoadWaitlist       = 0.3
	LoadAssumedMaxOpen = 10

	PriorScore  = 0.5
	PriorWeight = 4.0

	// ResponseScale* are the answer times that score 0.5 for each urgency:
	// half the default offer deadline.
	ResponseScaleEmergency = 7*time.Minute + 30*time.Second
	ResponseScaleUrgent    = time.Hour
	ResponseScaleSoon      = 12 * time.Hour
	ResponseScaleRoutine   = 36 * time.Hour
)

// Component indices.
const (
	compNeeds = iota
	compSpecialisation
	compLanguage
	compDistance
	compChannel
	compAccessibility
	compLoad
	compAcceptance
	compResponse
	compResidence
	numComponents
)

var componentNames = [numComponents]string{
	ComponentNeeds, ComponentSpecialisation, ComponentLanguage, ComponentDistance, ComponentChannel,
	ComponentAccessibility, ComponentLoad, ComponentAcceptance, ComponentResponseTime, ComponentResidence,
}

// Constraint indices; 0 is none.
const (
	cNone = iota
	cInactive
	cOwn
	cEligibility
	cCapacity
	cLanguage
	cChannel
	cAccessibility
	cOpenNow
	numConstraints
)

var constraintNames = [numConstraints]string{
	"", ConstraintInactive, ConstraintOwnOrganisation, ConstraintEligibility, ConstraintCapacity, ConstraintLanguage,
	ConstraintChannel, ConstraintAccessibility, ConstraintOpenNow,
}

// Language levels of a service for a profile.
const (
	langNone        = 0
	langInterpreter = 1 // to be arranged
	langProvided    = 2 // interpreter provided by the service
	langOther       = 3
	langFirst       = 4
)

// ongoingNeeds are the needs of ongoing support, better met in the
// residence country of a cross-border case.
var ongoingNeeds = []string{
	events.NeedSupportEmotional, events.NeedSupportPsychological, events.NeedSupportTrauma,
	events.NeedSupportFinancial, events.NeedInfoCompensation, events.NeedFamilySupport,
	events.NeedCrossborderAssistance,
}

// kmPerDegree is the length of a degree of latitude.
const kmPerDegree = 6371.0088 * math.Pi / 180

// query is a profile compiled against a table: its codes as masks, its
// weights normalised over the components that apply, and tables of the
// weighted values of the components that take few values.
type query struct {
	t    *table
	snap *directory.Index

	// The arrays the reasons and terms of the plan's candidates are cut
	// from (query.reasons, cut): new for each match, since the plan
	// keeps them; explainN is the number of candidates the next array
	// has room for (those of a group), 0 for one.
	reasonPool []Reason
	termPool   []Term
	explainN   int

	// Covers and classes are masks of the profile's needs in profile
	// order (bit j for needList[j]), whatever the size of the taxonomy.
	needs     uint64   // all of them
	needList  []string // known needs in profile order, without repeats
	needBits  []uint64 // their bits, 1<<j
	needCode  []int    // their numbers in the table's numbering
	ongoing   uint64   // of needs, those of ongoing support (ongoingNeeds)
	crimeCode []int    // numbers of the profile's known crimes, without repeats
	nCrimes   int
	flagCode  []int // numbers of the profile's known flags, without repeats
	nFlags    int
	// channels are the profile's (bit n for chanCode[n], in taxonomy
	// order), first its first, remote those usable without going to the
	// service (all but in person).
	channels, first, remote uint64
	chanCode                []int
	nChannels               int
	// acc are the profile's accessibility needs (bit n for accCode[n],
	// in taxonomy order), place those of them of a place (placeAccess).
	acc, place uint64
	accCode    []int
	langIDs    []int16 // dense ids of the profile's languages; -1 unknown
	langs      []string
	interp     bool
	// lang1 is the bit of the first language, langRest those of the
	// others; langUnknown reports a language without a bit.
	lang1, langRest uint64
	langUnknown     bool
	// langDense1 is the dense id of the first language (-1 none),
	// langDenseRest those of the others; ageIdx and genderIdx the bits
	// of the age band and gender, -1 unstated.
	langDense1        int
	langDenseRest     []int
	ageIdx, genderIdx int

	// referrer is the referring organisation, whose services are never
	// candidates; own are their numbers, ascending, ownAt the first not
	// before the word constrain reads.
	referrer string
	own      []int32
	ownAt    int

	urgency   string
	emergency bool
	now       time.Time
	mow       []int16 // minute of week per table zone; -1 not yet known
	respScale float64 // hours

	hasPoint bool
	lat, lon float64
	cosLat   float64
	scaleKm  float64
	perKm    float64 // 1/scaleKm
	distMax  float64 // the most the distance can add
	// restMax is the most accessibility and residence can add; obsMax the most
	// the observed ones can add; bonusMax the largest bonus. With wNeeds
	// and a word's distance bound (distanceBound) they bound the ranking
	// key of every candidate of the word.
	restMax, obsMax, bonusMax float64
	// langMax and specMax are the largest language and specialisation
	// components, specNone that of a service matching none of the
	// profile's crimes and flags (see ranker.wordMax).
	langMax, specMax, specNone float64
	// unbounded: no bounds (Matcher.unbounded); nearBound: the words
	// whose distance bound reaches it are ranked first.
	unbounded bool
	nearBound float64

	// land and countryKey are the victim's land and country for the
	// crossing factors (placeKey), 0 unknown.
	land, countryKey uint8

	cross        bool
	country      string
	residence    string
	countryBit   uint32 // dense bit of country in the table; 0 = none
	residenceBit uint32
	preferred    string

	stats StatsSource
	w     [numComponents]float64

	// Weighted values: needs by the number met, language by level,
	// channel by the shared channel mask, specialisation by specIndex,
	// accessibility by waived, observed components without statistics by
	// waiting list.
	wNeeds [maxProfileNeeds + 1]float64
	wLang  [5]float64
	wChan  [64]float64
	wSpec  []float64
	wAcc   [2]float64
	wObs   [2]float64
	// combos are the values language, specialisation and the observed
	// components can add together, best first (see combine).
	combos []combo
}

// combo is a language level, an index in wSpec and a waiting list (0 or
// 1), with the most they add to a score: a value of a word's candidates
// in ranker.prune.
type combo struct {
	v                float64
	lang, spec, wait int
}

// combine appends to dst the combos of the query, best first; none when
// the profile lists more crimes or flags than ranker.levels counts.
func (q *query) combine(dst []combo) []combo {
	if q.nCrimes > 15 || q.nFlags > 15 {
		return dst
	}
	var obs [2]float64
	for k := range obs {
		obs[k] = q.wObs[k]
		if q.stats != nil {
			obs[k] = q.w[compLoad]*loadValue(k == 1, 0, 0) + q.w[compAcceptance] + q.w[compResponse]
		}
	}
	for lang := langInterpreter; lang <= langFirst; lang++ {
		for s := range max(len(q.wSpec), 1) {
			spec := 0.0
			if len(q.wSpec) > 0 {
				spec = q.wSpec[s]
			}
			for wait := range 2 {
				dst = append(dst, combo{v: q.wLang[lang] + spec + obs[wait], lang: lang, spec: s, wait: wait})
			}
		}
	}
	slices.SortFunc(dst, func(a, b combo) int {
		switch {
		case a.v > b.v:
			return -1
		case a.v < b.v:
			return 1
		}
		return 0
	})
	return dst
}

// tabulate fills the tables of weighted values; q's masks and weights
// must be set.
func (q *query) tabulate(spec []float64) {
	for n := range q.wNeeds {
		q.wNeeds[n] = q.w[compNeeds] * needsValue(n, len(q.needBits))
	}
	for l := range q.wLang {
		q.wLang[l] = q.w[compLanguage] * languageValue(l)
	}
	for m := range q.wChan {
		q.wChan[m] = q.w[compChannel] * q.channelValue(uint64(m))
	}
	q.wSpec = spec[:0]
	if q.nCrimes > 0 || q.nFlags > 0 {
		for state := range q.nCrimes + 2 {
			for m := range q.nFlags + 1 {
				q.wSpec = append(q.wSpec, q.w[compSpecialisation]*q.specValue(state, m))
			}
		}
	}
	for k := range q.wAcc {
		q.wAcc[k] = q.w[compAccessibility] * q.accessValue(k == 1)
	}
	for k := range q.wObs {
		q.wObs[k] = q.w[compLoad]*loadValue(k == 1, 0, 0) + (q.w[compAcceptance]+q.w[compResponse])*PriorScore
	}
	q.langMax = slices.Max(q.wLang[:])
	q.restMax = 0
	if len(q.wSpec) > 0 {
		q.specMax = slices.Max(q.wSpec)
		// Of a generalist or a specialist in other crimes, matching
		// none of the profile's flags.
		q.specNone = max(q.wSpec[0], q.wSpec[min(q.nFlags+1, len(q.wSpec)-1)])
	}
	if q.acc != 0 {
		q.restMax += max(q.wAcc[0], q.wAcc[1])
	}
	if q.cross {
		q.restMax += q.w[compResidence]
	}
	q.obsMax = max(q.wObs[0], q.wObs[1])
	if q.stats != nil {
		q.obsMax = q.w[compLoad] + q.w[compAcceptance] + q.w[compResponse]
	}
	q.bonusMax = 0
	if q.emergency {
		q.bonusMax += 4
	}
	if q.preferred != "" {
		q.bonusMax += 2
	}
}

// boundSlack is added to every bound of a ranking key: the bounds are
// computed with the same floating-point operations as the keys, in an
// order that can only round them up, but expNeg's table is monotone only
// to within a rounding error.
const boundSlack = 1e-9

// distanceBound is the most the weighted distance component can be for
// any service of a word whose locations lie in box (distanceAt of each
// is at most its value): the component at the point of the box nearest
// the victim, by the same equirectangular measure, at least
// DistanceNoLocation when a service of the word has no location or is
// remote. Crossing factors (at least 1) only lengthen a distance.
func (q *query) distanceBound(b *wordBox) float64 {
	if !q.hasPoint {
		return 0
	}
	v := 0.0
	switch {
	case b.unbounded:
		v = 1
	case b.located:
		lat0, lat1, lon0, lon1 := float64(b.lat0), float64(b.lat1), float64(b.lon0), float64(b.lon1)
		if lon1-q.lon > 180 || q.lon-lon0 > 180 {
			// Some longitude of the box may wrap around: no bound.
			v = 1
		} else {
			lat := min(max(q.lat, lat0), lat1)
			lon := min(max(q.lon, lon0), lon1)
			v = expNeg(q.km(lat, lon) * q.perKm)
		}
	}
	if b.near {
		v = max(v, DistanceNoLocation)
	}
	return q.w[compDistance] * v
}

// The component values, each in [0, 1]: the single definition that both
// the ranking (through the tables) and the explanations use.

func needsValue(met, of int) float64 {
	if of == 0 {
		return 0
	}
	return float64(met) / float64(of)
}

func languageValue(level int) float64 {
	switch level {
	case langFirst:
		return LanguageFirst
	case langOther:
		return LanguageOther
	case langProvided:
		return LanguageInterpreterProvided
	case langInterpreter:
		return LanguageInterpreter
	}
	return 0
}

func (q *query) channelValue(shared uint64) float64 {
	v := 0.5 * float64(bits.OnesCount64(shared&q.channels)) / float64(q.nChannels)
	if shared&q.first != 0 {
		v += 0.5
	}
	return v
}

// chanWeight is the weighted channel component of the shared channels.
func (q *query) chanWeight(shared uint64) float64 {
	if shared < uint64(len(q.wChan)) {
		return q.wChan[shared]
	}
	return q.w[compChannel] * q.channelValue(shared)
}

// sharedOf returns the profile's channels the service at j of c offers.
func (q *query) sharedOf(c *chunk, j int32) uint64 {
	var m uint64
	for n, k := range q.chanCode {
		m |= (c.m.channels[k][j>>6] >> (j & 63) & 1) << n
	}
	return m
}

// specIndex is the index in wSpec of the service's specialisation: the
// crime state (0 generalist, 1 specialist in other crimes, 1+m specialist
// in m of the profile's crimes) times nFlags+1, plus the flags it matches.
func (q *query) specIndex(c *chunk, j int32) int {
	state := 0
	if q.nCrimes > 0 && c.m.specialist[j>>6]>>(j&63)&1 != 0 {
		state = 1 + q.countBits(c.m.crimes, q.crimeCode, j)
	}
	return state*(q.nFlags+1) + q.countBits(c.m.flags, q.flagCode, j)
}

// eligible reports whether the service at j of c takes the profile's
// age band and gender: it is not restricted, or restricted to the one the
// profile states.
func (q *query) eligible(c *chunk, j int32) bool {
	w, bi := j>>6, j&63
	age, gender := &c.m.anyAge, &c.m.anyGender
	if q.ageIdx >= 0 {
		age = &c.m.ages[q.ageIdx]
	}
	if q.genderIdx >= 0 {
		gender = &c.m.genders[q.genderIdx]
	}
	return age[w]&gender[w]>>bi&1 != 0
}

// accOf returns the profile's accessibility needs whose bitset in m has
// the service at j.
func (q *query) accOf(m [][chunkWords]uint64, j int32) uint64 {
	var out uint64
	for n, k := range q.accCode {
		out |= (m[k][j>>6] >> (j & 63) & 1) << n
	}
	return out
}

// accIn returns the profile's accessibility needs among codes (those of
// a location after the first: read from the service, a rare case).
func (q *query) accIn(codes []string) uint64 {
	var out uint64
	for n, k := range q.accCode {
		if slices.Contains(codes, q.t.num.accs[k]) {
			out |= 1 << n
		}
	}
	return out
}

// countBits counts the codes of codes whose bitset has the service at j.
func (q *query) countBits(m [][chunkWords]uint64, codes []int, j int32) int {
	n := 0
	for _, k := range codes {
		n += int(m[k][j>>6] >> (j & 63) & 1)
	}
	return n
}

// coverOf returns the profile's needs the service at j of c offers.
func (q *query) coverOf(c *chunk, j int32) uint64 {
	var cover uint64
	for n, k := range q.needCode {
		cover |= (c.m.needs[k][j>>6] >> (j & 63) & 1) << n
	}
	return cover
}

func (q *query) specValue(state, flagsMet int) float64 {
	v, parts := 0.0, 0
	if q.nCrimes > 0 {
		switch state {
		case 0:
			v += SpecialisationGeneralist
		case 1:
			v += SpecialisationOther
		default:
			v += 0.5 + 0.5*float64(state-1)/float64(q.nCrimes)
		}
		parts++
	}
	if q.nFlags > 0 {
		v += float64(flagsMet) / float64(q.nFlags)
		parts++
	}
	if parts == 0 {
		return 0
	}
	return v / float64(parts)
}

func (q *query) accessValue(waived bool) float64 {
	if !waived {
		return 1
	}
	n := bits.OnesCount64(q.acc)
	p := bits.OnesCount64(q.place)
	return (float64(n-p) + AccessibilityWaived*float64(p)) / float64(n)
}

// distanceValue is the distance component of the service; shared are
// its channels the profile accepts (sharedOf).
func (q *query) distanceValue(f *features, c *chunk, j int32, shared uint64) float64 {
	return q.distanceAt(c, j, f.bits&fHasLoc != 0, f.bits&fMultiLoc != 0, f.bits&fRemote != 0, shared)
}

// distanceAt is the distance component of service j of c: has, multi and
// remote are its fHasLoc, fMultiLoc and fRemote, shared its channels the
// profile accepts. It reads the first location from c.pos, so that the
// bitset path of a match need not read the service's features.
func (q *query) distanceAt(c *chunk, j int32, has, multi, remote bool, shared uint64) float64 {
	if !has {
		return DistanceNoLocation
	}
	var d float64
	if !multi {
		d = q.km(float64(c.pos[j][0]), float64(c.pos[j][1])) * q.crossing(c.key[j])
	} else {
		d, _, _ = q.nearest(&c.f[j], c, j)
	}
	v := expNeg(d * q.perKm)
	if remote && shared&q.remote != 0 {
		v = max(v, DistanceNoLocation)
	}
	return v
}

func residenceValue(cover, proper uint64) float64 {
	return float64(bits.OnesCount64(proper)) / float64(bits.OnesCount64(cover))
}

// loadValue is the load component: the free share of the capacity, times
// LoadWaitlist on a waiting list.
func loadValue(waitlist bool, open int, maxOpen uint16) float64 {
	v := 1.0
	if open > 0 {
		m := float64(maxOpen)
		if m <= 0 {
			m = LoadAssumedMaxOpen
		}
		v = 1 - min(1, float64(open)/m)
	}
	if waitlist {
		v *= LoadWaitlist
	}
	return v
}

// observedValues are the load, acceptance and response-time components.
func (q *query) observedValues(f *features, x *cold, st ServiceStats, known bool) (load, acc, resp float64) {
	if !known {
		return loadValue(f.bits&fWaitlist != 0, 0, 0), PriorScore, PriorScore
	}
	load = loadValue(f.bits&fWaitlist != 0, st.OpenOffers, x.maxOpen)
	n := float64(max(st.Answered, 0))
	a := float64(min(max(st.Accepted, 0), max(st.Answered, 0)))
	acc = (a + PriorScore*PriorWeight) / (n + PriorWeight)
	resp = PriorScore
	if st.ResponseTime > 0 && n > 0 {
		obs := 1 / (1 + st.ResponseTime.Hours()/q.respScale)
		resp = (obs*n + PriorScore*PriorWeight) / (n + PriorWeight)
	}
	return load, acc, resp
}

// inputs are what the weighted sum of the components but for the
// distance and the observed ones depends on (see baseScore).
type inputs struct {
	met    int    // number of the profile's needs met
	lang   int    // language level (langNone ... langFirst)
	chans  uint64 // channels shared with the profile (bits of query.channels)
	spec   int    // index in wSpec (specIndex)
	waived bool   // needs of the place waived (accessibility)
	// cover are the needs met, proper those of them met in the
	// preferred country (residence).
	cover, proper uint64
}

// inputs returns the inputs of the service's score; shared are its
// channels the profile accepts (sharedOf).
func (q *query) inputs(c *chunk, j int32, cover, proper, shared uint64, lang int, waived bool) inputs {
	in := inputs{met: bits.OnesCount64(cover), lang: lang, chans: shared, waived: waived, cover: cover, proper: proper}
	if len(q.wSpec) > 0 {
		in.spec = q.specIndex(c, j)
	}
	return in
}

// fixedScore is the weighted sum of the components that do not depend on
// observed statistics. cover is the profile needs the service meets,
// proper those of them it meets in the preferred country.
func (q *query) fixedScore(f *features, c *chunk, j int32, cover, proper uint64, lang int, waived bool) float64 {
	shared := q.sharedOf(c, j)
	in := q.inputs(c, j, cover, proper, shared, lang, waived)
	return q.baseScore(&in) + q.distanceScore(f, c, j, shared)
}

// baseScore is the weighted sum of the components but for the distance
// and the observed ones: the cheap part of a score, known before the
// distance is computed. It is the one place these components are summed.
func (q *query) baseScore(in *inputs) float64 {
	s := q.wNeeds[in.met] + q.wLang[in.lang] + q.chanWeight(in.chans)
	if len(q.wSpec) > 0 {
		s += q.wSpec[in.spec]
	}
	if q.acc != 0 {
		if in.waived {
			s += q.wAcc[1]
		} else {
			s += q.wAcc[0]
		}
	}
	if q.cross {
		s += q.w[compResidence] * residenceValue(in.cover, in.proper)
	}
	return s
}

// total is a candidate's score from its parts.
func total(base, dist, obs float64) float64 { return min(base+dist+obs, 1) }

// distanceScore is the weighted distance component.
func (q *query) distanceScore(f *features, c *chunk, j int32, shared uint64) float64 {
	if !q.hasPoint {
		return 0
	}
	return q.w[compDistance] * q.distanceValue(f, c, j, shared)
}

// observedScore is the weighted sum of the observed components.
func (q *query) observedScore(f *features, c *chunk, j int32, st ServiceStats, known bool) float64 {
	if !known {
		if f.bits&fWaitlist != 0 {
			return q.wObs[1]
		}
		return q.wObs[0]
	}
	load, acc, resp := q.observedValues(f, &c.x[j], st, known)
	return q.w[compLoad]*load + q.w[compAcceptance]*acc + q.w[compResponse]*resp
}

// observedMax is the most the observed components can add for the
// service: an upper bound used to skip services that cannot enter a
// ranking. Without statistics it is what they add.
func (q *query) observedMax(waitlist bool) float64 {
	if q.stats == nil {
		if waitlist {
			return q.wObs[1]
		}
		return q.wObs[0]
	}
	return q.w[compLoad]*loadValue(waitlist, 0, 0) + q.w[compAcceptance] + q.w[compResponse]
}

// components returns the values of every component for the service, for
// explanations.
func (q *query) components(f *features, c *chunk, j int32, cover, proper uint64, lang int, waived bool, st ServiceStats, known bool) [numComponents]float64 {
	var v [numComponents]float64
	v[compNeeds] = needsValue(bits.OnesCount64(cover), len(q.needBits))
	v[compLanguage] = languageValue(lang)
	shared := q.sharedOf(c, j)
	v[compChannel] = q.channelValue(shared)
	if q.nCrimes > 0 || q.nFlags > 0 {
		idx := q.specIndex(c, j)
		v[compSpecialisation] = q.specValue(idx/(q.nFlags+1), idx%(q.nFlags+1))
	}
	if q.hasPoint {
		v[compDistance] = q.distanceValue(f, c, j, shared)
	}
	if q.acc != 0 {
		v[compAccessibility] = q.accessValue(waived)
	}
	if q.cross {
		v[compResidence] = residenceValue(cover, proper)
	}
	v[compLoad], v[compAcceptance], v[compResponse] = q.observedValues(f, &c.x[j], st, known)
	return v
}

// check returns the first hard constraint service j of chunk c fails
// (cNone if none), its language level and whether needs of the place were
// waived because it can be used remotely. shared are the service's
// channels the profile accepts (sharedOf), computed once per candidate.
func (q *query) check(f *features, c *chunk, j int32, shared uint64) (code int, lang int, waived bool) {
	m, lang, waived := q.failures(f, c, j, shared, true)
	return firstConstraint(m), lang, waived
}

// checkLast returns the first of the constraints after the channel
// (accessibility, open now) that the service fails, cNone if none, and
// whether needs of the place were waived; failures checks them alike.
func (q *query) checkLast(f *features, c *chunk, j int32, shared uint64) (code int, waived bool) {
	if q.acc != 0 {
		var ok bool
		if ok, waived = q.access(f, c, j, shared); !ok {
			return cAccessibility, false
		}
	}
	if q.emergency && !q.openNow(f, c, j) {
		return cOpenNow, waived
	}
	return cNone, waived
}

// firstConstraint is the first constraint of a failures mask, cNone for 0.
func firstConstraint(m uint16) int {
	if m == 0 {
		return cNone
	}
	return bits.TrailingZeros16(m)
}

// failures returns the hard constraints service j of chunk c fails, as a
// mask of bits 1<<code, with its language level and whether needs of the
// place were waived; shared are its channels the profile accepts
// (sharedOf). With first it stops at the first failure. It is the
// one definition of the constraints; Match checks those that depend on
// codes alone with the chunks' bitsets, to the same effect.
func (q *query) failures(f *features, c *chunk, j int32, shared uint64, first bool) (m uint16, lang int, waived bool) {
	fail := func(code int) bool {
		m |= 1 << code
		return first
	}
	if f.bits&fActive == 0 && fail(cInactive) {
		return m, 0, false
	}
	if q.referrer != "" && c.svc[j].Organisation == q.referrer && fail(cOwn) {
		return m, 0, false
	}
	if !q.eligible(c, j) && fail(cEligibility) {
		return m, 0, false
	}
	if f.bits&fFull != 0 && fail(cCapacity) {
		return m, 0, false
	}
	lang = q.language(f, c, j)
	if lang == langNone && fail(cLanguage) {
		return m, 0, false
	}
	if shared == 0 && fail(cChannel) {
		return m, lang, false
	}
	if q.acc != 0 {
		var ok bool
		if ok, waived = q.access(f, c, j, shared); !ok && fail(cAccessibility) {
			return m, lang, false
		}
	}
	if q.emergency && !q.openNow(f, c, j) && fail(cOpenNow) {
		return m, lang, waived
	}
	return m, lang, waived
}

// language returns the language level of the service for the profile.
func (q *query) language(f *features, c *chunk, j int32) int {
	if f.bits&fLangSlow == 0 || !q.langUnknown {
		// Every language the two could share has a bit.
		switch {
		case f.langs&q.lang1 != 0:
			return langFirst
		case f.langs&q.langRest != 0:
			return langOther
		case q.interp:
			return interpreterLevel(f)
		}
		return langNone
	}
	for k, id := range q.langIDs {
		var speaks bool
		if id >= 0 {
			speaks = f.langs&(1<<uint(id)) != 0
		} else {
			speaks = slices.Contains(c.svc[j].Languages, q.langs[k])
		}
		if speaks {
			if k == 0 {
				return langFirst
			}
			return langOther
		}
	}
	if q.interp {
		return interpreterLevel(f)
	}
	return langNone
}

// interpreterLevel is the language level of a service without a shared
// language for a victim who accepts an interpreter.
func interpreterLevel(f *features) int {
	if f.bits&fInterp != 0 {
		return langProvided
	}
	return langInterpreter
}

// access reports whether the accessibility needs are met, and whether
// needs of the place were waived because the service can be used through
// a channel other than in person (one of shared, its channels the
// profile accepts).
func (q *query) access(f *features, c *chunk, j int32, shared uint64) (ok, waived bool) {
	own := q.accOf(c.m.acc, j)
	if comm := q.acc &^ q.place; comm&^(own|q.accOf(c.m.accAny, j)) != 0 {
		return false, false
	}
	place := q.place &^ own
	if place == 0 || place&^q.accOf(c.m.acc0, j) == 0 {
		return true, false
	}
	if f.bits&fMultiLoc != 0 {
		for _, l := range c.svc[j].Locations[1:] {
			if place&^q.accIn(l.Accessibility) == 0 {
				return true, false
			}
		}
	}
	if shared&q.remote != 0 {
		return true, true
	}
	return false, false
}

// openNow reports whether the service is open at q.now in its time zone.
func (q *query) openNow(f *features, c *chunk, j int32) bool {
	if f.bits&fAlways != 0 {
		return true
	}
	x := &c.x[j]
	if x.zone == 0 {
		return c.svc[j].Hours.OpenAt(q.now)
	}
	m := q.minuteOfWeek(x.zone - 1)
	for _, r := range c.hours[x.hOff : x.hOff+uint16(x.hN)] {
		if m >= r.lo && m < r.hi {
			return true
		}
	}
	return false
}

// minuteOfWeek returns the minute since Monday 00:00 of q.now in the
// table's zone z.
func (q *query) minuteOfWeek(z uint8) int16 {
	m := q.mow[z]
	if m < 0 {
		lt := q.now.In(q.t.zones[z])
		m = int16(((int(lt.Weekday())+6)%7)*1440 + lt.Hour()*60 + lt.Minute())
		q.mow[z] = m
	}
	return m
}

// proper returns the needs of cover for which the service serves the
// preferred country of a cross-border case: the residence country for
// ongoing support, the location's country for the rest. Without a
// cross-border case it is cover.
func (q *query) proper(f *features, c *chunk, j int32, cover uint64) uint64 {
	if !q.cross {
		return cover
	}
	here, home := q.where(f, c, j)
	var out uint64
	if here {
		out |= cover &^ q.ongoing
	}
	if home {
		out |= cover & q.ongoing
	}
	return out
}

// where reports whether the service serves the country of the crime
// (here) and the residence country (home) of a cross-border case.
func (q *query) where(f *features, c *chunk, j int32) (here, home bool) {
	cs := c.x[j].countries
	here = cs&q.countryBit != 0
	home = cs&q.residenceBit != 0
	if f.bits&fCountrySlow != 0 {
		s := c.svc[j]
		here = slices.Contains(s.Area.Countries, q.country)
		home = slices.Contains(s.Area.Countries, q.residence)
	}
	return here, home
}

// nearest returns the distance that counts from the victim to the
// service's nearest location, by the equirectangular approximation
// (within 0.5% of the great-circle distance up to a few hundred
// kilometres) times the crossing factors (see crossing.go), with that
// location's straight-line distance and key.
func (q *query) nearest(f *features, c *chunk, j int32) (eff, km float64, key placeKey) {
	key = c.key[j]
	km = q.km(float64(f.lat), float64(f.lon))
	eff = km * q.crossing(key)
	try := func(d float64, k placeKey) {
		if e := d * q.crossing(k); e < eff {
			eff, km, key = e, d, k
		}
	}
	if f.bits&fMultiLoc != 0 {
		if f.bits&fLocSlow != 0 {
			for _, l := range c.svc[j].Locations[1:] {
				try(q.km(float64(float32(l.Lat)), float64(float32(l.Lon))), q.t.keyOf(l.Country, l.Region))
			}
		} else {
			x := &c.x[j]
			for _, l := range c.locs[x.locOff : x.locOff+uint16(x.nLoc)-1] {
				try(q.km(float64(l.lat), float64(l.lon)), l.key)
			}
		}
	}
	return eff, km, key
}

func (q *query) km(lat, lon float64) float64 {
	dy := lat - q.lat
	dx := lon - q.lon
	if dx > 180 {
		dx -= 360
	} else if dx < -180 {
		dx += 360
	}
	dx *= q.cosLat
	return kmPerDegree * math.Sqrt(dx*dx+dy*dy)
}

// expNeg returns about exp(-x) for x >= 0, by linear interpolation in a
// table (error below 4e-5): a decreasing function, like exp(-x), and a
// few times cheaper.
func expNeg(x float64) float64 {
	if !(x < expMax) { // also NaN
		return 0
	}
	if x <= 0 {
		return 1
	}
	x *= expSteps
	i := int(x)
	fr := x - float64(i)
	return expTable[i] + (expTable[i+1]-expTable[i])*fr
}

const (
	expSteps = 64 // table entries per unit
	expMax   = 32 // exp(-32) is about 1e-14: zero for scoring
)

var expTable = func() []float64 {
	t := make([]float64, expMax*expSteps+2)
	for i := range t {
		t[i] = math.Exp(-float64(i) / expSteps)
	}
	return t
}()
