package natsjs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/referral"
)

// Verifying the store: a damaged block file makes JetStream drop what it
// cannot read and start anyway, so a node must look for itself before it
// routes on a half-read log. [VerifyStore] checks what JetStream reports
// lost, whether a consumer had read beyond what a stream still holds,
// that every referral's log folds, and that DELIVERY and TIMERS name no
// referral REFERRALS does not hold.

// VerifyTimeoutDefault bounds one [VerifyStore] when ctx has no deadline.
const VerifyTimeoutDefault = 5 * time.Minute

// Damage is one thing wrong in the store: where, what, and how to recover.
type Damage struct {
	// Stream is the stream the damage is in.
	Stream string `json:"stream"`
	// Problem says what is wrong.
	Problem string `json:"problem"`
	// Recover says how to recover.
	Recover string `json:"recover"`
}

func (d Damage) String() string {
	return fmt.Sprintf("%s: %s; %s", d.Stream, d.Problem, d.Recover)
}

// StoreReport is what [VerifyStore] found.
type StoreReport struct {
	// Messages is the number of messages of each stream checked.
	Messages map[string]uint64 `json:"messages"`
	// Referrals is the number of referral logs folded.
	Referrals int `json:"referrals"`
	// Damage lists what is wrong, empty for a whole store.
	Damage []Damage `json:"damage"`
}

// ErrStoreDamaged is wrapped by [StoreReport.Err] for a damaged store.
var ErrStoreDamaged = errors.New("the store is damaged")

// Err returns nil for a whole store, or an error wrapping
// [ErrStoreDamaged] that lists the damage and how to recover.
func (r StoreReport) Err() error {
	if len(r.Damage) == 0 {
		return nil
	}
	lines := make([]string, len(r.Damage))
	for i, d := range r.Damage {
		lines[i] = d.String()
	}
	return fmt.Errorf("%w: %s", ErrStoreDamaged, strings.Join(lines, "; "))
}

// How to recover, by what was lost.
const (
	recoverRestore = "stop the node and restore the data directory from a backup: referral events cannot be rebuilt"
	recoverRebuild = "stop the node and restore the data directory from a backup, or purge the stream and let the routing service and organisations send again what it held"
)

// maxListed bounds the referral ids one Damage names.
const maxListed = 5

// VerifyStore checks the streams of INVICTUS through js and returns what
// it found. The error is for a store that could not be read (JetStream
// unavailable, a stream missing); damage is in the report.
func VerifyStore(ctx context.Context, js jetstream.JetStream) (StoreReport, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, VerifyTimeoutDefault)
		defer cancel()
	}
	r := StoreReport{Messages: map[string]uint64{}, Damage: []Damage{}}
	infos := map[string]*jetstream.StreamInfo{}
	for _, name := range StoreStreams {
		s, err := js.Stream(ctx, name)
		if errors.Is(err, jetstream.ErrStreamNotFound) && strings.HasPrefix(name, "KV_") {
			continue // the HTTP buckets are made by the API
		}
		if err != nil {
			return r, fmt.Errorf("natsjs: verify %s: %w", name, err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			return r, fmt.Errorf("natsjs: verify %s: %w", name, err)
		}
		infos[name] = info
		r.Messages[name] = info.State.Msgs
		how := recoverRebuild
		if name == StreamReferrals {
			how = recoverRestore
		}
		if lost := info.State.Lost; lost != nil && len(lost.Msgs) > 0 {
			r.Damage = append(r.Damage, Damage{name, fmt.Sprintf("JetStream lost %d messages (%d bytes) it could not read", len(lost.Msgs), lost.Bytes), how})
		}
		var ahead *jetstream.ConsumerInfo
		cl := s.ListConsumers(ctx)
		for ci := range cl.Info() {
			if ahead == nil || ci.Delivered.Stream > ahead.Delivered.Stream {
				ahead = ci
			}
		}
		if err := cl.Err(); err != nil {
			return r, fmt.Errorf("natsjs: verify consumers of %s: %w", name, err)
		}
		if ahead != nil && ahead.Delivered.Stream > info.State.LastSeq {
			// On a running node the stream may have grown since it was
			// read: compare with its last sequence read after the
			// consumers.
			now, err := s.Info(ctx)
			if err != nil {
				return r, fmt.Errorf("natsjs: verify %s: %w", name, err)
			}
			if last := now.State.LastSeq; ahead.Delivered.Stream > last {
				r.Damage = append(r.Damage, Damage{name, fmt.Sprintf(
					"its last message is %d but consumer %s had read up to %d: the messages after %d are lost",
					last, ahead.Name, ahead.Delivered.Stream, last), how})
			}
		}
	}

	// DELIVERY and TIMERS are written after REFERRALS, so they are read
	// first: on a running node, every referral they name then already
	// has events when REFERRALS is read.
	type named struct {
		stream   string
		subjects []string
		referral func(subject string) string
	}
	var others []named
	for _, c := range []named{
		{StreamDelivery, []string{SubjectsDelivery}, lastToken},
		{StreamTimers, []string{SubjectsTimers}, timerReferral},
	} {
		subjects, err := subjectsOf(ctx, js, c.stream, c.subjects[0])
		if err != nil {
			return r, err
		}
		c.subjects = subjects
		others = append(others, c)
	}
	known, err := foldReferrals(ctx, js, &r)
	if err != nil {
		return r, err
	}
	// Without a retention age, every referral named by a delivery or a
	// timer still has events in REFERRALS (erasure keeps the last).
	if infos[StreamReferrals].Config.MaxAge == 0 {
		for _, c := range others {
			var missing []string
			for _, subj := range c.subjects {
				id := c.referral(subj)
				if events.IsReferralID(id) && !known[id] && !slices.Contains(missing, id) {
					missing = append(missing, id)
				}
			}
			if len(missing) > 0 {
				slices.Sort(missing)
				r.Damage = append(r.Damage, Damage{StreamReferrals, fmt.Sprintf(
					"%d referrals named in %s have no events (%s)", len(missing), c.stream, listed(missing)), recoverRestore})
			}
		}
	}
	return r, nil
}

// foldReferrals reads REFERRALS in order, folds each referral's log and
// returns the referral ids seen; logs that do not fold are damage.
func foldReferrals(ctx context.Context, js jetstream.JetStream, r *StoreReport) (map[string]bool, error) {
	known := map[string]bool{}
	pending := r.Messages[StreamReferrals]
	if pending == 0 {
		return known, nil
	}
	oc, err := js.OrderedConsumer(ctx, StreamReferrals, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{SubjectsReferrals}, InactiveThreshold: readerInactive,
	})
	if err != nil {
		return nil, fmt.Errorf("natsjs: verify %s: %w", StreamReferrals, err)
	}
	info, err := oc.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("natsjs: verify %s: %w", StreamReferrals, err)
	}
	pending = info.NumPending
	states := map[string]referral.State{}
	broken := map[string]bool{}
	var bad []string
	for read := uint64(0); read < pending; {
		batch, err := oc.Fetch(int(min(pending-read, 1000)), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return nil, fmt.Errorf("natsjs: verify %s: %w", StreamReferrals, err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			id := lastToken(m.Subject())
			known[id] = true
			if broken[id] {
				continue
			}
			env, err := events.Decode(events.Message{Subject: m.Subject(), Header: m.Headers(), Data: m.Data()})
			if err == nil {
				var next referral.State
				next, err = referral.Apply(states[id], env)
				if errors.Is(err, referral.ErrDuplicate) {
					err = nil
					next = states[id]
				}
				states[id] = next
			}
			if err != nil {
				broken[id] = true
				delete(states, id)
				bad = append(bad, id)
			}
		}
		if err := batch.Error(); err != nil {
			return nil, fmt.Errorf("natsjs: verify %s: %w", StreamReferrals, err)
		}
		if got == 0 {
			break // purged while read
		}
		read += uint64(got)
	}
	r.Referrals = len(known)
	if len(bad) > 0 {
		slices.Sort(bad)
		r.Damage = append(r.Damage, Damage{StreamReferrals, fmt.Sprintf("%d referral logs do not fold (%s)", len(bad), listed(bad)), recoverRestore})
	}
	return known, nil
}

// subjectsOf returns the subjects stream holds messages on under filter.
func subjectsOf(ctx context.Context, js jetstream.JetStream, stream, filter string) ([]string, error) {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, fmt.Errorf("natsjs: verify %s: %w", stream, err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		return nil, fmt.Errorf("natsjs: verify subjects of %s: %w", stream, err)
	}
	out := make([]string, 0, len(info.State.Subjects))
	for subj := range info.State.Subjects {
		out = append(out, subj)
	}
	return out, nil
}

// timerReferral returns the referral of timer.<id>.<placement> or
// timer.fire.<id>.<placement>.
func timerReferral(subject string) string {
	t := strings.Split(subject, ".")
	if len(t) == 4 && t[1] == "fire" {
		return t[2]
	}
	if len(t) == 3 {
		return t[1]
	}
	return ""
}

func lastToken(subject string) string {
	return subject[strings.LastIndexByte(subject, '.')+1:]
}

// listed names the first few of ids.
func listed(ids []string) string {
	if len(ids) <= maxListed {
		return strings.Join(ids, ", ")
	}
	return strings.Join(ids[:maxListed], ", ") + fmt.Sprintf(" and %d more", len(ids)-maxListed)
}
