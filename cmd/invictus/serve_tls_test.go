package main

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/invictus-network/invictus/adapters/natsjs"
)

// testPKI is a CA, a server certificate for 127.0.0.1 and localhost, and
// a client certificate, made in the test and written as PEM files.
type testPKI struct {
	dir                       string
	caFile, certFile, keyFile string
	pool                      *x509.CertPool
	client                    tls.Certificate
	otherCAClient             tls.Certificate // signed by another CA
	caCert                    *x509.Certificate
	caKey                     *ecdsa.PrivateKey
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	p := &testPKI{dir: t.TempDir()}
	var caDER []byte
	p.caCert, p.caKey, caDER = makeCA(t, "invictus test CA")
	p.caFile = writePEM(t, p.dir, "ca.pem", "CERTIFICATE", caDER)
	p.pool = x509.NewCertPool()
	p.pool.AddCert(p.caCert)
	serverDER, serverKey := makeLeaf(t, p.caCert, p.caKey, "invictus node", true)
	p.certFile = writePEM(t, p.dir, "server.pem", "CERTIFICATE", serverDER)
	p.keyFile = writeKey(t, p.dir, "server-key.pem", serverKey)
	clientDER, clientKey := makeLeaf(t, p.caCert, p.caKey, "pt.apav case system", false)
	p.client = tls.Certificate{Certificate: [][]byte{clientDER}, PrivateKey: clientKey}
	otherCA, otherKey, _ := makeCA(t, "someone else's CA")
	otherDER, otherLeafKey := makeLeaf(t, otherCA, otherKey, "intruder", false)
	p.otherCAClient = tls.Certificate{Certificate: [][]byte{otherDER}, PrivateKey: otherLeafKey}
	return p
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		panic(err)
	}
	return n
}

func makeCA(t *testing.T, name string) (*x509.Certificate, *ecdsa.PrivateKey, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key, der
}

func makeLeaf(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey, name string, server bool) ([]byte, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.DNSNames = []string{"localhost"}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return der, key
}

func writePEM(t *testing.T, dir, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func writeKey(t *testing.T, dir, name string, key *ecdsa.PrivateKey) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return writePEM(t, dir, name, "PRIVATE KEY", der)
}

// loopbackOf turns a bound address (maybe [::]:port or 0.0.0.0:port)
// into 127.0.0.1:port.
func loopbackOf(t *testing.T, addr string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.1", port)
}

// serve with --tls-cert/--tls-key serves HTTPS only, and with
// --nats-tls-* its embedded NATS server takes only TLS clients that
// present a certificate of the client CA; listening on all interfaces
// with TLS raises no warning.
func TestServeTLS(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	data := t.TempDir()
	p := serveInProcess(t, nil, "--data", data, "--listen", "0.0.0.0:0", "--nats-listen", "0.0.0.0:0",
		"--tls-cert", pki.certFile, "--tls-key", pki.keyFile,
		"--nats-tls-cert", pki.certFile, "--nats-tls-key", pki.keyFile, "--nats-tls-client-ca", pki.caFile)
	httpAddr, natsAddr := loopbackOf(t, p.HTTP), loopbackOf(t, p.NATS)
	tried, refused := 0, 0

	// HTTPS with the CA: served.
	secure := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pki.pool, MinVersion: tls.VersionTLS12}}}
	resp, err := secure.Get("https://" + httpAddr + "/v1/openapi.json")
	if err != nil {
		t.Fatalf("https: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.TLS == nil {
		t.Fatalf("https: status %d", resp.StatusCode)
	}
	// Plain HTTP: no API behind it.
	tried++
	if resp, err := http.Get("http://" + httpAddr + "/v1/openapi.json"); err != nil || resp.StatusCode == http.StatusBadRequest {
		refused++
		if resp != nil {
			resp.Body.Close()
		}
	} else {
		resp.Body.Close()
		t.Errorf("plain HTTP to the HTTPS port: status %d", resp.StatusCode)
	}

	// NATS over TLS with a client certificate of the CA and the
	// administrator's key: connected.
	seed := filepath.Join(data, natsjs.KeysDir, natsjs.UserAdmin+natsjs.SeedFileExt)
	nkey, err := nats.NkeyOptionFromSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	connect := func(cfg *tls.Config) (*nats.Conn, error) {
		opts := []nats.Option{nkey, nats.Timeout(time.Minute), nats.MaxReconnects(0)}
		if cfg != nil {
			opts = append(opts, nats.Secure(cfg))
		}
		return nats.Connect("tls://"+natsAddr, opts...)
	}
	nc, err := connect(&tls.Config{RootCAs: pki.pool, Certificates: []tls.Certificate{pki.client}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatalf("nats over TLS with a client certificate: %v", err)
	}
	if err := nc.Flush(); err != nil || !nc.TLSRequired() {
		t.Fatalf("nats flush: %v (TLS required %v)", err, nc.TLSRequired())
	}
	nc.Close()
	for name, cfg := range map[string]*tls.Config{
		"no client certificate":         {RootCAs: pki.pool, MinVersion: tls.VersionTLS12},
		"a certificate of another CA":   {RootCAs: pki.pool, Certificates: []tls.Certificate{pki.otherCAClient}, MinVersion: tls.VersionTLS12},
		"the system's roots, no client": {MinVersion: tls.VersionTLS12},
	} {
		tried++
		nc, err := connect(cfg)
		if err == nil {
			err = nc.Flush()
			nc.Close()
		}
		if err == nil {
			t.Errorf("nats with %s: connected", name)
			continue
		}
		refused++
	}
	// A plain NATS client: the server says TLS is required and drops a
	// client that goes on in clear.
	tried++
	if plainNATSServed(t, natsAddr) {
		t.Error("a plain NATS client was served")
	} else {
		refused++
	}
	if out := p.out.String(); strings.Contains(out, "WARNING") {
		t.Fatalf("a warning with TLS on:\n%s", out)
	}
	t.Logf("TLS: tried %d plaintext or unauthorised clients, refused %d; HTTPS and NATS over TLS with a client certificate served", tried, refused)
	if tried != refused {
		t.Fatalf("refused %d of %d", refused, tried)
	}
}

// plainNATSServed speaks the NATS protocol in clear and reports whether
// the server answered the PING.
func plainNATSServed(t *testing.T, addr string) bool {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Minute)) // against a hang only
	r := bufio.NewReader(c)
	info, err := r.ReadString('\n')
	if err != nil || !strings.Contains(info, `"tls_required":true`) {
		t.Fatalf("INFO %q (%v): want tls_required", info, err)
	}
	if _, err := io.WriteString(c, "CONNECT {\"verbose\":false}\r\nPING\r\n"); err != nil {
		return false
	}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return false
		}
		if strings.HasPrefix(line, "PONG") {
			return true
		}
	}
}

// Listening on a non-loopback address without TLS, serve warns loudly,
// in its log and on its standard output; on loopback it does not.
func TestServeWarnsWithoutTLS(t *testing.T) {
	t.Parallel()
	p := serveInProcess(t, nil, "--data", t.TempDir(), "--listen", "0.0.0.0:0", "--nats-listen", "0.0.0.0:0")
	out, logs := p.out.String(), p.errOut.String()
	for _, what := range []string{"HTTP", "NATS"} {
		if !strings.Contains(out, "WARNING: "+what+" listens on") {
			t.Errorf("no %s warning on standard output:\n%s", what, out)
		}
	}
	if strings.Count(logs, "without TLS") < 2 {
		t.Errorf("no warnings in the log:\n%s", logs)
	}
	q := serveInProcess(t, nil, "--data", t.TempDir())
	if strings.Contains(q.out.String(), "WARNING") || strings.Contains(q.errOut.String(), "without TLS") {
		t.Errorf("a warning on loopback:\n%s\n%s", q.out, q.errOut)
	}
}
