package web

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math/bits"
	"strconv"
	"sync"
	"time"
)

// Defaults and bounds of the proof of work of the public forms.
const (
	// WorkBitsDefault is how many leading zero bits the SHA-256 of a
	// solution must have: 2^13 hashes on average, a few tens of
	// milliseconds in a desktop browser and well under a second on a
	// cheap phone (see BenchmarkWork and TestBrowserWorkCost), while a
	// flood of a thousand requests costs a machine millions of hashes.
	WorkBitsDefault = 11
	// WorkBitsMax bounds the difficulty a node may ask of a phone.
	WorkBitsMax = 24
	// WorkTTLDefault is how long a challenge may be solved and sent: a
	// victim may take her time writing.
	WorkTTLDefault = 2 * time.Hour
	// WorkMemoryDefault is how many used challenges are remembered (until
	// they expire) to refuse a second use: about 40 bytes each.
	WorkMemoryDefault = 100_000
	// WorkKeySize is the size of the key that signs the challenges.
	WorkKeySize = 32
	// maxSolutionLen bounds the decimal counter a browser sends.
	maxSolutionLen = 16
)

// WorkError is why a proof of work was refused. Its Code is the
// machine-readable reason (also the Invictus-Error header and the
// data-code of the page's message).
type WorkError struct{ Code string }

func (e *WorkError) Error() string { return "web: proof of work refused: " + e.Code }

// The reasons [Work.Verify] refuses a solution; errors.Is compares them.
var (
	// ErrWorkMissing: no challenge or no solution was sent (a browser
	// without JavaScript).
	ErrWorkMissing = &WorkError{"pow-missing"}
	// ErrWorkForged: the challenge was not issued by this node for this
	// form (altered, made up, or issued for another form).
	ErrWorkForged = &WorkError{"pow-forged"}
	// ErrWorkExpired: the challenge is older than its time to live.
	ErrWorkExpired = &WorkError{"pow-expired"}
	// ErrWorkWrong: the solution does not solve the challenge.
	ErrWorkWrong = &WorkError{"pow-wrong"}
	// ErrWorkReplayed: the challenge was already used once.
	ErrWorkReplayed = &WorkError{"pow-replayed"}
	// ErrWorkBusy: so many challenges were used lately that no more can
	// be remembered until some expire; nothing is accepted meanwhile.
	ErrWorkBusy = &WorkError{"pow-busy"}
)

// workCodes are the closed set of refusal codes (the metric's label).
var workCodes = []string{ErrWorkMissing.Code, ErrWorkForged.Code, ErrWorkExpired.Code, ErrWorkWrong.Code, ErrWorkReplayed.Code, ErrWorkBusy.Code}

// Challenge is what a form carries: the signed challenge and how many
// leading zero bits a solution's hash needs.
type Challenge struct {
	Token string
	Bits  int
}

// Work issues and checks the small proof of work that a public form asks
// of the browser before it is sent: a challenge signed by the node
// (stateless: version, difficulty, expiry and a random nonce, with an
// HMAC-SHA256 over them and the form it is for), and a solution n such
// that SHA-256(token "." n) begins with Bits zero bits. A solved
// challenge is remembered until it expires, so that it is used once;
// the memory is bounded. Safe for concurrent use.
type Work struct {
	key  []byte
	bits int
	ttl  time.Duration
	max  int
	now  func() time.Time

	mu    sync.Mutex
	used  map[[16]byte]int64 // nonce → expiry (unix seconds)
	sweep time.Time
}

// workVersion is the first byte of every challenge.
const workVersion = 1

// challenge layout: version(1) bits(1) expiry(8) nonce(16) mac(32).
const (
	workBodyLen = 1 + 1 + 8 + 16
	workLen     = workBodyLen + sha256.Size
)

// NewWork returns a proof of work whose challenges are signed with key (at
// least [WorkKeySize] bytes; nodes that serve the same pages share it)
// and need bits zero bits, live ttl and are remembered up to memory at
// once. now is the clock (nil for time.Now). It returns an error naming
// a bad argument.
func NewWork(key []byte, bits int, ttl time.Duration, memory int, now func() time.Time) (*Work, error) {
	switch {
	case len(key) < WorkKeySize:
		return nil, fmt.Errorf("web: proof-of-work key of %d bytes, want at least %d", len(key), WorkKeySize)
	case bits < 0 || bits > WorkBitsMax:
		return nil, fmt.Errorf("web: proof-of-work bits %d must be from 0 to %d", bits, WorkBitsMax)
	case ttl < time.Minute:
		return nil, fmt.Errorf("web: proof-of-work time to live %s must be at least a minute", ttl)
	case memory < 1:
		return nil, fmt.Errorf("web: proof-of-work memory %d must be positive", memory)
	}
	if now == nil {
		now = time.Now
	}
	return &Work{key: append([]byte(nil), key...), bits: bits, ttl: ttl, max: memory, now: now, used: map[[16]byte]int64{}}, nil
}

// Issue returns a new challenge for form (a name such as "ask/<service>"
// that the same form gives to Verify).
func (w *Work) Issue(form string) Challenge {
	b := make([]byte, workBodyLen, workLen)
	b[0], b[1] = workVersion, byte(w.bits)
	binary.BigEndian.PutUint64(b[2:10], uint64(w.now().Add(w.ttl).Unix()))
	_, _ = rand.Read(b[10:workBodyLen]) // never fails (crypto/rand)
	b = append(b, w.mac(form, b)...)
	return Challenge{Token: base64.RawURLEncoding.EncodeToString(b), Bits: w.bits}
}

func (w *Work) mac(form string, body []byte) []byte {
	m := hmac.New(sha256.New, w.key)
	m.Write([]byte("invictus-pow1\x00"))
	m.Write([]byte(form))
	m.Write([]byte{0})
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks that solution solves token, a challenge issued for form
// that has not expired and was not used before, and then remembers it as
// used. It returns nil or one of the [WorkError]s: [ErrWorkMissing],
// [ErrWorkForged], [ErrWorkExpired], [ErrWorkWrong], [ErrWorkReplayed],
// [ErrWorkBusy]. A refused solution changes nothing.
func (w *Work) Verify(form, token, solution string) error {
	if token == "" || solution == "" {
		return ErrWorkMissing
	}
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(b) != workLen || b[0] != workVersion {
		return ErrWorkForged
	}
	if !hmac.Equal(b[workBodyLen:], w.mac(form, b[:workBodyLen])) {
		return ErrWorkForged
	}
	expiry := int64(binary.BigEndian.Uint64(b[2:10]))
	now := w.now()
	if now.Unix() >= expiry {
		return ErrWorkExpired
	}
	if len(solution) > maxSolutionLen {
		return ErrWorkWrong
	}
	if _, err := strconv.ParseUint(solution, 10, 64); err != nil {
		return ErrWorkWrong
	}
	if WorkZeros(token, solution) < int(b[1]) {
		return ErrWorkWrong
	}
	var nonce [16]byte
	copy(nonce[:], b[10:workBodyLen])
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.used[nonce]; ok {
		return ErrWorkReplayed
	}
	if len(w.used) >= w.max || now.Sub(w.sweep) > time.Minute {
		for k, exp := range w.used {
			if now.Unix() >= exp {
				delete(w.used, k)
			}
		}
		w.sweep = now
	}
	if len(w.used) >= w.max {
		return ErrWorkBusy
	}
	w.used[nonce] = expiry
	return nil
}

// WorkZeros returns the number of leading zero bits of
// SHA-256(token "." solution), the hash that static/pow.js computes.
func WorkZeros(token, solution string) int {
	sum := sha256.Sum256([]byte(token + "." + solution))
	n := 0
	for _, x := range sum {
		if x != 0 {
			return n + bits.LeadingZeros8(x)
		}
		n += 8
	}
	return n
}

// SolveWork finds a solution of c as the browser does, counting up from
// 0: for tests, benchmarks and scripted clients.
func SolveWork(c Challenge) string {
	for n := uint64(0); ; n++ {
		s := strconv.FormatUint(n, 10)
		if WorkZeros(c.Token, s) >= c.Bits {
			return s
		}
	}
}

// usedCount returns how many used challenges are remembered.
func (w *Work) usedCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.used)
}
