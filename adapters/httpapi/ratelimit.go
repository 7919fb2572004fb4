package httpapi

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// limiterIdle is how long an unused limiter is kept before it is dropped
// (a dropped limiter starts full again, which is what an idle client has
// earned anyway).
const limiterIdle = 10 * time.Minute

// limiters holds one token bucket per key: a token id, or "ip:<address>"
// for requests without a valid token.
type limiters struct {
	rate  rate.Limit
	burst int
	now   func() time.Time

	mu    sync.Mutex
	m     map[string]*limiterEntry
	sweep time.Time
}

type limiterEntry struct {
	lim  *rate.Limiter
	last time.Time
}

func newLimiters(perSecond float64, burst int, now func() time.Time) *limiters {
	return &limiters{rate: rate.Limit(perSecond), burst: burst, now: now, m: map[string]*limiterEntry{}}
}

// allow takes one token from key's bucket. When the bucket is empty it
// returns false and the whole seconds until a token is available.
func (l *limiters) allow(key string) (bool, int) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.sweep) > limiterIdle {
		for k, e := range l.m {
			if now.Sub(e.last) > limiterIdle {
				delete(l.m, k)
			}
		}
		l.sweep = now
	}
	e := l.m[key]
	if e == nil {
		e = &limiterEntry{lim: rate.NewLimiter(l.rate, l.burst)}
		l.m[key] = e
	}
	e.last = now
	r := e.lim.ReserveN(now, 1)
	if !r.OK() {
		return false, 1
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, int(math.Ceil(d.Seconds()))
	}
	return true, 0
}
