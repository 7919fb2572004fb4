// Package ratelimit is the one per-key token bucket of the node's HTTP
// listeners: the API limits each token (or address), the public pages each
// visitor's address, the console each address's sign-in attempts.
package ratelimit

import (
	"math"
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Idle is how long an unused bucket is kept before it is dropped (a
// dropped bucket starts full again, which an idle client has earned
// anyway).
const Idle = 10 * time.Minute

// Keyed holds one token bucket per key, each refilled at the same rate
// and holding at most the same burst. Its methods are safe for concurrent
// use.
type Keyed struct {
	rate  rate.Limit
	burst int
	max   int
	now   func() time.Time

	mu    sync.Mutex
	m     map[string]*entry
	sweep time.Time
}

type entry struct {
	lim  *rate.Limiter
	last time.Time
}

// New returns buckets refilled at perSecond tokens a second, burst at
// most, on the clock now (time.Now when nil).
func New(perSecond float64, burst int, now func() time.Time) *Keyed {
	if now == nil {
		now = time.Now
	}
	return &Keyed{rate: rate.Limit(perSecond), burst: burst, now: now, m: map[string]*entry{}}
}

// WithMax bounds the buckets kept to n (n <= 0: no bound) and returns l.
// When a new key finds n buckets kept, the idle ones are dropped, and if
// none was idle all are: a flood of new keys costs memory only up to n,
// and at worst gives the keys seen before it a full bucket again. Call it
// before the first Allow.
func (l *Keyed) WithMax(n int) *Keyed {
	l.max = n
	return l
}

// Allow takes one token from key's bucket. When the bucket is empty it
// returns false and the whole seconds until a token is available (at
// least 1). Buckets unused for [Idle] are dropped as it goes.
func (l *Keyed) Allow(key string) (bool, int) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.sweep) > Idle {
		l.dropIdle(now)
	}
	e := l.m[key]
	if e == nil {
		if l.max > 0 && len(l.m) >= l.max {
			l.dropIdle(now)
			if len(l.m) >= l.max {
				clear(l.m)
			}
		}
		e = &entry{lim: rate.NewLimiter(l.rate, l.burst)}
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

// dropIdle drops the buckets unused for [Idle]; l.mu is held.
func (l *Keyed) dropIdle(now time.Time) {
	for k, e := range l.m {
		if now.Sub(e.last) > Idle {
			delete(l.m, k)
		}
	}
	l.sweep = now
}

// Len returns how many buckets are kept.
func (l *Keyed) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}

// ClientIP returns the host of the request's remote address, the key of
// the limits by address. Proxies' forwarding headers are not trusted.
func ClientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
