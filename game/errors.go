package game

import (
	"errors"
	"fmt"
)

// Error codes: what kind of failure an error is, independent of transport.
// internal/httpstatus turns each into an HTTP status in one map (and
// live/socket_taps.go into a WebSocket close code); everything else only
// says which code an error has.
const (
	EINVALID      = "invalid"      // the request is malformed or breaks a rule (400)
	EUNAUTHORIZED = "unauthorized" // no valid token or session (401)
	EFORBIDDEN    = "forbidden"    // authenticated, but not allowed (403)
	ENOTFOUND     = "not_found"    // no such thing (404)
	ECONFLICT     = "conflict"     // not now: the state forbids it (409)
	ETOOLARGE     = "too_large"    // a body or file over its limit (413)
	EMEDIATYPE    = "media_type"   // a body type the endpoint does not take (415)
	ETOOMANY      = "too_many"     // a limit was reached; try later (429)
	ETIMEOUT      = "timeout"      // the client was too slow sending its request (408)
	EUNAVAILABLE  = "unavailable"  // a dependency is down or slow; retry (503)
	EPENDING      = "pending"      // handed to a dependency that did not answer in time: it may still take effect (504)
	EINTERNAL     = "internal"     // a bug (500)
)

// Error is a domain error: a code that says what kind of failure it is and a
// message a person understands. RetryAfter (seconds, 0 = none) is for codes
// whose answer says when to try again.
type Error struct {
	Code       string
	Message    string
	RetryAfter int
	Err        error // the cause, for logs and errors.Is; never shown to users
}

// Error is the message and, for logs, its cause; people are shown
// ErrorMessage, the message alone.
func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

// Unwrap lets errors.Is see the cause.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an *Error with code and message whose cause is err.
func Wrap(err error, code, msg string) *Error {
	return &Error{Code: code, Message: msg, Err: err}
}

// ErrorCode is the code of err: the code of the first *Error in its chain,
// EINTERNAL for any other error, "" for nil.
func ErrorCode(err error) string {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage is the message of the first *Error in err's chain, or a
// generic message for errors that carry no code (their text may hold
// internals: addresses, keys, secrets).
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}
