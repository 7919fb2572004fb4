package natsjs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"
)

// The coordinators' read model is checkpointed in the cluster, not on one
// instance's disk: every `invictus serve` instance restores the same
// checkpoint when it starts, and the retention sweep purges only what that
// one checkpoint has folded. One instance writes it at a time: the holder
// of the lease [LeaseReports]. A checkpoint never goes back: a write
// behind the stored sequence is refused, so an instance that took the
// lease over and has not caught up yet cannot undo what the retention
// sweep relied on.
//
// The checkpoint is a key-value bucket, not an object store: nats.go's
// object Put leaves a goroutine behind when its publisher is cleaned up
// before that goroutine starts, and a checkpoint a minute would pile them
// up. The snapshot is cut into chunks under one of two slots, written in
// the slot the head does not name; then the head (sequence, holder, slot,
// size, SHA-256) names it. A reader checks the digest and reads again if
// a writer reused the slot meanwhile.

// Names of the shared reports checkpoint.
const (
	// BucketReports is the key-value bucket holding the checkpoint.
	BucketReports = "reports"
	// LeaseReports is the lease of the checkpoint's writer in [BucketLeases].
	LeaseReports = "reports"
	// ReportsHeadKey is the key describing the checkpoint.
	ReportsHeadKey = "head"
	// ReportsMaxBytes bounds [BucketReports]: two snapshots (the current
	// and the one being written) of up to 128 MiB each. A larger snapshot
	// is refused (logged); the previous checkpoint stays.
	ReportsMaxBytes int64 = 256 << 20
	// reportsChunk is the size of one chunk, below NATS's default payload
	// bound of 1 MiB.
	reportsChunk = 512 << 10
)

// ErrCheckpointBehind is what [PutReportsCheckpoint] returns (as a
// [*CheckpointBehindError]) when the stored checkpoint has reached a later
// sequence than the one offered.
var ErrCheckpointBehind = errors.New("natsjs: the stored reports checkpoint is ahead")

// CheckpointBehindError says which sequence the stored checkpoint reached.
type CheckpointBehindError struct{ Stored, Offered uint64 }

func (e *CheckpointBehindError) Error() string {
	return fmt.Sprintf("%v: stored %d, offered %d", ErrCheckpointBehind, e.Stored, e.Offered)
}

// Is makes errors.Is(err, ErrCheckpointBehind) true.
func (e *CheckpointBehindError) Is(target error) bool { return target == ErrCheckpointBehind }

// ReportsBucketConfig is the configuration of [BucketReports].
func ReportsBucketConfig(cfg StreamsConfig) jetstream.KeyValueConfig {
	cfg = cfg.WithDefaults()
	return jetstream.KeyValueConfig{Bucket: BucketReports, Description: "The coordinators' read model checkpoint.",
		History: 1, MaxBytes: ReportsMaxBytes, Storage: jetstream.FileStorage, Replicas: cfg.Replicas}
}

// EnsureReportsBucket creates [BucketReports] (or updates it to cfg).
func EnsureReportsBucket(ctx context.Context, js jetstream.JetStream, cfg StreamsConfig) (jetstream.KeyValue, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, ReportsBucketConfig(cfg))
	if err != nil {
		return nil, fmt.Errorf("natsjs: ensure bucket %s: %w", BucketReports, err)
	}
	return kv, nil
}

// ReportsCheckpoint describes the stored checkpoint: its head.
type ReportsCheckpoint struct {
	// Seq is the REFERRALS sequence the checkpointed model reached.
	Seq uint64 `json:"seq"`
	// Holder is the lease holder that wrote it.
	Holder string `json:"holder"`
	// Slot, Chunks, Size and SHA256 locate and check the snapshot.
	Slot   int    `json:"slot"`
	Chunks int    `json:"chunks"`
	Size   int    `json:"size"`
	SHA256 string `json:"sha256"`
}

// ReportsCheckpointOf reads a head entry (as a watcher of
// [ReportsHeadKey] sees it).
func ReportsCheckpointOf(value []byte) (ReportsCheckpoint, error) {
	var ck ReportsCheckpoint
	if err := json.Unmarshal(value, &ck); err != nil {
		return ck, fmt.Errorf("natsjs: the reports checkpoint's head: %w", err)
	}
	return ck, nil
}

func chunkKey(slot, i int) string { return "chunk." + strconv.Itoa(slot) + "." + strconv.Itoa(i) }

// StatReportsCheckpoint returns the stored checkpoint's head; ok is
// false, with no error, when there is none yet.
func StatReportsCheckpoint(ctx context.Context, kv jetstream.KeyValue) (ck ReportsCheckpoint, ok bool, err error) {
	e, err := kv.Get(ctx, ReportsHeadKey)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return ck, false, nil
	}
	if err != nil {
		return ck, false, fmt.Errorf("natsjs: read the reports checkpoint: %w", err)
	}
	ck, err = ReportsCheckpointOf(e.Value())
	return ck, err == nil, err
}

// ReadReportsCheckpoint returns the stored checkpoint and its snapshot;
// ok is false, with no error, when there is none yet.
func ReadReportsCheckpoint(ctx context.Context, kv jetstream.KeyValue) (ck ReportsCheckpoint, data []byte, ok bool, err error) {
	for range 5 {
		if ck, ok, err = StatReportsCheckpoint(ctx, kv); err != nil || !ok {
			return ck, nil, ok, err
		}
		var buf bytes.Buffer
		for i := range ck.Chunks {
			e, err := kv.Get(ctx, chunkKey(ck.Slot, i))
			if err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
				return ck, nil, false, fmt.Errorf("natsjs: read the reports checkpoint: %w", err)
			}
			if err == nil {
				buf.Write(e.Value())
			}
		}
		sum := sha256.Sum256(buf.Bytes())
		if buf.Len() == ck.Size && hex.EncodeToString(sum[:]) == ck.SHA256 {
			return ck, buf.Bytes(), true, nil
		}
		// A writer reused the slot while it was read: read the new head.
	}
	return ck, nil, false, errors.New("natsjs: the reports checkpoint does not match its digest")
}

// PutReportsCheckpoint stores data, a snapshot of the model at ck.Seq
// written by ck.Holder, unless the stored checkpoint is at a later
// sequence ([ErrCheckpointBehind]). Only the holder of [LeaseReports]
// calls it.
func PutReportsCheckpoint(ctx context.Context, kv jetstream.KeyValue, ck ReportsCheckpoint, data []byte) error {
	cur, ok, err := StatReportsCheckpoint(ctx, kv)
	if err != nil {
		return err
	}
	if ok && cur.Seq > ck.Seq {
		return &CheckpointBehindError{Stored: cur.Seq, Offered: ck.Seq}
	}
	ck.Slot = 0
	if ok {
		ck.Slot = 1 - cur.Slot
	}
	sum := sha256.Sum256(data)
	ck.Size, ck.SHA256, ck.Chunks = len(data), hex.EncodeToString(sum[:]), 0
	for off := 0; off < len(data) || ck.Chunks == 0; off += reportsChunk {
		if _, err := kv.Put(ctx, chunkKey(ck.Slot, ck.Chunks), data[off:min(off+reportsChunk, len(data))]); err != nil {
			return fmt.Errorf("natsjs: store the reports checkpoint: %w", err)
		}
		ck.Chunks++
	}
	head, err := json.Marshal(ck)
	if err != nil {
		return err
	}
	if _, err := kv.Put(ctx, ReportsHeadKey, head); err != nil {
		return fmt.Errorf("natsjs: store the reports checkpoint: %w", err)
	}
	return nil
}
