package handlers

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// gameState: GET /api/game-state[?limit=N] -> the scoreboard, the players
// online (most recently active first, at most 100) and the top N (default
// 10, at most 100).
func (s *Server) gameState(c echo.Context) error {
	n, err := pageParam(c, "limit", 10, 100)
	if err != nil {
		return err
	}
	snap, err := s.store.Snapshot(c.Request().Context(), int(n), time.Now())
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
	return c.JSON(http.StatusOK, snap)
}
