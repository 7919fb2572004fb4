package httpapi

import (
	"errors"
	"net"
	"testing"
)

// The dialer's Control hook refuses a non-public address itself, after
// DNS, even when whatever resolved the name let it through; with
// AllowPrivate it connects.
func TestDialerControlRefusesPrivateAddresses(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan struct{}, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- struct{}{}
			c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	tried, refused := 0, 0
	for _, addr := range []string{"127.0.0.1:" + port, "[::ffff:127.0.0.1]:" + port, "localhost:" + port} {
		tried++
		c, err := WebhookConfig{}.WithDefaults().dialer().DialContext(t.Context(), "tcp", addr)
		if err == nil {
			c.Close()
			t.Errorf("%s: connected", addr)
			continue
		}
		if !errors.Is(err, errNotPublic) {
			// localhost may not resolve here; that refuses too, but say so.
			t.Logf("%s: %v", addr, err)
		}
		refused++
	}
	if len(accepted) != 0 {
		t.Fatalf("the listener accepted %d connections", len(accepted))
	}
	c, err := WebhookConfig{AllowPrivate: true}.WithDefaults().dialer().DialContext(t.Context(), "tcp", "127.0.0.1:"+port)
	if err != nil {
		t.Fatalf("with AllowPrivate: %v", err)
	}
	c.Close()
	<-accepted
	t.Logf("dialer Control hook: tried %d, refused %d", tried, refused)
}
