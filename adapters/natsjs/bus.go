package natsjs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/internal/clip"
	"github.com/invictus-network/invictus/internal/tracing"
	"github.com/invictus-network/invictus/internal/wire"
	"github.com/invictus-network/invictus/routing"
)

// Headers the routing service adds to its messages, next to the
// CloudEvents ce-* headers. Names are matched case-insensitively by NATS
// clients; these are canonical.
const (
	// HeaderRecipients, on a REFERRALS message, lists the organisations
	// (comma-separated ids) whose delivery subjects receive the event.
	HeaderRecipients = wire.HeaderRecipients
	// HeaderTimer, on a REFERRALS referral.offered message, asks the
	// dispatcher to schedule the offer's reminder and deadline:
	// "<placement> <attempt> <organisation> <remind> <deadline>", times in
	// RFC 3339 with nanoseconds, remind "-" for none.
	HeaderTimer = wire.HeaderTimer
	// HeaderCancel, on a REFERRALS message, lists placements
	// (comma-separated) whose timers the dispatcher purges.
	HeaderCancel = wire.HeaderCancel
	// HeaderErase, on a REFERRALS referral.erased message, asks the
	// dispatcher to purge every other copy of the referral first.
	HeaderErase = wire.HeaderErase
	// HeaderTimerKind, on a TIMERS message, is "reminder" or "deadline".
	HeaderTimerKind = wire.HeaderTimerKind
	// HeaderAttempt, on a TIMERS message, is the offer's attempt number.
	HeaderAttempt = wire.HeaderAttempt
	// HeaderOrganisation, on a TIMERS message, is the offered organisation.
	HeaderOrganisation = wire.HeaderOrganisation
	// HeaderDeadline, on a TIMERS reminder, is the deadline to schedule
	// once the reminder has fired (RFC 3339 with nanoseconds).
	HeaderDeadline = wire.HeaderDeadline
	// HeaderReminder, on a DELIVERY message, marks the copy of an offer
	// sent again as a reminder.
	HeaderReminder = wire.HeaderReminder
	// HeaderSequence, on a DELIVERY message, is the REFERRALS sequence of
	// the event: the events of one referral are in this order.
	HeaderSequence = wire.HeaderSequence
	// HeaderReason, on a DLQ message, is why it was set aside (the token
	// of its subject).
	HeaderReason = wire.HeaderReason
	// HeaderError, on a DLQ message, is the first problem found, for
	// people: its JSON pointer and code, and its message unless the
	// problem is in the payload (/data), whose values it may quote.
	HeaderError = wire.HeaderError
	// HeaderOrigin, on a DLQ message, is "<stream> <sequence> <subject>"
	// of the original message.
	HeaderOrigin = wire.HeaderOrigin
)

// Timer kinds of [HeaderTimerKind].
const (
	TimerReminder = "reminder"
	TimerDeadline = "deadline"
)

// Headers of the JetStream protocol the adapter sets by hand.
const (
	hdrBatchID         = "Nats-Batch-Id"
	hdrBatchSeq        = "Nats-Batch-Sequence"
	hdrBatchCommit     = "Nats-Batch-Commit"
	hdrExpectedSubjSeq = jetstream.ExpectedLastSubjSeqHeader
	hdrExpectedSubject = jetstream.ExpectedLastSubjSeqSubjHeader
	hdrStatus          = "Status"
	hdrNumPending      = "Nats-Num-Pending"
	// hdrLastSequence, on each reply of a batched direct get, is the
	// sequence of the reply sent before it in the batch (0 on the first),
	// and on the end of the batch the sequence of the last reply sent.
	hdrLastSequence = "Nats-Last-Sequence"
)

// JetStream API error codes the adapter translates (nats-server's
// errors.json).
const (
	errCodeWrongLastSeq         = 10071
	errCodeWrongLastSeqConstant = 10164
	errCodeBatchDuplicate       = 10201
	errCodeWrongLastMsgID       = 10070
)

// Defaults of [BusConfig].
const (
	// BusTimeoutDefault bounds each request to JetStream when the context
	// has no earlier deadline.
	BusTimeoutDefault = 5 * time.Second
	// LoadBatchDefault is how many events one direct-get request returns.
	LoadBatchDefault = 256
)

// BusConfig configures a [Bus]. The zero value of every field means its
// default.
type BusConfig struct {
	// Timeout bounds each JetStream request. Default [BusTimeoutDefault].
	Timeout time.Duration
	// LoadBatch is how many events one read of a referral's log asks for.
	// Default [LoadBatchDefault].
	LoadBatch int
	// AtomicBatch appends the events of one command in one JetStream
	// atomic batch (REFERRALS must allow atomic publish) instead of a chain
	// of publishes. It suits replicated streams, where the server stages a
	// batch in memory; on an R1 file stream it stages each batch in a
	// temporary file store, which costs about a millisecond per append and
	// serialises appends. Default false: atomic batches where REFERRALS
	// has more than one replica, chains where it has one (see
	// [Bus.Append]).
	AtomicBatch bool
	// Logger receives the adapter's logs. Default discards.
	Logger *slog.Logger
}

// WithDefaults returns a copy of c with every unset field given its default.
func (c BusConfig) WithDefaults() BusConfig {
	if c.Timeout == 0 {
		c.Timeout = BusTimeoutDefault
	}
	if c.LoadBatch == 0 {
		c.LoadBatch = LoadBatchDefault
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate reports the first invalid field of c, naming it.
func (c BusConfig) Validate() error {
	if c.Timeout <= 0 {
		return fmt.Errorf("natsjs: BusConfig.Timeout %s must be positive", c.Timeout)
	}
	if c.LoadBatch < 1 || c.LoadBatch > 10000 {
		return fmt.Errorf("natsjs: BusConfig.LoadBatch %d must be from 1 to 10000", c.LoadBatch)
	}
	return nil
}

// Bus is the routing service's JetStream side: the referral event log in
// REFERRALS ([routing.EventLog]), and the delivery, dead-letter and purge
// operations the consumers of [Router] use. It is safe for concurrent use.
type Bus struct {
	nc       *nats.Conn
	js       jetstream.JetStream
	cfg      BusConfig
	subjects *subjectCache
	streams  sync.Map // stream name -> jetstream.Stream
	replies  replyMux
	// appendMu makes the publishes of one chain of events contiguous on
	// the connection (see appendPipelined).
	appendMu sync.Mutex
	// behind counts the loads a replica behind the leader answered, whose
	// rest came from the leader (see loadRest).
	behind atomic.Int64
}

var _ routing.EventLog = (*Bus)(nil)

// NewBus returns a bus over nc. The streams must exist (see
// [EnsureStreams]), with REFERRALS allowing atomic batch publish. It
// returns an error naming an invalid config field.
func NewBus(nc *nats.Conn, cfg BusConfig) (*Bus, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if nc == nil {
		return nil, errors.New("natsjs: NewBus needs a connection")
	}
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(cfg.Timeout))
	if err != nil {
		return nil, fmt.Errorf("natsjs: jetstream: %w", err)
	}
	return &Bus{nc: nc, js: js, cfg: cfg, subjects: newSubjectCache(subjectCacheSize)}, nil
}

// JetStream returns the bus's JetStream context.
func (b *Bus) JetStream() jetstream.JetStream { return b.js }

// stream returns a handle on stream, looked up once.
func (b *Bus) stream(ctx context.Context, name string) (jetstream.Stream, error) {
	if s, ok := b.streams.Load(name); ok {
		return s.(jetstream.Stream), nil
	}
	s, err := b.js.Stream(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("%w: stream %s: %w", routing.ErrUnavailable, name, err)
	}
	b.streams.Store(name, s)
	return s, nil
}

// ctx returns ctx bounded by the configured timeout.
func (b *Bus) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, b.cfg.Timeout)
}

// referralFilter is the subject filter of every REFERRALS subject of a
// referral, whatever its country.
func referralFilter(referralID string) string { return "referral.*." + referralID }

// directGetRequest is JetStream's direct-get request, with the batch
// fields the client library does not expose.
type directGetRequest struct {
	Seq     uint64 `json:"seq,omitempty"`
	LastFor string `json:"last_by_subj,omitempty"`
	NextFor string `json:"next_by_subj,omitempty"`
	Batch   int    `json:"batch,omitempty"`
	// StartTime starts at the first message stored at or after it.
	StartTime *time.Time `json:"start_time,omitempty"`
}

// errBatchGap is a batched direct get whose replies did not all arrive.
var errBatchGap = errors.New("a reply of a batched read was lost on the way")

// batchChain checks that the replies of one batched direct get all
// arrive. Each reply is a message of its own, sent without
// acknowledgement, and one can be lost on the way: when the reader's
// connection moves to another node (one restarted in a rolling restart)
// while a replica on a third node streams the batch, the replies sent in
// between reach nobody, and those after reach the reader again. A reader
// that goes on after the last sequence it received (an inbox page's
// cursor, a referral's history) would skip the lost one for good, so
// each reply must name the one received before it (hdrLastSequence), and
// the end of the batch the last one; a batch with a gap fails, and is
// read again.
type batchChain struct {
	last uint64 // the sequence of the last reply received; 0 before the first
}

// check checks that m, a reply or the end of the batch, follows the
// last reply received. A server that does not say (an older one) is not
// checked.
func (c *batchChain) check(m *nats.Msg) error {
	v := m.Header.Get(hdrLastSequence)
	if v == "" {
		return nil
	}
	if prev, err := strconv.ParseUint(v, 10, 64); err != nil || prev != c.last {
		return fmt.Errorf("%w: a reply follows sequence %s, the last received is %d", errBatchGap, v, c.last)
	}
	return nil
}

// directGet is the subject of REFERRALS' direct-get API.
const directGet = "$JS.API.DIRECT.GET." + StreamReferrals

// Load reads the referral's events stored after sequence after with
// batched direct gets (one request per LoadBatch events), so that reading
// a referral never creates a consumer. Direct gets of one batch are
// isolated from atomic batch commits, so a read never sees half of an
// append. Reads use the referral's literal subject, which JetStream finds
// through its subject index; the subject of a referral not seen before is
// found with one get of the last message of referral.*.<id>.
//
// Any replica of a replicated REFERRALS answers direct gets, and a
// follower may not have applied the referral's last events yet: a node
// just restarted in a rolling restart answers once it is 90% caught up.
// The service decides on what Load returns, and a decision that appends
// nothing (a rejection: "you were not offered this referral") is checked
// by nobody else, so on a replicated stream Load then asks the stream's
// leader for the referral's last sequence and reads from the leader what
// the replica did not have (see loadRest): one more request per Load,
// none on one replica. Errors wrap routing.ErrUnavailable, or
// routing.ErrCorrupt for a stored event that does not decode.
func (b *Bus) Load(ctx context.Context, referralID string, after uint64) (routing.History, error) {
	if !events.IsReferralID(referralID) {
		return routing.History{}, fmt.Errorf("%w: %q is not a referral id", routing.ErrCorrupt, referralID)
	}
	ctx, cancel := b.ctx(ctx)
	defer cancel()
	if !b.replicated(ctx) {
		return b.loadDirect(ctx, referralID, after)
	}
	// The leader is asked at the same time as the replica, so that the
	// confirmation costs a request but not a round trip more.
	filter, known := b.subjects.get(referralID)
	if !known {
		filter = referralFilter(referralID)
	}
	leader := make(chan leaderLast, 1)
	go func() {
		seq, m, err := leaderGet(ctx, b.js, StreamReferrals, directGetRequest{LastFor: filter})
		leader <- leaderLast{seq, m, err}
	}()
	h, err := b.loadDirect(ctx, referralID, after)
	l := <-leader
	if err != nil {
		return h, err
	}
	return b.loadRest(ctx, referralID, after, h, l)
}

// leaderLast is the leader's answer for the last event of a referral.
type leaderLast struct {
	seq uint64
	m   *nats.Msg // nil when the leader holds none
	err error
}

// loadDirect is Load from whichever replica answers the direct gets.
func (b *Bus) loadDirect(ctx context.Context, referralID string, after uint64) (routing.History, error) {
	subject, known := b.subjects.get(referralID)
	if !known {
		last, subj, err := b.lastOf(ctx, referralFilter(referralID))
		if err != nil || subj == "" {
			return routing.History{}, err
		}
		subject = subj
		b.subjects.put(referralID, subject)
		if last <= after {
			return routing.History{Subject: subject, Last: last}, nil
		}
	}
	h := routing.History{Subject: subject, Last: after}
	inbox, replies, done, err := b.replies.open(b.nc, b.cfg.LoadBatch+2)
	if err != nil {
		return h, fmt.Errorf("%w: load %s: %w", routing.ErrUnavailable, referralID, err)
	}
	defer done()
	for {
		req, _ := json.Marshal(directGetRequest{Seq: h.Last + 1, NextFor: subject, Batch: b.cfg.LoadBatch})
		if err := b.nc.PublishRequest(directGet, inbox, req); err != nil {
			return h, fmt.Errorf("%w: load %s: %w", routing.ErrUnavailable, referralID, err)
		}
		more, err := b.readBatch(ctx, replies, referralID, &h)
		if err != nil || !more {
			return h, err
		}
	}
}

// loadRest completes h, what a direct read of the referral returned, with
// the events the stream's leader held when asked for the referral's last
// one (l) that the replica that answered did not have. The leader
// answers the stream API's message gets (not direct gets), and holds
// every event whose append was acknowledged; it was asked while the
// replica read, so a replica ahead of its answer holds every event
// acknowledged before Load began. Errors wrap routing.ErrUnavailable or
// routing.ErrCorrupt.
func (b *Bus) loadRest(ctx context.Context, referralID string, after uint64, h routing.History, l leaderLast) (routing.History, error) {
	last, lm := l.seq, l.m
	if l.err != nil {
		return h, fmt.Errorf("%w: load %s: %w", routing.ErrUnavailable, referralID, l.err)
	}
	if lm == nil {
		return h, nil // no events then
	}
	if len(h.Events) == 0 && h.Last < after && last >= after {
		h.Last = after // a replica that had not even the caller's events
	}
	if last <= h.Last {
		return h, nil
	}
	if h.Subject == "" {
		h.Subject = lm.Subject
		b.subjects.put(referralID, h.Subject)
	} else if lm.Subject != h.Subject {
		return h, fmt.Errorf("%w: referral %s has events on %s and %s", routing.ErrCorrupt, referralID, h.Subject, lm.Subject)
	}
	behind := h.Last
	for h.Last < last {
		seq, m, err := leaderGet(ctx, b.js, StreamReferrals, directGetRequest{Seq: h.Last + 1, NextFor: h.Subject})
		if err != nil {
			return h, fmt.Errorf("%w: load %s: %w", routing.ErrUnavailable, referralID, err)
		}
		if m == nil || seq > last {
			return h, fmt.Errorf("%w: load %s: the leader's events after %d changed while read", routing.ErrUnavailable, referralID, h.Last)
		}
		env, err := events.Decode(events.Message{Subject: m.Subject, Header: m.Header, Data: m.Data})
		if err != nil {
			return h, fmt.Errorf("%w: referral %s sequence %d: %w", routing.ErrCorrupt, referralID, seq, err)
		}
		h.Events = append(h.Events, env)
		h.Last = seq
	}
	b.cfg.Logger.DebugContext(ctx, "natsjs: a replica behind the leader answered a referral's read; the rest came from the leader",
		slog.String("referral", referralID), slog.Uint64("replica", behind), slog.Uint64("leader", last))
	b.behind.Add(1)
	return h, nil
}

// leaderGet reads one message of stream with the stream API's message get,
// which only the stream's leader answers (not a direct get, which any
// replica may): the message at req.Seq, the first on req.NextFor from
// req.Seq, or the last on req.LastFor. It returns a nil message when
// there is none. The bus's loads and the KV store's misses use it.
func leaderGet(ctx context.Context, js jetstream.JetStream, stream string, req directGetRequest) (uint64, *nats.Msg, error) {
	body, _ := json.Marshal(req)
	reply, err := js.Conn().RequestWithContext(ctx, apiPrefix(js)+"STREAM.MSG.GET."+stream, body)
	if err != nil {
		return 0, nil, fmt.Errorf("ask the leader of %s: %w", stream, err)
	}
	var resp struct {
		Error   *jetstream.APIError `json:"error"`
		Message *struct {
			Subject  string `json:"subject"`
			Sequence uint64 `json:"seq"`
			Header   []byte `json:"hdrs"`
			Data     []byte `json:"data"`
		} `json:"message"`
	}
	if err := json.Unmarshal(reply.Data, &resp); err != nil {
		return 0, nil, fmt.Errorf("ask the leader of %s: %w", stream, err)
	}
	switch {
	case resp.Error != nil && resp.Error.ErrorCode == jetstream.JSErrCodeMessageNotFound:
		return 0, nil, nil
	case resp.Error != nil:
		return 0, nil, fmt.Errorf("ask the leader of %s: %w", stream, resp.Error)
	case resp.Message == nil:
		return 0, nil, nil
	}
	m := &nats.Msg{Subject: resp.Message.Subject, Header: nats.Header{}, Data: resp.Message.Data}
	if len(resp.Message.Header) > 0 {
		if m.Header, err = nats.DecodeHeadersMsg(resp.Message.Header); err != nil {
			return 0, nil, fmt.Errorf("ask the leader of %s: %w", stream, err)
		}
	}
	return resp.Message.Sequence, m, nil
}

// replyMux receives the replies of a bus's batched direct gets on one
// wildcard subscription, created on first use, and hands each to the Load
// waiting for it, by the last token of its inbox. One subscription per
// Load would cost a round of subscription bookkeeping and a large channel
// each time.
type replyMux struct {
	mu      sync.Mutex
	prefix  string // <inbox>. of the subscription
	sub     *nats.Subscription
	next    uint64
	waiting map[string]chan *nats.Msg
}

// open registers a new inbox and returns it, the channel its replies
// arrive on (size messages at most are buffered; a reply that does not
// fit is dropped) and the function that unregisters it.
func (x *replyMux) open(nc *nats.Conn, size int) (string, <-chan *nats.Msg, func(), error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.sub == nil || !x.sub.IsValid() {
		prefix := nc.NewInbox() + "."
		sub, err := nc.Subscribe(prefix+"*", x.route)
		if err != nil {
			return "", nil, nil, err
		}
		x.prefix, x.sub, x.waiting = prefix, sub, map[string]chan *nats.Msg{}
	}
	x.next++
	token := strconv.FormatUint(x.next, 36)
	ch := make(chan *nats.Msg, size)
	x.waiting[token] = ch
	return x.prefix + token, ch, func() {
		x.mu.Lock()
		delete(x.waiting, token)
		x.mu.Unlock()
	}, nil
}

// route hands a reply to its waiting Load; replies nobody waits for any
// more are dropped.
func (x *replyMux) route(m *nats.Msg) {
	x.mu.Lock()
	ch := x.waiting[strings.TrimPrefix(m.Subject, x.prefix)]
	x.mu.Unlock()
	if ch != nil {
		select {
		case ch <- m:
		default:
		}
	}
}

// erasedAfter reports whether the last event on a referral's subject is
// a referral.erased stored after sequence seq.
func (b *Bus) erasedAfter(ctx context.Context, subject string, seq uint64) (bool, error) {
	ctx, cancel := b.ctx(ctx)
	defer cancel()
	last, m, err := b.last(ctx, subject)
	if err != nil || m == nil {
		return false, err
	}
	return last > seq && headerFold(m.Header, "ce-type") == events.TypeReferralErased, nil
}

// lastOf returns the sequence and subject of the last REFERRALS message on
// filter, or an empty subject when there is none.
func (b *Bus) lastOf(ctx context.Context, filter string) (uint64, string, error) {
	seq, m, err := b.last(ctx, filter)
	if err != nil || m == nil {
		return 0, "", err
	}
	return seq, m.Header.Get(jetstream.SubjectHeader), nil
}

// last returns the last REFERRALS message on filter and its sequence, or
// nil when there is none.
func (b *Bus) last(ctx context.Context, filter string) (uint64, *nats.Msg, error) {
	req, _ := json.Marshal(directGetRequest{LastFor: filter})
	m, err := b.nc.RequestWithContext(ctx, directGet, req)
	if err != nil {
		return 0, nil, fmt.Errorf("%w: last of %s: %w", routing.ErrUnavailable, filter, err)
	}
	switch status := m.Header.Get(hdrStatus); status {
	case "":
	case "404":
		return 0, nil, nil
	default:
		return 0, nil, fmt.Errorf("%w: last of %s: direct get status %s %s", routing.ErrUnavailable, filter, status, m.Header.Get("Description"))
	}
	seq, err := strconv.ParseUint(m.Header.Get(jetstream.SequenceHeader), 10, 64)
	if err != nil {
		return 0, nil, fmt.Errorf("%w: last of %s: no sequence in direct get reply", routing.ErrUnavailable, filter)
	}
	return seq, m, nil
}

// readBatch reads one direct-get batch into h and reports whether more
// events are pending.
func (b *Bus) readBatch(ctx context.Context, replies <-chan *nats.Msg, referralID string, h *routing.History) (bool, error) {
	var chain batchChain
	for {
		var m *nats.Msg
		select {
		case m = <-replies:
		case <-ctx.Done():
			return false, fmt.Errorf("%w: load %s: %w", routing.ErrUnavailable, referralID, ctx.Err())
		}
		switch status := m.Header.Get(hdrStatus); status {
		case "":
		case "404": // nothing after the sequence asked for
			return false, nil
		case "204": // end of batch
			if err := chain.check(m); err != nil {
				return false, fmt.Errorf("%w: load %s: %w", routing.ErrUnavailable, referralID, err)
			}
			pending, _ := strconv.ParseUint(m.Header.Get(hdrNumPending), 10, 64)
			return pending > 0, nil
		default:
			return false, fmt.Errorf("%w: load %s: direct get status %s %s", routing.ErrUnavailable, referralID, status, m.Header.Get("Description"))
		}
		seq, err := strconv.ParseUint(m.Header.Get(jetstream.SequenceHeader), 10, 64)
		if err != nil {
			return false, fmt.Errorf("%w: load %s: no sequence in direct get reply", routing.ErrUnavailable, referralID)
		}
		if err := chain.check(m); err != nil {
			return false, fmt.Errorf("%w: load %s: %w", routing.ErrUnavailable, referralID, err)
		}
		chain.last = seq
		subject := m.Header.Get(jetstream.SubjectHeader)
		if h.Subject == "" {
			h.Subject = subject
		} else if subject != h.Subject {
			return false, fmt.Errorf("%w: referral %s has events on %s and %s", routing.ErrCorrupt, referralID, h.Subject, subject)
		}
		env, err := events.Decode(events.Message{Subject: subject, Header: m.Header, Data: m.Data})
		if err != nil {
			return false, fmt.Errorf("%w: referral %s sequence %d: %w", routing.ErrCorrupt, referralID, seq, err)
		}
		h.Events = append(h.Events, env)
		h.Last = seq
	}
}

// Append stores a's events on a.Subject, each with its source and id as
// Nats-Msg-Id (events.MsgID), provided the subject's last sequence is a.Expected (for a
// new referral, the last of every subject of that referral id, so that one
// id can never live in two countries).
//
// By default the events are a chain in which no other writer can slip
// in: published at once, each after the first expecting the stream's last
// message id to be the event before it, with one acknowledgement for the
// whole chain (see appendPipelined), and where that fails because another
// message came in between, one after the other, each expecting the
// sequence of the one before on the subject. A
// crash can leave the first events of a command without the rest; the
// service completes them on its next read of the referral (see
// routing.Service). With BusConfig.AtomicBatch the events of one append
// go in one JetStream atomic batch instead: all or none.
//
// Errors wrap routing.ErrConflict (the subject moved on, possibly after
// the first events of a chain were stored), routing.ErrDuplicate (an event
// is stored already) or routing.ErrUnavailable.
func (b *Bus) Append(ctx context.Context, a routing.Append) (uint64, error) {
	if len(a.Events) == 0 {
		return a.Expected, nil
	}
	msgs := make([]*nats.Msg, len(a.Events))
	for i, o := range a.Events {
		m, err := referralMsg(a.Subject, o)
		if err != nil {
			return 0, err
		}
		msgs[i] = m
	}
	traceAppend(ctx, a, msgs)
	first := msgs[0].Header
	first.Set(hdrExpectedSubjSeq, strconv.FormatUint(a.Expected, 10))
	if a.Expected == 0 {
		first.Set(hdrExpectedSubject, referralFilter(a.ReferralID))
	}
	ctx, cancel := b.ctx(ctx)
	defer cancel()
	if len(msgs) > 1 && (b.cfg.AtomicBatch || b.replicated(ctx)) {
		ack, err := b.publishBatch(ctx, msgs)
		if err != nil {
			return 0, appendError(a.ReferralID, err)
		}
		b.subjects.put(a.ReferralID, a.Subject)
		return ack.Sequence, nil
	}
	if len(msgs) == 1 {
		return b.appendChain(ctx, a, msgs, 0, 0)
	}
	stored, last, err := b.appendPipelined(ctx, a, msgs)
	if err != nil || stored == len(msgs) {
		return last, err
	}
	// Something came in between: the rest one by one.
	return b.appendChain(ctx, a, msgs, stored, last)
}

// replicated reports whether REFERRALS has more than one replica. There a
// chain must not be pipelined: a replicated stream checks a message's
// expected last message id only when each replica applies it, after the
// leader has proposed it, and a mismatch there (another referral's event
// came in between, or a replica restarted) stops the stream on every
// replica with a "critical write error" (nats-server 2.15.2,
// stream.go's processJetStreamMsg and jetstream_cluster.go's
// applyStreamEntries); TestClusterNodeKilled found it. An atomic batch is
// checked by the leader before it is proposed.
func (b *Bus) replicated(ctx context.Context) bool {
	s, err := b.stream(ctx, StreamReferrals)
	if err != nil {
		return true // the safe choice; the append will say what is wrong
	}
	return s.CachedInfo().Config.Replicas > 1
}

// appendPipelined publishes a chain of events at once: every event after
// the first expects the stream's last message id to be the event before
// it, so that it is stored only right after that event, with nothing in
// between (JetStream handles the publishes of one connection in order, and
// the bus publishes one chain at a time). Only the last event asks for
// JetStream's acknowledgement: it is stored only if every event before it
// is, so its acknowledgement stands for the whole chain, and a chain of
// n events costs one acknowledgement instead of n. It returns how many
// events were stored and the sequence of the last one. When the last is
// refused, the events stored are found by reading the subject's last
// message (another writer on the stream came in between, or the first
// event was refused; the rest is left for appendChain, which also tells a
// refused first event's reason); msgs themselves are not changed (the
// expectations of the last message id are set on copies).
func (b *Bus) appendPipelined(ctx context.Context, a routing.Append, msgs []*nats.Msg) (int, uint64, error) {
	last := len(msgs) - 1
	b.appendMu.Lock()
	var f jetstream.PubAckFuture
	var err error
	for i, m := range msgs {
		pm := m
		if i > 0 {
			pm = &nats.Msg{Subject: m.Subject, Header: make(nats.Header, len(m.Header)+1), Data: m.Data}
			for k, vs := range m.Header {
				pm.Header[k] = vs
			}
			prev := a.Events[i-1].Event
			pm.Header.Set(jetstream.ExpectedLastMsgIDHeader, events.MsgID(prev.Source(), prev.ID()))
		}
		if i < last {
			err = b.nc.PublishMsg(pm)
		} else {
			f, err = b.js.PublishMsgAsync(pm)
		}
		if err != nil {
			break
		}
	}
	b.appendMu.Unlock()
	if err != nil {
		return b.storedOf(ctx, a, err)
	}
	var ack *jetstream.PubAck
	select {
	case ack = <-f.Ok():
	case err = <-f.Err():
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		return b.storedOf(ctx, a, err)
	}
	if ack.Duplicate {
		return 0, 0, fmt.Errorf("%w: referral %s event %s", routing.ErrDuplicate, a.ReferralID, a.Events[last].Event.ID())
	}
	b.subjects.put(a.ReferralID, a.Subject)
	return len(msgs), ack.Sequence, nil
}

// storedOf returns how many events of a's chain are stored, and the
// sequence of the last of them, after the chain's last event was refused
// with err: the events up to the subject's last message, when that is
// one of a's events; none otherwise.
func (b *Bus) storedOf(ctx context.Context, a routing.Append, err error) (int, uint64, error) {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode != errCodeWrongLastMsgID {
		return 0, 0, chainError(a, len(a.Events)-1, err)
	}
	seq, m, err := b.last(ctx, a.Subject)
	if err != nil || m == nil {
		return 0, 0, err
	}
	id := m.Header.Get(jetstream.MsgIDHeader)
	for i, o := range a.Events {
		if events.MsgID(o.Event.Source(), o.Event.ID()) == id {
			b.subjects.put(a.ReferralID, a.Subject)
			return i + 1, seq, nil
		}
	}
	return 0, 0, nil
}

// appendChain publishes msgs[from:] one after the other, each expecting
// the sequence of the one before on the referral's subject (the first,
// when from is 0, its own expectation; else last, the sequence of
// msgs[from-1]), and returns the sequence of the last one.
func (b *Bus) appendChain(ctx context.Context, a routing.Append, msgs []*nats.Msg, from int, last uint64) (uint64, error) {
	for i := from; i < len(msgs); i++ {
		m := msgs[i]
		if i > 0 {
			m.Header.Set(hdrExpectedSubjSeq, strconv.FormatUint(last, 10))
		}
		ack, err := b.js.PublishMsg(ctx, m)
		if err != nil {
			return 0, chainError(a, i, err)
		}
		if ack.Duplicate {
			return 0, fmt.Errorf("%w: referral %s event %s", routing.ErrDuplicate, a.ReferralID, a.Events[i].Event.ID())
		}
		if i == 0 {
			b.subjects.put(a.ReferralID, a.Subject)
		}
		last = ack.Sequence
	}
	return last, nil
}

// chainError translates the failure of the i-th publish of a's chain:
// after the first, part of the chain is stored and the state must be
// read again, so anything but a conflict is reported as one too.
func chainError(a routing.Append, i int, err error) error {
	err = appendError(a.ReferralID, err)
	if i > 0 && !errors.Is(err, routing.ErrConflict) {
		err = fmt.Errorf("%w: %d of %d events stored: %w", routing.ErrConflict, i, len(a.Events), err)
	}
	return err
}

// publishBatch publishes msgs as one atomic batch. The messages before the
// last are published without a reply subject (JetStream stages them
// silently); the last commits and returns the batch's acknowledgement,
// or the error that made the server abandon the batch. Publishes on one
// connection keep their order, so no staging acknowledgement is needed.
func (b *Bus) publishBatch(ctx context.Context, msgs []*nats.Msg) (*jetstream.PubAck, error) {
	id := nuid.Next()
	for i, m := range msgs {
		m.Header.Set(hdrBatchID, id)
		m.Header.Set(hdrBatchSeq, strconv.Itoa(i+1))
		if i == len(msgs)-1 {
			m.Header.Set(hdrBatchCommit, "1")
			break
		}
		if err := b.nc.PublishMsg(m); err != nil {
			return nil, err
		}
	}
	return b.js.PublishMsg(ctx, msgs[len(msgs)-1])
}

// appendError translates a publish error into the routing error classes.
func appendError(referralID string, err error) error {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode {
		case errCodeWrongLastSeq, errCodeWrongLastSeqConstant:
			return fmt.Errorf("%w: referral %s: %w", routing.ErrConflict, referralID, err)
		case errCodeBatchDuplicate:
			return fmt.Errorf("%w: referral %s: %w", routing.ErrDuplicate, referralID, err)
		}
	}
	return fmt.Errorf("%w: append to referral %s: %w", routing.ErrUnavailable, referralID, err)
}

// referralMsg encodes one outgoing event as a REFERRALS message with the
// dispatcher's headers.
func referralMsg(subject string, o routing.Outgoing) (*nats.Msg, error) {
	em, err := events.ToNATS(subject, o.Event)
	if err != nil {
		return nil, fmt.Errorf("natsjs: encode %s: %w", o.Event.Type(), err)
	}
	m := &nats.Msg{Subject: em.Subject, Header: nats.Header(em.Header), Data: em.Data}
	m.Header.Set(jetstream.MsgIDHeader, events.MsgID(o.Event.Source(), o.Event.ID()))
	if len(o.Recipients) > 0 {
		m.Header.Set(HeaderRecipients, strings.Join(o.Recipients, ","))
	}
	if t := o.Timer; t != nil {
		remind := "-"
		if !t.Remind.IsZero() {
			remind = t.Remind.UTC().Format(time.RFC3339Nano)
		}
		m.Header.Set(HeaderTimer, fmt.Sprintf("%s %d %s %s %s", t.Placement, t.Attempt, t.Organisation, remind, t.Deadline.UTC().Format(time.RFC3339Nano)))
	}
	if len(o.Cancel) > 0 {
		m.Header.Set(HeaderCancel, strings.Join(o.Cancel, ","))
	}
	if o.Erase {
		m.Header.Set(HeaderErase, "1")
	}
	return m, nil
}

// parseTimer parses a HeaderTimer value for the referral.
func parseTimer(referralID, v string) (routing.Timer, error) {
	f := strings.Fields(v)
	if len(f) != 5 {
		return routing.Timer{}, fmt.Errorf("natsjs: malformed %s %q", HeaderTimer, v)
	}
	t := routing.Timer{ReferralID: referralID, Placement: f[0], Organisation: f[2]}
	var err error
	if t.Attempt, err = strconv.Atoi(f[1]); err != nil || t.Attempt < 1 {
		return routing.Timer{}, fmt.Errorf("natsjs: malformed attempt in %s %q", HeaderTimer, v)
	}
	if f[3] != "-" {
		if t.Remind, err = time.Parse(time.RFC3339Nano, f[3]); err != nil {
			return routing.Timer{}, fmt.Errorf("natsjs: malformed reminder in %s %q: %w", HeaderTimer, v, err)
		}
	}
	if t.Deadline, err = time.Parse(time.RFC3339Nano, f[4]); err != nil {
		return routing.Timer{}, fmt.Errorf("natsjs: malformed deadline in %s %q: %w", HeaderTimer, v, err)
	}
	if !events.IsPlacementID(t.Placement) || !events.IsOrgID(t.Organisation) {
		return routing.Timer{}, fmt.Errorf("natsjs: malformed %s %q", HeaderTimer, v)
	}
	return t, nil
}

// eventCopy returns a message on subject with m's CloudEvents headers and
// data only: what an organisation receives of a stored event.
func eventCopy(subject string, h nats.Header, data []byte) *nats.Msg {
	out := &nats.Msg{Subject: subject, Header: make(nats.Header, len(h)), Data: data}
	for k, vs := range h {
		// Case-insensitive without strings.ToLower, which allocated for
		// every header with a capital (Content-Type, Nats-Msg-Id, ...).
		if len(k) >= 3 && strings.EqualFold(k[:3], "ce-") || strings.EqualFold(k, "content-type") {
			out.Header[k] = vs
		}
	}
	return out
}

// deliver publishes env to org's delivery subject of its referral (or, for
// a rejection naming no valid referral, out.<org>.rejected), with
// Nats-Msg-Id <source>/<event id>.<org> so that delivering twice stores it once.
func (b *Bus) deliver(ctx context.Context, org string, env *events.Envelope) error {
	subject, err := deliverySubject(org, env.Event.Subject())
	if err != nil {
		return err
	}
	em, err := events.ToNATS(subject, env.Event)
	if err != nil {
		return fmt.Errorf("natsjs: encode %s: %w", env.Event.Type(), err)
	}
	m := &nats.Msg{Subject: subject, Header: nats.Header(em.Header), Data: em.Data}
	m.Header.Set(jetstream.MsgIDHeader, events.MsgID(env.Event.Source(), env.Event.ID())+"."+org)
	tracing.Inject(ctx, m.Header)
	ctx, cancel := b.ctx(ctx)
	defer cancel()
	if _, err := b.js.PublishMsg(ctx, m); err != nil {
		return fmt.Errorf("%w: deliver to %s: %w", routing.ErrUnavailable, org, err)
	}
	return nil
}

// publishCopy publishes one delivery copy with its own acknowledgement,
// without waiting for it.
func (b *Bus) publishCopy(m *nats.Msg) (jetstream.PubAckFuture, error) {
	return b.js.PublishMsgAsync(m)
}

// delivered reports whether DELIVERY holds, on subject, a copy of the
// event with CloudEvents id eventID (reminders of an offer, which repeat
// its id, do not count). Nats-Msg-Id deduplicates a copy published twice
// only within the duplicate window; a message delivered to the router
// again after it (a command or an event whose acknowledgement was lost,
// or that waited longer than AckWait under load) asks this first. It
// reads the subject's messages one by one, at most
// DeliveryMaxPerSubjectDefault of them by default, so it is for those
// redeliveries only. Errors wrap routing.ErrUnavailable.
func (b *Bus) delivered(ctx context.Context, subject, eventID string) (bool, error) {
	ctx, cancel := b.ctx(ctx)
	defer cancel()
	s, err := b.stream(ctx, StreamDelivery)
	if err != nil {
		return false, err
	}
	for seq := uint64(1); ; {
		m, err := s.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("%w: read %s: %w", routing.ErrUnavailable, subject, err)
		}
		if headerFold(m.Header, "ce-id") == eventID && m.Header.Get(HeaderReminder) == "" {
			return true, nil
		}
		seq = m.Sequence + 1
	}
}

// deliverCopyAttempts bounds how often deliverCopyOnce reads a delivery
// subject again because another writer stored a message on it meanwhile.
const deliverCopyAttempts = 5

// deliverCopyOnce stores c, a copy of an event on its delivery subject
// with its REFERRALS sequence in HeaderSequence, unless the subject holds
// a copy of the same event already (reminders, which repeat an offer's
// id, do not count). It reads the subject's messages, then publishes c
// expecting the sequence of the last one read, so that a copy another
// dispatcher stores in between makes the publish fail and the subject is
// read again: a copy is stored once however long apart the two dispatches
// are, where Nats-Msg-Id would store it twice once its duplicate window
// has passed. The dispatcher calls it for an event dispatched again and
// for a copy refused because its subject moved on since the dispatcher
// last saw it.
//
// It returns the DELIVERY sequence of the subject's last message after,
// and whether the dispatcher may publish the copies of later events of
// the referral expecting that sequence without reading the subject: when
// no copy of a later event (a higher HeaderSequence) is on it, a publish
// that finds the subject where it was cannot store one twice. Errors wrap
// routing.ErrUnavailable.
func (b *Bus) deliverCopyOnce(ctx context.Context, c *nats.Msg) (uint64, bool, error) {
	s, err := b.stream(ctx, StreamDelivery)
	if err != nil {
		return 0, false, err
	}
	eventID := headerFold(c.Header, "ce-id")
	own, err := strconv.ParseUint(c.Header.Get(HeaderSequence), 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("natsjs: copy to %s without a sequence: %w", c.Subject, err)
	}
	for range deliverCopyAttempts {
		var last, latest uint64 // the subject's last sequence, the highest HeaderSequence on it
		found := false
		for seq := uint64(1); ; {
			// Each request has the bus timeout, as each of a referral's
			// reads has: the subject may hold many messages.
			rctx, cancel := b.ctx(ctx)
			m, err := s.GetMsg(rctx, seq, jetstream.WithGetMsgSubject(c.Subject))
			cancel()
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				break
			}
			if err != nil {
				return 0, false, fmt.Errorf("%w: read %s: %w", routing.ErrUnavailable, c.Subject, err)
			}
			if m.Header.Get(HeaderReminder) == "" {
				found = found || headerFold(m.Header, "ce-id") == eventID
				v, err := strconv.ParseUint(m.Header.Get(HeaderSequence), 10, 64)
				if err != nil {
					// Not the dispatcher's (or stored before copies had
					// sequences): of no known place in the log, so that
					// the subject's sequence is never trusted.
					v = math.MaxUint64
				}
				latest = max(latest, v)
			}
			last, seq = m.Sequence, m.Sequence+1
		}
		if found {
			return last, latest <= own, nil
		}
		out := &nats.Msg{Subject: c.Subject, Header: make(nats.Header, len(c.Header)+1), Data: c.Data}
		for k, vs := range c.Header {
			out.Header[k] = vs
		}
		out.Header.Set(hdrExpectedSubjSeq, strconv.FormatUint(last, 10))
		ack, err := b.publishCopyWait(ctx, out)
		if err == nil {
			return ack.Sequence, latest < own && !ack.Duplicate, nil
		}
		if !isWrongLastSeq(err) {
			return 0, false, fmt.Errorf("%w: deliver to %s: %w", routing.ErrUnavailable, c.Subject, err)
		}
	}
	return 0, false, fmt.Errorf("%w: deliver to %s: %d concurrent writes", routing.ErrUnavailable, c.Subject, deliverCopyAttempts)
}

// isWrongLastSeq reports whether err is JetStream refusing a publish
// because its subject's last sequence is not the one expected.
func isWrongLastSeq(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == errCodeWrongLastSeq || apiErr.ErrorCode == errCodeWrongLastSeqConstant)
}

// publishCopyWait publishes one delivery copy (see publishCopy) and
// waits for its acknowledgement, for at most the bus timeout.
func (b *Bus) publishCopyWait(ctx context.Context, m *nats.Msg) (*jetstream.PubAck, error) {
	f, err := b.publishCopy(m)
	if err != nil {
		return nil, err
	}
	ctx, cancel := b.ctx(ctx)
	defer cancel()
	select {
	case ack := <-f.Ok():
		return ack, nil
	case err := <-f.Err():
		return nil, err
	case <-ctx.Done():
		return nil, fmt.Errorf("publish to %s: no acknowledgement in %s", m.Subject, b.cfg.Timeout)
	}
}

// deliverySubject returns out.<org>.<referral id>, or out.<org>.rejected
// when referralID is not a referral id (a rejection of a command that
// names none).
func deliverySubject(org, referralID string) (string, error) {
	if events.IsReferralID(referralID) {
		return events.DeliverySubject(org, referralID)
	}
	if !events.IsOrgID(org) {
		return "", fmt.Errorf("natsjs: %q is not an organisation id: %w", org, events.ErrInvalidSubject)
	}
	return "out." + org + ".rejected", nil
}

// deadLetter copies m (headers and data kept) to DLQ on
// dlq.<reason>[.<referral id>], with the reason, the first problem and the
// origin in headers. The referral id in the subject lets erasure purge
// the copies of a referral's commands. Nats-Msg-Id is derived from the
// origin so that setting a message aside twice stores it once.
func (b *Bus) deadLetter(ctx context.Context, reason, referralID string, m *nats.Msg, origin string, problem string) error {
	subject, err := events.DLQSubject(reason)
	if err != nil {
		return err
	}
	if events.IsReferralID(referralID) {
		subject += "." + referralID
	}
	out := &nats.Msg{Subject: subject, Header: make(nats.Header, len(m.Header)+4), Data: m.Data}
	for k, vs := range m.Header {
		lk := strings.ToLower(k)
		// Extension headers outside the contract are dropped: they are
		// where a victim's identity would ride along (Decode refused the
		// message for them).
		if strings.HasPrefix(lk, "nats-") || (strings.HasPrefix(lk, "ce-") && !events.IsAttribute(lk[len("ce-"):])) {
			continue
		}
		out.Header[k] = vs
	}
	out.Header.Set(HeaderReason, reason)
	out.Header.Set(HeaderError, clip.Line(problem, 1000))
	out.Header.Set(HeaderOrigin, origin)
	out.Header.Set(jetstream.MsgIDHeader, "dlq "+origin)
	ctx, cancel := b.ctx(ctx)
	defer cancel()
	if _, err := b.js.PublishMsg(ctx, out); err != nil {
		return fmt.Errorf("%w: dead-letter: %w", routing.ErrUnavailable, err)
	}
	return nil
}

// purge removes every message of subject (a filter) from stream, keeping
// the last keep.
func (b *Bus) purge(ctx context.Context, stream, subject string, keep uint64) error {
	ctx, cancel := b.ctx(ctx)
	defer cancel()
	s, err := b.stream(ctx, stream)
	if err != nil {
		return err
	}
	opts := []jetstream.StreamPurgeOpt{jetstream.WithPurgeSubject(subject)}
	if keep > 0 {
		opts = append(opts, jetstream.WithPurgeKeep(keep))
	}
	if err := s.Purge(ctx, opts...); err != nil {
		return fmt.Errorf("%w: purge %s %s: %w", routing.ErrUnavailable, stream, subject, err)
	}
	return nil
}

// Erase purges every copy of a referral except its last REFERRALS event
// (the referral.erased record): the rest of referral.<cc>.<id>, every
// delivery out.*.*.<id>, its timers timer.<id>.> and timer.fire.<id>.>,
// and the dead-lettered copies of its commands dlq.*.<id>. It is
// idempotent. Errors wrap routing.ErrUnavailable.
func (b *Bus) Erase(ctx context.Context, referralID string) error {
	if !events.IsReferralID(referralID) {
		return fmt.Errorf("natsjs: erase: %q is not a referral id", referralID)
	}
	return b.purgeReferral(ctx, referralID, 1)
}

// purgeReferral purges every copy of a referral, keeping the last keep
// events of its REFERRALS log, which is purged last.
func (b *Bus) purgeReferral(ctx context.Context, referralID string, keep uint64) error {
	steps := []struct {
		stream, subject string
		keep            uint64
	}{
		{StreamDelivery, "out.*.*." + referralID, 0},
		{StreamTimers, "timer." + referralID + ".>", 0},
		{StreamTimers, "timer.fire." + referralID + ".>", 0},
		{StreamDLQ, "dlq.*." + referralID, 0},
		{StreamReferrals, referralFilter(referralID), keep},
	}
	for _, s := range steps {
		if err := b.purge(ctx, s.stream, s.subject, s.keep); err != nil {
			return err
		}
	}
	return nil
}

// subjectCacheSize bounds how many referral subjects a bus remembers.
const subjectCacheSize = 65536

// subjectCache remembers the REFERRALS subject of referral ids. A
// referral's subject never changes, so entries never go stale; when full,
// an arbitrary entry is evicted.
//
// A referral id is a UUID and its subject referral.<cc>.<id>, so an entry
// keeps the id's 16 bytes and the subject's prefix (referral.<cc>.), one
// string per country shared by all its entries: about 40 bytes an entry
// instead of 150 for the id and the subject as strings (11.7 MB of live
// heap, full, in bench e2e --open 100000). An id or subject of another
// form is kept as given, in copies: a string read from a message's
// headers shares their memory and kept as it is would keep every header
// of the message live.
type subjectCache struct {
	mu       sync.Mutex
	max      int
	byID     map[[16]byte]string // id -> the subject's prefix
	other    map[string]string   // ids and subjects of another form
	prefixes map[string]string   // the prefixes kept, each once
}

func newSubjectCache(size int) *subjectCache {
	return &subjectCache{max: size, byID: map[[16]byte]string{}, other: map[string]string{}, prefixes: map[string]string{}}
}

// uuidKey returns the 16 bytes of a referral id in canonical form.
func uuidKey(id string) ([16]byte, bool) {
	var k [16]byte
	if !events.IsReferralID(id) {
		return k, false
	}
	n := 0 // hex digits read
	for i := range len(id) {
		if id[i] == '-' {
			continue
		}
		k[n/2] |= unhex(id[i]) << (4 * (1 - n%2))
		n++
	}
	return k, true
}

func unhex(c byte) byte {
	if c <= '9' {
		return c - '0'
	}
	return c - 'a' + 10
}

func (c *subjectCache) get(id string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if k, ok := uuidKey(id); ok {
		p, ok := c.byID[k]
		if !ok {
			return "", false
		}
		return p + id, true
	}
	s, ok := c.other[id]
	return s, ok
}

func (c *subjectCache) put(id, subject string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if k, ok := uuidKey(id); ok {
		if prefix, ok := strings.CutSuffix(subject, id); ok && len(prefix) <= 32 {
			p, ok := c.prefixes[prefix]
			if !ok {
				if len(c.prefixes) >= 1024 { // not a country's: never so many
					clear(c.prefixes)
				}
				p = strings.Clone(prefix)
				c.prefixes[p] = p
			}
			if _, ok := c.byID[k]; !ok && c.len() >= c.max {
				c.evict()
			}
			c.byID[k] = p
			return
		}
	}
	if _, ok := c.other[id]; !ok && c.len() >= c.max {
		c.evict()
	}
	c.other[strings.Clone(id)] = strings.Clone(subject)
}

func (c *subjectCache) len() int { return len(c.byID) + len(c.other) }

// evict drops an arbitrary entry; map order is random enough.
func (c *subjectCache) evict() {
	for k := range c.other {
		delete(c.other, k)
		return
	}
	for k := range c.byID {
		delete(c.byID, k)
		return
	}
}
