package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/internal/wire"
	"github.com/invictus-network/invictus/seal"
)

// Names of the network's streams and bucket that the client reads: the
// contract of DESIGN.md section 3.
const (
	// StreamDelivery holds what each organisation must see, on
	// out.<cc>.<org>.<referral id>.
	StreamDelivery = wire.StreamDelivery
	// BucketDirectory is the directory's key-value bucket.
	BucketDirectory = wire.BucketDirectory
)

// Defaults and limits.
const (
	// URLDefault is the address of a local `invictus serve`.
	URLDefault = "nats://127.0.0.1:4223"
	// TimeoutDefault bounds each request to the network when the
	// context has no earlier deadline.
	TimeoutDefault = 10 * time.Second
	// ReaderSlots is how many readers (Inbox, Follow, Timeline, Await) an
	// organisation may have open at once, across all its connections.
	ReaderSlots = wire.ReaderSlots
	// readerInactive is how long the server keeps a reader that nobody
	// pulls from (its process died) before deleting it.
	readerInactive = 30 * time.Second
	// fetchBatch is how many deliveries a reader asks for at once.
	fetchBatch = 256
	// retryDelayMax caps the delay before a delivery whose handler failed
	// is delivered again.
	retryDelayMax = time.Minute
	// headerReminder marks an offer delivered again as a reminder.
	headerReminder = wire.HeaderReminder
)

// Errors of the client. They are wrapped with details; test them with
// errors.Is.
var (
	// ErrUnavailable: the network could not be reached or did not answer
	// in time. Worth retrying later.
	ErrUnavailable = errors.New("client: network unavailable")
	// ErrUnauthorized: the server refused the credentials, or the
	// organisation's user may not do what was asked.
	ErrUnauthorized = errors.New("client: not authorised")
	// ErrNotProvisioned: the organisation has no delivery consumer. An
	// invictus node's embedded server makes it on first use; on an
	// external server an administrator must provision it.
	ErrNotProvisioned = errors.New("client: organisation not provisioned")
	// ErrRejected: the routing service rejected a command (see
	// [RejectedError]).
	ErrRejected = errors.New("client: command rejected")
	// ErrNotFound: an organisation is not in the directory, or has no age
	// recipient.
	ErrNotFound = errors.New("client: not found")
	// ErrBusy: every one of the organisation's [ReaderSlots] readers is in
	// use.
	ErrBusy = errors.New("client: every reader slot is in use")
)

// RejectedError is the routing service's command.rejected answer to a
// command: errors.Is(err, ErrRejected) is true.
type RejectedError struct {
	// Command is the rejected command's id, CommandType its type.
	Command     string
	CommandType string
	// Problems say what was wrong: a JSON pointer, a code and a message.
	Problems []events.Problem
}

func (e *RejectedError) Error() string {
	var b strings.Builder
	b.WriteString("command ")
	b.WriteString(e.Command)
	b.WriteString(" rejected")
	for i, p := range e.Problems {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		if p.Pointer != "" {
			b.WriteString(p.Pointer + " ")
		}
		b.WriteString(p.Code + ": " + p.Message)
	}
	return b.String()
}

// Is makes errors.Is(err, ErrRejected) true.
func (e *RejectedError) Is(target error) bool { return target == ErrRejected }

// ConsumerName returns the name of organisation org's durable consumer on
// DELIVERY, org_<cc>_<slug> ("pt.apav" gives "org_pt_apav"), or "" for an
// invalid organisation id. Clients in any language pull from it.
func ConsumerName(org string) string { return wire.ConsumerName(org) }

// ReaderNames returns the names of the [ReaderSlots] reader consumers
// organisation org may create on its own delivery subjects:
// org_<cc>_<slug>_r1 to _r8. It returns nil for an invalid id.
func ReaderNames(org string) []string { return wire.ReaderNames(org) }

// InboxPrefix returns organisation org's inbox prefix, _INBOX_<cc>_<slug>
// ("pt.apav" gives "_INBOX_pt_apav"), or "" for an invalid id. Every
// connection of the organisation must use it: the server lets it
// subscribe to nothing else.
func InboxPrefix(org string) string { return wire.InboxPrefix(org) }

// Option is an optional setting of [Connect].
type Option func(*options)

type options struct {
	credsFile string
	seedFile  string
	name      string
	timeout   time.Duration
	logger    *slog.Logger
	natsOpts  []nats.Option
}

// WithCredsFile authenticates with a NATS credentials file (a user JWT
// and its seed), for servers in operator mode.
func WithCredsFile(path string) Option { return func(o *options) { o.credsFile = path } }

// WithNKeySeed authenticates with an nkey seed file, as written by
// `invictus creds`: the embedded server's authentication.
func WithNKeySeed(path string) Option { return func(o *options) { o.seedFile = path } }

// WithName sets the connection name the server shows. Default
// "invictus client <org>".
func WithName(name string) Option { return func(o *options) { o.name = name } }

// WithTimeout bounds each request to the network when the caller's
// context has no earlier deadline. Default [TimeoutDefault].
func WithTimeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

// WithLogger receives the client's logs: event ids and types, never
// payloads. Default discards.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithNATSOptions adds nats.go connect options, applied after the
// client's own (for example nats.InProcessServer, TLS settings or
// reconnect policy).
func WithNATSOptions(opts ...nats.Option) Option {
	return func(o *options) { o.natsOpts = append(o.natsOpts, opts...) }
}

// Client is a connection of one organisation to the network. Its methods
// are safe for concurrent use.
type Client struct {
	org     string
	inbound string
	nc      *nats.Conn
	js      jetstream.JetStream
	timeout time.Duration
	logger  *slog.Logger

	mu     sync.Mutex
	denied []denial // recent permission violations, newest last
}

// denial is a permission violation the server reported.
type denial struct {
	at  time.Time
	err error
}

// Connect connects to the network at url as organisation org (pt.apav),
// with its inbox prefix and the credentials of the options. ctx bounds the
// connect. It returns an error wrapping [ErrUnauthorized] when the server
// refuses the credentials, [ErrUnavailable] when it cannot be reached,
// and a plain error for an invalid org or conflicting options.
func Connect(ctx context.Context, url, org string, opts ...Option) (*Client, error) {
	if !events.IsOrgID(org) {
		return nil, fmt.Errorf("client: %q is not an organisation id (<country>.<slug>, such as pt.apav)", org)
	}
	o := options{timeout: TimeoutDefault, name: "invictus client " + org}
	for _, opt := range opts {
		opt(&o)
	}
	if o.credsFile != "" && o.seedFile != "" {
		return nil, errors.New("client: WithCredsFile and WithNKeySeed are exclusive")
	}
	if o.timeout <= 0 {
		return nil, fmt.Errorf("client: timeout %s must be positive", o.timeout)
	}
	if o.logger == nil {
		o.logger = slog.New(slog.DiscardHandler)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("client: connect: %w", err)
	}
	inbound, err := events.InboundSubject(org)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	c := &Client{org: org, inbound: inbound, timeout: o.timeout, logger: o.logger}

	connectTimeout := o.timeout
	if d, ok := ctx.Deadline(); ok {
		connectTimeout = min(connectTimeout, time.Until(d))
	}
	nopts := []nats.Option{
		nats.Name(o.name),
		nats.CustomInboxPrefix(InboxPrefix(org)),
		nats.Timeout(connectTimeout),
		nats.DrainTimeout(o.timeout),
		nats.ErrorHandler(c.asyncError),
	}
	switch {
	case o.seedFile != "":
		opt, err := nats.NkeyOptionFromSeed(o.seedFile)
		if err != nil {
			return nil, fmt.Errorf("client: nkey seed %s: %w", o.seedFile, err)
		}
		nopts = append(nopts, opt)
	case o.credsFile != "":
		nopts = append(nopts, nats.UserCredentials(o.credsFile))
	}
	nopts = append(nopts, o.natsOpts...)
	nc, err := nats.Connect(url, nopts...)
	if err != nil {
		switch {
		case errors.Is(err, nats.ErrAuthorization), errors.Is(err, nats.ErrAuthExpired), errors.Is(err, nats.ErrAuthRevoked):
			return nil, fmt.Errorf("%w: %s refused the credentials of %s (wrong key, or the organisation is not registered there): %w", ErrUnauthorized, url, org, err)
		case isUnavailable(err):
			return nil, fmt.Errorf("%w: connect to %s: %w", ErrUnavailable, url, err)
		}
		return nil, fmt.Errorf("client: connect to %s: %w", url, err)
	}
	c.nc = nc
	if c.js, err = jetstream.New(nc); err != nil {
		nc.Close()
		return nil, fmt.Errorf("client: %w", err)
	}
	return c, nil
}

// asyncError keeps the permission violations the server reports, so that
// a request that then times out can say why.
func (c *Client) asyncError(_ *nats.Conn, _ *nats.Subscription, err error) {
	if !errors.Is(err, nats.ErrPermissionViolation) {
		c.logger.Warn("client: connection error", slog.String("error", err.Error()))
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.denied = append(c.denied, denial{at: time.Now(), err: err})
	if len(c.denied) > 16 {
		c.denied = c.denied[len(c.denied)-16:]
	}
}

// deniedSince returns the first permission violation reported at or after
// t, or nil.
func (c *Client) deniedSince(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, d := range c.denied {
		if !d.at.Before(t) {
			return d.err
		}
	}
	return nil
}

// isUnavailable reports whether err means the network did not answer.
func isUnavailable(err error) bool {
	var ne net.Error
	return errors.Is(err, nats.ErrNoServers) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, nats.ErrConnectionClosed) ||
		errors.Is(err, nats.ErrConnectionDraining) || errors.Is(err, nats.ErrDisconnected) ||
		errors.Is(err, nats.ErrConnectionReconnecting) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, jetstream.ErrNoHeartbeat) || errors.Is(err, context.DeadlineExceeded) ||
		// The server hung up during the handshake: stopping, or too
		// loaded to finish it.
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.As(err, &ne)
}

// classify wraps err of a call that started at start with the client's
// error classes; what names the call.
func (c *Client) classify(what string, start time.Time, err error) error {
	if err == nil {
		return nil
	}
	if d := c.deniedSince(start); d != nil {
		return fmt.Errorf("%w: %s: %w", ErrUnauthorized, what, d)
	}
	switch {
	case errors.Is(err, nats.ErrPermissionViolation), errors.Is(err, nats.ErrAuthorization):
		return fmt.Errorf("%w: %s: %w", ErrUnauthorized, what, err)
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("client: %s: %w", what, err)
	case isUnavailable(err):
		return fmt.Errorf("%w: %s: %w", ErrUnavailable, what, err)
	}
	return fmt.Errorf("client: %s: %w", what, err)
}

// call returns ctx bounded by the client's timeout when it has no earlier
// deadline.
func (c *Client) call(ctx context.Context) (context.Context, context.CancelFunc) {
	if d, ok := ctx.Deadline(); ok && time.Until(d) <= c.timeout {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, c.timeout)
}

// Org returns the organisation the client acts as.
func (c *Client) Org() string { return c.org }

// Conn returns the underlying NATS connection, for what the client does
// not cover; the organisation's permissions apply to it.
func (c *Client) Conn() *nats.Conn { return c.nc }

// JetStream returns the JetStream context of the connection.
func (c *Client) JetStream() jetstream.JetStream { return c.js }

// Close drains the connection, so that pending acknowledgements are
// sent, and waits until it is closed (at most the client's timeout, then
// it closes it at once). Calling it more than once is safe. It returns
// the drain's error, if any; the connection is closed anyway.
func (c *Client) Close() error {
	err := c.nc.Drain()
	if errors.Is(err, nats.ErrConnectionClosed) {
		return nil
	}
	if err != nil {
		c.nc.Close()
		return fmt.Errorf("client: drain: %w", err)
	}
	deadline := time.Now().Add(c.timeout + time.Second)
	for !c.nc.IsClosed() {
		if time.Now().After(deadline) {
			c.nc.Close()
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}

// Send sends command p about referral referralID: it builds the
// CloudEvent (source the client's organisation, subject the referral
// id), publishes it on the organisation's INBOUND subject with its id as
// Nats-Msg-Id, and waits until JetStream has stored it. It returns the
// command id. opts may set the id (events.WithID, to resend a command
// idempotently), the time or the trace context.
//
// Errors: an *events.ValidationError when the command breaks the contract
// (nothing is sent), [ErrUnauthorized] when the organisation may not
// publish it, [ErrUnavailable] when it was not stored in time (resend it
// with the same id).
func (c *Client) Send(ctx context.Context, referralID string, p events.Payload, opts ...events.Option) (string, error) {
	ev, err := events.New(events.SourceOf(c.org), referralID, p, opts...)
	if err != nil {
		return "", fmt.Errorf("client: %w", err)
	}
	return ev.ID(), c.publish(ctx, ev)
}

// publish publishes ev on the organisation's INBOUND subject.
func (c *Client) publish(ctx context.Context, ev event.Event) error {
	m, err := wire.Command(c.inbound, ev)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	msg := &nats.Msg{Subject: m.Subject, Header: nats.Header(m.Header), Data: m.Data}
	ctx, cancel := c.call(ctx)
	defer cancel()
	start := time.Now()
	if _, err := c.js.PublishMsg(ctx, msg); err != nil {
		return c.classify("publish "+ev.Type()+" on "+c.inbound, start, err)
	}
	c.logger.Debug("client: command stored", slog.String("id", ev.ID()), slog.String("type", ev.Type()))
	return nil
}

// Refer sends a referral: the needs profile with the victim's consent. The
// routing service answers with the plan (referral.planned) and offers the
// placements; [Client.Await] waits for the plan. referralID is a new id
// from events.NewReferralID. It returns the command id; errors as
// [Client.Send].
func (c *Client) Refer(ctx context.Context, referralID string, req events.Requested) (string, error) {
	return c.Send(ctx, referralID, &req)
}

// Accept accepts the placement offered to the organisation. Errors as
// [Client.Send].
func (c *Client) Accept(ctx context.Context, referralID, placement string) (string, error) {
	return c.Send(ctx, referralID, &events.Accepted{Placement: placement})
}

// Decline declines the placement offered to the organisation with a
// reason code (capacity, out_of_scope, not_eligible, out_of_area,
// language, conflict_of_interest, other); routing payloads carry no free
// text. Errors as [Client.Send].
func (c *Client) Decline(ctx context.Context, referralID, placement, reason string) (string, error) {
	return c.Send(ctx, referralID, &events.Declined{Placement: placement, Reason: reason})
}

// Contacted reports that the accepting organisation has contacted the
// victim. Errors as [Client.Send].
func (c *Client) Contacted(ctx context.Context, referralID, placement string) (string, error) {
	return c.Send(ctx, referralID, &events.Contacted{Placement: placement})
}

// OnHold reports that the placement is waitlisted, optionally until a
// time. Errors as [Client.Send].
func (c *Client) OnHold(ctx context.Context, referralID, placement string, until *time.Time) (string, error) {
	return c.Send(ctx, referralID, &events.OnHold{Placement: placement, Until: until})
}

// Complete reports the outcome of the placement (supported,
// not_supported, unable_to_contact, declined_by_victim,
// referred_elsewhere, other). Errors as [Client.Send].
func (c *Client) Complete(ctx context.Context, referralID, placement, outcome string) (string, error) {
	return c.Send(ctx, referralID, &events.Completed{Placement: placement, Outcome: outcome})
}

// Withdraw withdraws the organisation's referral with a reason code
// (victim_request, needs_met, referred_elsewhere, duplicate, error,
// other). Errors as [Client.Send].
func (c *Client) Withdraw(ctx context.Context, referralID, reason string) (string, error) {
	return c.Send(ctx, referralID, &events.Withdrawn{Reason: reason})
}

// Erase asks for every copy of the referral to be purged, on the victim's
// request (reason victim_request, retention or error). Errors as
// [Client.Send].
func (c *Client) Erase(ctx context.Context, referralID, reason string) (string, error) {
	return c.Send(ctx, referralID, &events.Erase{Reason: reason})
}

// Feedback sends the victim's anonymous survey answers. Errors as
// [Client.Send].
func (c *Client) Feedback(ctx context.Context, referralID string, fb events.Feedback) (string, error) {
	return c.Send(ctx, referralID, &fb)
}

// Handover seals caseFile (names, contact details, notes: whatever the
// accepting organisation needs) locally to recipient, the accepting
// organisation's age recipient ([Client.Recipient]), and sends it as
// referral.handover for the placement. The plaintext never leaves this
// process. It returns an error wrapping seal.ErrRecipient or
// seal.ErrTooLarge before anything is sent, and otherwise as
// [Client.Send].
func (c *Client) Handover(ctx context.Context, referralID, placement, recipient string, caseFile []byte) (string, error) {
	envelope, err := seal.Seal(recipient, caseFile)
	if err != nil {
		return "", fmt.Errorf("client: handover: %w", err)
	}
	return c.Send(ctx, referralID, &events.Handover{Placement: placement, Recipient: strings.TrimSpace(recipient), Envelope: envelope})
}

// Open opens a received handover with the organisation's age identity
// (AGE-SECRET-KEY-1...; seal.ParseIdentityFile reads it from a key file)
// and returns the case file. It returns the errors of seal.Open:
// seal.ErrNotForYou when the envelope was sealed to someone else.
func Open(identity string, h *events.Handover) ([]byte, error) {
	if h == nil {
		return nil, fmt.Errorf("client: open: %w", seal.ErrMalformed)
	}
	out, err := seal.Open(identity, h.Envelope)
	if err != nil {
		return nil, fmt.Errorf("client: open the handover of placement %s: %w", h.Placement, err)
	}
	return out, nil
}

// Recipient returns organisation org's age recipient from the directory:
// the public key to seal a handover to. It returns an error wrapping
// [ErrNotFound] when org is not in the directory or has published no
// recipient.
func (c *Client) Recipient(ctx context.Context, org string) (string, error) {
	if !events.IsOrgID(org) {
		return "", fmt.Errorf("client: %q is not an organisation id", org)
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	start := time.Now()
	kv, err := c.js.KeyValue(ctx, BucketDirectory)
	if err != nil {
		return "", c.classify("open the directory", start, err)
	}
	e, err := kv.Get(ctx, "org."+org)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return "", fmt.Errorf("%w: organisation %s is not in the directory", ErrNotFound, org)
	}
	if err != nil {
		return "", c.classify("read organisation "+org, start, err)
	}
	var rec struct {
		AgeRecipient string `json:"age_recipient"`
	}
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return "", fmt.Errorf("client: organisation %s in the directory: %w", org, err)
	}
	if rec.AgeRecipient == "" {
		return "", fmt.Errorf("%w: organisation %s has published no age recipient", ErrNotFound, org)
	}
	return rec.AgeRecipient, nil
}

// Delivery is one message delivered to the organisation.
type Delivery struct {
	// Sequence is the message's sequence in DELIVERY: deliveries are in
	// this order. [Client.Follow] resumes after one.
	Sequence uint64
	// Referral is the referral id of the delivery subject, or "" for the
	// rejection of a command that named no referral.
	Referral string
	// Stored is when the delivery was stored.
	Stored time.Time
	// Reminder marks an offer delivered again as a reminder: its event is
	// the offer's, with the same id.
	Reminder bool
	// Envelope is the decoded event; nil when the message does not decode
	// (Err says why).
	Envelope *events.Envelope
	// Err is the decoding error of a message that is not a valid event.
	Err error
}

// deliveryOf decodes m.
func deliveryOf(m jetstream.Msg) Delivery {
	d := Delivery{Reminder: m.Headers().Get(headerReminder) != ""}
	if md, err := m.Metadata(); err == nil {
		d.Sequence, d.Stored = md.Sequence.Stream, md.Timestamp
	}
	if _, ref, err := events.ParseDeliverySubject(m.Subject()); err == nil {
		d.Referral = ref
	}
	d.Envelope, d.Err = events.Decode(events.Message{Subject: m.Subject(), Header: m.Headers(), Data: m.Data()})
	return d
}

// Receive runs handler for each delivery to the organisation, one at a
// time and in order, from its durable consumer on DELIVERY, until ctx
// ends; it then returns nil. A delivery is acknowledged once handler
// returns nil; when handler fails it is delivered again later, after a
// delay that grows with each attempt, so handler must be idempotent (by
// the event id: reminders repeat an offer's id). A message that is not a
// valid event is terminated and logged, never passed to handler. While
// handler runs, the delivery's acknowledgement deadline is extended.
//
// An invictus node makes the consumer on its first use (and removes it
// after a week unread; it is made again from the first delivery still
// stored). It returns an error wrapping [ErrNotProvisioned] when the
// organisation has no consumer (an external server not provisioned), [ErrUnauthorized] or [ErrUnavailable] when it cannot
// be read.
func (c *Client) Receive(ctx context.Context, handler func(context.Context, *events.Envelope) error) error {
	name := ConsumerName(c.org)
	cctx, cancel := c.call(ctx)
	start := time.Now()
	cons, err := c.js.Consumer(cctx, StreamDelivery, name)
	cancel()
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return fmt.Errorf("%w: %s has no consumer %s on %s", ErrNotProvisioned, c.org, name, StreamDelivery)
	}
	if err != nil && ctx.Err() != nil {
		return nil // the caller ended it while the consumer was being opened
	}
	if err != nil {
		return c.classify("open consumer "+name, start, err)
	}
	ackWait := cons.CachedInfo().Config.AckWait
	it, err := cons.Messages()
	if err != nil {
		return c.classify("consume "+name, start, err)
	}
	defer it.Stop()
	for {
		m, err := it.Next(jetstream.NextContext(ctx))
		switch {
		case ctx.Err() != nil, errors.Is(err, jetstream.ErrMsgIteratorClosed):
			return nil
		case errors.Is(err, jetstream.ErrNoHeartbeat):
			continue // the iterator pulls again by itself
		case err != nil:
			return c.classify("consume "+name, start, err)
		}
		c.handle(ctx, m, handler, ackWait)
	}
}

// handle runs handler on one delivery and acknowledges, retries or
// terminates it.
func (c *Client) handle(ctx context.Context, m jetstream.Msg, handler func(context.Context, *events.Envelope) error, ackWait time.Duration) {
	d := deliveryOf(m)
	if d.Err != nil {
		c.logger.Warn("client: delivery is not a valid event; terminated", slog.Uint64("sequence", d.Sequence), slog.String("error", d.Err.Error()))
		_ = m.TermWithReason("not a valid event")
		return
	}
	id, typ := d.Envelope.Event.ID(), d.Envelope.Event.Type()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	if ackWait > 0 {
		wg.Go(func() {
			t := time.NewTicker(ackWait / 2)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					_ = m.InProgress()
				}
			}
		})
	}
	err := handler(ctx, d.Envelope)
	close(stop)
	wg.Wait()
	if err != nil {
		attempt := 1
		if md, merr := m.Metadata(); merr == nil {
			attempt = int(min(md.NumDelivered, 16))
		}
		delay := min(time.Second<<(attempt-1), retryDelayMax)
		c.logger.Warn("client: handler failed; delivered again later", slog.String("id", id), slog.String("type", typ),
			slog.Duration("delay", delay), slog.String("error", err.Error()))
		_ = m.NakWithDelay(delay)
		return
	}
	actx, cancel := c.call(context.WithoutCancel(ctx))
	defer cancel()
	if err := m.DoubleAck(actx); err != nil {
		c.logger.Warn("client: acknowledgement failed; the delivery will come again", slog.String("id", id), slog.String("error", err.Error()))
	}
}

// reader is a short-lived consumer on the organisation's own delivery
// subjects, without acknowledgements.
type reader struct {
	c    *Client
	name string
	cons jetstream.Consumer
}

// openReader creates a reader on filter (inside out.<cc>.<org>.>) in a
// free slot, starting at sequence from (0: the first delivery). It
// returns an error wrapping ErrBusy when every slot is taken.
func (c *Client) openReader(ctx context.Context, filter string, from uint64) (*reader, error) {
	names := ReaderNames(c.org)
	first := rand.IntN(len(names))
	cfg := jetstream.ConsumerConfig{
		FilterSubject:     filter,
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		AckPolicy:         jetstream.AckNonePolicy,
		InactiveThreshold: readerInactive,
		MemoryStorage:     true,
		// A nonce makes two readers' configurations differ, so that a
		// second create of a taken slot fails instead of sharing it.
		Metadata: map[string]string{"reader": nuid.Next()},
	}
	if from > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, from
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	start := time.Now()
	for i := range names {
		cfg.Name = names[(first+i)%len(names)]
		cons, err := c.js.CreateConsumer(ctx, StreamDelivery, cfg)
		if errors.Is(err, jetstream.ErrConsumerExists) || errors.Is(err, jetstream.ErrConsumerNameAlreadyInUse) {
			continue
		}
		if err != nil {
			return nil, c.classify("open a reader of "+filter, start, err)
		}
		return &reader{c: c, name: cfg.Name, cons: cons}, nil
	}
	return nil, fmt.Errorf("%w: %d readers of %s are open; close one or wait %s", ErrBusy, len(names), c.org, readerInactive)
}

// close deletes the reader's consumer.
func (r *reader) close(ctx context.Context) {
	ctx, cancel := r.c.call(context.WithoutCancel(ctx))
	defer cancel()
	if err := r.c.js.DeleteConsumer(ctx, StreamDelivery, r.name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		r.c.logger.Debug("client: reader not deleted; the server deletes it when idle", slog.String("reader", r.name), slog.String("error", err.Error()))
	}
}

// readAll calls fn with every delivery on filter from sequence from on
// that was stored when the reader was created, in order.
func (c *Client) readAll(ctx context.Context, filter string, from uint64, fn func(Delivery)) error {
	r, err := c.openReader(ctx, filter, from)
	if err != nil {
		return err
	}
	defer r.close(ctx)
	pending := r.cons.CachedInfo().NumPending
	for pending > 0 {
		start := time.Now()
		// No wait: what is pending is there already; a batch that comes
		// back short or empty means messages were purged meanwhile.
		batch, err := r.cons.FetchNoWait(int(min(pending, fetchBatch)))
		if err != nil {
			return c.classify("read "+filter, start, err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			fn(deliveryOf(m))
			if md, err := m.Metadata(); err == nil {
				pending = md.NumPending
			}
		}
		if err := batch.Error(); err != nil {
			return c.classify("read "+filter, start, err)
		}
		if got == 0 {
			return nil
		}
	}
	return nil
}

// follow calls fn with every delivery on filter from sequence from on,
// the ones stored later too, until ctx ends (it then returns nil) or fn
// returns an error (returned as is).
func (c *Client) follow(ctx context.Context, filter string, from uint64, fn func(Delivery) error) error {
	r, err := c.openReader(ctx, filter, from)
	if err != nil {
		return err
	}
	defer r.close(ctx)
	start := time.Now()
	it, err := r.cons.Messages()
	if err != nil {
		return c.classify("follow "+filter, start, err)
	}
	defer it.Stop()
	for {
		m, err := it.Next(jetstream.NextContext(ctx))
		switch {
		case ctx.Err() != nil, errors.Is(err, jetstream.ErrMsgIteratorClosed):
			return nil
		case errors.Is(err, jetstream.ErrNoHeartbeat):
			continue
		case err != nil:
			return c.classify("follow "+filter, start, err)
		}
		if err := fn(deliveryOf(m)); err != nil {
			return err
		}
	}
}

// Inbox returns the organisation's latest deliveries, at most limit of
// them (all when limit is 0 or less), oldest first. It reads without
// acknowledging anything, so it does not disturb [Client.Receive]. It
// returns an error wrapping [ErrBusy], [ErrUnauthorized] or
// [ErrUnavailable].
func (c *Client) Inbox(ctx context.Context, limit int) ([]Delivery, error) {
	var out []Delivery
	err := c.readAll(ctx, events.DeliveryFilter(c.org), 0, func(d Delivery) {
		out = append(out, d)
		if limit > 0 && len(out) > 2*limit {
			out = append(out[:0], out[len(out)-limit:]...)
		}
	})
	if limit > 0 && len(out) > limit {
		out = out[len(out)-limit:]
	}
	return out, err
}

// Follow calls fn with each delivery to the organisation whose sequence
// is greater than after (0: from the first), the ones stored later too,
// until ctx ends (then it returns nil) or fn returns an error (returned
// as is). Like [Client.Inbox] it acknowledges nothing. Other errors as
// Inbox.
func (c *Client) Follow(ctx context.Context, after uint64, fn func(Delivery) error) error {
	return c.follow(ctx, events.DeliveryFilter(c.org), after+1, fn)
}

// referralFilter returns the organisation's delivery subject of a
// referral.
func (c *Client) referralFilter(referralID string) (string, error) {
	s, err := events.DeliverySubject(c.org, referralID)
	if err != nil {
		return "", fmt.Errorf("client: %w", err)
	}
	return s, nil
}

// Await waits for the routing service's answer to command commandID about
// referral referralID: the recorded command as delivered back to the
// organisation, or the first event answering it (correlationid; for a
// referral, its plan). It returns that event, or a [*RejectedError]
// (errors.Is ErrRejected) with the rejection's event. ctx bounds the
// wait: when it ends first, Await returns ctx's error, which means no
// answer yet (the command stays stored and will be processed; a handover
// is never delivered back to its sender, so only a rejection answers it).
func (c *Client) Await(ctx context.Context, referralID, commandID string) (*events.Envelope, error) {
	filter, err := c.referralFilter(referralID)
	if err != nil {
		return nil, err
	}
	var found *events.Envelope
	var rejected error
	errFound := errors.New("found")
	err = c.follow(ctx, filter, 0, func(d Delivery) error {
		if d.Envelope == nil {
			return nil
		}
		ev := d.Envelope.Event
		corr, _ := ev.Extensions()[events.ExtCorrelationID].(string)
		if ev.ID() != commandID && corr != commandID {
			return nil
		}
		found = d.Envelope
		if rej, ok := d.Envelope.Payload.(*events.CommandRejected); ok {
			rejected = &RejectedError{Command: rej.Command, CommandType: rej.CommandType, Problems: rej.Errors}
		}
		return errFound
	})
	switch {
	case errors.Is(err, errFound):
		return found, rejected
	case err != nil:
		return nil, err
	}
	return nil, fmt.Errorf("client: no answer to command %s yet: %w", commandID, context.Cause(ctx))
}

// Timeline is what the organisation received about one referral, in
// order, with the status of each placement as it sees them. The
// referrer sees every placement; an organisation offered a placement
// sees only that one.
type Timeline struct {
	Referral string `json:"referral"`
	// Status is the referral's status as far as these deliveries tell:
	// planned, in_progress, completed, partially_completed, failed,
	// cancelled, erased, or open when nothing tells more.
	Status     string          `json:"status"`
	Placements []PlacementView `json:"placements"`
	Deliveries []Delivery      `json:"-"`
}

// PlacementView is a placement as the deliveries to one organisation
// show it.
type PlacementView struct {
	ID    string   `json:"id"`
	Needs []string `json:"needs,omitempty"`
	// Status: planned, offered, accepted, declined, expired, in_progress,
	// on_hold, completed, failed or cancelled.
	Status       string    `json:"status"`
	Organisation string    `json:"organisation,omitempty"`
	Service      string    `json:"service,omitempty"`
	Deadline     time.Time `json:"deadline,omitzero"`
	Outcome      string    `json:"outcome,omitempty"`
	// Handovers counts the sealed handovers received (by the accepting
	// organisation only).
	Handovers int `json:"handovers,omitempty"`
}

// Placement returns the placement with the id, or false.
func (t *Timeline) Placement(id string) (PlacementView, bool) {
	for _, p := range t.Placements {
		if p.ID == id {
			return p, true
		}
	}
	return PlacementView{}, false
}

// Timeline reads everything delivered to the organisation about
// referral referralID. It returns an error wrapping [ErrNotFound] when
// nothing was (an unknown referral, one of another organisation, or
// erased before anything reached this one), and otherwise as
// [Client.Inbox].
func (c *Client) Timeline(ctx context.Context, referralID string) (*Timeline, error) {
	filter, err := c.referralFilter(referralID)
	if err != nil {
		return nil, err
	}
	t := &Timeline{Referral: referralID, Status: "open"}
	if err := c.readAll(ctx, filter, 0, func(d Delivery) { t.Deliveries = append(t.Deliveries, d) }); err != nil {
		return nil, err
	}
	if len(t.Deliveries) == 0 {
		return nil, fmt.Errorf("%w: nothing was delivered to %s about referral %s", ErrNotFound, c.org, referralID)
	}
	for _, d := range t.Deliveries {
		if d.Envelope != nil && !d.Reminder {
			t.apply(d.Envelope)
		}
	}
	t.derive()
	return t, nil
}

// placement returns the index of placement id, adding it if new.
func (t *Timeline) placement(id string) int {
	for i, p := range t.Placements {
		if p.ID == id {
			return i
		}
	}
	t.Placements = append(t.Placements, PlacementView{ID: id, Status: "planned"})
	return len(t.Placements) - 1
}

// apply updates the timeline's view with one event.
func (t *Timeline) apply(env *events.Envelope) {
	from, _ := events.OrgOfSource(env.Event.Source())
	set := func(id, status string) *PlacementView {
		p := &t.Placements[t.placement(id)]
		p.Status = status
		return p
	}
	switch v := env.Payload.(type) {
	case *events.Planned:
		t.Status = "planned"
		for _, g := range v.Groups {
			p := &t.Placements[t.placement(g.Placement)]
			p.Needs = g.Needs
		}
	case *events.Offered:
		p := set(v.Placement, "offered")
		p.Organisation, p.Service, p.Deadline, p.Needs = v.Organisation, v.Service, v.Deadline, v.Needs
	case *events.Accepted:
		p := set(v.Placement, "accepted")
		p.Organisation = from
	case *events.Declined:
		set(v.Placement, "declined")
	case *events.Expired:
		set(v.Placement, "expired")
	case *events.Unmatched:
		if v.Placement != "" {
			set(v.Placement, "failed")
		}
	case *events.Handover:
		p := &t.Placements[t.placement(v.Placement)]
		p.Handovers++
	case *events.Contacted:
		set(v.Placement, "in_progress")
	case *events.OnHold:
		set(v.Placement, "on_hold")
	case *events.Completed:
		p := set(v.Placement, "completed")
		p.Outcome = v.Outcome
	case *events.Withdrawn:
		t.Status = "cancelled"
		for i := range t.Placements {
			switch t.Placements[i].Status {
			case "completed", "failed":
			default:
				t.Placements[i].Status = "cancelled"
			}
		}
	case *events.Erased:
		t.Status = "erased"
	}
}

// derive sets the referral's status from its placements unless an event
// set a final one.
func (t *Timeline) derive() {
	if t.Status == "cancelled" || t.Status == "erased" || len(t.Placements) == 0 {
		return
	}
	open, completed, failed, active := 0, 0, 0, 0
	for _, p := range t.Placements {
		switch p.Status {
		case "completed":
			completed++
		case "failed", "cancelled":
			failed++
		case "accepted", "in_progress", "on_hold":
			active++
			open++
		default:
			open++
		}
	}
	switch {
	case open > 0 && (active > 0 || completed > 0):
		t.Status = "in_progress"
	case open > 0:
		// planned, or an offer the organisation received
	case failed == 0:
		t.Status = "completed"
	case completed == 0:
		t.Status = "failed"
	default:
		t.Status = "partially_completed"
	}
}
