package testenv

import (
	"context"
	"testing"
)

func TestAwaitReturnsOnceTheConditionHolds(t *testing.T) {
	n := 0
	Await(t, "the third poll", func() bool { n++; return n == 3 })
	if n != 3 {
		t.Fatalf("polled %d times, want 3", n)
	}
}

func TestRecvReturnsTheValueSent(t *testing.T) {
	ch := make(chan int)
	go func() { ch <- 7 }()
	if v := Recv(t, "the value", ch); v != 7 {
		t.Fatalf("Recv = %d, want 7", v)
	}
	close(ch)
	if v := Recv(t, "the close", ch); v != 0 {
		t.Fatalf("Recv on a closed channel = %d, want 0", v)
	}
}

// Context has a deadline (so that jetstream puts no 5 s one of its own
// on calls), where Await gives up, and ends with the test.
func TestContextHasTheDeadlineAwaitGivesUpAt(t *testing.T) {
	var ctx context.Context
	t.Run("inner", func(t *testing.T) {
		ctx = Context(t)
		at, ok := ctx.Deadline()
		if !ok {
			t.Fatal("no deadline")
		}
		if want, ok := giveUpAt(t); ok && !at.Equal(want) {
			t.Errorf("deadline %s, want %s", at, want)
		}
		if ctx.Err() != nil {
			t.Fatalf("ended before the test: %v", ctx.Err())
		}
	})
	if ctx.Err() == nil {
		t.Error("the context outlived its test")
	}
}
