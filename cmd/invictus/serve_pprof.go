package main

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// pprofTokenFile is the file, in the data directory, that holds the token
// of --pprof-listen; mode 0600.
const pprofTokenFile = "pprof.token"

// pprofComponent serves Go's profiles (net/http/pprof: heap, goroutines,
// CPU, ...) on a loopback address only, to whoever presents the token of
// DATA/pprof.token as a bearer token: an operator on the machine who can
// read the data directory can see what holds memory in a running node.
type pprofComponent struct {
	listen string
	data   string
	logger *slog.Logger

	srv  *http.Server
	ln   net.Listener
	done chan struct{}
}

func (p *pprofComponent) Name() string { return "pprof" }

// checkLoopback returns an error unless addr's host is a loopback address.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return errors.New("profiles are served on a loopback address only (127.0.0.1, [::1] or localhost)")
	}
	return nil
}

// pprofToken returns the token in DATA/pprof.token, making it first.
func pprofToken(data string) (string, error) {
	path := filepath.Join(data, pprofTokenFile)
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) >= 32 {
		return strings.TrimSpace(string(b)), nil
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	tok := hex.EncodeToString(raw)
	if err := os.MkdirAll(data, 0o700); err != nil {
		return "", err
	}
	if err := os.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
		return "", err
	}
	return tok, nil
}

// Start listens and serves the profiles.
func (p *pprofComponent) Start(ctx context.Context) error {
	if err := checkLoopback(p.listen); err != nil {
		return &flagError{flag: "pprof-listen", value: p.listen, err: err}
	}
	tok, err := pprofToken(p.data)
	if err != nil {
		return fmt.Errorf("pprof: token: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	want := []byte("Bearer " + tok)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="invictus pprof"`)
			http.Error(w, "the token of DATA/"+pprofTokenFile+" is needed as a bearer token", http.StatusUnauthorized)
			return
		}
		mux.ServeHTTP(w, r)
	})
	var lc net.ListenConfig
	if p.ln, err = lc.Listen(ctx, "tcp", p.listen); err != nil {
		return &flagError{flag: "pprof-listen", value: p.listen, err: err}
	}
	// No write timeout: a CPU profile or a trace takes as long as asked.
	p.srv = &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	p.done = make(chan struct{})
	go func() {
		defer close(p.done)
		if err := p.srv.Serve(p.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			p.logger.Error("pprof", slog.Any("error", err))
		}
	}()
	p.logger.Info("profiles served on loopback", slog.String("pprof", p.ln.Addr().String()),
		slog.String("token", filepath.Join(p.data, pprofTokenFile)))
	return nil
}

// addr is the address profiles are served on.
func (p *pprofComponent) addr() string { return p.ln.Addr().String() }

// Stop closes the listener and its connections.
func (p *pprofComponent) Stop(context.Context) error {
	if p.srv == nil {
		return nil
	}
	err := p.srv.Close()
	<-p.done
	return err
}
