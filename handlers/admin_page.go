package handlers

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/tapwars/tapwars/game"

	"github.com/tapwars/tapwars/views"
)

// adminPage: GET /admin — the host console, or the login form.
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
	// What the host just did, in words that stay true as the round goes
	// on (the console above says where the round is now).
	switch c.QueryParam("done") {
	case "reset":
		d.Flash = fmt.Sprintf("You set every score to zero: round %d.", d.Stats.Round)
	case "import":
		d.Flash = fmt.Sprintf("You restored the game from a file (now round %d).", d.Stats.Round)
	case "rounds":
		d.Flash = fmt.Sprintf("You started timed round %d.", d.Stats.Round)
	case "open":
		d.Flash = fmt.Sprintf("You stopped the timed rounds: open play, round %d.", d.Stats.Round)
	case "teams":
		ts := game.DefaultTeams()
		if cur, err := s.store.Teams(c.Request().Context()); err == nil {
			ts = cur
		}
		d.Flash = fmt.Sprintf("You named the teams %s and %s.", ts.Blue.Name, ts.Red.Name)
	case "kick":
		d.Flash = "You removed the player."
	case "login":
		d.Flash = "Logged in."
	}
	return render(c, http.StatusOK, views.AdminPage(d))
}
