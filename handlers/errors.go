package handlers

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"

	"github.com/tapwars/tapwars/game"
	"github.com/tapwars/tapwars/internal/httpstatus"
)

// apiError is the JSON body of every API error.
type apiError struct {
	Error string `json:"error"`
}

// domainError turns Echo's own errors (no route, body limit, binding) into
// domain errors, so that every error is answered one way (errorHandler
// answers a wrong method, 405, itself).
func (s *Server) domainError(err error, c echo.Context) error {
	var he *echo.HTTPError
	if !errors.As(err, &he) {
		return err
	}
	msg, _ := he.Message.(string)
	if msg == "" {
		msg = http.StatusText(he.Code)
	}
	code := game.EINTERNAL
	switch he.Code {
	case http.StatusNotFound:
		code, msg = game.ENOTFOUND, "no such page: "+c.Request().URL.Path
	case http.StatusRequestEntityTooLarge:
		code, msg = game.ETOOLARGE, "request body too large (limit "+s.opt.BodyLimit+"B)"
		if c.Path() == "/admin/import" {
			msg = errImportTooLarge.Message
		}
	case http.StatusBadRequest:
		code = game.EINVALID
	case http.StatusUnauthorized:
		code = game.EUNAUTHORIZED
	case http.StatusForbidden:
		code = game.EFORBIDDEN
	case http.StatusUnsupportedMediaType:
		code = game.EMEDIATYPE
	case http.StatusServiceUnavailable:
		code = game.EUNAVAILABLE
	}
	return &game.Error{Code: code, Message: msg, Err: err}
}

// errorHandler answers every failed request: the status from the error's
// code, the message a person understands as JSON ({"error": ...}).
func (s *Server) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	var he *echo.HTTPError
	if errors.As(err, &he) && he.Code == http.StatusMethodNotAllowed {
		_ = c.JSON(he.Code, apiError{Error: "method not allowed"})
		return
	}
	err = s.domainError(err, c)
	status := httpstatus.Of(err)
	setRetryAfter(c, err)
	// A 503 is an outage that the consumer, the hub and /readyz already
	// report; logging each refused request would flood the log under load.
	if status >= 500 && status != http.StatusServiceUnavailable && !errors.Is(c.Request().Context().Err(), context.Canceled) {
		s.log.Error("request failed", "id", c.Response().Header().Get(echo.HeaderXRequestID), "path", c.Path(), "err", err)
	}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(status)
		return
	}
	_ = c.JSON(status, apiError{Error: game.ErrorMessage(err)})
}

// setRetryAfter says when to try again after err: the seconds err names
// (a limit's refusal), else 1 s for an outage (503).
func setRetryAfter(c echo.Context, err error) {
	var ge *game.Error
	if errors.As(err, &ge) && ge.RetryAfter > 0 {
		c.Response().Header().Set("Retry-After", strconv.Itoa(ge.RetryAfter))
	} else if httpstatus.Of(err) == http.StatusServiceUnavailable {
		c.Response().Header().Set("Retry-After", "1")
	}
}

// renderError answers err with a page (comp) in place of the JSON error:
// err's status, and Retry-After as errorHandler sets it.
func renderError(c echo.Context, err error, comp templ.Component) error {
	setRetryAfter(c, err)
	return render(c, httpstatus.Of(err), comp)
}
