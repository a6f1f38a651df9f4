package handlers

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/tapwars/tapwars/views"
)

// adminPage: GET /admin — the dashboard, or the login form.
func (s *Server) adminPage(c echo.Context) error {
	adminHeaders(c)
	a, err := s.authorize(c)
	if err != nil {
		if _, api := bearer(c.Request()); errors.Is(err, errAdminAuth) && !api {
			return render(c, http.StatusOK, views.AdminLoginPage(""))
		}
		return err
	}
	d, err := s.adminData(c, a)
	if err != nil {
		return err
	}
	switch c.QueryParam("done") {
	case "reset":
		d.Flash = fmt.Sprintf("Round %d started: every score is zero.", d.Stats.Round)
	case "import":
		d.Flash = fmt.Sprintf("State imported (now round %d).", d.Stats.Round)
	case "rounds":
		d.Flash = fmt.Sprintf("Timed round %d: the countdown is on.", d.Stats.Round)
	case "open":
		d.Flash = fmt.Sprintf("Back to open play (round %d).", d.Stats.Round)
	case "kick":
		d.Flash = "Player kicked."
	case "login":
		d.Flash = "Logged in."
	}
	return render(c, http.StatusOK, views.AdminPage(d))
}
