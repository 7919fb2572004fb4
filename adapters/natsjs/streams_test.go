package natsjs_test

import (
	"errors"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/invictus-network/invictus/adapters/natsjs"
	"github.com/invictus-network/invictus/internal/testenv"
)

func TestEnsureStreamsIdempotent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := testContext(t)

	for run := 1; run <= 2; run++ {
		if err := natsjs.EnsureStreams(ctx, b.js, natsjs.StreamsConfig{}); err != nil {
			t.Fatalf("EnsureStreams run %d: %v", run, err)
		}
	}

	type want struct {
		subject     string
		retention   jetstream.RetentionPolicy
		denyDelete  bool
		allowDirect bool
		schedules   bool
	}
	wants := map[string]want{
		natsjs.StreamInbound:   {"in.>", jetstream.WorkQueuePolicy, false, false, false},
		natsjs.StreamReferrals: {"referral.>", jetstream.LimitsPolicy, true, true, false},
		natsjs.StreamDelivery:  {"out.>", jetstream.LimitsPolicy, false, false, false},
		natsjs.StreamTimers:    {"timer.>", jetstream.LimitsPolicy, false, false, true},
		natsjs.StreamDLQ:       {"dlq.>", jetstream.LimitsPolicy, false, false, false},
	}
	for name, w := range wants {
		s, err := b.js.Stream(ctx, name)
		if err != nil {
			t.Errorf("stream %s: %v", name, err)
			continue
		}
		c := s.CachedInfo().Config
		if len(c.Subjects) != 1 || c.Subjects[0] != w.subject {
			t.Errorf("%s subjects = %v, want [%s]", name, c.Subjects, w.subject)
		}
		if c.Retention != w.retention {
			t.Errorf("%s retention = %v, want %v", name, c.Retention, w.retention)
		}
		if c.DenyDelete != w.denyDelete || c.DenyPurge {
			t.Errorf("%s DenyDelete = %v DenyPurge = %v, want %v false", name, c.DenyDelete, c.DenyPurge, w.denyDelete)
		}
		if name == natsjs.StreamReferrals && c.AllowDirect != w.allowDirect {
			t.Errorf("%s AllowDirect = %v, want %v", name, c.AllowDirect, w.allowDirect)
		}
		if c.AllowMsgSchedules != w.schedules {
			t.Errorf("%s AllowMsgSchedules = %v, want %v", name, c.AllowMsgSchedules, w.schedules)
		}
		wantAge := time.Duration(0)
		if name == natsjs.StreamDLQ {
			wantAge = natsjs.DLQMaxAgeDefault
		}
		if c.Duplicates != natsjs.DuplicatesDefault || c.Replicas != 1 || c.Storage != jetstream.FileStorage || c.MaxAge != wantAge {
			t.Errorf("%s Duplicates %s Replicas %d Storage %v MaxAge %s; want %s 1 file %s",
				name, c.Duplicates, c.Replicas, c.Storage, c.MaxAge, natsjs.DuplicatesDefault, wantAge)
		}
	}

	kv, err := b.js.KeyValue(ctx, natsjs.BucketDirectory)
	if err != nil {
		t.Fatalf("bucket %s: %v", natsjs.BucketDirectory, err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.History() != natsjs.DirectoryHistoryDefault {
		t.Errorf("directory history = %d, want %d", st.History(), natsjs.DirectoryHistoryDefault)
	}

	// Nothing else was created: five streams plus the bucket's own stream.
	var names []string
	lister := b.js.StreamNames(ctx)
	for n := range lister.Name() {
		names = append(names, n)
	}
	if err := lister.Err(); err != nil {
		t.Fatal(err)
	}
	if len(names) != 6 {
		t.Errorf("streams = %v, want the five streams and KV_directory", names)
	}
}

func TestEnsureStreamsUpdatesConfig(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := testContext(t)
	if err := natsjs.EnsureStreams(ctx, b.js, natsjs.StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	changed := natsjs.StreamsConfig{Duplicates: 5 * time.Minute, Referrals: natsjs.StreamLimits{MaxAge: 30 * 24 * time.Hour}, DirectoryHistory: 32}
	if err := natsjs.EnsureStreams(ctx, b.js, changed); err != nil {
		t.Fatalf("EnsureStreams with a new config: %v", err)
	}
	s, err := b.js.Stream(ctx, natsjs.StreamReferrals)
	if err != nil {
		t.Fatal(err)
	}
	if c := s.CachedInfo().Config; c.Duplicates != changed.Duplicates || c.MaxAge != changed.Referrals.MaxAge {
		t.Errorf("REFERRALS Duplicates %s MaxAge %s, want %s %s", c.Duplicates, c.MaxAge, changed.Duplicates, changed.Referrals.MaxAge)
	}
	kv, err := b.js.KeyValue(ctx, natsjs.BucketDirectory)
	if err != nil {
		t.Fatal(err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.History() != 32 {
		t.Errorf("directory history = %d, want 32", st.History())
	}
}

func TestEnsureStreamsNamesTheRefusedStream(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := testContext(t)
	// An INBOUND made by hand with limits retention: JetStream does not
	// allow changing retention, so EnsureStreams must fail and say where.
	if _, err := b.js.CreateStream(ctx, jetstream.StreamConfig{Name: natsjs.StreamInbound, Subjects: []string{"in.>"}}); err != nil {
		t.Fatal(err)
	}
	err := natsjs.EnsureStreams(ctx, b.js, natsjs.StreamsConfig{})
	if err == nil || !strings.Contains(err.Error(), "stream "+natsjs.StreamInbound) {
		t.Fatalf("EnsureStreams over an incompatible INBOUND: err = %v, want one naming INBOUND", err)
	}
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		t.Errorf("err = %v, want it to wrap the JetStream API error", err)
	}
}

func TestEnsureStreamsRejectsInvalidConfig(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := testContext(t)
	tests := []struct {
		cfg   natsjs.StreamsConfig
		field string
	}{
		{natsjs.StreamsConfig{Replicas: 6}, "Replicas"},
		{natsjs.StreamsConfig{Replicas: -1}, "Replicas"},
		{natsjs.StreamsConfig{Duplicates: -time.Second}, "Duplicates"},
		{natsjs.StreamsConfig{Referrals: natsjs.StreamLimits{MaxAge: time.Minute}}, "Referrals.MaxAge"},
		{natsjs.StreamsConfig{DLQ: natsjs.StreamLimits{MaxAge: time.Second}}, "DLQ.MaxAge"},
		{natsjs.StreamsConfig{Timers: natsjs.StreamLimits{MaxAge: time.Hour}}, "Timers.MaxAge"},
		{natsjs.StreamsConfig{Inbound: natsjs.StreamLimits{MaxBytes: -2}}, "Inbound.MaxBytes"},
		{natsjs.StreamsConfig{Delivery: natsjs.StreamLimits{MaxMsgsPerSubject: -5}}, "Delivery.MaxMsgsPerSubject"},
		{natsjs.StreamsConfig{DLQ: natsjs.StreamLimits{MaxConsumers: -3}}, "DLQ.MaxConsumers"},
		{natsjs.StreamsConfig{WebhooksMaxBytes: -9}, "WebhooksMaxBytes"},
		{natsjs.StreamsConfig{DirectoryHistory: 65}, "DirectoryHistory"},
	}
	for _, tt := range tests {
		err := natsjs.EnsureStreams(ctx, b.js, tt.cfg)
		if err == nil || !strings.Contains(err.Error(), tt.field) {
			t.Errorf("EnsureStreams(%+v) = %v, want an error naming %s", tt.cfg, err, tt.field)
		}
	}
	if _, err := b.js.Stream(ctx, natsjs.StreamInbound); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("an invalid config created streams: Stream(INBOUND) err = %v", err)
	}
}

func TestStreamsBehave(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := testContext(t)
	if err := natsjs.EnsureStreams(ctx, b.js, natsjs.StreamsConfig{}); err != nil {
		t.Fatal(err)
	}

	t.Run("a command re-sent with the same id is stored once", func(t *testing.T) {
		for i := range 2 {
			ack, err := b.js.Publish(ctx, "in.pt.apav", []byte("{}"), jetstream.WithMsgID("0190b1a4-0000-7000-8000-000000000001"))
			if err != nil {
				t.Fatal(err)
			}
			if ack.Duplicate != (i == 1) {
				t.Errorf("publish %d: Duplicate = %v", i+1, ack.Duplicate)
			}
		}
		s, err := b.js.Stream(ctx, natsjs.StreamInbound)
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.State.Msgs != 1 {
			t.Errorf("INBOUND holds %d messages, want 1", info.State.Msgs)
		}
	})

	t.Run("referral events cannot be deleted but a referral can be purged", func(t *testing.T) {
		ack, err := b.js.Publish(ctx, "referral.pt.r1", []byte("{}"))
		if err != nil {
			t.Fatal(err)
		}
		s, err := b.js.Stream(ctx, natsjs.StreamReferrals)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteMsg(ctx, ack.Sequence); err == nil {
			t.Error("DeleteMsg on REFERRALS succeeded, want it refused")
		}
		if err := s.Purge(ctx, jetstream.WithPurgeSubject("referral.pt.r1")); err != nil {
			t.Fatalf("purge a referral's subject: %v", err)
		}
		if _, err := s.GetLastMsgForSubject(ctx, "referral.pt.r1"); !errors.Is(err, jetstream.ErrMsgNotFound) {
			t.Errorf("after purge: err = %v, want ErrMsgNotFound", err)
		}
	})

	t.Run("a scheduled timer fires to timer.fire", func(t *testing.T) {
		msg := nats.NewMsg("timer.r1.p1")
		msg.Header.Set("Nats-Schedule", "@at "+time.Now().UTC().Format(time.RFC3339))
		msg.Header.Set("Nats-Schedule-Target", "timer.fire.r1.p1")
		if _, err := b.js.PublishMsg(ctx, msg); err != nil {
			t.Fatalf("publish a scheduled message: %v", err)
		}
		s, err := b.js.Stream(ctx, natsjs.StreamTimers)
		if err != nil {
			t.Fatal(err)
		}
		testenv.Await(t, "the scheduled message to fire", func() bool {
			_, err := s.GetLastMsgForSubject(ctx, "timer.fire.r1.p1")
			if err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
				t.Fatalf("scheduled message: %v", err)
			}
			return err == nil
		})
	})
}

func TestStreamsConfigWithDefaults(t *testing.T) {
	t.Parallel()
	got := natsjs.StreamsConfig{}.WithDefaults()
	want := natsjs.StreamsConfig{
		Replicas:           natsjs.ReplicasDefault,
		Duplicates:         natsjs.DuplicatesDefault,
		DirectoryHistory:   natsjs.DirectoryHistoryDefault,
		Inbound:            natsjs.StreamLimits{MaxBytes: natsjs.InboundMaxBytesDefault, MaxAge: -1, MaxMsgsPerSubject: natsjs.InboundMaxPerOrgDefault, MaxConsumers: natsjs.MaxConsumersDefault},
		Referrals:          natsjs.StreamLimits{MaxBytes: natsjs.ReferralsMaxBytesDefault, MaxAge: -1, MaxMsgsPerSubject: natsjs.Unlimited, MaxConsumers: natsjs.ReferralsMaxConsumersDefault},
		Delivery:           natsjs.StreamLimits{MaxBytes: natsjs.DeliveryMaxBytesDefault, MaxAge: -1, MaxMsgsPerSubject: natsjs.DeliveryMaxPerSubjectDefault, MaxConsumers: natsjs.DeliveryMaxConsumersDefault},
		Timers:             natsjs.StreamLimits{MaxBytes: natsjs.TimersMaxBytesDefault, MaxAge: -1, MaxMsgsPerSubject: natsjs.Unlimited, MaxConsumers: natsjs.MaxConsumersDefault},
		DLQ:                natsjs.StreamLimits{MaxBytes: natsjs.DLQMaxBytesDefault, MaxAge: natsjs.DLQMaxAgeDefault, MaxMsgsPerSubject: natsjs.Unlimited, MaxConsumers: natsjs.MaxConsumersDefault},
		DirectoryMaxBytes:  natsjs.DirectoryMaxBytesDefault,
		TokensMaxBytes:     natsjs.TokensMaxBytesDefault,
		WebhooksMaxBytes:   natsjs.WebhooksMaxBytesDefault,
		EmailMaxBytes:      natsjs.EmailMaxBytesDefault,
		EmailMarksMaxBytes: natsjs.EmailMarksMaxBytesDefault,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("WithDefaults() = %+v, want %+v", got, want)
	}
	three := natsjs.StreamsConfig{Replicas: 3}
	for _, sc := range natsjs.StreamConfigs(three) {
		if sc.Replicas != 3 {
			t.Errorf("%s replicas = %d, want 3", sc.Name, sc.Replicas)
		}
	}
	if natsjs.DirectoryBucketConfig(three).Replicas != 3 {
		t.Error("directory bucket does not follow Replicas")
	}
}

// TestStreamsAreBounded shows every stream and bucket bounded, and what
// each does at its bound: INBOUND refuses one organisation's next command
// once it has its limit waiting while another organisation still
// publishes; REFERRALS refuses an append once full and keeps every event
// it had; DLQ drops its oldest copy.
func TestStreamsAreBounded(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := testContext(t)
	cfg := natsjs.StreamsConfig{
		Inbound:   natsjs.StreamLimits{MaxMsgsPerSubject: 3},
		Referrals: natsjs.StreamLimits{MaxBytes: 4 << 10},
		DLQ:       natsjs.StreamLimits{MaxBytes: 2 << 10},
	}
	if err := natsjs.EnsureStreams(ctx, b.js, cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := natsjs.NewHTTPPorts(ctx, b.nc, cfg); err != nil {
		t.Fatal(err)
	}
	cfg.EmailMaxBytes, cfg.EmailMarksMaxBytes = 4<<10, 8<<10
	state, marks, err := natsjs.EnsureEmailBuckets(ctx, b.js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := natsjs.NewConsoleStores(ctx, b.nc, cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := natsjs.EnsureLease(ctx, b.js, cfg, natsjs.LeaseConfig{Name: "test"}); err != nil {
		t.Fatal(err)
	}
	names := b.js.StreamNames(ctx)
	n := 0
	for name := range names.Name() {
		n++
		if !slices.Contains(natsjs.StoreStreams, name) {
			t.Errorf("%s is not in StoreStreams: no usage, gauge or readiness check follows it", name)
		}
		s, err := b.js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		c := s.CachedInfo().Config
		if c.MaxBytes <= 0 {
			t.Errorf("%s MaxBytes = %d, want a bound", name, c.MaxBytes)
		}
		if name != natsjs.StreamDLQ && name != natsjs.StreamTimers && c.Discard != jetstream.DiscardNew {
			t.Errorf("%s discards %v, want DiscardNew", name, c.Discard)
		}
	}
	if n != 15 {
		t.Errorf("%d streams, want the five and ten buckets (directory, tokens, webhooks, keys, email, email_marks, accounts, sessions, audit, leases)", n)
	}
	usage, err := natsjs.ReadStreamUsage(ctx, b.js)
	if err != nil {
		t.Fatal(err)
	}
	bounds := map[string]int64{}
	for _, u := range usage {
		bounds[u.Stream] = u.MaxBytes
	}
	if bounds["KV_email"] != 4<<10 || bounds["KV_email_marks"] != 8<<10 {
		t.Errorf("the usage (and metrics) of the e-mail buckets: bounds %v", bounds)
	}

	t.Run("a full e-mail bucket refuses the write", func(t *testing.T) {
		for _, st := range []*natsjs.RevStore{state, marks} {
			var refused error
			for i := range 100 {
				if _, err := st.Create(ctx, "k"+strconv.Itoa(i), make([]byte, 500)); err != nil {
					refused = err
					break
				}
			}
			if refused == nil {
				t.Error("100 × 500 bytes stored in an e-mail bucket of at most 8 KiB")
			}
		}
	})

	t.Run("INBOUND refuses one organisation's command beyond its limit", func(t *testing.T) {
		for i := range 3 {
			if _, err := b.js.Publish(ctx, "in.pt.apav", []byte("{}")); err != nil {
				t.Fatalf("command %d: %v", i+1, err)
			}
		}
		if _, err := b.js.Publish(ctx, "in.pt.apav", []byte("{}")); err == nil {
			t.Error("a 4th waiting command of pt.apav was stored, want it refused")
		}
		if _, err := b.js.Publish(ctx, "in.fi.riku", []byte("{}")); err != nil {
			t.Errorf("fi.riku refused while pt.apav is at its limit: %v", err)
		}
	})

	t.Run("a full REFERRALS refuses and keeps what it has", func(t *testing.T) {
		var stored uint64
		var refused error
		for i := range 100 {
			_, err := b.js.Publish(ctx, "referral.pt.r"+strconv.Itoa(i), make([]byte, 500))
			if err != nil {
				refused = err
				break
			}
			stored++
		}
		if refused == nil {
			t.Fatal("100 × 500 bytes stored in a 4 KiB REFERRALS")
		}
		s, err := b.js.Stream(ctx, natsjs.StreamReferrals)
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.State.Msgs != stored || info.State.FirstSeq != 1 {
			t.Errorf("REFERRALS holds %d messages from %d, want the %d stored from 1", info.State.Msgs, info.State.FirstSeq, stored)
		}
	})

	t.Run("a full DLQ drops its oldest copies", func(t *testing.T) {
		for i := range 20 {
			if _, err := b.js.Publish(ctx, "dlq.invalid", make([]byte, 500)); err != nil {
				t.Fatalf("DLQ copy %d refused: %v", i+1, err)
			}
		}
		s, err := b.js.Stream(ctx, natsjs.StreamDLQ)
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.State.Bytes > 2<<10 || info.State.LastSeq != 20 || info.State.FirstSeq == 1 {
			t.Errorf("DLQ state %+v, want at most 2 KiB ending at 20", info.State)
		}
	})
}

// TestCrossBorderSources: a country hub's DELIVERY sources, from each
// other hub's domain, only the deliveries to its own country, and its
// INBOUND only the commands for it in their CROSSBORDER; without a
// country, or with a domain that is not a name, the config is refused
// naming the field.
func TestCrossBorderSources(t *testing.T) {
	cfg := natsjs.StreamsConfig{Country: "fi", CrossBorderFrom: []string{"pt", "nl"}}
	if err := cfg.WithDefaults().Validate(); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, sc := range natsjs.StreamConfigs(cfg) {
		names = append(names, sc.Name)
		switch sc.Name {
		case natsjs.StreamDelivery:
			if len(sc.Sources) != 2 || sc.Sources[0].Domain != "pt" || sc.Sources[1].Domain != "nl" ||
				sc.Sources[0].FilterSubject != "out.fi.>" || sc.Sources[1].FilterSubject != "out.fi.>" {
				t.Errorf("DELIVERY sources %+v", sc.Sources)
			}
		case natsjs.StreamInbound:
			// The other hubs' organisations' answers to fi's offers, and
			// nothing else of their CROSSBORDER, as in.<org>.
			for i, d := range []string{"pt", "nl"} {
				if len(sc.Sources) != 2 || sc.Sources[i].Name != natsjs.StreamCrossBorder || sc.Sources[i].Domain != d ||
					len(sc.Sources[i].SubjectTransforms) != 1 || sc.Sources[i].SubjectTransforms[0].Source != "xb.fi.*.*" ||
					sc.Sources[i].SubjectTransforms[0].Destination != "in.{{wildcard(1)}}.{{wildcard(2)}}" {
					t.Errorf("INBOUND sources %+v", sc.Sources)
					break
				}
			}
		default:
			if len(sc.Sources) != 0 {
				t.Errorf("%s sources %+v", sc.Name, sc.Sources)
			}
		}
	}
	if names[len(names)-1] != natsjs.StreamCrossBorder {
		t.Errorf("a hub's streams %v, want CROSSBORDER last", names)
	}
	if plain := natsjs.StreamConfigs(natsjs.StreamsConfig{}); len(plain) != 5 {
		t.Errorf("a node that is no hub has %d streams, want 5", len(plain))
	}
	// The shared directory: the bucket sources the keeping hub's.
	if src := natsjs.DirectoryBucketConfig(natsjs.StreamsConfig{DirectoryFrom: "pt"}).Sources; len(src) != 1 ||
		src[0].Name != natsjs.BucketDirectory || src[0].Domain != "pt" {
		t.Errorf("directory sources %+v", src)
	}
	if src := natsjs.DirectoryBucketConfig(natsjs.StreamsConfig{}).Sources; len(src) != 0 {
		t.Errorf("a node's own directory sources %+v", src)
	}
	for _, bad := range []natsjs.StreamsConfig{
		{CrossBorderFrom: []string{"pt"}},
		{Country: "FI", CrossBorderFrom: []string{"pt"}},
		{Country: "fi", CrossBorderFrom: []string{"p.t"}},
		{Country: "fi", CrossBorderFrom: []string{""}},
		{DirectoryFrom: "p.t"},
	} {
		err := bad.WithDefaults().Validate()
		if err == nil || !strings.Contains(err.Error(), "StreamsConfig.C") && !strings.Contains(err.Error(), "StreamsConfig.DirectoryFrom") {
			t.Errorf("%+v: %v, want an error naming Country, CrossBorderFrom or DirectoryFrom", bad, err)
		}
	}
}
