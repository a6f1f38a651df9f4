package handlers

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/tapwars/tapwars/views"
)

// screen: GET /screen — the presenter screen for a projector: scores, the
// top 5, players online and a QR code of the join page; live like the game
// page.
func (s *Server) screen(c echo.Context) error {
	snap, err := s.store.Snapshot(c.Request().Context(), views.GameTop, time.Now())
	if err != nil {
		return err
	}
	d := views.ScreenData{JoinURL: s.publicURL(c) + "/", Transport: c.QueryParam("transport")}
	d.State.State = snap
	return render(c, http.StatusOK, views.ScreenPage(d))
}

// publicURL is the address players use: PUBLIC_URL, else the request's
// scheme (https only from TLS or a trusted proxy) and host.
func (s *Server) publicURL(c echo.Context) string {
	if s.opt.PublicURL != "" {
		return s.opt.PublicURL
	}
	return c.Scheme() + "://" + c.Request().Host
}
