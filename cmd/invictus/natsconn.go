package main

// How the commands reach NATS: the one credentials helper every command
// uses (natsCredsOption), the node file a running `serve` leaves in its
// data directory (DATA/node.json) and the lock that says the data
// directory's store is in use (DATA/node.lock).

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	"github.com/spf13/pflag"

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

// natsTLSFlags are the client side of TLS to NATS, the same three flags on
// every command that connects to NATS: the CA that signed the server's
// certificate, and the client certificate a server started with
// `serve --nats-tls-client-ca` requires. serve's own --nats-tls-cert and
// --nats-tls-key are its server certificate, or with --nats-url its
// client certificate, as here.
type natsTLSFlags struct {
	ca, cert, key string
}

// Flag names of natsTLSFlags.
const (
	flagNATSTLSCA   = "nats-tls-ca"
	flagNATSTLSCert = "nats-tls-cert"
	flagNATSTLSKey  = "nats-tls-key"
)

// addNATSTLSFlags registers --nats-tls-ca, --nats-tls-cert and
// --nats-tls-key on fl.
func addNATSTLSFlags(fl *pflag.FlagSet) *natsTLSFlags {
	f := &natsTLSFlags{}
	fl.StringVar(&f.ca, flagNATSTLSCA, "", "NATS over TLS: trust this PEM CA for the server's certificate (default: the system's roots)")
	fl.StringVar(&f.cert, flagNATSTLSCert, "", "NATS over TLS: present this PEM client certificate, for a server that requires one; needs --nats-tls-key")
	fl.StringVar(&f.key, flagNATSTLSKey, "", "the PEM private key of --nats-tls-cert")
	return f
}

// options returns the connect options of the flags: none when no flag is
// set (a server that requires TLS is then reached over TLS, trusting the
// system's roots). It returns a usageError when --nats-tls-cert and
// --nats-tls-key are not given together, or a flagError naming the file
// that cannot be read.
func (f *natsTLSFlags) options() ([]nats.Option, error) {
	if f == nil || (f.ca == "" && f.cert == "" && f.key == "") {
		return nil, nil
	}
	if (f.cert == "") != (f.key == "") {
		return nil, usageError{errors.New("--nats-tls-cert and --nats-tls-key go together")}
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if f.ca != "" {
		b, err := os.ReadFile(f.ca)
		if err != nil {
			return nil, &flagError{flag: flagNATSTLSCA, value: f.ca, err: err}
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(b) {
			return nil, &flagError{flag: flagNATSTLSCA, value: f.ca, err: errors.New("no PEM certificate in the file")}
		}
	}
	if f.cert != "" {
		cert, err := loadKeyPair(flagNATSTLSCert, f.cert, flagNATSTLSKey, f.key)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return []nats.Option{nats.Secure(cfg)}, nil
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
// until close; its logs go to logger. name is the connection name; opts
// (TLS) apply to a running node. A node
// that holds the lock but does not answer is an error wrapping
// errUnavailable; a node that is starting (lock held, no node file yet)
// is waited for, within ctx and nodeWaitMax. Errors about the directory
// are flagErrors naming --data.
func connectData(ctx context.Context, data, creds, name string, logger *slog.Logger, opts ...nats.Option) (*dataConn, error) {
	if creds == "" {
		creds = filepath.Join(data, natsjs.KeysDir, natsjs.UserAdmin+natsjs.SeedFileExt)
	}
	// A node file comes first: it is the common case, and where file
	// locks are not available it is all there is.
	info, infoErr := readNodeFile(data)
	var connErr error
	if infoErr == nil {
		dc, err := connectNode(ctx, info, creds, name, opts...)
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
			dc, err := connectNode(ctx, info, creds, name, opts...)
			if err != nil {
				return nil, &flagError{flag: "data", value: data, err: fmt.Errorf("%w: node (pid %d) at %s: %w", errUnavailable, info.PID, info.NATS, err)}
			}
			return dc, nil
		}
		if lock, err := lockDataDir(data); err == nil {
			lock.unlock() // the node has stopped meanwhile: try again from the start
			return connectData(ctx, data, creds, name, logger, opts...)
		}
	}
}

// connectNode connects to the running node of info with creds and opts.
func connectNode(ctx context.Context, info nodeInfo, creds, name string, opts ...nats.Option) (*dataConn, error) {
	opt, err := natsCredsOption(creds)
	if err != nil {
		return nil, fmt.Errorf("credentials %s: %w", creds, err)
	}
	timeout := natsConnectTimeout
	if d, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(d))
	}
	nc, err := nats.Connect("nats://"+info.NATS, append([]nats.Option{opt, nats.Name(name), nats.Timeout(timeout)}, opts...)...)
	if err != nil {
		return nil, err
	}
	return &dataConn{nc: nc, running: true, close: func() {
		if err := nc.Drain(); err != nil {
			nc.Close()
		}
	}}, nil
}
