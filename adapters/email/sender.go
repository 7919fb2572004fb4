package email

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"

	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/internal/tracing"
	"github.com/invictus-network/invictus/internal/wire"
)

// Store keys of the adapter's state.
const (
	keySecret     = "secret"
	keyLease      = "lease.sender"
	failurePrefix = "failure."
	sentPrefix    = "sent."
	// headerReminder marks an offer delivered again as a reminder
	// (natsjs.HeaderReminder; matched case-insensitively).
	headerReminder = wire.HeaderReminder
)

// lease is the value of the sender lease.
type lease struct {
	Holder  string    `json:"holder"`
	Expires time.Time `json:"expires"`
}

// Failure is a message given up: refused by the SMTP server (5xx) or
// still failing after Config.Attempts temporary failures. It is recorded
// under failure.<org>.<hash> for the organisation's and the directory's
// administrators.
type Failure struct {
	Org       string `json:"organisation"`
	Kind      string `json:"kind"`
	EventID   string `json:"event_id"`
	EventType string `json:"event_type"`
	Referral  string `json:"referral"`
	// Placement and Referrer are those of an offer or reminder.
	Placement string    `json:"placement,omitempty"`
	Referrer  string    `json:"referrer,omitempty"`
	Code      int       `json:"smtp_code,omitempty"`
	Attempts  uint64    `json:"attempts"`
	Temporary bool      `json:"temporary"`
	At        time.Time `json:"at"`
}

// sender runs, while this instance holds the lease, one worker per
// e-mail organisation.
type sender struct {
	a *Adapter

	mu        sync.Mutex
	heldUntil time.Time // the lease is ours until then (zero: not held)
	rev       uint64
	workers   map[string]context.CancelFunc
	wg        sync.WaitGroup
	// digestSince and digestDue are, per digest organisation, when its
	// first pending item came and when its digest is due (zero: nothing
	// pending; missing: not read yet).
	digestSince map[string]time.Time
	digestDue   map[string]time.Time
	digestFails map[string]int // failed attempts of the pending digest
	// zones are the organisations' time zones (DigestZones) at directory
	// revision zonesRev.
	zones    map[string]*time.Location
	zonesRev uint64
	// flushMu serialises the sending of digests.
	flushMu sync.Mutex
}

// holds reports whether the lease is held with at least a third of its
// lifetime left: a send starts only then, so that it ends before another
// instance could take over.
func (s *sender) holds() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.a.cfg.Now().Add(s.a.cfg.LeaseTTL / 3).Before(s.heldUntil)
}

// run holds the lease and keeps workers for the e-mail organisations
// until ctx ends; then it stops them and releases the lease.
func (s *sender) run(ctx context.Context) error {
	s.workers = map[string]context.CancelFunc{}
	wctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		s.stopAll()
		s.release(context.WithoutCancel(ctx))
	}()
	tick := time.NewTicker(min(s.a.cfg.LeaseTTL/3, s.a.cfg.Resync))
	defer tick.Stop()
	var lastRev uint64
	for {
		held := s.renew(ctx)
		s.a.metrics.leader.Set(b2f(held))
		switch {
		case held:
			if rev := s.a.deps.Directory.Revision(); rev != lastRev || len(s.workers) == 0 {
				s.sync(wctx)
				lastRev = rev
			}
			if err := s.flushDigests(wctx, false); err != nil && ctx.Err() == nil {
				s.a.cfg.Logger.WarnContext(ctx, "email: digests", slog.Any("error", err))
			}
		case len(s.workers) > 0:
			s.a.cfg.Logger.WarnContext(ctx, "email: sender lease lost; stopping")
			s.stopAll()
			lastRev = 0
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// renew takes or extends the lease and reports whether it is held.
func (s *sender) renew(ctx context.Context) bool {
	cfg := s.a.cfg
	st := s.a.deps.State
	ctx, cancel := context.WithTimeout(ctx, cfg.LeaseTTL/3)
	defer cancel()
	now := cfg.Now()
	val, _ := json.Marshal(lease{Holder: cfg.Holder, Expires: now.Add(cfg.LeaseTTL)})
	b, rev, err := st.Get(ctx, keyLease)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		rev, err = st.Create(ctx, keyLease, val)
	case err == nil:
		var cur lease
		if json.Unmarshal(b, &cur) == nil && cur.Holder != cfg.Holder && now.Before(cur.Expires) {
			s.setHeld(time.Time{}, 0)
			return false // another instance holds it
		}
		rev, err = st.Update(ctx, keyLease, val, rev)
	}
	if err != nil {
		if !errors.Is(err, fs.ErrExist) {
			cfg.Logger.WarnContext(ctx, "email: sender lease not renewed", slog.Any("error", err))
		}
		s.mu.Lock()
		held := cfg.Now().Before(s.heldUntil)
		s.mu.Unlock()
		if errors.Is(err, fs.ErrExist) || !held {
			s.setHeld(time.Time{}, 0)
			return false
		}
		return held // a failed renewal: hold on to what is left, stop once it ends
	}
	s.setHeld(now.Add(cfg.LeaseTTL), rev)
	return true
}

func (s *sender) setHeld(until time.Time, rev uint64) {
	s.mu.Lock()
	s.heldUntil, s.rev = until, rev
	s.mu.Unlock()
}

// release gives the lease up, if held, so another instance takes over at
// once.
func (s *sender) release(ctx context.Context) {
	s.mu.Lock()
	rev, held := s.rev, !s.heldUntil.IsZero()
	s.heldUntil, s.rev = time.Time{}, 0
	s.mu.Unlock()
	s.a.metrics.leader.Set(0)
	if !held {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, s.a.cfg.LeaseTTL/3)
	defer cancel()
	val, _ := json.Marshal(lease{Holder: s.a.cfg.Holder})
	// Expire it rather than delete it: an update at our revision fails if
	// someone else has taken it meanwhile.
	if _, err := s.a.deps.State.Update(ctx, keyLease, val, rev); err != nil && !errors.Is(err, fs.ErrExist) {
		s.a.cfg.Logger.WarnContext(ctx, "email: sender lease not released", slog.Any("error", err))
	}
}

// sync starts a worker for each e-mail organisation without one and
// stops those of organisations that no longer receive by e-mail.
func (s *sender) sync(ctx context.Context) {
	snap := s.a.deps.Directory.Snapshot()
	want := map[string]time.Time{}
	for _, o := range snap.Directory().Organisations {
		if o.ReceivesByEmail() && o.ReferralContact.Email != "" {
			want[o.ID] = o.UpdatedAt
		}
	}
	for org, cancel := range s.workers {
		if _, ok := want[org]; !ok {
			cancel()
			delete(s.workers, org)
		}
	}
	orgs := make([]string, 0, len(want))
	for org := range want {
		if _, ok := s.workers[org]; !ok {
			orgs = append(orgs, org)
		}
	}
	slices.Sort(orgs)
	for _, org := range orgs {
		wctx, cancel := context.WithCancel(ctx)
		s.workers[org] = cancel
		since := want[org]
		s.wg.Go(func() { s.work(wctx, org, since) })
	}
	if len(orgs) > 0 {
		s.a.cfg.Logger.InfoContext(ctx, "email: sending for organisations", slog.Int("added", len(orgs)), slog.Int("organisations", len(s.workers)))
	}
}

func (s *sender) stopAll() {
	for org, cancel := range s.workers {
		cancel()
		delete(s.workers, org)
	}
	s.wg.Wait()
	s.mu.Lock()
	clear(s.digestSince) // another instance may add to the digests now
	clear(s.digestDue)
	clear(s.digestFails)
	s.mu.Unlock()
}

// work consumes org's deliveries until ctx ends, starting again after a
// failure of the consumer.
func (s *sender) work(ctx context.Context, org string, since time.Time) {
	delay := s.a.cfg.Backoff
	for ctx.Err() == nil {
		err := s.a.deps.Deliveries.Consume(ctx, org, since, func(ctx context.Context, m events.Message, delivered uint64) (time.Duration, error) {
			delay = s.a.cfg.Backoff
			return s.handle(ctx, org, m, delivered)
		})
		if ctx.Err() != nil {
			return
		}
		s.a.cfg.Logger.WarnContext(ctx, "email: deliveries interrupted", slog.String("organisation", org), slog.Any("error", err))
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		delay = min(delay*2, s.a.cfg.BackoffMax)
	}
}

// handle sends the message of one delivery and says what to do with it.
func (s *sender) handle(ctx context.Context, org string, m events.Message, delivered uint64) (time.Duration, error) {
	a := s.a
	env, err := events.Decode(m)
	if err != nil {
		a.metrics.messages.WithLabelValues("undecodable").Inc()
		return 0, fmt.Errorf("undecodable delivery: %w", err)
	}
	ctx, span := tracing.StartDelivery(ctx, "email", m.Header, org, env.Event.Type(), env.Event.ID(), env.Event.Subject())
	defer span.End()
	reminder := false
	for k, vs := range m.Header {
		if strings.EqualFold(k, headerReminder) && len(vs) > 0 && vs[0] != "" {
			reminder = true
		}
	}
	out, err := a.composer.Compose(ctx, org, env, reminder)
	if err != nil {
		a.metrics.messages.WithLabelValues("uncomposable").Inc()
		a.cfg.Logger.ErrorContext(ctx, "email: message not composed", slog.String("organisation", org),
			slog.String("event", env.Event.ID()), slog.Any("error", err))
		return 0, err
	}
	if out == nil {
		a.metrics.messages.WithLabelValues("skipped").Inc()
		return 0, nil
	}
	sentKey := sentPrefix + hashKey(out.MessageID)
	if _, _, err := a.deps.Marks.Get(ctx, sentKey); err == nil {
		// Sent before the acknowledgement was lost: not again.
		a.metrics.messages.WithLabelValues("already_sent").Inc()
		return 0, nil
	}
	if o := a.deps.Directory.Snapshot().Organisation(org); o != nil && o.EmailDigest() &&
		(out.Deadline.IsZero() || !out.Deadline.Before(s.nextDigest(org, a.cfg.Now()))) {
		// Held for the daily digest, unless an answer is due before it.
		if err := s.hold(ctx, org, out); err != nil {
			a.cfg.Logger.WarnContext(ctx, "email: not held for the digest", slog.String("organisation", org), slog.Any("error", err))
			return a.cfg.Backoff, nil
		}
		a.metrics.messages.WithLabelValues("held").Inc()
		return 0, nil
	}
	if !s.holds() {
		return a.cfg.Backoff, nil // the lease is going: the next holder sends it
	}
	sctx, cancel := context.WithTimeout(ctx, SendTimeoutDefault)
	start := time.Now()
	err = a.deps.Mailer.Send(sctx, out.Msg)
	cancel()
	a.metrics.sendSeconds.Observe(time.Since(start).Seconds())
	if err == nil {
		a.metrics.messages.WithLabelValues("sent").Inc()
		span.SetAttributes(attribute.String(tracing.KeyOutcome, "sent"))
		if _, err := a.deps.Marks.Create(ctx, sentKey, []byte(out.Kind)); err != nil && !errors.Is(err, fs.ErrExist) {
			a.cfg.Logger.WarnContext(ctx, "email: sent mark not stored", slog.String("organisation", org), slog.Any("error", err))
		}
		a.cfg.Logger.DebugContext(ctx, "email: sent", slog.String("organisation", org), slog.String("kind", out.Kind),
			slog.String("event", env.Event.ID()))
		return 0, nil
	}
	var se *SendError
	if !errors.As(err, &se) {
		se = &SendError{Temporary: true, err: err}
	}
	if se.Temporary && delivered < uint64(a.cfg.Attempts) {
		a.metrics.messages.WithLabelValues("retried").Inc()
		next := a.cfg.backoff(delivered)
		a.cfg.Logger.WarnContext(ctx, "email: temporary failure; will retry", slog.String("organisation", org),
			slog.String("kind", out.Kind), slog.Uint64("attempt", delivered), slog.Int("smtp_code", se.Code),
			slog.Duration("retry_in", next))
		return next, nil
	}
	a.metrics.messages.WithLabelValues("failed").Inc()
	f := Failure{Org: org, Kind: out.Kind, EventID: env.Event.ID(), EventType: env.Event.Type(), Referral: env.Event.Subject(),
		Code: se.Code, Attempts: delivered, Temporary: se.Temporary, At: a.cfg.Now().UTC()}
	a.cfg.Logger.ErrorContext(ctx, "email: message given up", slog.String("organisation", org), slog.String("kind", out.Kind),
		slog.String("event", f.EventID), slog.Int("smtp_code", se.Code), slog.Uint64("attempts", delivered))
	key := failurePrefix + org + "." + hashKey(out.MessageID)
	if p, ok := env.Payload.(*events.Offered); ok {
		f.Placement, f.Referrer = p.Placement, p.Referrer
	}
	b, _ := json.Marshal(f)
	if _, err := a.deps.State.Create(ctx, key, b); errors.Is(err, fs.ErrExist) {
		// Recorded before a crash or a failed notice: keep its time, so
		// that the notice is the same event.
		if old, _, gerr := a.deps.State.Get(ctx, key); gerr == nil {
			var of Failure
			if json.Unmarshal(old, &of) == nil {
				f.At = of.At
			}
		}
	} else if err != nil {
		// Not recorded: keep the message (nil error, retried after the
		// backoff) until the failure is.
		a.cfg.Logger.WarnContext(ctx, "email: failure not recorded; will retry", slog.String("organisation", org), slog.Any("error", err))
		return a.cfg.Backoff, nil //nolint:nilerr // the message waits for the record, it is not given up
	}
	if err := s.notifyReferrer(ctx, key, env, out.Kind, f); err != nil {
		a.cfg.Logger.WarnContext(ctx, "email: referrer not told of the failure; will retry", slog.String("organisation", org), slog.Any("error", err))
		return a.cfg.backoff(delivered), nil // the notice waits: so does the failed delivery
	}
	return 0, se
}

// FailedID returns the id of the delivery.failed event of the failure
// recorded under key: derived from it, so that telling the referrer again
// (after a crash) is the same event.
func FailedID(key string) string {
	return uuid.NewSHA1(failedNamespace, []byte(key)).String()
}

// failedNamespace is the UUIDv5 namespace of delivery.failed ids.
var failedNamespace = uuid.MustParse("6f1c3f0e-9b4a-5d7e-8c2b-1a3d5e7f9b0c")

// notifyReferrer tells the referrer of an offer (or reminder) that could
// not be delivered: a delivery.failed event on its delivery subject of
// the referral, once per failure (key). A referrer that receives by
// e-mail gets it as an e-mail ([KindUndeliverable]) from its own worker.
func (s *sender) notifyReferrer(ctx context.Context, key string, env *events.Envelope, kind string, f Failure) error {
	p, ok := env.Payload.(*events.Offered)
	if !ok || (kind != KindOffer && kind != KindReminder) || !events.IsOrgID(p.Referrer) {
		return nil
	}
	reason := events.DeliveryRefused
	if f.Temporary {
		reason = events.DeliveryGaveUp
	}
	attempts := int(min(f.Attempts, 1000)) //nolint:gosec // bounded
	pay := &events.DeliveryFailed{Placement: p.Placement, Organisation: f.Org, Channel: "email", Message: kind,
		Event: env.Event.ID(), Reason: reason, SMTPCode: f.Code, Attempts: max(attempts, 1)}
	if pay.SMTPCode != 0 && (pay.SMTPCode < 200 || pay.SMTPCode > 599) {
		pay.SMTPCode = 0
	}
	ev, err := events.New(events.SourceEmail, env.Event.Subject(), pay, events.WithID(FailedID(key)), events.WithTime(f.At))
	if err != nil {
		return err
	}
	subject, err := events.DeliverySubject(p.Referrer, env.Event.Subject())
	if err != nil {
		return err
	}
	m, err := events.ToNATS(subject, ev)
	if err != nil {
		return err
	}
	if err := s.a.deps.Notices.Notify(ctx, p.Referrer, m); err != nil {
		return err
	}
	s.a.metrics.messages.WithLabelValues("notified").Inc()
	return nil
}

// hashKey returns a short key-safe hash of s.
func hashKey(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:16])
}

// ListFailures returns the messages given up for organisation org (every
// organisation when org is ""), oldest first: what the organisation's
// administrator and the directory's administrator see
// (`invictus adapter email failures`).
func ListFailures(ctx context.Context, st FailureStore, org string) ([]Failure, error) {
	prefix := failurePrefix
	if org != "" {
		prefix += org + "."
	}
	keys, err := st.Keys(ctx, prefix)
	if err != nil {
		return nil, err
	}
	out := make([]Failure, 0, len(keys))
	for _, k := range keys {
		b, _, err := st.Get(ctx, k)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		var f Failure
		if err := json.Unmarshal(b, &f); err != nil {
			return nil, fmt.Errorf("email: failure %s: %w", k, err)
		}
		if org == "" || f.Org == org {
			out = append(out, f)
		}
	}
	slices.SortFunc(out, func(a, b Failure) int { return a.At.Compare(b.At) })
	return out, nil
}
