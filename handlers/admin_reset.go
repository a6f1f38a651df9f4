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

// adminReset: POST /admin/reset — a new round. It reads the high watermark
// of every partition first: every tap acknowledged so far lies below it and
// never counts in the new round, even if it is still waiting in Kafka.
func (s *Server) adminReset(c echo.Context) error {
	ctx := c.Request().Context()
	start := time.Now()
	ends, res, endsErr, err := s.newRound(ctx)
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

// newRound starts a new round at the end of the tap log (adminReset,
// adminStopRounds): it reads every partition's high watermark first, so
// every tap acknowledged so far lies below the round's start. endsErr: the
// watermarks could not be read and nothing changed; err: the store's reset
// failed. Each caller answers them its own way.
func (s *Server) newRound(ctx context.Context) (ends map[int32]int64, res store.ResetResult, endsErr, err error) {
	if ends, endsErr = s.kafkaEnds(ctx); endsErr != nil {
		return nil, store.ResetResult{}, endsErr, nil
	}
	res, err = s.opt.Admin.Reset(ctx, stream.Topic, ends, time.Now())
	return ends, res, nil, err
}
