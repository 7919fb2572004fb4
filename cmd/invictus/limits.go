package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/invictus-network/invictus/adapters/natsjs"
)

// The bounds of the streams and of the store, as serve's flags (the
// limits table of the README lists them). Their defaults are natsjs's.

// limitOptions are the flags that bound the streams and the store.
type limitOptions struct {
	inboundMaxBytes       sizeValue
	inboundMaxPerOrg      int64
	referralsMaxBytes     sizeValue
	referralsMaxAge       time.Duration
	deliveryMaxBytes      sizeValue
	deliveryMaxPerSubject int64
	timersMaxBytes        sizeValue
	dlqMaxBytes           sizeValue
	dlqMaxAge             time.Duration
	directoryMaxBytes     sizeValue
	tokensMaxBytes        sizeValue
	webhooksMaxBytes      sizeValue
	natsMaxStore          sizeValue
	storeMinFree          sizeValue
	replicas              int
	hubCountry            string
	hubSources            []string
	hubDirectory          string
	hubDomainWait         time.Duration
}

// addFlags registers the flags on fs with natsjs's defaults.
func (o *limitOptions) addFlags(fs *pflag.FlagSet) {
	size := func(v *sizeValue, def int64, name, usage string) {
		*v = sizeValue(def)
		fs.Var(v, name, usage+` (bytes, or with KiB, MiB, GiB, TiB; "unlimited" for none)`)
	}
	size(&o.inboundMaxBytes, natsjs.InboundMaxBytesDefault, "inbound-max-bytes", "bound on INBOUND, the commands not yet processed; when full a command is refused")
	fs.Int64Var(&o.inboundMaxPerOrg, "inbound-max-per-org", natsjs.InboundMaxPerOrgDefault, "commands of one organisation waiting in INBOUND; beyond it that organisation's commands are refused (-1: none)")
	size(&o.referralsMaxBytes, natsjs.ReferralsMaxBytesDefault, "referrals-max-bytes", "bound on REFERRALS, the event log; when full new events are refused")
	fs.DurationVar(&o.referralsMaxAge, "referrals-max-age", 0, "how long REFERRALS keeps events, by retention policy; 0 keeps them until erased")
	size(&o.deliveryMaxBytes, natsjs.DeliveryMaxBytesDefault, "delivery-max-bytes", "bound on DELIVERY; when full deliveries are refused and retried")
	fs.Int64Var(&o.deliveryMaxPerSubject, "delivery-max-per-subject", natsjs.DeliveryMaxPerSubjectDefault, "messages kept for one organisation about one referral, and rejections kept for one organisation (-1: none)")
	size(&o.timersMaxBytes, natsjs.TimersMaxBytesDefault, "timers-max-bytes", "bound on TIMERS, the live deadlines")
	size(&o.dlqMaxBytes, natsjs.DLQMaxBytesDefault, "dlq-max-bytes", "bound on DLQ; when full its oldest copies go")
	fs.DurationVar(&o.dlqMaxAge, "dlq-max-age", natsjs.DLQMaxAgeDefault, "how long DLQ keeps a copy; 0 keeps it until DLQ is full")
	size(&o.directoryMaxBytes, natsjs.DirectoryMaxBytesDefault, "directory-max-bytes", "bound on the directory bucket")
	size(&o.tokensMaxBytes, natsjs.TokensMaxBytesDefault, "tokens-max-bytes", "bound on the tokens bucket")
	size(&o.webhooksMaxBytes, natsjs.WebhooksMaxBytesDefault, "webhooks-max-bytes", "bound on the webhooks bucket")
	fs.IntVar(&o.replicas, "nats-replicas", natsjs.ReplicasDefault, "replicas of every stream and bucket: 1 on one server, 3 (or 5) on a cluster (--nats-url); existing streams are scaled to it at start")
	fs.StringVar(&o.hubCountry, "hub-country", "", "on a country hub (deploy/nats/hub.conf): its country, lower case (pt)")
	fs.StringSliceVar(&o.hubSources, "hub-sources", nil, "on a country hub: the JetStream domains of the other hubs whose deliveries to --hub-country's organisations DELIVERY sources (comma-separated)")
	fs.StringVar(&o.hubDirectory, "hub-directory", "", "on a country hub: the JetStream domain of the hub that keeps the shared directory; this hub's directory sources it")
	fs.DurationVar(&o.hubDomainWait, "hub-domain-wait", hubDomainWaitDefault, "on a country hub: how long serve tries, at start, the JetStream of each domain of --hub-sources and --hub-directory before it refuses to start")
	size(&o.natsMaxStore, 0, "nats-max-store", "bound on the embedded server's JetStream store; 0 is three quarters of the disk's free space at start; the bounds above are reserved from it")
	size(&o.storeMinFree, natsjs.MinFreeDefault, "store-min-free", "free space the data directory's disk must keep; below it the node is not ready")
}

// streams returns the streams' configuration.
func (o *limitOptions) streams() natsjs.StreamsConfig {
	age := func(d time.Duration) time.Duration {
		if d == 0 {
			return -1 // none
		}
		return d
	}
	perSubject := func(n int64) int64 {
		if n <= 0 {
			return natsjs.Unlimited
		}
		return n
	}
	return natsjs.StreamsConfig{
		Replicas:          o.replicas,
		Inbound:           natsjs.StreamLimits{MaxBytes: int64(o.inboundMaxBytes), MaxMsgsPerSubject: perSubject(o.inboundMaxPerOrg)},
		Referrals:         natsjs.StreamLimits{MaxBytes: int64(o.referralsMaxBytes), MaxAge: age(o.referralsMaxAge)},
		Delivery:          natsjs.StreamLimits{MaxBytes: int64(o.deliveryMaxBytes), MaxMsgsPerSubject: perSubject(o.deliveryMaxPerSubject)},
		Timers:            natsjs.StreamLimits{MaxBytes: int64(o.timersMaxBytes)},
		DLQ:               natsjs.StreamLimits{MaxBytes: int64(o.dlqMaxBytes), MaxAge: age(o.dlqMaxAge)},
		DirectoryMaxBytes: int64(o.directoryMaxBytes),
		TokensMaxBytes:    int64(o.tokensMaxBytes),
		WebhooksMaxBytes:  int64(o.webhooksMaxBytes),
		Country:           o.hubCountry,
		CrossBorderFrom:   o.hubSources,
		DirectoryFrom:     o.hubDirectory,
	}
}

// validate checks the limits; natsjs names the field, this names the flag.
func (o *limitOptions) validate() error {
	for _, f := range []struct {
		name string
		v    sizeValue
	}{
		{"inbound-max-bytes", o.inboundMaxBytes}, {"referrals-max-bytes", o.referralsMaxBytes},
		{"delivery-max-bytes", o.deliveryMaxBytes}, {"timers-max-bytes", o.timersMaxBytes},
		{"dlq-max-bytes", o.dlqMaxBytes}, {"directory-max-bytes", o.directoryMaxBytes},
		{"tokens-max-bytes", o.tokensMaxBytes}, {"webhooks-max-bytes", o.webhooksMaxBytes},
	} {
		if f.v == 0 {
			return usageError{fmt.Errorf("--%s 0: want a size, or unlimited", f.name)}
		}
	}
	if o.natsMaxStore < 0 || o.storeMinFree < 0 {
		return usageError{fmt.Errorf("--nats-max-store and --store-min-free take a size, not unlimited")}
	}
	if o.hubDomainWait <= 0 {
		return usageError{fmt.Errorf("--hub-domain-wait %s: want a duration above 0, such as 1m", o.hubDomainWait)}
	}
	if err := o.streams().WithDefaults().Validate(); err != nil {
		return usageError{err}
	}
	return nil
}

// sizeValue is a flag holding a number of bytes: 1048576, 512KiB, 1.5GiB,
// or unlimited (-1).
type sizeValue int64

var sizeUnits = []struct {
	suffix string
	factor int64
}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}}

func (v *sizeValue) String() string {
	n := int64(*v)
	if n < 0 {
		return "unlimited"
	}
	for _, u := range sizeUnits {
		if n >= u.factor && n%u.factor == 0 {
			return strconv.FormatInt(n/u.factor, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

func (v *sizeValue) Set(s string) error {
	s = strings.TrimSpace(s)
	if strings.EqualFold(s, "unlimited") {
		*v = natsjs.Unlimited
		return nil
	}
	factor := int64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(s, u.suffix) {
			s, factor = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.factor
			break
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 || f*float64(factor) > float64(1<<62) {
		return fmt.Errorf("want a size such as 1048576, 512KiB, 2GiB or unlimited")
	}
	*v = sizeValue(f * float64(factor))
	return nil
}

func (v *sizeValue) Type() string { return "size" }
