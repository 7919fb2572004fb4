package otlptest

import (
	"context"
	"sync"
	"testing"

	"github.com/invictus-network/invictus/internal/tracing"
)

// Tracing starts a receiver and the process's tracing exporting to it. stop
// flushes and ends the tracing, once; it runs at the test's end if the test
// did not call it. A test that uses it cannot be parallel: tracing sets the
// global tracer provider.
func Tracing(t testing.TB) (r *Receiver, stop func()) {
	t.Helper()
	r = Start()
	t.Cleanup(r.Close)
	shutdown, err := tracing.Start(t.Context(), tracing.Config{Endpoint: r.URL()})
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			if err := shutdown(context.Background()); err != nil {
				t.Errorf("tracing shutdown: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return r, stop
}
