package natsjs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// Leases: what must happen once however many `invictus serve` instances
// share a cluster (the webhook dispatcher; the e-mail sender has its own,
// in adapters/email, over the same kind of store) runs on the instance
// holding its lease, a key of the bucket [BucketLeases] updated with
// compare-and-set on its revision. The routing service needs none: its
// durable consumers give each command, event and fired timer to one
// instance, and the dispatcher consumer is pinned to one at a time.

// Names and defaults of leases.
const (
	// BucketLeases holds one key per lease.
	BucketLeases = "leases"
	// LeaseWebhooks is the lease of the webhook dispatcher.
	LeaseWebhooks = "webhooks"
	// LeaseTTLDefault is how long a lease lasts unless renewed: how long
	// the others wait before taking over from a holder that died.
	LeaseTTLDefault = 10 * time.Second
)

// LeaseBucketConfig is the configuration of [BucketLeases].
func LeaseBucketConfig(cfg StreamsConfig) jetstream.KeyValueConfig {
	cfg = cfg.WithDefaults()
	return jetstream.KeyValueConfig{Bucket: BucketLeases, Description: "Leases of the work one instance does at a time.",
		History: 1, MaxBytes: 1 << 20, Storage: jetstream.FileStorage, Replicas: cfg.Replicas}
}

// LeaseConfig configures a [Lease]. The zero value of every field but
// Name means its default.
type LeaseConfig struct {
	// Name is the lease's key, such as [LeaseWebhooks].
	Name string
	// Holder names this instance. Default: host name, process id and a
	// unique suffix.
	Holder string
	// TTL is how long the lease lasts unless renewed; it is renewed every
	// third of it. Default [LeaseTTLDefault].
	TTL time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger receives takeovers and losses. Default discards.
	Logger *slog.Logger
}

// leaseValue is the value of a lease key.
type leaseValue struct {
	Holder  string    `json:"holder"`
	Expires time.Time `json:"expires"`
}

// Lease runs work while this instance holds a lease in [BucketLeases].
type Lease struct {
	store *RevStore
	cfg   LeaseConfig

	mu        sync.Mutex
	heldUntil time.Time
	rev       uint64
}

// EnsureLease creates [BucketLeases] (or updates it to cfg) and returns
// the lease of lc. It returns an error naming the bucket when JetStream
// refuses it, or a config error naming the field.
func EnsureLease(ctx context.Context, js jetstream.JetStream, cfg StreamsConfig, lc LeaseConfig) (*Lease, error) {
	if lc.Name == "" {
		return nil, errors.New("natsjs: LeaseConfig.Name is required")
	}
	if lc.TTL == 0 {
		lc.TTL = LeaseTTLDefault
	}
	if lc.TTL < 30*time.Millisecond {
		return nil, fmt.Errorf("natsjs: LeaseConfig.TTL %s is too short", lc.TTL)
	}
	if lc.Holder == "" {
		host, _ := os.Hostname()
		lc.Holder = fmt.Sprintf("%s/%d/%s", host, os.Getpid(), nuid.Next()[16:])
	}
	if lc.Now == nil {
		lc.Now = time.Now
	}
	if lc.Logger == nil {
		lc.Logger = slog.New(slog.DiscardHandler)
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, LeaseBucketConfig(cfg))
	if err != nil {
		return nil, fmt.Errorf("natsjs: ensure bucket %s: %w", BucketLeases, err)
	}
	return &Lease{store: NewRevStore(kv), cfg: lc}, nil
}

// Held reports whether this instance holds the lease with at least a
// third of its lifetime left.
func (l *Lease) Held() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cfg.Now().Add(l.cfg.TTL / 3).Before(l.heldUntil)
}

// Holder is this instance's name in the lease.
func (l *Lease) Holder() string { return l.cfg.Holder }

// Run runs work while the lease is held, until ctx ends. work's context
// ends when the lease is lost (another instance took it, or it could not
// be renewed before a third of its lifetime was left); Run waits for work
// to return and goes back to taking the lease. When ctx ends Run ends
// work, waits for it, releases the lease (so another instance takes over
// at once) and returns nil. An error work returns while the lease is held
// ends Run with that error.
func (l *Lease) Run(ctx context.Context, work func(context.Context) error) error {
	tick := time.NewTicker(l.cfg.TTL / 3)
	defer tick.Stop()
	defer l.release(context.WithoutCancel(ctx))
	var w *leaseWork
	defer func() { w.stop() }()
	for {
		held := l.renew(ctx)
		switch {
		case held && w == nil:
			l.cfg.Logger.InfoContext(ctx, "lease taken", slog.String("lease", l.cfg.Name), slog.String("holder", l.cfg.Holder))
			w = startLeaseWork(ctx, work)
		case !held && w != nil:
			l.cfg.Logger.WarnContext(ctx, "lease lost; stopping its work", slog.String("lease", l.cfg.Name))
			w.stop()
			w = nil
		}
		var ended <-chan struct{}
		if w != nil {
			ended = w.done
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ended:
			if ctx.Err() != nil {
				return nil
			}
			err := w.err
			if err == nil {
				err = errors.New("stopped unexpectedly")
			}
			return fmt.Errorf("natsjs: work of lease %s: %w", l.cfg.Name, err)
		case <-tick.C:
		}
	}
}

// leaseWork is the work of a held lease, running in a goroutine.
type leaseWork struct {
	cancel context.CancelFunc
	done   chan struct{}
	err    error // set before done is closed
}

func startLeaseWork(ctx context.Context, work func(context.Context) error) *leaseWork {
	wctx, cancel := context.WithCancel(ctx)
	w := &leaseWork{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		w.err = work(wctx)
	}()
	return w
}

// stop ends the work and waits for it; nil does nothing.
func (w *leaseWork) stop() {
	if w == nil {
		return
	}
	w.cancel()
	<-w.done
}

// renew takes or extends the lease and reports whether it is held.
func (l *Lease) renew(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, l.cfg.TTL/3)
	defer cancel()
	now := l.cfg.Now()
	val, _ := json.Marshal(leaseValue{Holder: l.cfg.Holder, Expires: now.Add(l.cfg.TTL)})
	b, rev, err := l.store.Get(ctx, l.cfg.Name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		rev, err = l.store.Create(ctx, l.cfg.Name, val)
	case err == nil:
		var cur leaseValue
		if json.Unmarshal(b, &cur) == nil && cur.Holder != l.cfg.Holder && now.Before(cur.Expires) {
			l.set(time.Time{}, 0)
			return false // another instance holds it
		}
		rev, err = l.store.Update(ctx, l.cfg.Name, val, rev)
	}
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			l.set(time.Time{}, 0) // another instance was faster
			return false
		}
		if ctx.Err() == nil {
			l.cfg.Logger.WarnContext(ctx, "lease not renewed", slog.String("lease", l.cfg.Name), slog.Any("error", err))
		}
		// Hold on to what is left while a third of it remains.
		return l.Held()
	}
	l.set(now.Add(l.cfg.TTL), rev)
	return true
}

func (l *Lease) set(until time.Time, rev uint64) {
	l.mu.Lock()
	l.heldUntil, l.rev = until, rev
	l.mu.Unlock()
}

// release expires the lease if this instance holds it.
func (l *Lease) release(ctx context.Context) {
	l.mu.Lock()
	rev, held := l.rev, !l.heldUntil.IsZero()
	l.heldUntil, l.rev = time.Time{}, 0
	l.mu.Unlock()
	if !held {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, l.cfg.TTL/3)
	defer cancel()
	val, _ := json.Marshal(leaseValue{Holder: l.cfg.Holder})
	// An update at our revision fails if another took it meanwhile.
	if _, err := l.store.Update(ctx, l.cfg.Name, val, rev); err != nil && !errors.Is(err, fs.ErrExist) {
		l.cfg.Logger.WarnContext(ctx, "lease not released", slog.String("lease", l.cfg.Name), slog.Any("error", err))
	}
}
