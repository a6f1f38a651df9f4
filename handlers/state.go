package handlers

import (
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/tapwars/tapwars/game"
)

// gameState: GET /api/game-state[?limit=N] -> the scoreboard, the players
// online (most recently active first, at most 100) and the top N (default
// 10, at most 100).
func (s *Server) gameState(c echo.Context) error {
	n := 10
	if v := c.QueryParam("limit"); v != "" {
		var err error
		n, err = strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			return game.Errorf(game.EINVALID, "limit must be a whole number from 1 to 100")
		}
	}
	snap, err := s.store.Snapshot(c.Request().Context(), n, time.Now())
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
	return c.JSON(http.StatusOK, snap)
}
