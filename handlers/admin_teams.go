package handlers

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/tapwars/tapwars/game"
	"github.com/tapwars/tapwars/store"
)

// adminTeams: POST /admin/teams — the host names the teams and picks their
// colours ("Cats vs Dogs" in sponsor colours): a JSON game.Teams, or the
// console's form (blue_name, blue_color, red_name, red_color). A colour
// white text is not readable on is refused with a darker one that is.
// The change is a fact in the log like every other, so a rebuild keeps
// it; 200 once applied, 202 while pending.
func (s *Server) adminTeams(c echo.Context) error {
	var ts game.Teams
	if r := c.Request(); r.PostForm != nil {
		field := func(name string) string { return strings.TrimSpace(r.PostFormValue(name)) }
		ts = game.Teams{Blue: game.TeamStyle{Name: field("blue_name"), Color: field("blue_color")},
			Red: game.TeamStyle{Name: field("red_name"), Color: field("red_color")}}
	} else if err := s.decodeBody(c, &ts); err != nil {
		return s.adminFail(c, err)
	}
	ts, err := game.NormalizeTeams(ts)
	if err != nil {
		return s.adminFail(c, err)
	}
	err = s.opt.Admin.SetTeams(c.Request().Context(), ts, time.Now())
	pending := errors.Is(err, store.ErrNotApplied)
	if err != nil && !pending {
		return s.adminFail(c, err)
	}
	s.log.Info("admin: teams", "blue", ts.Blue.Name, "red", ts.Red.Name)
	if wantsHTML(c) {
		return c.Redirect(http.StatusSeeOther, "/admin?done=teams")
	}
	if pending {
		return c.JSON(http.StatusAccepted, ts)
	}
	return c.JSON(http.StatusOK, ts)
}
