package ratelimit

import (
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
