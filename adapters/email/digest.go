package email

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/invictus-network/invictus/directory"
)

// digestPrefix keys the pending digest of an organisation:
// digest.<org> holds a [digestDoc].
const digestPrefix = "digest."

// digestDoc is what an organisation's next digest gathers.
type digestDoc struct {
	// Since is when the first pending item was added.
	Since time.Time    `json:"since"`
	Items []digestItem `json:"items"`
}

// digestItem is one message held for the digest: its Message-ID (to
// recognise a redelivery) and what it says.
type digestItem struct {
	ID   string `json:"id"`
	Kind string `json:"kind"`
	View view   `json:"view"`
}

// NextDigest returns the first instant after t at which the clock in loc
// shows the time of day at (since midnight, as [ParseDigestAt] returns
// it): when a digest due at that time goes out. On the two days a year
// the clocks change, a time inside the hour skipped or shown twice is
// taken as time.Date takes it (one of the instants an hour apart).
func NextDigest(at time.Duration, loc *time.Location, t time.Time) time.Time {
	lt := t.In(loc)
	h, m := int(at/time.Hour), int(at%time.Hour/time.Minute)
	for day := 0; ; day++ {
		d := time.Date(lt.Year(), lt.Month(), lt.Day()+day, h, m, 0, 0, loc)
		if d.After(t) {
			return d
		}
	}
}

// DigestZones returns the time zone of each organisation of d that has
// one: the time zone of the opening hours of its first service by id.
// The digest of an organisation without one goes out at
// [Config].DigestAt UTC.
func DigestZones(d *directory.Directory) map[string]*time.Location {
	ids := make([]int, len(d.Services))
	for i := range ids {
		ids[i] = i
	}
	slices.SortFunc(ids, func(a, b int) int { return strings.Compare(d.Services[a].ID, d.Services[b].ID) })
	out := map[string]*time.Location{}
	for _, i := range ids {
		s := &d.Services[i]
		if _, ok := out[s.Organisation]; ok || s.Hours.TimeZone == "" {
			continue
		}
		if loc, err := directory.LoadZone(s.Hours.TimeZone); err == nil {
			out[s.Organisation] = loc
		}
	}
	return out
}

// zone returns the time zone in which org's digest time is read, from
// the directory's current revision.
func (s *sender) zone(org string) *time.Location {
	rev := s.a.deps.Directory.Revision()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.zones == nil || s.zonesRev != rev {
		s.zones, s.zonesRev = DigestZones(s.a.deps.Directory.Snapshot().Directory()), rev
	}
	if loc := s.zones[org]; loc != nil {
		return loc
	}
	return time.UTC
}

// nextDigest returns when org's next digest after t is due.
func (s *sender) nextDigest(org string, t time.Time) time.Time {
	return NextDigest(s.a.cfg.digestAt, s.zone(org), t)
}

// hold adds the message out to org's pending digest, once per
// Message-ID, and reports an error when the store failed (the delivery is
// then kept).
func (s *sender) hold(ctx context.Context, org string, out *Outgoing) error {
	st := s.a.deps.State
	key := digestPrefix + org
	for {
		var doc digestDoc
		b, rev, err := st.Get(ctx, key)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return err
		default:
			if err := json.Unmarshal(b, &doc); err != nil {
				return fmt.Errorf("digest of %s: %w", org, err)
			}
		}
		for _, it := range doc.Items {
			if it.ID == out.MessageID {
				return nil // a redelivery
			}
		}
		if len(doc.Items) == 0 {
			doc.Since = s.a.cfg.Now().UTC()
		}
		doc.Items = append(doc.Items, digestItem{ID: out.MessageID, Kind: out.Kind, View: out.view})
		nb, _ := json.Marshal(doc)
		if rev == 0 {
			_, err = st.Create(ctx, key, nb)
		} else {
			_, err = st.Update(ctx, key, nb, rev)
		}
		if errors.Is(err, fs.ErrExist) {
			continue // changed meanwhile: read again
		}
		if err == nil {
			due := s.nextDigest(org, doc.Since)
			s.mu.Lock()
			s.digestSince[org], s.digestDue[org] = doc.Since, due
			s.mu.Unlock()
		}
		return err
	}
}

// FlushDigests sends every pending digest now, whatever the time of day
// (tests, and an operator who wants them out before a maintenance). It
// returns the first error met; the digests not sent stay pending.
func (a *Adapter) FlushDigests(ctx context.Context) error {
	return a.sender.flushDigests(ctx, true)
}

// flushDigests sends the digests that are due (all pending ones when
// force is set) of the organisations that receive a digest.
func (s *sender) flushDigests(ctx context.Context, force bool) error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	now := s.a.cfg.Now()
	var first error
	for _, o := range s.a.deps.Directory.Snapshot().Directory().Organisations {
		if !o.EmailDigest() {
			continue
		}
		s.mu.Lock()
		due, known := s.digestDue[o.ID]
		s.mu.Unlock()
		if !force && known && (due.IsZero() || now.Before(due)) {
			continue
		}
		if err := s.flushDigest(ctx, o.ID, now, force); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// flushDigest sends org's digest if it is due (or force), then removes
// what it sent from the pending items.
func (s *sender) flushDigest(ctx context.Context, org string, now time.Time, force bool) error {
	a := s.a
	key := digestPrefix + org
	b, _, err := a.deps.State.Get(ctx, key)
	var doc digestDoc
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return err
	default:
		if err := json.Unmarshal(b, &doc); err != nil {
			return fmt.Errorf("digest of %s: %w", org, err)
		}
	}
	var due time.Time // zero: nothing pending
	if len(doc.Items) > 0 {
		due = s.nextDigest(org, doc.Since)
	}
	s.mu.Lock()
	s.digestSince[org], s.digestDue[org] = doc.Since, due
	s.mu.Unlock()
	if len(doc.Items) == 0 || (!force && now.Before(due)) {
		return nil
	}
	if !force && !s.holds() {
		return nil
	}
	ids := make([]string, len(doc.Items))
	items := make([]view, len(doc.Items))
	for i, it := range doc.Items {
		ids[i], items[i] = it.ID, it.View
	}
	// The same items make the same Message-ID: a digest sent before a
	// crash that left them pending is not sent again.
	id := KindDigest + "." + hashKey(strings.Join(ids, "\n")) + "." + org + "@" + a.composer.domain
	out, err := a.composer.Digest(org, items, id)
	if err != nil || out == nil {
		return err
	}
	sentKey := sentPrefix + hashKey(out.MessageID)
	if _, _, err := a.deps.Marks.Get(ctx, sentKey); err != nil {
		sctx, cancel := context.WithTimeout(ctx, SendTimeoutDefault)
		err = a.deps.Mailer.Send(sctx, out.Msg)
		cancel()
		if err != nil {
			return s.digestFailed(ctx, org, out, ids, err)
		}
		s.mu.Lock()
		delete(s.digestFails, org)
		s.mu.Unlock()
		a.metrics.messages.WithLabelValues("sent").Inc()
		if _, err := a.deps.Marks.Create(ctx, sentKey, []byte(KindDigest)); err != nil && !errors.Is(err, fs.ErrExist) {
			a.cfg.Logger.WarnContext(ctx, "email: sent mark not stored", slog.String("organisation", org), slog.Any("error", err))
		}
		a.cfg.Logger.InfoContext(ctx, "email: digest sent", slog.String("organisation", org), slog.Int("items", len(items)))
	}
	return s.dropHeld(ctx, org, ids)
}

// digestFailed handles a digest that could not be sent: after a
// temporary failure it is due again after the backoff; refused (5xx), or
// after Config.Attempts failures, it is recorded as a [Failure] and its
// items are dropped, as a single message would be. It returns err.
func (s *sender) digestFailed(ctx context.Context, org string, out *Outgoing, ids []string, err error) error {
	a := s.a
	var se *SendError
	if !errors.As(err, &se) {
		se = &SendError{Temporary: true, err: err}
	}
	s.mu.Lock()
	s.digestFails[org]++
	n := s.digestFails[org]
	if se.Temporary && n < a.cfg.Attempts {
		s.digestDue[org] = a.cfg.Now().Add(a.cfg.backoff(uint64(n)))
		s.mu.Unlock()
		a.metrics.messages.WithLabelValues("retried").Inc()
		a.cfg.Logger.WarnContext(ctx, "email: digest not sent; will retry", slog.String("organisation", org),
			slog.Int("attempt", n), slog.Int("smtp_code", se.Code))
		return fmt.Errorf("digest of %s: %w", org, err)
	}
	delete(s.digestFails, org)
	s.mu.Unlock()
	a.metrics.messages.WithLabelValues("failed").Inc()
	a.cfg.Logger.ErrorContext(ctx, "email: digest given up", slog.String("organisation", org),
		slog.Int("smtp_code", se.Code), slog.Int("attempts", n), slog.Int("items", len(ids)))
	f := Failure{Org: org, Kind: KindDigest, Code: se.Code, Attempts: uint64(n), Temporary: se.Temporary, At: a.cfg.Now().UTC()} //nolint:gosec // n >= 1
	b, _ := json.Marshal(f)
	if _, cerr := a.deps.State.Create(ctx, failurePrefix+org+"."+hashKey(out.MessageID), b); cerr != nil && !errors.Is(cerr, fs.ErrExist) {
		return fmt.Errorf("digest of %s: failure not recorded: %w", org, cerr)
	}
	return errors.Join(fmt.Errorf("digest of %s: %w", org, err), s.dropHeld(ctx, org, ids))
}

// dropHeld removes the items ids from org's pending digest, keeping
// those added meanwhile.
func (s *sender) dropHeld(ctx context.Context, org string, ids []string) error {
	st := s.a.deps.State
	key := digestPrefix + org
	sent := map[string]bool{}
	for _, id := range ids {
		sent[id] = true
	}
	for {
		b, rev, err := st.Get(ctx, key)
		if err != nil {
			return err
		}
		var doc digestDoc
		if err := json.Unmarshal(b, &doc); err != nil {
			return fmt.Errorf("digest of %s: %w", org, err)
		}
		kept := doc.Items[:0]
		for _, it := range doc.Items {
			if !sent[it.ID] {
				kept = append(kept, it)
			}
		}
		doc.Items = kept
		if len(kept) > 0 {
			doc.Since = s.a.cfg.Now().UTC()
		}
		nb, _ := json.Marshal(doc)
		if _, err = st.Update(ctx, key, nb, rev); errors.Is(err, fs.ErrExist) {
			continue
		}
		if err == nil {
			var due time.Time // zero: nothing pending
			if len(kept) > 0 {
				due = s.nextDigest(org, doc.Since)
			}
			s.mu.Lock()
			s.digestSince[org], s.digestDue[org] = doc.Since, due
			s.mu.Unlock()
		}
		return err
	}
}
