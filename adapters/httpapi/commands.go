package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/internal/wire"
	"github.com/invictus-network/invictus/referral"
)

// CommandTypes are the event types an organisation may send on
// POST /v1/events. The others are written by the routing service (or the
// directory) and are refused with 403.
var CommandTypes = referral.CommandTypes

// Statuses of a [CommandResult].
const (
	StatusSubmitted = "submitted" // stored for the routing service; not decided yet
	StatusAccepted  = "accepted"  // in the referral's log
	StatusRejected  = "rejected"  // refused by the routing service (command.rejected)
	StatusPending   = "pending"   // ?wait= ended before the routing service decided
)

// CommandResult is the answer for one event of POST /v1/events.
type CommandResult struct {
	// ID is the event's CloudEvents id.
	ID string `json:"id"`
	// Referral is the referral the command is about (its subject).
	Referral string `json:"referral,omitempty"`
	// Status is one of the Status* constants.
	Status string `json:"status"`
	// Errors are the command.rejected errors of a rejected command.
	Errors []Problem `json:"errors,omitempty"`
}

// batchRejected is the 422 body of a batch in which a command was
// rejected: the errors (pointers prefixed by the event's index) and every
// result.
type batchRejected struct {
	Errors  []Problem       `json:"errors"`
	Results []CommandResult `json:"results"`
}

// HeaderMsgID is the JetStream deduplication header set on every command.
const HeaderMsgID = wire.HeaderMsgID

// postEvents serves POST /v1/events. Every event is decoded and
// authorised before any is stored; then they are stored one by one. If
// storing fails half-way the answer is 503, and sending the whole request
// again is safe: the events stored already are deduplicated by their ids.
func (s *Server) postEvents(w http.ResponseWriter, r *http.Request, who Token) error {
	if s.deps.Commands == nil {
		return unavailable("sending commands")
	}
	wait, e := s.waitParam(r)
	if e != nil {
		return e
	}
	if wait > 0 && s.deps.Outcomes == nil {
		return unavailable("waiting for outcomes (?wait=)")
	}
	batch := isBatch(r)
	r.Body = http.MaxBytesReader(w, r.Body, events.MaxBatchSize+1)
	envs, err := events.DecodeHTTP(r)
	if err != nil {
		var ve *events.ValidationError
		if errors.As(err, &ve) {
			s.countCommand(r.Header.Get("Ce-Type"), OutcomeInvalid)
			return validationError(ve)
		}
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errorf(http.StatusRequestEntityTooLarge, events.CodeTooLarge, "the body is more than %d bytes", mbe.Limit-1)
		}
		return errorf(http.StatusBadRequest, events.CodeMalformedJSON, "the body could not be read")
	}
	if len(envs) == 0 {
		return errorf(http.StatusUnprocessableEntity, events.CodeTooShort, "the batch holds no event")
	}

	// Authorise every event before storing any.
	var denied []Problem
	for i, env := range envs {
		prefix := ""
		if batch {
			prefix = "/" + strconv.Itoa(i)
		}
		if src := env.Event.Source(); src != events.SourceOf(who.Org) {
			denied = append(denied, Problem{Pointer: prefix + "/source", Code: CodeForbidden,
				Message: fmt.Sprintf("source %q is not the token's organisation %s", src, events.SourceOf(who.Org))})
		}
		if typ := env.Event.Type(); !slices.Contains(CommandTypes, typ) {
			denied = append(denied, Problem{Pointer: prefix + "/type", Code: CodeForbidden,
				Message: fmt.Sprintf("%s is not a command an organisation sends", typ)})
		}
	}
	if len(denied) > 0 {
		for _, env := range envs {
			s.countCommand(env.Event.Type(), OutcomeForbidden)
		}
		return &Error{Status: http.StatusForbidden, Problems: denied}
	}

	subject, err := events.InboundSubject(who.Org)
	if err != nil {
		return errorf(http.StatusForbidden, CodeForbidden, "the token's organisation %q cannot send commands", who.Org)
	}
	results := make([]CommandResult, len(envs))
	for i, env := range envs {
		msg, err := wire.Command(subject, env.Event)
		if err != nil {
			var ve *events.ValidationError
			if errors.As(err, &ve) {
				return validationError(ve)
			}
			return fmt.Errorf("httpapi: encode command: %w", err)
		}
		ctx, cancel := context.WithTimeout(r.Context(), StoreTimeout)
		err = s.deps.Commands.Submit(ctx, who.Org, msg)
		cancel()
		if err != nil {
			return fmt.Errorf("httpapi: submit command: %w", err)
		}
		results[i] = CommandResult{ID: env.Event.ID(), Referral: env.Event.Subject(), Status: StatusSubmitted}
	}

	if wait == 0 {
		if batch {
			writeJSON(w, http.StatusAccepted, results)
		} else {
			writeJSON(w, http.StatusAccepted, results[0])
		}
		return nil
	}
	s.awaitOutcomes(r.Context(), who.Org, wait, envs, results)
	if !batch {
		res := results[0]
		switch res.Status {
		case StatusAccepted:
			status := http.StatusOK
			if envs[0].Event.Type() == events.TypeReferralRequested {
				status = http.StatusCreated
				w.Header().Set("Location", "/v1/referrals/"+res.Referral)
			}
			writeJSON(w, status, res)
		case StatusRejected:
			writeJSON(w, http.StatusUnprocessableEntity, res)
		default:
			writeJSON(w, http.StatusAccepted, res)
		}
		return nil
	}
	var rejected []Problem
	pending := false
	for i, res := range results {
		switch res.Status {
		case StatusRejected:
			for _, p := range res.Errors {
				p.Pointer = "/" + strconv.Itoa(i) + p.Pointer
				rejected = append(rejected, p)
			}
		case StatusPending:
			pending = true
		}
	}
	switch {
	case len(rejected) > 0:
		writeJSON(w, http.StatusUnprocessableEntity, batchRejected{Errors: rejected, Results: results})
	case pending:
		writeJSON(w, http.StatusAccepted, results)
	default:
		writeJSON(w, http.StatusOK, results)
	}
	return nil
}

// awaitOutcomes waits, until wait has passed, for the routing service's
// decision on every command and records it in results.
func (s *Server) awaitOutcomes(ctx context.Context, org string, wait time.Duration, envs []*events.Envelope, results []CommandResult) {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for i, env := range envs {
		accepted, rej, err := s.deps.Outcomes.Wait(ctx, org, env.Event.Subject(), env.Event.ID())
		switch {
		case err != nil:
			// The commands are stored: whatever stopped the wait (its end,
			// or a failure to watch), their outcome is still to come.
			if ctx.Err() == nil {
				s.log.WarnContext(ctx, "httpapi: wait for an outcome failed", slog.Any("error", err))
			}
			for j := i; j < len(results); j++ {
				results[j].Status = StatusPending
			}
			return
		case rej != nil:
			results[i].Status = StatusRejected
			results[i].Errors = fromProblems(rej.Errors)
			if len(results[i].Errors) == 0 {
				results[i].Errors = []Problem{{Code: CodeRejected, Message: "the routing service rejected the command"}}
			}
		case accepted:
			results[i].Status = StatusAccepted
		default:
			results[i].Status = StatusPending
		}
	}
}

// waitParam parses ?wait=: a Go duration ("2s", "500ms") or whole
// seconds, from 0 (do not wait) to Config.MaxWait.
func (s *Server) waitParam(r *http.Request) (time.Duration, *Error) {
	v := r.URL.Query().Get("wait")
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		n, nerr := strconv.Atoi(v)
		if nerr != nil {
			return 0, paramError("wait", events.CodeFormat, "wait %q is not a duration such as 2s or 500ms", v)
		}
		d = time.Duration(n) * time.Second
	}
	if d < 0 || d > s.cfg.MaxWait {
		return 0, paramError("wait", events.CodeOutOfRange, "wait must be from 0 to %s", s.cfg.MaxWait)
	}
	return d, nil
}

// isBatch reports whether the request is in the batch content mode.
func isBatch(r *http.Request) bool {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return mt == "application/cloudevents-batch+json"
}

// countCommand counts a command the API refuses (see [Metrics.Command]).
func (s *Server) countCommand(typ, outcome string) { s.metrics.Command(typ, outcome) }
