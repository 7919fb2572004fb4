package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/internal/wire"
)

// HeaderReminder is the header the routing service's dispatcher sets on a
// DELIVERY message that repeats an offer as a reminder.
const HeaderReminder = wire.HeaderReminder

// Delivery is one message of an organisation's inbox.
type Delivery struct {
	// Seq is the DELIVERY stream sequence: the cursor to read after, and
	// the id of the server-sent event.
	Seq uint64 `json:"seq"`
	// Referral is the referral the event is about (its subject).
	Referral string `json:"referral,omitempty"`
	// Type is the event's type.
	Type string `json:"type"`
	// Reminder marks an offer sent again because its deadline is near.
	Reminder bool `json:"reminder,omitempty"`
	// Event is the event as a structured CloudEvent.
	Event json.RawMessage `json:"event"`
}

// InboxPage is the body of GET /v1/inbox as JSON.
type InboxPage struct {
	Deliveries []Delivery `json:"deliveries"`
	// Next is the cursor of the next page: pass it as ?after=.
	Next uint64 `json:"next"`
}

// delivery decodes one stored delivery; ok is false for a message that
// is not a valid event (it is skipped and logged).
func (s *Server) delivery(ctx context.Context, seq uint64, m events.Message) (Delivery, bool) {
	env, err := events.Decode(m)
	if err != nil {
		s.log.WarnContext(ctx, "httpapi: undecodable delivery skipped", slog.Uint64("seq", seq), slog.Any("error", err))
		return Delivery{}, false
	}
	b, err := structured(env.Event)
	if err != nil {
		s.log.WarnContext(ctx, "httpapi: unencodable delivery skipped", slog.Uint64("seq", seq), slog.Any("error", err))
		return Delivery{}, false
	}
	reminder := false
	for k, vs := range m.Header {
		if strings.EqualFold(k, HeaderReminder) && len(vs) > 0 && vs[0] != "" {
			reminder = true
		}
	}
	return Delivery{Seq: seq, Referral: env.Event.Subject(), Type: env.Event.Type(), Reminder: reminder, Event: b}, true
}

// getInbox serves GET /v1/inbox: a page of JSON, or a stream of
// server-sent events when the client accepts text/event-stream.
func (s *Server) getInbox(w http.ResponseWriter, r *http.Request, who Token) error {
	if s.deps.Inbox == nil {
		return unavailable("the inbox")
	}
	q := r.URL.Query()
	after, e := uintParam(q.Get("after"), "after", 0)
	if e != nil {
		return e
	}
	if acceptsEventStream(r) {
		if v := r.Header.Get("Last-Event-ID"); v != "" {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return &Error{Status: http.StatusBadRequest, Problems: []Problem{{Parameter: "Last-Event-ID", Code: events.CodeFormat,
					Message: "Last-Event-ID must be the id of an event of this stream"}}}
			}
			after = n
		}
		return s.streamInbox(w, r, who.Org, after)
	}
	limit, e := uintParam(q.Get("limit"), "limit", InboxLimitDefault)
	if e != nil {
		return e
	}
	if limit < 1 || limit > InboxLimitMax {
		return paramError("limit", events.CodeOutOfRange, "limit must be from 1 to %d", InboxLimitMax)
	}
	page := InboxPage{Deliveries: []Delivery{}, Next: after}
	ctx, cancel := context.WithTimeout(r.Context(), StoreTimeout)
	defer cancel()
	err := s.deps.Inbox.Read(ctx, who.Org, after, int(limit), func(seq uint64, m events.Message) error {
		page.Next = max(page.Next, seq)
		if d, ok := s.delivery(ctx, seq, m); ok {
			page.Deliveries = append(page.Deliveries, d)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("httpapi: read inbox: %w", err)
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}

// errStreamClosed stops a stream whose client went away.
var errStreamClosed = errors.New("httpapi: event stream closed")

// streamInbox streams the deliveries after sequence after as server-sent
// events ("id: <seq>", "event: <type>", "data: <structured CloudEvent>"),
// with a comment line every Heartbeat, until the client goes away.
func (s *Server) streamInbox(w http.ResponseWriter, r *http.Request, org string, after uint64) error {
	if sw, ok := w.(*statusWriter); ok {
		sw.streamed = true
		sw.done() // a stream holds a connection, not an admission slot
	}
	rc := http.NewResponseController(w)
	// A stream outlives the server's read and write timeouts: reading is
	// over (a timed-out read would end the request's context), and each
	// write gets its own deadline.
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	var mu sync.Mutex
	write := func(b []byte) error {
		mu.Lock()
		defer mu.Unlock()
		_ = rc.SetWriteDeadline(time.Now().Add(s.cfg.StreamWriteTimeout))
		if _, err := w.Write(b); err != nil {
			cancel()
			return errStreamClosed
		}
		if err := rc.Flush(); err != nil {
			cancel()
			return errStreamClosed
		}
		return nil
	}
	if err := write([]byte("retry: 2000\n: inbox of " + org + "\n\n")); err != nil {
		return nil
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() {
		t := time.NewTicker(s.cfg.Heartbeat)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if write([]byte(": keep-alive\n\n")) != nil {
					return
				}
			}
		}
	})
	err := s.deps.Inbox.Follow(ctx, org, after, func(seq uint64, m events.Message) error {
		d, ok := s.delivery(ctx, seq, m)
		if !ok {
			return nil
		}
		var b bytes.Buffer
		fmt.Fprintf(&b, "id: %d\nevent: %s\ndata: ", d.Seq, d.Type)
		if err := json.NewEncoder(&b).Encode(d); err != nil { // one line, ending in \n
			return fmt.Errorf("httpapi: encode delivery: %w", err)
		}
		b.WriteByte('\n')
		return write(b.Bytes())
	})
	if err != nil && !errors.Is(err, errStreamClosed) && ctx.Err() == nil {
		s.log.WarnContext(r.Context(), "httpapi: inbox stream ended", slog.Any("error", err))
		_ = write([]byte("event: error\ndata: {\"errors\":[{\"pointer\":\"\",\"code\":\"unavailable\",\"message\":\"the stream was interrupted; reconnect with Last-Event-ID\"}]}\n\n"))
	}
	return nil
}

// acceptsEventStream reports whether the client asks for server-sent events.
func acceptsEventStream(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept") {
		for part := range strings.SplitSeq(v, ",") {
			mt, _, _ := strings.Cut(strings.TrimSpace(part), ";")
			if strings.EqualFold(strings.TrimSpace(mt), "text/event-stream") {
				return true
			}
		}
	}
	return false
}

// uintParam parses an unsigned query parameter; empty gives def.
func uintParam(v, name string, def uint64) (uint64, *Error) {
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, paramError(name, events.CodeFormat, "%s must be a whole number, not %q", name, v)
	}
	return n, nil
}
