package email

import (
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Defaults and limits of [Config].
const (
	// BackoffDefault is the delay before a message that met a temporary
	// failure is tried again; it doubles with each attempt up to
	// BackoffMaxDefault.
	BackoffDefault    = 2 * time.Second
	BackoffMaxDefault = 5 * time.Minute
	// AttemptsDefault bounds the attempts to send one message: after that
	// many temporary failures it is given up and recorded as failed.
	AttemptsDefault = 16
	// LeaseTTLDefault is how long the sender's lease lasts unless renewed
	// (every third of it). Another instance takes over at most this long
	// after the holder stopped without releasing it.
	LeaseTTLDefault = 15 * time.Second
	// ResyncDefault is how often the sender looks for directory changes
	// (organisations that start or stop receiving by e-mail).
	ResyncDefault = 5 * time.Second
	// OutcomeWaitDefault is how long a confirmation page waits for the
	// routing service's decision before saying the answer was sent.
	OutcomeWaitDefault = 10 * time.Second
	// SendTimeoutDefault bounds one SMTP transaction.
	SendTimeoutDefault = 30 * time.Second
	// DigestAtDefault is the time of day of the daily digests, in each
	// organisation's time zone (see [Config].DigestAt).
	DigestAtDefault = "07:00"
	// MountPath is where serve mounts [Adapter.Handler]; links point
	// below it.
	MountPath = "/mail/"
)

// Config configures the adapter. From and PublicURL are required; the
// zero value of every other field means its default.
type Config struct {
	// From is the sender address of every message, e.g.
	// "INVICTUS <referrals@node.example>" or a bare address.
	From string
	// PublicURL is the node's public base URL; action links are
	// PublicURL + /mail/link/<token>.
	PublicURL string
	// ConsoleURL is where an organisation opens sealed case files (the
	// web console). Default PublicURL + "/".
	ConsoleURL string
	// Backoff, BackoffMax and Attempts govern retries of temporary
	// failures (defaults [BackoffDefault], [BackoffMaxDefault],
	// [AttemptsDefault]).
	Backoff    time.Duration
	BackoffMax time.Duration
	Attempts   int
	// LeaseTTL is the sender lease's lifetime. Default [LeaseTTLDefault].
	LeaseTTL time.Duration
	// Resync is how often directory changes are looked for. Default
	// [ResyncDefault].
	Resync time.Duration
	// OutcomeWait bounds a confirmation page's wait for the decision.
	// Default [OutcomeWaitDefault].
	OutcomeWait time.Duration
	// DigestAt is the time of day, "HH:MM" on a 24-hour clock, at which
	// organisations with referral_channel email_digest get their digest.
	// It is read in the organisation's time zone: the time zone of the
	// opening hours of its first service (by id) in the directory, or UTC
	// when it has none (see [DigestZone]). Default [DigestAtDefault].
	DigestAt string
	// Holder names this instance in the lease. Default: a random name.
	Holder string
	// Registerer receives the adapter's metrics. Default: none.
	Registerer prometheus.Registerer
	// Logger receives the adapter's logs. Default discards.
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time

	// digestAt is DigestAt parsed, set by New.
	digestAt time.Duration
}

// WithDefaults returns a copy of c with every unset field given its default.
func (c Config) WithDefaults() Config {
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	if c.ConsoleURL == "" && c.PublicURL != "" {
		c.ConsoleURL = c.PublicURL + "/"
	}
	if c.Backoff == 0 {
		c.Backoff = BackoffDefault
	}
	if c.BackoffMax == 0 {
		c.BackoffMax = BackoffMaxDefault
	}
	if c.Attempts == 0 {
		c.Attempts = AttemptsDefault
	}
	if c.LeaseTTL == 0 {
		c.LeaseTTL = LeaseTTLDefault
	}
	if c.Resync == 0 {
		c.Resync = ResyncDefault
	}
	if c.OutcomeWait == 0 {
		c.OutcomeWait = OutcomeWaitDefault
	}
	if c.DigestAt == "" {
		c.DigestAt = DigestAtDefault
	}
	if c.Holder == "" {
		c.Holder = randomName()
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate reports the first invalid field of c, naming it.
func (c Config) Validate() error {
	if c.From == "" {
		return errors.New("email: Config.From (the sender address) is required")
	}
	if _, err := mail.ParseAddress(c.From); err != nil {
		return fmt.Errorf("email: Config.From %q is not an e-mail address: %w", c.From, err)
	}
	for name, v := range map[string]string{"PublicURL": c.PublicURL, "ConsoleURL": c.ConsoleURL} {
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			return fmt.Errorf("email: Config.%s %q must be an absolute http(s) URL without user, query or fragment", name, v)
		}
	}
	if _, err := ParseDigestAt(c.DigestAt); err != nil {
		return fmt.Errorf("email: Config.DigestAt: %w", err)
	}
	switch {
	case c.Backoff <= 0 || c.BackoffMax < c.Backoff:
		return fmt.Errorf("email: Config.Backoff %s must be positive and at most BackoffMax %s", c.Backoff, c.BackoffMax)
	case c.Attempts < 1 || c.Attempts > 100:
		return fmt.Errorf("email: Config.Attempts %d must be from 1 to 100", c.Attempts)
	case c.LeaseTTL < 300*time.Millisecond:
		return fmt.Errorf("email: Config.LeaseTTL %s must be at least 300ms", c.LeaseTTL)
	case c.Resync <= 0:
		return fmt.Errorf("email: Config.Resync %s must be positive", c.Resync)
	case c.OutcomeWait <= 0:
		return fmt.Errorf("email: Config.OutcomeWait %s must be positive", c.OutcomeWait)
	}
	return nil
}

// ParseDigestAt returns the time of day "HH:MM" (24-hour clock, 00:00 to
// 23:59) as the time since midnight, or an error saying what is wrong.
func ParseDigestAt(s string) (time.Duration, error) {
	var h, m int
	if len(s) != 5 || s[2] != ':' {
		return 0, fmt.Errorf("%q is not a time of day HH:MM (24-hour clock, e.g. 07:00)", s)
	}
	for i, c := range []byte(s) {
		if i != 2 && (c < '0' || c > '9') {
			return 0, fmt.Errorf("%q is not a time of day HH:MM (24-hour clock, e.g. 07:00)", s)
		}
	}
	h, m = int(s[0]-'0')*10+int(s[1]-'0'), int(s[3]-'0')*10+int(s[4]-'0')
	if h > 23 || m > 59 {
		return 0, fmt.Errorf("%q is not a time of day: hours go from 00 to 23, minutes from 00 to 59", s)
	}
	return time.Duration(h)*time.Hour + time.Duration(m)*time.Minute, nil
}

// backoff returns the delay before the next attempt after the attempt-th.
func (c Config) backoff(attempt uint64) time.Duration {
	d := c.Backoff
	for i := uint64(1); i < attempt && d < c.BackoffMax; i++ {
		d *= 2
	}
	return min(d, c.BackoffMax)
}
