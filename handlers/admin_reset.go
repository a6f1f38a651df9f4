package handlers

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/tapwars/tapwars/store"
	"github.com/tapwars/tapwars/stream"
	"github.com/tapwars/tapwars/views"
)

// adminResetConfirm: GET /admin/reset — the browser's confirm step.
func (s *Server) adminResetConfirm(c echo.Context) error {
	d, err := s.adminData(c, adminOf(c))
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, views.AdminResetPage(d))
}

type resetResponse struct {
	Round       int64            `json:"round"`
	Zeroed      int64            `json:"zeroed"`
	RoundStarts map[string]int64 `json:"roundStarts"`
	TookMs      float64          `json:"tookMs"`
}

// adminReset: POST /admin/reset — a new open round. It starts at its
// markers in the tap log, so a tap acknowledged before them never counts in
// it, even if it is still waiting in Kafka; roundStarts reports the end of
// the log read just before.
func (s *Server) adminReset(c echo.Context) error {
	ctx := c.Request().Context()
	start := time.Now()
	ends, res, endsErr, err := s.startOpenRound(ctx)
	if endsErr != nil {
		return s.adminFail(c, endsErr)
	}
	if err != nil {
		return err
	}
	took := time.Since(start)
	s.log.Info("admin: new round", "round", res.Round, "playersZeroed", res.Zeroed, "starts", ends, "took", took)
	if wantsHTML(c) {
		return c.Redirect(http.StatusSeeOther, "/admin?done=reset")
	}
	starts := map[string]int64{}
	for p, o := range ends {
		starts[store.OffsetField(stream.Topic, p)] = o
	}
	return c.JSON(http.StatusOK, resetResponse{Round: res.Round, Zeroed: res.Zeroed, RoundStarts: starts,
		TookMs: float64(took.Microseconds()) / 1000})
}

// startOpenRound starts a new open round (adminReset, adminStopRounds),
// after reading the end of the tap log (kafkaEnds). endsErr: the end could
// not be read and nothing changed; err: starting it failed. Each
// caller answers them its own way.
func (s *Server) startOpenRound(ctx context.Context) (ends map[int32]int64, res store.ResetResult, endsErr, err error) {
	if ends, endsErr = s.kafkaEnds(ctx); endsErr != nil {
		return nil, store.ResetResult{}, endsErr, nil
	}
	res, err = s.opt.Admin.StartOpenRound(ctx, time.Now())
	return ends, res, nil, err
}
