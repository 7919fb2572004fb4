// Package mailpit runs a real SMTP server for tests: Mailpit
// (github.com/axllent/mailpit), started on free ports with its own
// database, and read through its HTTP API. `make test` and .ci/run
// install the binary with `go install` when it is missing; a test that
// needs it skips outside CI (with a message saying how to get it) and
// fails in CI.
package mailpit

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/invictus-network/invictus/internal/testenv"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"
)

// Version is the Mailpit version the project installs.
const Version = "v1.33.1"

// Binary returns the path of the mailpit binary: on PATH, else in
// $GOBIN or $GOPATH/bin; "" when none is found.
func Binary() string {
	if p, err := exec.LookPath("mailpit"); err == nil {
		return p
	}
	var dirs []string
	if b := os.Getenv("GOBIN"); b != "" {
		dirs = append(dirs, b)
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil { //nolint:noctx // a quick look-up in tests
		for _, p := range filepath.SplitList(string(trimNL(out))) {
			dirs = append(dirs, filepath.Join(p, "bin"))
		}
	}
	for _, d := range dirs {
		p := filepath.Join(d, "mailpit")
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p
		}
	}
	return ""
}

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// Server is a running Mailpit.
type Server struct {
	t       testing.TB
	bin     string
	args    []string
	SMTP    string // host:port of its SMTP listener
	HTTP    string // host:port of its API
	db      string
	cmd     *exec.Cmd
	done    chan struct{}
	stopped bool
}

// Start starts Mailpit on free ports; extra are more command-line flags
// (for example "--smtp-allowed-recipients", "regexp"). It is stopped at
// the end of the test. Without the binary the test is skipped, or fails
// when CI is set.
func Start(t testing.TB, extra ...string) *Server {
	t.Helper()
	bin := Binary()
	if bin == "" {
		msg := "mailpit not found: install it with `go install github.com/axllent/mailpit@" + Version + "` (make test does)"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	s := &Server{t: t, bin: bin, SMTP: freeAddr(t), HTTP: freeAddr(t), db: filepath.Join(t.TempDir(), "mailpit.db")}
	s.args = []string{"--smtp", s.SMTP, "--listen", s.HTTP, "--database", s.db, "--quiet",
		"--smtp-auth-accept-any", "--disable-version-check", "--max", "0"}
	if !slices.Contains(extra, "--smtp-require-tls") && !slices.Contains(extra, "--smtp-require-starttls") {
		// Authentication without TLS, unless TLS is required (Mailpit
		// refuses both at once).
		s.args = append(s.args, "--smtp-auth-allow-insecure")
	}
	s.args = append(s.args, extra...)
	s.start()
	t.Cleanup(s.Stop)
	return s
}

// freeAddr returns a loopback address with a port free at the time.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func (s *Server) start() {
	s.t.Helper()
	s.cmd = exec.Command(s.bin, s.args...) //nolint:noctx // stopped by Stop
	s.cmd.Stdout, s.cmd.Stderr = os.Stderr, os.Stderr
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("start mailpit: %v", err)
	}
	s.done = make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	s.stopped = false
	testenv.Await(s.t, "mailpit to answer on "+s.SMTP, func() bool {
		select {
		case <-s.done:
			s.t.Fatalf("mailpit exited at start")
		default:
		}
		c, err := (&net.Dialer{Timeout: time.Second}).DialContext(context.Background(), "tcp", s.SMTP)
		if err != nil {
			return false
		}
		c.Close()
		_, err = s.Total()
		return err == nil
	})
}

// Stop stops the server (its messages stay in its database).
func (s *Server) Stop() {
	if s.stopped || s.cmd == nil {
		return
	}
	s.stopped = true
	_ = s.cmd.Process.Kill()
	<-s.done
}

// Restart starts the server again on the same ports and database.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.start()
}

// URL returns the SMTP URL of the server (no TLS).
func (s *Server) URL() string { return "smtp://" + s.SMTP + "?tls=none" }

// Address is one address of a message.
type Address struct {
	Name    string `json:"Name"`
	Address string `json:"Address"`
}

// Summary is a message in a list.
type Summary struct {
	ID        string    `json:"ID"`
	MessageID string    `json:"MessageID"`
	Subject   string    `json:"Subject"`
	To        []Address `json:"To"`
	Created   time.Time `json:"Created"`
}

// Message is a whole message.
type Message struct {
	ID        string              `json:"ID"`
	MessageID string              `json:"MessageID"`
	Subject   string              `json:"Subject"`
	To        []Address           `json:"To"`
	Text      string              `json:"Text"`
	HTML      string              `json:"HTML"`
	Headers   map[string][]string `json:"-"`
}

func (s *Server) get(path string, v any) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // against a hang only
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.HTTP+path, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("mailpit %s: status %d", path, resp.StatusCode)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// Total returns how many messages the server holds.
func (s *Server) Total() (int, error) {
	var r struct {
		Total int `json:"total"`
	}
	err := s.get("/api/v1/messages?limit=1", &r)
	return r.Total, err
}

// Messages returns every message held, newest first.
func (s *Server) Messages() ([]Summary, error) {
	var out []Summary
	for start := 0; ; {
		var r struct {
			Total    int       `json:"total"`
			Messages []Summary `json:"messages"`
		}
		if err := s.get("/api/v1/messages?limit=500&start="+strconv.Itoa(start), &r); err != nil {
			return nil, err
		}
		out = append(out, r.Messages...)
		start += len(r.Messages)
		if len(r.Messages) == 0 || start >= r.Total {
			return out, nil
		}
	}
}

// Message returns the message with Mailpit id id, with its headers.
func (s *Server) Message(id string) (Message, error) {
	var m Message
	if err := s.get("/api/v1/message/"+id, &m); err != nil {
		return m, err
	}
	if err := s.get("/api/v1/message/"+id+"/headers", &m.Headers); err != nil {
		return m, err
	}
	return m, nil
}

// Raw returns the message's source.
func (s *Server) Raw(id string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // against a hang only
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.HTTP+"/api/v1/message/"+id+"/raw", nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}
