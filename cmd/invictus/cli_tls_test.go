package main

import (
	"crypto/ecdsa"
	"path/filepath"
	"strings"
	"testing"

	"github.com/invictus-network/invictus/adapters/natsjs"
)

// clientFiles writes the PKI's client certificate and key as PEM files.
func (p *testPKI) clientFiles(t *testing.T) (cert, key string) {
	t.Helper()
	cert = writePEM(t, p.dir, "client.pem", "CERTIFICATE", p.client.Certificate[0])
	key = writeKey(t, p.dir, "client-key.pem", p.client.PrivateKey.(*ecdsa.PrivateKey))
	return cert, key
}

// Every command that connects to NATS reaches a node whose NATS port
// takes only TLS clients with a certificate of its client CA, given
// --nats-tls-ca, --nats-tls-cert and --nats-tls-key: the administrator's
// commands on --data (the README's `token list` line among them), a
// caseworker command on --nats-url (the README's `inbox` line), and serve
// itself on --nats-url. Without the CA or without the client certificate
// each is refused.
func TestCLIWithNATSTLS(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	cert, key := pki.clientFiles(t)
	data := t.TempDir()
	p := serveInProcess(t, nil, "--data", data, "--demo",
		"--nats-tls-cert", pki.certFile, "--nats-tls-key", pki.keyFile, "--nats-tls-client-ca", pki.caFile)
	nats := "tls://" + p.NATS
	apav := filepath.Join(data, natsjs.KeysDir, "pt.apav"+natsjs.SeedFileExt)
	full := []string{"--nats-tls-ca", pki.caFile, "--nats-tls-cert", cert, "--nats-tls-key", key}
	caOnly := []string{"--nats-tls-ca", pki.caFile}

	commands := []struct {
		name string
		args []string
		want string // in standard output
	}{
		// The README's lines (section TLS), with its files.
		{"token list", []string{"token", "list", "--data", data}, "pt.apav"},
		{"inbox", []string{"inbox", "--org", "pt.apav", "--creds", apav, "--nats-url", nats}, ""},
		{"directory stats", []string{"directory", "stats", "--data", data, "--json"}, `"organisations":143`},
		{"directory stats --nats-url", []string{"directory", "stats", "--nats-url", nats, "--creds", filepath.Join(data, natsjs.KeysDir, natsjs.UserAdmin+natsjs.SeedFileExt), "--json"}, `"organisations":143`},
		{"check", []string{"check", "--data", data}, "store: ok"},
	}
	tried, refused := 0, 0
	for _, c := range commands {
		code, out, errOut := runArgs(t, append(c.args, full...)...)
		if code != exitOK || !strings.Contains(strings.ReplaceAll(out, " ", ""), strings.ReplaceAll(c.want, " ", "")) {
			t.Errorf("%s with the CA and a client certificate: exit %d\n%s\n%s", c.name, code, out, errOut)
		}
		for what, extra := range map[string][]string{"no TLS flags": nil, "the CA but no client certificate": caOnly} {
			tried++
			code, out, errOut := runArgs(t, append(c.args, extra...)...)
			if code == exitOK {
				t.Errorf("%s with %s: served\n%s", c.name, what, out)
				continue
			}
			refused++
			t.Logf("%s with %s: exit %d: %s", c.name, what, code, strings.TrimSpace(errOut))
		}
	}
	// A certificate without its key is a usage error.
	if code, _, errOut := runArgs(t, "token", "list", "--data", data, "--nats-tls-cert", cert); code != exitUsage || !strings.Contains(errOut, "--nats-tls-key") {
		t.Errorf("--nats-tls-cert alone: exit %d: %s", code, errOut)
	}

	// serve on --nats-url: a second node over TLS with the client
	// certificate becomes ready.
	admin := filepath.Join(data, natsjs.KeysDir, natsjs.UserAdmin+natsjs.SeedFileExt)
	q := serveInProcess(t, nil, append([]string{"--data", t.TempDir(), "--nats-url", nats, "--nats-creds", admin}, full...)...)
	if code := q.stop(); code != exitOK {
		t.Errorf("serve --nats-url over TLS: exit %d\n%s", code, q.errOut)
	}
	t.Logf("CLI over TLS: %d commands served with the CA and a client certificate; tried %d connections without, refused %d", len(commands), tried, refused)
	if tried != refused {
		t.Fatalf("refused %d of %d", refused, tried)
	}
}
