package main

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/invictus-network/invictus/adapters/natsjs"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/internal/testenv"
)

// systemNATSURL is the system NATS server that CI runs.
const systemNATSURL = "nats://127.0.0.1:4222"

// externalServer is a NATS server with JetStream and nkey users, started
// by the test as an operator would run one outside the node.
type externalServer struct {
	url   string
	admin string // the seed file serve connects with
	keys  *natsjs.KeyStore
	srv   *natsjs.Server
}

// startExternal starts the test's own "external" server: a nats-server
// listening on TCP with an administrator and a routing user.
func startExternal(t *testing.T) *externalServer {
	t.Helper()
	ctx := testenv.Context(t)
	dir := t.TempDir()
	keys, err := natsjs.NewKeyStore(filepath.Join(dir, "keys"))
	if err != nil {
		t.Fatal(err)
	}
	auth, err := natsjs.NewAuth(keys, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := natsjs.StartServer(ctx, natsjs.ServerConfig{StoreDir: filepath.Join(dir, "store"), Listen: "127.0.0.1:0", Auth: auth}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), time.Minute) // against a hang only
		defer scancel()
		if err := srv.Shutdown(sctx); err != nil {
			t.Errorf("external server shutdown: %v", err)
		}
	})
	return &externalServer{url: srv.ClientURL(), admin: keys.Path(natsjs.UserAdmin), keys: keys, srv: srv}
}

// connect connects to the external server as its administrator.
func (e *externalServer) connect(t *testing.T) *nats.Conn {
	t.Helper()
	opt, err := e.keys.ConnectOption(natsjs.UserAdmin)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(e.url, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func TestServeExternalNATS(t *testing.T) {
	t.Parallel()
	ext := startExternal(t)
	data := t.TempDir()
	n := startNode(t, data, "--nats-url", ext.url, "--nats-creds", ext.admin)

	code, rep := getJSON(t, "http://"+n.HTTP+"/readyz")
	if code != http.StatusOK || rep.Checks["routing"] != "ok" || rep.Checks["nats"] != "ok" {
		t.Fatalf("/readyz = %d %+v", code, rep)
	}
	if _, err := os.Stat(filepath.Join(data, "nats")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("with --nats-url, serve made a JetStream store under --data: %v", err)
	}

	// The services run against the external server: a referral goes from
	// request to acceptance.
	nc := ext.connect(t)
	ref, recv := "pt."+uniqueSlug("ext-ref"), "pt."+uniqueSlug("ext-recv")
	tokens := provisionTestOrgs(t, nc, testOrgsDirectory(t, ref, recv), true)
	id := referralFlow(t, n.HTTP, ref, tokens[ref], recv, tokens[recv])

	// The provisioner gave the organisations their delivery consumers.
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the consumer of "+recv, func() bool {
		_, err := js.Consumer(t.Context(), natsjs.StreamDelivery, natsjs.OrgConsumerName(recv))
		return err == nil
	})

	if code := n.stop(); code != 0 {
		t.Fatalf("exit code %d after SIGTERM\n%s", code, n.stderr)
	}
	// The log is the external server's: it outlives the node.
	s, err := js.Stream(t.Context(), natsjs.StreamReferrals)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetLastMsgForSubject(t.Context(), "referral.pt."+id); err != nil {
		t.Errorf("the referral's events on the external server: %v", err)
	}
}

func TestServeExternalNATSErrors(t *testing.T) {
	t.Parallel()
	ext := startExternal(t)

	// A key the server does not know.
	otherKeys, err := natsjs.NewKeyStore(filepath.Join(t.TempDir(), "keys"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := otherKeys.Ensure(natsjs.UserAdmin); err != nil {
		t.Fatal(err)
	}
	wrong := otherKeys.Path(natsjs.UserAdmin)
	notCreds := filepath.Join(t.TempDir(), "creds.txt")
	if err := os.WriteFile(notCreds, []byte("user=admin password=secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	unreachable := "nats://" + freeAddr(t)

	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unreachable", []string{"--nats-url", unreachable},
			"invictus: --nats-url " + unreachable + ": NATS server unreachable: "},
		{"wrong credentials", []string{"--nats-url", ext.url, "--nats-creds", wrong},
			"invictus: --nats-creds " + wrong + ": the NATS server refused the credentials: nats: authorization violation"},
		{"no credentials", []string{"--nats-url", ext.url},
			"invictus: --nats-url " + ext.url + ": the NATS server refused the credentials: the server needs credentials; give --nats-creds FILE"},
		{"not a credentials file", []string{"--nats-url", ext.url, "--nats-creds", notCreds},
			"invictus: --nats-creds " + notCreds + ": not a NATS credentials file or nkey seed file"},
		{"missing credentials file", []string{"--nats-url", ext.url, "--nats-creds", notCreds + ".missing"},
			"invictus: --nats-creds " + notCreds + ".missing: open "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			args := append([]string{"serve", "--data", t.TempDir(), "--listen", "127.0.0.1:0"}, tt.args...)
			code, _, errOut := runArgs(t, args...)
			if code != exitError {
				t.Errorf("exit code %d, want %d", code, exitError)
			}
			if !strings.Contains(strings.ToLower(errOut), strings.ToLower(tt.want)) {
				t.Errorf("stderr does not contain %q:\n%s", tt.want, errOut)
			}
		})
	}
}

// TestServeSystemNATS runs serve against the system NATS server of CI
// (127.0.0.1:4222), which other tests share: it tolerates the streams
// existing, uses organisations and referral ids of its own, and removes
// its directory records and tokens at the end. A server older than INVICTUS
// needs must be refused with a clear error before anything is created on
// it.
func TestServeSystemNATS(t *testing.T) {
	t.Parallel()
	probe, err := nats.Connect(systemNATSURL, nats.Timeout(5*time.Second))
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("the system NATS server at %s: %v", systemNATSURL, err)
		}
		t.Skipf("no NATS server at %s (%v); CI starts one (see .ci/run)", systemNATSURL, err)
	}
	version := probe.ConnectedServerVersion()
	probe.Close()

	if !versionAtLeast(version, natsMinVersion) {
		code, _, errOut := runArgs(t, "serve", "--data", t.TempDir(), "--listen", "127.0.0.1:0", "--nats-url", systemNATSURL)
		want := "invictus: --nats-url " + systemNATSURL + ": the NATS server is too old: it runs nats-server " + version +
			"; INVICTUS needs 2.12.0 or later"
		if code != exitError || !strings.Contains(errOut, want) {
			t.Fatalf("serve against nats-server %s: exit %d, want %d and %q:\n%s", version, code, exitError, want, errOut)
		}
		t.Logf("the system NATS server runs %s: serve refuses it, as it should; the referral flow needs 2.12 or later", version)
		return
	}

	n := startNode(t, t.TempDir(), "--nats-url", systemNATSURL)
	nc, err := nats.Connect(systemNATSURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	ref, recv := "pt."+uniqueSlug("sys-ref"), "pt."+uniqueSlug("sys-recv")
	tokens := provisionTestOrgs(t, nc, testOrgsDirectory(t, ref, recv), true)
	id := referralFlow(t, n.HTTP, ref, tokens[ref], recv, tokens[recv])
	if !events.IsReferralID(id) {
		t.Fatalf("referral id %q", id)
	}
	// Starting again finds the streams as they are (EnsureStreams is
	// idempotent) and the referral still there.
	if code := n.stop(); code != 0 {
		t.Fatalf("exit code %d\n%s", code, n.stderr)
	}
	again := startNode(t, t.TempDir(), "--nats-url", systemNATSURL)
	if code, view := getReferral(t, again.HTTP, tokens[ref], id); code != http.StatusOK || view.Status != "in_progress" {
		t.Errorf("after a restart: %d %+v", code, view)
	}
	if code := again.stop(); code != 0 {
		t.Errorf("second run: exit code %d\n%s", code, again.stderr)
	}
}

// A certificate, key or CA file that is missing or not PEM stops serve
// before anything starts: exit 1, stderr naming the flag at fault and its
// file, and nothing written under --data (which is not even created).
// The --nats-url rows name an address nothing listens on: the files are
// read before any connection is tried.
func TestServeTLSFileErrors(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.pem")
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	url := "nats://" + freeAddr(t)
	notFound := ": open " + missing + ": no such file or directory"

	tests := []struct {
		name string
		args []string
		want string
	}{
		{"--tls-cert missing", []string{"--tls-cert", missing, "--tls-key", pki.keyFile},
			"invictus: --tls-cert " + missing + notFound},
		{"--tls-key missing", []string{"--tls-cert", pki.certFile, "--tls-key", missing},
			"invictus: --tls-key " + missing + notFound},
		{"--tls-cert not PEM", []string{"--tls-cert", garbage, "--tls-key", pki.keyFile},
			"invictus: --tls-cert " + garbage + ": with --tls-key " + pki.keyFile + ": tls: failed to find any PEM data in certificate input"},
		{"--nats-tls-cert missing", []string{"--nats-tls-cert", missing, "--nats-tls-key", pki.keyFile},
			"invictus: --nats-tls-cert " + missing + notFound},
		{"--nats-tls-key missing", []string{"--nats-tls-cert", pki.certFile, "--nats-tls-key", missing},
			"invictus: --nats-tls-key " + missing + notFound},
		{"--nats-tls-client-ca missing", []string{"--nats-tls-cert", pki.certFile, "--nats-tls-key", pki.keyFile, "--nats-tls-client-ca", missing},
			"invictus: --nats-tls-client-ca " + missing + notFound},
		{"--nats-tls-client-ca not PEM", []string{"--nats-tls-cert", pki.certFile, "--nats-tls-key", pki.keyFile, "--nats-tls-client-ca", garbage},
			"invictus: --nats-tls-client-ca " + garbage + ": no PEM certificate in the file"},
		{"--nats-url --nats-tls-ca missing", []string{"--nats-url", url, "--nats-tls-ca", missing},
			"invictus: --nats-tls-ca " + missing + notFound},
		{"--nats-url --nats-tls-ca not PEM", []string{"--nats-url", url, "--nats-tls-ca", garbage},
			"invictus: --nats-tls-ca " + garbage + ": no PEM certificate in the file"},
		{"--nats-url --nats-tls-cert missing", []string{"--nats-url", url, "--nats-tls-cert", missing, "--nats-tls-key", pki.keyFile},
			"invictus: --nats-tls-cert " + missing + notFound},
		{"--nats-url --nats-tls-key missing", []string{"--nats-url", url, "--nats-tls-cert", pki.certFile, "--nats-tls-key", missing},
			"invictus: --nats-tls-key " + missing + notFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			data := filepath.Join(t.TempDir(), "data")
			args := append([]string{"serve", "--data", data, "--listen", "127.0.0.1:0"}, tt.args...)
			code, out, errOut := runArgs(t, args...)
			if code != exitError {
				t.Errorf("exit code %d, want %d", code, exitError)
			}
			if !strings.Contains(errOut, tt.want) {
				t.Errorf("stderr does not contain %q:\n%s", tt.want, errOut)
			}
			if strings.Contains(out+errOut, "invictus ready") {
				t.Errorf("the node became ready:\n%s\n%s", out, errOut)
			}
			if _, err := os.Stat(data); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("serve wrote --data %s before failing: %v", data, err)
			}
		})
	}
}
