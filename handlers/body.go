package handlers

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/tapwars/tapwars/game"
	"github.com/tapwars/tapwars/store"
)

// Body types a request may carry: what the page's own forms send and JSON.
const (
	mimeJSON = "application/json"
	mimeForm = "application/x-www-form-urlencoded"
)

// decodeBody reads a JSON or form body into v (its json and form tags); an
// empty body leaves v as it is. A body without a type is read as JSON (API
// clients); any other type is refused with 415 before it is read. A body
// that does not arrive within BodyTimeout is refused with 408.
func (s *Server) decodeBody(c echo.Context, v any) error {
	r := c.Request()
	if r.ContentLength == 0 {
		return nil
	}
	mt := mimeJSON
	if ct := r.Header.Get(echo.HeaderContentType); ct != "" {
		var err error
		if mt, _, err = mime.ParseMediaType(ct); err != nil {
			mt = ct
		}
	}
	if mt != mimeJSON && mt != mimeForm {
		return game.Errorf(game.EMEDIATYPE, "unsupported body type %q: send %s (or the page's form encoding)", mt, mimeJSON)
	}
	_ = http.NewResponseController(c.Response()).SetReadDeadline(time.Now().Add(s.opt.BodyTimeout))
	data, err := io.ReadAll(r.Body)
	if err != nil {
		return readError(err, "the request body could not be read")
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	if mt == mimeJSON {
		if err := json.Unmarshal(data, v); err != nil {
			var te *json.UnmarshalTypeError
			if errors.As(err, &te) {
				return game.Errorf(game.EINVALID, "request body: field %q must be %s", te.Field, store.JSONKind(te.Type.Kind().String()))
			}
			return game.Errorf(game.EINVALID, "request body is not valid JSON")
		}
		return nil
	}
	r.Body = io.NopCloser(bytes.NewReader(data))
	if err := (&echo.DefaultBinder{}).BindBody(c, v); err != nil {
		return game.Errorf(game.EINVALID, "request body is not a valid form")
	}
	return nil
}

// readError classifies a failed body read: too slow (408), too large (413),
// else broken (400, what prefixed with the cause).
func readError(err error, what string) error {
	var ne net.Error
	var mbe *http.MaxBytesError
	var he *echo.HTTPError
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return game.Wrap(err, game.ETIMEOUT, "the request body did not arrive in time")
	case errors.As(err, &mbe), errors.As(err, &he) && he.Code == http.StatusRequestEntityTooLarge:
		return game.Wrap(err, game.ETOOLARGE, "request body too large")
	}
	return game.Wrap(err, game.EINVALID, what)
}
