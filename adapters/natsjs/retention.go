package natsjs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/referral"
)

// RetentionDefault is how long a closed referral's events stay after its
// last event: 180 days. GDPR Art. 5(1)(e) (storage limitation) allows
// keeping them only as long as the referral's purpose needs: after
// closure that is feedback and gap reports (still accepted on a closed
// referral), a complaint or a question from the victim about the
// handover, and the coordinators' half-yearly review. The organisations'
// case files are their own records, outside INVICTUS; the network keeps
// only aggregates without identity afterwards.
const RetentionDefault = 180 * 24 * time.Hour

// LeaseRetention is the lease of the retention sweep in [BucketLeases]:
// one instance sweeps at a time.
const LeaseRetention = "retention"

// SweepConfig configures [Bus.Sweep].
type SweepConfig struct {
	// Age: a referral whose log folds to a closed status and whose last
	// event is older than Age is purged. Must be positive.
	Age time.Duration
	// Folded is the REFERRALS sequence the coordinators' aggregates have
	// durably folded (their persisted checkpoint): a referral with an
	// event after it is kept, so that rebuilding the aggregates from
	// that checkpoint never misses a purged event.
	Folded uint64
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// SweepResult counts what a sweep saw and did.
type SweepResult struct {
	Referrals int // referrals in REFERRALS
	Purged    int // closed referrals purged
	Unfolded  int // closed and old enough, but not yet in the aggregates' checkpoint
}

// Sweep purges the closed referrals older than cfg.Age: every message of
// each from REFERRALS, DELIVERY, TIMERS and DLQ (nothing is kept, unlike
// [Bus.Erase]). It reads the last event of every referral (one ordered
// consumer, last per subject), then folds the log of each candidate
// whose last event was stored before the cutoff and is still its last,
// and purges it only if it is closed. It
// is idempotent, so two instances sweeping at once purge nothing twice
// and lose nothing. Errors wrap routing.ErrUnavailable.
func (b *Bus) Sweep(ctx context.Context, cfg SweepConfig) (SweepResult, error) {
	var res SweepResult
	if cfg.Age <= 0 {
		return res, errors.New("natsjs: sweep: the retention age must be positive")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cutoff := cfg.Now().Add(-cfg.Age)
	type candidate struct {
		id   string
		last uint64
	}
	var candidates []candidate
	err := b.lastPerReferral(ctx, func(id string, seq uint64, at time.Time) {
		res.Referrals++
		if !at.Before(cutoff) {
			return
		}
		if seq > cfg.Folded {
			res.Unfolded++
			return
		}
		candidates = append(candidates, candidate{id, seq})
	})
	if err != nil {
		return res, err
	}
	for _, c := range candidates {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		id := c.id
		h, err := b.Load(ctx, id, 0)
		if err != nil {
			return res, err
		}
		if h.Last != c.last || len(h.Events) == 0 {
			continue // appended to since, or purged by another sweep
		}
		var st referral.State
		for _, env := range h.Events {
			next, err := referral.Apply(st, env)
			if errors.Is(err, referral.ErrDuplicate) {
				continue
			}
			if err != nil {
				return res, fmt.Errorf("natsjs: sweep %s: %w", id, err)
			}
			st = next
		}
		if !st.Status.Closed() {
			continue
		}
		if err := b.purgeReferral(ctx, id, 0); err != nil {
			return res, err
		}
		res.Purged++
	}
	return res, nil
}

// lastPerReferral calls fn with the id, sequence and store time of every
// referral's last REFERRALS event.
func (b *Bus) lastPerReferral(ctx context.Context, fn func(id string, seq uint64, at time.Time)) error {
	cctx, cancel := b.ctx(ctx)
	oc, err := b.js.OrderedConsumer(cctx, StreamReferrals, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{SubjectsReferrals}, DeliverPolicy: jetstream.DeliverLastPerSubjectPolicy,
		HeadersOnly: true, InactiveThreshold: readerInactive,
	})
	if err != nil {
		cancel()
		return fmt.Errorf("natsjs: sweep: %w", err)
	}
	info, err := oc.Info(cctx)
	cancel()
	if err != nil {
		return fmt.Errorf("natsjs: sweep: %w", err)
	}
	for read, pending := uint64(0), info.NumPending; read < pending; {
		batch, err := oc.Fetch(int(min(pending-read, 1000)), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return fmt.Errorf("natsjs: sweep: %w", err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			md, err := m.Metadata()
			if err != nil {
				return fmt.Errorf("natsjs: sweep: %w", err)
			}
			if id := lastToken(m.Subject()); events.IsReferralID(id) {
				fn(id, md.Sequence.Stream, md.Timestamp)
			}
		}
		if err := batch.Error(); err != nil {
			return fmt.Errorf("natsjs: sweep: %w", err)
		}
		if got == 0 {
			break // purged while read
		}
		read += uint64(got)
	}
	return nil
}
