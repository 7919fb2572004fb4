package routing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"

	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/internal/clip"
	"github.com/invictus-network/invictus/referral"
)

// Defaults and limits of [ServiceConfig].
const (
	// MaxAttemptsDefault bounds how often one command is decided again
	// after a concurrent append to the same referral.
	MaxAttemptsDefault = 5
	// MaxAttemptsMax is the largest accepted ServiceConfig.MaxAttempts.
	MaxAttemptsMax = 100
	// CacheSizeDefault is how many referral states one service keeps in
	// memory, so that a command reads only the events appended since.
	CacheSizeDefault = 4096
)

// idNamespace is the UUIDv5 namespace of the ids of the routing service's
// own events (see [EventID]).
var idNamespace = uuid.MustParse("1ebb8239-2951-4905-a17d-f1bf9ac5feb7")

// ServiceConfig configures a [Service]. The zero value of every field means its
// default.
type ServiceConfig struct {
	// Deadlines of offers by urgency; zero fields take
	// referral.DefaultDeadlines.
	Deadlines referral.Deadlines
	// MaxAttempts bounds how often a command is decided again after a
	// concurrent append (ErrConflict). Default [MaxAttemptsDefault].
	MaxAttempts int
	// CacheSize is how many referral states are cached; negative disables
	// the cache. Default [CacheSizeDefault].
	CacheSize int
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger receives the service's logs; never victim data. Default
	// discards.
	Logger *slog.Logger
	// Observer is told the outcome of every command, every offer and
	// expiry, and every change of a referral's status, for metrics.
	// Default none.
	Observer Observer
	// Tracer starts the spans of matching and appending. Default none.
	Tracer Tracer
}

// WithDefaults returns a copy of c with every unset field given its default.
func (c ServiceConfig) WithDefaults() ServiceConfig {
	c.Deadlines = c.Deadlines.WithDefaults()
	if c.MaxAttempts == 0 {
		c.MaxAttempts = MaxAttemptsDefault
	}
	if c.CacheSize == 0 {
		c.CacheSize = CacheSizeDefault
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Observer == nil {
		c.Observer = nopObserver{}
	}
	if c.Tracer == nil {
		c.Tracer = nopTracer{}
	}
	return c
}

// Validate reports the first invalid field of c, naming it. Call it on the
// result of [ServiceConfig.WithDefaults].
func (c ServiceConfig) Validate() error {
	if err := c.Deadlines.Validate(); err != nil {
		return fmt.Errorf("routing: ServiceConfig.%w", err)
	}
	if c.MaxAttempts < 1 || c.MaxAttempts > MaxAttemptsMax {
		return fmt.Errorf("routing: ServiceConfig.MaxAttempts %d must be from 1 to %d", c.MaxAttempts, MaxAttemptsMax)
	}
	return nil
}

// Service drives referrals: it authorises each command against the
// referral's state, plans new referrals with the [Matcher], and appends the
// resulting events to the referral's log with optimistic concurrency. It
// does no delivery itself: each appended event carries its recipients and
// timers, which the log's dispatcher acts on. A Service is safe for
// concurrent use, and any number of them may share one log.
type Service struct {
	log     EventLog
	dir     Directory
	matcher *Matcher
	cfg     ServiceConfig
	cache   *stateCache
}

// NewService returns a service appending to log, planning with m against
// dir's snapshots. It returns an error naming an invalid ServiceConfig field or a
// missing dependency.
func NewService(log EventLog, dir Directory, m *Matcher, cfg ServiceConfig) (*Service, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	switch {
	case log == nil:
		return nil, errors.New("routing: NewService needs an EventLog")
	case dir == nil:
		return nil, errors.New("routing: NewService needs a Directory")
	case m == nil:
		return nil, errors.New("routing: NewService needs a Matcher")
	}
	return &Service{log: log, dir: dir, matcher: m, cfg: cfg, cache: newStateCache(cfg.CacheSize)}, nil
}

// Handle processes one command sent by by (the organisation of the INBOUND
// subject it arrived on, or a coordinator). It returns nil when the
// command's events are appended, or were already (a command delivered or
// sent twice changes nothing the second time).
//
// Errors: a *[Rejection] (errors.Is ErrRejected) when the command is not
// allowed: the caller tells the sender and sets the command aside, and
// nothing changed; an error wrapping ErrCorrupt when the referral's log
// does not fold; anything else (ErrUnavailable, ErrConflict after
// ServiceConfig.MaxAttempts attempts, ctx's error) is worth retrying later.
//
// The outcome is reported to ServiceConfig.Observer: accepted, duplicate,
// rejected or failed (ErrCorrupt); an error worth retrying is not.
func (s *Service) Handle(ctx context.Context, cmd *events.Envelope, by referral.Actor) error {
	changed, err := s.handle(ctx, cmd, by)
	if outcome := commandOutcome(err, changed); outcome != "" {
		typ := ""
		if cmd != nil {
			typ = cmd.Event.Type()
		}
		s.cfg.Observer.Command(typ, outcome)
	}
	return err
}

// handle is Handle without the observer; changed reports whether the
// last decision on the command appended events.
func (s *Service) handle(ctx context.Context, cmd *events.Envelope, by referral.Actor) (changed bool, _ error) {
	if cmd == nil || cmd.Payload == nil {
		return false, &Rejection{Code: referral.CodeInvalid, Problems: []events.Problem{{Code: referral.CodeInvalid, Message: "no command"}}}
	}
	if by.Org != "" && cmd.Event.Source() != events.SourceOf(by.Org) {
		return false, rejectErr(&referral.Error{Code: referral.CodeForbidden, Pointer: "/source",
			Message: fmt.Sprintf("source %q is not the sender %s", cmd.Event.Source(), events.SourceOf(by.Org))})
	}
	id := cmd.Event.Subject()
	if !events.IsReferralID(id) {
		return false, rejectErr(&referral.Error{Code: referral.CodeInvalid, Pointer: "/subject",
			Message: fmt.Sprintf("subject %q is not a referral id", id)})
	}
	key := cmd.Event.Source() + " " + cmd.Event.ID()
	err := s.retry(ctx, id, func(st refState) ([]Outgoing, referral.State, error) {
		out, next, err := s.decide(ctx, st, cmd, by, key)
		changed = len(out) > 0
		return out, next, err
	})
	return changed, err
}

// OnTimer handles the deadline of attempt of placement firing: it appends
// referral.expired and the next offer (or referral.unmatched). A stale
// timer (the offer was answered or superseded, the referral closed or
// erased) changes nothing and returns nil; so does a timer that fires
// twice.
//
// Errors: a *[TooEarlyError] (ErrTooEarly) when the deadline has not
// passed yet; a *[Rejection] when the referral or placement does not exist;
// otherwise as [Service.Handle].
func (s *Service) OnTimer(ctx context.Context, referralID, placement string, attempt int) error {
	key := "timer " + referralID + " " + placement + " " + strconv.Itoa(attempt)
	return s.retry(ctx, referralID, func(st refState) ([]Outgoing, referral.State, error) {
		now := s.cfg.Now()
		pays, err := referral.OnTimer(st.State, placement, attempt, now, s.cfg.Deadlines)
		if errors.Is(err, referral.ErrTooEarly) {
			p, _ := st.Placement(placement)
			return nil, st.State, &TooEarlyError{At: p.Offer.Deadline}
		}
		if err != nil {
			return nil, st.State, rejectErr(err)
		}
		if len(pays) == 0 {
			return nil, st.State, nil
		}
		return s.emit(st.State, pays, key, 0, "", now)
	})
}

// ReminderDue reports whether the offer of attempt of placement is still
// open, so that its reminder is worth sending. It returns an error
// wrapping ErrUnavailable or ErrCorrupt when the referral cannot be read.
func (s *Service) ReminderDue(ctx context.Context, referralID, placement string, attempt int) (bool, error) {
	st, err := s.load(ctx, referralID)
	if err != nil {
		return false, err
	}
	_, ok := st.LiveOffer(placement, attempt)
	return ok, nil
}

// State returns the current state of a referral (the zero State when it
// does not exist). Errors wrap ErrUnavailable or ErrCorrupt.
func (s *Service) State(ctx context.Context, referralID string) (referral.State, error) {
	st, err := s.load(ctx, referralID)
	return st.State, err
}

// decideFunc computes the events to append on state st and the state
// they lead to; no events and no error means nothing to do.
type decideFunc func(st refState) ([]Outgoing, referral.State, error)

// retry completes what the referral owes, decides and appends, again on
// ErrConflict and ErrDuplicate, at most MaxAttempts times.
//
// The first attempt is speculative: it decides on the cached state, or
// for a referral not in the cache on none (most such commands create a
// new referral), without reading the log. That saves a round trip per
// command and is safe because every append expects the referral's last
// sequence: if the log has moved on (another instance appended, or the
// referral exists already), the append fails with ErrConflict and the
// next attempt reads the log. A speculative decision that appends
// nothing (a rejection, a duplicate, a stale timer, an error) is never
// trusted: the log is read and the decision made again before anyone is
// told.
func (s *Service) retry(ctx context.Context, id string, decide decideFunc) error {
	var last error
	st, _ := s.cache.get(id)
	speculative := true
	for attempt := 0; attempt < s.cfg.MaxAttempts; {
		if !speculative {
			var err error
			if st, err = s.load(ctx, id); err != nil {
				return err
			}
		}
		owed, done, err := s.complete(ctx, st)
		if err != nil {
			if speculative {
				speculative = false
				continue
			}
			return err
		}
		if len(owed) > 0 {
			if st, err = s.append(ctx, st, owed, done); err != nil {
				last = err
				if !retryable(err) {
					return err
				}
				speculative = false
				attempt++
				continue
			}
			s.cfg.Logger.InfoContext(ctx, "routing: completed an interrupted append", slog.String("referral", id), slog.Int("events", len(owed)))
		}
		out, next, err := decide(st)
		if err != nil || len(out) == 0 {
			if speculative {
				speculative = false // check against the log before answering
				continue
			}
			return err
		}
		if _, err = s.append(ctx, st, out, next); err == nil {
			return nil
		}
		if last = err; !retryable(err) {
			return err
		}
		speculative = false
		attempt++
	}
	return fmt.Errorf("routing: referral %s: %d attempts: %w", id, s.cfg.MaxAttempts, last)
}

// retryable reports whether an append failed because the referral moved
// on (another instance, or an earlier attempt, appended): decide again on
// the new state.
func retryable(err error) bool {
	return errors.Is(err, ErrConflict) || errors.Is(err, ErrDuplicate)
}

// append appends out, decided on st, and returns next, the state it leads
// to, with its new sequence. The cache forgets the referral on a failure.
func (s *Service) append(ctx context.Context, st refState, out []Outgoing, next referral.State) (refState, error) {
	subject := st.subject
	if subject == "" {
		var err error
		if subject, err = events.ReferralSubject(next.Country, next.ID); err != nil {
			return st, rejectErr(&referral.Error{Code: referral.CodeInvalid, Pointer: "/data/location/country", Message: err.Error()})
		}
	}
	actx, end := s.cfg.Tracer.Start(ctx, SpanAppend, AttrReferral, next.ID, AttrEvents, strconv.Itoa(len(out)), AttrEventType, eventTypes(out))
	seq, err := s.log.Append(actx, Append{ReferralID: next.ID, Subject: subject, Expected: st.Sequence, Events: out})
	if err != nil {
		end(err)
		s.cache.drop(next.ID)
		s.cfg.Logger.DebugContext(ctx, "routing: append failed", slog.String("referral", next.ID), slog.Any("error", err))
		return st, err
	}
	end(nil)
	next.Sequence = seq
	done := refState{State: next, subject: subject}
	s.cache.put(done)
	s.observeAppend(st.State, next, out)
	return done, nil
}

// complete returns the events the referral owes and the state they lead
// to: what a crash cut off from an earlier append (the plan of a
// requested referral, the next offer after a decline or expiry, the gap
// reports). Their ids derive from the referral and its last sequence, so
// two instances completing the same state write the same events, and the
// log keeps one.
func (s *Service) complete(ctx context.Context, st refState) ([]Outgoing, referral.State, error) {
	if !st.Exists() || st.Status == referral.StatusErased {
		return nil, st.State, nil
	}
	now := s.cfg.Now()
	key := "owed " + st.ID + " " + strconv.FormatUint(st.Sequence, 10)
	next := st.State
	var out []Outgoing
	first := 0
	if next.Status == referral.StatusRequested {
		plan, err := s.plan(ctx, events.Requested{Profile: next.Profile, PreferredOrganisation: next.PreferredOrganisation}, next.Referrer, now)
		if err != nil {
			return nil, st.State, err
		}
		if out, next, err = s.emit(next, []events.Payload{plan}, key, 0, "", now); err != nil {
			return nil, st.State, err
		}
		first = 1
	}
	more, next, err := s.emit(next, referral.Pending(next, now, s.cfg.Deadlines), key, first, "", now)
	if err != nil {
		return nil, st.State, err
	}
	out = append(out, more...)
	setCancels(st.State, next, out)
	return out, next, nil
}

// decide authorises cmd on st and returns the events to append.
func (s *Service) decide(ctx context.Context, st refState, cmd *events.Envelope, by referral.Actor, key string) ([]Outgoing, referral.State, error) {
	now := s.cfg.Now()
	d, err := referral.Decide(st.State, cmd, by, now, s.cfg.Deadlines)
	if errors.Is(err, referral.ErrDuplicate) {
		return nil, st.State, nil
	}
	if err != nil {
		return nil, st.State, rejectErr(err)
	}
	if h, ok := cmd.Payload.(*events.Handover); ok {
		if err := s.checkRecipient(st.State, *h); err != nil {
			return nil, st.State, err
		}
	}
	var out []Outgoing
	next := st.State
	if d.Record {
		o := Outgoing{Event: cmd.Event, Recipients: referral.Recipients(next, cmd.Payload)}
		if next, err = referral.Apply(next, cmd); err != nil {
			return nil, st.State, rejectErr(err)
		}
		out = append(out, o)
	}
	pays, first := d.Events, 0
	if req, ok := cmd.Payload.(*events.Requested); ok {
		plan, err := s.plan(ctx, *req, next.Referrer, now)
		if err != nil {
			return nil, st.State, err
		}
		planned, after, err := s.emit(next, []events.Payload{plan}, key, 0, cmd.Event.ID(), now)
		if err != nil {
			return nil, st.State, err
		}
		out, next, first = append(out, planned...), after, 1
		pays = append(referral.OffersAfterPlan(next, now, s.cfg.Deadlines), pays...)
	}
	more, next, err := s.emit(next, pays, key, first, cmd.Event.ID(), now)
	if err != nil {
		return nil, st.State, err
	}
	out = append(out, more...)
	if d.Erase {
		for i := range out {
			out[i].Erase = true
		}
	}
	setCancels(st.State, next, out)
	return out, next, nil
}

// plan runs the matcher on the current directory snapshot for a referral
// from the organisation referrer (whose own services are never planned).
// A profile the matcher refuses is a rejection; any other failure is
// retried.
func (s *Service) plan(ctx context.Context, req events.Requested, referrer string, now time.Time) (_ *events.Planned, err error) {
	_, end := s.cfg.Tracer.Start(ctx, SpanMatch, AttrNeeds, strings.Join(req.Profile.Needs, ","))
	var groups, unmatched int
	defer func() { end(err, AttrGroups, strconv.Itoa(groups), AttrUnmatched, strconv.Itoa(unmatched)) }()
	opts := []MatchOption{At(now), WithReferrer(referrer)}
	if req.PreferredOrganisation != "" {
		opts = append(opts, WithPreferredOrganisation(req.PreferredOrganisation))
	}
	p, err := s.matcher.Match(s.dir.Snapshot(), req.Profile, opts...)
	if errors.Is(err, ErrInvalidProfile) {
		return nil, &Rejection{Code: referral.CodeInvalid, Problems: []events.Problem{{Pointer: "/data", Code: referral.CodeInvalid, Message: err.Error()}}}
	}
	if err != nil {
		return nil, fmt.Errorf("%w: plan: %w", ErrUnavailable, err)
	}
	ev := p.Event()
	groups, unmatched = len(ev.Groups), len(ev.Unmatched)
	return &ev, nil
}

// checkRecipient checks that a handover is sealed to the age recipient
// the accepting organisation publishes in the directory, so that a
// mistaken envelope never reaches anyone.
func (s *Service) checkRecipient(st referral.State, h events.Handover) error {
	pl, ok := st.Placement(h.Placement)
	if !ok || pl.AcceptedBy == "" {
		return nil // Decide has rejected it already
	}
	org := s.dir.Snapshot().Organisation(pl.AcceptedBy)
	switch {
	case org == nil || org.AgeRecipient == "":
		return rejectErr(&referral.Error{Code: referral.CodeConflict, Pointer: "/data/recipient",
			Message: fmt.Sprintf("%s publishes no age recipient in the directory", pl.AcceptedBy)})
	case org.AgeRecipient != h.Recipient:
		return rejectErr(&referral.Error{Code: referral.CodeInvalid, Pointer: "/data/recipient",
			Message: fmt.Sprintf("the envelope is not sealed to the recipient %s publishes in the directory", pl.AcceptedBy)})
	}
	return nil
}

// emit turns the routing service's payloads into events applied on top of
// st, with ids derived from key and their index (from first), so that
// deciding the same command again gives the same ids.
func (s *Service) emit(st referral.State, pays []events.Payload, key string, first int, correlation string, now time.Time) ([]Outgoing, referral.State, error) {
	out := make([]Outgoing, 0, len(pays))
	for i, p := range pays {
		ev, err := ownEvent(st.ID, p, EventID(key, first+i), now, correlation)
		if err != nil {
			return nil, st, fmt.Errorf("routing: build %s: %w", p.EventType(), err)
		}
		env := &events.Envelope{Event: ev, Payload: p}
		o := Outgoing{Event: ev, Recipients: referral.Recipients(st, p)}
		next, err := referral.Apply(st, env)
		if err != nil {
			return nil, st, fmt.Errorf("routing: apply own %s: %w", p.EventType(), err)
		}
		if off, ok := p.(*events.Offered); ok {
			o.Timer = &Timer{
				ReferralID:   st.ID,
				Placement:    off.Placement,
				Attempt:      off.Attempt,
				Organisation: off.Organisation,
				Remind:       s.cfg.Deadlines.Reminder(st.Profile.Urgency, now, off.Deadline),
				Deadline:     off.Deadline,
			}
		}
		out = append(out, o)
		st = next
	}
	return out, st, nil
}

// ownEvent builds one of the routing service's own events about referral
// referralID, as events.New(events.SourceRouting, referralID, p,
// WithID(id), WithTime(now), WithCorrelationID(correlation)) would: the
// same attributes and data. The payload is not encoded and decoded again:
// New's round trip through the strict JSON decoder guards data from
// elsewhere, and here cost as much as the rest of a command's decision.
// Nor are the plan, the offers and the unmatched reports, which are
// nearly every event the service writes, checked against the contract
// (events.ValidatePayload): they are made of the requested profile, which
// was checked when the command decoded, and of the matcher's and the
// state machine's output (an unmatched report repeats the profile and the
// plan's gaps), which the tests check against the contract (the matcher's
// property tests over random profiles and directories, and every event of
// the service's tests, read back through the decoder); checking them
// again cost more CPU than planning, a report's profile as much as the
// command's. The service's other events, rare and small, are checked as
// New checks them. The attributes are the
// service's own (a referral id checked by the caller, a UUID, the routing
// source, the id of a command that decoded), valid by construction. It
// returns a *events.ValidationError when a checked payload breaks the
// contract.
func ownEvent(referralID string, p events.Payload, id string, now time.Time, correlation string) (event.Event, error) {
	switch p.(type) {
	case *events.Planned, *events.Offered, *events.Unmatched:
	default:
		if err := events.ValidatePayload(p); err != nil {
			return event.Event{}, err
		}
	}
	data, err := json.Marshal(p)
	if err != nil {
		return event.Event{}, fmt.Errorf("routing: encode %s: %w", p.EventType(), err)
	}
	e := event.New(event.CloudEventsVersionV1)
	e.SetID(id)
	e.SetSource(events.SourceRouting)
	e.SetType(p.EventType())
	e.SetSubject(referralID)
	e.SetTime(now.UTC().Round(0))
	e.SetDataSchema(events.SchemaURI(p.EventType()))
	e.SetDataContentType(events.ContentTypeJSON)
	if correlation != "" {
		e.SetExtension(events.ExtCorrelationID, correlation)
	}
	e.DataEncoded = data
	return e, nil
}

// setCancels marks on the last event the placements that had an open
// offer before and have none after: their timers are not needed any more.
// A placement offered again within the same append keeps its timer, which
// the new offer's replaces.
func setCancels(before, after referral.State, out []Outgoing) {
	if len(out) == 0 {
		return
	}
	var cancel []string
	for _, p := range before.Placements {
		if p.Status != referral.PlacementOffered {
			continue
		}
		if q, ok := after.Placement(p.ID); !ok || q.Status != referral.PlacementOffered {
			cancel = append(cancel, p.ID)
		}
	}
	if after.Status == referral.StatusErased {
		cancel = nil // erasure purges every timer
	}
	out[len(out)-1].Cancel = cancel
}

// EventID returns the id of the index-th event the routing service
// appends for key (a command's source and id, or a timer): a UUIDv5, the
// same every time, so that deciding a redelivered command again produces
// events that the log recognises as already stored.
func EventID(key string, index int) string {
	return uuid.NewSHA1(idNamespace, []byte(key+"\x00"+strconv.Itoa(index))).String()
}

// refState is a referral state with its subject in the log.
type refState struct {
	referral.State
	subject string
}

// load returns the referral's current state: the cached state brought up
// to date with the events appended since, or the fold of its whole log.
func (s *Service) load(ctx context.Context, id string) (refState, error) {
	st, cached := s.cache.get(id)
	h, err := s.log.Load(ctx, id, st.Sequence)
	if err != nil {
		return refState{}, err
	}
	if cached && len(h.Events) == 0 && h.Last == st.Sequence {
		return st, nil
	}
	if cached && h.Last < st.Sequence {
		// The cache is ahead of the log (it cannot be, unless the stream
		// was reset): read everything again.
		s.cache.drop(id)
		st = refState{}
		if h, err = s.log.Load(ctx, id, 0); err != nil {
			return refState{}, err
		}
	}
	next := st.State
	for i, ev := range h.Events {
		n, err := referral.Apply(next, ev)
		if errors.Is(err, referral.ErrDuplicate) {
			continue
		}
		if err != nil {
			s.cache.drop(id)
			return refState{}, fmt.Errorf("%w: referral %s event %d (%s): %w", ErrCorrupt, id, i, ev.Event.ID(), err)
		}
		next = n
	}
	next.Sequence = h.Last
	out := refState{State: next, subject: h.Subject}
	if out.subject == "" {
		out.subject = st.subject
	}
	if next.Exists() {
		s.cache.put(out)
	}
	return out, nil
}

// Rejection is a command the routing service does not accept: the codes
// and problems of the command.rejected sent back to its sender. Nothing
// changed. errors.Is(r, ErrRejected) is true.
type Rejection struct {
	// Code is the main reason, a token fit for a DLQ subject: forbidden,
	// conflict, not_found, invalid, erased, or an events Code* of a
	// command that did not decode.
	Code string
	// Problems are the command.rejected errors.
	Problems []events.Problem
}

// Error describes the first problem.
func (r *Rejection) Error() string {
	if len(r.Problems) == 0 {
		return "routing: command rejected: " + r.Code
	}
	p := r.Problems[0]
	return fmt.Sprintf("routing: command rejected: %s at %q: %s", p.Code, p.Pointer, p.Message)
}

// Is reports whether target is ErrRejected.
func (r *Rejection) Is(target error) bool { return target == ErrRejected }

// RejectionOf returns err as a rejection: the *Rejection in its chain, a
// *referral.Error, or an *events.ValidationError of a command that did not
// decode (code "decode"). It returns nil for any other error.
func RejectionOf(err error) *Rejection {
	var r *Rejection
	if errors.As(err, &r) {
		return r
	}
	var re *referral.Error
	if errors.As(err, &re) {
		return &Rejection{Code: re.Code, Problems: []events.Problem{re.Problem()}}
	}
	var ve *events.ValidationError
	if errors.As(err, &ve) {
		ps := slices.Clone(ve.Problems)
		if len(ps) == 0 {
			ps = []events.Problem{{Code: events.CodeFormat, Message: ve.Error()}}
		}
		if len(ps) > 100 {
			ps = ps[:100]
		}
		return &Rejection{Code: CodeDecode, Problems: ps}
	}
	return nil
}

// CodeDecode is the Rejection code of a command that did not decode.
const CodeDecode = "decode"

func rejectErr(err error) error {
	if r := RejectionOf(err); r != nil {
		return r
	}
	return err
}

// TooEarlyError is returned by [Service.OnTimer] for a deadline timer that
// fired before the offer's deadline. errors.Is(err, ErrTooEarly) is true.
type TooEarlyError struct {
	// At is the offer's deadline: fire the timer again then.
	At time.Time
}

// Error says when the deadline is.
func (e *TooEarlyError) Error() string {
	return "routing: timer fired before the deadline " + e.At.Format(time.RFC3339Nano)
}

// Is reports whether target is ErrTooEarly.
func (e *TooEarlyError) Is(target error) bool { return target == ErrTooEarly }

// Rejected returns the command.rejected event telling sender (an
// organisation id) why its command was not accepted. subject is the
// command's referral id, or the sender's organisation id when the command
// names no valid referral. Its id derives from the sender and the
// command's id (unique per sender only), so a rejection sent twice is one
// event and two senders' rejections are two.
func Rejected(sender, commandID, commandType, subject string, r *Rejection, now time.Time) (*events.Envelope, error) {
	p := &events.CommandRejected{Command: commandID, CommandType: commandType, Errors: r.Problems}
	if !events.IsEventID(p.Command) {
		// An id outside the contract's alphabet (a path, a wildcard,
		// markup, a lone surrogate...) is not repeated; the problems say
		// what was wrong with it.
		p.Command = "unknown"
		commandID = ""
	}
	if _, known := events.NewPayload(p.CommandType); !known {
		p.CommandType = ""
	}
	for i := range p.Errors {
		p.Errors[i].Message = clip.To(p.Errors[i].Message, 500)
		p.Errors[i].Pointer = clip.To(p.Errors[i].Pointer, 512)
		p.Errors[i].Code = clip.To(p.Errors[i].Code, 64)
	}
	opts := []events.Option{events.WithID(EventID("rejected "+sender+" "+p.Command+" "+subject, 0)), events.WithTime(now)}
	if commandID != "" {
		opts = append(opts, events.WithCorrelationID(commandID))
	}
	ev, err := events.New(events.SourceRouting, subject, p, opts...)
	if err != nil {
		return nil, fmt.Errorf("routing: build command.rejected: %w", err)
	}
	return &events.Envelope{Event: ev, Payload: p}, nil
}
