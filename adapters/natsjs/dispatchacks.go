package natsjs

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The dispatcher's consumer acknowledges with AckAll: one acknowledgement
// of stream sequence S stands for every event at or before S. An event
// was acknowledged on its own before, one message to the server per
// event appended (about five per referral); now one acknowledgement
// covers the events a router dispatched in a few milliseconds.
//
// AckAll is only safe if S is acknowledged once every pending event at or
// before it is dispatched, whoever holds it. dispatchAcks keeps that
// rule:
//
//   - It holds each event delivered to this router, by stream sequence,
//     until it is dispatched, and acknowledges the highest S such that
//     every sequence from the consumer's acknowledgement floor to S was
//     dispatched here, or is not in the stream (erased, purged).
//   - Events delivered to another router (before this one was pinned, or
//     while it was not) are at or before the consumer's last delivered
//     sequence, read when this router sees a gap in the consumer's
//     delivery sequence (or its first delivery): the barrier. A sequence
//     up to the barrier that this router was not handed may be another
//     router's to dispatch, so it reads it from the stream and
//     dispatches it itself, as an event dispatched again (its copies are
//     stored once however many routers dispatch it; see dispatchState).
//     The other router may dispatch it too, to the same effect. A router
//     that died holding events thus holds no one up for AckWait.
//   - A sequence after the barrier that this router was not handed and
//     that comes before one it was handed was skipped by the consumer:
//     it is not in the stream.
//
// An event whose dispatch failed stays unacknowledged (it is nak'ed, and
// dispatched again later): no acknowledgement passes it.

// Bounds of the dispatcher's acknowledgements.
const (
	// dispatchAckHold is how long a dispatched event waits for others to
	// share its acknowledgement.
	dispatchAckHold = 5 * time.Millisecond
	// dispatchAckBatch is how many dispatched events are acknowledged at
	// once without waiting for dispatchAckHold.
	dispatchAckBatch = 256
	// dispatchResolveBatch bounds the sequences read from the stream at
	// once when another router may hold them.
	dispatchResolveBatch = 64
	// dispatchResolveEvery is how often the sequences another router may
	// hold are looked at again while they stay undispatched.
	dispatchResolveEvery = 250 * time.Millisecond
)

// dispatchAcks acknowledges the events a router dispatched, many at once
// (see above).
type dispatchAcks struct {
	ctx    context.Context
	nc     *nats.Conn
	cons   jetstream.Consumer
	stream func(context.Context) (jetstream.Stream, error)
	// submit hands an event read from the stream to the dispatcher's
	// lanes.
	submit func(jetstream.Msg)
	log    *slog.Logger
	// timeout bounds each request to JetStream.
	timeout time.Duration

	// flushing serialises flush.
	flushing sync.Mutex

	mu      sync.Mutex
	entries map[uint64]*ackEntry
	// floor: every sequence at or before it is acknowledged.
	floor uint64
	// barrier: sequences at or before it may have been delivered to
	// another router.
	barrier uint64
	// synced: floor and barrier have been read since the last gap in the
	// delivery sequence.
	synced bool
	// maxSeq is the highest stream sequence handed to this router.
	maxSeq uint64
	// lastDseq is the highest delivery sequence handed to this router,
	// ackedDseq the one of its last acknowledgement.
	lastDseq, ackedDseq uint64
	// reply is the acknowledgement subject of the last event handed over:
	// the template of every acknowledgement.
	reply      string
	dispatched int // dispatched since the last acknowledgement
	timer      *time.Timer
	resolved   time.Time
	// handed: an event was handed over since the last resolve. Only the
	// router the consumer hands events to (the pinned one) reads what
	// another may hold: one standing by, or one that lost the pin, would
	// only do the pinned router's work twice.
	handed  bool
	stopped bool
}

// ackEntry is one stream sequence after the floor that the router knows
// of.
type ackEntry struct {
	dseq uint64 // delivery sequence, 0 if read from the stream
	// held: delivered to this router (not only read from the stream).
	held bool
	// present: in the stream (absent sequences are passed over, never
	// acknowledged themselves).
	present    bool
	dispatched bool
}

func newDispatchAcks(ctx context.Context, r *Router, cons jetstream.Consumer, submit func(jetstream.Msg)) *dispatchAcks {
	return &dispatchAcks{
		ctx: ctx, nc: r.bus.nc, cons: cons, submit: submit, log: r.cfg.Logger, timeout: r.bus.cfg.Timeout,
		stream:  func(ctx context.Context) (jetstream.Stream, error) { return r.bus.stream(ctx, StreamReferrals) },
		entries: map[uint64]*ackEntry{},
	}
}

// received records the event m, handed to this router by the consumer.
func (a *dispatchAcks) received(m jetstream.Msg) {
	md, err := m.Metadata()
	if err != nil {
		return // the dispatch fails on it too, and nothing passes it
	}
	sseq, dseq := md.Sequence.Stream, md.Sequence.Consumer
	a.mu.Lock()
	defer a.mu.Unlock()
	if dseq != a.lastDseq+1 {
		// The first delivery, or deliveries to another router came in
		// between: read the floor and the barrier again before any
		// acknowledgement.
		a.synced = false
	}
	a.lastDseq = max(a.lastDseq, dseq)
	a.reply = m.Reply()
	a.handed = true
	if sseq <= a.floor {
		// Delivered again after this router acknowledged it: the
		// acknowledgement was lost, or JetStream ignored it (another
		// router's had a later delivery sequence). The floor is lowered
		// so that the next acknowledgement covers it again; what lies
		// between was dispatched (or is read again, up to the barrier),
		// and the floor is read again.
		a.floor, a.synced = sseq-1, false
	}
	e := a.entries[sseq]
	if e == nil {
		e = &ackEntry{}
		a.entries[sseq] = e
	}
	e.dseq, e.held, e.present, e.dispatched = dseq, true, true, false
	a.maxSeq = max(a.maxSeq, sseq)
}

// done records the outcome of the dispatch of m: dispatched, or not
// (then it is dispatched again later, and nothing is acknowledged past
// it meanwhile).
func (a *dispatchAcks) done(m jetstream.Msg, ok bool) {
	md, err := m.Metadata()
	if err != nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	e := a.entries[md.Sequence.Stream]
	switch {
	case e == nil:
		return
	case ok:
		e.dispatched = true
	case !e.held && !e.dispatched:
		delete(a.entries, md.Sequence.Stream) // read from the stream: read again later
		return
	default:
		return
	}
	a.dispatched++
	if a.stopped {
		return
	}
	switch {
	case a.timer == nil:
		a.timer = time.AfterFunc(dispatchAckHold, a.flush)
	case a.dispatched >= dispatchAckBatch:
		a.timer.Reset(0)
	case a.dispatched == 1:
		a.timer.Reset(dispatchAckHold)
	}
}

// later has flush run again after d.
func (a *dispatchAcks) later(d time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stopped {
		return
	}
	if a.timer == nil {
		a.timer = time.AfterFunc(d, a.flush)
	} else {
		a.timer.Reset(d)
	}
}

// stop acknowledges what was dispatched and stops acknowledging.
func (a *dispatchAcks) stop() {
	a.flush()
	a.mu.Lock()
	a.stopped = true
	if a.timer != nil {
		a.timer.Stop()
	}
	a.mu.Unlock()
}

// flush acknowledges every event dispatched up to the first that is not
// (see dispatchAcks), reading the floor and the barrier first if needed,
// and reads from the stream the events another router may hold.
func (a *dispatchAcks) flush() {
	a.flushing.Lock()
	defer a.flushing.Unlock()
	a.mu.Lock()
	synced := a.synced
	a.synced = true // a gap from now on unsets it again
	a.mu.Unlock()
	if !synced {
		if err := a.sync(); err != nil {
			a.mu.Lock()
			a.synced = false
			a.mu.Unlock()
			a.log.DebugContext(a.ctx, "natsjs: dispatcher acknowledgement floor not read", slog.Any("error", err))
			a.later(dispatchResolveEvery)
			return
		}
	}
	a.mu.Lock()
	ack, blocked := a.walk()
	var reply string
	var dseq uint64
	if ack > 0 {
		reply, dseq = a.ackReply(ack)
	}
	a.dispatched = 0
	a.mu.Unlock()
	if reply != "" {
		if err := a.nc.Publish(reply, nil); err != nil {
			a.log.DebugContext(a.ctx, "natsjs: ack", slog.Any("error", err))
		} else {
			a.mu.Lock()
			a.raise(ack, dseq)
			a.mu.Unlock()
		}
	}
	if blocked > 0 {
		a.mu.Lock()
		due := time.Since(a.resolved) >= dispatchResolveEvery
		a.mu.Unlock()
		if due {
			a.resolve()
		}
		a.later(dispatchResolveEvery)
	}
}

// sync reads the consumer's acknowledgement floor and its last delivered
// sequence, the barrier.
func (a *dispatchAcks) sync() error {
	ctx, cancel := context.WithTimeout(a.ctx, a.timeout)
	defer cancel()
	info, err := a.cons.Info(ctx)
	if err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.raise(info.AckFloor.Stream, info.AckFloor.Consumer)
	a.barrier = max(a.barrier, info.Delivered.Stream)
	a.resolved = time.Time{} // look at what another router may hold at once
	return nil
}

// raise moves the floor up to an acknowledgement of stream sequence
// sseq (delivery sequence dseq), this router's or another's.
func (a *dispatchAcks) raise(sseq, dseq uint64) {
	a.ackedDseq = max(a.ackedDseq, dseq)
	if sseq <= a.floor {
		return
	}
	a.floor = sseq
	for s := range a.entries {
		if s <= sseq {
			delete(a.entries, s)
		}
	}
}

// walk returns the highest sequence that can be acknowledged (0 if none
// past the floor) and the first one up to the barrier that is neither
// handed to this router nor read from the stream (0 if none).
func (a *dispatchAcks) walk() (ack, blocked uint64) {
	for s := a.floor + 1; ; s++ {
		e := a.entries[s]
		switch {
		case e != nil && !e.dispatched:
			return ack, 0
		case e != nil:
			if e.present {
				ack = s
			}
		case s <= a.barrier:
			return ack, s
		case s < a.maxSeq:
			// Skipped by the consumer: not in the stream.
		default:
			return ack, 0
		}
	}
}

// ackReply returns the subject that acknowledges every event up to
// sseq, and its delivery sequence: the last acknowledgement subject
// handed over, with sseq and a delivery sequence past the last
// acknowledgement's (JetStream ignores an AckAll whose delivery sequence
// is not). That is the delivery sequence of the last event acknowledged,
// as any client acknowledging all would send, or, when that is not past
// the last (the events were read from the stream, or delivered again
// before later ones), the next one: a floor set too high would have
// JetStream ignore later acknowledgements and naks. It returns "" when
// no delivery sequence is free (more acknowledgements than deliveries
// since the floor was read): the next delivery frees one, or the events
// are delivered again after AckWait.
func (a *dispatchAcks) ackReply(sseq uint64) (string, uint64) {
	dseq := a.ackedDseq + 1
	for s, e := range a.entries {
		if s <= sseq {
			dseq = max(dseq, e.dseq)
		}
	}
	if dseq > a.lastDseq {
		return "", 0
	}
	reply := withAckSequences(a.reply, sseq, dseq)
	if reply == "" {
		return "", 0
	}
	return reply, dseq
}

// resolve reads the floor again (another router may have acknowledged
// what it held), passes over the sequences up to the barrier that are not
// in the stream, and, if the consumer handed this router events since
// the last resolve (it is the pinned router), reads from the stream and
// dispatches here the events up to the barrier that it was not handed.
func (a *dispatchAcks) resolve() {
	ctx, cancel := context.WithTimeout(a.ctx, a.timeout)
	defer cancel()
	info, err := a.cons.Info(ctx)
	if err != nil {
		a.log.DebugContext(a.ctx, "natsjs: dispatcher acknowledgement floor not read", slog.Any("error", err))
		return
	}
	stream, err := a.stream(ctx)
	if err != nil {
		return
	}
	a.mu.Lock()
	take := a.handed
	a.resolved, a.handed = time.Now(), false
	a.raise(info.AckFloor.Stream, info.AckFloor.Consumer)
	var want []uint64
	for s := a.floor + 1; s <= a.barrier && len(want) < dispatchResolveBatch; s++ {
		if a.entries[s] == nil {
			want = append(want, s)
		}
	}
	a.mu.Unlock()
	for _, s := range want {
		raw, err := stream.GetMsg(ctx, s)
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound):
			a.mu.Lock()
			if s > a.floor && a.entries[s] == nil {
				a.entries[s] = &ackEntry{dispatched: true}
			}
			a.mu.Unlock()
			continue
		case err != nil:
			a.log.DebugContext(a.ctx, "natsjs: dispatcher: event not read", slog.Uint64("sequence", s), slog.Any("error", err))
			return
		}
		if !take {
			return // another router's to dispatch, or this one's once it is handed over again
		}
		a.mu.Lock()
		fresh := s > a.floor && a.entries[s] == nil
		if fresh {
			a.entries[s] = &ackEntry{present: true}
		}
		a.mu.Unlock()
		if fresh {
			a.log.DebugContext(a.ctx, "natsjs: dispatcher takes over an event another router was handed", slog.Uint64("sequence", s))
			a.submit(&readMsg{raw: raw})
		}
	}
}

// withAckSequences returns the acknowledgement subject reply with stream
// sequence sseq and delivery sequence dseq: $JS.ACK.<stream>.<consumer>.
// <delivered>.<sseq>.<dseq>.<time>.<pending>, with the domain and
// account hash after ACK in the newer form. It returns "" for a subject
// of another form.
func withAckSequences(reply string, sseq, dseq uint64) string {
	t := strings.Split(reply, ".")
	offset := 0
	switch {
	case len(t) < 9 || t[0] != "$JS" || t[1] != "ACK":
		return ""
	case len(t) == 9:
		offset = 2
	case len(t) >= 11:
		offset = 4
	default:
		return ""
	}
	t[offset+3] = strconv.FormatUint(sseq, 10)
	t[offset+4] = strconv.FormatUint(dseq, 10)
	return strings.Join(t, ".")
}

// readMsg is an event read from REFERRALS rather than handed over by the
// consumer, dispatched as an event delivered again. It is acknowledged
// with the others (see dispatchAcks); its own acknowledgements do
// nothing.
type readMsg struct {
	raw *jetstream.RawStreamMsg
}

var _ jetstream.Msg = (*readMsg)(nil)

func (m *readMsg) Metadata() (*jetstream.MsgMetadata, error) {
	return &jetstream.MsgMetadata{
		Sequence:     jetstream.SequencePair{Stream: m.raw.Sequence},
		NumDelivered: 2, // another router may have dispatched it
		Stream:       StreamReferrals,
		Timestamp:    m.raw.Time,
	}, nil
}
func (m *readMsg) Data() []byte                     { return m.raw.Data }
func (m *readMsg) Headers() nats.Header             { return m.raw.Header }
func (m *readMsg) Subject() string                  { return m.raw.Subject }
func (m *readMsg) Reply() string                    { return "" }
func (m *readMsg) Ack() error                       { return nil }
func (m *readMsg) DoubleAck(context.Context) error  { return nil }
func (m *readMsg) Nak() error                       { return nil }
func (m *readMsg) NakWithDelay(time.Duration) error { return nil }
func (m *readMsg) InProgress() error                { return nil }
func (m *readMsg) Term() error                      { return nil }
func (m *readMsg) TermWithReason(string) error      { return nil }
