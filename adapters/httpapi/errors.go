package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/invictus-network/invictus/events"
)

// Error codes of the API's own errors. Validation errors carry the codes
// of the events package (events.CodeRequired, events.CodeTooLarge, ...),
// and rejected commands the codes of command.rejected (forbidden,
// conflict, not_found, invalid, erased): one vocabulary everywhere.
const (
	CodeUnauthorized     = "unauthorized"       // 401: no token, or not a valid one
	CodeTokenExpired     = "token_expired"      // 401: the token is past its expiry
	CodeForbidden        = "forbidden"          // 403: the token may not do this
	CodeNotFound         = "not_found"          // 404
	CodeMethodNotAllowed = "method_not_allowed" // 405
	CodeNotAcceptable    = "not_acceptable"     // 406
	CodeConflict         = "conflict"           // 409
	CodeRateLimited      = "rate_limited"       // 429
	CodeUnavailable      = "unavailable"        // 503: a backing service failed; retry
	CodeOverloaded       = "overloaded"         // 503: the server sheds load; retry after Retry-After
	CodeInternal         = "internal"           // 500
	CodeInvalidParameter = "invalid_parameter"  // 400: a query parameter
	CodeUnknownParameter = "unknown_parameter"  // 400: a query parameter the endpoint does not take
	CodeRejected         = "rejected"           // 422: used only when a rejection carries no problem
)

// Problem is one error of a response: a JSON pointer into the request
// body (for a batch, prefixed by the event's index: "/2/data/needs/0"),
// or the query parameter at fault, a stable code and a message for
// people.
type Problem struct {
	Pointer   string `json:"pointer"`
	Parameter string `json:"parameter,omitempty"`
	Code      string `json:"code"`
	Message   string `json:"message"`
}

// ErrorBody is the body of every error response.
type ErrorBody struct {
	Errors []Problem `json:"errors"`
}

// Error is an error the API answers with: an HTTP status and its
// problems. Handlers return it; writeError writes it.
type Error struct {
	Status   int
	Problems []Problem
	// RetryAfter, when positive, is sent as the Retry-After header (seconds).
	RetryAfter int
}

func (e *Error) Error() string {
	if len(e.Problems) == 0 {
		return fmt.Sprintf("httpapi: %d", e.Status)
	}
	p := e.Problems[0]
	return fmt.Sprintf("httpapi: %d %s: %s", e.Status, p.Code, p.Message)
}

// errorf returns an *Error of one problem without a pointer.
func errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Problems: []Problem{{Code: code, Message: fmt.Sprintf(format, args...)}}}
}

// paramError returns a 400 error naming a query parameter.
func paramError(param, code, format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Problems: []Problem{{Parameter: param, Code: code, Message: fmt.Sprintf(format, args...)}}}
}

// fromProblems converts the events package's problems.
func fromProblems(ps []events.Problem) []Problem {
	out := make([]Problem, 0, len(ps))
	for _, p := range ps {
		out = append(out, Problem{Pointer: p.Pointer, Code: p.Code, Message: p.Message})
	}
	return out
}

// statusOfClass maps an events error class to an HTTP status: 413 too
// large, 415 unsupported content type, 400 not readable (bad UTF-8,
// malformed JSON), 422 for everything that was read but breaks the
// contract.
func statusOfClass(class error) int {
	switch {
	case errors.Is(class, events.ErrTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(class, events.ErrContentType):
		return http.StatusUnsupportedMediaType
	case errors.Is(class, events.ErrInvalidUTF8), errors.Is(class, events.ErrMalformedJSON):
		return http.StatusBadRequest
	}
	return http.StatusUnprocessableEntity
}

// validationError converts a *events.ValidationError into an *Error.
func validationError(ve *events.ValidationError) *Error {
	return &Error{Status: statusOfClass(ve.Class), Problems: fromProblems(ve.Problems)}
}

// writeJSON writes v as the JSON body of a response with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"errors":[{"pointer":"","code":"internal","message":"the response could not be encoded"}]}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// writeError writes e as an error response.
func writeError(w http.ResponseWriter, e *Error) {
	if e.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="invictus"`)
	}
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	ps := e.Problems
	if len(ps) == 0 {
		ps = []Problem{{Code: CodeInternal, Message: http.StatusText(e.Status)}}
	}
	writeJSON(w, e.Status, ErrorBody{Errors: ps})
}
