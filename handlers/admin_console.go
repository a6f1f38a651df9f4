package handlers

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/tapwars/tapwars/views"
)

// adminConsole: GET /admin/console — the console's round and room panel,
// which the page refreshes every second (with the stop button out of
// band, so that it shows only while timed rounds run).
func (s *Server) adminConsole(c echo.Context) error {
	cons, _, err := s.adminConsoleData(c.Request().Context())
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, views.AdminConsolePanel(cons, adminOf(c).csrf, true))
}
