package handlers

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/tapwars/tapwars/game"
	"github.com/tapwars/tapwars/metrics"
)

// tapRequest is the optional body of POST /api/tap. The old game's fields
// are accepted and must match the token's player; the team always comes
// from the server.
type tapRequest struct {
	UserID    *string `json:"userId" form:"userId"`
	Username  *string `json:"username" form:"username"`
	Team      *string `json:"team" form:"team"`
	SessionID *string `json:"sessionId" form:"sessionId"`
	Count     *int    `json:"count" form:"count"`
}

type tapResponse struct {
	Success  bool          `json:"success"`
	TapEvent game.TapEvent `json:"tapEvent"`
}

// tap: POST /api/tap -> 202 once Kafka acknowledged the event.
func (s *Server) tap(c echo.Context) error {
	u, err := s.player(c)
	if err != nil {
		metrics.TapsRejected.WithLabelValues(game.ErrorCode(err)).Inc()
		return err
	}
	var req tapRequest
	if err := s.decodeBody(c, &req); err != nil {
		metrics.TapsRejected.WithLabelValues(game.ErrorCode(err)).Inc()
		return err
	}
	if msg := req.mismatch(u); msg != "" {
		metrics.TapsRejected.WithLabelValues(game.EFORBIDDEN).Inc()
		return game.Errorf(game.EFORBIDDEN, "%s", msg)
	}
	n := 1
	if req.Count != nil {
		n = *req.Count
		if n < 1 || n > game.MaxBurst {
			metrics.TapsRejected.WithLabelValues(game.EINVALID).Inc()
			return game.ErrInvalidCount
		}
	}
	if err := s.allowTap(c, u.ID, n); err != nil { // TAP_RATE_LIMIT
		return err
	}
	now := time.Now().UnixMilli()
	sc, round, err := s.currentSchedule(c.Request().Context())
	if err == nil {
		err = roundRule(sc, now)
	}
	if err != nil {
		metrics.TapsRejected.WithLabelValues(game.ErrorCode(err)).Inc()
		return err
	}
	ev := game.TapEvent{
		ID:        eventID(),
		UserID:    u.ID,
		Username:  u.Username,
		Team:      u.Team,
		Timestamp: now,
		SessionID: u.SessionID,
		// The round as this instance knows it. In open play a tap counts
		// in the round of the last round marker before it on its
		// partition; in a timed round only if Timestamp is inside it.
		Round: round,
	}
	if n > 1 {
		ev.Count = n
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), s.opt.TapTimeout)
	defer cancel()
	if err := s.tapper.Send(ctx, ev); err != nil {
		metrics.TapsRejected.WithLabelValues(game.ErrorCode(err)).Inc()
		return err
	}
	metrics.TapsAccepted.Add(float64(n))
	return c.JSON(http.StatusAccepted, tapResponse{Success: true, TapEvent: ev})
}

// mismatch returns why the body's identity fields disagree with the token's
// player, or "".
func (r tapRequest) mismatch(u game.User) string {
	switch {
	case r.UserID != nil && *r.UserID != u.ID:
		return "userId does not match your token"
	case r.Username != nil && *r.Username != u.Username:
		return "username does not match your token"
	case r.Team != nil && *r.Team != string(u.Team):
		return "team does not match your team (" + string(u.Team) + "): the server assigns teams"
	case r.SessionID != nil && *r.SessionID != u.SessionID:
		return "sessionId does not match your session"
	}
	return ""
}

func eventID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
