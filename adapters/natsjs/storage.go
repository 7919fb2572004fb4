package natsjs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// Storage: how full the streams, the JetStream store and the disk under
// it are. [StorageCheck] and [Server.StorageCheck] are readiness checks
// that fail while something is full and pass again, by themselves, once
// space returns; [StorageCollector] exposes the same figures to
// Prometheus.

// Storage limits.
const (
	// MinFreeDefault is the free space the embedded store's file system
	// must keep (ServerConfig.MinFree): below it the node is not ready,
	// before the disk is so full that JetStream stops.
	MinFreeDefault int64 = 256 << 20
	// FullFraction is the share of a bound at which a stream or the
	// store counts as full for the readiness checks: a little before a
	// publish would be refused.
	FullFraction = 0.9
	// storageTimeout bounds one storage read when the context has no
	// earlier deadline.
	storageTimeout = 2 * time.Second
)

// StoreStreams are the streams of INVICTUS, the buckets' included, in the
// order [ReadStreamUsage] reports them. The e-mail buckets exist only
// where the e-mail channel runs; the console's, the keys' and the leases'
// only once serve has made them.
var StoreStreams = []string{
	StreamInbound, StreamReferrals, StreamDelivery, StreamTimers, StreamDLQ,
	"KV_" + BucketDirectory, "KV_" + BucketTokens, "KV_" + BucketWebhooks,
	"KV_" + BucketEmail, "KV_" + BucketEmailMarks, "KV_" + BucketKeys,
	"KV_" + BucketAccounts, "KV_" + BucketSessions, "KV_" + BucketAudit,
	"KV_" + BucketLeases,
}

// StreamUsage is one stream's use of its bounds. A bound of -1 is none.
type StreamUsage struct {
	Stream            string
	Msgs, Bytes       uint64
	Consumers         int
	MaxBytes          int64
	MaxMsgsPerSubject int64
	MaxAge            time.Duration
	MaxConsumers      int
	// DiscardOld is true when the stream drops its oldest messages at
	// its bound (DLQ, TIMERS) instead of refusing new ones.
	DiscardOld bool
}

// full reports whether u has reached FullFraction of its MaxBytes.
func (u StreamUsage) full() bool {
	return u.MaxBytes > 0 && float64(u.Bytes) >= FullFraction*float64(u.MaxBytes)
}

// ReadStreamUsage returns the usage of each of [StoreStreams] that exists.
// Errors wrap the client's.
func ReadStreamUsage(ctx context.Context, js jetstream.JetStream) ([]StreamUsage, error) {
	ctx, cancel := context.WithTimeout(ctx, storageTimeout)
	defer cancel()
	var out []StreamUsage
	for _, name := range StoreStreams {
		s, err := js.Stream(ctx, name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("natsjs: stream %s: %w", name, err)
		}
		info := s.CachedInfo()
		c := info.Config
		out = append(out, StreamUsage{
			Stream: name, Msgs: info.State.Msgs, Bytes: info.State.Bytes, Consumers: info.State.Consumers,
			MaxBytes: c.MaxBytes, MaxMsgsPerSubject: c.MaxMsgsPerSubject, MaxAge: c.MaxAge, MaxConsumers: c.MaxConsumers,
			DiscardOld: c.Discard == jetstream.DiscardOld,
		})
	}
	return out, nil
}

// StorageCheck returns a readiness check that fails while JetStream does
// not answer, while a stream other than DLQ (which churns at its bound by
// design) has reached [FullFraction] of its MaxBytes, or while the
// account has reached that share of its store limit. The error says what
// is full and what to do.
func StorageCheck(js jetstream.JetStream) func(context.Context) error {
	return func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, storageTimeout)
		defer cancel()
		acc, err := js.AccountInfo(ctx)
		if err != nil {
			return fmt.Errorf("natsjs: jetstream: %w", err)
		}
		if max := acc.Limits.MaxStore; max > 0 && float64(acc.Store) >= FullFraction*float64(max) {
			return fmt.Errorf("the account's JetStream store is full: %s of %s; free space on the NATS servers or raise the account's limit",
				sizeText(int64(acc.Store)), sizeText(max)) //nolint:gosec // store sizes fit
		}
		usage, err := ReadStreamUsage(ctx, js)
		if err != nil {
			return err
		}
		var full []error
		for _, u := range usage {
			if u.Stream != StreamDLQ && u.full() {
				full = append(full, fmt.Errorf("stream %s is full: %s of %s", u.Stream, sizeText(int64(u.Bytes)), sizeText(u.MaxBytes))) //nolint:gosec // stream sizes fit
			}
		}
		if len(full) > 0 {
			return fmt.Errorf("%w; raise its bound (see the limits table of the README) or erase what is no longer needed", errors.Join(full...))
		}
		return nil
	}
}

// StoreUsage is the embedded server's use of its store.
type StoreUsage struct {
	// Disabled is true when JetStream has stopped: the server stops it
	// when a write fails for want of disk space.
	Disabled bool
	// Used and Max are the bytes JetStream stores and may store.
	Used, Max int64
	// Reserved is the sum of the streams' MaxBytes, taken from Max.
	Reserved int64
	// Free is the file system's free space, MinFree what it must keep;
	// Free is -1 where it cannot be measured.
	Free, MinFree int64
}

// StoreUsage returns how full the server's store and its disk are.
func (s *Server) StoreUsage() (StoreUsage, error) {
	u := StoreUsage{MinFree: s.cfg.MinFree, Free: -1}
	if free, err := freeSpace(s.cfg.StoreDir); err == nil {
		u.Free = free
	}
	jsz, err := s.ns.Jsz(&server.JSzOptions{})
	if err != nil {
		return u, fmt.Errorf("natsjs: jetstream usage: %w", err)
	}
	u.Disabled = jsz.Disabled || !s.ns.JetStreamEnabled()
	u.Used = int64(jsz.Store)             //nolint:gosec // store sizes fit
	u.Reserved = int64(jsz.ReservedStore) //nolint:gosec // store sizes fit
	u.Max = jsz.Config.MaxStore
	return u, nil
}

// StorageCheck returns a readiness check of the embedded server's store:
// it fails while JetStream is stopped, while the store holds
// [FullFraction] of its MaxStore, or while the file system has less than
// MinFree free; the error says which and what to do.
func (s *Server) StorageCheck() func(context.Context) error {
	return func(context.Context) error {
		u, err := s.StoreUsage()
		if err != nil {
			return err
		}
		switch {
		case u.Disabled:
			return errors.New("JetStream has stopped (the disk was full?): free space under the data directory and restart the node")
		case u.Max > 0 && float64(u.Used) >= FullFraction*float64(u.Max):
			return fmt.Errorf("the JetStream store is full: %s of %s; erase what is no longer needed or raise --nats-max-store", sizeText(u.Used), sizeText(u.Max))
		case u.Free >= 0 && u.Free < u.MinFree:
			return fmt.Errorf("the disk of the data directory has %s free, less than --store-min-free %s: free space on it", sizeText(u.Free), sizeText(u.MinFree))
		}
		return nil
	}
}

// sizeText writes n bytes for people: 512 B, 3.5 KiB, 2.0 GiB.
func sizeText(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// StorageCollector is a Prometheus collector of the streams' usage and
// bounds and, with an embedded server, of its store and disk. Each scrape
// reads them afresh; a failed read leaves the stream's figures out.
type StorageCollector struct {
	js  jetstream.JetStream
	srv *Server // nil with an external server

	msgs, bytes, maxBytes, consumers, maxConsumers, maxPerSubject, maxAge *prometheus.Desc
	storeUsed, storeMax, diskFree, diskMinFree                            *prometheus.Desc
}

// NewStorageCollector returns a collector reading js and, when srv is not
// nil, the embedded server's store.
func NewStorageCollector(js jetstream.JetStream, srv *Server) *StorageCollector {
	stream := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("invictus_stream_"+name, help, []string{"stream"}, nil)
	}
	plain := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("invictus_"+name, help, nil, nil)
	}
	return &StorageCollector{
		js: js, srv: srv,
		msgs:          stream("messages", "Messages held by each stream."),
		bytes:         stream("bytes", "Bytes held by each stream."),
		maxBytes:      stream("max_bytes", "Bound on each stream's bytes (-1: none)."),
		consumers:     stream("consumers", "Consumers of each stream."),
		maxConsumers:  stream("max_consumers", "Bound on each stream's consumers (-1: none)."),
		maxPerSubject: stream("max_msgs_per_subject", "Bound on the messages of one subject of each stream (-1: none)."),
		maxAge:        stream("max_age_seconds", "Age after which each stream drops a message (0: none)."),
		storeUsed:     plain("jetstream_store_bytes", "Bytes in the embedded server's JetStream store."),
		storeMax:      plain("jetstream_store_max_bytes", "Bound on the embedded server's JetStream store."),
		diskFree:      plain("store_disk_free_bytes", "Free bytes on the file system of the data directory."),
		diskMinFree:   plain("store_disk_min_free_bytes", "Free bytes the data directory's file system must keep (--store-min-free)."),
	}
}

// Describe implements prometheus.Collector.
func (c *StorageCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.msgs, c.bytes, c.maxBytes, c.consumers, c.maxConsumers, c.maxPerSubject, c.maxAge,
		c.storeUsed, c.storeMax, c.diskFree, c.diskMinFree} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *StorageCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	if usage, err := ReadStreamUsage(context.Background(), c.js); err == nil {
		for _, u := range usage {
			gauge(c.msgs, float64(u.Msgs), u.Stream)
			gauge(c.bytes, float64(u.Bytes), u.Stream)
			gauge(c.maxBytes, float64(u.MaxBytes), u.Stream)
			gauge(c.consumers, float64(u.Consumers), u.Stream)
			gauge(c.maxConsumers, float64(u.MaxConsumers), u.Stream)
			gauge(c.maxPerSubject, float64(u.MaxMsgsPerSubject), u.Stream)
			gauge(c.maxAge, u.MaxAge.Seconds(), u.Stream)
		}
	}
	if c.srv == nil {
		return
	}
	if u, err := c.srv.StoreUsage(); err == nil {
		gauge(c.storeUsed, float64(u.Used))
		gauge(c.storeMax, float64(u.Max))
		if u.Free >= 0 {
			gauge(c.diskFree, float64(u.Free))
		}
		gauge(c.diskMinFree, float64(u.MinFree))
	}
}

var _ prometheus.Collector = (*StorageCollector)(nil)
