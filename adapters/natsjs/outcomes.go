package natsjs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/invictus-network/invictus/events"
)

// CommandOutcomes waits for the routing service's decisions
// (httpapi.Outcomes).
//
// Every waiting request shares one watcher: while any request waits, two
// subscriptions (on referral.> and out.>) see the events as they are
// stored, and hand each decision to the requests waiting for it, found by
// command id in a map. A decision stored before the request started
// watching is found with a few direct gets by subject. A request thus
// costs the server no consumer and no subscription: JetStream bounds a
// stream's consumers, and creating and deleting two consumers per request
// held about 28 requests/s on a 2-core machine.
type CommandOutcomes struct {
	js      jetstream.JetStream
	nc      *nats.Conn
	replies replyMux

	mu      sync.Mutex
	subs    []*nats.Subscription // while anyone waits
	waiting int
	waiters map[string]map[*outcomeWaiter]struct{} // by command id
}

// outcomeWaiter is one request waiting for the decision on a command.
type outcomeWaiter struct {
	org string       // the organisation that sent the command
	ch  chan outcome // buffered: the first decision
}

// outcome is a decision on a command.
type outcome struct {
	accepted bool
	rej      *events.CommandRejected
}

// outcomeBatch is how many messages one direct get of a look-up asks for.
const outcomeBatch = 64

// NewCommandOutcomes returns a waiter reading with js.
func NewCommandOutcomes(js jetstream.JetStream) *CommandOutcomes {
	return &CommandOutcomes{js: js, nc: js.Conn(), waiters: map[string]map[*outcomeWaiter]struct{}{}}
}

// Wait waits, until ctx ends, for the referral's log to hold an event
// whose id (a recorded command) or correlationid (an erasure's
// referral.erased) is commandID, or for org's deliveries of the referral
// to hold a command.rejected of commandID; what is stored already counts,
// so Wait may be called before or after the command is submitted. A
// command naming no referral is rejected on out.<org>.rejected, which is
// read from a little before the call.
func (o *CommandOutcomes) Wait(ctx context.Context, org, referralID, commandID string) (bool, *events.CommandRejected, error) {
	if !events.IsOrgID(org) {
		return false, nil, fmt.Errorf("natsjs: %q is not an organisation id", org)
	}
	w := &outcomeWaiter{org: org, ch: make(chan outcome, 1)}
	if err := o.register(commandID, w); err != nil {
		return false, nil, fmt.Errorf("natsjs: wait for command %s: %w", commandID, err)
	}
	defer o.unregister(commandID, w)
	// The watcher sees what is stored from now on; look up what was
	// stored before.
	r, err := o.lookup(ctx, org, referralID, commandID)
	if err != nil {
		return false, nil, err
	}
	if r != nil {
		return r.accepted, r.rej, nil
	}
	select {
	case d := <-w.ch:
		return d.accepted, d.rej, nil
	case <-ctx.Done():
		return false, nil, fmt.Errorf("natsjs: wait for command %s: %w", commandID, ctx.Err())
	}
}

// register adds w to the waiters of commandID, subscribing first when
// nobody waited.
func (o *CommandOutcomes) register(commandID string, w *outcomeWaiter) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.subs == nil {
		for _, subject := range []string{SubjectsReferrals, SubjectsDelivery} {
			sub, err := o.nc.Subscribe(subject, o.seen)
			if err != nil {
				o.unsubscribe()
				return err
			}
			o.subs = append(o.subs, sub)
		}
		// Only once the server has the subscriptions is a look-up after
		// them sure to miss nothing.
		if err := o.nc.Flush(); err != nil {
			o.unsubscribe()
			return err
		}
	}
	ws := o.waiters[commandID]
	if ws == nil {
		ws = map[*outcomeWaiter]struct{}{}
		o.waiters[commandID] = ws
	}
	ws[w] = struct{}{}
	o.waiting++
	return nil
}

// unregister removes w, and the subscriptions when nobody waits any more.
func (o *CommandOutcomes) unregister(commandID string, w *outcomeWaiter) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if ws := o.waiters[commandID]; ws != nil {
		delete(ws, w)
		if len(ws) == 0 {
			delete(o.waiters, commandID)
		}
	}
	if o.waiting--; o.waiting == 0 {
		o.unsubscribe()
	}
}

// unsubscribe drops the subscriptions; o.mu is held.
func (o *CommandOutcomes) unsubscribe() {
	for _, sub := range o.subs {
		_ = sub.Unsubscribe()
	}
	o.subs = nil
}

// decide hands r to the waiters of commandID that match.
func (o *CommandOutcomes) decide(commandID string, match func(*outcomeWaiter) bool, r outcome) {
	if commandID == "" {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for w := range o.waiters[commandID] {
		if match(w) {
			select {
			case w.ch <- r:
			default: // it has its decision already
			}
		}
	}
}

// seen is the watcher: it reads each stored event's headers, and decodes
// only the rejections.
func (o *CommandOutcomes) seen(m *nats.Msg) {
	if strings.HasPrefix(m.Subject, "referral.") {
		id, src := headerFold(m.Header, "ce-id"), headerFold(m.Header, "ce-source")
		// An id is unique per source only: another organisation's event
		// with the same id is not this one.
		o.decide(id, func(w *outcomeWaiter) bool { return events.SourceOf(w.org) == src }, outcome{accepted: true})
		if headerFold(m.Header, "ce-type") == events.TypeReferralErased {
			o.decide(headerFold(m.Header, "ce-"+events.ExtCorrelationID), func(*outcomeWaiter) bool { return true }, outcome{accepted: true})
		}
		return
	}
	if headerFold(m.Header, "ce-type") != events.TypeCommandRejected {
		return
	}
	tokens := strings.SplitN(m.Subject, ".", 4) // out.<cc>.<slug>.<rest>
	if len(tokens) < 4 {
		return
	}
	org := tokens[1] + "." + tokens[2]
	if rej := rejection(m.Subject, m.Header, m.Data); rej != nil {
		o.decide(rej.Command, func(w *outcomeWaiter) bool { return w.org == org }, outcome{rej: rej})
	}
}

// rejection decodes a command.rejected, or returns nil.
func rejection(subject string, h nats.Header, data []byte) *events.CommandRejected {
	env, err := events.Decode(events.Message{Subject: subject, Header: h, Data: data})
	if err != nil {
		return nil // an event that does not decode is the routing service's business
	}
	rej, _ := env.Payload.(*events.CommandRejected)
	return rej
}

// lookup finds a decision on commandID stored already, or returns nil.
func (o *CommandOutcomes) lookup(ctx context.Context, org, referralID, commandID string) (*outcome, error) {
	ctx, cancel := httpCtx(ctx)
	defer cancel()
	var found *outcome
	rejected := func(m *nats.Msg) bool {
		if headerFold(m.Header, "ce-type") != events.TypeCommandRejected {
			return false
		}
		if rej := rejection(m.Header.Get(jetstream.SubjectHeader), m.Header, m.Data); rej != nil && rej.Command == commandID {
			found = &outcome{rej: rej}
			return true
		}
		return false
	}
	if !events.IsReferralID(referralID) {
		since := time.Now().Add(-rejectedLookback)
		err := o.scan(ctx, StreamDelivery, directGetRequest{NextFor: "out." + org + ".rejected", StartTime: &since}, rejected)
		return found, err
	}
	src := events.SourceOf(org)
	err := o.scan(ctx, StreamReferrals, directGetRequest{Seq: 1, NextFor: referralFilter(referralID)}, func(m *nats.Msg) bool {
		own := headerFold(m.Header, "ce-id") == commandID && headerFold(m.Header, "ce-source") == src
		erased := headerFold(m.Header, "ce-type") == events.TypeReferralErased && headerFold(m.Header, "ce-"+events.ExtCorrelationID) == commandID
		if own || erased {
			found = &outcome{accepted: true}
		}
		return found != nil
	})
	if err != nil || found != nil {
		return found, err
	}
	subject, _ := events.DeliverySubject(org, referralID)
	err = o.scan(ctx, StreamDelivery, directGetRequest{Seq: 1, NextFor: subject}, rejected)
	return found, err
}

// scan calls fn for each message of stream that req's direct gets
// return, in batches, until fn returns true or there is no more.
func (o *CommandOutcomes) scan(ctx context.Context, stream string, req directGetRequest, fn func(*nats.Msg) bool) error {
	inbox, replies, done, err := o.replies.open(o.nc, outcomeBatch+2)
	if err != nil {
		return fmt.Errorf("natsjs: look up in %s: %w", stream, err)
	}
	defer done()
	req.Batch = outcomeBatch
	for {
		body, _ := json.Marshal(req)
		if err := o.nc.PublishRequest("$JS.API.DIRECT.GET."+stream, inbox, body); err != nil {
			return fmt.Errorf("natsjs: look up in %s: %w", stream, err)
		}
		var chain batchChain
		for {
			var m *nats.Msg
			select {
			case m = <-replies:
			case <-ctx.Done():
				return fmt.Errorf("natsjs: look up in %s: %w", stream, ctx.Err())
			}
			status := m.Header.Get(hdrStatus)
			if status == "404" {
				return nil // nothing more
			}
			if status == "204" { // end of batch
				if err := chain.check(m); err != nil {
					return fmt.Errorf("natsjs: look up in %s: %w", stream, err)
				}
				if pending, _ := strconv.ParseUint(m.Header.Get(hdrNumPending), 10, 64); pending == 0 {
					return nil
				}
				break
			}
			if status != "" {
				return fmt.Errorf("natsjs: look up in %s: direct get status %s %s", stream, status, m.Header.Get("Description"))
			}
			seq, err := strconv.ParseUint(m.Header.Get(jetstream.SequenceHeader), 10, 64)
			if err != nil {
				return errors.New("natsjs: look up: no sequence in direct get reply")
			}
			if err := chain.check(m); err != nil {
				return fmt.Errorf("natsjs: look up in %s: %w", stream, err)
			}
			chain.last = seq
			if fn(m) {
				return nil
			}
			req.Seq, req.StartTime = seq+1, nil
		}
	}
}
