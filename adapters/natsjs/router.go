package natsjs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/internal/wire"
	"github.com/invictus-network/invictus/referral"
	"github.com/invictus-network/invictus/routing"
)

// Durable consumer names and defaults of [RouterConfig].
const (
	// ConsumerRouting is the durable INBOUND consumer that every routing
	// instance shares.
	ConsumerRouting = wire.ConsumerRouting
	// ConsumerDispatcher is the durable REFERRALS consumer that delivers
	// appended events and sets their timers.
	ConsumerDispatcher = wire.ConsumerDispatcher
	// ConsumerTimers is the durable consumer of fired timers
	// (timer.fire.> in TIMERS).
	ConsumerTimers = wire.ConsumerTimers

	// WorkersDefault is how many messages of each consumer one router
	// handles at once. Messages of one referral go to the same worker, in
	// order.
	WorkersDefault = 16
	// MaxAckPendingDefault bounds the unacknowledged messages of each
	// consumer, across all instances.
	MaxAckPendingDefault = 1024
	// AckWaitDefault is how long a message may stay unacknowledged before
	// JetStream delivers it again (to any instance).
	AckWaitDefault = 30 * time.Second
	// MaxDeliverDefault is how many times a command is tried before it is
	// set aside in DLQ as undeliverable.
	MaxDeliverDefault = 10
	// RetryDelayDefault is the first delay of a command or event that
	// failed for a transient reason; it doubles with each delivery, up to
	// RetryDelayMax.
	RetryDelayDefault = 500 * time.Millisecond
	// RetryDelayMax caps the retry delay.
	RetryDelayMax = 30 * time.Second
	// PinnedTTLDefault is how long the dispatcher stays pinned to a router
	// that has stopped pulling (crashed) before another takes over.
	PinnedTTLDefault = 10 * time.Second
	// dispatchGroup is the priority group of the dispatcher consumer.
	dispatchGroup = "dispatch"
)

// DLQ reasons set by the router, next to the rejection codes (forbidden,
// conflict, not_found, invalid, erased, decode).
const (
	ReasonSubject     = "subject"       // a message on a subject the router cannot parse
	ReasonCorrupt     = "corrupt"       // the referral's log does not fold
	ReasonUndelivered = "undeliverable" // tried MaxDeliver times
)

// RouterConfig configures a [Router]. The zero value of every field means
// its default.
type RouterConfig struct {
	// Inbound, Dispatcher and Timers name the durable consumers. Defaults
	// [ConsumerRouting], [ConsumerDispatcher], [ConsumerTimers].
	Inbound, Dispatcher, Timers string
	// Workers per consumer. Default [WorkersDefault].
	Workers int
	// MaxAckPending of each consumer. Default [MaxAckPendingDefault].
	MaxAckPending int
	// AckWait of each consumer. Default [AckWaitDefault].
	AckWait time.Duration
	// MaxDeliver is how many times a command is tried. Default
	// [MaxDeliverDefault].
	MaxDeliver int
	// RetryDelay is the first retry delay. Default [RetryDelayDefault].
	RetryDelay time.Duration
	// PinnedTTL is how long the dispatcher waits for a pinned router that
	// stopped pulling before another router takes over. Default
	// [PinnedTTLDefault].
	PinnedTTL time.Duration
	// Listings applies organisations' commands about their own listing
	// (directory.*.updated); nil rejects them. Default nil.
	Listings Listings
	// Forward, on a country hub, stores elsewhere a command another hub
	// decides and reports whether it did ([CrossBorder.Forward]); the
	// command is then acknowledged here. Default nil: every command is
	// decided here.
	Forward func(ctx context.Context, org string, env *events.Envelope, h nats.Header, data []byte) (bool, error)
	// Now is the clock of rejections. Default time.Now.
	Now func() time.Time
	// Logger receives the router's logs: ids and codes, never payloads.
	// Default discards.
	Logger *slog.Logger
}

// WithDefaults returns a copy of c with every unset field given its default.
func (c RouterConfig) WithDefaults() RouterConfig {
	if c.Inbound == "" {
		c.Inbound = ConsumerRouting
	}
	if c.Dispatcher == "" {
		c.Dispatcher = ConsumerDispatcher
	}
	if c.Timers == "" {
		c.Timers = ConsumerTimers
	}
	if c.Workers == 0 {
		c.Workers = WorkersDefault
	}
	if c.MaxAckPending == 0 {
		c.MaxAckPending = MaxAckPendingDefault
	}
	if c.AckWait == 0 {
		c.AckWait = AckWaitDefault
	}
	if c.MaxDeliver == 0 {
		c.MaxDeliver = MaxDeliverDefault
	}
	if c.RetryDelay == 0 {
		c.RetryDelay = RetryDelayDefault
	}
	if c.PinnedTTL == 0 {
		c.PinnedTTL = PinnedTTLDefault
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate reports the first invalid field of c, naming it.
func (c RouterConfig) Validate() error {
	switch {
	case c.Workers < 1 || c.Workers > 1024:
		return fmt.Errorf("natsjs: RouterConfig.Workers %d must be from 1 to 1024", c.Workers)
	case c.MaxAckPending < c.Workers:
		return fmt.Errorf("natsjs: RouterConfig.MaxAckPending %d must be at least Workers (%d)", c.MaxAckPending, c.Workers)
	case c.AckWait < time.Second:
		return fmt.Errorf("natsjs: RouterConfig.AckWait %s must be at least 1s", c.AckWait)
	case c.MaxDeliver < 1:
		return fmt.Errorf("natsjs: RouterConfig.MaxDeliver %d must be positive", c.MaxDeliver)
	case c.RetryDelay <= 0:
		return fmt.Errorf("natsjs: RouterConfig.RetryDelay %s must be positive", c.RetryDelay)
	case c.PinnedTTL < time.Second:
		return fmt.Errorf("natsjs: RouterConfig.PinnedTTL %s must be at least 1s", c.PinnedTTL)
	}
	for name, v := range map[string]string{"Inbound": c.Inbound, "Dispatcher": c.Dispatcher, "Timers": c.Timers} {
		if strings.ContainsAny(v, ".*> \t") {
			return fmt.Errorf("natsjs: RouterConfig.%s %q is not a consumer name", name, v)
		}
	}
	return nil
}

// Router runs the routing service on JetStream: it consumes commands from
// INBOUND and hands them to the [routing.Service], dispatches every event
// appended to REFERRALS to its recipients' delivery subjects and sets or
// cancels its timers, and feeds fired timers back to the service. Any
// number of routers (in one process or many) may run on the same streams:
// they share the durable consumers.
//
// Each consumer classifies every failure: a command that does not decode
// or is not allowed is terminated, copied to DLQ with the reason in
// headers, and answered with command.rejected to the organisation of the
// subject it arrived on; a transient failure is retried later with a
// growing delay; a command still failing after MaxDeliver tries is set
// aside too. No message blocks a consumer.
type Router struct {
	bus *Bus
	svc *routing.Service
	cfg RouterConfig
	// held is the command acknowledgement held back (see heldAck).
	held heldAck
	// cancels holds back the last cancellation of timers (see heldCancel).
	cancels heldCancel
}

// NewRouter returns a router driving svc over bus. It returns an error
// naming an invalid config field.
func NewRouter(bus *Bus, svc *routing.Service, cfg RouterConfig) (*Router, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if bus == nil || svc == nil {
		return nil, errors.New("natsjs: NewRouter needs a bus and a service")
	}
	r := &Router{bus: bus, svc: svc, cfg: cfg}
	r.cancels = heldCancel{bus: bus, log: cfg.Logger}
	return r, nil
}

// consumerSpec is one of the router's consumers.
type consumerSpec struct {
	stream string
	cfg    jetstream.ConsumerConfig
	// lane runs one lane of the consumer's messages until stop closes.
	lane  func(ctx context.Context, lane <-chan jetstream.Msg, stop <-chan struct{})
	key   func(jetstream.Msg) string
	group string // priority group, if any
}

// oneByOne returns a lane that handles its messages one after the other.
func oneByOne(handle func(context.Context, jetstream.Msg)) func(context.Context, <-chan jetstream.Msg, <-chan struct{}) {
	return func(ctx context.Context, lane <-chan jetstream.Msg, stop <-chan struct{}) {
		for {
			select {
			case m := <-lane:
				handle(ctx, m)
			case <-stop:
				return // messages left unhandled are delivered again
			}
		}
	}
}

func (r *Router) specs() []consumerSpec {
	base := func(name, filter string) jetstream.ConsumerConfig {
		return jetstream.ConsumerConfig{
			Durable:       name,
			FilterSubject: filter,
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       r.cfg.AckWait,
			MaxDeliver:    -1, // the handlers give up themselves, with a DLQ copy
			MaxAckPending: r.cfg.MaxAckPending,
			DeliverPolicy: jetstream.DeliverAllPolicy,
		}
	}
	// One router at a time dispatches (the others stand by), so that the
	// events of one referral reach each organisation in log order and an
	// erasure never races the dispatch of an earlier event.
	dispatcher := base(r.cfg.Dispatcher, SubjectsReferrals)
	dispatcher.PriorityPolicy = jetstream.PriorityPolicyPinned
	dispatcher.PriorityGroups = []string{dispatchGroup}
	dispatcher.PinnedTTL = r.cfg.PinnedTTL
	return []consumerSpec{
		// INBOUND unfiltered: a reply an organisation aims at its own
		// command subject is stored there under the subject JetStream
		// delivered it with (its own out.<cc>.<org>.<id>); a filter would
		// leave it in the work queue forever, handleCommand sets it aside.
		{stream: StreamInbound, cfg: base(r.cfg.Inbound, ""), lane: oneByOne(r.handleCommand), key: commandKey},
		{stream: StreamReferrals, cfg: dispatcher, lane: r.dispatchLane, key: subjectKey, group: dispatchGroup},
		{stream: StreamTimers, cfg: base(r.cfg.Timers, wire.SubjectsTimerFire), lane: oneByOne(r.handleTimer), key: subjectKey},
	}
}

// commandKey orders commands by referral: the raw ce-subject header, or
// the message subject (the sender) when there is none.
func commandKey(m jetstream.Msg) string {
	if v := headerFold(m.Headers(), "ce-subject"); v != "" {
		return v
	}
	return m.Subject()
}

func subjectKey(m jetstream.Msg) string { return m.Subject() }

// EnsureConsumers creates the router's durable consumers, or updates them
// to the router's config. Run calls it.
func (r *Router) EnsureConsumers(ctx context.Context) error {
	for _, s := range r.specs() {
		cctx, cancel := r.bus.ctx(ctx)
		_, err := r.bus.js.CreateOrUpdateConsumer(cctx, s.stream, s.cfg)
		cancel()
		if err != nil {
			return fmt.Errorf("natsjs: ensure consumer %s on %s: %w", s.cfg.Durable, s.stream, err)
		}
	}
	return nil
}

// Run creates the consumers and handles their messages until ctx ends,
// then stops pulling, finishes the messages in hand and returns nil. It
// returns an error if a consumer cannot be created or consumed.
func (r *Router) Run(ctx context.Context) error {
	if err := r.EnsureConsumers(ctx); err != nil {
		return err
	}
	// Messages in hand are finished even after ctx ends: their own
	// requests are bounded by the bus timeout.
	work := context.WithoutCancel(ctx)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var running []jetstream.ConsumeContext
	defer func() {
		for _, cc := range running {
			cc.Stop()
		}
		for _, cc := range running {
			select {
			case <-cc.Closed():
			case <-time.After(r.bus.cfg.Timeout):
			}
		}
		close(stop)
		wg.Wait()
		r.held.flush()
		r.cancels.flush()
	}()
	for _, s := range r.specs() {
		cons, err := r.bus.js.Consumer(ctx, s.stream, s.cfg.Durable)
		if err != nil {
			return fmt.Errorf("natsjs: consumer %s: %w", s.cfg.Durable, err)
		}
		p := newPool(r.cfg.Workers, r.cfg.MaxAckPending, stop, func(lane <-chan jetstream.Msg) { s.lane(work, lane, stop) }, &wg)
		key := s.key
		opts := []jetstream.PullConsumeOpt{
			jetstream.PullMaxMessages(min(r.cfg.MaxAckPending, 512)),
			jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
				r.cfg.Logger.DebugContext(ctx, "natsjs: consume", slog.String("consumer", s.cfg.Durable), slog.Any("error", err))
			}),
		}
		if s.group != "" {
			opts = append(opts, jetstream.PullPriorityGroup(s.group))
		}
		cc, err := cons.Consume(func(m jetstream.Msg) { p.submit(key(m), m) }, opts...)
		if err != nil {
			return fmt.Errorf("natsjs: consume %s: %w", s.cfg.Durable, err)
		}
		running = append(running, cc)
	}
	<-ctx.Done()
	return nil
}

// pool runs handlers on a fixed set of workers; messages with the same key
// go to the same worker, in order.
type pool struct {
	seed  maphash.Seed
	lanes []chan jetstream.Msg
	stop  <-chan struct{}
}

func newPool(workers, buffer int, stop <-chan struct{}, run func(lane <-chan jetstream.Msg), wg *sync.WaitGroup) *pool {
	p := &pool{seed: maphash.MakeSeed(), lanes: make([]chan jetstream.Msg, workers), stop: stop}
	for i := range p.lanes {
		lane := make(chan jetstream.Msg, max(1, buffer/workers))
		p.lanes[i] = lane
		wg.Go(func() { run(lane) })
	}
	return p
}

func (p *pool) submit(key string, m jetstream.Msg) {
	lane := p.lanes[maphash.String(p.seed, key)%uint64(len(p.lanes))]
	select {
	case lane <- m:
	case <-p.stop:
	}
}

// handleCommand handles one INBOUND command.
func (r *Router) handleCommand(ctx context.Context, m jetstream.Msg) {
	org, err := events.ParseInboundSubject(m.Subject())
	if err != nil {
		r.setAside(ctx, m, ReasonSubject, "", err.Error())
		return
	}
	env, err := events.Decode(events.Message{Subject: m.Subject(), Header: m.Headers(), Data: m.Data()})
	if err != nil {
		r.rejectRaw(ctx, m, org, routing.RejectionOf(err))
		return
	}
	ctx, span := traceCommand(ctx, m, org, env)
	defer span.End()
	if id := m.Headers().Get(jetstream.MsgIDHeader); id != "" && env.Event.Source() == events.SourceOf(org) && id != events.MsgID(env.Event.Source(), env.Event.ID()) {
		// JetStream deduplicates on Nats-Msg-Id across the whole stream:
		// a key that is not the sender's own source and id would shadow
		// another organisation's command. The value is not repeated. (A
		// forged source is the routing service's to refuse.)
		r.reject(ctx, m, org, env, &routing.Rejection{Code: referral.CodeInvalid, Problems: []events.Problem{{
			Pointer: "/id", Code: events.CodeInvalidAttribute,
			Message: fmt.Sprintf("the Nats-Msg-Id header must be the source and id together, %q (or absent)", events.MsgID(events.SourceOf(org), env.Event.ID())),
		}}})
		return
	}
	if isListingCommand(env.Event.Type()) {
		r.handleListing(ctx, m, org, env)
		return
	}
	if r.cfg.Forward != nil {
		if fwd, err := r.cfg.Forward(ctx, org, env, m.Headers(), m.Data()); err != nil {
			r.cfg.Logger.InfoContext(ctx, "natsjs: cross-border command retried", slog.String("referral", env.Event.Subject()), slog.Any("error", err))
			r.nak(ctx, m, r.retryDelay(m))
			return
		} else if fwd {
			r.held.ack(m, r.cfg.Logger)
			return
		}
	}
	err = r.svc.Handle(ctx, env, referral.Actor{Org: org})
	traceOutcome(span, err)
	switch {
	case err == nil:
		r.held.ack(m, r.cfg.Logger)
	case errors.Is(err, routing.ErrRejected):
		r.reject(ctx, m, org, env, routing.RejectionOf(err))
	case errors.Is(err, routing.ErrCorrupt):
		r.cfg.Logger.ErrorContext(ctx, "natsjs: referral log does not fold", slog.String("referral", env.Event.Subject()), slog.Any("error", err))
		r.reject(ctx, m, org, env, &routing.Rejection{Code: ReasonCorrupt, Problems: []events.Problem{{Pointer: "/subject", Code: "internal", Message: "the referral cannot be read; an operator has been told"}}})
	default:
		if r.deliveries(m) >= r.cfg.MaxDeliver {
			r.cfg.Logger.WarnContext(ctx, "natsjs: command given up", slog.String("referral", env.Event.Subject()), slog.Any("error", err))
			r.reject(ctx, m, org, env, &routing.Rejection{Code: ReasonUndelivered, Problems: []events.Problem{{Code: "unavailable", Message: "the command could not be processed; send it again later"}}})
			return
		}
		r.cfg.Logger.InfoContext(ctx, "natsjs: command retried", slog.String("referral", env.Event.Subject()), slog.Any("error", err))
		r.nak(ctx, m, r.retryDelay(m))
	}
}

// reject tells the sender why a decoded command was rejected, copies the
// command to DLQ and terminates it.
func (r *Router) reject(ctx context.Context, m jetstream.Msg, org string, env *events.Envelope, rej *routing.Rejection) {
	r.tell(ctx, m, org, env.Event.ID(), env.Event.Type(), env.Event.Subject(), rej)
}

// rejectRaw is reject for a command that did not decode: what can be read
// of its id, type and subject (from the ce- headers, or from the members
// of a structured-mode event) is used as is; routing.Rejected repeats
// only what is valid.
func (r *Router) rejectRaw(ctx context.Context, m jetstream.Msg, org string, rej *routing.Rejection) {
	h := m.Headers()
	id, typ, subject := headerFold(h, "ce-id"), headerFold(h, "ce-type"), headerFold(h, "ce-subject")
	if id == "" && typ == "" && subject == "" {
		var structured struct {
			ID      any `json:"id"`
			Type    any `json:"type"`
			Subject any `json:"subject"`
		}
		if json.Unmarshal(m.Data(), &structured) == nil {
			id, _ = structured.ID.(string)
			typ, _ = structured.Type.(string)
			subject, _ = structured.Subject.(string)
		}
	}
	r.tell(ctx, m, org, id, typ, subject, rej)
}

func (r *Router) tell(ctx context.Context, m jetstream.Msg, org, id, typ, subject string, rej *routing.Rejection) {
	referralID := ""
	if events.IsReferralID(subject) {
		referralID = subject
	} else {
		subject = org
	}
	if env, err := routing.Rejected(org, id, typ, subject, rej, r.cfg.Now()); err != nil {
		r.cfg.Logger.WarnContext(ctx, "natsjs: rejection not built", slog.Any("error", err))
	} else if err := r.deliverOnce(ctx, m, org, env); err != nil {
		r.nak(ctx, m, r.retryDelay(m))
		return
	}
	problem := rej.Code
	if len(rej.Problems) > 0 {
		p := rej.Problems[0]
		problem = p.Pointer + " " + p.Code
		// A message about the payload may quote it; the DLQ header, read by
		// operators, names the member and the code only.
		if p.Pointer != "/data" && !strings.HasPrefix(p.Pointer, "/data/") {
			problem += ": " + p.Message
		}
	}
	r.cfg.Logger.InfoContext(ctx, "natsjs: command rejected", slog.String("org", org), slog.String("referral", referralID), slog.String("code", rej.Code))
	r.setAside(ctx, m, rej.Code, referralID, problem)
}

// deliverOnce delivers the rejection env of command m to org, unless m
// is delivered again and the rejection is on org's subject already: it
// was told before the command's acknowledgement was lost, and the
// duplicate window may have passed since.
func (r *Router) deliverOnce(ctx context.Context, m jetstream.Msg, org string, env *events.Envelope) error {
	if r.deliveries(m) > 1 {
		subject, err := deliverySubject(org, env.Event.Subject())
		if err != nil {
			return err
		}
		if done, err := r.bus.delivered(ctx, subject, env.Event.ID()); err != nil || done {
			return err
		}
	}
	return r.bus.deliver(ctx, org, env)
}

// setAside copies m to DLQ and terminates it; if the copy fails, m is
// retried later instead.
func (r *Router) setAside(ctx context.Context, m jetstream.Msg, reason, referralID, problem string) {
	if _, err := events.DLQSubject(reason); err != nil {
		reason = "other"
	}
	origin := "?"
	if md, err := m.Metadata(); err == nil {
		origin = fmt.Sprintf("%s %d %s", md.Stream, md.Sequence.Stream, m.Subject())
	}
	nm := &nats.Msg{Subject: m.Subject(), Header: m.Headers(), Data: m.Data()}
	if err := r.bus.deadLetter(ctx, reason, referralID, nm, origin, problem); err != nil {
		r.nak(ctx, m, r.retryDelay(m))
		return
	}
	r.term(ctx, m, reason)
}

// dispatchPipelineMax bounds the events one lane of the dispatcher has
// in flight.
const dispatchPipelineMax = 64

// dispatchJob is an event a lane of the dispatcher has in flight: the
// publishes of its copies and timer, not yet all acknowledged.
type dispatchJob struct {
	m        jetstream.Msg
	id       string // the referral, for logs
	futures  []jetstream.PubAckFuture
	next     int // the first future not acknowledged yet
	deadline time.Time
	err      error
}

// settled reports whether every publish of j is acknowledged, or one
// failed.
func (j *dispatchJob) settled() bool {
	if j.err != nil {
		return true
	}
	return j.next == len(j.futures)
}

// dispatchLane dispatches the events that reach one lane of the
// dispatcher, in order: each event appended to REFERRALS goes to its
// recipients' delivery subjects, and its timers are set or cancelled.
// Each delivery copy is stored before the next is published, confirmed
// by its own acknowledgement (see dispatchState.deliverOnce), so that a
// copy refused is delivered again before a later event's copy can
// overtake it and each organisation receives the events of a referral in
// log order. An event's timer is published without waiting: the lane
// goes on to the next event, and acknowledges an event only once its
// timer is stored too. What needs the earlier events done first (the
// erasure of a referral, the handling of an event delivered again) waits
// for every event in flight to settle. An event whose publishes fail is
// dispatched again later.
func (r *Router) dispatchLane(ctx context.Context, lane <-chan jetstream.Msg, stop <-chan struct{}) {
	l := r.newDispatchState(ctx, lane)
	defer l.timer.Stop()
	for {
		l.progress()
		if len(l.jobs) == 0 {
			select {
			case m := <-lane:
				l.start(m)
			case <-stop:
				return // events left unacknowledged are delivered again
			}
			continue
		}
		var in <-chan jetstream.Msg
		if len(l.jobs) < dispatchPipelineMax {
			in = lane
		}
		m, ok := l.await(in, stop)
		switch {
		case ok:
			l.start(m)
		case isClosed(stop):
			return
		}
	}
}

// dispatchTailsMax bounds the delivery subjects one lane of the
// dispatcher remembers the last sequence of; past it, an arbitrary one
// is forgotten.
const dispatchTailsMax = 2048

// dispatchState is one lane of the dispatcher: its events in flight, in
// order, and what it knows of the delivery subjects they go to.
//
// Each copy of an event is published expecting its subject's last
// DELIVERY sequence to be the one the lane last stored or read there (0,
// nothing, for a subject it does not know: most are new). A copy stored
// by another dispatcher meanwhile (one that still held the event after it
// was delivered to this one, or to which this one's copy was delivered
// first) moves the subject on, so the publish is refused and
// deliverCopyOnce looks for the copy before storing it. That keeps a copy
// from being stored twice however long apart the dispatches are, where
// Nats-Msg-Id holds only within its duplicate window.
//
// Copies once went out in chains, each expecting the stream's last
// message id to be the copy before it, with one acknowledgement for the
// whole chain. After a SIGKILL, TestCrashSafetyEndToEnd found a chain
// acknowledged whose first copies were never stored, and their offers
// were lost: an acknowledgement now stands for its own copy only.
//
// An event's copies are not published as one JetStream atomic batch
// either, though its single acknowledgement would stand for every copy
// (nats-server checks the whole batch, each copy's expected subject
// sequence included, before it stores any, and refuses all of it
// otherwise): on the single-replica file store the server stages every
// batch in a file store of its own, created, synced and deleted per
// batch, which BenchmarkDeliveryCopies measures at 14 to 35 times the CPU
// of two copies acknowledged one by one, to save one acknowledgement.
type dispatchState struct {
	r     *Router
	ctx   context.Context
	lane  <-chan jetstream.Msg
	timer *time.Timer
	jobs  []*dispatchJob
	// tails is the DELIVERY sequence of the last message on a subject, as
	// the lane stored or read it.
	tails map[string]uint64
}

func (r *Router) newDispatchState(ctx context.Context, lane <-chan jetstream.Msg) *dispatchState {
	return &dispatchState{r: r, ctx: ctx, lane: lane, timer: time.NewTimer(time.Hour), tails: map[string]uint64{}}
}

// remember records seq as the last sequence of subject, if trusted: if
// no copy of an event after the last one the lane dispatched there can
// be at or before seq (see deliverCopyOnce). Otherwise it forgets the
// subject, whose next copy is then published expecting nothing there, is
// refused, and goes through deliverCopyOnce.
func (l *dispatchState) remember(subject string, seq uint64, trusted bool) {
	if !trusted {
		delete(l.tails, subject)
		return
	}
	if _, ok := l.tails[subject]; !ok && len(l.tails) >= dispatchTailsMax {
		for k := range l.tails { // map order is random enough for eviction
			delete(l.tails, k)
			break
		}
	}
	l.tails[subject] = seq
}

// deliverOnce stores the copy c on its subject unless it is there
// already, waiting for the outcome: published expecting the subject's
// last sequence as the lane knows it, and, refused because the subject
// moved on, through deliverCopyOnce. Errors wrap routing.ErrUnavailable.
func (l *dispatchState) deliverOnce(c *nats.Msg) error {
	c.Header.Set(hdrExpectedSubjSeq, strconv.FormatUint(l.tails[c.Subject], 10))
	ack, err := l.r.bus.publishCopyWait(l.ctx, c)
	switch {
	case err == nil:
		l.remember(c.Subject, ack.Sequence, !ack.Duplicate)
		return nil
	case isWrongLastSeq(err):
		seq, trusted, err := l.r.bus.deliverCopyOnce(l.ctx, c)
		if err != nil {
			delete(l.tails, c.Subject)
			return err
		}
		l.remember(c.Subject, seq, trusted)
		return nil
	default:
		delete(l.tails, c.Subject) // not known to be stored: read it when needed
		return fmt.Errorf("%w: deliver to %s: %w", routing.ErrUnavailable, c.Subject, err)
	}
}

// start starts the dispatch of m, then of the messages already waiting
// in the lane.
func (l *dispatchState) start(m jetstream.Msg) {
	for {
		j := l.r.startDispatch(l.ctx, m, l) // may flush: l.jobs is read after
		l.jobs = append(l.jobs, j)
		if len(l.jobs) >= dispatchPipelineMax {
			return
		}
		select {
		case m = <-l.lane:
		default:
			return
		}
	}
}

// progress finishes the settled events at the head of the lane, in
// order.
func (l *dispatchState) progress() {
	for len(l.jobs) > 0 && l.jobs[0].settled() {
		l.r.finishDispatch(l.ctx, l.jobs[0])
		l.jobs = l.jobs[1:]
	}
}

// flush settles every event in flight, in order: it waits for their
// publishes, then acknowledges each (or has it dispatched again).
func (l *dispatchState) flush() {
	for {
		l.progress()
		if len(l.jobs) == 0 {
			return
		}
		l.await(nil, nil)
	}
}

// await waits until the first unsettled publish of the lane's first
// event settles (or expire fires), a message arrives on in, which it
// returns, or stop closes.
func (l *dispatchState) await(in <-chan jetstream.Msg, stop <-chan struct{}) (jetstream.Msg, bool) {
	j := l.jobs[0]
	l.timer.Reset(time.Until(j.deadline))
	f := j.futures[j.next] // j is not settled: one of its publishes is
	select {
	case <-stop:
	case <-f.Ok():
		j.next++
	case err := <-f.Err():
		j.err = fmt.Errorf("%w: publish to %s: %w", routing.ErrUnavailable, f.Msg().Subject, err)
	case <-l.timer.C:
		j.err = fmt.Errorf("%w: publish to %s: no acknowledgement in %s", routing.ErrUnavailable, f.Msg().Subject, l.r.bus.cfg.Timeout)
	case m := <-in:
		return m, true
	}
	return nil, false
}

// isClosed reports whether c is closed.
func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// finishDispatch acknowledges a settled event, or has it dispatched again
// later if it failed.
func (r *Router) finishDispatch(ctx context.Context, j *dispatchJob) {
	if j.err != nil {
		r.cfg.Logger.InfoContext(ctx, "natsjs: dispatch retried", slog.String("referral", j.id), slog.Any("error", j.err))
		r.nak(ctx, j.m, r.retryDelay(j.m))
		return
	}
	r.ack(ctx, j.m)
}

// startDispatch starts the dispatch of one event appended to REFERRALS:
// erasure first if asked, then a copy to each recipient's delivery
// subject and its first timer, published without waiting (the copies in
// the lane's next chain, when they go in chains); its timer cancellation
// is handed to the router's heldCancel. What must come after every event
// in flight of the lane waits for them first (l.flush).
func (r *Router) startDispatch(ctx context.Context, m jetstream.Msg, l *dispatchState) *dispatchJob {
	ctx, span := traceDispatch(ctx, m)
	defer span.End()
	j := &dispatchJob{m: m, deadline: time.Now().Add(r.bus.cfg.Timeout)}
	_, id, err := events.ParseReferralSubject(m.Subject())
	if err != nil {
		r.cfg.Logger.WarnContext(ctx, "natsjs: not a referral subject; skipped", slog.String("subject", m.Subject()))
		return j
	}
	j.id = id
	h := m.Headers()
	erase := h.Get(HeaderErase) != ""
	md, err := m.Metadata()
	if err != nil {
		j.err = fmt.Errorf("natsjs: dispatch: %w", err)
		return j
	}
	// An event handed over for the first time long after it was stored
	// (another router may have dispatched it meanwhile, past the duplicate
	// window) needs no more care than any: its copies expect their
	// subjects' last sequences (see dispatchState).
	again := md.NumDelivered > 1
	if erase || again {
		l.flush()
	}
	if !erase && again {
		// An event dispatched again may come after the referral's erasure:
		// then it must not be delivered again.
		erased, err := r.bus.erasedAfter(ctx, m.Subject(), md.Sequence.Stream)
		if err != nil || erased {
			j.err = err
			return j
		}
	}
	if erase {
		if j.err = r.bus.Erase(ctx, id); j.err != nil {
			return j
		}
	}
	if v := h.Get(HeaderRecipients); v != "" {
		copies, err := r.deliveryCopies(ctx, id, strings.Split(v, ","), h, m.Data(), md.Sequence.Stream, !erase)
		if err != nil {
			j.err = err
			return j
		}
		// The copies of an event dispatched again may be stored already:
		// each is looked for, then stored if absent (deliverCopyOnce).
		// Otherwise each copy is stored in turn, confirmed by its own
		// acknowledgement (deliverOnce). referral.erased's copies, after
		// the erasure, are stored whatever is there.
		switch {
		case !erase && again:
			for _, c := range copies {
				seq, trusted, err := r.bus.deliverCopyOnce(ctx, c)
				if err != nil {
					delete(l.tails, c.Subject)
					j.err = err
					return j
				}
				l.remember(c.Subject, seq, trusted)
			}
		case !erase:
			for _, c := range copies {
				if j.err = l.deliverOnce(c); j.err != nil {
					return j
				}
			}
		default:
			for _, c := range copies {
				delete(l.tails, c.Subject) // erased: the subject starts again
				f, err := r.bus.publishCopy(c)
				if err != nil {
					j.err = fmt.Errorf("%w: deliver: %w", routing.ErrUnavailable, err)
					return j
				}
				j.futures = append(j.futures, f)
			}
		}
	}
	if v := h.Get(HeaderCancel); v != "" {
		r.cancels.cancel(ctx, id, strings.Split(v, ","))
	}
	if v := h.Get(HeaderTimer); v != "" {
		t, err := parseTimer(id, v)
		if err != nil {
			r.cfg.Logger.WarnContext(ctx, "natsjs: bad timer header; ignored", slog.String("referral", id), slog.Any("error", err))
		} else if offer := (&nats.Msg{Header: h, Data: m.Data()}); again {
			j.err = r.bus.scheduleOffer(ctx, t, offer, true)
		} else {
			f, err := r.bus.scheduleOfferAsync(ctx, t, offer)
			if err != nil {
				j.err = err
				return j
			}
			j.futures = append(j.futures, f)
		}
	}
	return j
}

// deliveryCopies returns the event's copies for every recipient's
// delivery subject, with its REFERRALS sequence in HeaderSequence. With
// dedupe, each copy has Nats-Msg-Id <event id>.<org>, so dispatching
// twice within the duplicate window stores it once (past it, the
// dispatcher's expectation of each subject's last sequence does; see
// dispatchState). The copies of referral.erased have no Nats-Msg-Id,
// because erasure purges earlier copies: dispatching it again purges and
// delivers it again.
func (r *Router) deliveryCopies(ctx context.Context, id string, orgs []string, h nats.Header, data []byte, seq uint64, dedupe bool) ([]*nats.Msg, error) {
	eventID := h.Get(jetstream.MsgIDHeader)
	out := make([]*nats.Msg, 0, len(orgs))
	for _, org := range orgs {
		subject, err := events.DeliverySubject(org, id)
		if err != nil {
			r.cfg.Logger.WarnContext(ctx, "natsjs: bad recipient; skipped", slog.String("referral", id), slog.String("org", org))
			continue
		}
		c := eventCopy(subject, h, data)
		traceCopy(ctx, c, org)
		c.Header.Set(HeaderSequence, strconv.FormatUint(seq, 10))
		if dedupe && eventID != "" {
			c.Header.Set(jetstream.MsgIDHeader, eventID+"."+org)
		}
		out = append(out, c)
	}
	return out, nil
}

// deliveries returns how many times m has been delivered.
func (r *Router) deliveries(m jetstream.Msg) int {
	md, err := m.Metadata()
	if err != nil {
		return 1
	}
	return int(md.NumDelivered)
}

// retryDelay doubles RetryDelay with each delivery of m, up to
// RetryDelayMax.
func (r *Router) retryDelay(m jetstream.Msg) time.Duration {
	d := r.cfg.RetryDelay
	for i := 1; i < r.deliveries(m) && d < RetryDelayMax; i++ {
		d *= 2
	}
	return min(d, RetryDelayMax)
}

// commandAckHold is how long the router holds back the acknowledgement of
// the last command it handled when no other command follows.
const commandAckHold = 5 * time.Millisecond

// heldAck holds back the acknowledgement of the last command handled
// until the next one is handled, or commandAckHold passes. INBOUND is a
// work queue: an acknowledgement removes the command, and a removal that
// empties the stream's last store block makes the server write a
// tombstone and create a new block file, which at a steady flow of
// commands, each handled before the next arrives, happened for nearly
// every command and cost about a tenth of the CPU of the routing hop.
// With the last acknowledgement held back, the command it removes is
// never the only one left while commands keep coming. A command is
// acknowledged only once handled, as before, just a little later; if
// the router crashes meanwhile, it is delivered again and changes
// nothing the second time.
type heldAck struct {
	mu    sync.Mutex
	msg   jetstream.Msg
	timer *time.Timer
}

// ack holds m back and acknowledges the command held before it.
func (h *heldAck) ack(m jetstream.Msg, log *slog.Logger) {
	h.mu.Lock()
	prev := h.msg
	h.msg = m
	if h.timer == nil {
		h.timer = time.AfterFunc(commandAckHold, h.flush)
	} else {
		h.timer.Reset(commandAckHold)
	}
	h.mu.Unlock()
	if prev != nil {
		if err := prev.Ack(); err != nil {
			log.Debug("natsjs: ack", slog.Any("error", err))
		}
	}
}

// flush acknowledges the command held back, if any.
func (h *heldAck) flush() {
	h.mu.Lock()
	m := h.msg
	h.msg = nil
	h.mu.Unlock()
	if m != nil {
		_ = m.Ack() // a failure is redelivered after AckWait, and changes nothing
	}
}

func (r *Router) ack(ctx context.Context, m jetstream.Msg) {
	if err := m.Ack(); err != nil {
		r.cfg.Logger.DebugContext(ctx, "natsjs: ack", slog.Any("error", err))
	}
}

func (r *Router) nak(ctx context.Context, m jetstream.Msg, delay time.Duration) {
	if err := m.NakWithDelay(max(delay, time.Millisecond)); err != nil {
		r.cfg.Logger.DebugContext(ctx, "natsjs: nak", slog.Any("error", err))
	}
}

func (r *Router) term(ctx context.Context, m jetstream.Msg, reason string) {
	if err := m.TermWithReason(reason); err != nil {
		r.cfg.Logger.DebugContext(ctx, "natsjs: term", slog.Any("error", err))
	}
}
