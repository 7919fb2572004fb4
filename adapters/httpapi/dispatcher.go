package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/internal/tracing"
)

// Dispatcher delivers each organisation's deliveries to its webhooks: for
// every registered webhook it follows the organisation's [Inbox] from the
// webhook's cursor and POSTs each event as a CloudEvent in binary content
// mode, signed as the Standard Webhooks specification says
// ([SignWebhook]). A failed attempt (no answer, or a status outside 2xx)
// is retried with exponential backoff, at most WebhookConfig.Attempts
// times; then the message is given up and the next one is sent. Every
// attempt goes to the webhook's delivery log. The cursor is stored after
// each message, so a restart resumes where it stopped; a message being
// sent when the process stops is sent again (same webhook-id, which
// receivers use to drop duplicates).
//
// Run one dispatcher per deployment: two would both deliver every message.
type Dispatcher struct {
	store   Store
	inbox   Inbox
	cfg     WebhookConfig
	client  *http.Client
	metrics *Metrics
	log     *slog.Logger
	now     func() time.Time

	kick chan struct{}

	mu      sync.Mutex
	running map[string]*hookRun
}

// hookRun is one webhook's worker.
type hookRun struct {
	hook   Webhook
	cancel context.CancelFunc
	done   chan struct{}
}

func newDispatcher(store Store, inbox Inbox, cfg WebhookConfig, m *Metrics, log *slog.Logger, now func() time.Time) *Dispatcher {
	return &Dispatcher{store: store, inbox: inbox, cfg: cfg, client: cfg.client(), metrics: m, log: log, now: now,
		kick: make(chan struct{}, 1), running: map[string]*hookRun{}}
}

// notify makes Run read the registrations now.
func (d *Dispatcher) notify() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// Run delivers until ctx ends, then stops every worker, waits for them and
// returns nil. Registrations are read at start, after every change made
// through this server, and every WebhookConfig.Resync.
func (d *Dispatcher) Run(ctx context.Context) error {
	t := time.NewTicker(d.cfg.Resync)
	defer t.Stop()
	defer d.stopAll()
	for {
		d.sync(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-d.kick:
		case <-t.C:
		}
	}
}

// sync starts a worker for each new webhook and stops those of deleted ones.
func (d *Dispatcher) sync(ctx context.Context) {
	lctx, cancel := context.WithTimeout(ctx, StoreTimeout)
	defer cancel()
	keys, err := d.store.Keys(lctx, hookKeyPrefix)
	if err != nil {
		d.log.WarnContext(ctx, "httpapi: webhooks not read", slog.Any("error", err))
		return
	}
	want := map[string]bool{}
	for _, k := range keys {
		_, id, ok := hookOfKey(k)
		if !ok {
			continue
		}
		want[id] = true
		d.mu.Lock()
		_, running := d.running[id]
		d.mu.Unlock()
		if running {
			continue
		}
		b, err := d.store.Get(lctx, k)
		if err != nil {
			continue // deleted meanwhile, or unreadable: the next sync tries again
		}
		var h Webhook
		if err := json.Unmarshal(b, &h); err != nil {
			d.log.WarnContext(ctx, "httpapi: webhook unreadable", slog.String("webhook", id), slog.Any("error", err))
			continue
		}
		d.start(ctx, h)
	}
	d.mu.Lock()
	var stop []*hookRun
	for id, run := range d.running {
		if !want[id] {
			stop = append(stop, run)
			delete(d.running, id)
		}
	}
	d.mu.Unlock()
	for _, run := range stop {
		run.cancel()
		<-run.done
		// The worker may have logged after the webhook was deleted.
		for _, k := range []string{cursorKeyPrefix + run.hook.ID, logKeyPrefix + run.hook.ID} {
			if err := d.store.Delete(lctx, k); err != nil {
				d.log.WarnContext(ctx, "httpapi: webhook state not deleted", slog.String("webhook", run.hook.ID), slog.Any("error", err))
			}
		}
	}
}

func (d *Dispatcher) start(ctx context.Context, h Webhook) {
	wctx, cancel := context.WithCancel(ctx)
	run := &hookRun{hook: h, cancel: cancel, done: make(chan struct{})}
	d.mu.Lock()
	d.running[h.ID] = run
	d.mu.Unlock()
	go func() {
		defer close(run.done)
		d.work(wctx, h)
	}()
}

func (d *Dispatcher) stopAll() {
	d.mu.Lock()
	runs := d.running
	d.running = map[string]*hookRun{}
	d.mu.Unlock()
	for _, run := range runs {
		run.cancel()
	}
	for _, run := range runs {
		<-run.done
	}
}

// work follows the organisation's inbox for one webhook until ctx ends.
func (d *Dispatcher) work(ctx context.Context, h Webhook) {
	delay := d.cfg.Backoff
	for ctx.Err() == nil {
		cursor, err := d.cursor(ctx, h)
		if err == nil {
			err = d.inbox.Follow(ctx, h.Org, cursor, func(seq uint64, m events.Message) error {
				delay = d.cfg.Backoff
				return d.deliver(ctx, h, seq, m)
			})
		}
		if ctx.Err() != nil {
			return
		}
		d.log.WarnContext(ctx, "httpapi: webhook follow interrupted", slog.String("webhook", h.ID), slog.Any("error", err))
		if !sleep(ctx, delay) {
			return
		}
		delay = min(delay*2, d.cfg.BackoffMax)
	}
}

// cursor returns the delivery sequence webhook h has handled.
func (d *Dispatcher) cursor(ctx context.Context, h Webhook) (uint64, error) {
	cctx, cancel := context.WithTimeout(ctx, StoreTimeout)
	defer cancel()
	b, err := d.store.Get(cctx, cursorKeyPrefix+h.ID)
	if errors.Is(err, fs.ErrNotExist) {
		return h.StartAfter, nil
	}
	if err != nil {
		return 0, fmt.Errorf("httpapi: webhook cursor: %w", err)
	}
	n, err := strconv.ParseUint(string(b), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("httpapi: webhook cursor %q: %w", b, err)
	}
	return max(n, h.StartAfter), nil
}

// deliver sends one message with retries, logs every attempt and moves
// the cursor past it. It returns an error only when ctx ends or the
// cursor cannot be stored (the message is then sent again later).
func (d *Dispatcher) deliver(ctx context.Context, h Webhook, seq uint64, m events.Message) error {
	env, err := events.Decode(m)
	if err != nil {
		d.log.WarnContext(ctx, "httpapi: undecodable delivery not sent", slog.String("webhook", h.ID), slog.Uint64("seq", seq), slog.Any("error", err))
		return d.saveCursor(ctx, h, seq)
	}
	ctx, span := tracing.StartDelivery(ctx, "webhook", m.Header, h.Org, env.Event.Type(), env.Event.ID(), env.Event.Subject())
	defer span.End()
	msgID := env.Event.ID()
	for k, vs := range m.Header {
		if strings.EqualFold(k, HeaderReminder) && len(vs) > 0 && vs[0] != "" {
			msgID += ".reminder"
		}
	}
	delay := d.cfg.Backoff
	for attempt := 1; ; attempt++ {
		a := WebhookAttempt{MessageID: msgID, Seq: seq, EventID: env.Event.ID(), EventType: env.Event.Type(),
			Referral: env.Event.Subject(), Attempt: attempt, At: d.now().UTC()}
		start := time.Now()
		a.StatusCode, err = d.post(ctx, h, env, msgID)
		a.DurationMS = time.Since(start).Milliseconds()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		switch {
		case err == nil:
			a.Result = ResultDelivered
		case attempt >= d.cfg.Attempts:
			a.Result, a.Error = ResultGaveUp, err.Error()
		default:
			a.Result, a.Error = ResultFailed, err.Error()
			next := a.At.Add(delay)
			a.NextAttemptAt = &next
		}
		d.metrics.WebhookAttempts.WithLabelValues(a.Result).Inc()
		traceAttempt(span, a)
		d.appendLog(ctx, h, a)
		if a.Result != ResultFailed {
			if a.Result == ResultGaveUp {
				d.log.WarnContext(ctx, "httpapi: webhook message given up", slog.String("webhook", h.ID), slog.Uint64("seq", seq), slog.Int("attempts", attempt))
			}
			return d.saveCursor(ctx, h, seq)
		}
		if !sleep(ctx, delay) {
			return ctx.Err()
		}
		delay = min(delay*2, d.cfg.BackoffMax)
	}
}

// post makes one attempt: it returns the status code received and an
// error unless it was 2xx.
func (d *Dispatcher) post(ctx context.Context, h Webhook, env *events.Envelope, msgID string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, nil)
	if err != nil {
		return 0, fmt.Errorf("bad url: %w", err)
	}
	if err := events.WriteHTTPRequest(ctx, req, env.Event); err != nil {
		return 0, fmt.Errorf("encode event: %w", err)
	}
	body, err := readAll(req)
	if err != nil {
		return 0, fmt.Errorf("encode event: %w", err)
	}
	if err := SignWebhook(req.Header, h.Secret, msgID, d.now(), body); err != nil {
		return 0, err
	}
	req.Header.Set("User-Agent", "invictus-webhooks/1")
	tracing.InjectHTTP(ctx, req.Header)
	resp, err := d.client.Do(req)
	if err != nil {
		if errors.Is(err, errNotPublic) {
			return 0, errNotPublic // the same words whatever listens there
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL, which the log shows already
		}
		return 0, fmt.Errorf("no answer: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Errorf("status %d", resp.StatusCode)
	}
	return resp.StatusCode, nil
}

// readAll returns the body WriteHTTPRequest set, leaving the request
// ready to send.
func readAll(req *http.Request) ([]byte, error) {
	if req.GetBody == nil {
		return nil, errors.New("the request cannot be replayed")
	}
	rc, err := req.GetBody()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, rc); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// appendLog adds a to h's delivery log, keeping the last LogSize entries.
// A log that cannot be written is reported, not retried: delivery goes on.
func (d *Dispatcher) appendLog(ctx context.Context, h Webhook, a WebhookAttempt) {
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), StoreTimeout)
	defer cancel()
	log, err := readLog(lctx, d.store, h.ID)
	if err == nil {
		log = append(log, a)
		if n := len(log) - d.cfg.LogSize; n > 0 {
			log = log[n:]
		}
		var b []byte
		if b, err = json.Marshal(log); err == nil {
			err = d.store.Put(lctx, logKeyPrefix+h.ID, b)
		}
	}
	if err != nil {
		d.log.WarnContext(ctx, "httpapi: webhook log not written", slog.String("webhook", h.ID), slog.Any("error", err))
	}
}

// saveCursor records that h has handled the delivery seq.
func (d *Dispatcher) saveCursor(ctx context.Context, h Webhook, seq uint64) error {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), StoreTimeout)
	defer cancel()
	if err := d.store.Put(cctx, cursorKeyPrefix+h.ID, []byte(strconv.FormatUint(seq, 10))); err != nil {
		return fmt.Errorf("httpapi: webhook cursor: %w", err)
	}
	return nil
}

// sleep waits for d or until ctx ends, and reports whether d passed.
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
