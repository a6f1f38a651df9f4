package handlers

import (
	"context"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/tapwars/tapwars/game"
	"github.com/tapwars/tapwars/views"
)

// historyReader reads the round history (ledger.Game, from the store).
type historyReader interface {
	RoundResults(ctx context.Context, offset, limit int64) ([]game.RoundResult, int64, error)
}

// roundsPage is one page of the history.
type roundsPage struct {
	Rounds []game.RoundResult `json:"rounds"`
	Page   int64              `json:"page"`
	Limit  int64              `json:"limit"`
	Total  int64              `json:"total"`
}

// maxRoundsLimit is the most rounds one page of /api/rounds holds.
const maxRoundsLimit = 100

// pageParam reads a whole-number query parameter from 1 to hi (def when absent).
func pageParam(c echo.Context, name string, def, hi int64) (int64, error) {
	v := c.QueryParam(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 1 || n > hi {
		return 0, game.Errorf(game.EINVALID, "%s must be a whole number from 1 to %d", name, hi)
	}
	return n, nil
}

// history reads the page the request asks for (?page=, ?limit=).
func (s *Server) history(c echo.Context) (roundsPage, error) {
	page, err := pageParam(c, "page", 1, 1<<31)
	if err != nil {
		return roundsPage{}, err
	}
	limit, err := pageParam(c, "limit", 20, maxRoundsLimit)
	if err != nil {
		return roundsPage{}, err
	}
	out := roundsPage{Rounds: []game.RoundResult{}, Page: page, Limit: limit}
	r, ok := s.store.(historyReader)
	if !ok {
		return out, nil
	}
	rounds, total, err := r.RoundResults(c.Request().Context(), (page-1)*limit, limit)
	if err != nil {
		return roundsPage{}, game.Wrap(err, game.EUNAVAILABLE, "the round history cannot be read; try again")
	}
	out.Rounds, out.Total = rounds, total
	return out, nil
}

// apiRounds: GET /api/rounds?page=&limit= -> the results of timed rounds,
// newest first.
func (s *Server) apiRounds(c echo.Context) error {
	p, err := s.history(c)
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
	return c.JSON(http.StatusOK, p)
}

// roundsHistoryPage: GET /rounds — the same as a page.
func (s *Server) roundsHistoryPage(c echo.Context) error {
	p, err := s.history(c)
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, views.RoundsPage(views.RoundsData{Rounds: p.Rounds, Page: p.Page, Limit: p.Limit, Total: p.Total}))
}
