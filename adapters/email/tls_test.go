package email_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/invictus-network/invictus/adapters/email"
)

// testCert writes a self-signed certificate for 127.0.0.1 and its key
// into dir and returns their paths and a pool that trusts it.
func testCert(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mailpit test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestSMTPOverTLS: against a Mailpit that requires STARTTLS, and one
// that speaks TLS from the start, the adapter delivers the offer over
// TLS (smtp:// and smtps://); a mailer without TLS, and one that does
// not trust the server's certificate, are refused.
func TestSMTPOverTLS(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, flag, scheme string
	}{
		{"starttls", "--smtp-require-starttls", "smtp"},
		{"implicit", "--smtp-require-tls", "smtps"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			certFile, keyFile, pool := testCert(t, t.TempDir())
			b := setup(t, email.Config{}, "--smtp-tls-cert", certFile, "--smtp-tls-key", keyFile, c.flag)
			b.smtpURL, b.roots = c.scheme+"://user:secret@"+b.mp.SMTP, pool

			// Refused: no TLS, and TLS to a server whose certificate is
			// not trusted.
			plain, err := email.ParseSMTPURL(b.mp.URL())
			if err != nil {
				t.Fatal(err)
			}
			untrusted, err := email.ParseSMTPURL(b.smtpURL)
			if err != nil {
				t.Fatal(err)
			}
			for name, cfg := range map[string]email.SMTPConfig{"without TLS": plain, "untrusted certificate": untrusted} {
				m, err := email.NewMailer(cfg)
				if err != nil {
					t.Fatal(err)
				}
				msg := gomail.NewMsg()
				_ = msg.From("referrals@node.test")
				_ = msg.To("a1@a1.test")
				msg.Subject("must not arrive")
				msg.SetBodyString(gomail.TypeTextPlain, "x")
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				err = m.Send(ctx, msg)
				cancel()
				_ = m.Close()
				var se *email.SendError
				if err == nil || !errors.As(err, &se) {
					t.Errorf("%s: sent (%v), want a SendError", name, err)
				}
				t.Logf("%s: %v", name, err)
			}

			in := b.start("a")
			b.refer(needsOffered...)
			m := b.mail("pt.a1", "Nouvelle proposition")
			if !strings.Contains(m.Text, "Soutien émotionnel") {
				t.Errorf("the offer over %s lacks its needs:\n%s", c.name, m.Text)
			}
			if total, _ := b.received(); total != 1 {
				t.Errorf("%d messages, want 1 (the refused ones must not arrive)", total)
			}
			if got := in.metric("invictus_email_messages_total", "sent"); got != 1 {
				t.Errorf("sent %v, want 1", got)
			}
		})
	}
}
