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
		countRejected(err)
		return err
	}
	var req tapRequest
	if err := s.decodeBody(c, &req); err != nil {
		countRejected(err)
		return err
	}
	if msg := req.mismatch(u); msg != "" {
		err := game.Errorf(game.EFORBIDDEN, "%s", msg)
		countRejected(err)
		return err
	}
	n := 1
	if req.Count != nil {
		n = *req.Count
	}
	ev, err := s.acceptTap(c.Request().Context(), u, n)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, tapResponse{Success: true, TapEvent: ev})
}

// acceptTap holds the tap rules, for POST /api/tap and taps over a
// WebSocket alike, for a player signedIn just before (not kicked, still in
// the game): n is 1..MaxBurst, the round is in play, the player is within
// TAP_RATE_LIMIT; then the event goes to Kafka, and the tap is accepted once
// Kafka acknowledged it (within TAP_TIMEOUT).
func (s *Server) acceptTap(ctx context.Context, u game.User, n int) (ev game.TapEvent, err error) {
	defer func() {
		if err != nil {
			countRejected(err)
		}
	}()
	if n < 1 || n > game.MaxBurst {
		return ev, game.ErrInvalidCount
	}
	// The round rule (409 outside a timed round's play) comes before the
	// rate limit, so a refused tap takes nothing from the player's budget.
	now := time.Now().UnixMilli()
	hold, err := s.holdRound()
	if err != nil {
		return ev, err
	}
	if err := roundRule(hold, now); err != nil {
		hold.Done()
		return ev, err
	}
	if s.kicks.has(u.ID) { // again under the hold: a kick announced meanwhile
		hold.Done()
		return ev, errKicked
	}
	if err := s.allowTap(u.ID, n); err != nil { // TAP_RATE_LIMIT
		hold.Done()
		return ev, err
	}
	ev = game.TapEvent{
		ID:        eventID(),
		UserID:    u.ID,
		Username:  u.Username,
		Team:      u.Team,
		Timestamp: now,
		SessionID: u.SessionID,
		// The round as this instance knows it. In open play a tap counts
		// in the round of the last round marker before it on its
		// partition; in a timed round only if Timestamp is inside it.
		Round: hold.Round,
	}
	if hold.Schedule.Timed() {
		ev.Round = hold.Schedule.Number
	}
	if n > 1 {
		ev.Count = n
	}
	ctx, cancel := context.WithTimeout(ctx, s.opt.TapTimeout)
	defer cancel()
	sent := time.Now()
	err = s.tapper.Send(ctx, ev)
	confirmed := hold.Done()
	switch {
	case game.ErrorCode(err) == game.EPENDING:
		return game.TapEvent{}, heldPending{err, hold}
	case err != nil:
		return game.TapEvent{}, err
	case !confirmed:
		return game.TapEvent{}, errMayStillCount
	}
	metrics.TapAckSeconds.Observe(time.Since(sent).Seconds())
	metrics.TapsAccepted.Add(float64(n))
	return ev, nil
}

// countRejected counts a refused tap by its error's code.
func countRejected(err error) { metrics.TapsRejected.WithLabelValues(game.ErrorCode(err)).Inc() }

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
