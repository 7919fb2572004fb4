package routing

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/invictus-network/invictus/directory"
	"github.com/invictus-network/invictus/events"
)

// Defaults and limits of [Config].
const (
	// FallbacksDefault is the number of ranked fallbacks per group after
	// the primary candidate.
	FallbacksDefault = 3
	// FallbacksMax is the largest number of fallbacks: a planned group
	// holds at most 32 candidates.
	FallbacksMax = 31
	// FallbacksNone in Config.Fallbacks asks for primaries only (the zero
	// value means FallbacksDefault).
	FallbacksNone = -1
	// DistanceScaleKmDefault is the distance at which the distance
	// component has decayed to 1/e (about 0.37).
	DistanceScaleKmDefault = 25.0
)

// Default weights of the score components (see the Component constants).
// They sum to 1; the score divides by the sum of the weights of the
// components that apply to the profile, so it stays in [0, 1].
const (
	WeightNeedsDefault          = 0.23
	WeightSpecialisationDefault = 0.2
	WeightLanguageDefault       = 0.15
	WeightDistanceDefault       = 0.12
	WeightChannelDefault        = 0.05
	WeightAccessibilityDefault  = 0.05
	WeightLoadDefault           = 0.08
	WeightAcceptanceDefault     = 0.04
	WeightResponseTimeDefault   = 0.03
	WeightResidenceDefault      = 0.05
)

// CoverQuality sets how much a candidate's score weighs against the number
// of placements when the plan groups needs: a placement costs
// 1 + CoverQuality*(1-score), and each step of the greedy set cover picks
// the candidate of lowest cost per need it newly covers. With 1, a
// placement covering twice as many needs always wins; quality decides
// between candidates covering as many.
const CoverQuality = 1.0

// Errors of the matcher.
var (
	// ErrInvalidProfile reports a needs profile the matcher cannot use;
	// errors.Is(err, events.ErrInvalid) holds too.
	ErrInvalidProfile = fmt.Errorf("routing: invalid needs profile: %w", events.ErrInvalid)
	// ErrNoDirectory reports a match without a directory snapshot.
	ErrNoDirectory = errors.New("routing: no directory snapshot")
	// ErrInvalidConfig reports a Config that fails Validate.
	ErrInvalidConfig = errors.New("routing: invalid matcher config")
	// ErrUnknownService reports an assessment of a service the snapshot
	// does not hold.
	ErrUnknownService = errors.New("routing: unknown service")
)

// Weights are the weights of the score components; see the Component
// constants for what each measures. A zero weight switches a component off.
type Weights struct {
	Needs          float64
	Specialisation float64
	Language       float64
	Distance       float64
	Channel        float64
	Accessibility  float64
	Load           float64
	Acceptance     float64
	ResponseTime   float64
	Residence      float64
}

// DefaultWeights returns the default weights (the Weight*Default constants).
func DefaultWeights() Weights {
	return Weights{
		Needs: WeightNeedsDefault, Specialisation: WeightSpecialisationDefault, Language: WeightLanguageDefault,
		Distance: WeightDistanceDefault, Channel: WeightChannelDefault, Accessibility: WeightAccessibilityDefault,
		Load: WeightLoadDefault, Acceptance: WeightAcceptanceDefault, ResponseTime: WeightResponseTimeDefault,
		Residence: WeightResidenceDefault,
	}
}

func (w Weights) array() [numComponents]float64 {
	var a [numComponents]float64
	a[compNeeds], a[compSpecialisation], a[compLanguage], a[compDistance], a[compChannel] = w.Needs, w.Specialisation, w.Language, w.Distance, w.Channel
	a[compAccessibility], a[compLoad], a[compAcceptance], a[compResponse], a[compResidence] = w.Accessibility, w.Load, w.Acceptance, w.ResponseTime, w.Residence
	return a
}

// Validate reports a weight that is negative or not finite, or weights
// that are all zero.
func (w Weights) Validate() error {
	sum := 0.0
	for i, v := range w.array() {
		if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("%w: Weights.%s %v: must be a finite number >= 0", ErrInvalidConfig, weightField[i], v)
		}
		sum += v
	}
	if sum <= 0 {
		return fmt.Errorf("%w: Weights: at least one weight must be positive", ErrInvalidConfig)
	}
	return nil
}

var weightField = [numComponents]string{"Needs", "Specialisation", "Language", "Distance", "Channel", "Accessibility", "Load", "Acceptance", "ResponseTime", "Residence"}

// StatsSource gives the observed behaviour of services, fed from the
// referral lifecycle. The matcher calls it for the eligible candidates
// that may still enter a ranking, on the hot path: it must answer from
// memory and be safe for concurrent use. A service it has no data for
// (false) gets the neutral priors.
type StatsSource interface {
	ServiceStats(serviceID string) (ServiceStats, bool)
}

// ServiceStats are the observed statistics of one service.
type ServiceStats struct {
	// Answered counts offers the service accepted, declined or let expire.
	Answered int
	// Accepted counts the offers it accepted (at most Answered).
	Accepted int
	// ResponseTime is its typical time from offer to answer; 0 = unknown.
	ResponseTime time.Duration
	// OpenOffers counts the offers awaiting its answer now.
	OpenOffers int
}

// Config configures a [Matcher]. The zero value is usable: WithDefaults
// fills it in.
type Config struct {
	// Weights of the score components; all zero means DefaultWeights.
	Weights Weights
	// Fallbacks is the number of ranked fallbacks per group after the
	// primary: 0 means FallbacksDefault, FallbacksNone none, at most
	// FallbacksMax.
	Fallbacks int
	// DistanceScaleKm is the scale of the distance decay; 0 means
	// DistanceScaleKmDefault.
	DistanceScaleKm float64
	// Now tells the time for the open-now constraint of emergencies;
	// nil means time.Now. A match with the same profile, directory
	// revision and time gives the same plan.
	Now func() time.Time
	// Stats gives observed acceptance, response times and open offers;
	// nil means the neutral priors for every service.
	Stats StatsSource
}

// WithDefaults returns c with every unset field set to its default.
func (c Config) WithDefaults() Config {
	if c.Weights == (Weights{}) {
		c.Weights = DefaultWeights()
	}
	if c.Fallbacks == 0 {
		c.Fallbacks = FallbacksDefault
	}
	if c.DistanceScaleKm == 0 {
		c.DistanceScaleKm = DistanceScaleKmDefault
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate reports the first field of c (after WithDefaults) that is out
// of range, as an error wrapping ErrInvalidConfig.
func (c Config) Validate() error {
	if err := c.Weights.Validate(); err != nil {
		return err
	}
	if c.Fallbacks < FallbacksNone || c.Fallbacks > FallbacksMax {
		return fmt.Errorf("%w: Fallbacks %d: must be FallbacksNone (-1), 0 (default) or 1 to %d", ErrInvalidConfig, c.Fallbacks, FallbacksMax)
	}
	if !(c.DistanceScaleKm > 0) || math.IsInf(c.DistanceScaleKm, 0) {
		return fmt.Errorf("%w: DistanceScaleKm %v: must be a positive number", ErrInvalidConfig, c.DistanceScaleKm)
	}
	return nil
}

// Matcher turns a needs profile and a directory snapshot into an explained
// [Plan]. It keeps derived data per snapshot (see [Matcher.Match]) and is
// safe for concurrent use.
type Matcher struct {
	cfg Config
	// unbounded turns the distance bounds of words off (tests compare the
	// plans with and without them).
	unbounded bool
	err       error // from Validate; returned by every match
	weights   [numComponents]float64
	tables    tableCache
	pool      sync.Pool // *scratch
	// pruned counts the candidates ranker.prune skipped, for the tests
	// that must see it skip some.
	pruned atomic.Int64
}

// NewMatcher returns a matcher with cfg.WithDefaults(). A config that fails
// Validate does not panic: every match then returns the validation error.
func NewMatcher(cfg Config) *Matcher {
	cfg = cfg.WithDefaults()
	m := &Matcher{cfg: cfg, err: cfg.Validate(), weights: cfg.Weights.array()}
	m.pool.New = func() any { return new(scratch) }
	return m
}

// Config returns the matcher's effective configuration.
func (m *Matcher) Config() Config { return m.cfg }

// MatchOption is a per-call choice of Match, Eligible or Assess.
type MatchOption func(*matchOptions)

type matchOptions struct {
	now       time.Time
	fallbacks int
	preferred string
	referrer  string
}

// At judges opening hours at t instead of the configured clock.
func At(t time.Time) MatchOption { return func(o *matchOptions) { o.now = t } }

// WithFallbacks sets the number of fallbacks per group for this call, 0 to
// FallbacksMax (0 means primaries only).
func WithFallbacks(n int) MatchOption {
	return func(o *matchOptions) { o.fallbacks = min(max(n, 0), FallbacksMax) }
}

// WithPreferredOrganisation ranks the eligible services of the organisation
// (the Requested.PreferredOrganisation of a referral) first in the groups
// they can serve, after 24/7 services in an emergency.
func WithPreferredOrganisation(id string) MatchOption {
	return func(o *matchOptions) { o.preferred = id }
}

// WithReferrer names the organisation that refers the victim (the source
// of a referral): its own services are never candidates
// ([ConstraintOwnOrganisation]).
func WithReferrer(id string) MatchOption {
	return func(o *matchOptions) { o.referrer = id }
}

func (m *Matcher) options(opts []MatchOption) matchOptions {
	o := matchOptions{fallbacks: max(m.cfg.Fallbacks, 0)}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// entry is a ranked eligible candidate.
type entry struct {
	key   float64 // score plus the bonus of 24/7 (emergency) and preference
	score float64
	i     int32
	known bool // st holds data
	st    ServiceStats
}

// class collects the best candidates that meet exactly one subset of the
// profile's needs (and, in a cross-border case, exactly one subset of
// them in the preferred country).
type class struct {
	cover  uint64 // the profile's needs it meets (bits of query.needBits)
	proper uint64 // of cover, those met in the preferred country
	off    int    // of its ranking in scratch.entries
	n      int
	// worst is the key of the last of a full ranking, -Inf before: a
	// candidate with a lower key cannot enter.
	worst float64
}

// scratch is the reusable working memory of one match.
type scratch struct {
	q        query
	cands    []int32
	classes  []class
	classIdx []int16 // compact cover (and proper) -> class, -1 = none (see query.denseClasses)
	classMap map[[2]uint64]int
	entries  []entry
	needList []string
	needBits []uint64
	needCode []int
	crimes   []int
	chans    []int
	accs     []int
	flags    []int
	chanW    []uint64 // of ranker.load: bitsets of the profile's channels,
	crimeW   []uint64 // crimes and flags, for the current word
	flagW    []uint64
	langIDs  []int16
	mow      []int16
	spec     []float64
	words    []uint64  // candidate bitset
	near     []farWord // words near the victim, in number order
	later    []farWord // words left for after the near ones
	order    []farWord // of nearestFirst
	rest     []int     // dense ids of the profile's languages after the first
	combos   []combo   // query.combos
	specM    []uint64  // of ranker.levels, by index in query.wSpec
	aboveM   []uint64  // of ranker.above, by index in query.combos
	ranked   []entry   // of scratch.ranking
}

// farWord is a word of the candidate bitset left for after the words near
// the victim, with its distance bounds (word.dist, word.distMulti).
type farWord struct {
	wi              int32
	dist, distMulti float64
}

// nearBuckets is the number of steps of the distance bound by which
// scratch.nearestFirst orders the words near the victim.
const nearBuckets = 64

// nearestFirst returns the words of sc.near ordered by their distance
// bound, highest (nearest) first, in steps of 1/nearBuckets of the range
// from q.nearBound to q.distMax, and in number order within a step: a
// counting sort, cheaper than sorting by the bound itself, and as good
// for filling the rankings with the best candidates early, so that the
// words after them are mostly skipped (ranker.prune).
func (sc *scratch) nearestFirst(q *query) []farWord {
	span := q.distMax - q.nearBound
	if len(sc.near) < 2 || !(span > 0) {
		return sc.near
	}
	var count [nearBuckets + 1]int32
	step := func(dist float64) int {
		return min(max(int((q.distMax-dist)/span*nearBuckets), 0), nearBuckets-1)
	}
	for _, fw := range sc.near {
		count[step(fw.dist)+1]++
	}
	for b := 1; b <= nearBuckets; b++ {
		count[b] += count[b-1]
	}
	sc.order = slices.Grow(sc.order[:0], len(sc.near))[:len(sc.near)]
	for _, fw := range sc.near {
		b := step(fw.dist)
		sc.order[count[b]] = fw
		count[b]++
	}
	return sc.order
}

// maxProfileNeeds is the most distinct needs (and channels, and
// accessibility needs) a profile may list: its covers are uint64 masks of
// its own codes. No list of today's taxonomy is that long; however long it
// grows, no victim has 64 needs at once.
const maxProfileNeeds = 64

// distinct counts the distinct codes of codes (only called on long lists).
func distinct(codes []string) int {
	seen := make(map[string]bool, len(codes))
	for _, c := range codes {
		seen[c] = true
	}
	return len(seen)
}

// maxDenseNeeds: profiles with more needs find classes through a map.
const maxDenseNeeds = 10

// Match plans the profile against the snapshot: the candidates the index
// returns for the profile's needs and location (and, for a cross-border
// case, the remote services of the residence country), without those that
// fail a hard constraint (counted in Plan.Excluded), scored and grouped
// into as few placements as possible with ranked fallbacks. The same
// profile, snapshot revision and time always give the same plan; exact
// ties break on the service's name, then its id.
//
// It returns an error wrapping ErrInvalidProfile for a profile without
// needs, with an unknown code, country or urgency, or without channels;
// ErrNoDirectory for a nil snapshot; the Config error for an invalid
// Config. The first match against a snapshot derives per-service bit masks
// and bitsets from it (a few microseconds per service not seen in the
// previous snapshot: about 0.35 s for a fresh index of 100,000 on a quiet
// machine, about 85 KB per 1024 services with their open tables), and
// ranks the services by name once (a tenth of that, 8 bytes a service);
// later matches reuse them.
func (m *Matcher) Match(snap *directory.Index, p events.Profile, opts ...MatchOption) (*Plan, error) {
	sc, q, err := m.begin(snap, &p, opts)
	if err != nil {
		return nil, err
	}
	defer m.pool.Put(sc)
	k := 1 + m.options(opts).fallbacks
	// 1. Candidates: the index's bitset of the services that offer a
	// needed code where the victim is (or remotely from the residence
	// country).
	sc.words = snap.CandidateBits(directoryQuery(&p), sc.words)
	var t tally
	r := sc.ranker(q, k)
	// Words near the victim first, nearest first (services are numbered
	// by place, so a word lies in a small box; scratch.nearestFirst),
	// then the others: the rankings fill with near candidates, and most
	// candidates of farther words cannot enter them and are not scored
	// (ranker.keyMax, ranker.prune). The plan does not depend on the
	// order.
	prev := -1
	visit := func(wi int, dist, distMulti float64) {
		if wi < prev {
			q.ownAt = 0 // ownWord reads words in increasing order
		}
		prev = wi
		// 2. Constraints: those that depend on codes alone, on 64
		// candidates at a time; 3. scores: the rest of the constraints
		// and the score of each candidate left, ranked in its class.
		wd := q.constrain(wi, sc.words[wi], &t)
		if wd.todo == 0 {
			return
		}
		wd.dist, wd.distMulti = dist, distMulti
		if !q.unbounded {
			wd.keyMax, wd.keyMulti = r.bound(&wd)
		}
		r.rank(&wd, &t)
	}
	sc.later, sc.near = sc.later[:0], sc.near[:0]
	for wi, w := range sc.words {
		if w == 0 {
			continue
		}
		dist, distMulti := q.distMax, q.distMax
		if !q.unbounded {
			mk, cw := &q.t.chunks[wi>>(chunkBits-6)].m, wi&(chunkWords-1)
			dist = q.distanceBound(&mk.box[cw])
			distMulti = dist
			if w&mk.multiLoc[cw] != 0 {
				distMulti = max(dist, q.distanceBound(&mk.multiBox[cw]))
			}
			if dist < q.nearBound {
				sc.later = append(sc.later, farWord{int32(wi), dist, distMulti})
			} else {
				sc.near = append(sc.near, farWord{int32(wi), dist, distMulti})
			}
			continue
		}
		visit(wi, dist, distMulti)
	}
	for _, fw := range sc.nearestFirst(q) {
		visit(int(fw.wi), fw.dist, fw.distMulti)
	}
	for _, fw := range sc.later {
		visit(int(fw.wi), fw.dist, fw.distMulti)
	}
	if t.pruned > 0 {
		m.pruned.Add(int64(t.pruned))
	}
	// 4. Plan: the classes grouped into placements, explained.
	return sc.plan(q, k, &t), nil
}

// Eligible returns the ids, sorted, of the services that are candidates
// for the profile and pass every hard constraint: the set Match ranks. It
// returns the errors of Match.
func (m *Matcher) Eligible(snap *directory.Index, p events.Profile, opts ...MatchOption) ([]string, error) {
	sc, q, err := m.begin(snap, &p, opts)
	if err != nil {
		return nil, err
	}
	defer m.pool.Put(sc)
	sc.cands = snap.Candidates(directoryQuery(&p), sc.cands[:0])
	var out []string
	for _, i := range sc.cands {
		f, c := q.t.at(i)
		if f.bits&fPresent == 0 || q.coverOf(c, i&chunkMask) == 0 {
			continue
		}
		if code, _, _ := q.check(f, c, i&chunkMask, q.sharedOf(c, i&chunkMask)); code == cNone {
			out = append(out, c.svc[i&chunkMask].ID)
		}
	}
	slices.Sort(out)
	return out, nil
}

// Assessment is the matcher's judgement of one service for a profile, for
// a caseworker asking "why not this one?".
type Assessment struct {
	// Service is the service's id.
	Service string
	// Candidate reports whether the index returns it for the profile: it
	// offers a needed code and its area covers the victim (or it serves
	// the residence country remotely).
	Candidate bool
	// Covers are the profile's needs it offers, in profile order.
	Covers []string
	// Constraint is the first hard constraint it fails, "" if none.
	Constraint string
	// Score, Components and Reasons are set when Constraint is "" and
	// Covers is not empty: as the service would rank in a plan.
	Score      float64
	Components map[string]float64
	Reasons    []string
}

// Assess judges one service of the snapshot for the profile. It returns
// ErrUnknownService when the snapshot has no service with the id, and the
// errors of Match.
func (m *Matcher) Assess(snap *directory.Index, p events.Profile, serviceID string, opts ...MatchOption) (Assessment, error) {
	sc, q, err := m.begin(snap, &p, opts)
	if err != nil {
		return Assessment{}, err
	}
	defer m.pool.Put(sc)
	i, ok := snap.Lookup(serviceID)
	var s *directory.Service
	if ok {
		s = snap.Service(i)
	}
	if s == nil {
		return Assessment{}, fmt.Errorf("%w: %q", ErrUnknownService, serviceID)
	}
	dq := directoryQuery(&p)
	f, c := q.t.at(i)
	j := i & chunkMask
	cover := q.coverOf(c, j)
	a := Assessment{Service: s.ID, Candidate: snap.Listed(s) && dq.Matches(s), Covers: q.codes(cover)}
	code, lang, waived := q.check(f, c, j, q.sharedOf(c, j))
	a.Constraint = constraintNames[code]
	if code != cNone || cover == 0 {
		return a, nil
	}
	e := entry{i: i}
	score := q.fixedScore(f, c, j, cover, q.proper(f, c, j, cover), lang, waived)
	if q.stats != nil {
		e.st, e.known = q.stats.ServiceStats(s.ID)
	}
	e.score = min(score+q.observedScore(f, c, j, e.st, e.known), 1)
	e.key = e.score + q.bonus(f, c, j)
	cand := q.candidate(e, cover, cNone)
	a.Score, a.Components, a.Reasons = cand.Score, cand.Components, cand.Reasons
	return a, nil
}

// directoryQuery is the index query of a profile.
func directoryQuery(p *events.Profile) directory.Query {
	q := directory.Query{
		Needs: p.Needs, Country: p.Location.Country, Region: events.NUTS2021Of(p.Location.Region),
		Lat: p.Location.Lat, Lon: p.Location.Lon,
	}
	if r := p.Location.ResidenceCountry; r != "" && r != p.Location.Country {
		q.RemoteCountries = []string{r}
	}
	return q
}

// begin checks the profile, takes a scratch and compiles the profile
// against the snapshot's table.
func (m *Matcher) begin(snap *directory.Index, p *events.Profile, opts []MatchOption) (*scratch, *query, error) {
	if m.err != nil {
		return nil, nil, m.err
	}
	if snap == nil {
		return nil, nil, ErrNoDirectory
	}
	if err := checkProfile(p); err != nil {
		return nil, nil, err
	}
	o := m.options(opts)
	t := m.tables.get(snap)
	sc := m.pool.Get().(*scratch)
	m.compile(sc, t, snap, p, &o)
	return sc, &sc.q, nil
}

// checkProfile reports what makes a profile unusable for matching: a
// cheap guard on the hot path. The validation of a profile is
// events.ValidateProfile, which every way in (invictus match and refer,
// POST /v1/match, the routing service through events.Decode) applies
// before it matches; it costs about as much as a whole match of a small
// directory, so the matcher does not repeat it.
func checkProfile(p *events.Profile) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidProfile}, args...)...)
	}
	if len(p.Needs) == 0 {
		return bad("needs: at least one need is required")
	}
	if len(p.Accessibility) > maxProfileNeeds && distinct(p.Accessibility) > maxProfileNeeds {
		// Accessibility met is a mask of the profile's own (query.acc).
		return bad("accessibility: at most %d distinct needs in one profile", maxProfileNeeds)
	}
	if len(p.Channels) > maxProfileNeeds && distinct(p.Channels) > maxProfileNeeds {
		// Shared channels are masks of the profile's own (query.channels).
		return bad("channels: at most %d distinct channels in one profile", maxProfileNeeds)
	}
	if len(p.Needs) > maxProfileNeeds && distinct(p.Needs) > maxProfileNeeds {
		// Covers are masks of the profile's own needs (query.needBits).
		return bad("needs: at most %d distinct needs in one profile", maxProfileNeeds)
	}
	for _, n := range p.Needs {
		if !events.IsNeed(n) {
			return bad("needs: %q is not a need code", n)
		}
	}
	if !events.IsCountry(p.Location.Country) {
		return bad("location.country: %q is not a known country code", p.Location.Country)
	}
	if r := p.Location.ResidenceCountry; r != "" && !events.IsCountry(r) {
		return bad("location.residence_country: %q is not a known country code", r)
	}
	if (p.Location.Lat == nil) != (p.Location.Lon == nil) {
		return bad("location: lat and lon go together")
	}
	if !slices.Contains(events.Urgencies, p.Urgency) {
		return bad("urgency: %q is not one of %v", p.Urgency, events.Urgencies)
	}
	if len(p.Channels) == 0 {
		return bad("channels: at least one acceptable channel is required")
	}
	for _, c := range p.Channels {
		if !slices.Contains(events.Channels, c) {
			return bad("channels: %q is not a channel", c)
		}
	}
	for _, l := range p.Languages {
		if !events.IsLanguage(l) {
			return bad("languages: %q is not an ISO 639-1 code", l)
		}
	}
	if p.AgeBand != "" && !slices.Contains(events.AgeBands, p.AgeBand) {
		return bad("age_band: %q is not one of %v", p.AgeBand, events.AgeBands)
	}
	if p.Gender != "" && !slices.Contains(events.Genders, p.Gender) {
		return bad("gender: %q is not one of %v", p.Gender, events.Genders)
	}
	for _, a := range p.Accessibility {
		if !slices.Contains(events.Accessibility, a) {
			return bad("accessibility: %q is not an accessibility code", a)
		}
	}
	for _, c := range p.Crimes {
		if !events.IsCrime(c) {
			return bad("crimes: %q is not a crime code", c)
		}
	}
	for _, f := range p.Flags {
		if !events.IsFlag(f) {
			return bad("flags: %q is not a flag code", f)
		}
	}
	return nil
}

// compile fills sc.q from a checked profile.
func (m *Matcher) compile(sc *scratch, t *table, snap *directory.Index, p *events.Profile, o *matchOptions) {
	q := &sc.q
	*q = query{t: t, snap: snap, stats: m.cfg.Stats, scaleKm: m.cfg.DistanceScaleKm, perKm: 1 / m.cfg.DistanceScaleKm, preferred: o.preferred, unbounded: m.unbounded}
	if o.referrer != "" {
		q.referrer, q.own = o.referrer, t.organisationServices(o.referrer)
	}

	num := t.num
	sc.needList, sc.needBits, sc.needCode = sc.needList[:0], sc.needBits[:0], sc.needCode[:0]
	for _, n := range p.Needs {
		k, ok := num.need[n]
		if !ok || slices.Contains(sc.needCode, k) {
			continue
		}
		b := uint64(1) << len(sc.needCode)
		q.needs |= b
		if slices.Contains(ongoingNeeds, n) {
			q.ongoing |= b
		}
		sc.needList = append(sc.needList, n)
		sc.needBits = append(sc.needBits, b)
		sc.needCode = append(sc.needCode, k)
	}
	q.needList, q.needBits, q.needCode = sc.needList, sc.needBits, sc.needCode

	sc.crimes, sc.flags = codesOf(sc.crimes[:0], p.Crimes, num.crime), codesOf(sc.flags[:0], p.Flags, num.flag)
	slices.Sort(sc.crimes) // reasons list them in taxonomy order
	slices.Sort(sc.flags)
	q.crimeCode, q.nCrimes = sc.crimes, len(sc.crimes)
	q.flagCode, q.nFlags = sc.flags, len(sc.flags)
	sc.crimeW = slices.Grow(sc.crimeW[:0], q.nCrimes)[:q.nCrimes]
	sc.flagW = slices.Grow(sc.flagW[:0], q.nFlags)[:q.nFlags]
	sc.chans = codesOf(sc.chans[:0], p.Channels, num.channel)
	slices.Sort(sc.chans) // reasons list them in taxonomy order
	q.chanCode, q.nChannels = sc.chans, len(sc.chans)
	q.channels = 1<<len(sc.chans) - 1
	if len(sc.chans) == 64 {
		q.channels = ^uint64(0)
	}
	sc.chanW = slices.Grow(sc.chanW[:0], q.nChannels)[:q.nChannels]
	for n, k := range sc.chans {
		if num.channels[k] == p.Channels[0] {
			q.first = 1 << n
		}
		if num.channels[k] != events.ChannelInPerson {
			q.remote |= 1 << n
		}
	}
	sc.accs = codesOf(sc.accs[:0], p.Accessibility, num.acc)
	slices.Sort(sc.accs) // reasons list them in taxonomy order
	q.accCode = sc.accs
	for n, k := range sc.accs {
		q.acc |= 1 << n
		if slices.Contains(placeAccess, num.accs[k]) {
			q.place |= 1 << n
		}
	}
	q.interp = p.InterpreterOK
	q.ageIdx, q.genderIdx = -1, -1
	if k, ok := num.age[p.AgeBand]; ok {
		q.ageIdx = k
	}
	if k, ok := num.gender[p.Gender]; ok {
		q.genderIdx = k
	}

	sc.langIDs = sc.langIDs[:0]
	for _, l := range p.Languages {
		id := int16(-1)
		if v, ok := t.langs[l]; ok {
			id = int16(v)
		}
		sc.langIDs = append(sc.langIDs, id)
	}
	q.langIDs, q.langs = sc.langIDs, p.Languages
	q.langDense1, sc.rest = -1, sc.rest[:0]
	for k, id := range q.langIDs {
		switch {
		case id < 0:
			q.langUnknown = true
		case k == 0:
			q.lang1 = 1 << uint(id)
			q.langDense1 = int(id)
		default:
			q.langRest |= 1 << uint(id)
			sc.rest = append(sc.rest, int(id))
		}
	}
	q.langDenseRest = sc.rest

	q.urgency = p.Urgency
	q.emergency = p.Urgency == events.UrgencyEmergency
	if q.emergency {
		q.now = o.now
		if q.now.IsZero() {
			q.now = m.cfg.Now()
		}
		sc.mow = slices.Grow(sc.mow[:0], len(t.zones))[:len(t.zones)]
		for i := range sc.mow {
			sc.mow[i] = -1
		}
		q.mow = sc.mow
	}
	switch p.Urgency {
	case events.UrgencyEmergency:
		q.respScale = ResponseScaleEmergency.Hours()
	case events.UrgencyUrgent:
		q.respScale = ResponseScaleUrgent.Hours()
	case events.UrgencySoon:
		q.respScale = ResponseScaleSoon.Hours()
	default:
		q.respScale = ResponseScaleRoutine.Hours()
	}

	if p.Location.Lat != nil && p.Location.Lon != nil {
		q.hasPoint = true
		q.lat, q.lon = *p.Location.Lat, *p.Location.Lon
		q.cosLat = math.Cos(q.lat * math.Pi / 180)
	}
	q.country = p.Location.Country
	q.land = land(p.Location.Region)
	if id, ok := t.countries[q.country]; ok {
		q.countryKey = id + 1
	}
	if r := p.Location.ResidenceCountry; r != "" && r != q.country {
		q.cross, q.residence = true, r
		if id, ok := t.countries[q.country]; ok {
			q.countryBit = 1 << id
		}
		if id, ok := t.countries[r]; ok {
			q.residenceBit = 1 << id
		}
	}

	w := m.weights
	if q.nCrimes == 0 && q.nFlags == 0 {
		w[compSpecialisation] = 0
	}
	if !q.hasPoint {
		w[compDistance] = 0
	}
	if q.acc == 0 {
		w[compAccessibility] = 0
	}
	if !q.cross {
		w[compResidence] = 0
	}
	sum := 0.0
	for _, v := range w {
		sum += v
	}
	if sum > 0 {
		for c := range w {
			w[c] /= sum
		}
	}
	q.w = w
	if q.hasPoint {
		q.distMax = w[compDistance]
		// Words whose services may be as near as DistanceNoLocation
		// are ranked first.
		q.nearBound = w[compDistance] * DistanceNoLocation
	}
	q.tabulate(sc.spec)
	sc.spec = q.wSpec
	sc.combos = q.combine(sc.combos[:0])
	q.combos = sc.combos

	// The classes of this match.
	sc.classes, sc.entries = sc.classes[:0], sc.entries[:0]
	if q.denseClasses() {
		n := 1 << len(q.needBits)
		if q.cross {
			n <<= len(q.needBits)
		}
		sc.classIdx = slices.Grow(sc.classIdx[:0], n)[:n]
		for i := range sc.classIdx {
			sc.classIdx[i] = -1
		}
	} else {
		clear(sc.classMap)
		if sc.classMap == nil {
			sc.classMap = make(map[[2]uint64]int)
		}
	}
}

// codesOf appends to dst the numbers of the known codes, without repeats.
func codesOf(dst []int, codes []string, num map[string]int) []int {
	for _, c := range codes {
		if k, ok := num[c]; ok && !slices.Contains(dst, k) {
			dst = append(dst, k)
		}
	}
	return dst
}

// bonus is what a service adds to its score in the ranking key: 24/7
// services first in an emergency, then the preferred organisation's.
func (q *query) bonus(f *features, c *chunk, j int32) float64 {
	return q.bonusOf(f.bits&fAlways != 0, c, j)
}

// bonusOf is bonus of the service at j of c, open 24/7 when always.
func (q *query) bonusOf(always bool, c *chunk, j int32) float64 {
	b := 0.0
	if q.emergency && always {
		b += 4
	}
	if q.preferred != "" && c.svc[j].Organisation == q.preferred {
		b += 2
	}
	return b
}

// denseClasses reports whether the classes of the match are found through
// scratch.classIdx, by their compact cover (and, in a cross-border case,
// compact proper needs), rather than through scratch.classMap.
func (q *query) denseClasses() bool {
	if q.cross {
		return 2*len(q.needBits) <= maxDenseNeeds
	}
	return len(q.needBits) <= maxDenseNeeds
}

// class returns the index of the class of the candidates meeting exactly
// cover (and proper), creating it with room for k entries.
func (sc *scratch) class(q *query, cover, proper uint64, k int) int {
	var ci int
	if q.denseClasses() {
		c := int(cover)
		if q.cross {
			c |= int(proper) << len(q.needBits)
		}
		if v := sc.classIdx[c]; v >= 0 {
			return int(v)
		}
		ci = len(sc.classes)
		sc.classIdx[c] = int16(ci)
	} else {
		key := [2]uint64{cover, proper}
		if v, ok := sc.classMap[key]; ok {
			return v
		}
		ci = len(sc.classes)
		sc.classMap[key] = ci
	}
	sc.classes = append(sc.classes, class{cover: cover, proper: proper, off: len(sc.entries), worst: math.Inf(-1)})
	for range k {
		sc.entries = append(sc.entries, entry{})
	}
	return ci
}

// better reports whether a ranks before b: higher key, then, on an exact
// tie, the name a caseworker reads (alphabetical), then the id, so that
// the order stays deterministic: the table's rank of the service
// (table.rankNames).
func (q *query) better(a, b *entry) bool {
	if a.key != b.key {
		return a.key > b.key
	}
	return q.t.rank[a.i] < q.t.rank[b.i]
}

// offer inserts e into the class's ranking of k if it belongs there.
func (sc *scratch) offer(q *query, cl *class, e entry, k int) {
	top := sc.entries[cl.off : cl.off+k]
	if cl.n < k {
		cl.n++
	} else if !q.better(&e, &top[k-1]) {
		return
	}
	j := cl.n - 1
	for j > 0 && q.better(&e, &top[j-1]) {
		top[j] = top[j-1]
		j--
	}
	top[j] = e
	if cl.n == k {
		cl.worst = top[k-1].key
	}
}

func popcount(m uint64) int { return bits.OnesCount64(m) }
