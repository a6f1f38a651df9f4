package handlers

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/tapwars/tapwars/game"
)

// roundsRequest is the body of POST /admin/rounds (seconds).
type roundsRequest struct {
	Seconds      *int64 `json:"seconds" form:"seconds"`
	Countdown    int64  `json:"countdown" form:"countdown"`
	Repeat       bool   `json:"repeat" form:"repeat"`
	Intermission int64  `json:"intermission" form:"intermission"`
}

// schedule checks the request and plans the round from now.
func (r roundsRequest) schedule(now time.Time) (game.RoundSchedule, error) {
	switch {
	case r.Seconds == nil:
		return game.RoundSchedule{}, game.Errorf(game.EINVALID, "seconds is required: how long the round is played")
	case *r.Seconds < 1 || *r.Seconds > game.MaxRoundSeconds:
		return game.RoundSchedule{}, game.Errorf(game.EINVALID, "seconds must be 1 to %d", game.MaxRoundSeconds)
	case r.Countdown < 0 || r.Countdown > game.MaxCountdownSeconds:
		return game.RoundSchedule{}, game.Errorf(game.EINVALID, "countdown must be 0 to %d seconds", game.MaxCountdownSeconds)
	case r.Intermission < 0 || r.Intermission > game.MaxIntermissionSecond:
		return game.RoundSchedule{}, game.Errorf(game.EINVALID, "intermission must be 0 to %d seconds", game.MaxIntermissionSecond)
	}
	at := now.UnixMilli()
	starts := at + r.Countdown*1000
	sc := game.RoundSchedule{Mode: game.ModeTimed, CountdownAt: at, StartsAt: starts, EndsAt: starts + *r.Seconds*1000}
	if r.Repeat {
		sc.Repeat, sc.Intermission = true, r.Intermission*1000
	}
	return sc, nil
}

// readRoundsRequest reads the JSON body, or the admin page's form, whose
// body the CSRF check has already read into PostForm.
func (s *Server) readRoundsRequest(c echo.Context, req *roundsRequest) error {
	r := c.Request()
	if r.PostForm == nil {
		return s.decodeBody(c, req)
	}
	num := func(name string) (int64, error) {
		v := strings.TrimSpace(r.PostFormValue(name))
		if v == "" {
			return 0, nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, game.Errorf(game.EINVALID, "%s must be a whole number of seconds", name)
		}
		return n, nil
	}
	var err error
	if v := strings.TrimSpace(r.PostFormValue("seconds")); v != "" {
		n, perr := num("seconds")
		if perr != nil {
			return perr
		}
		req.Seconds = &n
	}
	if req.Countdown, err = num("countdown"); err != nil {
		return err
	}
	if req.Intermission, err = num("intermission"); err != nil {
		return err
	}
	req.Repeat = r.PostFormValue("repeat") != ""
	return nil
}

type roundsResponse struct {
	Round game.RoundState `json:"round"`
}

// adminStartRounds: POST /admin/rounds — a timed round (and, with repeat,
// the ones after it) starts its countdown now.
func (s *Server) adminStartRounds(c echo.Context) error {
	var req roundsRequest
	if err := s.readRoundsRequest(c, &req); err != nil {
		return s.adminFail(c, err)
	}
	now := time.Now()
	sc, err := req.schedule(now)
	if err != nil {
		return s.adminFail(c, err)
	}
	if sc, err = s.opt.Admin.StartTimedRound(c.Request().Context(), sc, now); err != nil {
		return s.adminFail(c, err)
	}
	s.log.Info("admin: timed round", "round", sc.Number, "startsAt", sc.StartsAt, "endsAt", sc.EndsAt, "repeat", sc.Repeat)
	if wantsHTML(c) {
		return c.Redirect(http.StatusSeeOther, "/admin?done=rounds")
	}
	return c.JSON(http.StatusCreated, roundsResponse{Round: sc.State(now.UnixMilli(), nil)})
}

// adminStopRounds: DELETE /admin/rounds — back to open play: a new open
// round starts (a timed round not final yet gets no result).
func (s *Server) adminStopRounds(c echo.Context) error {
	ctx := c.Request().Context()
	_, res, endsErr, err := s.startOpenRound(ctx)
	if endsErr != nil {
		return s.adminFail(c, endsErr)
	}
	if err != nil {
		return s.adminFail(c, err)
	}
	s.log.Info("admin: open play", "round", res.Round)
	if wantsHTML(c) {
		return c.Redirect(http.StatusSeeOther, "/admin?done=open")
	}
	open := game.RoundSchedule{Number: res.Round, Mode: game.ModeOpen}
	return c.JSON(http.StatusOK, roundsResponse{Round: open.State(0, nil)})
}
