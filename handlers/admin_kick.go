package handlers

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/tapwars/tapwars/game"
	"github.com/tapwars/tapwars/store"
	"github.com/tapwars/tapwars/views"
)

// kickID is the player id of a kick request: the path, else the form/query.
func kickID(c echo.Context) (string, error) {
	id := c.Param("id")
	if id == "" {
		id = strings.TrimSpace(c.FormValue("id"))
	}
	if id == "" || len(id) > game.MaxIDLen {
		return "", game.Errorf(game.EINVALID, "Give the id of the player to kick.")
	}
	return id, nil
}

// adminKickConfirm: GET /admin/kick?id= — the browser's confirm step.
func (s *Server) adminKickConfirm(c echo.Context) error {
	id, err := kickID(c)
	if err != nil {
		return s.adminFail(c, err)
	}
	d, err := s.adminData(c, adminOf(c))
	if err != nil {
		return err
	}
	u, err := s.store.User(c.Request().Context(), id)
	if err != nil {
		if errors.Is(err, game.ErrUnknownPlayer) {
			return s.adminFail(c, game.Errorf(game.ENOTFOUND, "There is no player with id %s (maybe already kicked).", id))
		}
		return err
	}
	d.Target = u
	if st, err := s.store.Stats(c.Request().Context(), []string{id}); err == nil {
		d.Taps = st[id].Taps
	}
	return render(c, http.StatusOK, views.AdminKickPage(d))
}

type kickResponse struct {
	Kicked      string `json:"kicked"`
	RemovedTaps int64  `json:"removedTaps,omitempty"`
	Pending     bool   `json:"pending,omitempty"` // logged and in force, not applied yet: removedTaps unknown
}

// adminKick: POST /admin/kick/:id (or form field id) — removes a player:
// the kick is logged, their token stops working on every instance at once,
// and the consumer takes every tap of theirs of this round (also those still
// in Kafka) out of the scores. 200 once applied, 202 while pending.
func (s *Server) adminKick(c echo.Context) error {
	id, err := kickID(c)
	if err != nil {
		return s.adminFail(c, err)
	}
	removed, err := s.opt.Admin.Kick(c.Request().Context(), id, time.Now())
	pending := errors.Is(err, store.ErrNotApplied)
	if pending {
		err = nil
	}
	switch {
	case errors.Is(err, game.ErrUnknownPlayer):
		return s.adminFail(c, game.Errorf(game.ENOTFOUND, "There is no player with id %s.", id))
	case err != nil:
		return s.adminFail(c, err)
	}
	// Every instance refused the token before the kick was logged (see
	// ledger.Game.Kick); the pages of the player here hear it at once.
	s.kicks.add(id)
	s.users.remove(id)
	s.hub.Kick([]string{id}) // their pages here hear it at once; other instances on reload
	s.log.Info("admin: player kicked", "id", id, "removedTaps", removed)
	if wantsHTML(c) {
		return c.Redirect(http.StatusSeeOther, "/admin?done=kick")
	}
	if pending { // logged and in force; the consumer applies it later
		return c.JSON(http.StatusAccepted, kickResponse{Kicked: id, Pending: true})
	}
	return c.JSON(http.StatusOK, kickResponse{Kicked: id, RemovedTaps: removed})
}
