package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/invictus-network/invictus/adapters/natsjs"
	"github.com/invictus-network/invictus/client"
	"github.com/invictus-network/invictus/directory"
	"github.com/invictus-network/invictus/events"
)

// Timing of the simulated organisations: how long each takes to answer an
// offer, to contact the victim, and to close the placement. Short, so that
// a newcomer sees whole referrals within seconds.
const (
	simAnswerMin, simAnswerMax   = 1 * time.Second, 4 * time.Second
	simContactMin, simContactMax = 2 * time.Second, 5 * time.Second
	simCloseMin, simCloseMax     = 3 * time.Second, 8 * time.Second
	// simForgetAfter is how long the simulator remembers a referral.
	simForgetAfter = 10 * time.Minute
	// simSendTimeout bounds one publish.
	simSendTimeout = 10 * time.Second
	// simAcceptPercent of the offers are accepted; the others declined.
	simAcceptPercent = 75
)

// Codes the simulated referrals draw from.
var (
	simNeeds = []string{
		events.NeedSupportEmotional, events.NeedInfoRights, events.NeedJusticeLegalAid,
		events.NeedSafetyRiskAdvice, events.NeedSupportPractical, events.NeedSafetyShelter,
		events.NeedSupportPsychological,
	}
	simCrimes = []string{
		"domestic_violence", "physical_assault", "burglary_theft", "fraud", "stalking_harassment",
		"robbery", "sexual_violence", "cybercrime", "hate_crime",
	}
	simUrgencies      = []string{"routine", "routine", "soon", "soon", "urgent"}
	simAgeBands       = []string{"adult", "adult", "adult", "youth", "older"}
	simDeclineReasons = []string{"capacity", "out_of_scope", "out_of_area", "language"}
	simOutcomes       = []string{"supported", "supported", "supported", "supported", "unable_to_contact", "declined_by_victim"}
)

// simulateComponent runs the traffic of --simulate.
type simulateComponent struct {
	// conn reads the deliveries; connect connects as an organisation,
	// to send its commands.
	conn          func() *nats.Conn
	connect       func(ctx context.Context, org, name string) (*client.Client, error)
	demo          *demoComponent
	ratePerMinute float64
	logger        *slog.Logger
	fail          func(error)

	bg *background
}

func (s *simulateComponent) Name() string { return "simulate" }

// Start starts following deliveries and sending referrals.
func (s *simulateComponent) Start(ctx context.Context) error {
	sim, err := newSimulator(s.conn(), s.connect, s.demo.dir, s.ratePerMinute, s.logger)
	if err != nil {
		return err
	}
	if err := sim.follow(ctx); err != nil {
		return err
	}
	s.bg = startBackground("simulate", s.fail, sim.run)
	return nil
}

// Stop stops sending and waits for the actions in progress.
func (s *simulateComponent) Stop(ctx context.Context) error { return s.bg.stop(ctx) }

// simulator sends referrals as demo organisations and answers, as the
// organisations they are offered to, the offers of those referrals only:
// accept or decline, then contact and completion. It sends each command
// through the client package on a connection of the organisation's own,
// exactly as the organisation would, and reads what the routing service
// delivers (one reader of DELIVERY for all of them, on the node's
// connection). Referrals it did not send are never
// touched. It logs one line per change, with ids and codes only.
type simulator struct {
	js        jetstream.JetStream
	referrers []simReferrer
	interval  time.Duration
	logger    *slog.Logger

	cons jetstream.ConsumeContext
	mu   sync.Mutex
	refs map[string]*simReferral // sent by the simulator, by id
	// connect opens clients; clients holds them by organisation, made on
	// first use and closed when run ends.
	connect   func(ctx context.Context, org, name string) (*client.Client, error)
	clientsMu sync.Mutex
	clients   map[string]*client.Client
	// work holds the delayed actions; run waits for them.
	work sync.WaitGroup
	// ctx is run's context, for the actions the consumer schedules.
	ctx    context.Context
	cancel context.CancelFunc
}

// simReferrer is a demo organisation that sends referrals, with the
// places it sends them from.
type simReferrer struct {
	org      string
	language string
	cities   []directory.City
}

// simReferral is what the simulator remembers of a referral it sent.
type simReferral struct {
	referrer string
	sent     time.Time
	answered map[string]bool // "<placement>/<attempt>" offers already answered
}

// newSimulator returns a simulator sending ratePerMinute referrals as the
// organisations of d that are in the demo countries.
func newSimulator(nc *nats.Conn, connect func(ctx context.Context, org, name string) (*client.Client, error), d *directory.Directory, ratePerMinute float64, logger *slog.Logger) (*simulator, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("simulate: %w", err)
	}
	byCountry := map[string][]directory.City{}
	for _, c := range directory.Cities() {
		byCountry[c.Country] = append(byCountry[c.Country], c)
	}
	var referrers []simReferrer
	for _, o := range d.Organisations {
		if !slices.Contains(directory.DemoCountries, o.Country) || len(byCountry[o.Country]) == 0 || len(o.Languages) == 0 {
			continue
		}
		referrers = append(referrers, simReferrer{org: o.ID, language: o.Languages[0], cities: byCountry[o.Country]})
	}
	if len(referrers) == 0 {
		return nil, errors.New("simulate: the directory has no organisation in the demo countries")
	}
	interval := time.Duration(float64(time.Minute) / ratePerMinute)
	ctx, cancel := context.WithCancel(context.Background())
	return &simulator{
		js: js, referrers: referrers, interval: max(interval, time.Millisecond), logger: logger,
		refs: map[string]*simReferral{}, ctx: ctx, cancel: cancel,
		connect: connect, clients: map[string]*client.Client{},
	}, nil
}

// follow starts reading new deliveries.
func (s *simulator) follow(ctx context.Context) error {
	cons, err := s.js.OrderedConsumer(ctx, natsjs.StreamDelivery, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{natsjs.SubjectsDelivery},
		DeliverPolicy:  jetstream.DeliverNewPolicy,
	})
	if err != nil {
		return fmt.Errorf("simulate: follow deliveries: %w", err)
	}
	cc, err := cons.Consume(s.delivered)
	if err != nil {
		return fmt.Errorf("simulate: follow deliveries: %w", err)
	}
	s.cons = cc
	return nil
}

// run sends a referral now and then one every interval until ctx ends,
// then waits for the actions in progress.
func (s *simulator) run(ctx context.Context) error {
	stop := context.AfterFunc(ctx, s.cancel)
	defer func() {
		stop()
		s.cons.Stop()
		select {
		case <-s.cons.Closed():
		case <-time.After(simSendTimeout):
		}
		s.cancel()
		s.work.Wait()
		s.closeClients()
	}()
	tick := time.NewTicker(s.interval)
	defer tick.Stop()
	for {
		s.refer(s.ctx)
		select {
		case <-s.ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// refer sends one referral from a random referrer.
func (s *simulator) refer(ctx context.Context) {
	r := s.referrers[rand.IntN(len(s.referrers))]
	c := r.cities[rand.IntN(len(r.cities))]
	lat, lon := math.Round(c.Lat*100)/100, math.Round(c.Lon*100)/100
	needs := []string{pick(simNeeds)}
	if rand.IntN(3) == 0 {
		if other := pick(simNeeds); other != needs[0] {
			needs = append(needs, other)
		}
	}
	languages := []string{r.language}
	if r.language != "en" && rand.IntN(2) == 0 {
		languages = append(languages, "en")
	}
	now := time.Now().UTC()
	id := events.NewReferralID()
	req := &events.Requested{
		Profile: events.Profile{
			Needs:         needs,
			Crimes:        []string{pick(simCrimes)},
			Urgency:       pick(simUrgencies),
			Location:      events.Location{Country: c.Country, Region: c.NUTS2, Lat: &lat, Lon: &lon},
			Languages:     languages,
			InterpreterOK: true,
			AgeBand:       pick(simAgeBands),
			Channels:      []string{events.ChannelPhone, events.ChannelInPerson},
		},
		Consent: events.Consent{
			Referral: true, ShareData: true, GivenAt: now, Method: "verbal", RecordedBy: "sim-staff01",
		},
	}
	s.mu.Lock()
	s.forgetOld(now)
	s.refs[id] = &simReferral{referrer: r.org, sent: now, answered: map[string]bool{}}
	s.mu.Unlock()
	if err := s.send(ctx, r.org, id, req); err != nil {
		s.mu.Lock()
		delete(s.refs, id)
		s.mu.Unlock()
		return
	}
	s.logger.Info("simulate: referral requested", slog.String("referral", id), slog.String("referrer", r.org),
		slog.String("urgency", req.Urgency), slog.Int("needs", len(needs)))
}

// forgetOld drops referrals sent long ago; call with mu held.
func (s *simulator) forgetOld(now time.Time) {
	for id, r := range s.refs {
		if now.Sub(r.sent) > simForgetAfter {
			delete(s.refs, id)
		}
	}
}

// delivered handles one delivery: offers of the simulator's referrals are
// answered, the rest is logged.
func (s *simulator) delivered(m jetstream.Msg) {
	org, id, err := events.ParseDeliverySubject(m.Subject())
	if err != nil {
		return
	}
	s.mu.Lock()
	ref, ours := s.refs[id]
	s.mu.Unlock()
	if !ours {
		return
	}
	env, err := events.Decode(events.Message{Subject: m.Subject(), Header: m.Headers(), Data: m.Data()})
	if err != nil {
		s.logger.Warn("simulate: delivery does not decode", slog.String("referral", id), slog.String("org", org))
		return
	}
	switch p := env.Payload.(type) {
	case *events.Offered:
		if p.Organisation != org {
			return // the referrer's copy
		}
		key := fmt.Sprintf("%s/%d", p.Placement, p.Attempt)
		s.mu.Lock()
		seen := ref.answered[key]
		ref.answered[key] = true
		s.mu.Unlock()
		if seen {
			return // a reminder
		}
		s.logger.Info("simulate: offered", slog.String("referral", id), slog.String("placement", p.Placement),
			slog.String("org", org), slog.Int("attempt", p.Attempt))
		s.after(between(simAnswerMin, simAnswerMax), func(ctx context.Context) { s.answer(ctx, id, org, p.Placement) })
	case *events.Unmatched:
		if org == ref.referrer {
			s.logger.Info("simulate: unmatched", slog.String("referral", id), slog.String("reason", p.Reason), slog.Int("needs", len(p.Needs)))
		}
	case *events.Expired:
		if org == ref.referrer {
			s.logger.Info("simulate: offer expired", slog.String("referral", id), slog.String("placement", p.Placement))
		}
	case *events.CommandRejected:
		s.logger.Warn("simulate: command rejected", slog.String("referral", id), slog.String("org", org), slog.Int("problems", len(p.Errors)))
	}
}

// answer accepts or declines an offer as org; an accepted placement is
// contacted and completed later.
func (s *simulator) answer(ctx context.Context, id, org, placement string) {
	if rand.IntN(100) >= simAcceptPercent {
		reason := pick(simDeclineReasons)
		if s.send(ctx, org, id, &events.Declined{Placement: placement, Reason: reason}) == nil {
			s.logger.Info("simulate: declined", slog.String("referral", id), slog.String("placement", placement),
				slog.String("org", org), slog.String("reason", reason))
		}
		return
	}
	if s.send(ctx, org, id, &events.Accepted{Placement: placement}) != nil {
		return
	}
	s.logger.Info("simulate: accepted", slog.String("referral", id), slog.String("placement", placement), slog.String("org", org))
	s.after(between(simContactMin, simContactMax), func(ctx context.Context) {
		if s.send(ctx, org, id, &events.Contacted{Placement: placement}) != nil {
			return
		}
		s.logger.Info("simulate: contacted", slog.String("referral", id), slog.String("placement", placement), slog.String("org", org))
		s.after(between(simCloseMin, simCloseMax), func(ctx context.Context) {
			outcome := pick(simOutcomes)
			if s.send(ctx, org, id, &events.Completed{Placement: placement, Outcome: outcome}) == nil {
				s.logger.Info("simulate: completed", slog.String("referral", id), slog.String("placement", placement),
					slog.String("org", org), slog.String("outcome", outcome))
			}
		})
	})
}

// after runs fn after d, unless the simulator stops first.
func (s *simulator) after(d time.Duration, fn func(context.Context)) {
	s.work.Go(func() {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-s.ctx.Done():
		case <-t.C:
			fn(s.ctx)
		}
	})
}

// send sends command p of org about referral id with org's client. A
// failure is logged and returned.
func (s *simulator) send(ctx context.Context, org, id string, p events.Payload) error {
	err := func() error {
		ctx, cancel := context.WithTimeout(ctx, simSendTimeout)
		defer cancel()
		c, err := s.client(ctx, org)
		if err != nil {
			return err
		}
		_, err = c.Send(ctx, id, p)
		return err
	}()
	if err != nil && s.ctx.Err() == nil {
		s.logger.Warn("simulate: send failed", slog.String("referral", id), slog.String("org", org),
			slog.String("type", p.EventType()), slog.String("error", err.Error()))
	}
	return err
}

// client returns org's client, connecting it on first use.
func (s *simulator) client(ctx context.Context, org string) (*client.Client, error) {
	s.clientsMu.Lock()
	defer s.clientsMu.Unlock()
	if c, ok := s.clients[org]; ok {
		return c, nil
	}
	if s.clients == nil {
		return nil, errors.New("simulate: stopped")
	}
	c, err := s.connect(ctx, org, "invictus simulate "+org)
	if err != nil {
		return nil, err
	}
	s.clients[org] = c
	return c, nil
}

// closeClients closes the organisations' clients; none is made after.
func (s *simulator) closeClients() {
	s.clientsMu.Lock()
	clients := s.clients
	s.clients = nil
	s.clientsMu.Unlock()
	for org, c := range clients {
		if err := c.Close(); err != nil {
			s.logger.Warn("simulate: close", slog.String("org", org), slog.String("error", err.Error()))
		}
	}
}

// pick returns a random element of list.
func pick(list []string) string { return list[rand.IntN(len(list))] }

// between returns a random duration in [lo, hi).
func between(lo, hi time.Duration) time.Duration {
	return lo + rand.N(hi-lo)
}
