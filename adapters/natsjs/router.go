package natsjs

import (
	"context"
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
	"github.com/invictus-network/invictus/referral"
	"github.com/invictus-network/invictus/routing"
)

// Durable consumer names and defaults of [RouterConfig].
const (
	// ConsumerRouting is the durable INBOUND consumer that every routing
	// instance shares.
	ConsumerRouting = "routing"
	// ConsumerDispatcher is the durable REFERRALS consumer that delivers
	// appended events and sets their timers.
	ConsumerDispatcher = "dispatcher"
	// ConsumerTimers is the durable consumer of fired timers
	// (timer.fire.> in TIMERS).
	ConsumerTimers = "timers"

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
	return &Router{bus: bus, svc: svc, cfg: cfg}, nil
}

// consumerSpec is one of the router's consumers.
type consumerSpec struct {
	stream string
	cfg    jetstream.ConsumerConfig
	handle func(context.Context, jetstream.Msg)
	key    func(jetstream.Msg) string
	group  string // priority group, if any
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
		{stream: StreamInbound, cfg: base(r.cfg.Inbound, SubjectsInbound), handle: r.handleCommand, key: commandKey},
		{stream: StreamReferrals, cfg: dispatcher, handle: r.dispatch, key: subjectKey, group: dispatchGroup},
		{stream: StreamTimers, cfg: base(r.cfg.Timers, "timer.fire.>"), handle: r.handleTimer, key: subjectKey},
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
	}()
	for _, s := range r.specs() {
		cons, err := r.bus.js.Consumer(ctx, s.stream, s.cfg.Durable)
		if err != nil {
			return fmt.Errorf("natsjs: consumer %s: %w", s.cfg.Durable, err)
		}
		p := newPool(r.cfg.Workers, r.cfg.MaxAckPending, stop, func(m jetstream.Msg) { s.handle(work, m) }, &wg)
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

func newPool(workers, buffer int, stop <-chan struct{}, handle func(jetstream.Msg), wg *sync.WaitGroup) *pool {
	p := &pool{seed: maphash.MakeSeed(), lanes: make([]chan jetstream.Msg, workers), stop: stop}
	for i := range p.lanes {
		lane := make(chan jetstream.Msg, max(1, buffer/workers))
		p.lanes[i] = lane
		wg.Go(func() {
			for {
				select {
				case m := <-lane:
					handle(m)
				case <-stop:
					return // messages left unhandled are delivered again
				}
			}
		})
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
	err = r.svc.Handle(ctx, env, referral.Actor{Org: org})
	switch {
	case err == nil:
		r.ack(ctx, m)
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
// of its id, type and subject is used as is.
func (r *Router) rejectRaw(ctx context.Context, m jetstream.Msg, org string, rej *routing.Rejection) {
	h := m.Headers()
	r.tell(ctx, m, org, headerFold(h, "ce-id"), headerFold(h, "ce-type"), headerFold(h, "ce-subject"), rej)
}

func (r *Router) tell(ctx context.Context, m jetstream.Msg, org, id, typ, subject string, rej *routing.Rejection) {
	referralID := ""
	if events.IsReferralID(subject) {
		referralID = subject
	} else {
		subject = org
	}
	if env, err := routing.Rejected(id, typ, subject, rej, r.cfg.Now()); err != nil {
		r.cfg.Logger.WarnContext(ctx, "natsjs: rejection not built", slog.Any("error", err))
	} else if err := r.bus.deliver(ctx, org, env); err != nil {
		r.nak(ctx, m, r.retryDelay(m))
		return
	}
	problem := rej.Code
	if len(rej.Problems) > 0 {
		p := rej.Problems[0]
		problem = p.Pointer + " " + p.Code + ": " + p.Message
	}
	r.cfg.Logger.InfoContext(ctx, "natsjs: command rejected", slog.String("org", org), slog.String("referral", referralID), slog.String("code", rej.Code))
	r.setAside(ctx, m, rej.Code, referralID, problem)
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

// dispatch handles one event appended to REFERRALS: erasure first if
// asked, then a copy to each recipient's delivery subject, then its
// timers.
func (r *Router) dispatch(ctx context.Context, m jetstream.Msg) {
	_, id, err := events.ParseReferralSubject(m.Subject())
	if err != nil {
		r.cfg.Logger.WarnContext(ctx, "natsjs: not a referral subject; skipped", slog.String("subject", m.Subject()))
		r.ack(ctx, m)
		return
	}
	if err := r.dispatchEvent(ctx, id, m); err != nil {
		r.cfg.Logger.InfoContext(ctx, "natsjs: dispatch retried", slog.String("referral", id), slog.Any("error", err))
		r.nak(ctx, m, r.retryDelay(m))
		return
	}
	r.ack(ctx, m)
}

func (r *Router) dispatchEvent(ctx context.Context, id string, m jetstream.Msg) error {
	h := m.Headers()
	erase := h.Get(HeaderErase) != ""
	md, err := m.Metadata()
	if err != nil {
		return fmt.Errorf("natsjs: dispatch: %w", err)
	}
	if !erase && md.NumDelivered > 1 {
		// An event dispatched again may come after the referral's erasure:
		// then it must not be delivered again.
		erased, err := r.bus.erasedAfter(ctx, m.Subject(), md.Sequence.Stream)
		if err != nil || erased {
			return err
		}
	}
	if erase {
		if err := r.bus.Erase(ctx, id); err != nil {
			return err
		}
	}
	if v := h.Get(HeaderRecipients); v != "" {
		if err := r.deliverCopies(ctx, id, strings.Split(v, ","), h, m.Data(), md.Sequence.Stream, !erase); err != nil {
			return err
		}
	}
	if v := h.Get(HeaderCancel); v != "" {
		if err := r.bus.cancelTimers(ctx, id, strings.Split(v, ",")); err != nil {
			return err
		}
	}
	if v := h.Get(HeaderTimer); v != "" {
		t, err := parseTimer(id, v)
		if err != nil {
			r.cfg.Logger.WarnContext(ctx, "natsjs: bad timer header; ignored", slog.String("referral", id), slog.Any("error", err))
			return nil
		}
		if err := r.bus.scheduleOffer(ctx, t, &nats.Msg{Header: h, Data: m.Data()}, md.NumDelivered > 1); err != nil {
			return err
		}
	}
	return nil
}

// deliverCopies publishes the event to every recipient's delivery subject
// at once, with its REFERRALS sequence in HeaderSequence, and waits for
// the acknowledgements. With dedupe, each copy has
// Nats-Msg-Id <event id>.<org>, so dispatching twice stores it once. The
// copies of referral.erased are published without, because erasure purges
// earlier copies: dispatching it again purges and delivers it again.
func (r *Router) deliverCopies(ctx context.Context, id string, orgs []string, h nats.Header, data []byte, seq uint64, dedupe bool) error {
	ctx, cancel := r.bus.ctx(ctx)
	defer cancel()
	eventID := h.Get(jetstream.MsgIDHeader)
	futures := make([]jetstream.PubAckFuture, 0, len(orgs))
	for _, org := range orgs {
		subject, err := events.DeliverySubject(org, id)
		if err != nil {
			r.cfg.Logger.WarnContext(ctx, "natsjs: bad recipient; skipped", slog.String("referral", id), slog.String("org", org))
			continue
		}
		c := eventCopy(subject, h, data)
		c.Header.Set(HeaderSequence, strconv.FormatUint(seq, 10))
		if dedupe && eventID != "" {
			c.Header.Set(jetstream.MsgIDHeader, eventID+"."+org)
		}
		f, err := r.bus.js.PublishMsgAsync(c)
		if err != nil {
			return fmt.Errorf("%w: deliver: %w", routing.ErrUnavailable, err)
		}
		futures = append(futures, f)
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return fmt.Errorf("%w: deliver: %w", routing.ErrUnavailable, err)
		case <-ctx.Done():
			return fmt.Errorf("%w: deliver: %w", routing.ErrUnavailable, ctx.Err())
		}
	}
	return nil
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
