package web

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/invictus-network/invictus/internal/ratelimit"
)

// Defaults of the rate limits of the pages that search or send.
const (
	// SearchRateDefault is how many searches (find, map) one address may
	// make per second, on average.
	SearchRateDefault = 2.0
	// SearchBurstDefault is how many it may make at once.
	SearchBurstDefault = 20
	// AskRateDefault is how many requests to be contacted one address may
	// send per second, on average: one a minute.
	AskRateDefault = 1.0 / 60
	// AskBurstDefault is how many it may send at once.
	AskBurstDefault = 3
)

// Limited pages: the closed set of the metric's label "page".
const (
	limitFind = "find"
	limitMap  = "map"
	limitAsk  = "ask"
)

// limiters holds one token bucket per client address (ratelimit.Keyed),
// and remembers the address only as a keyed hash (the key is random and
// lives in memory only), for at most ratelimit.Idle after its last
// request: nothing that a memory dump could turn back into an address
// list without the key.
type limiters struct {
	buckets *ratelimit.Keyed
	key     [32]byte
}

func newLimiters(perSecond float64, burst int, now func() time.Time) *limiters {
	l := &limiters{buckets: ratelimit.New(perSecond, burst, now)}
	if _, err := rand.Read(l.key[:]); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return l
}

// allow takes a token from the bucket of r's address. When it is empty it
// returns false and the whole seconds until a token is available.
func (l *limiters) allow(r *http.Request) (bool, int) {
	mac := hmac.New(sha256.New, l.key[:])
	mac.Write([]byte(ratelimit.ClientIP(r)))
	return l.buckets.Allow(string(mac.Sum(nil)[:16]))
}

// metrics are the pages' counters: labelled only by the closed set of
// limited pages, never by anything a visitor chose.
type metrics struct {
	limited *prometheus.CounterVec
	asked   *prometheus.CounterVec
	work    *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		limited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "invictus_web_rate_limited_total",
			Help: "Requests to the public pages answered 429 because their address sent too many, by page (find, map, ask).",
		}, []string{"page"}),
		asked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "invictus_web_self_referrals_total",
			Help: "Requests to be contacted sent from the public pages, by outcome (sent, invalid, failed).",
		}, []string{"outcome"}),
		work: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "invictus_web_work_refused_total",
			Help: "Requests to be contacted refused for their proof of work, by reason (pow-missing, pow-forged, pow-expired, pow-wrong, pow-replayed, pow-busy).",
		}, []string{"reason"}),
	}
	for _, p := range []string{limitFind, limitMap, limitAsk} {
		m.limited.WithLabelValues(p)
	}
	for _, o := range []string{"sent", "invalid", "failed"} {
		m.asked.WithLabelValues(o)
	}
	for _, c := range workCodes {
		m.work.WithLabelValues(c)
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.limited, m.asked, m.work} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

// limited wraps a page with its address's rate limit: when the bucket is
// empty it answers 429 with Retry-After and a short page in the
// visitor's language, and counts it.
func (s *Server) limited(lang, page string, l *limiters, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ok, wait := l.allow(r)
		if ok {
			h(w, r)
			return
		}
		s.metrics.limited.WithLabelValues(page).Inc()
		w.Header().Set("Retry-After", strconv.Itoa(wait))
		s.page(lang, func(_ http.ResponseWriter, _ *http.Request, rq *request) (string, int, error) {
			rq.pg.Title = rq.p.T("limit.title")
			rq.pg.Robots = "noindex"
			rq.pg.Data = wait
			return "limited", http.StatusTooManyRequests, nil
		})(w, r)
	}
}
