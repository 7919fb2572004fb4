package reports

import (
	"slices"
	"strings"
	"time"

	"github.com/invictus-network/invictus/events"
)

// Family names one kind of fact the model counts. Every fact counts
// referrals: a referral adds one to a fact the first time one of its
// events makes the fact true, never twice.
type family uint8

const (
	famRequested   family = iota + 1 // A: "", B: ""
	famFlowCountry                   // A: referrer country, B: offered organisation's country, Code: offered|accepted|declined|expired
	famFlowOrg                       // A: referrer, B: offered organisation, Code: as famFlowCountry
	famReminded                      // B: offered organisation: an offer still open at its reminder time
	famAcceptTime                    // B: accepting organisation; times offer → acceptance
	famContact                       // A: "" ; times request → first contact
	famOutcome                       // A: need, Code: outcome
	famUnmatched                     // A: need, Code: reason
	famExcluded                      // A: need, Code: hard constraint that excluded services
	famFeedback                      // A: question, Code: "1".."5"
	famMissing                       // Code: what was missing
	famAny                           // Code: offered|accepted|unmatched, once per referral
)

// Flow codes of famFlowCountry and famFlowOrg.
const (
	flowOffered  = "offered"
	flowAccepted = "accepted"
	flowDeclined = "declined"
	flowExpired  = "expired"
)

// dims are a referral's dimensions, fixed at its request: the day it was
// requested, who referred it, where the victim is and the profile's
// victim-group codes. Sets of codes are bit masks over the taxonomy's
// lists (events.Needs, events.Crimes, events.Flags, channelCodes).
type dims struct {
	Day         int32 // days since 1970-01-01, UTC
	Referrer    string
	Country     string
	Region      string
	Needs       uint32
	Crimes      uint32
	Flags       uint32
	Channels    uint32
	AgeBand     string
	Gender      string
	Languages   string // sorted, comma-separated
	CrossBorder bool
}

// channelCodes are the profile's channel codes, in mask bit order.
var channelCodes = []string{"in_person", "phone", "video", "chat", "email", "home_visit"}

func mask(codes, of []string) uint32 {
	var m uint32
	for _, c := range codes {
		if i := slices.Index(of, c); i >= 0 && i < 32 {
			m |= 1 << i
		}
	}
	return m
}

func unmask(m uint32, of []string) []string {
	var out []string
	for i, c := range of {
		if i < 32 && m&(1<<i) != 0 {
			out = append(out, c)
		}
	}
	return out
}

// fact is one counter's key. A, B and Code are symbols (indexes into
// Model.syms), so that a key is 20 bytes and holds no pointer.
type fact struct {
	Dims    uint32 // index into Model.dims
	Fam     family
	A, B, C uint32
}

// factView is a fact with its symbols resolved, as reports read it.
type factView struct {
	Fam        family
	A, B, Code string
}

// cell is one counter: referrals, and for time families the minutes
// observed (a sparse histogram).
type cell struct {
	N     int
	Times map[int32]int32 `json:",omitempty"`
}

// placement is what the model keeps of an open offer.
type placement struct {
	Org       string
	OfferedAt int64 // unix seconds
	Remind    int64 // unix seconds; 0 for none
}

// open is the per-referral state the model needs to compute times and to
// count each referral once per fact. It is dropped when the referral is
// erased, or when it has been quiet for Config.Horizon (feedback may come
// long after a referral is closed, but not after the log forgets it).
type open struct {
	Dims      uint32
	Requested int64
	// Last is when the referral's last event happened (unix seconds); a
	// referral quiet for Config.Horizon is forgotten.
	Last      int64
	Contacted bool
	Offers    map[string]placement // by placement id
	Seen      []uint32             // facts already counted for this referral
	Needs     map[string]uint32    // needs of each planned placement
	Urgency   string
}

// ReminderFunc returns when an offer made at from with deadline is
// reminded. [Config.Reminder] defaults to half way.
type ReminderFunc func(urgency string, from, deadline time.Time) time.Time

// HorizonDefault is how long the model keeps what it needs of a referral
// after its last event: the default retention of closed referrals in
// the log, after which no event of theirs can come.
const HorizonDefault = 180 * 24 * time.Hour

// Config configures a [Model]. The zero value is usable.
type Config struct {
	// Horizon is how long after a referral's last event the model keeps
	// its per-referral state (its dimensions' index, open offers and the
	// facts it was counted in); later events of it are not counted. The
	// counts stay. It bounds the model's memory by time: what it keeps
	// is the counters of each day's referrals (one per combination of
	// dimensions and fact, however many referrals share it) and the
	// referrals active within the horizon. Default [HorizonDefault].
	Horizon time.Duration
	// Reminder computes an offer's reminder time; the routing service's
	// rule (referral.Deadlines.Reminder) is wired in by cmd/invictus.
	// Default: half way between offer and deadline.
	Reminder ReminderFunc
}

// Model is the coordinators' read model: counters of referrals over the
// REFERRALS event log, fed in log order by [Model.Apply]. It holds
// aggregates only, plus, for each referral, the small state needed to
// compute times and to count it once per fact. It is not safe for
// concurrent use; [Store] wraps it for that.
type Model struct {
	cfg Config
	seq uint64
	// swept is the last day (of event time) the model forgot the
	// referrals quiet for longer than the horizon.
	swept  int32
	events uint64
	dims   []dims
	dimIdx map[dims]uint32
	facts  []fact
	cells  []cell
	factIx map[fact]uint32
	refs   map[string]*open
	strs   map[string]string
	syms   []string
	symIx  map[string]uint32
}

// New returns an empty model.
func New(cfg Config) *Model {
	if cfg.Horizon <= 0 {
		cfg.Horizon = HorizonDefault
	}
	if cfg.Reminder == nil {
		cfg.Reminder = func(_ string, from, deadline time.Time) time.Time { return from.Add(deadline.Sub(from) / 2) }
	}
	return &Model{cfg: cfg, dimIdx: map[dims]uint32{}, factIx: map[fact]uint32{},
		refs: map[string]*open{}, strs: map[string]string{}, symIx: map[string]uint32{}}
}

// Sequence returns the stream sequence of the last event applied.
func (m *Model) Sequence() uint64 { return m.seq }

// Events returns how many events the model has applied.
func (m *Model) Events() uint64 { return m.events }

// Cells returns how many counters the model holds.
func (m *Model) Cells() int { return len(m.cells) }

// Open returns how many referrals the model keeps state for.
func (m *Model) Open() int { return len(m.refs) }

func (m *Model) intern(s string) string {
	if v, ok := m.strs[s]; ok {
		return v
	}
	m.strs[s] = s
	return s
}

// sym returns the symbol of s, adding it if new.
func (m *Model) sym(s string) uint32 {
	if i, ok := m.symIx[s]; ok {
		return i
	}
	i := uint32(len(m.syms))
	m.syms = append(m.syms, s)
	m.symIx[s] = i
	return i
}

func (m *Model) view(f *fact) factView {
	return factView{Fam: f.Fam, A: m.syms[f.A], B: m.syms[f.B], Code: m.syms[f.C]}
}

func dayOf(t time.Time) int32 { return int32(t.UTC().Unix() / 86400) }

// Apply adds one event of the log, at stream sequence seq, to the model.
// Events of types the model does not count, events of referrals it never
// saw requested and sequences at or below [Model.Sequence] change nothing
// but the sequence.
func (m *Model) Apply(seq uint64, env *events.Envelope) {
	if seq != 0 && seq <= m.seq {
		return
	}
	if seq != 0 {
		m.seq = seq
	}
	m.events++
	e := env.Event
	id, at := e.Subject(), e.Time().UTC()
	if day := dayOf(at); day > m.swept {
		m.swept = day
		m.forget(at.Add(-m.cfg.Horizon).Unix())
	}
	if v, ok := env.Payload.(*events.Requested); ok {
		if _, dup := m.refs[id]; !dup {
			m.request(id, at, e.Source(), v)
		}
		return
	}
	r := m.refs[id]
	if r == nil {
		return
	}
	r.Last = max(r.Last, at.Unix())
	switch v := env.Payload.(type) {
	case *events.Planned:
		r.Needs = make(map[string]uint32, len(v.Groups))
		for _, g := range v.Groups {
			r.Needs[g.Placement] = mask(g.Needs, events.Needs)
		}
		for _, u := range v.Unmatched {
			if u.Reason != "excluded" {
				continue
			}
			for c, n := range v.ExcludedBy(u) {
				if n > 0 {
					m.count(r, famExcluded, u.Need, "", c)
				}
			}
		}
	case *events.Offered:
		org := m.intern(v.Organisation)
		var remind int64
		if !v.Deadline.IsZero() {
			remind = m.cfg.Reminder(r.Urgency, at, v.Deadline).Unix()
		}
		if r.Offers == nil {
			r.Offers = map[string]placement{}
		}
		r.Offers[v.Placement] = placement{Org: org, OfferedAt: at.Unix(), Remind: remind}
		m.flow(r, org, flowOffered)
	case *events.Accepted:
		if p, ok := m.answer(r, v.Placement, at); ok {
			m.flow(r, p.Org, flowAccepted)
			f := m.count(r, famAcceptTime, "", p.Org, "")
			m.time(f, at.Unix()-p.OfferedAt)
		}
	case *events.Declined:
		if p, ok := m.answer(r, v.Placement, at); ok {
			m.flow(r, p.Org, flowDeclined)
			delete(r.Offers, v.Placement)
		}
	case *events.Expired:
		if p, ok := m.answer(r, v.Placement, at); ok {
			m.flow(r, p.Org, flowExpired)
			delete(r.Offers, v.Placement)
		}
	case *events.Contacted:
		if !r.Contacted {
			r.Contacted = true
			f := m.count(r, famContact, "", "", "")
			m.time(f, at.Unix()-r.Requested)
		}
	case *events.Completed:
		for _, n := range unmask(r.Needs[v.Placement], events.Needs) {
			m.count(r, famOutcome, n, "", v.Outcome)
		}
		delete(r.Offers, v.Placement)
		delete(r.Needs, v.Placement)
	case *events.Unmatched:
		for _, n := range v.Needs {
			m.count(r, famUnmatched, n, "", v.Reason)
		}
		m.count(r, famAny, "", "", "unmatched")
	case *events.Withdrawn:
		clear(r.Offers)
	case *events.Erased:
		// The counts stay (they are aggregates); what the model kept of
		// the referral goes.
		delete(m.refs, id)
	case *events.Feedback:
		for _, a := range v.Answers {
			m.count(r, famFeedback, a.Question, "", string(rune('0'+a.Value)))
		}
		for _, c := range v.Missing {
			m.count(r, famMissing, "", "", c)
		}
	}
}

// forget drops the state of every referral whose last event is before
// the unix time before. It runs once per new day of event time, so its
// cost is spread over the day's events.
func (m *Model) forget(before int64) {
	for id, r := range m.refs {
		if r.Last < before {
			delete(m.refs, id)
		}
	}
}

func (m *Model) request(id string, at time.Time, source string, v *events.Requested) {
	referrer, _ := events.OrgOfSource(source)
	langs := slices.Clone(v.Languages)
	slices.Sort(langs)
	d := dims{
		Day:         dayOf(at),
		Referrer:    m.intern(referrer),
		Country:     m.intern(v.Location.Country),
		Region:      m.intern(v.Location.Region),
		Needs:       mask(v.Needs, events.Needs),
		Crimes:      mask(v.Crimes, events.Crimes),
		Flags:       mask(v.Flags, events.Flags),
		Channels:    mask(v.Channels, channelCodes),
		AgeBand:     m.intern(v.AgeBand),
		Gender:      m.intern(v.Gender),
		Languages:   m.intern(strings.Join(langs, ",")),
		CrossBorder: v.Location.ResidenceCountry != "" && v.Location.ResidenceCountry != v.Location.Country,
	}
	di, ok := m.dimIdx[d]
	if !ok {
		di = uint32(len(m.dims))
		m.dims = append(m.dims, d)
		m.dimIdx[d] = di
	}
	r := &open{Dims: di, Requested: at.Unix(), Last: at.Unix(), Urgency: m.intern(v.Urgency)}
	m.refs[id] = r
	m.count(r, famRequested, "", "", "")
}

// answer closes the open offer of placement at at, counting its reminder
// if the offer was still open when it was due.
func (m *Model) answer(r *open, placement string, at time.Time) (placement, bool) {
	p, ok := r.Offers[placement]
	if !ok {
		return p, false
	}
	if p.Remind != 0 && at.Unix() >= p.Remind {
		m.count(r, famReminded, "", p.Org, "")
	}
	return p, true
}

func (m *Model) flow(r *open, org, code string) {
	if code == flowOffered || code == flowAccepted {
		m.count(r, famAny, "", "", code)
	}
	m.count(r, famFlowOrg, m.dims[r.Dims].Referrer, org, code)
	m.count(r, famFlowCountry, countryOf(m.dims[r.Dims].Referrer), countryOf(org), code)
}

func countryOf(org string) string {
	cc, _, _ := strings.Cut(org, ".")
	return cc
}

// count adds r to the fact once and returns the fact's index.
func (m *Model) count(r *open, fam family, a, b, code string) uint32 {
	f := fact{Dims: r.Dims, Fam: fam, A: m.sym(a), B: m.sym(b), C: m.sym(code)}
	i, ok := m.factIx[f]
	if !ok {
		i = uint32(len(m.facts))
		m.facts = append(m.facts, f)
		m.cells = append(m.cells, cell{})
		m.factIx[f] = i
	}
	if !slices.Contains(r.Seen, i) {
		r.Seen = append(r.Seen, i)
		m.cells[i].N++
	}
	return i
}

// time records a duration in seconds in a time fact's histogram, in
// whole minutes.
func (m *Model) time(f uint32, seconds int64) {
	c := &m.cells[f]
	if c.Times == nil {
		c.Times = map[int32]int32{}
	}
	c.Times[int32(max(seconds, 0)/60)]++
}
