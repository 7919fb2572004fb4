package httpapi_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/invictus-network/invictus/adapters/httpapi"
)

// Admission control: beyond MaxInFlight requests in hand, a request is
// answered 503 overloaded with Retry-After at once, while the probes and
// /metrics are still served; once the requests in hand end, requests are
// served again.
func TestAdmissionControlShedsBeyondMaxInFlight(t *testing.T) {
	t.Parallel()
	b := setup(t, options{cfg: httpapi.Config{MaxInFlight: 2}})
	tok := b.orgToken(orgA1)

	// Two requests whose bodies never end hold the two slots.
	var writers []*io.PipeWriter
	var wg sync.WaitGroup
	for range 2 {
		pr, pw := io.Pipe()
		writers = append(writers, pw)
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, b.http.URL+"/v1/match", pr)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		wg.Go(func() {
			if resp, err := http.DefaultClient.Do(req); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
		_, _ = pw.Write([]byte("{")) // the handler is reading the body
	}
	b.eventually("two requests in flight", func() bool { return b.api.InFlight() == 2 })

	tried, shed := 50, 0
	for range tried {
		r := b.get("/v1/inbox", tok)
		if r.status == http.StatusServiceUnavailable && r.header.Get("Retry-After") == "1" && r.errors(t)[0].Code == httpapi.CodeOverloaded {
			shed++
		}
	}
	if shed != tried {
		t.Fatalf("%d of %d requests shed; want all", shed, tried)
	}
	if r := b.get("/metrics", ""); r.status != http.StatusOK || !strings.Contains(string(r.body), fmt.Sprintf("invictus_http_shed_total %d", tried)) {
		t.Fatalf("/metrics while overloaded: status %d, shed counter missing", r.status)
	}
	for _, pw := range writers {
		_ = pw.CloseWithError(errors.New("done"))
	}
	wg.Wait()
	b.eventually("no request in flight", func() bool { return b.api.InFlight() == 0 })
	if r := b.get("/v1/inbox", tok); r.status != http.StatusOK {
		t.Fatalf("after the load: status %d %s", r.status, r.body)
	}
}

// An event stream gives its admission slot back once it starts: streams
// are bounded by the connection limit, not by MaxInFlight.
func TestEventStreamDoesNotHoldAdmissionSlot(t *testing.T) {
	t.Parallel()
	b := setup(t, options{cfg: httpapi.Config{MaxInFlight: 1}})
	tok := b.orgToken(orgA1)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, b.http.URL+"/v1/inbox", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("stream: status %d", resp.StatusCode)
	}
	b.eventually("the stream's slot given back", func() bool { return b.api.InFlight() == 0 })
	if r := b.get("/v1/inbox", tok); r.status != http.StatusOK {
		t.Fatalf("beside a stream: status %d %s", r.status, r.body)
	}
}

// An event stream outlives the server's read and write timeouts: it lifts
// them and bounds each write instead.
func TestEventStreamOutlivesWriteTimeout(t *testing.T) {
	t.Parallel()
	b := setup(t, options{cfg: httpapi.Config{
		MaxWait: 50 * time.Millisecond, WriteTimeout: 200 * time.Millisecond,
		ReadHeaderTimeout: 100 * time.Millisecond, ReadTimeout: 200 * time.Millisecond,
		Heartbeat: 20 * time.Millisecond,
	}})
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, b.http.URL+"/v1/inbox", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+b.orgToken(orgA1))
	req.Header.Set("Accept", "text/event-stream")
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	beats := 0
	// At least three write timeouts long: a stream under the server's
	// write deadline would have ended.
	for time.Since(start) < 600*time.Millisecond || beats < 3 {
		if !sc.Scan() {
			t.Fatalf("the stream ended after %s and %d heartbeats: %v", time.Since(start), beats, sc.Err())
		}
		if sc.Text() == ": keep-alive" {
			beats++
		}
	}
}

// Metric labels come from a closed set: made-up methods are "other" and
// paths are route patterns, so that a client cannot grow /metrics.
func TestMetricLabelsAreClosed(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	before := len(b.get("/metrics", "").body)
	for i := range 50 {
		b.do(fmt.Sprintf("BREW%dXYZ", i), fmt.Sprintf("/v1/nope/%d-%s", i, strings.Repeat("p", 200)), "", nil, nil)
		b.do(http.MethodGet, fmt.Sprintf("/v1/referrals/%d", i), "", nil, nil)
	}
	m := string(b.get("/metrics", "").body)
	if strings.Contains(m, "BREW") || strings.Contains(m, "/v1/nope/") || strings.Contains(m, "pppp") {
		t.Fatal("/metrics holds a client's method or path")
	}
	if !strings.Contains(m, `method="other"`) || !strings.Contains(m, `route="/v1/referrals/{id}"`) {
		t.Fatal("/metrics lacks the closed labels")
	}
	// A few new series (other/unmatched, the referral route), not 100.
	if grown := len(m) - before; grown > 8<<10 {
		t.Fatalf("/metrics grew by %d bytes after 100 odd requests", grown)
	}
}

// The connection limit: beyond MaxConns open connections, a new one is
// not served until one closes; idle keep-alive connections are closed
// after IdleTimeout; a client that never finishes its headers is dropped
// after ReadHeaderTimeout.
func TestConnectionLimitAndTimeouts(t *testing.T) {
	t.Parallel()
	b := setup(t, options{cfg: httpapi.Config{MaxConns: 2, IdleTimeout: time.Hour}})
	addr := b.http.Listener.Addr().String()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	get := func(c net.Conn) error {
		if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			return err
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}
	c1, c2 := dial(), dial()
	for _, c := range []net.Conn{c1, c2} {
		if err := get(c); err != nil {
			t.Fatal(err)
		}
	}
	c3 := dial() // in the accept queue
	if _, err := io.WriteString(c3, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = c3.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := c3.Read(make([]byte, 1)); err == nil {
		t.Fatal("a third connection was served while two were open (MaxConns 2)")
	}
	c1.Close()
	_ = c3.SetReadDeadline(time.Time{})
	resp, err := http.ReadResponse(bufio.NewReader(c3), nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("the third connection, once one closed: %v", err)
	}
	resp.Body.Close()
}

func TestIdleAndHeaderTimeouts(t *testing.T) {
	t.Parallel()
	b := setup(t, options{cfg: httpapi.Config{IdleTimeout: 50 * time.Millisecond, ReadHeaderTimeout: 50 * time.Millisecond}})
	addr := b.http.Listener.Addr().String()
	var closedIdle, closedSlow atomic.Bool
	check := func(flag *atomic.Bool, send string, readResponse bool) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := io.WriteString(c, send); err != nil {
			t.Fatal(err)
		}
		r := bufio.NewReader(c)
		if readResponse {
			resp, err := http.ReadResponse(r, nil)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		// The server closes the connection: the read ends (a bound only
		// against a hang, far above the timeouts).
		_ = c.SetReadDeadline(time.Now().Add(time.Minute))
		_, err = io.Copy(io.Discard, r)
		var ne net.Error
		if err == nil || !errors.As(err, &ne) || !ne.Timeout() {
			flag.Store(true)
		}
	}
	check(&closedIdle, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", true)
	check(&closedSlow, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ", false)
	if !closedIdle.Load() || !closedSlow.Load() {
		t.Fatalf("idle connection closed: %v; unfinished headers dropped: %v", closedIdle.Load(), closedSlow.Load())
	}
}

// countingStore counts the reads of the token store.
type countingStore struct {
	httpapi.Store
	gets atomic.Int64
}

func (s *countingStore) Get(ctx context.Context, key string) ([]byte, error) {
	s.gets.Add(1)
	return s.Store.Get(ctx, key)
}

func (s *countingStore) Watch(ctx context.Context, prefix string, fn func(string, []byte), caughtUp func()) error {
	return s.Store.(httpapi.Watcher).Watch(ctx, prefix, fn, caughtUp)
}

// The token store is cached and kept current by a watch: known tokens
// cost no store read, and tokens created or revoked by another process
// (here another Tokens on the same bucket, as `invictus token` is) are
// seen.
func TestTokensAreCachedAndWatched(t *testing.T) {
	t.Parallel()
	var cs *countingStore
	b := setup(t, options{wrapTokens: func(s httpapi.Store) httpapi.Store {
		cs = &countingStore{Store: s}
		return cs
	}})
	tok := b.orgToken(orgA1)
	b.eventually("the token in the cache", func() bool {
		before := cs.gets.Load()
		return b.get("/v1/inbox", tok).status == http.StatusOK && cs.gets.Load() == before
	})
	before := cs.gets.Load()
	for range 100 {
		if r := b.get("/v1/inbox", tok); r.status != http.StatusOK {
			t.Fatalf("status %d", r.status)
		}
	}
	if n := cs.gets.Load() - before; n != 0 {
		t.Fatalf("100 requests read the token store %d times; want 0", n)
	}

	other := httpapi.NewTokens(b.ports.Tokens) // as `invictus token` does
	secret, rec, err := other.Create(t.Context(), orgA2, httpapi.RoleOrganisation, "elsewhere")
	if err != nil {
		t.Fatal(err)
	}
	if r := b.get("/v1/inbox", secret); r.status != http.StatusOK {
		t.Fatalf("a token made elsewhere: status %d", r.status)
	}
	if err := other.Revoke(t.Context(), rec.ID); err != nil {
		t.Fatal(err)
	}
	b.eventually("the revocation seen", func() bool { return b.get("/v1/inbox", secret).status == http.StatusUnauthorized })
}

// A token with an expiry is refused once it has passed, with a 401 that
// says so; expiries in the past or too far ahead are refused at creation.
func TestTokenExpiry(t *testing.T) {
	t.Parallel()
	var now atomic.Pointer[time.Time]
	start := time.Now()
	now.Store(&start)
	b := setup(t, options{cfg: httpapi.Config{Now: func() time.Time { return *now.Load() }}})
	secret, tok, err := b.api.Tokens().Create(t.Context(), orgA1, httpapi.RoleOrganisation, "a day", httpapi.WithExpiry(start.Add(24*time.Hour)))
	if err != nil {
		t.Fatal(err)
	}
	if tok.ExpiresAt == nil || !tok.ExpiresAt.Equal(start.Add(24*time.Hour).UTC().Truncate(time.Second)) {
		t.Fatalf("ExpiresAt %v", tok.ExpiresAt)
	}
	if r := b.get("/v1/inbox", secret); r.status != http.StatusOK {
		t.Fatalf("before expiry: status %d", r.status)
	}
	later := start.Add(25 * time.Hour)
	now.Store(&later)
	r := b.get("/v1/inbox", secret)
	if r.status != http.StatusUnauthorized || r.errors(t)[0].Code != httpapi.CodeTokenExpired {
		t.Fatalf("after expiry: status %d %s; want 401 %s", r.status, r.body, httpapi.CodeTokenExpired)
	}
	for _, at := range []time.Time{later.Add(-time.Hour), later.Add(httpapi.TokenTTLMax + time.Hour)} {
		if _, _, err := b.api.Tokens().Create(t.Context(), orgA1, httpapi.RoleOrganisation, "", httpapi.WithExpiry(at)); err == nil {
			t.Errorf("expiry %s accepted", at)
		}
	}
}
