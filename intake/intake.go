package intake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"

	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/internal/wire"
)

// RecordedBy is the consent's recorded_by of every self-referral: the
// page, not a person, recorded it.
const RecordedBy = "web-intake1"

// StoreTimeout bounds each call to a port.
const StoreTimeout = 5 * time.Second

// Key prefixes in [Store].
const (
	pendingPrefix = "intake.pending."
	cursorKey     = "intake.cursor"
)

// Commands publishes the intake organisation's commands (INBOUND);
// natsjs.InboundSink is one.
type Commands interface {
	Submit(ctx context.Context, org string, msg events.Message) error
}

// Deliveries follows an organisation's deliveries; natsjs.DeliveryInbox
// is one.
type Deliveries interface {
	Follow(ctx context.Context, org string, after uint64, fn func(seq uint64, m events.Message) error) error
}

// Store keeps the sealed envelopes until their handover, and the cursor
// of the deliveries read; natsjs.KVStore is one. Get returns an error
// wrapping fs.ErrNotExist for a missing key.
type Store interface {
	Get(ctx context.Context, key string) ([]byte, error)
	Put(ctx context.Context, key string, value []byte) error
	Delete(ctx context.Context, key string) error
}

// Request is a request to be contacted: codes, and the envelope sealed in
// the browser.
type Request struct {
	Service, Organisation, Recipient, Envelope string
	Needs                                      []string
	Country, Language, Channel                 string
	AgeBand, Urgency                           string
	ConsentAt                                  time.Time
}

// Config configures an [Intake]. Org is required.
type Config struct {
	// Org is the intake organisation's id (<cc>.<slug>, such as
	// pt.public-intake): the source of every self-referral.
	Org string
	// Logger receives referral ids and outcomes, never a request's
	// content. Default discards.
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Intake submits self-referrals and hands their envelopes over.
type Intake struct {
	cmds  Commands
	deliv Deliveries
	store Store
	cfg   Config
	log   *slog.Logger
}

// New returns the intake over its ports. It returns an error naming a
// missing port or an invalid Config.Org.
func New(cmds Commands, deliv Deliveries, store Store, cfg Config) (*Intake, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	switch {
	case cmds == nil || deliv == nil || store == nil:
		return nil, errors.New("intake: New needs Commands, Deliveries and Store")
	case !events.IsOrgID(cfg.Org):
		return nil, fmt.Errorf("intake: Config.Org %q is not an organisation id (<cc>.<slug>)", cfg.Org)
	}
	return &Intake{cmds: cmds, deliv: deliv, store: store, cfg: cfg, log: cfg.Logger}, nil
}

// pending is what the store keeps of a request until its handover.
type pending struct {
	Organisation string `json:"organisation"`
	Recipient    string `json:"recipient"`
	Envelope     string `json:"envelope"`
}

// Refer submits r as a referral.requested of the intake organisation and
// keeps its envelope for the handover. It returns the referral id.
// Errors: a *events.ValidationError (errors.Is events.ErrInvalid...) when
// r breaks the contract, else the port's error.
func (i *Intake) Refer(ctx context.Context, r Request) (string, error) {
	if err := events.CheckEnvelope(r.Envelope); err != nil {
		return "", fmt.Errorf("intake: envelope: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, StoreTimeout)
	defer cancel()
	id := events.NewReferralID()
	req := events.Requested{
		Profile: events.Profile{
			Needs: r.Needs, Urgency: r.Urgency, Location: events.Location{Country: r.Country},
			Languages: []string{r.Language}, AgeBand: r.AgeBand, Channels: []string{r.Channel},
		},
		Consent:               events.Consent{Referral: true, ShareData: true, GivenAt: r.ConsentAt.UTC(), Method: "digital", RecordedBy: RecordedBy},
		PreferredOrganisation: r.Organisation,
	}
	ev, err := events.New(events.SourceOf(i.cfg.Org), id, req, events.WithTime(i.cfg.Now()))
	if err != nil {
		return "", err
	}
	b, err := json.Marshal(pending{Organisation: r.Organisation, Recipient: r.Recipient, Envelope: r.Envelope})
	if err != nil {
		return "", err
	}
	// The envelope is kept first: a referral whose acceptance comes
	// before it would have nothing to hand over.
	if err := i.store.Put(ctx, pendingPrefix+id, b); err != nil {
		return "", fmt.Errorf("intake: keep envelope: %w", err)
	}
	if err := i.submit(ctx, ev); err != nil {
		_ = i.store.Delete(ctx, pendingPrefix+id)
		return "", err
	}
	i.log.InfoContext(ctx, "intake: self-referral submitted", slog.String("referral", id))
	return id, nil
}

// submit publishes ev on the intake organisation's inbound subject.
func (i *Intake) submit(ctx context.Context, ev event.Event) error {
	subject, err := events.InboundSubject(i.cfg.Org)
	if err != nil {
		return fmt.Errorf("intake: %w", err)
	}
	m, err := wire.Command(subject, ev)
	if err != nil {
		return fmt.Errorf("intake: encode: %w", err)
	}
	if err := i.cmds.Submit(ctx, i.cfg.Org, m); err != nil {
		return fmt.Errorf("intake: submit: %w", err)
	}
	return nil
}

// handoverNS derives handover ids from acceptance ids.
var handoverNS = uuid.MustParse("6f0c1a52-5d0e-4c1e-9a57-3b1f0b6c2e11")

// handoverID is the id of the handover that answers the acceptance
// acceptedID: the same every time, so that INBOUND stores it once.
func handoverID(acceptedID string) string {
	return uuid.NewSHA1(handoverNS, []byte(acceptedID)).String()
}

// payloadOf returns p as a value of type T, whether Decode gave the value
// or a pointer to it.
func payloadOf[T any](p events.Payload) (T, bool) {
	var a any = p
	switch v := a.(type) {
	case T:
		return v, true
	case *T:
		if v != nil {
			return *v, true
		}
	}
	var zero T
	return zero, false
}

// Run follows the intake organisation's deliveries from the stored
// cursor until ctx ends, handing envelopes over as placements are
// accepted. A failing port is logged and the follow starts again from
// the stored cursor after a pause (1 s, doubling up to [RetryMax]), so a
// store or stream that is briefly unavailable stops nothing. It returns
// nil when ctx ends.
func (i *Intake) Run(ctx context.Context) error {
	wait := time.Second
	for {
		if err := i.follow(ctx); ctx.Err() == nil {
			i.log.WarnContext(ctx, "intake: following deliveries failed; starting again", slog.Any("error", err), slog.Duration("after", wait))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		wait = min(2*wait, RetryMax)
	}
}

// RetryMax bounds the pause before [Intake.Run] follows again.
const RetryMax = 30 * time.Second

// follow reads deliveries from the stored cursor until ctx ends or a
// port fails.
func (i *Intake) follow(ctx context.Context) error {
	var after uint64
	b, err := i.get(ctx, cursorKey)
	switch {
	case err == nil:
		after, _ = strconv.ParseUint(string(b), 10, 64)
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	return i.deliv.Follow(ctx, i.cfg.Org, after, func(seq uint64, m events.Message) error {
		if err := i.handle(ctx, m); err != nil {
			return err
		}
		sctx, cancel := context.WithTimeout(ctx, StoreTimeout)
		defer cancel()
		return i.store.Put(sctx, cursorKey, []byte(strconv.FormatUint(seq, 10)))
	})
}

func (i *Intake) get(ctx context.Context, key string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, StoreTimeout)
	defer cancel()
	return i.store.Get(ctx, key)
}

// handle acts on one delivery: an acceptance by the chosen organisation
// hands the envelope over; the referral's end forgets it.
func (i *Intake) handle(ctx context.Context, m events.Message) error {
	env, err := events.Decode(m)
	if err != nil {
		return nil // not ours to judge: the router wrote it
	}
	id := env.Event.Subject()
	typ := env.Event.Type()
	ends := []string{events.TypeReferralUnmatched, events.TypeReferralWithdrawn, events.TypeReferralErase, events.TypeReferralErased}
	if typ != events.TypeReferralAccepted && !slices.Contains(ends, typ) {
		return nil
	}
	b, err := i.get(ctx, pendingPrefix+id)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // handed over or forgotten already, or not a self-referral
	}
	if err != nil {
		return err
	}
	var p pending
	if err := json.Unmarshal(b, &p); err != nil {
		return i.forget(ctx, id, "unreadable")
	}
	if typ != events.TypeReferralAccepted {
		if typ == events.TypeReferralUnmatched {
			if u, ok := payloadOf[events.Unmatched](env.Payload); ok && u.Placement != "" {
				return nil // one placement has none left; another may still be accepted
			}
		}
		return i.forget(ctx, id, "ended")
	}
	by, _ := events.OrgOfSource(env.Event.Source())
	acc, ok := payloadOf[events.Accepted](env.Payload)
	if !ok {
		return nil
	}
	if by != p.Organisation {
		return i.forget(ctx, id, "accepted_by_another")
	}
	hv := events.Handover{Placement: acc.Placement, Recipient: p.Recipient, Envelope: p.Envelope}
	// The handover's id is derived from the acceptance's, so that a
	// delivery read twice sends one handover (INBOUND deduplicates).
	ev, err := events.New(events.SourceOf(i.cfg.Org), id, hv, events.WithTime(i.cfg.Now()), events.WithID(handoverID(env.Event.ID())))
	if err != nil {
		return i.forget(ctx, id, "invalid")
	}
	sctx, cancel := context.WithTimeout(ctx, StoreTimeout)
	defer cancel()
	if err := i.submit(sctx, ev); err != nil {
		return err
	}
	i.log.InfoContext(ctx, "intake: case details handed over", slog.String("referral", id), slog.String("placement", acc.Placement))
	return i.forget(ctx, id, "")
}

// forget deletes the envelope of referral id.
func (i *Intake) forget(ctx context.Context, id, why string) error {
	ctx, cancel := context.WithTimeout(ctx, StoreTimeout)
	defer cancel()
	if why != "" {
		i.log.InfoContext(ctx, "intake: envelope forgotten", slog.String("referral", id), slog.String("why", why))
	}
	return i.store.Delete(ctx, pendingPrefix+id)
}
