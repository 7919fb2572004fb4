package referral

import (
	"errors"
	"fmt"

	"github.com/invictus-network/invictus/events"
)

// Error codes of [Error]. They are the codes a command.rejected carries.
const (
	// CodeForbidden: the actor may not issue this command (wrong
	// organisation, a routing-only event type, or no consent to share).
	CodeForbidden = "forbidden"
	// CodeConflict: the command or event does not fit the current state.
	CodeConflict = "conflict"
	// CodeNotFound: unknown referral or placement.
	CodeNotFound = "not_found"
	// CodeInvalid: the event is malformed for the state machine (no id, a
	// type that is not a referral event, a subject of another referral).
	CodeInvalid = "invalid"
	// CodeErased: the referral was erased; nothing applies to it any more.
	CodeErased = "erased"
	// CodeDuplicate: the CloudEvents id was already applied. The state is
	// unchanged; callers treat it as success.
	CodeDuplicate = "duplicate"
	// CodeTooEarly: a deadline timer fired before the offer's deadline;
	// retry at the deadline.
	CodeTooEarly = "too_early"
)

// Sentinels, one per code: errors.Is(err, ErrConflict) is true for an
// *Error with CodeConflict.
var (
	ErrForbidden = errors.New("referral: forbidden")
	ErrConflict  = errors.New("referral: conflict")
	ErrNotFound  = errors.New("referral: not found")
	ErrInvalid   = errors.New("referral: invalid")
	ErrErased    = errors.New("referral: erased")
	ErrDuplicate = errors.New("referral: duplicate")
	ErrTooEarly  = errors.New("referral: too early")
)

// Error is a rejection by the state machine: a code (Code* constants), a
// message for people and a JSON pointer into the event (payload fields are
// under /data, attributes at the top: /source, /subject, /type, /id).
type Error struct {
	Code    string
	Message string
	Pointer string
}

// Error returns the code, pointer and message on one line.
func (e *Error) Error() string {
	if e.Pointer != "" {
		return fmt.Sprintf("referral: %s at %s: %s", e.Code, e.Pointer, e.Message)
	}
	return fmt.Sprintf("referral: %s: %s", e.Code, e.Message)
}

// Is reports whether target is the sentinel of e's code.
func (e *Error) Is(target error) bool {
	switch e.Code {
	case CodeForbidden:
		return target == ErrForbidden
	case CodeConflict:
		return target == ErrConflict
	case CodeNotFound:
		return target == ErrNotFound
	case CodeInvalid:
		return target == ErrInvalid
	case CodeErased:
		return target == ErrErased
	case CodeDuplicate:
		return target == ErrDuplicate
	case CodeTooEarly:
		return target == ErrTooEarly
	}
	return false
}

// Problem returns e as one problem of a command.rejected payload.
func (e *Error) Problem() events.Problem {
	return events.Problem{Pointer: e.Pointer, Code: e.Code, Message: e.Message}
}

// CodeOf returns the code of the *Error in err's chain, or "" when there
// is none.
func CodeOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

func fail(code, pointer, format string, args ...any) *Error {
	return &Error{Code: code, Pointer: pointer, Message: fmt.Sprintf(format, args...)}
}

const (
	ptrPlacement = "/data/placement"
	ptrSource    = "/source"
	ptrSubject   = "/subject"
	ptrType      = "/type"
	ptrID        = "/id"
)
