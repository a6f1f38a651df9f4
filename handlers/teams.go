package handlers

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/tapwars/tapwars/game"
	"github.com/tapwars/tapwars/views"
)

// withTeams puts the host's team names and colours into the request's
// context, where every page's templates read them (views.WithTeams). A
// store that does not answer leaves the game's own names: the page still
// renders, and says what failed elsewhere.
func (s *Server) withTeams(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		ts, err := s.store.Teams(c.Request().Context())
		if err != nil {
			ts = game.DefaultTeams()
		}
		c.SetRequest(c.Request().WithContext(views.WithTeams(c.Request().Context(), ts)))
		return next(c)
	}
}

// themeCSS: GET /theme.css — the team colours as CSS custom properties
// (views.ThemeCSS), linked by every page as /theme.css?v=<hash>. The
// current version may be cached for good; any other is revalidated.
func (s *Server) themeCSS(c echo.Context) error {
	ts, err := s.store.Teams(c.Request().Context())
	if err != nil {
		return err
	}
	hash := views.ThemeHash(ts)
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, "text/css; charset=utf-8")
	h.Set("ETag", `"`+hash+`"`)
	if c.QueryParam("v") == hash {
		h.Set(echo.HeaderCacheControl, "public, max-age=31536000, immutable")
	} else {
		h.Set(echo.HeaderCacheControl, "no-cache")
	}
	if c.Request().Header.Get("If-None-Match") == `"`+hash+`"` {
		return c.NoContent(http.StatusNotModified)
	}
	return c.String(http.StatusOK, views.ThemeCSS(ts))
}
