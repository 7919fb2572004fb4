package postgres

import (
	"context"
	"errors"
	"math/rand/v2"
	"runtime"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Defaults shared by the components.
const (
	// BackoffMinDefault is the first wait after a failure; it doubles with
	// each failure in a row up to BackoffMaxDefault.
	BackoffMinDefault = 50 * time.Millisecond
	// BackoffMaxDefault caps the wait after failures.
	BackoffMaxDefault = 5 * time.Second
	// BatchSizeDefault is how many rows or messages one transaction
	// handles at most.
	BatchSizeDefault = 256
	// BatchSizeMax bounds every BatchSize.
	BatchSizeMax = 10000
	// TimeoutDefault bounds one batch: its queries, publishes and commit.
	TimeoutDefault = 30 * time.Second
)

// backoff returns the wait after failures failures in a row: lo doubled
// each time up to hi, with up to 25 % of jitter taken off so that
// several processes do not retry in step.
func backoff(lo, hi time.Duration, failures int) time.Duration {
	d := lo
	for i := 1; i < failures && d < hi; i++ {
		d *= 2
	}
	return time.Duration(float64(min(d, hi)) * (1 - 0.25*rand.Float64()))
}

// sleep waits d or until ctx ends; it reports whether the whole wait
// passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// health records the outcome of a component's last round of work.
type health struct {
	mu  sync.Mutex
	err error
}

func (h *health) set(err error) {
	h.mu.Lock()
	h.err = err
	h.mu.Unlock()
}

func (h *health) get() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.err
}

// ErrUnavailable is the class of errors that may pass by themselves: a
// database or NATS connection lost or refused, a server shutting down, a
// serialization failure or deadlock. The components retry them with a
// backoff; Health reports them while they last.
var ErrUnavailable = errors.New("postgres: unavailable")

// transient reports whether a database error may pass on retry,
// classified by SQLSTATE and connection state, never by message.
func transient(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrUnavailable) || pgconn.SafeToRetry(err) || pgconn.Timeout(err) {
		return true
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case len(pe.Code) == 5 && pe.Code[:2] == "08": // connection exception
			return true
		case pe.Code == "40001", pe.Code == "40P01": // serialization failure, deadlock
			return true
		case pe.Code == "57P01", pe.Code == "57P02", pe.Code == "57P03": // admin shutdown, crash shutdown, cannot connect now
			return true
		case pe.Code == "53300": // too many connections
			return true
		}
		return false
	}
	// Anything else without a server error (an I/O error on a closed
	// connection) is the connection's failure.
	return true
}

// parallelMin is the least work per goroutine worth starting one for.
const parallelMin = 32

// parallel calls f(i) for every i in [0, n), spread over up to GOMAXPROCS
// goroutines, and returns when all calls have. Decoding and validating
// events is the CPU cost of a batch; this spreads it over the cores.
func parallel(n int, f func(i int)) {
	workers := min(runtime.GOMAXPROCS(0), (n+parallelMin-1)/parallelMin)
	if workers <= 1 {
		for i := range n {
			f(i)
		}
		return
	}
	var wg sync.WaitGroup
	per := (n + workers - 1) / workers
	for lo := 0; lo < n; lo += per {
		hi := min(lo+per, n)
		wg.Go(func() {
			for i := lo; i < hi; i++ {
				f(i)
			}
		})
	}
	wg.Wait()
}
