package main

// How the commands reach NATS: the one credentials helper every command
// uses (natsCredsOption), the node file a running `serve` leaves in its
// data directory (DATA/node.json) and the lock that says the data
// directory's store is in use (DATA/node.lock).

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/invictus-network/invictus/adapters/natsjs"
)

// Files of a data directory besides the store and the keys.
const (
	// nodeFileName is DATA/node.json: the addresses of the node running on
	// the data directory, written by serve once it is ready and removed
	// when it stops. A file left by a node that died is harmless: the
	// lock tells whether a node really runs.
	nodeFileName = "node.json"
	// nodeLockName is DATA/node.lock, locked (flock) by the process whose
	// embedded server has the data directory's store open: serve, or a
	// command that opened the store in process. The lock goes with the
	// process, however it ends.
	nodeLockName = "node.lock"
)

// nodeWaitMax bounds how long a command waits for the node file of a node
// that holds the lock but has not written the file yet (it is starting).
const nodeWaitMax = 30 * time.Second

// errDataInUse: another process has the data directory's store open.
var errDataInUse = errors.New("data directory in use by another process")

// natsCredsOption returns the connect option of a credentials file: a
// NATS .creds file (user JWT and seed, for servers in operator mode) or an
// nkey seed file (as in DATA/keys and from `invictus creds`, for servers
// configured with nkeys, such as the embedded one). Every command that
// connects to NATS with a credentials flag uses it. It returns the read
// error, or an error wrapping errCredsFile when the file is neither.
func natsCredsOption(path string) (nats.Option, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if bytes.Contains(b, []byte("BEGIN NATS USER JWT")) {
		return nats.UserCredentials(path), nil
	}
	kp, err := nkeys.ParseDecoratedUserNKey(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errCredsFile, err)
	}
	kp.Wipe()
	opt, err := nats.NkeyOptionFromSeed(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errCredsFile, err)
	}
	return opt, nil
}

// nodeInfo is the content of DATA/node.json.
type nodeInfo struct {
	PID     int       `json:"pid"`
	HTTP    string    `json:"http"`
	NATS    string    `json:"nats"` // client address of the embedded server, host:port
	Started time.Time `json:"started"`
}

// writeNodeFile writes DATA/node.json atomically.
func writeNodeFile(data string, info nodeInfo) error {
	return writeFileAtomic(filepath.Join(data, nodeFileName), info)
}

// removeNodeFile removes DATA/node.json; a missing file is fine.
func removeNodeFile(data string) error {
	err := os.Remove(filepath.Join(data, nodeFileName))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// readNodeFile reads DATA/node.json. It returns an error wrapping
// os.ErrNotExist when there is none.
func readNodeFile(data string) (nodeInfo, error) {
	var info nodeInfo
	b, err := os.ReadFile(filepath.Join(data, nodeFileName))
	if err != nil {
		return info, err
	}
	if err := json.Unmarshal(b, &info); err != nil {
		return info, fmt.Errorf("%s: %w", nodeFileName, err)
	}
	if info.NATS == "" {
		return info, fmt.Errorf("%s: no NATS address", nodeFileName)
	}
	return info, nil
}

// dataConn is a connection to the NATS of a data directory, and how to
// let it go.
type dataConn struct {
	nc      *nats.Conn
	running bool // connected to the node running on the directory
	close   func()
}

// connectData connects as the administrator to the node running on the
// data directory data, as DATA/node.json and DATA/node.lock tell; with
// creds ("" for DATA/keys/admin.nk). When no node runs, it takes the lock
// and starts the embedded server on the store in process (no listener),
// until close; its logs go to logger. name is the connection name. A node
// that holds the lock but does not answer is an error wrapping
// errUnavailable; a node that is starting (lock held, no node file yet)
// is waited for, within ctx and nodeWaitMax. Errors about the directory
// are flagErrors naming --data.
func connectData(ctx context.Context, data, creds, name string, logger *slog.Logger) (*dataConn, error) {
	if creds == "" {
		creds = filepath.Join(data, natsjs.KeysDir, natsjs.UserAdmin+natsjs.SeedFileExt)
	}
	// A node file comes first: it is the common case, and where file
	// locks are not available it is all there is.
	info, infoErr := readNodeFile(data)
	var connErr error
	if infoErr == nil {
		dc, err := connectNode(ctx, info, creds, name)
		if err == nil {
			return dc, nil
		}
		connErr = err
	}
	lock, err := lockDataDir(data)
	switch {
	case err == nil:
		// No node runs (a node file, if any, is stale): open the store.
		srv, err := natsjs.StartServer(ctx, natsjs.ServerConfig{StoreDir: filepath.Join(data, "nats"), DontListen: true}, logger)
		if err != nil {
			lock.unlock()
			return nil, &flagError{flag: "data", value: data, err: err}
		}
		nc, err := srv.Connect(ctx, nats.Name(name))
		shutdown := func() {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			if err := srv.Shutdown(sctx); err != nil {
				logger.Error("embedded server shutdown", slog.Any("error", err))
			}
			lock.unlock()
		}
		if err != nil {
			shutdown()
			return nil, err
		}
		return &dataConn{nc: nc, close: shutdown}, nil
	case !errors.Is(err, errDataInUse):
		return nil, &flagError{flag: "data", value: data, err: err}
	case connErr != nil:
		return nil, &flagError{flag: "data", value: data, err: fmt.Errorf("%w: %w, but its node (pid %d) does not answer at %s: %w",
			errUnavailable, errDataInUse, info.PID, info.NATS, connErr)}
	}
	// Locked without a node file: a node is starting, or stopping.
	wctx, cancel := context.WithTimeout(ctx, nodeWaitMax)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-wctx.Done():
			return nil, &flagError{flag: "data", value: data, err: fmt.Errorf("%w: %w and no node wrote %s: is one starting or stopping?",
				errUnavailable, errDataInUse, nodeFileName)}
		case <-tick.C:
		}
		if info, err := readNodeFile(data); err == nil {
			dc, err := connectNode(ctx, info, creds, name)
			if err != nil {
				return nil, &flagError{flag: "data", value: data, err: fmt.Errorf("%w: node (pid %d) at %s: %w", errUnavailable, info.PID, info.NATS, err)}
			}
			return dc, nil
		}
		if lock, err := lockDataDir(data); err == nil {
			lock.unlock() // the node has stopped meanwhile: try again from the start
			return connectData(ctx, data, creds, name, logger)
		}
	}
}

// connectNode connects to the running node of info with creds.
func connectNode(ctx context.Context, info nodeInfo, creds, name string) (*dataConn, error) {
	opt, err := natsCredsOption(creds)
	if err != nil {
		return nil, fmt.Errorf("credentials %s: %w", creds, err)
	}
	timeout := natsConnectTimeout
	if d, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(d))
	}
	nc, err := nats.Connect("nats://"+info.NATS, opt, nats.Name(name), nats.Timeout(timeout))
	if err != nil {
		return nil, err
	}
	return &dataConn{nc: nc, running: true, close: func() {
		if err := nc.Drain(); err != nil {
			nc.Close()
		}
	}}, nil
}
