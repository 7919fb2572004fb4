package natsjs

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Backups are JetStream stream snapshots, taken and restored through the
// JetStream API ($JS.API.STREAM.SNAPSHOT and RESTORE, which the jetstream
// client package does not wrap): one file per stream, NAME.snapshot (the
// server's snapshot: the stream's files and its consumers' state,
// compressed), and NAME.json (the stream's configuration and state when
// it was taken). The buckets are streams too (KV_directory, ...), so a
// backup holds everything the node stores in JetStream.

// Names and bounds of backups.
const (
	// BackupSnapshotExt and BackupInfoExt end a backup's files.
	BackupSnapshotExt = ".snapshot"
	BackupInfoExt     = ".json"
	// backupChunkSize is the size of a chunk of a snapshot.
	backupChunkSize = 128 << 10
	// backupChunkTimeout bounds the wait for one chunk or its ack.
	backupChunkTimeout = 30 * time.Second
)

// ErrStreamExists is what [Restore] returns when a stream of the backup
// exists already: nothing is restored.
var ErrStreamExists = errors.New("the stream exists already")

// BackupInfo is a stream's NAME.json in a backup.
type BackupInfo struct {
	Config jetstream.StreamConfig `json:"config"`
	State  jetstream.StreamState  `json:"state"`
}

// apiResponse is the error part of a JetStream API answer.
type apiResponse struct {
	Error *jetstream.APIError `json:"error,omitempty"`
}

// Backup writes a snapshot of every stream of the account to dir (created
// if needed), and returns the streams, sorted. Files are written under a
// temporary name and renamed once whole.
func Backup(ctx context.Context, nc *nats.Conn, dir string) ([]BackupInfo, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	var names []string
	lister := js.StreamNames(ctx)
	for n := range lister.Name() {
		names = append(names, n)
	}
	if err := lister.Err(); err != nil {
		return nil, fmt.Errorf("natsjs: list streams: %w", err)
	}
	slices.Sort(names)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	var out []BackupInfo
	for _, name := range names {
		info, err := snapshotStream(ctx, nc, name, dir)
		if err != nil {
			return out, fmt.Errorf("natsjs: back up stream %s: %w", name, err)
		}
		out = append(out, info)
	}
	return out, nil
}

// snapshotStream writes dir/NAME.snapshot and dir/NAME.json.
func snapshotStream(ctx context.Context, nc *nats.Conn, name, dir string) (BackupInfo, error) {
	inbox := nc.NewInbox()
	chunks := make(chan *nats.Msg, 64)
	sub, err := nc.ChanSubscribe(inbox, chunks)
	if err != nil {
		return BackupInfo{}, err
	}
	defer sub.Unsubscribe() //nolint:errcheck // the connection may be gone

	req, _ := json.Marshal(map[string]any{"deliver_subject": inbox, "chunk_size": backupChunkSize})
	rctx, cancel := context.WithTimeout(ctx, backupChunkTimeout)
	resp, err := nc.RequestWithContext(rctx, "$JS.API.STREAM.SNAPSHOT."+name, req)
	cancel()
	if err != nil {
		return BackupInfo{}, err
	}
	var sr struct {
		apiResponse
		BackupInfo
	}
	if err := json.Unmarshal(resp.Data, &sr); err != nil {
		return BackupInfo{}, fmt.Errorf("snapshot answer: %w", err)
	}
	if sr.Error != nil {
		return BackupInfo{}, sr.Error
	}

	final := filepath.Join(dir, name+BackupSnapshotExt)
	tmp, err := os.CreateTemp(dir, "."+name+".tmp-*")
	if err != nil {
		return BackupInfo{}, err
	}
	defer os.Remove(tmp.Name()) // fails harmlessly after the rename
	w := bufio.NewWriter(tmp)
	timer := time.NewTimer(backupChunkTimeout)
	defer timer.Stop()
	for done := false; !done; {
		select {
		case <-ctx.Done():
			tmp.Close()
			return BackupInfo{}, ctx.Err()
		case <-timer.C:
			tmp.Close()
			return BackupInfo{}, errors.New("the server sent no chunk in time")
		case m := <-chunks:
			timer.Reset(backupChunkTimeout)
			if len(m.Data) == 0 && m.Reply == "" {
				// The end: a status 204, or the error that ended it.
				if st := m.Header.Get("Status"); st != "" && st != "204" {
					tmp.Close()
					return BackupInfo{}, fmt.Errorf("snapshot ended with %s %s", st, m.Header.Get("Description"))
				}
				done = true
				continue
			}
			if _, err := w.Write(m.Data); err != nil {
				tmp.Close()
				return BackupInfo{}, err
			}
			if m.Reply != "" {
				if err := m.Respond(nil); err != nil { // flow control: the next chunks
					tmp.Close()
					return BackupInfo{}, err
				}
			}
		}
	}
	err = w.Flush()
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), final)
	}
	if err != nil {
		return BackupInfo{}, err
	}
	b, err := json.MarshalIndent(sr.BackupInfo, "", "  ")
	if err != nil {
		return BackupInfo{}, err
	}
	if err := os.WriteFile(filepath.Join(dir, name+BackupInfoExt), append(b, '\n'), 0o600); err != nil {
		return BackupInfo{}, err
	}
	return sr.BackupInfo, nil
}

// BackupStreams reads the streams of the backup in dir, sorted by name.
// It returns an error naming the file for a stream whose snapshot or
// description is missing or unreadable.
func BackupStreams(dir string) ([]BackupInfo, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*"+BackupInfoExt))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("natsjs: %s holds no backup (no *%s files)", dir, BackupInfoExt)
	}
	var out []BackupInfo
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var info BackupInfo
		if err := json.Unmarshal(b, &info); err != nil {
			return nil, fmt.Errorf("natsjs: %s: not a stream description of a backup: %w", f, err)
		}
		if info.Config.Name == "" {
			return nil, fmt.Errorf("natsjs: %s: not a stream description of a backup: no stream name", f)
		}
		if want := strings.TrimSuffix(filepath.Base(f), BackupInfoExt); info.Config.Name != want {
			return nil, fmt.Errorf("natsjs: %s describes stream %s", f, info.Config.Name)
		}
		if _, err := os.Stat(filepath.Join(dir, info.Config.Name+BackupSnapshotExt)); err != nil {
			return nil, fmt.Errorf("natsjs: the snapshot of %s: %w", info.Config.Name, err)
		}
		out = append(out, info)
	}
	slices.SortFunc(out, func(a, b BackupInfo) int { return strings.Compare(a.Config.Name, b.Config.Name) })
	return out, nil
}

// Restore restores every stream of the backup in dir. It refuses, and
// restores nothing, when a stream of the backup exists already
// ([ErrStreamExists], naming it) or the backup is incomplete.
func Restore(ctx context.Context, nc *nats.Conn, dir string) ([]BackupInfo, error) {
	streams, err := BackupStreams(dir)
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	for _, s := range streams {
		_, err := js.Stream(ctx, s.Config.Name)
		switch {
		case err == nil:
			return nil, fmt.Errorf("natsjs: restore %s: %w; restore into an empty store", s.Config.Name, ErrStreamExists)
		case !errors.Is(err, jetstream.ErrStreamNotFound):
			return nil, fmt.Errorf("natsjs: restore %s: %w", s.Config.Name, err)
		}
	}
	for i, s := range streams {
		if err := restoreStream(ctx, nc, dir, s); err != nil {
			return streams[:i], fmt.Errorf("natsjs: restore stream %s: %w", s.Config.Name, err)
		}
	}
	return streams, nil
}

// restoreStream sends dir/NAME.snapshot to the server.
func restoreStream(ctx context.Context, nc *nats.Conn, dir string, s BackupInfo) error {
	f, err := os.Open(filepath.Join(dir, s.Config.Name+BackupSnapshotExt))
	if err != nil {
		return err
	}
	defer f.Close()
	req, err := json.Marshal(s)
	if err != nil {
		return err
	}
	request := func(subject string, data []byte) (*nats.Msg, error) {
		rctx, cancel := context.WithTimeout(ctx, backupChunkTimeout)
		defer cancel()
		return nc.RequestWithContext(rctx, subject, data)
	}
	resp, err := request("$JS.API.STREAM.RESTORE."+s.Config.Name, req)
	if err != nil {
		return err
	}
	var rr struct {
		apiResponse
		DeliverSubject string `json:"deliver_subject"`
	}
	if err := json.Unmarshal(resp.Data, &rr); err != nil {
		return fmt.Errorf("restore answer: %w", err)
	}
	if rr.Error != nil {
		return rr.Error
	}
	chunk := make([]byte, backupChunkSize)
	for {
		n, err := io.ReadFull(f, chunk)
		if n > 0 {
			ack, rerr := request(rr.DeliverSubject, chunk[:n])
			if rerr != nil {
				return rerr
			}
			if len(ack.Data) > 0 {
				var ar apiResponse
				if json.Unmarshal(ack.Data, &ar) == nil && ar.Error != nil {
					return ar.Error
				}
			}
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return err
		}
	}
	// The end: an empty message, answered once the stream is back.
	resp, err = request(rr.DeliverSubject, nil)
	if err != nil {
		return err
	}
	var done apiResponse
	if err := json.Unmarshal(resp.Data, &done); err != nil {
		return fmt.Errorf("restore answer: %w", err)
	}
	if done.Error != nil {
		return done.Error
	}
	return nil
}
