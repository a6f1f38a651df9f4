// Package httpstatus holds the one map from domain error codes (game.E*)
// to HTTP statuses: the handlers answer requests with it, and package live
// answers taps sent over a WebSocket with the status the same tap would
// get over HTTP.
package httpstatus

import (
	"net/http"

	"github.com/tapwars/tapwars/game"
)

// statusOf is the one map from domain error codes to HTTP statuses.
var statusOf = map[string]int{
	game.EINVALID:      http.StatusBadRequest,
	game.EUNAUTHORIZED: http.StatusUnauthorized,
	game.EFORBIDDEN:    http.StatusForbidden,
	game.ENOTFOUND:     http.StatusNotFound,
	game.ETIMEOUT:      http.StatusRequestTimeout,
	game.ECONFLICT:     http.StatusConflict,
	game.ETOOLARGE:     http.StatusRequestEntityTooLarge,
	game.EMEDIATYPE:    http.StatusUnsupportedMediaType,
	game.ETOOMANY:      http.StatusTooManyRequests,
	game.EINTERNAL:     http.StatusInternalServerError,
	game.EUNAVAILABLE:  http.StatusServiceUnavailable,
	game.EPENDING:      http.StatusGatewayTimeout, // may still count: never "not counted"
}

// Of is the HTTP status of err (500 for an error without a known code).
func Of(err error) int {
	if code, ok := statusOf[game.ErrorCode(err)]; ok {
		return code
	}
	return http.StatusInternalServerError
}
