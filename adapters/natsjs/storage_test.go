package natsjs_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/invictus-network/invictus/adapters/natsjs"
	"github.com/invictus-network/invictus/internal/testenv"
)

// smallLimits bounds every stream and bucket to 1 MiB (8 MiB reserved in
// all), so that a test server with a small store can hold them.
var smallLimits = natsjs.StreamsConfig{
	Inbound:           natsjs.StreamLimits{MaxBytes: 1 << 20},
	Referrals:         natsjs.StreamLimits{MaxBytes: 1 << 20},
	Delivery:          natsjs.StreamLimits{MaxBytes: 1 << 20},
	Timers:            natsjs.StreamLimits{MaxBytes: 1 << 20},
	DLQ:               natsjs.StreamLimits{MaxBytes: 1 << 20},
	DirectoryMaxBytes: 1 << 20,
	TokensMaxBytes:    1 << 20,
	WebhooksMaxBytes:  1 << 20,
}

// TestStorageCheckFollowsAFullStream fills REFERRALS until it refuses an
// append: the check fails naming it, and passes again by itself once a
// referral is erased (its subject purged).
func TestStorageCheckFollowsAFullStream(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := testContext(t)
	cfg := smallLimits
	cfg.Referrals.MaxBytes = 64 << 10
	if err := natsjs.EnsureStreams(ctx, b.js, cfg); err != nil {
		t.Fatal(err)
	}
	check := natsjs.StorageCheck(b.js)
	if err := check(ctx); err != nil {
		t.Fatalf("empty store: %v", err)
	}
	refused := 0
	for i := 0; refused == 0; i++ {
		if i == 1000 {
			t.Fatal("1000 × 1 KiB appended to a 64 KiB REFERRALS")
		}
		if _, err := b.js.Publish(ctx, "referral.pt.r"+strconv.Itoa(i%8), make([]byte, 1024)); err != nil {
			refused++
		}
	}
	err := check(ctx)
	if err == nil || !strings.Contains(err.Error(), "stream REFERRALS is full") {
		t.Fatalf("check with REFERRALS full = %v, want it named full", err)
	}
	s, err := b.js.Stream(ctx, natsjs.StreamReferrals)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{"r0", "r1", "r2"} {
		if err := s.Purge(ctx, jetstream.WithPurgeSubject("referral.pt."+r)); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Await(t, "the check to pass once referrals are erased", func() bool { return check(ctx) == nil })
	if _, err := b.js.Publish(ctx, "referral.pt.r9", make([]byte, 1024)); err != nil {
		t.Errorf("append after the erasure: %v", err)
	}
}

// TestServerStorageCheckFollowsTheStore gives the server a 16 MiB store
// and fills it through a stream without bounds (another application's
// on a shared server): JetStream refuses INVICTUS's appends with
// insufficient resources, the server's check fails, and it passes again
// by itself once that stream is deleted.
func TestServerStorageCheckFollowsTheStore(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	srv, err := natsjs.StartServer(ctx, natsjs.ServerConfig{StoreDir: t.TempDir(), DontListen: true, MaxStore: 16 << 20, MinFree: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shutdown(t, srv) })
	nc, err := srv.Connect(ctx, nats.Name("test"))
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if err := natsjs.EnsureStreams(ctx, js, natsjs.StreamsConfig{}); err == nil {
		t.Error("the default bounds (over 4 GiB) were reserved in a 16 MiB store")
	}
	if err := natsjs.EnsureStreams(ctx, js, smallLimits); err != nil {
		t.Fatal(err)
	}
	check := srv.StorageCheck()
	if err := check(ctx); err != nil {
		t.Fatalf("empty store: %v", err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "OTHER", Subjects: []string{"other.>"}}); err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 256<<10)
	for i := 0; ; i++ {
		if i == 200 {
			t.Fatal("50 MiB stored in a 16 MiB store")
		}
		if _, err := js.Publish(ctx, "other.x", chunk); err != nil {
			break
		}
	}
	_, err = js.Publish(ctx, "referral.pt.r1", []byte("{}"))
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode != 10023 /* JSInsufficientResourcesErr */ {
		t.Errorf("append to a full store: %v, want insufficient resources", err)
	}
	err = check(ctx)
	if err == nil || !strings.Contains(err.Error(), "JetStream store is full") {
		t.Fatalf("check with the store full = %v", err)
	}
	if err := js.DeleteStream(ctx, "OTHER"); err != nil {
		t.Fatal(err)
	}
	testenv.Await(t, "the check to pass once space returns", func() bool { return check(ctx) == nil })
	if _, err := js.Publish(ctx, "referral.pt.r1", []byte("{}")); err != nil {
		t.Errorf("append once space returned: %v", err)
	}
}

func TestServerStorageCheckWantsFreeDisk(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	srv, err := natsjs.StartServer(ctx, natsjs.ServerConfig{StoreDir: t.TempDir(), DontListen: true, MinFree: 1 << 60}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shutdown(t, srv) })
	err = srv.StorageCheck()(ctx)
	if err == nil || !strings.Contains(err.Error(), "less than --store-min-free") {
		t.Errorf("check wanting 1 EiB free = %v", err)
	}
}

// TestStorageCollector shows every stream's usage and bounds as gauges.
func TestStorageCollector(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := testContext(t)
	if err := natsjs.EnsureStreams(ctx, b.js, natsjs.StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.js.Publish(ctx, "dlq.invalid", []byte("junk")); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(natsjs.NewStorageCollector(b.js, b.srv))
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			key := f.GetName()
			for _, l := range m.GetLabel() {
				key += " " + l.GetValue()
			}
			got[key] = m.GetGauge().GetValue()
		}
	}
	for key, want := range map[string]float64{
		"invictus_stream_max_bytes REFERRALS":          float64(natsjs.ReferralsMaxBytesDefault),
		"invictus_stream_max_bytes DLQ":                float64(natsjs.DLQMaxBytesDefault),
		"invictus_stream_max_bytes KV_directory":       float64(natsjs.DirectoryMaxBytesDefault),
		"invictus_stream_max_msgs_per_subject INBOUND": float64(natsjs.InboundMaxPerOrgDefault),
		"invictus_stream_max_age_seconds DLQ":          natsjs.DLQMaxAgeDefault.Seconds(),
		"invictus_stream_max_consumers DELIVERY":       natsjs.DeliveryMaxConsumersDefault,
		"invictus_stream_messages DLQ":                 1,
		"invictus_stream_messages REFERRALS":           0,
	} {
		if v, ok := got[key]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", key, v, ok, want)
		}
	}
	if got["invictus_stream_bytes DLQ"] <= 0 {
		t.Error("invictus_stream_bytes of DLQ is not above 0")
	}
	_, hasMax := got["invictus_jetstream_store_max_bytes"]
	_, hasFree := got["invictus_store_disk_free_bytes"]
	if !hasMax || !hasFree {
		t.Errorf("store gauges missing: max %v free %v", hasMax, hasFree)
	}
}
