package natsjs

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/invictus-network/invictus/events"
)

// Cross-border commands between country hubs. A referral's log is kept in
// the hub of its referrer's country; the offer to another country's
// organisation reaches that organisation's hub by DELIVERY sourcing
// (StreamsConfig.CrossBorderFrom). Its answer (accept, decline, contact,
// complete, ...) goes back the same way: the organisation sends it to its
// own hub's INBOUND as ever; that hub's router, finding no log of the
// referral but an offer sourced from the hub of country cc, stores the
// command in CROSSBORDER on xb.<cc>.<org>; hub cc's INBOUND sources
// xb.<cc>.*.* from every hub in its CrossBorderFrom, as in.<org>, and its
// router decides it like any command. Nothing else crosses: a hub's
// CROSSBORDER holds only its organisations' answers to other hubs' offers,
// and what the decision must show them comes back on out.<org>.<id>.

// Names of the cross-border stream.
const (
	// StreamCrossBorder holds a hub's commands for other hubs.
	StreamCrossBorder = "CROSSBORDER"
	// SubjectsCrossBorder is the filter of [StreamCrossBorder]:
	// xb.<cc>.<org-cc>.<org>, cc the country of the hub that decides.
	SubjectsCrossBorder = "xb.>"
	// CrossBorderMaxBytesDefault bounds CROSSBORDER.
	CrossBorderMaxBytesDefault int64 = 256 << 20
	// CrossBorderMaxAgeDefault is how long CROSSBORDER keeps a command: as
	// long as a hub may be cut off and still get what was sent meanwhile.
	CrossBorderMaxAgeDefault = DLQMaxAgeDefault
)

// crossBorderStream is the configuration of [StreamCrossBorder].
func crossBorderStream(cfg StreamsConfig) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        StreamCrossBorder,
		Description: "Commands of this hub's organisations about referrals other hubs hold, sourced by those hubs' INBOUND.",
		Subjects:    []string{SubjectsCrossBorder},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
		Duplicates:  cfg.Duplicates,
		Discard:     jetstream.DiscardNew,
		MaxBytes:    CrossBorderMaxBytesDefault,
		MaxAge:      CrossBorderMaxAgeDefault,
	}
}

// crossBorderSource is INBOUND's source of the commands for country from
// the hub of domain.
func crossBorderSource(country, domain string) *jetstream.StreamSource {
	return &jetstream.StreamSource{Name: StreamCrossBorder, Domain: domain,
		SubjectTransforms: []jetstream.SubjectTransformConfig{{
			Source: "xb." + country + ".*.*", Destination: "in.{{wildcard(1)}}.{{wildcard(2)}}",
		}}}
}

// CrossBorder forwards the commands of a hub's organisations about
// referrals other hubs hold (see [RouterConfig].Forward).
type CrossBorder struct {
	js        jetstream.JetStream
	country   string
	referrals jetstream.Stream
	delivery  jetstream.Stream
}

// NewCrossBorder returns the forwarder of the hub of country.
func NewCrossBorder(ctx context.Context, js jetstream.JetStream, country string) (*CrossBorder, error) {
	if !isCountryCode(country) {
		return nil, fmt.Errorf("natsjs: cross-border country %q is not a country code", country)
	}
	refs, err := js.Stream(ctx, StreamReferrals)
	if err != nil {
		return nil, fmt.Errorf("natsjs: cross-border: %w", err)
	}
	del, err := js.Stream(ctx, StreamDelivery)
	if err != nil {
		return nil, fmt.Errorf("natsjs: cross-border: %w", err)
	}
	return &CrossBorder{js: js, country: country, referrals: refs, delivery: del}, nil
}

// Forward stores org's command in CROSSBORDER, for the hub of the
// referral's country, when this hub holds no log of the referral and org
// was offered it from another hub; it reports whether it did. A command
// this hub decides (a new referral, one of its own referrals) is left.
func (x *CrossBorder) Forward(ctx context.Context, org string, env *events.Envelope, h nats.Header, data []byte) (bool, error) {
	id := env.Event.Subject()
	if !events.IsReferralID(id) {
		return false, nil
	}
	if _, err := x.referrals.GetLastMsgForSubject(ctx, referralFilter(id)); err == nil {
		return false, nil
	} else if !errors.Is(err, jetstream.ErrMsgNotFound) {
		return false, err
	}
	subject, err := events.DeliverySubject(org, id)
	if err != nil {
		return false, nil //nolint:nilerr // not a delivery subject: not offered, the router decides
	}
	first, err := x.delivery.GetMsg(ctx, 1, jetstream.WithGetMsgSubject(subject))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	offer, err := events.Decode(events.Message{Subject: first.Subject, Header: first.Header, Data: first.Data})
	if err != nil {
		return false, nil //nolint:nilerr // not an offer this hub can read: the router decides (and rejects)
	}
	p, ok := offer.Payload.(*events.Offered)
	if !ok {
		return false, nil
	}
	cc, _, _ := strings.Cut(p.Referrer, ".")
	if cc == x.country || !isCountryCode(cc) {
		return false, nil
	}
	// The command as sent, without the expectations its sender had of
	// this hub's INBOUND (Nats-Expected-Stream and the like).
	fwd := nats.Header{}
	for k, v := range h {
		if !strings.HasPrefix(k, "Nats-Expected-") {
			fwd[k] = v
		}
	}
	if _, err := x.js.PublishMsg(ctx, &nats.Msg{Subject: "xb." + cc + "." + org, Header: fwd, Data: data}); err != nil {
		return false, fmt.Errorf("natsjs: forward to %s: %w", cc, err)
	}
	return true, nil
}
