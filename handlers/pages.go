package handlers

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"

	"github.com/tapwars/tapwars/game"
	"github.com/tapwars/tapwars/views"
)

// render writes a templ component as an HTML response.
func render(c echo.Context, status int, comp templ.Component) error {
	c.Response().Header().Set(echo.HeaderContentType, echo.MIMETextHTMLCharsetUTF8)
	c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
	c.Response().WriteHeader(status)
	return comp.Render(c.Request().Context(), c.Response())
}

// index: GET / — the game for a signed-in player, else the join form.
func (s *Server) index(c echo.Context) error {
	d, err := s.pageData(c, 10)
	if err != nil {
		if game.ErrorCode(err) != game.EUNAUTHORIZED {
			return err
		}
		// The page suggests a generated name: joining from the presenter
		// screen's QR code on a phone is one tap; typing starts empty.
		return render(c, http.StatusOK, views.JoinPage("", ""))
	}
	return render(c, http.StatusOK, views.GamePage(d))
}

// leaderboardPage: GET /leaderboard — the top 100, live.
func (s *Server) leaderboardPage(c echo.Context) error {
	d, err := s.pageData(c, 100)
	if err != nil && game.ErrorCode(err) != game.EUNAUTHORIZED {
		return err
	}
	return render(c, http.StatusOK, views.LeaderboardPage(d))
}

// joinForm: POST /join (form field username) — joins, sets the session
// cookie and goes to the game; a bad name shows the form again with why.
func (s *Server) joinForm(c echo.Context) error {
	if _, err := s.player(c); err == nil {
		return c.Redirect(http.StatusSeeOther, "/")
	}
	name := c.Request().PostFormValue("username")
	if _, _, err := s.newPlayer(c, name); err != nil {
		if game.ErrorCode(err) == game.EINVALID || errors.Is(err, game.ErrNameTaken) {
			return renderError(c, err, views.JoinPage(game.ErrorMessage(err), name))
		}
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/")
}

// joinBusyMessage is a join limit's refusal (err, a 429) in a player's
// words: the API's message names the setting, which means nothing to them.
func joinBusyMessage(err *game.Error) string {
	return fmt.Sprintf("Lots of players are joining right now. Please try again in %d s.", max(1, err.RetryAfter))
}

// pageData reads what a page shows. Without a valid session it returns an
// error wrapping auth.ErrBadToken or game.ErrUnknownPlayer (and still fills
// in the state for pages that do not need a player).
func (s *Server) pageData(c echo.Context, top int) (views.PageData, error) {
	d := views.PageData{Transport: c.QueryParam("transport")}
	if d.Transport != "ws" && d.Transport != "sse" {
		d.Transport = "auto"
	}
	ctx := c.Request().Context()
	snap, err := s.store.Snapshot(ctx, top, time.Now())
	if err != nil {
		return d, err
	}
	d.State = snap
	if s.tapLimit != nil {
		d.TapRate, d.TapBurst = s.opt.TapRateLimit, s.tapLimit.burst
	}
	me, perr := s.player(c)
	if perr != nil {
		return d, perr
	}
	d.Me = me
	if st, err := s.store.Stats(ctx, []string{me.ID}); err == nil {
		d.Me.TapCount = st[me.ID].Taps
		d.Rank = st[me.ID].Rank
		d.RankOf = st[me.ID].Of
	}
	return d, nil
}
