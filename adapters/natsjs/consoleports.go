package natsjs

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Buckets of the web console (adapters/web/console).
const (
	// BucketAccounts holds people's accounts (argon2id password hashes,
	// second-factor secrets) and invitations (hashed).
	BucketAccounts = "accounts"
	// BucketSessions holds console sessions, keyed by the hash of the
	// cookie's secret.
	BucketSessions = "sessions"
	// BucketAudit holds each organisation's audit lines: pseudonymous
	// staff ids and what they did, never a name.
	BucketAudit = "audit"
)

// Bounds of the console's buckets.
const (
	// AccountsMaxBytes bounds the accounts bucket (about 30,000 people).
	AccountsMaxBytes = 32 << 20
	// SessionsMaxBytes bounds the sessions bucket; SessionsMaxAge drops a
	// session a day after its last write, whatever the console's own
	// expiry.
	SessionsMaxBytes = 32 << 20
	SessionsMaxAge   = 24 * time.Hour
	// AuditMaxBytes bounds the audit bucket; AuditMaxAge keeps a line
	// for about 13 months.
	AuditMaxBytes = 256 << 20
	AuditMaxAge   = 400 * 24 * time.Hour
)

// ConsoleBucketConfigs returns the configuration of the console's
// buckets: one revision per key, file storage, cfg's replicas.
func ConsoleBucketConfigs(cfg StreamsConfig) []jetstream.KeyValueConfig {
	cfg = cfg.WithDefaults()
	return []jetstream.KeyValueConfig{
		{Bucket: BucketAccounts, Description: "Console accounts and invitations (hashes only).", History: 1, MaxBytes: AccountsMaxBytes, Storage: jetstream.FileStorage, Replicas: cfg.Replicas},
		{Bucket: BucketSessions, Description: "Console sessions.", History: 1, MaxBytes: SessionsMaxBytes, TTL: SessionsMaxAge, Storage: jetstream.FileStorage, Replicas: cfg.Replicas},
		{Bucket: BucketAudit, Description: "Console audit lines: staff ids and actions.", History: 1, MaxBytes: AuditMaxBytes, TTL: AuditMaxAge, Storage: jetstream.FileStorage, Replicas: cfg.Replicas},
	}
}

// ConsoleStores are the console's buckets as stores.
type ConsoleStores struct {
	Accounts, Sessions, Audit *KVStore
}

// NewConsoleStores creates (or updates) the console's buckets over nc. It
// returns an error naming the bucket JetStream refused.
func NewConsoleStores(ctx context.Context, nc *nats.Conn, cfg StreamsConfig) (*ConsoleStores, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("natsjs: jetstream: %w", err)
	}
	var kvs []*KVStore
	for _, bc := range ConsoleBucketConfigs(cfg) {
		kv, err := js.CreateOrUpdateKeyValue(ctx, bc)
		if err != nil {
			return nil, fmt.Errorf("natsjs: ensure bucket %s: %w", bc.Bucket, err)
		}
		kvs = append(kvs, NewKVStore(js, kv))
	}
	return &ConsoleStores{Accounts: kvs[0], Sessions: kvs[1], Audit: kvs[2]}, nil
}
