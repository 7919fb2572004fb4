package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"fmt"
	"github.com/invictus-network/invictus/adapters/natsjs"
	"github.com/invictus-network/invictus/internal/testenv"
)

// Values the end-to-end binary is linked with, to check `version`.
const (
	testVersion = "v0.0.0-e2e"
	testCommit  = "e2e0commit"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// invictusBinary builds the real binary once per test run.
func invictusBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binary; skipped with -short")
	}
	buildOnce.Do(func() {
		binPath = filepath.Join(binDir, "invictus")
		cmd := exec.Command("go", "build",
			"-ldflags", "-X main.version="+testVersion+" -X main.commit="+testCommit,
			"-o", binPath, ".")
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = errors.New("go build: " + err.Error() + "\n" + string(out))
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// node is a running `invictus serve` process.
type node struct {
	t        *testing.T
	cmd      *exec.Cmd
	stderr   *syncBuffer
	stdout   *syncBuffer
	addrFile string
	exited   chan struct{}
	waitErr  error
	HTTP     string `json:"http"`
	NATS     string `json:"nats"`
}

// startNode runs `invictus serve` on free ports with its data in dataDir and
// returns once the addr file appears. The process is killed at cleanup if a
// test has not stopped it. extra are more arguments.
func startNode(t *testing.T, dataDir string, extra ...string) *node {
	t.Helper()
	bin := invictusBinary(t)
	n := &node{
		t:        t,
		stderr:   &syncBuffer{},
		stdout:   &syncBuffer{},
		addrFile: filepath.Join(t.TempDir(), "a.json"),
		exited:   make(chan struct{}),
	}
	args := []string{"serve", "--data", dataDir, "--listen", "127.0.0.1:0", "--addr-file", n.addrFile}
	if !slices.Contains(extra, "--nats-url") {
		args = append(args, "--nats-listen", "127.0.0.1:0")
	}
	n.cmd = exec.Command(bin, append(args, extra...)...)
	n.cmd.Env = cleanEnv()
	n.cmd.Stderr = n.stderr
	n.cmd.Stdout = n.stdout
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		n.waitErr = n.cmd.Wait()
		close(n.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-n.exited:
		default:
			_ = n.cmd.Process.Kill()
			<-n.exited
		}
	})

	var exitErr error
	testenv.Await(t, "serve's addr file", func() bool {
		select {
		case <-n.exited:
			exitErr = fmt.Errorf("serve exited before it was ready: %w", n.waitErr)
			return true
		default:
		}
		_, err := os.Stat(n.addrFile)
		return err == nil
	}, n.stderr.String)
	if exitErr != nil {
		t.Fatalf("%v\n%s", exitErr, n.stderr)
	}
	data, err := os.ReadFile(n.addrFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, n); err != nil {
		t.Fatalf("addr file %q: %v", data, err)
	}
	return n
}

// stop sends SIGTERM and returns the exit code.
func (n *node) stop() int {
	n.t.Helper()
	if err := n.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		n.t.Fatal(err)
	}
	testenv.Recv(n.t, "serve to stop after SIGTERM", n.exited, n.stderr.String)
	var exitErr *exec.ExitError
	if errors.As(n.waitErr, &exitErr) {
		return exitErr.ExitCode()
	}
	if n.waitErr != nil {
		n.t.Fatal(n.waitErr)
	}
	return 0
}

func getJSON(t *testing.T, url string) (int, probeReport) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rep probeReport
	body, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(body, &rep); err != nil {
		t.Fatalf("%s body %q: %v", url, body, err)
	}
	return resp.StatusCode, rep
}

// cleanEnv is the environment of the processes the tests start: this
// one's, without the INVICTUS_ variables that would change their settings.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, envPrefix) {
			env = append(env, kv)
		}
	}
	return env
}

// connectAdmin connects to the node's NATS server as its administrator,
// with the seed in the data directory.
func connectAdmin(t *testing.T, addr, data string) *nats.Conn {
	t.Helper()
	opt, err := nats.NkeyOptionFromSeed(filepath.Join(data, natsjs.KeysDir, natsjs.UserAdmin+natsjs.SeedFileExt))
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(addr, opt)
	if err != nil {
		t.Fatalf("connect to %s as admin: %v", addr, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func TestServeEndToEnd(t *testing.T) {
	t.Parallel()
	data := filepath.Join(t.TempDir(), "data")
	n := startNode(t, data)

	if code, rep := getJSON(t, "http://"+n.HTTP+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d %+v", code, rep)
	}
	code, rep := getJSON(t, "http://"+n.HTTP+"/readyz")
	for _, check := range []string{"serve", "nats", "streams", "directory", "routing"} {
		if code != http.StatusOK || rep.Checks[check] != "ok" {
			t.Fatalf("/readyz = %d %+v, want 200 with %s ok", code, rep, check)
		}
	}
	// The HTTP API is behind the probes, with its metrics.
	resp, err := http.Get("http://" + n.HTTP + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "invictus_dlq_messages") {
		t.Errorf("/metrics = %d, want 200 with invictus_dlq_messages:\n%.500s", resp.StatusCode, body)
	}
	if resp, err := http.Get("http://" + n.HTTP + "/v1/inbox"); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("/v1/inbox without a token = %v %v, want 401", resp, err)
	} else {
		resp.Body.Close()
	}
	// The directory is open data; the public pages take every other path.
	for path, want := range map[string]string{"/v1/services": "application/json", "/en/": "text/html; charset=utf-8", "/en/nowhere": "text/html; charset=utf-8"} {
		resp, err := http.Get("http://" + n.HTTP + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if ok := resp.StatusCode == http.StatusOK || (path == "/en/nowhere" && resp.StatusCode == http.StatusNotFound); !ok || resp.Header.Get("Content-Type") != want {
			t.Errorf("%s without a token = %d %q, want %s", path, resp.StatusCode, resp.Header.Get("Content-Type"), want)
		}
	}

	// The embedded server wants a user: no credentials, no connection.
	if nc, err := nats.Connect(n.NATS); err == nil {
		nc.Close()
		t.Error("connected to the embedded server without credentials")
	} else if !errors.Is(err, nats.ErrAuthorization) {
		t.Errorf("connect without credentials: %v, want an authorization violation", err)
	}

	// The administrator sees the five streams and the bucket.
	nc := connectAdmin(t, n.NATS, data)
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	ctx := testenv.Context(t)
	for _, name := range []string{natsjs.StreamInbound, natsjs.StreamReferrals, natsjs.StreamDelivery, natsjs.StreamTimers, natsjs.StreamDLQ} {
		if _, err := js.Stream(ctx, name); err != nil {
			t.Errorf("stream %s: %v", name, err)
		}
	}
	if _, err := js.KeyValue(ctx, natsjs.BucketDirectory); err != nil {
		t.Errorf("bucket %s: %v", natsjs.BucketDirectory, err)
	}
	const subject = "referral.pt.0190b1a4-0000-7000-8000-0000000000e2"
	if _, err := js.Publish(ctx, subject, []byte(`{}`), jetstream.WithMsgID("e2e-1")); err != nil {
		t.Fatalf("publish: %v", err)
	}
	nc.Close()

	if code := n.stop(); code != 0 {
		t.Fatalf("exit code %d after SIGTERM, want 0\n%s", code, n.stderr)
	}
	if logs := n.stderr.String(); !strings.Contains(logs, `msg="shutdown complete"`) {
		t.Errorf("no clean-shutdown line in the log:\n%s", logs)
	}
	if _, err := os.Stat(n.addrFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("addr file still there after shutdown: %v", err)
	}

	// Nothing acknowledged is lost: a second run on the same data has it.
	again := startNode(t, data)
	nc2 := connectAdmin(t, again.NATS, data)
	js2, err := jetstream.New(nc2, jetstream.WithDefaultTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	s, err := js2.Stream(ctx, natsjs.StreamReferrals)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetLastMsgForSubject(ctx, subject); err != nil {
		t.Errorf("the event published before the restart: %v", err)
	}
	nc2.Close()
	if code := again.stop(); code != 0 {
		t.Errorf("second run: exit code %d\n%s", code, again.stderr)
	}
}

func TestServeBinaryVersion(t *testing.T) {
	t.Parallel()
	out, err := exec.Command(invictusBinary(t), "version", "--json").Output()
	if err != nil {
		t.Fatal(err)
	}
	var bi buildInfo
	if err := json.Unmarshal(out, &bi); err != nil {
		t.Fatalf("%q: %v", out, err)
	}
	if bi.Version != testVersion || bi.Commit != testCommit || bi.Go != runtime.Version() {
		t.Errorf("version --json = %+v, want %s %s %s", bi, testVersion, testCommit, runtime.Version())
	}
}

func TestServeTakenPort(t *testing.T) {
	t.Parallel()
	for _, flag := range []string{"listen", "nats-listen"} {
		t.Run(flag, func(t *testing.T) {
			t.Parallel()
			var lc net.ListenConfig
			taken, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer taken.Close()
			args := map[string]string{"listen": "127.0.0.1:0", "nats-listen": "127.0.0.1:0"}
			args[flag] = taken.Addr().String()

			code, _, errOut := runArgs(t, "serve", "--data", t.TempDir(),
				"--listen", args["listen"], "--nats-listen", args["nats-listen"])
			if code != exitError {
				t.Errorf("exit code %d, want %d", code, exitError)
			}
			want := "invictus: --" + flag + " " + taken.Addr().String() + ": address already in use"
			if !strings.Contains(errOut, want) {
				t.Errorf("stderr does not contain %q:\n%s", want, errOut)
			}
		})
	}
}

func TestServeDataNotWritable(t *testing.T) {
	t.Parallel()
	// Tests run as root, whom permissions do not stop; nobody can create a
	// directory under a regular file.
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(file, "sub")
	code, _, errOut := runArgs(t, "serve", "--data", data, "--listen", "127.0.0.1:0", "--nats-listen", "127.0.0.1:0")
	if code != exitError {
		t.Errorf("exit code %d, want %d", code, exitError)
	}
	if want := "invictus: --data " + data + ": data directory not writable: "; !strings.Contains(errOut, want) {
		t.Errorf("stderr does not contain %q:\n%s", want, errOut)
	}
}

func TestServeAddrFileNotWritable(t *testing.T) {
	t.Parallel()
	addrFile := filepath.Join(t.TempDir(), "missing-dir", "a.json")
	code, _, errOut := runArgs(t, "serve", "--data", t.TempDir(),
		"--listen", "127.0.0.1:0", "--nats-listen", "127.0.0.1:0", "--addr-file", addrFile)
	if code != exitError {
		t.Errorf("exit code %d, want %d", code, exitError)
	}
	if want := "invictus: --addr-file " + addrFile + ": "; !strings.Contains(errOut, want) {
		t.Errorf("stderr does not contain %q:\n%s", want, errOut)
	}
}

func TestServeStopsOnContextEnd(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	addrFile := filepath.Join(t.TempDir(), "a.json")
	var errOut syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--data", t.TempDir(), "--listen", "127.0.0.1:0",
			"--nats-listen", "127.0.0.1:0", "--addr-file", addrFile, "--log-format", "json"}, io.Discard, &errOut)
	}()

	testenv.Await(t, "serve's addr file", func() bool {
		select {
		case code := <-done:
			t.Fatalf("serve returned %d before it was ready:\n%s", code, errOut.String())
		default:
		}
		_, err := os.Stat(addrFile)
		return err == nil
	}, errOut.String)
	cancel()
	if code := testenv.Recv(t, "serve to return after its context ended", done, errOut.String); code != exitOK {
		t.Errorf("exit code %d, want 0:\n%s", code, errOut.String())
	}
	if !strings.Contains(errOut.String(), `"msg":"shutdown complete"`) {
		t.Errorf("no JSON clean-shutdown line:\n%s", errOut.String())
	}
}
