package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"

	"github.com/invictus-network/invictus/events"
)

// Resolver looks up the addresses of a host name; *net.Resolver is one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Error codes of a webhook URL refused because of where it leads.
const (
	// CodeNotPublic: the URL's host is, or resolves to, an address that
	// is not public (loopback, private, link-local, metadata...).
	CodeNotPublic = "not_public"
	// CodeUnresolvable: the URL's host name has no address.
	CodeUnresolvable = "unresolvable"
)

// errNotPublic is the error of a delivery refused because the target is
// not public: the same words whatever the target, so that the delivery
// log tells nothing of what listens there.
var errNotPublic = errors.New("refused: the target does not resolve to public addresses only")

// nonPublic are the prefixes a webhook may not reach, beyond what
// netip.Addr's predicates catch (loopback, private, link-local,
// multicast, unspecified). IPv4-mapped IPv6 addresses are unmapped
// first; NAT64 and 6to4 addresses are judged by the IPv4 address they
// embed.
var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),          // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),      // carrier-grade NAT
	netip.MustParsePrefix("169.254.0.0/16"),     // link-local, cloud metadata (169.254.169.254)
	netip.MustParsePrefix("192.0.0.0/24"),       // IETF protocol assignments
	netip.MustParsePrefix("192.0.2.0/24"),       // documentation
	netip.MustParsePrefix("198.18.0.0/15"),      // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"),    // documentation
	netip.MustParsePrefix("203.0.113.0/24"),     // documentation
	netip.MustParsePrefix("240.0.0.0/4"),        // reserved, broadcast
	netip.MustParsePrefix("100::/64"),           // discard
	netip.MustParsePrefix("2001::/23"),          // IETF protocol assignments (Teredo...)
	netip.MustParsePrefix("2001:db8::/32"),      // documentation
	netip.MustParsePrefix("fc00::/7"),           // unique local (fd00:ec2::254, a metadata address)
	netip.MustParsePrefix("fec0::/10"),          // site-local (deprecated)
	netip.MustParsePrefix("::/128"),             // unspecified
	netip.MustParsePrefix("::/96"),              // IPv4-compatible (deprecated)
	netip.MustParsePrefix("64:ff9b:1::/48"),     // local-use NAT64
	netip.MustParsePrefix("5f00::/16"),          // SRv6 SIDs
	netip.MustParsePrefix("3fff::/20"),          // documentation
	netip.MustParsePrefix("2002::/16"),          // 6to4: judged by its IPv4 below
	netip.MustParsePrefix("64:ff9b::/96"),       // NAT64: judged by its IPv4 below
	netip.MustParsePrefix("ff00::/8"),           // multicast
	netip.MustParsePrefix("255.255.255.255/32"), // broadcast
}

var (
	prefix6to4  = netip.MustParsePrefix("2002::/16")
	prefixNAT64 = netip.MustParsePrefix("64:ff9b::/96")
)

// IsPublic reports whether a webhook may connect to ip: an address of
// the public internet, not loopback, private (RFC 1918), link-local,
// unspecified, multicast, carrier-grade NAT, unique-local, a cloud
// metadata address or any special-purpose range, in IPv4, IPv6 or an
// IPv4 address in IPv6 form (mapped, NAT64, 6to4).
func IsPublic(ip netip.Addr) bool {
	if !ip.IsValid() {
		return false
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is6() {
		b := ip.As16()
		switch {
		case prefixNAT64.Contains(ip):
			return IsPublic(netip.AddrFrom4([4]byte(b[12:16])))
		case prefix6to4.Contains(ip):
			return IsPublic(netip.AddrFrom4([4]byte(b[2:6])))
		}
	}
	if ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified() {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

// resolve returns the addresses of host: itself when it is an IP
// literal, else what the resolver says.
func (c WebhookConfig) resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{ip.Unmap()}, nil
	}
	ips, err := c.Resolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, err
	}
	if len(ips) == 0 {
		return nil, fmt.Errorf("no address for %s", host)
	}
	return ips, nil
}

// allowed reports whether the dispatcher may connect to ip.
func (c WebhookConfig) allowed(ip netip.Addr) bool {
	return c.AllowPrivate || IsPublic(ip)
}

// checkTarget checks where a webhook URL's host leads: every address
// must be public (unless AllowPrivate), and http:// is accepted only with
// AllowPrivate and a host whose addresses are all loopback.
func (c WebhookConfig) checkTarget(ctx context.Context, scheme, host string) *Error {
	bad := func(code, format string, args ...any) *Error {
		return &Error{Status: http.StatusUnprocessableEntity, Problems: []Problem{{Pointer: "/url", Code: code, Message: fmt.Sprintf(format, args...)}}}
	}
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	ips, err := c.resolve(ctx, host)
	if err != nil {
		return bad(CodeUnresolvable, "the url's host %q has no address", host)
	}
	loopback := true
	for _, ip := range ips {
		if !c.allowed(ip) {
			return bad(CodeNotPublic, "the url's host must resolve to public addresses only; %s is not public", ip)
		}
		loopback = loopback && ip.Unmap().IsLoopback()
	}
	if scheme == "http" && !(c.AllowPrivate && loopback) {
		return bad(events.CodeFormat, "url must use https (http:// is accepted only to loopback on a server that allows private webhook targets)")
	}
	return nil
}

// dialer returns a dialer whose Control hook refuses, after DNS, every
// address the dispatcher may not reach: the last check, on the very
// address the socket connects to.
func (c WebhookConfig) dialer() *net.Dialer {
	return &net.Dialer{
		Timeout: c.Timeout,
		Control: func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil || !c.allowed(ap.Addr()) {
				return errNotPublic
			}
			return nil
		},
	}
}

// client returns the HTTP client of the dispatcher: it does not follow
// redirects (a redirect counts as a failed attempt), uses no proxy, and
// connects only to allowed addresses, checked after DNS at every
// connection (a net.Dialer Control hook checks the very address dialled).
func (c WebhookConfig) client() *http.Client {
	d := c.dialer()
	tr := &http.Transport{
		Proxy: nil, // a proxy would connect wherever the URL says
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, port, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			ips, err := c.resolve(ctx, host)
			if err != nil {
				return nil, fmt.Errorf("the host has no address")
			}
			for _, ip := range ips {
				if !c.allowed(ip) {
					return nil, errNotPublic
				}
			}
			var errs []error
			for _, ip := range ips {
				conn, err := d.DialContext(ctx, network, net.JoinHostPort(ip.String(), port))
				if err == nil {
					return conn, nil
				}
				errs = append(errs, err)
			}
			return nil, errors.Join(errs...)
		},
		TLSClientConfig:       c.TLS,
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   c.Timeout,
		ResponseHeaderTimeout: c.Timeout,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   2,
	}
	return &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
