package ratelimit

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestKeyedRefillsWithTheClock(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	l := New(2, 2, func() time.Time { return now })
	for i := range 2 {
		if ok, _ := l.Allow("a"); !ok {
			t.Fatalf("request %d refused", i)
		}
	}
	ok, wait := l.Allow("a")
	if ok || wait != 1 {
		t.Fatalf("third request: %v, wait %d; want refused, 1 s", ok, wait)
	}
	if ok, _ := l.Allow("b"); !ok {
		t.Fatal("another key refused")
	}
	now = now.Add(500 * time.Millisecond) // one token at 2 per second
	if ok, _ := l.Allow("a"); !ok {
		t.Fatal("refused after the refill")
	}
	// Idle buckets are dropped.
	now = now.Add(2 * Idle)
	l.Allow("c")
	if n := l.Len(); n != 1 {
		t.Fatalf("%d buckets after the idle period, want 1", n)
	}
}

func TestKeyedWaitIsWholeSeconds(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	l := New(1.0/60, 1, func() time.Time { return now }) // one a minute
	if ok, _ := l.Allow("a"); !ok {
		t.Fatal("first request refused")
	}
	if ok, wait := l.Allow("a"); ok || wait != 60 {
		t.Fatalf("second request: %v, wait %d; want refused, 60 s", ok, wait)
	}
	now = now.Add(59*time.Second + 500*time.Millisecond)
	if ok, wait := l.Allow("a"); ok || wait != 1 {
		t.Fatalf("just before the refill: %v, wait %d; want refused, 1 s (rounded up)", ok, wait)
	}
	// A refused request takes nothing: the token comes when promised.
	now = now.Add(500 * time.Millisecond)
	if ok, _ := l.Allow("a"); !ok {
		t.Fatal("refused once the token was due")
	}
	// A bucket that can never hold a token says 1 s, not forever.
	z := New(1, 0, func() time.Time { return now })
	if ok, wait := z.Allow("a"); ok || wait != 1 {
		t.Fatalf("zero burst: %v, wait %d", ok, wait)
	}
}

func TestKeyedWithMaxBoundsTheBuckets(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	l := New(1.0/3600, 1, func() time.Time { return now }).WithMax(3) // one an hour
	for _, k := range []string{"a", "b", "c"} {
		if ok, _ := l.Allow(k); !ok {
			t.Fatalf("%s refused", k)
		}
	}
	// A known key at the bound keeps its (empty) bucket.
	if ok, _ := l.Allow("a"); ok {
		t.Fatal("a's second request allowed")
	}
	// A new key at the bound, none idle: all start over.
	if ok, _ := l.Allow("d"); !ok {
		t.Fatal("d refused")
	}
	if n := l.Len(); n != 1 {
		t.Fatalf("%d buckets after the bound was reached, want 1", n)
	}
	// g and h come half an idle period later; the periodic sweep after
	// a whole one drops d, and a comes back with an empty bucket.
	now = now.Add(Idle / 2)
	l.Allow("g")
	l.Allow("h")
	now = now.Add(Idle/2 + time.Second)
	l.Allow("a")
	if n := l.Len(); n != 3 {
		t.Fatalf("%d buckets, want 3 (a, g, h)", n)
	}
	// Before the next periodic sweep, g and h are idle and a is not: a
	// new key at the bound drops g and h only.
	now = now.Add(Idle / 2)
	if ok, _ := l.Allow("i"); !ok {
		t.Fatal("i refused")
	}
	if n := l.Len(); n != 2 {
		t.Fatalf("%d buckets after dropping the idle ones, want 2 (a, i)", n)
	}
	if ok, _ := l.Allow("a"); ok {
		t.Fatal("a's bucket was dropped: its request allowed again")
	}
}

func TestClientIP(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]string{"192.0.2.1:4000": "192.0.2.1", "[2001:db8::1]:80": "2001:db8::1", "pipe": "pipe"} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = addr
		if got := ClientIP(r); got != want {
			t.Errorf("ClientIP(%q) = %q, want %q", addr, got, want)
		}
	}
}
